// Benchmark: API p99 latency (incident list; the recorded 5,000-process build incident) and
// time to first render of that incident in headless Chromium, on the real `causeway server`.
// Run: npm run bench   (builds the release binary; needs /usr/bin/chromium)
import path from "node:path";
import { ARTIFACTS, buildServer, ingestFixtures, launch, newPage, startServer } from "../tests/harness.mjs";

const N = Number(process.env.BENCH_REQUESTS ?? 300);

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function latency(base, url) {
  for (let i = 0; i < 10; i++) await (await fetch(base + url)).arrayBuffer(); // warm-up
  const xs = [];
  let bytes = 0;
  for (let i = 0; i < N; i++) {
    const t = performance.now();
    const r = await fetch(base + url);
    bytes = (await r.arrayBuffer()).byteLength;
    if (!r.ok) throw new Error(`${url}: ${r.status}`);
    xs.push(performance.now() - t);
  }
  return { url, p50: pct(xs, 50).toFixed(2), p99: pct(xs, 99).toFixed(2), max: Math.max(...xs).toFixed(2), bytes };
}

const bin = buildServer({ release: true });
const { proc, base } = await startServer(bin, ingestFixtures(bin));
const list = (await (await fetch(`${base}/api/v1/incidents?limit=1000`)).json()).items;
const big = list.find((i) => i.root_process.exe === "/usr/bin/bash" && i.title.includes("Password hashes read"))?.id ?? list[0].id;
try {
  const results = [
    await latency(base, "/api/v1/incidents?limit=100"),
    await latency(base, "/api/v1/incidents?limit=1000"),
    await latency(base, "/api/v1/incidents?severity=high&q=bash&limit=100"),
    await latency(base, `/api/v1/incidents/${big}`),
    await latency(base, `/api/v1/incidents/${big}?max_nodes=2000`),
  ];
  console.table(results);
  const browser = await launch();
  const renders = [];
  for (let i = 0; i < 5; i++) {
    const { page, problems } = await newPage(browser);
    const t = Date.now();
    await page.goto(`${base}/#/incident/${big}`);
    await page.waitForSelector(`body[data-rendered="${big}"]`, { timeout: 30000 });
    const wall = Date.now() - t;
    const r = await page.evaluate(() => window.__causeway);
    renders.push({ run: i, wall_ms: wall, since_navigation_ms: Math.round(r.renderedMs), nodes: r.nodes, problems: problems.length });
    if (i === 0) await page.screenshot({ path: path.join(ARTIFACTS, "bench-big-incident.png") });
    await page.close();
  }
  console.table(renders);
  const worst = Math.max(...renders.map((r) => r.since_navigation_ms));
  const p99 = Math.max(...results.map((r) => Number(r.p99)));
  console.log(`worst API p99 ${p99} ms (goal <= 50); worst first render ${worst} ms (goal <= 1500)`);
  await browser.close();
} finally {
  proc.kill();
}
