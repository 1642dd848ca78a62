// Drives the built playground in headless Chromium and prints what it saw as
// one JSON object on stdout (the cargo test playground_browser asserts on it).
//   node drive.mjs URL DUMP_FILE BIG_DUMP_FILE
// DUMP_FILE: `nginx -T` output of the README's example; BIG_DUMP_FILE: the
// same format, holding the large config to time.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, dumpFile, bigDumpFile] = process.argv.slice(2);
const origin = new URL(url).origin;
const chromiumPath = process.env.UPKEEP_CHROMIUM || "/usr/bin/chromium";
const WAIT = 60_000;

const seen = { requests: [], requestsAfterLoad: [], pageErrors: [], console: [] };

// Records every request of `page`; those made once `loaded.done` is set
// (the page has loaded and finished its first analysis) separately.
function watch(page, loaded) {
  page.on("request", (r) => {
    seen.requests.push(r.url());
    if (loaded.done) seen.requestsAfterLoad.push(r.url());
  });
  page.on("pageerror", (e) => seen.pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") seen.console.push(m.text());
  });
  page.on("worker", (w) => {
    w.on("console", (m) => {
      if (m.type() === "error") seen.console.push("worker: " + m.text());
    });
  });
}

// Waits until an analysis newer than `after` has finished; returns its
// generation and timing as the page recorded them.
async function analysed(page, after) {
  await page.waitForFunction(
    (after) => {
      const s = document.getElementById("status");
      return s.dataset.state === "done" && s.dataset.pending !== "1" && Number(s.dataset.generation || 0) > after;
    },
    after,
    { timeout: WAIT },
  );
  return page.evaluate(() => {
    const s = document.getElementById("status");
    return {
      generation: Number(s.dataset.generation),
      ms: Number(s.dataset.ms),
      lines: Number(s.dataset.lines),
      text: s.textContent,
    };
  });
}

async function paste(page, text) {
  await page.locator(".cm-content").first().click();
  await page.evaluate((text) => {
    const data = new DataTransfer();
    data.setData("text/plain", text);
    document
      .querySelector("#editor .cm-content")
      .dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
  }, text);
}

const ruleIds = (page) =>
  page.$$eval("#findings .finding[data-rule]", (els) => els.map((e) => e.dataset.rule));
const tabPaths = (page) => page.$$eval("#tabs .tab", (els) => els.map((e) => e.dataset.path));

async function main() {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    timeout: WAIT,
  });
  const out = {};
  try {
    const context = await browser.newContext();
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
    const page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    const loaded = { done: false };
    watch(page, loaded);
    await page.goto(url, { waitUntil: "load", timeout: WAIT });
    const first = await analysed(page, 0);
    loaded.done = true;
    out.initial = { ...first, rules: await ruleIds(page) };

    // The options the test runs `upkeep check` with.
    await page.fill("#version", "1.28.0");
    await page.fill("#cpus", "2");
    const withOptions = await analysed(page, first.generation);

    // The README's example, pasted as `nginx -T` output.
    await paste(page, readFileSync(dumpFile, "utf8"));
    await page.waitForFunction(() => document.querySelectorAll("#tabs .tab").length > 1 && document.querySelector("#tabs .tab").dataset.path.startsWith("/"), null, { timeout: WAIT });
    const pasted = await analysed(page, withOptions.generation);
    out.pasted = { ...pasted, rules: await ruleIds(page), tabs: await tabPaths(page) };
    out.pasted.findings = await page.$$eval("#findings .finding[data-rule]", (els) =>
      els.map((e) => ({
        rule: e.dataset.rule,
        location: e.querySelector(".location").textContent,
        label: e.querySelector(".label")?.textContent ?? null,
        related: [...e.querySelectorAll(".related")].map((r) => r.textContent),
        fixDiff: e.querySelector(".fix-diff")?.textContent ?? null,
      })),
    );
    // Inline diagnostics in the editor for the active file.
    out.pasted.lintMarks = await page.locator("#editor .cm-lintRange").count();
    await page.waitForFunction(() => document.querySelector("#fix-all-diff .diff"), null, { timeout: WAIT });
    out.fixAllDiff = await page.textContent("#fix-all-diff .diff");

    // Rule docs one click away.
    await page.locator("#findings .finding .rule").first().click();
    await page.waitForFunction(() => !document.getElementById("explain").hidden && document.getElementById("explain").dataset.rule, null, { timeout: WAIT });
    out.explain = {
      rule: await page.getAttribute("#explain", "data-rule"),
      clicked: await page.locator("#findings .finding .rule").first().textContent(),
      headings: await page.$$eval("#explain-body h3", (els) => els.map((e) => e.textContent)),
    };
    await page.click("#explain-close");

    // A shared link restores the case in a fresh browser context.
    await page.fill("#front-idle", "");
    await page.selectOption("#front", "aws-alb");
    const withFront = await analysed(page, pasted.generation);
    out.withFront = { rules: await ruleIds(page) };
    // The page already carries an older `#s=` hash from earlier edits: wait
    // for the flash that copyLink shows once it has saved the current state.
    await page.evaluate(() => (document.getElementById("flash").textContent = ""));
    await page.click("#copy-link");
    await page.waitForFunction(() => /link/.test(document.getElementById("flash").textContent), null, { timeout: WAIT });
    const link = await page.evaluate(() => location.href);
    out.link = { length: link.length };
    out.markdownButton = await page.click("#copy-markdown").then(() =>
      page.waitForFunction(() => document.getElementById("flash").textContent.includes("Markdown"), null, { timeout: WAIT }),
    ).then(() => page.evaluate(() => navigator.clipboard.readText()));

    const fresh = await browser.newContext();
    const page2 = await fresh.newPage();
    page2.setDefaultTimeout(WAIT);
    const loaded2 = { done: false };
    watch(page2, loaded2);
    await page2.goto(link, { waitUntil: "load", timeout: WAIT });
    await analysed(page2, 0);
    loaded2.done = true;
    out.restored = {
      rules: await ruleIds(page2),
      tabs: await tabPaths(page2),
      front: await page2.inputValue("#front"),
      markdown: await page2.evaluate(() => window.upkeepPlayground.markdownReport()),
    };
    out.originalMarkdown = await page.evaluate(() => window.upkeepPlayground.markdownReport());
    await fresh.close();

    // Apply one fix, then all: the diff goes away.
    await page.selectOption("#front", "");
    const noFront = await analysed(page, withFront.generation);
    await page.waitForFunction(() => document.querySelector("#fix-all-diff .diff"), null, { timeout: WAIT });
    const before = (await ruleIds(page)).length;
    await page.locator("#findings .apply-fix").first().click();
    const afterOne = await analysed(page, noFront.generation);
    out.afterOneFix = { before, after: (await ruleIds(page)).length };
    await page.waitForFunction(() => !document.getElementById("apply-all").disabled, null, { timeout: WAIT });
    await page.click("#apply-all");
    const afterAll = await analysed(page, afterOne.generation);
    await page.waitForFunction(() => /Nothing to fix|not fixed|left/.test(document.getElementById("fix-all-diff").textContent), null, { timeout: WAIT });
    out.afterAll = { fixDiffs: await page.locator("#findings .fix-diff").count(), fixAll: await page.textContent("#fix-all-diff"), generation: afterAll.generation };

    // The large config: analysed in the worker, timed by the page from
    // posting the request to receiving the result.
    out.big = [];
    let gen = afterAll.generation;
    const big = readFileSync(bigDumpFile, "utf8");
    for (let i = 0; i < 3; i++) {
      // Alternate a trailing comment so each paste is a change.
      await paste(page, big + `# run ${i}\n`);
      const r = await analysed(page, gen);
      gen = r.generation;
      out.big.push({ ms: r.ms, lines: r.lines, findings: (await ruleIds(page)).length });
    }
  } finally {
    out.requests = seen.requests;
    out.requestsAfterLoad = seen.requestsAfterLoad;
    out.pageErrors = seen.pageErrors;
    out.consoleErrors = seen.console;
    await browser.close().catch(() => {});
    process.stdout.write(JSON.stringify(out) + "\n");
  }
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
