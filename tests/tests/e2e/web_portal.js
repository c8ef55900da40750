// Drives the web-portal page in headless Debian chromium through playwright-core, for the
// `web_portal` e2e test (which starts the servers, runs this and checks what it reports).
//
// Input (environment): PORTAL_URL, EVIL_URL (a page on an origin the authority does not allow),
// AUTHORITY_URL, CHROMIUM (executable), PORTAL_USER, PORTAL_PASSWORD, ARTIFACTS_DIR (where the
// screenshots go). Output: one JSON object on stdout with what the browser saw. Assertions live
// in the Rust test; this script only fails when the page does not reach a step at all.
//
// Two browser contexts: a phone (390x844, mobile viewport rules, touch) and a desktop
// (1280x800). Each starts with no cookies and no storage.
"use strict";

const { env, STEP_TIMEOUT, PHONE, DESKTOP, launch, audit, screenshots } = require("./browser");

const SESSION_COOKIE = "__Host-gha-session";

// Everything a page reports that a user would never want in its console.
function watch(page) {
  const seen = { console: [], requests: [] };
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") seen.console.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => seen.console.push(`pageerror: ${e.message}`));
  page.on("request", (r) => seen.requests.push(`${r.method()} ${r.url()}`));
  return {
    // What happened since the last call.
    take() {
      return { console: seen.console.splice(0), requests: seen.requests.splice(0) };
    },
  };
}

const view = (page, name) => page.waitForSelector(`body[data-view="${name}"]`);
const texts = (page, selector) => page.$$eval(selector, (items) => items.map((i) => i.textContent));

// axe-core in the page (evaluated, not a <script> tag: the page's CSP forbids inline script).
// The page as a phone shows it: layout, sizes, the error and signed-in states, a lost session.
async function phone(browser, shots, user, password) {
  const context = await browser.newContext(PHONE);
  context.setDefaultTimeout(STEP_TIMEOUT);
  const out = {};
  try {
    const page = await context.newPage();
    const events = watch(page);
    await page.goto(env("PORTAL_URL"), { waitUntil: "networkidle" });
    await view(page, "signed-out");
    out.fresh_load = events.take();
    out.layout = await page.evaluate(() => {
      const button = document.querySelector("#login").getBoundingClientRect();
      return {
        client_width: document.documentElement.clientWidth,
        scroll_width: document.documentElement.scrollWidth,
        login_button: { width: button.width, height: button.height },
        input_font_px: parseFloat(getComputedStyle(document.querySelector("#username")).fontSize),
      };
    });
    out.axe_signed_out = await audit(page);
    await shots.shoot(page, "phone-signed-out");

    // A wrong password: announced at once, both fields marked, focus back on the password.
    await page.fill("#username", user);
    await page.fill("#password", "not the password");
    await page.tap("#login");
    await page.waitForSelector("#error:not(:empty)");
    out.error = await page.evaluate(() => {
      const error = document.querySelector("#error");
      return {
        role: error.getAttribute("role"),
        text: error.textContent,
        visible: error.getBoundingClientRect().height > 0,
        view: document.body.dataset.view,
        invalid: ["username", "password"].map((id) => document.getElementById(id).getAttribute("aria-invalid")),
        focused: document.activeElement && document.activeElement.id,
      };
    });
    out.axe_error = await audit(page);
    await shots.shoot(page, "phone-error");

    await page.fill("#password", password);
    await page.tap("#login");
    await view(page, "signed-in");
    await page.waitForSelector("#jobs li");
    out.who = await page.textContent("#who");
    out.jobs = await texts(page, "#jobs .job-title");
    out.axe_signed_in = await audit(page);
    await shots.shoot(page, "phone-signed-in");

    // The session disappears behind the page's back (cookie gone: expired, cleared): a reload
    // says so instead of showing a bare form.
    await context.clearCookies();
    await page.reload();
    await page.waitForSelector('#status[data-tone="warning"]');
    out.ended = await page.evaluate(() => ({
      view: document.body.dataset.view,
      status: document.querySelector("#status").textContent,
      remembered: localStorage.length,
    }));
    await shots.shoot(page, "phone-session-ended");
  } finally {
    await context.close();
  }
  return out;
}

// The desktop: keyboard sign-in, the cookie, resume, a foreign origin, sign out.
async function desktop(browser, shots, user, password) {
  const portal = env("PORTAL_URL");
  const authority = env("AUTHORITY_URL");
  const context = await browser.newContext(DESKTOP);
  context.setDefaultTimeout(STEP_TIMEOUT);
  const sessionCookie = async () => (await context.cookies(authority)).filter((c) => c.name === SESSION_COOKIE);
  const out = {};
  try {
    const page = await context.newPage();
    const events = watch(page);
    await page.goto(portal, { waitUntil: "networkidle" });
    await view(page, "signed-out");
    out.fresh_load = events.take();
    out.client_width = await page.evaluate(() => document.documentElement.clientWidth);
    out.axe_signed_out = await audit(page);
    await shots.shoot(page, "desktop-signed-out");

    // Keyboard only: Tab into the form, type, Tab to the button (focus ring drawn), Enter.
    const focused = () => page.evaluate(() => document.activeElement && document.activeElement.id);
    await page.keyboard.press("Tab");
    out.first_focus = await focused();
    await page.keyboard.type(user);
    await page.keyboard.press("Tab");
    await page.keyboard.type(password);
    await page.keyboard.press("Tab");
    out.button_focus = await page.evaluate(() => {
      const style = getComputedStyle(document.activeElement);
      return { id: document.activeElement.id, outline: `${style.outlineStyle} ${style.outlineWidth}` };
    });
    await page.keyboard.press("Enter");
    await view(page, "signed-in");
    await page.waitForSelector("#jobs li");
    out.who = await page.textContent("#who");
    out.focus_after_login = await focused();
    out.jobs = await texts(page, "#jobs .job-title");
    out.badges = await texts(page, "#jobs .badge");
    out.jobs_summary = await page.textContent("#jobs-summary");
    out.axe_signed_in = await audit(page);
    await shots.shoot(page, "desktop-signed-in");
    out.cookies_after_login = await sessionCookie();
    // What page scripts can see: no readable cookie, and in storage only the mark.
    out.page_storage = await page.evaluate(() => ({
      document_cookie: document.cookie,
      local_storage: Object.fromEntries(Object.entries(localStorage)),
      session_storage: sessionStorage.length,
    }));

    // A reload loses the in-memory access token; the page resumes through /session/refresh.
    await page.reload();
    await page.waitForSelector("#jobs li");
    out.who_after_reload = await page.textContent("#who");
    out.jobs_after_reload = await texts(page, "#jobs .job-title");
    out.cookies_after_reload = await sessionCookie();

    // A page on an origin the authority does not allow tries to use the session.
    const attacker = await context.newPage();
    await attacker.goto(env("EVIL_URL"));
    out.cross_origin = await attacker.evaluate(async (authorityUrl) => {
      const result = {};
      // With the CSRF header: CORS preflight, which the authority does not grant this origin.
      try {
        const r = await fetch(authorityUrl + "/session/refresh", {
          method: "POST",
          credentials: "include",
          headers: { "X-GHA-CSRF": "1" },
        });
        result.with_header = { status: r.status, body: await r.text() };
      } catch (e) {
        result.with_header = { error: String(e) };
      }
      // Without it, as a "simple" request (what a form post could do): sent, but refused.
      try {
        const r = await fetch(authorityUrl + "/session/refresh", {
          method: "POST",
          credentials: "include",
          mode: "no-cors",
        });
        result.simple = { type: r.type };
      } catch (e) {
        result.simple = { error: String(e) };
      }
      return result;
    }, authority);
    await attacker.close();
    out.cookies_after_cross_origin = await sessionCookie();

    // The session survived the attempt: another reload resumes it with the same cookie.
    await page.reload();
    await view(page, "signed-in");
    await page.waitForSelector("#jobs li");
    out.cookies_after_second_reload = await sessionCookie();
    await page.click("#logout");
    await view(page, "signed-out");
    out.status_after_logout = await page.textContent("#status");
    out.focus_after_logout = await focused();
    out.jobs_after_logout = await page.$$eval("#jobs li", (items) => items.length);
    out.storage_after_logout = await page.evaluate(() => localStorage.length);
    out.cookies_after_logout = await sessionCookie();
  } finally {
    await context.close();
  }
  return out;
}

async function main() {
  const browser = await launch();
  const shots = screenshots(env("ARTIFACTS_DIR"));
  const out = {};
  try {
    const user = env("PORTAL_USER");
    const password = env("PORTAL_PASSWORD");
    out.phone = await phone(browser, shots, user, password);
    out.desktop = await desktop(browser, shots, user, password);
  } finally {
    await browser.close();
  }
  out.screenshots = shots.taken;
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((error) => {
  process.stderr.write(`web_portal.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
