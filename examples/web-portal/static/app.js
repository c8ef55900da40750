// The MFS web portal: vanilla JavaScript, no build step.
//
// The access token lives in the `accessToken` variable only: never in localStorage,
// sessionStorage or a cookie this page can read. The refresh token is the authority's
// __Host-gha-session cookie (HttpOnly), sent only to the authority's /session/* endpoints,
// which also require the X-GHA-CSRF header and this page's Origin.
//
// The page remembers one thing across loads, in localStorage under MARK: that a session was
// started here, and the login name to show (the token does not carry it). It is no secret and
// grants nothing. Without it the page does not try /session/refresh on load: with no session
// that call answers 400, which every visitor's console would show as an error.
"use strict";

(() => {
  const MARK = "mfs-portal.session";
  let config = null;
  let accessToken = null;

  const $ = (id) => document.getElementById(id);

  // localStorage may be unavailable (blocked storage): the page then works without resuming.
  const mark = {
    get() {
      try {
        const value = JSON.parse(localStorage.getItem(MARK));
        return value && typeof value.user === "string" ? value : null;
      } catch {
        return null;
      }
    },
    set(user) {
      try {
        localStorage.setItem(MARK, JSON.stringify({ user }));
      } catch {
        // Not remembered: a reload shows the sign-in form.
      }
    },
    clear() {
      try {
        localStorage.removeItem(MARK);
      } catch {
        // Nothing was remembered.
      }
    },
  };

  // The session is over (expired, revoked, signed out elsewhere): the user must sign in again.
  class SessionOver extends Error {}

  // Which part of the page shows: "loading", "signed-out", "signing-in" or "signed-in". The
  // stylesheet and the tests read it from <body data-view>.
  function show(view, user) {
    document.body.dataset.view = view;
    const signingIn = view === "signing-in";
    $("signin").hidden = view !== "signed-out" && !signingIn;
    $("session").hidden = view !== "signed-in";
    $("account").hidden = view !== "signed-in";
    $("who-name").textContent = user || "";
    $("login").disabled = signingIn;
    $("login").textContent = signingIn ? "Signing in…" : "Sign in";
    $("login-form").setAttribute("aria-busy", String(signingIn));
    for (const id of ["username", "password"]) {
      $(id).removeAttribute("aria-invalid");
    }
    if (view === "signed-out") {
      accessToken = null;
    }
    if (view !== "signed-in") {
      $("jobs").replaceChildren();
      $("no-jobs").hidden = true;
    }
  }

  // One message at a time: errors go to the role="alert" region (announced at once), the rest
  // to the polite role="status" line. `tone` is "info", "warning" or "error".
  function say(text, tone = "info") {
    const isError = tone === "error";
    $("error").textContent = isError ? text : "";
    $("status").textContent = isError ? "" : text;
    $("status").dataset.tone = tone;
  }

  // A session request: credentials (the cookie) included, plus the CSRF header.
  async function session(path, body) {
    const init = {
      method: "POST",
      credentials: "include",
      headers: { "X-GHA-CSRF": "1" },
    };
    if (body) {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = new URLSearchParams(body);
    }
    return fetch(config.authority + path, init);
  }

  async function takeToken(response) {
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(body.error_description || body.error || "the authority answered " + response.status);
    }
    accessToken = body.access_token;
  }

  // A new access token from the cookie; false when there is no usable session any more.
  async function refresh() {
    const response = await session("/session/refresh");
    if (!response.ok) {
      accessToken = null;
      return false;
    }
    await takeToken(response);
    return true;
  }

  // A call to the API; on 401 (the access token expired) one refresh and one retry.
  async function api(path) {
    const call = () => fetch(config.api + path, { headers: { Authorization: "Bearer " + accessToken } });
    let response = await call();
    if (response.status === 401) {
      if (!(await refresh())) {
        throw new SessionOver();
      }
      response = await call();
    }
    return response;
  }

  function jobItem(job) {
    const item = document.createElement("li");
    item.className = "job";
    const title = document.createElement("span");
    title.className = "job-title";
    title.textContent = job.title;
    const status = document.createElement("span");
    status.className = "badge";
    status.dataset.status = job.status;
    status.textContent = job.status.replace(/_/g, " ");
    item.append(title, status);
    return item;
  }

  // Network failures surface as TypeError from fetch: say so in words a user can act on.
  function describe(error) {
    return error instanceof TypeError
      ? "the service cannot be reached. Check your connection and try again."
      : error.message;
  }

  function expired() {
    mark.clear();
    show("signed-out");
    say("Your session has ended. Please sign in again.", "warning");
  }

  async function loadJobs() {
    say("");
    $("jobs-summary").textContent = "Loading…";
    try {
      const response = await api("/jobs");
      if (!response.ok) {
        throw new Error("the jobs service answered " + response.status);
      }
      const jobs = await response.json();
      $("jobs").replaceChildren(...jobs.map(jobItem));
      $("no-jobs").hidden = jobs.length > 0;
      const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      $("jobs-summary").textContent = `${jobs.length} ${jobs.length === 1 ? "job" : "jobs"}, updated ${time}`;
    } catch (error) {
      $("jobs-summary").textContent = "";
      if (error instanceof SessionOver) {
        expired();
      } else {
        say("Could not load the jobs: " + describe(error), "error");
      }
    }
  }

  async function signedIn(user) {
    mark.set(user);
    show("signed-in", user);
    await loadJobs();
  }

  async function login(event) {
    event.preventDefault();
    const user = $("username").value.trim();
    show("signing-in");
    say("Signing in…");
    try {
      const response = await session("/session/login", { username: user, password: $("password").value });
      await takeToken(response);
      $("password").value = "";
      await signedIn(user);
      $("jobs-title").focus();
    } catch (error) {
      $("password").value = "";
      show("signed-out");
      say("Sign-in failed: " + describe(error), "error");
      // Both fields: the authority never says which half of the credential was wrong.
      for (const id of ["username", "password"]) {
        $(id).setAttribute("aria-invalid", "true");
      }
      $("password").focus();
    }
  }

  async function logout() {
    $("logout").disabled = true;
    let ended = true;
    try {
      ended = (await session("/session/logout")).ok;
    } catch {
      ended = false;
    }
    mark.clear();
    $("logout").disabled = false;
    show("signed-out");
    say(ended ? "You are signed out." : "Signed out on this page, but the session could not be ended at the service.", ended ? "info" : "warning");
    $("username").focus();
  }

  async function start() {
    config = await (await fetch("/config.json")).json();
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("refresh-jobs").addEventListener("click", loadJobs);
    // Signed out in another tab: forget the token here too.
    window.addEventListener("storage", (event) => {
      if (event.key === MARK && event.newValue === null && accessToken) {
        show("signed-out");
        say("You signed out in another window.");
      }
    });
    const started = mark.get();
    if (!started) {
      show("signed-out");
      say("");
      return;
    }
    say("Resuming your session…");
    try {
      if (await refresh()) {
        await signedIn(started.user);
      } else {
        expired();
      }
    } catch (error) {
      show("signed-out");
      say("Could not resume your session: " + describe(error), "error");
    }
  }

  start().catch((error) => {
    show("signed-out");
    say("The page cannot start: " + describe(error), "error");
  });
})();
