// Drives the cluster page (GET / on a node's admin endpoint) in a real,
// headless Chromium through playwright-core. Run by tests/browser.rs, which
// talks to it in lines:
//
//   node drive.mjs failover ADMIN_URL SCREENSHOT.png
//   -> LEADER n1                       the page shows a leader
//   <- KILLED                          the test killed that leader (kill -9)
//   -> NEW-LEADER n3 in 640 ms         shown, with a timeline entry, no reload
//   -> LATE-PAGE n1 1.4 s ago          a page opened after the kill shows
//                                      when the dead n1 was last heard from
//   -> SCREENSHOT path                 (of the first page)
//
//   node drive.mjs actions ADMIN_URL TOKEN     (a node with tokens and
//                                              protect-reads, that leads)
//   -> LOCKED                          no data shown, a token asked for
//   -> LEADER n1                       with the token: data, live timeline
//   -> CANCELLED                       step-down, then Cancel in the dialog
//   <- GO                              the test saw the node still leads
//   -> STEPPED-DOWN 200: stepped down  step-down, then Yes
//
// Any failure prints `FAIL reason` and exits 1. Environment:
// TENURE_PLAYWRIGHT (the playwright-core package directory) and
// TENURE_CHROMIUM (the browser, /usr/bin/chromium by default).
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [mode, url, arg] = process.argv.slice(2);
const NEW_LEADER_BOUND_MS = 2000;

function fail(reason) {
  console.log(`FAIL ${reason}`);
  process.exit(1);
}

if (!["failover", "actions"].includes(mode) || !url || !arg) {
  fail("usage: drive.mjs failover ADMIN_URL SCREENSHOT.png | actions ADMIN_URL TOKEN");
}
const pkg = process.env.TENURE_PLAYWRIGHT;
if (!pkg) fail("TENURE_PLAYWRIGHT names no playwright-core directory");
const { chromium } = await import(pathToFileURL(join(pkg, "index.mjs")).href);

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expectLine(wanted, boundMs) {
  const timer = new Promise((_, reject) =>
    setTimeout(() => reject(new Error(`no ${wanted} on stdin within ${boundMs} ms`)), boundMs).unref());
  const { value, done } = await Promise.race([lines.next(), timer]);
  if (done || value.trim() !== wanted) throw new Error(`expected ${wanted} on stdin, got ${done ? "EOF" : value}`);
}

/** What the page shows, for failure messages. */
async function describe(page) {
  return page.evaluate(() => JSON.stringify({
    leader: document.getElementById("leader").dataset.leader,
    timeline: document.querySelectorAll("#timeline li").length,
    stepDownDisabled: document.getElementById("step-down").disabled,
    error: document.getElementById("status-error").textContent,
    connection: document.getElementById("connection").textContent,
    actions: document.getElementById("actions-off").textContent,
  })).catch((e) => `(not readable: ${e.message})`);
}

/** The last-contact cell of `node`'s row in the members table. */
function contactOf(page, node) {
  return page.$eval(`#members tr[data-node="${node}"] td.contact`, (td) => td.textContent)
    .catch(() => "");
}

async function failover(context, page, problems) {
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response || !response.ok()) fail(`GET ${url} answered ${response && response.status()}`);

  // The leader, once both /status and /watch have spoken.
  await page.waitForFunction(() =>
    document.getElementById("leader").dataset.leader !== "" &&
    document.querySelector("#timeline li[data-leader]") !== null &&
    document.querySelector("#members tbody tr") !== null, null, { timeout: 10000 })
    .catch(() => fail("the page showed no leader within 10 s"));
  const leader = await page.$eval("#leader", (el) => el.dataset.leader);
  const term = Number(await page.textContent("#term"));
  if (problems.length) fail(problems.join("; "));
  // The kit's nodes have no admin tokens: no actions may be offered.
  if (await page.isVisible("#step-down") || await page.isVisible("#transfer")) {
    fail("the page offers operator actions on an endpoint without tokens");
  }

  // Usable on a phone: nothing wider than a 390 px screen.
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 0) fail(`at 390 px the page is ${overflow} px too wide`);
  await page.setViewportSize({ width: 1100, height: 900 });

  // A reload would lose this mark.
  await page.evaluate(() => { window.tenureNotReloaded = true; });
  const entriesBefore = await page.$$eval("#timeline li", (l) => l.length);
  console.log(`LEADER ${leader}`);

  await expectLine("KILLED", 60000);
  const killed = Date.now();
  await page.waitForFunction(([old, before]) => {
    const now = document.getElementById("leader").dataset.leader;
    if (now === "" || now === old) return false;
    const entries = document.querySelectorAll("#timeline li");
    return entries.length > before &&
      document.querySelector(`#timeline li[data-leader="${CSS.escape(now)}"]`) !== null;
  }, [leader, entriesBefore], { timeout: NEW_LEADER_BOUND_MS, polling: 20 })
    .catch(async () => {
      const shown = await page.$eval("#leader", (el) => el.dataset.leader).catch(() => "?");
      fail(`within ${NEW_LEADER_BOUND_MS} ms of the kill the page showed leader "${shown}", ` +
        `not a new one with a timeline entry (was ${leader})`);
    });
  const took = Date.now() - killed;
  const newLeader = await page.$eval("#leader", (el) => el.dataset.leader);
  const newTerm = Number(await page.textContent("#term"));
  if (!(await page.evaluate(() => window.tenureNotReloaded === true))) fail("the page reloaded");
  if (!(newTerm > term)) fail(`the new leader's term ${newTerm} is not above ${term}`);
  // Let the next /status poll mark the dead leader silent, then keep the view.
  await page.waitForFunction((old) => {
    const row = document.querySelector(`#members tr[data-node="${CSS.escape(old)}"]`);
    return row && row.textContent.includes("silent");
  }, leader, { timeout: 3000 }).catch(() => fail(`the members table never showed ${leader} silent`));
  if (problems.length) fail(problems.join("; "));
  console.log(`NEW-LEADER ${newLeader} in ${took} ms`);

  // A page that never saw the dead leader alive: the figure is the node's.
  const late = await context.newPage();
  watchForProblems(late, problems);
  const lateResponse = await late.goto(url, { waitUntil: "load" });
  if (!lateResponse || !lateResponse.ok()) fail(`GET ${url} answered ${lateResponse && lateResponse.status()}`);
  await late.waitForFunction((old) => {
    const cell = document.querySelector(`#members tr[data-node="${CSS.escape(old)}"] td.contact`);
    return cell !== null && /^\d+\.\d s ago$/.test(cell.textContent);
  }, leader, { timeout: 5000 })
    .catch(async () => fail(`a page opened after the kill showed last contact ` +
      `"${await contactOf(late, leader)}" for the dead ${leader}`));
  const contact = await contactOf(late, leader);
  await late.close();
  if (problems.length) fail(problems.join("; "));
  console.log(`LATE-PAGE ${leader} ${contact}`);

  await page.screenshot({ path: arg, fullPage: true });
  console.log(`SCREENSHOT ${arg}`);
}

async function actions(page, problems) {
  const token = arg;
  const response = await page.goto(url, { waitUntil: "load" });
  if (!response || !response.ok()) fail(`GET ${url} answered ${response && response.status()}`);
  // Without a token: the page loads, says a token is needed, shows no data.
  await page.waitForFunction(() => {
    const error = document.getElementById("status-error");
    return !document.getElementById("access-note").hidden && !error.hidden &&
      error.textContent.includes("need an admin token");
  }, null, { timeout: 10000 }).catch(() => fail("the page never said its reads need a token"));
  if (await page.$eval("#leader", (el) => el.dataset.leader) !== "") fail("data shown without a token");
  if (await page.isEnabled("#step-down")) fail("step-down offered without a token");
  // The 401s were expected here; anything else is not.
  problems.length = 0;
  console.log("LOCKED");

  await page.fill("#token", token);
  await page.press("#token", "Tab"); // `change` fires as the field loses focus
  await page.waitForFunction(() =>
    document.getElementById("leader").dataset.leader !== "" &&
    document.querySelector("#timeline li[data-leader]") !== null &&
    !document.getElementById("step-down").disabled, null, { timeout: 10000 })
    .catch(async () => fail(`with the token the page showed no leader, timeline or step-down within 10 s: ${await describe(page)}`));
  const leader = await page.$eval("#leader", (el) => el.dataset.leader);
  // Requests sent before the token may still have come back 401 meanwhile.
  problems.length = 0;
  console.log(`LEADER ${leader}`);

  await page.click("#step-down");
  await page.waitForSelector("#confirm[open]", { timeout: 2000 })
    .catch(() => fail("step-down asked for no confirmation"));
  const question = await page.textContent("#confirm-text");
  if (!question.includes("step down")) fail(`the dialog asks ${JSON.stringify(question)}`);
  await page.click("#confirm-no");
  await page.waitForSelector("#confirm", { state: "hidden", timeout: 2000 });
  if ((await page.textContent("#action-result")) !== "") fail("Cancel still sent something");
  console.log("CANCELLED");
  await expectLine("GO", 30000);

  await page.click("#step-down");
  await page.waitForSelector("#confirm[open]", { timeout: 2000 });
  await page.click("#confirm-yes");
  await page.waitForFunction(() => /^\d{3}: /.test(document.getElementById("action-result").textContent),
    null, { timeout: 10000 }).catch(() => fail("the step-down got no answer"));
  const result = await page.textContent("#action-result");
  if (problems.length) fail(problems.join("; "));
  console.log(`STEPPED-DOWN ${result}`);
}

/** A CSP violation, a script error or a failed request is a failure of the page. */
function watchForProblems(page, problems) {
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`); });
}

const browser = await chromium.launch({
  executablePath: process.env.TENURE_CHROMIUM || "/usr/bin/chromium",
  // As root (CI) Chromium refuses to start sandboxed.
  args: ["--no-sandbox"],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  watchForProblems(page, problems);
  await (mode === "failover" ? failover(context, page, problems) : actions(page, problems));
} catch (e) {
  fail(e.message);
} finally {
  await browser.close();
}
process.exit(0);
