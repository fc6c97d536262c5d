// Drives Debian's headless Chromium for tests/dashboard.rs through
// puppeteer-core: one JSON command a line on stdin, one JSON answer a line
// on stdout. The test decides what is right; this only reads the page.
//
//   {"cmd":"open","url":…}                 -> {"url", "cookies":[{name,httpOnly,sameSite}], "js_cookie"}
//   {"cmd":"read"}                         -> {"calls", "snapshot", "link", "campaigns":{id:{state,…counters}}}
//   {"cmd":"shot","width","height","path"} -> {} (a full-page PNG at that viewport)
//   {"cmd":"foreign"}                      -> {"requests":[urls not on the page's origin]}
//   {"cmd":"quit"}
"use strict";

const readline = require("readline");
const puppeteer = require("puppeteer-core");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

async function main() {
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // The test may run as root in a container: no sandbox, no /dev/shm.
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  let origin = null;
  const foreign = [];
  page.on("request", (r) => {
    if (origin && !r.url().startsWith(origin) && !r.url().startsWith("data:")) foreign.push(r.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  const commands = {
    async open({ url }) {
      origin = new URL(url).origin;
      await page.goto(url, { waitUntil: "domcontentloaded" });
      const cookies = await page.cookies();
      return {
        url: page.url(),
        cookies: cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite })),
        js_cookie: await page.evaluate(() => document.cookie),
      };
    },
    async read() {
      return page.evaluate(() => {
        const text = (sel, root) => {
          const e = (root || document).querySelector(sel);
          return e ? e.textContent : null;
        };
        const campaigns = {};
        for (const a of document.querySelectorAll("article.campaign")) {
          const c = { state: text(".state", a) };
          for (const dd of a.querySelectorAll("dd[data-k]")) c[dd.dataset.k] = Number(dd.textContent);
          campaigns[a.dataset.id] = c;
        }
        const n = Number(text("#calls-count"));
        return {
          calls: Number.isInteger(n) && text("#calls-count") !== "–" ? n : null,
          snapshot: document.body.dataset.snapshot || null,
          link: text("#link"),
          campaigns,
        };
      });
    },
    async shot({ width, height, path }) {
      await page.setViewport({ width, height });
      // The charts redraw at the next snapshot for the new width.
      await new Promise((r) => setTimeout(r, 1500));
      await page.screenshot({ path, fullPage: true });
      await page.setViewport({ width: 1280, height: 800 });
      return {};
    },
    async foreign() {
      return { requests: foreign, page_errors: errors };
    },
  };

  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      console.log(JSON.stringify({ error: "bad command: " + e }));
      continue;
    }
    if (cmd.cmd === "quit") break;
    const f = commands[cmd.cmd];
    try {
      const out = f ? await f(cmd) : { error: "no command " + cmd.cmd };
      console.log(JSON.stringify(out));
    } catch (e) {
      console.log(JSON.stringify({ error: String(e && e.stack || e) }));
    }
  }
  await browser.close();
}

main().catch((e) => {
  console.log(JSON.stringify({ error: "launch: " + String(e && e.stack || e) }));
  process.exit(1);
});
