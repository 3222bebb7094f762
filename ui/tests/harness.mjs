// Shared set-up for browser tests and the benchmark: build the UI and the real `causeway`
// binary, ingest the fixtures the real agent recorded (tests/fixtures) into a temporary
// store, start `causeway server` over it on a free port, launch Debian's Chromium (never a
// downloaded browser).
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const UI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = path.resolve(UI, "..");
export const ARTIFACTS = path.join(UI, "artifacts");
export const FIXTURES = path.join(REPO, "tests/fixtures");
export const SCREENSHOTS = path.join(ARTIFACTS, "screenshots");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** Build ui/dist (if missing) and `causeway` with it embedded; returns the binary. */
export function buildServer({ release = false } = {}) {
  if (!existsSync(path.join(UI, "dist/index.html"))) {
    execFileSync("npm", ["run", "build"], { cwd: UI, stdio: "inherit" });
  }
  const args = ["build", "-q", "-p", "causeway-cli"];
  if (release) args.push("--release");
  execFileSync("cargo", args, { cwd: REPO, stdio: "inherit" });
  const target = process.env.CARGO_TARGET_DIR ?? path.join(REPO, "target");
  return path.join(target, release ? "release" : "debug", "causeway");
}

/** The recorded events of fixture `name` (reverse shell, dropper, build, xss). */
export function fixtureEvents(name) {
  const plain = path.join(FIXTURES, `${name}.jsonl`);
  const text = existsSync(plain) ? readFileSync(plain, "utf8")
    : gunzipSync(readFileSync(`${plain}.gz`)).toString("utf8");
  return text.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** `causeway ingest` of the fixtures into a new temporary store; returns its directory. */
export function ingestFixtures(bin, names = ["revshell", "dropper", "build", "xss"]) {
  const dir = mkdtempSync(path.join(tmpdir(), "causeway-ui-store-"));
  const files = names.map((n) => {
    const plain = path.join(FIXTURES, `${n}.jsonl`);
    if (existsSync(plain)) return plain;
    const out = path.join(dir, `${n}.jsonl`);
    writeFileSync(out, gunzipSync(readFileSync(`${plain}.gz`)));
    return out;
  });
  execFileSync(bin, ["ingest", "--data-dir", dir, ...files], { stdio: ["ignore", "ignore", "inherit"] });
  return dir;
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on("error", reject);
  });
}

/** Start `causeway server --data-dir DIR` (and `args`); resolves when it answers. */
export async function startServer(bin, dir, args = []) {
  return start(bin, ["server", "--data-dir", dir, ...args], (h) => h.ok);
}

/** Start `causeway up --data-dir DIR` (agent + node, needs root); resolves once the agent runs. */
export async function startUp(bin, dir) {
  return start(bin, ["up", "--data-dir", dir], async (h) => h.ok && (await h.json()).agents?.[0]?.state === "running");
}

async function start(bin, args, ready) {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const proc = spawn(bin, [...args, "--listen", listen], { stdio: ["ignore", "inherit", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const base = `http://${listen}`;
  for (let i = 0; i < 900; i++) {
    if (proc.exitCode !== null) throw new Error(`server exited: ${stderr}`);
    try { if (await ready(await fetch(`${base}/api/v1/health`))) return { proc, base }; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  throw new Error(`server did not start: ${stderr}`);
}

export async function launch() {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const profile = mkdtempSync(path.join(tmpdir(), "causeway-chromium-"));
  // A persistent context on a fresh profile directory is playwright's spelling of
  // --user-data-dir; it is a BrowserContext (newPage, close) like a browser.
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--no-first-run", "--disable-sync"],
  });
}

/** A page that records console errors, page errors and dialogs (none may happen). */
export async function newPage(browser) {
  const page = await browser.newPage();
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("dialog", async (d) => { problems.push(`dialog: ${d.message()}`); await d.dismiss(); });
  return { page, problems };
}

/** Click a graph node by id, at its rendered position. */
export async function clickNode(page, id) {
  const pos = await page.evaluate((nid) => {
    const n = window.__cy.getElementById(nid);
    const box = window.__cy.container().getBoundingClientRect();
    const p = n.renderedPosition();
    return { x: box.left + p.x, y: box.top + p.y };
  }, id);
  await page.mouse.click(pos.x, pos.y);
}
