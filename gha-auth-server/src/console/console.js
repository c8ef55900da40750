// The gha-auth operators' console. Plain modern JavaScript, no framework, no inline code (the
// page's Content-Security-Policy allows only this file).
//
// Sign-in is the browser-session flow of this authority: POST /session/login (same origin, the
// X-GHA-CSRF header) with audience = api_auth.admin_audience; the refresh token stays in the
// HttpOnly cookie, the access token in this script's memory only. localStorage holds one mark
// ("a session was started here", with the name typed at sign-in), never a token, so that a
// first visit does not call /session/refresh. Everything shown comes from the admin API, which decides (403 refuses a user
// without the admin role); the page never decides by hiding.
"use strict";

(() => {
  const MARK = "gha-console.session";
  const $ = (id) => document.getElementById(id);

  // ---- DOM helpers: text only, never HTML from data ----
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "data") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  const when = (value) => {
    if (value === null || value === undefined || value === "") return "—";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace(".000Z", "Z");
  };
  const percent = (ratio) => (ratio === null || ratio === undefined ? "no checks" : `${(ratio * 100).toFixed(2)} %`);
  const list = (items) => (items && items.length ? items.join(", ") : "—");
  const fields = (pairs) =>
    h("dl", {}, pairs.filter(Boolean).map(([name, value]) => [h("dt", { text: name }), h("dd", {}, value ?? "—")]));
  const badge = (text, tone) => h("span", { class: "badge", data: { tone: tone || "neutral" }, text });
  const stateTone = { up: "up", down: "down", degraded: "warning", unknown: "neutral" };

  function setStatus(text, tone) {
    const status = $("status");
    status.textContent = text || "";
    if (tone) status.dataset.tone = tone;
    else delete status.dataset.tone;
  }

  // ---- views ----
  const VIEWS = ["setup", "signin", "refused", "page"];
  function show(view) {
    document.body.dataset.view = view;
    for (const name of VIEWS) $(name).hidden = name !== view;
    const signedIn = view === "page" || view === "refused";
    $("account").hidden = !signedIn;
    $("nav").hidden = view !== "page";
  }
  function focusTitle(id) {
    const title = $(id);
    if (title) title.focus();
  }

  // ---- session: the access token in memory only ----
  const session = { token: null, expiresAt: 0, user: "", settings: null };

  class Refused extends Error {}
  class SignedOut extends Error {}

  async function sessionCall(path, form) {
    const init = { method: "POST", credentials: "same-origin", headers: { "X-GHA-CSRF": "1" } };
    if (form) {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = new URLSearchParams(form).toString();
    }
    return fetch(path, init);
  }

  function keep(tokens) {
    session.token = tokens.access_token;
    // Refresh a little before the token expires, so that no call carries an expired one.
    session.expiresAt = Date.now() + Math.max(5, Number(tokens.expires_in || 60) - 20) * 1000;
  }

  async function refresh() {
    const response = await sessionCall("/session/refresh");
    if (!response.ok) {
      forget();
      throw new SignedOut("Your session has ended. Please sign in again.");
    }
    keep(await response.json());
  }

  function forget() {
    session.token = null;
    session.expiresAt = 0;
    localStorage.removeItem(MARK);
  }

  // A call to the admin API; refreshes the token when it expired or was refused as invalid.
  async function api(path, options) {
    if (!session.token || Date.now() >= session.expiresAt) await refresh();
    const send = () =>
      fetch(path, {
        method: (options && options.method) || "GET",
        credentials: "same-origin",
        headers: Object.assign(
          { Authorization: `Bearer ${session.token}` },
          options && options.body ? { "Content-Type": "application/json" } : {},
        ),
        body: options && options.body ? JSON.stringify(options.body) : undefined,
      });
    let response = await send();
    if (response.status === 401) {
      await refresh();
      response = await send();
    }
    const body = await response.json().catch(() => ({}));
    if (response.status === 403) throw new Refused(body.error_description || "forbidden");
    if (response.status === 401) {
      forget();
      throw new SignedOut("Your session has ended. Please sign in again.");
    }
    if (!response.ok) throw new Error(body.error_description || `the admin API answered ${response.status}`);
    return body;
  }

  // ---- setup: what to configure when sessions are off or this origin is not allowed ----
  function setup(settings) {
    const origin = window.location.origin;
    const body = $("setup-body");
    body.replaceChildren();
    const register = `gha-auth clients add gha-auth-console --grant password --grant refresh_token \\\n  --audience ${settings.admin_audience} --first-party --public`;
    if (!settings.sessions) {
      body.append(
        h("p", { text: "Browser sessions are off on this authority, so the console cannot sign anyone in. Turn them on with a session client registered for the admin audience:" }),
        h("pre", {}, h("code", { text: `[session]\nclient_id = "gha-auth-console"\nallowed_origins = ["${origin}"]` })),
        h("pre", {}, h("code", { text: register })),
        h("p", { text: "Then give an operator the admin role (gha-auth users add NAME --role admin) and restart the authority. The README's \"Console\" section has the details." }),
      );
    } else {
      body.append(
        h("p", {}, "This page's origin ", h("code", { text: origin }), " is not in ", h("code", { text: "session.allowed_origins" }), ", so the authority refuses its session requests. Add it:"),
        h("pre", {}, h("code", { text: `[session]\nclient_id = "${settings.session_client}"\nallowed_origins = [${[...settings.allowed_origins, origin].map((o) => `"${o}"`).join(", ")}]` })),
        h("p", {}, "The session client ", h("code", { text: settings.session_client }), " must also be registered for the audience ", h("code", { text: settings.admin_audience }), "."),
      );
    }
    show("setup");
    focusTitle("setup-title");
  }

  // ---- sign in / out ----
  function signinView(message, tone) {
    show("signin");
    setStatus(message, tone);
    $("login-error").textContent = "";
    for (const id of ["username", "password"]) $(id).removeAttribute("aria-invalid");
  }

  function loginFailure(body, status) {
    const audience = session.settings.admin_audience;
    if (status === 400 && body.error === "invalid_grant") return "the username or password is wrong";
    if (status === 400 && body.error === "invalid_target")
      return `the session client ${session.settings.session_client} is not registered for the audience ${audience} (register it with --audience ${audience})`;
    if (status === 400 && body.error === "unauthorized_client")
      return `the session client ${session.settings.session_client} may not sign users in (it needs --grant password --grant refresh_token --first-party --public)`;
    if (status === 429) return "too many attempts; wait a moment and try again";
    return body.error_description || `the authority answered ${status}`;
  }

  async function login(event) {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    const error = $("login-error");
    if (!username || !password) {
      error.textContent = "Enter your username and password.";
      $(username ? "password" : "username").focus();
      return;
    }
    const form = { username, password, audience: session.settings.admin_audience };
    const tenant = $("tenant").value.trim();
    if (tenant) form.tenant = tenant;
    $("login").disabled = true;
    try {
      const response = await sessionCall("/session/login", form);
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        error.textContent = `Sign-in failed: ${loginFailure(body, response.status)}`;
        for (const id of ["username", "password"]) $(id).setAttribute("aria-invalid", "true");
        $("password").focus();
        return;
      }
      keep(body);
      session.user = tenant ? `${tenant}/${username}` : username;
      localStorage.setItem(MARK, JSON.stringify({ user: session.user }));
      $("password").value = "";
      setStatus("");
      await route(true);
    } catch (e) {
      error.textContent = `Sign-in failed: ${e.message}`;
    } finally {
      $("login").disabled = false;
    }
  }

  async function logout() {
    try {
      await sessionCall("/session/logout");
    } finally {
      forget();
      session.user = "";
      signinView("You are signed out.");
      $("username").focus();
    }
  }

  // ---- confirmation dialog ----
  function confirmAction(title, text, action) {
    const dialog = $("confirm");
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-ok").textContent = action;
    const opener = document.activeElement;
    return new Promise((resolve) => {
      const finish = (ok) => {
        $("confirm-ok").removeEventListener("click", yes);
        $("confirm-cancel").removeEventListener("click", no);
        dialog.removeEventListener("cancel", no);
        if (dialog.open) dialog.close();
        if (opener && opener.isConnected) opener.focus();
        resolve(ok);
      };
      const yes = () => finish(true);
      const no = (e) => {
        if (e) e.preventDefault();
        finish(false);
      };
      $("confirm-ok").addEventListener("click", yes);
      $("confirm-cancel").addEventListener("click", no);
      dialog.addEventListener("cancel", no);
      dialog.showModal();
      $("confirm-cancel").focus();
    });
  }

  // An act behind a confirmation: asks, calls, reports, reloads the page.
  async function act(question, run, done) {
    if (!(await confirmAction(...question))) {
      setStatus("Cancelled; nothing was changed.");
      return;
    }
    try {
      await run();
      setStatus(done, "success");
    } catch (e) {
      // A refusal or an ended session shows again when the page reloads below.
      setStatus(`Failed: ${e.message}`, "error");
    }
    // The button that opened the dialog is gone with the reload: the focus goes to the title.
    await route(true);
  }

  // ---- pages ----
  const pages = {
    overview: { title: "Overview", render: overview },
    monitor: { title: "Health history", render: monitorHistory },
    keys: { title: "Signing keys", render: signingKeys },
    "link-keys": { title: "Link keys", render: linkKeys },
    clients: { title: "Clients", render: clients },
    users: { title: "Users", render: users },
    audit: { title: "Audit", render: audit },
  };

  async function overview() {
    const board = await api("/admin/v1/monitor");
    const counts = {};
    for (const t of board.targets) counts[t.state] = (counts[t.state] || 0) + 1;
    const summary = board.targets.length
      ? Object.entries(counts).map(([state, n]) => `${n} ${state}`).join(", ")
      : "No targets are monitored: add [[monitor.targets]] to the configuration.";
    return [
      h("h2", { text: "Health board" }),
      h("p", { id: "board-summary", text: summary }),
      h("ul", { class: "cards", id: "board" },
        board.targets.map((t) =>
          h("li", { class: "card", data: { target: t.name, state: t.state } },
            h("header", {}, h("h3", { text: t.name }), badge(t.state, stateTone[t.state])),
            fields([
              ["URL", h("code", { text: t.url })],
              ["Since", when(t.since)],
              ["Last check", `${when(t.checked_at)}${t.latency_ms !== null && t.latency_ms !== undefined ? ` (${t.latency_ms} ms)` : ""}`],
              ["Uptime 24 h", percent(t.uptime_24h)],
              ["Uptime 7 d", percent(t.uptime_7d)],
              ["Last failure", t.last_failure ? when(t.last_failure.at) : "none"],
              t.last_failure && ["Reason", t.last_failure.reason || "—"],
            ]),
            h("div", { class: "actions" },
              h("a", { href: `#/monitor/${encodeURIComponent(t.name)}`, text: `History of ${t.name}` })),
          ))),
    ];
  }

  async function monitorHistory(name) {
    const history = await api(`/admin/v1/monitor/${encodeURIComponent(name)}/history?limit=50`);
    return [
      h("p", {}, h("a", { href: "#/overview", text: "Back to the health board" })),
      h("h2", { text: `Last checks of ${history.name}` }),
      history.results.length
        ? h("ul", { class: "events", id: "history" },
            history.results.map((r) =>
              h("li", {},
                badge(r.outcome, stateTone[r.outcome]), " ", when(r.checked_at), ` · ${r.latency_ms} ms`,
                r.reason ? h("div", { class: "meta", text: r.reason }) : null)))
        : h("p", { class: "empty", text: "No checks yet." }),
    ];
  }

  async function signingKeys() {
    const keys = await api("/admin/v1/keys");
    const tone = { active: "up", next: "warning", retired: "neutral" };
    return [
      h("p", { text: "The active key signs; a next key is published ahead of its activation; a retired key stays published until the tokens it signed have expired." }),
      h("ul", { class: "cards", id: "keys" },
        keys.map((k) =>
          h("li", { class: "card" },
            h("header", {}, h("h2", {}, h("code", { text: k.kid })), badge(k.state, tone[k.state])),
            fields([
              ["Algorithm", k.alg],
              ["Created", when(k.created_at)],
              ["Signs from", when(k.activates_at)],
              ["Retired", when(k.retires_at)],
              ["Leaves the JWKS", when(k.remove_at)],
            ])))),
    ];
  }

  const keyText = (key) => (key ? `${key.id} (created ${when(key.created_at)}${key.last_seen ? `, last seen ${when(key.last_seen)}` : ""}${key.expires_at ? `, expires ${when(key.expires_at)}` : ""})` : "—");

  async function linkKeys() {
    // The history: the scheduler's steps (link_keys.*) and the operators' requests
    // (admin.link_keys_*), newest first.
    const [status, steps, requests] = await Promise.all([
      api("/admin/v1/link-keys"),
      api("/admin/v1/audit?tail=true&kind=link_keys.&limit=200"),
      api("/admin/v1/audit?tail=true&kind=admin.link_keys_&limit=50"),
    ]);
    const history = steps.events.concat(requests.events).sort((a, b) => b.seq - a.seq);
    if (!status.link_keys.length) return [h("p", { class: "empty", text: "No link keys are configured ([link_keys.<name>])." })];
    return [
      h("p", {}, "State kept in ", h("code", { text: status.store }), "."),
      h("ul", { class: "cards", id: "link-keys" },
        status.link_keys.map((k) => {
          const events = history.filter((e) => e.subject === k.name).slice(0, 10);
          const rotation = k.rotation;
          return h("li", { class: "card", data: { name: k.name } },
            h("header", {}, h("h2", { text: k.name }),
              rotation ? badge(`rotating: ${rotation.step}`, "warning") : k.requested ? badge("rotation requested", "warning") : badge(k.initialized ? "current" : "no key yet", k.initialized ? "up" : "neutral")),
            fields([
              ["Current", keyText(k.current)],
              ["Pending", keyText(k.pending)],
              ["Previous", keyText(k.previous)],
              ["Rotations", String(k.rotations ?? 0)],
              ["Last rotated", when(k.last_rotated_at)],
              ["Next rotation", when(k.next_rotation_at)],
              k.requested && ["Requested", `${when(k.requested.at)} by ${k.requested.by}`],
              rotation && ["In progress", `${rotation.reason}, step ${rotation.step}, ${rotation.failures} failures${rotation.last_error ? `: ${rotation.last_error}` : ""}`],
            ]),
            h("h3", { text: "Rotation history" }),
            events.length
              ? h("ul", { class: "events rotation-history" },
                  events.map((e) => h("li", { data: { kind: e.kind } }, h("span", { text: e.kind }), " ", h("span", { class: "meta", text: `${when(e.at)} · ${e.actor} · ${e.outcome}` }))))
              : h("p", { class: "empty", text: "No rotation recorded yet." }),
            h("div", { class: "actions" },
              h("button", {
                type: "button", class: "danger", "data-action": "rotate",
                text: `Rotate ${k.name} now`,
                onclick: () => act(
                  [`Rotate link key ${k.name} now?`,
                    `The scheduler will create a new key, install it in the target and keep the current one as previous until the overlap ends. Integrations must pick up the new key.`,
                    "Rotate now"],
                  () => api(`/admin/v1/link-keys/${encodeURIComponent(k.name)}/rotate`, { method: "POST" }),
                  `Rotation of ${k.name} requested; the scheduler performs it.`),
              })));
        })),
    ];
  }

  async function clients() {
    const all = await api("/admin/v1/clients");
    return [
      h("p", { text: `${all.length} client${all.length === 1 ? "" : "s"}. Disabling a client stops it authenticating and revokes its tokens.` }),
      h("ul", { class: "cards", id: "clients" },
        all.map((c) =>
          h("li", { class: "card", data: { client: c.id } },
            h("header", {}, h("h2", {}, h("code", { text: c.id })), c.disabled ? badge("disabled", "down") : badge("enabled", "up")),
            fields([
              ["Tenant", c.tenant || "none"],
              ["Grants", list(c.grants)],
              ["Audiences", list(c.audiences)],
              ["Scopes", list(c.scopes)],
              ["Kind", [c.first_party ? "first-party" : "third-party", c.public ? "public" : c.auth_method].join(", ")],
              ["Updated", when(c.updated_at)],
            ]),
            c.disabled ? null : h("div", { class: "actions" },
              h("button", {
                type: "button", class: "danger", "data-action": "disable",
                text: `Disable ${c.id}`,
                onclick: () => act(
                  [`Disable client ${c.id}?`, "It can no longer authenticate, and every token it holds is revoked. Re-enabling needs a new registration.", "Disable client"],
                  () => api(`/admin/v1/clients/${encodeURIComponent(c.id)}/disable`, { method: "POST" }),
                  `Client ${c.id} is disabled.`),
              }))))),
    ];
  }

  async function users() {
    const all = await api("/admin/v1/users");
    return [
      h("p", { text: `${all.length} user${all.length === 1 ? "" : "s"}. Disabling a user stops their logins and revokes their sessions.` }),
      h("ul", { class: "cards", id: "users" },
        all.map((u) => {
          const name = u.tenant ? `${u.tenant}/${u.username}` : u.username;
          return h("li", { class: "card", data: { user: name } },
            h("header", {}, h("h2", { text: name }), u.disabled ? badge("disabled", "down") : badge("enabled", "up")),
            fields([
              ["Tenant", u.tenant || "none"],
              ["Roles", list(u.roles)],
              ["Created", when(u.created_at)],
            ]),
            u.disabled ? null : h("div", { class: "actions" },
              h("button", {
                type: "button", class: "danger", "data-action": "disable",
                text: `Disable ${name}`,
                onclick: () => act(
                  [`Disable user ${name}?`, "They can no longer sign in, and every session they hold ends.", "Disable user"],
                  () => api(`/admin/v1/users/${encodeURIComponent(u.username)}/disable?tenant=${encodeURIComponent(u.tenant)}`, { method: "POST" }),
                  `User ${name} is disabled.`),
              })));
        })),
    ];
  }

  const auditFilter = { kind: "", actor: "" };

  async function audit() {
    const query = new URLSearchParams({ tail: "true", limit: "100" });
    if (auditFilter.kind) query.set("kind", auditFilter.kind);
    if (auditFilter.actor) query.set("actor", auditFilter.actor);
    const page = await api(`/admin/v1/audit?${query}`);
    const verdict = h("p", { id: "verify-result", role: "status" });
    const form = h("form", { class: "filters", id: "audit-filter", onsubmit: (e) => {
      e.preventDefault();
      auditFilter.kind = $("audit-kind").value.trim();
      auditFilter.actor = $("audit-actor").value.trim();
      route(false);
    } },
      h("label", { for: "audit-kind" }, "Kind ", h("span", { class: "hint", text: "(starts with)" })),
      h("input", { id: "audit-kind", value: auditFilter.kind, placeholder: "admin.api_call", autocapitalize: "none", spellcheck: "false" }),
      h("label", { for: "audit-actor", text: "Actor" }),
      h("input", { id: "audit-actor", value: auditFilter.actor, placeholder: "user:…", autocapitalize: "none", spellcheck: "false" }),
      h("button", { type: "submit", text: "Filter" }));
    return [
      form,
      h("div", { class: "toolbar" },
        h("button", { type: "button", class: "quiet", id: "verify", text: "Verify the chain", onclick: async () => {
          verdict.textContent = "Verifying…";
          try {
            const report = await api("/admin/v1/audit/verify");
            verdict.dataset.intact = String(!report.problems.length);
            verdict.textContent = report.problems.length
              ? `The chain is broken: ${report.problems.length} problem(s): ${report.problems.slice(0, 3).map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join("; ")}`
              : `The chain is intact: ${report.rows} events, head #${report.head_seq}.`;
          } catch (e) {
            verdict.textContent = `Could not verify: ${e.message}`;
          }
        } }),
        verdict),
      h("h2", { text: `Newest events${auditFilter.kind || auditFilter.actor ? " (filtered)" : ""}` }),
      page.events.length
        ? h("ol", { class: "events", id: "audit-events", reversed: true },
            page.events.map((e) =>
              h("li", { data: { kind: e.kind } },
                h("div", {}, h("strong", { text: `#${e.seq} ${e.kind}` }), " ", badge(e.outcome, e.outcome === "success" ? "up" : "down")),
                h("div", { class: "meta", text: `${when(e.at)} · ${e.actor} → ${e.subject}` }),
                e.detail && Object.keys(e.detail).length ? h("div", { class: "meta" }, h("code", { text: JSON.stringify(e.detail) })) : null)))
        : h("p", { class: "empty", text: "No events match." }),
    ];
  }

  // ---- routing ----
  function current() {
    const [name, ...rest] = window.location.hash.replace(/^#\/?/, "").split("/");
    const page = pages[name] ? name : "overview";
    return { page, arg: rest.map(decodeURIComponent).join("/") };
  }

  let routing = 0;
  async function route(moveFocus) {
    const { page, arg } = current();
    const turn = ++routing;
    for (const link of document.querySelectorAll("#nav a")) {
      const here = link.getAttribute("href") === `#/${page}` || (page === "monitor" && link.getAttribute("href") === "#/overview");
      if (here) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    $("who").textContent = session.user ? `Signed in as ${session.user}` : "Signed in";
    try {
      const content = await pages[page].render(arg);
      if (turn !== routing) return;
      $("page-title").textContent = page === "monitor" ? `Health history: ${arg}` : pages[page].title;
      $("page-body").replaceChildren(...content);
      document.title = `${$("page-title").textContent} · gha-auth console`;
      show("page");
      document.body.dataset.page = page;
      if (moveFocus) focusTitle("page-title");
    } catch (e) {
      if (turn !== routing) return;
      if (e instanceof Refused) {
        $("page-body").replaceChildren();
        $("refused-reason").textContent = e.message;
        show("refused");
        focusTitle("refused-title");
      } else if (e instanceof SignedOut) {
        signinView(e.message, "warning");
        $("username").focus();
      } else {
        show("page");
        $("page-title").textContent = pages[page].title;
        $("page-body").replaceChildren(h("p", { class: "error", role: "alert", text: `Could not load this page: ${e.message}` }));
      }
    }
  }

  async function start() {
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("refused-logout").addEventListener("click", logout);
    window.addEventListener("hashchange", () => {
      if (session.token) {
        setStatus("");
        route(true);
      }
    });
    let settings;
    try {
      const response = await fetch("/console/settings.json", { credentials: "same-origin" });
      settings = await response.json();
    } catch (e) {
      setStatus(`The authority did not answer: ${e.message}`, "error");
      return;
    }
    session.settings = settings;
    if (!settings.sessions || !settings.allowed_origins.includes(window.location.origin)) {
      setup(settings);
      return;
    }
    const mark = localStorage.getItem(MARK);
    if (mark) {
      try {
        session.user = (JSON.parse(mark) || {}).user || "";
      } catch (e) {
        session.user = "";
      }
      try {
        await refresh();
        await route(false);
        return;
      } catch (e) {
        signinView(e.message, "warning");
        return;
      }
    }
    signinView("");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
