// Health: agent state, event rates (from successive polls), lost counters.
import { get, Health } from "../api";
import { append, clear, fmtTime, h, kv } from "../dom";

export async function healthPage(root: HTMLElement): Promise<() => void> {
  const body = h("div", { id: "health" });
  append(root, h("h1", {}, "Health"), body);
  let prev: { t: number; seen: Map<string, number>; total: number } | null = null;
  const draw = async () => {
    const hl = await get<Health>("/health");
    const now = performance.now();
    const rate = (n: number, p: number | undefined) =>
      prev && p !== undefined ? `${(((n - p) * 1000) / (now - prev.t)).toFixed(1)}/s` : "…";
    const lost = Object.entries(hl.events_lost);
    clear(body);
    append(body,
      kv([["Status", h("span", { class: `state state-${hl.status}` }, hl.status)],
        ["Events seen", `${hl.events_seen} (${rate(hl.events_seen, prev?.total)})`],
        ["Events lost", lost.length ? lost.map(([c, n]) => `${c}: ${n}`).join(", ") : "none"],
        ["Incidents", String(hl.incidents)], ["Uptime", `${hl.uptime_seconds} s`]]),
      h("h2", {}, "Agents"),
      h("table", { class: "list" },
        h("thead", {}, h("tr", {}, ...["Host", "State", "Last event", "Seen", "Rate", "Lost"].map((t) => h("th", {}, t)))),
        h("tbody", {}, ...hl.agents.map((a) => {
          const l = Object.entries(a.events_lost);
          return h("tr", {}, h("td", {}, a.host), h("td", {}, h("span", { class: `state state-${a.state}` }, a.state)),
            h("td", { class: "time" }, fmtTime(a.last_event)), h("td", { class: "num" }, String(a.events_seen)),
            h("td", { class: "num" }, rate(a.events_seen, prev?.seen.get(a.host_id))),
            h("td", { class: l.some(([, n]) => n > 0) ? "lost" : "" }, l.length ? l.map(([c, n]) => `${c}: ${n}`).join(", ") : "0"));
        }))));
    prev = { t: now, total: hl.events_seen, seen: new Map(hl.agents.map((a) => [a.host_id, a.events_seen])) };
  };
  await draw();
  const timer = window.setInterval(() => void draw().catch(() => {}), 5000);
  return () => clearInterval(timer);
}
