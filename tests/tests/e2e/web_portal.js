// Drives the web-portal page in headless Debian chromium through playwright-core, for the
// `web_portal` e2e test (which starts the servers, runs this and checks what it reports).
//
// Input (environment): PORTAL_URL, EVIL_URL (a page on an origin the authority does not allow),
// AUTHORITY_URL, CHROMIUM (executable), PORTAL_USER, PORTAL_PASSWORD. Output: one JSON object on
// stdout with what the browser saw. Assertions live in the Rust test; this script only fails
// when the page does not reach a step at all.
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const STEP_TIMEOUT = 60_000;

async function main() {
  const portal = env("PORTAL_URL");
  const evil = env("EVIL_URL");
  const authority = env("AUTHORITY_URL");
  // A fresh profile every run: no cookies or cache from elsewhere.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "gha-auth-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env("CHROMIUM"),
    headless: true,
    timeout: STEP_TIMEOUT,
    // The network is closed: without these, chromium hangs on lookups and updates.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context.setDefaultTimeout(STEP_TIMEOUT);
  const out = { console: [] };
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
    const sessionCookie = async () =>
      (await context.cookies(authority)).filter((c) => c.name === "__Host-gha-session");

    // Log in and see the jobs.
    await page.goto(portal);
    await page.waitForSelector("#login-form:not([hidden])");
    out.status_before_login = await page.textContent("#status");
    await page.fill("#username", env("PORTAL_USER"));
    await page.fill("#password", env("PORTAL_PASSWORD"));
    await page.click("#login");
    await page.waitForSelector("#jobs li");
    out.jobs = await page.$$eval("#jobs li", (items) => items.map((i) => i.textContent));
    out.status_logged_in = await page.textContent("#status");
    out.cookies_after_login = await sessionCookie();
    // What page scripts can see: no readable cookie, nothing stored.
    out.page_storage = await page.evaluate(() => ({
      document_cookie: document.cookie,
      local_storage: localStorage.length,
      session_storage: sessionStorage.length,
    }));

    // A reload loses the in-memory access token; the page resumes through /session/refresh.
    await page.reload();
    await page.waitForSelector("#jobs li");
    out.status_after_reload = await page.textContent("#status");
    out.jobs_after_reload = await page.$$eval("#jobs li", (items) => items.map((i) => i.textContent));
    out.cookies_after_reload = await sessionCookie();

    // A page on an origin the authority does not allow tries to use the session.
    const attacker = await context.newPage();
    await attacker.goto(evil);
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
    await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("Logged in:"));
    out.cookies_after_second_reload = await sessionCookie();
    await page.click("#logout");
    await page.waitForSelector("#login-form:not([hidden])");
    out.status_after_logout = await page.textContent("#status");
    out.jobs_after_logout = await page.$$eval("#jobs li", (items) => items.length);
    out.cookies_after_logout = await sessionCookie();
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((error) => {
  process.stderr.write(`web_portal.js: ${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
