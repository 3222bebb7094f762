// Browser tests in real headless Chromium against the demo server (MemoryBackend + fixture).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { ARTIFACTS, FIXTURES, buildServer, clickNode, launch, newPage, startServer } from "./harness.mjs";

let server, browser;
const WEB = "p-1111111111111111";
const SESSION = `${WEB}-1200-179571420000`;
const BASH = `${WEB}-1201-179571420100`;
const CURL = `${WEB}-1202-179571420500`;
const PAYLOAD = `${WEB}-1204-179571421000`;
const XSS = `${WEB}-1205-179571421300`;
const SSHD = `${WEB}-500-179571070000`;
const CLIENT = "p-2222222222222222-4000-179571419800";
const PAYLOAD_FILE = "file:1111111111111111aaaa:/tmp/.x/payload";

before(async () => {
  const bin = buildServer();
  server = await startServer(bin, ["--fixture", path.join(FIXTURES, "demo-events.jsonl"),
    "--incidents", path.join(FIXTURES, "demo-incidents.json"), "--publish-after", "6"]);
  browser = await launch();
});

after(async () => {
  await browser?.close();
  server?.proc.kill();
});

async function openIncident(page, id) {
  await page.goto(`${server.base}/#/incident/${encodeURIComponent(id)}`);
  await page.waitForSelector(`body[data-rendered="${id}"]`, { timeout: 15000 });
}

test("incident list shows incidents with severity, techniques, hosts", async () => {
  const { page, problems } = await newPage(browser);
  await page.goto(`${server.base}/`);
  await page.waitForSelector('#incidents tr[data-id="inc-ssh-payload"]');
  const row = await page.textContent('#incidents tr[data-id="inc-ssh-payload"]');
  assert.match(row, /critical/);
  assert.match(row, /T1003\.008/);
  assert.match(row, /web-1, ws-2/);
  // Filters: severity >= high leaves only the critical one.
  await page.selectOption("select[name=severity]", "high");
  await page.waitForFunction(() => document.querySelectorAll("#incidents tbody tr").length === 1);
  await page.screenshot({ path: path.join(ARTIFACTS, "incidents.png") });
  assert.deepEqual(problems, []);
  await page.close();
});

test("incident graph shows the attack chain; clicking a node shows its details", async () => {
  const { page, problems } = await newPage(browser);
  await openIncident(page, "inc-ssh-payload");
  const g = await page.evaluate(() => ({
    nodes: window.__cy.nodes().map((n) => n.id()),
    flagged: window.__cy.nodes("[?flagged]").map((n) => n.id()),
    edges: window.__cy.edges().map((e) => `${e.data("source")} ${e.data("kind")} ${e.data("target")}`),
  }));
  for (const id of [CLIENT, SSHD, SESSION, BASH, CURL, PAYLOAD, XSS, PAYLOAD_FILE]) {
    assert.ok(g.nodes.includes(id), `node ${id}`);
  }
  for (const e of [`${CLIENT} connect ${SSHD}`, `${SESSION} fork ${BASH}`, `${CURL} write ${PAYLOAD_FILE}`,
    `${PAYLOAD_FILE} exec ${PAYLOAD}`, `${PAYLOAD} fork ${XSS}`]) {
    assert.ok(g.edges.includes(e), `edge ${e}`);
  }
  assert.ok(g.flagged.includes(PAYLOAD) && g.flagged.includes(CURL) && g.flagged.includes(PAYLOAD_FILE));
  assert.ok(!g.flagged.includes(BASH));
  // Layered left to right: each hop of the chain is further right.
  const xs = await page.evaluate((ids) => ids.map((i) => window.__cy.getElementById(i).position().x),
    [SSHD, SESSION, BASH, PAYLOAD, XSS]);
  for (let i = 1; i < xs.length; i++) assert.ok(xs[i] > xs[i - 1], `x order ${xs}`);

  await clickNode(page, PAYLOAD);
  await page.waitForSelector("#details-title");
  const details = await page.textContent("#details");
  assert.match(details, /payload \(1204\)/);
  assert.match(details, /--quiet/);
  assert.match(details, /\/home\/deploy/);
  assert.match(details, /auid 1000/);
  assert.match(details, /Read of \/etc\/shadow/);
  assert.match(details, /T1003\.008/);
  const timeline = await page.textContent("#timeline");
  assert.match(timeline, /curl \(1202\) write \/tmp\/\.x\/payload/);
  await page.screenshot({ path: path.join(ARTIFACTS, "incident.png") });

  // Repetitive siblings are collapsed ("5 more: sleep") and expand on demand.
  const sleeps = () => page.evaluate(() => window.__cy.nodes().filter((n) => n.data("node").label.startsWith("sleep")).length);
  assert.equal(await sleeps(), 3);
  const group = await page.evaluate(() => window.__cy.nodes('[kind = "group"]').map((n) => [n.id(), n.data("node").label]));
  assert.deepEqual(group.map((g) => g[1]), ["5 more: sleep"]);
  await clickNode(page, group[0][0]);
  await page.click("#expand-group");
  await page.waitForFunction(() => window.__cy.nodes('[kind = "group"]').length === 0);
  assert.equal(await sleeps(), 8);
  // Expanding the causes of sshd brings its parent's other inbound flows (none new here)
  // and keeps the graph consistent.
  await clickNode(page, SSHD);
  await page.click("#expand-back");
  await page.waitForTimeout(300);
  assert.ok(await page.evaluate(() => window.__cy.nodes().length) >= 20);
  assert.deepEqual(problems, []);
  await page.close();
});

test("XSS: workload strings are shown as text and run nothing", async () => {
  const { page, problems } = await newPage(browser);
  await page.addInitScript(() => { window.alert = (m) => { window.__alerted = String(m); }; });
  await openIncident(page, "inc-ssh-payload");
  await clickNode(page, XSS);
  await page.waitForSelector("#details ol.argv");
  const args = await page.$$eval("#details ol.argv li", (lis) => lis.map((l) => l.textContent));
  assert.deepEqual(args, ["sh", "-c", "<img src=x onerror=alert(1)>", "<script>alert(2)</script>"]);
  const cwd = await page.textContent("#details");
  assert.match(cwd, /\/tmp\/<b>x<\/b>/);
  const injected = await page.evaluate(() => ({
    imgs: document.querySelectorAll("img").length,
    scripts: [...document.querySelectorAll("script")].filter((s) => !s.src).length,
    bold: document.querySelectorAll("#details b").length,
    alerted: window.__alerted ?? null,
  }));
  assert.deepEqual(injected, { imgs: 0, scripts: 0, bold: 0, alerted: null });
  // Same in the process explorer.
  await page.goto(`${server.base}/#/process/${encodeURIComponent(XSS)}`);
  await page.waitForSelector("#process-detail");
  const text = await page.textContent("#process-detail");
  assert.ok(text.includes("<img src=x onerror=alert(1)>") && text.includes("<script>alert(2)</script>"));
  assert.equal(await page.evaluate(() => document.querySelectorAll("img").length), 0);
  await page.screenshot({ path: path.join(ARTIFACTS, "xss-process.png") });
  assert.deepEqual(problems, []);
  await page.close();
});

test("process explorer walks ancestors and cross-host flows", async () => {
  const { page, problems } = await newPage(browser);
  await page.goto(`${server.base}/#/processes`);
  await page.fill("#proc-search", "sshd");
  await page.press("#proc-search", "Enter");
  await page.waitForSelector("#proc-results a.proc");
  await page.goto(`${server.base}/#/process/${encodeURIComponent(SSHD)}`);
  await page.waitForSelector("#process-detail");
  const t = await page.textContent("#process-detail");
  assert.match(t, /inbound/);
  assert.match(t, /ssh \(4000\)/);
  assert.match(t, /@ws-2/);
  // Follow the peer to the other host.
  await page.click(`#process-detail a[href="#/process/${encodeURIComponent(CLIENT)}"]`);
  await page.waitForFunction(() => document.querySelector("#process-detail h2")?.textContent?.includes("/usr/bin/ssh"));
  await page.screenshot({ path: path.join(ARTIFACTS, "process.png") });
  assert.deepEqual(problems, []);
  await page.close();
});

test("health page shows agents and counters", async () => {
  const { page, problems } = await newPage(browser);
  await page.goto(`${server.base}/#/health`);
  await page.waitForSelector("#health table");
  const t = await page.textContent("#health");
  assert.match(t, /web-1/);
  assert.match(t, /ws-2/);
  assert.match(t, /Events seen/);
  await page.screenshot({ path: path.join(ARTIFACTS, "health.png") });
  assert.deepEqual(problems, []);
  await page.close();
});

test("live: a new incident appears in the open list without reload", async () => {
  const { page, problems } = await newPage(browser);
  await page.goto(`${server.base}/`);
  await page.waitForSelector('#incidents tr[data-id="inc-ssh-payload"]');
  await page.waitForSelector('#incidents tr[data-id="inc-ssh-payload-live"]', { timeout: 20000 });
  assert.deepEqual(problems, []);
  await page.close();
});
