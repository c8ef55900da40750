// What the browser tests (web_portal.js, console.js) share: their environment, the two screens,
// launching Debian's chromium on a closed network, axe-core and screenshots.

const path = require("path");
const axe = require("axe-core");
const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const STEP_TIMEOUT = 60_000;
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true };
const DESKTOP = { viewport: { width: 1280, height: 800 } };

// Headless chromium at $CHROMIUM. The network is closed: without these flags it hangs on lookups
// and updates.
function launch() {
  return chromium.launch({
    executablePath: env("CHROMIUM"),
    headless: true,
    timeout: STEP_TIMEOUT,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

// axe-core's violations on the page as it is now, and how many rules passed.
async function audit(page) {
  await page.evaluate(axe.source);
  return page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return {
      passes: result.passes.length,
      violations: result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        targets: v.nodes.map((n) => n.target.join(" ")),
      })),
    };
  });
}

// Full-page screenshots into `dir`; `taken` lists their paths.
function screenshots(dir) {
  const taken = [];
  return {
    taken,
    async shoot(page, name) {
      const file = path.join(dir, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true, scale: "css" });
      taken.push(file);
    },
  };
}

module.exports = { env, STEP_TIMEOUT, PHONE, DESKTOP, launch, audit, screenshots };
