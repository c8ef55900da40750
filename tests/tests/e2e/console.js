// Drives the operators' console (/console) in headless Debian chromium through playwright-core,
// for the `console` e2e test (which starts the authority, runs this and checks what it reports).
//
// Input (environment): CONSOLE_URL, OFF_URL, CHROMIUM (executable), ADMIN_USER, ADMIN_PASSWORD (a user
// with the admin role), OTHER_USER, OTHER_PASSWORD (a user without it), DOOMED (two client ids,
// one for each screen to disable), ARTIFACTS_DIR (where the screenshots go). Output: one JSON
// object on stdout with what the browser saw. OFF_URL is the console of an authority with
// sessions off. Assertions live in the Rust test; this script
// only fails when the page does not reach a step at all.
"use strict";

const { env, STEP_TIMEOUT, PHONE, DESKTOP, launch, audit, screenshots } = require("./browser");

// Console messages, CSP violations (reported by the page's own event) and requests.
async function watch(context, page) {
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const seen = { console: [], requests: [], statuses: [] };
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") seen.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => seen.console.push(`pageerror: ${e.message}`));
  page.on("request", (r) => seen.requests.push(`${r.method()} ${r.url()}`));
  page.on("response", (r) => seen.statuses.push(`${r.status()} ${r.request().method()} ${r.url()}`));
  return seen;
}

// Nothing scrolls sideways, and no visible element's text runs out of its box or off screen.
function layout(page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const overflowing = [];
    for (const el of document.querySelectorAll("body *")) {
      if (!el.getClientRects().length || el.closest("[hidden]") || el.tagName === "DIALOG") continue;
      const rect = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      const clips = style.overflowX !== "visible";
      if (rect.right > width + 1 || (!clips && el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 && style.display !== "inline")) {
        overflowing.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className}: ${(el.textContent || "").slice(0, 40)}`);
      }
    }
    return { client_width: width, scroll_width: document.documentElement.scrollWidth, overflowing };
  });
}

const onPage = (page, name) => page.waitForSelector(`body[data-view="page"][data-page="${name}"]`);
const statusText = (page) => page.textContent("#status");

// One screen through every page: sign in, the board, history, keys, link keys (rotate), clients
// (cancel, then disable), users, audit (filter, verify), sign out.
async function tour(browser, shots, screen, options, doomed, doomedUser) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const seen = await watch(context, page);
  const out = { pages: {} };
  const visit = async (name) => {
    out.pages[name] = { axe: await audit(page), layout: await layout(page) };
    await shots.shoot(page, `${screen}-${name}`);
  };
  const press = (selector) => (options.hasTouch ? page.tap(selector) : page.click(selector));
  try {
    const response = await page.goto(env("CONSOLE_URL"), { waitUntil: "networkidle" });
    out.csp = response.headers()["content-security-policy"];
    out.nosniff = response.headers()["x-content-type-options"];
    await page.waitForSelector('body[data-view="signin"]');
    out.first_requests = seen.requests.splice(0);
    await visit("signed-out");

    if (options.hasTouch) {
      await page.fill("#username", env("ADMIN_USER"));
      await page.fill("#password", env("ADMIN_PASSWORD"));
      await press("#login");
    } else {
      // Keyboard only: the skip link first, then the form; the focus ring is drawn.
      const focused = () => page.evaluate(() => document.activeElement && (document.activeElement.id || document.activeElement.textContent));
      await page.keyboard.press("Tab");
      const first = await focused();
      const outline = await page.evaluate(() => {
        const style = getComputedStyle(document.activeElement);
        return `${style.outlineStyle} ${style.outlineWidth}`;
      });
      await page.keyboard.press("Tab");
      const second = await focused();
      await page.keyboard.type(env("ADMIN_USER"));
      await page.keyboard.press("Tab");
      await page.keyboard.type(env("ADMIN_PASSWORD"));
      await page.keyboard.press("Enter");
      await onPage(page, "overview");
      out.keyboard = { first_focus: first, second_focus: second, outline, focus_after_login: await focused() };
    }
    await onPage(page, "overview");
    // What page scripts can see after sign-in: no readable cookie, no token in storage.
    out.storage = await page.evaluate(() => ({
      document_cookie: document.cookie,
      local_storage: Object.fromEntries(Object.entries(localStorage)),
      session_storage: sessionStorage.length,
    }));
    await page.waitForSelector("#board li");
    out.board = await page.$$eval("#board li", (items) =>
      Object.fromEntries(items.map((i) => [i.dataset.target, { state: i.dataset.state, text: i.textContent }])));
    await visit("overview");

    await press('a[href="#/monitor/field-service"]');
    await onPage(page, "monitor");
    await page.waitForSelector("#history li, .empty");
    out.history = await page.$$eval("#history li", (items) => items.length);
    await visit("history");

    // The session client's tokens live 25 s and the page renews them 20 s early: after 5 s the
    // next call goes through /session/refresh first.
    await page.waitForTimeout(6_000);
    await press('#nav a[href="#/keys"]');
    await onPage(page, "keys");
    out.keys = await page.$$eval("#keys li", (items) => items.length);
    await visit("keys");

    await press('#nav a[href="#/link-keys"]');
    await onPage(page, "link-keys");
    out.rotation_history = await page.$$eval("#link-keys .rotation-history li", (items) => items.map((i) => i.dataset.kind));
    await visit("link-keys");
    await press('#link-keys button[data-action="rotate"]');
    await page.waitForSelector("#confirm[open]");
    await visit("confirm");
    await press("#confirm-ok");
    await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("Rotation"));
    out.after_rotate = await statusText(page);

    await press('#nav a[href="#/clients"]');
    await onPage(page, "clients");
    const disable = `#clients li[data-client="${doomed}"] button[data-action="disable"]`;
    // Cancel first (Escape): nothing changes.
    await press(disable);
    await page.waitForSelector("#confirm[open]");
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("Cancelled"));
    out.after_cancel = await statusText(page);
    await press(disable);
    await page.waitForSelector("#confirm[open]");
    await press("#confirm-ok");
    await page.waitForSelector(`#clients li[data-client="${doomed}"] .badge[data-tone="down"]`);
    out.after_disable = await statusText(page);
    await visit("clients");

    await press('#nav a[href="#/users"]');
    await onPage(page, "users");
    if (doomedUser) {
      await press(`#users li[data-user="${doomedUser}"] button[data-action="disable"]`);
      await page.waitForSelector("#confirm[open]");
      await press("#confirm-ok");
      await page.waitForSelector(`#users li[data-user="${doomedUser}"] .badge[data-tone="down"]`);
      out.after_user_disable = await statusText(page);
    }
    await visit("users");

    await press('#nav a[href="#/audit"]');
    await onPage(page, "audit");
    await page.fill("#audit-kind", "admin.api_call");
    await press('#audit-filter button[type="submit"]');
    await page.waitForSelector("#audit-events li");
    await page.waitForFunction(() => [...document.querySelectorAll("#audit-events li")].every((li) => li.dataset.kind === "admin.api_call"));
    out.audit_kinds = await page.$$eval("#audit-events li", (items) => [...new Set(items.map((i) => i.dataset.kind))]);
    await press("#verify");
    await page.waitForSelector("#verify-result[data-intact]");
    out.verify = await page.getAttribute("#verify-result", "data-intact");
    await visit("audit");

    await press("#logout");
    await page.waitForSelector('body[data-view="signin"]');
    out.after_logout = await statusText(page);
    out.csp_violations = await page.evaluate(() => window.__csp);
    out.console = seen.console;
    out.refreshes = seen.statuses.filter((s) => s.includes("/session/refresh"));
  } finally {
    await context.close();
  }
  return out;
}

// An authority with sessions off: the page says what to configure.
async function sessionsOff(browser, shots) {
  const context = await browser.newContext(PHONE);
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const seen = await watch(context, page);
  const out = {};
  try {
    await page.goto(env("OFF_URL"), { waitUntil: "networkidle" });
    await page.waitForSelector('body[data-view="setup"]');
    out.title = await page.textContent("#setup-title");
    out.text = await page.textContent("#setup-body");
    out.signin_visible = await page.isVisible("#login-form");
    out.axe = await audit(page);
    out.layout = await layout(page);
    await shots.shoot(page, "sessions-off");
    out.csp_violations = await page.evaluate(() => window.__csp);
    out.console = seen.console;
  } finally {
    await context.close();
  }
  return out;
}

// A user without the admin role: the admin API refuses, the page says so and shows nothing.
async function refused(browser, shots) {
  const context = await browser.newContext(DESKTOP);
  context.setDefaultTimeout(STEP_TIMEOUT);
  const page = await context.newPage();
  const seen = await watch(context, page);
  const out = {};
  try {
    await page.goto(env("CONSOLE_URL"), { waitUntil: "networkidle" });
    await page.waitForSelector('body[data-view="signin"]');
    // A wrong password first: said at once, both fields marked, the focus on the password.
    await page.fill("#username", env("OTHER_USER"));
    await page.fill("#password", "not the password");
    await page.click("#login");
    await page.waitForSelector("#login-error:not(:empty)");
    out.wrong_password = await page.evaluate(() => ({
      text: document.querySelector("#login-error").textContent,
      role: document.querySelector("#login-error").getAttribute("role"),
      invalid: ["username", "password"].map((id) => document.getElementById(id).getAttribute("aria-invalid")),
      focused: document.activeElement && document.activeElement.id,
    }));
    await page.fill("#password", env("OTHER_PASSWORD"));
    await page.click("#login");
    await page.waitForSelector('body[data-view="refused"]');
    out.view = await page.evaluate(() => document.body.dataset.view);
    out.title = await page.textContent("#refused-title");
    out.data_shown = await page.$$eval("#page-body *, #board, #clients, #users", (items) => items.length);
    out.axe = await audit(page);
    await shots.shoot(page, "refused");
    out.statuses = seen.statuses.filter((s) => s.includes("/admin/v1/"));
    out.csp_violations = await page.evaluate(() => window.__csp);
    out.console = seen.console;
  } finally {
    await context.close();
  }
  return out;
}

async function main() {
  const browser = await launch();
  const shots = screenshots(env("ARTIFACTS_DIR"));
  const doomed = env("DOOMED").split(",");
  const out = {};
  try {
    out.phone = await tour(browser, shots, "phone", PHONE, doomed[0], null);
    out.desktop = await tour(browser, shots, "desktop", DESKTOP, doomed[1], env("DOOMED_USER"));
    out.other = await refused(browser, shots);
    out.off = await sessionsOff(browser, shots);
  } finally {
    await browser.close();
  }
  out.screenshots = shots.taken;
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((error) => {
  process.stderr.write(`console.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
