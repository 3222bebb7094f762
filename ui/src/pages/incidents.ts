// Incidents: a live list with filters and paging.
import { get, IncidentSummary, Page } from "../api";
import { append, clear, fmtTime, h, sevBadge } from "../dom";
import { live } from "../main";

const PAGE = 50;

export async function incidentsPage(root: HTMLElement): Promise<() => void> {
  const sev = h("select", { name: "severity" },
    h("option", { value: "" }, "any severity"),
    ...["low", "medium", "high", "critical"].map((s) => h("option", { value: s }, `≥ ${s}`)));
  const minScore = h("input", { name: "min_score", type: "number", placeholder: "min score", step: "any" });
  const q = h("input", { name: "q", type: "search", placeholder: "search title, host, exe…" });
  const technique = h("input", { name: "technique", placeholder: "technique (T1059)" });
  const host = h("input", { name: "host", placeholder: "host" });
  const total = h("span", { class: "muted", id: "incident-total" });
  const tbody = h("tbody", {});
  const more = h("button", { type: "button", class: "more" }, "Load more");
  let offset = 0;

  const params = () => ({ severity: sev.value, min_score: minScore.value, q: q.value,
    technique: technique.value, host: host.value, limit: PAGE });

  const row = (i: IncidentSummary) => h("tr", { "data-id": i.id },
    h("td", {}, sevBadge(i.severity)),
    h("td", { class: "num" }, i.score.toFixed(1)),
    h("td", {}, h("a", { href: `#/incident/${encodeURIComponent(i.id)}`, class: "title" }, i.title)),
    h("td", {}, ...i.techniques.map((t) => h("span", { class: "tech" }, t))),
    h("td", {}, i.hosts.join(", ")),
    h("td", { class: "time" }, fmtTime(i.first_seen)),
    h("td", { class: "time" }, fmtTime(i.last_seen)));

  const load = async (reset: boolean) => {
    if (reset) offset = 0;
    const page = await get<Page<IncidentSummary>>("/incidents", { ...params(), offset });
    if (reset) clear(tbody);
    append(tbody, ...page.items.map(row));
    offset += page.items.length;
    total.textContent = `${page.total} incident${page.total === 1 ? "" : "s"}`;
    more.hidden = offset >= page.total;
  };

  let timer: number | undefined;
  const reload = () => { clearTimeout(timer); timer = window.setTimeout(() => void load(true).catch(() => {}), 200); };
  for (const el of [sev, minScore, q, technique, host]) el.addEventListener("input", reload);
  more.addEventListener("click", () => void load(false));

  append(root,
    h("section", { class: "toolbar" }, h("h1", {}, "Incidents"), total),
    h("form", { class: "filters", onsubmit: (e: Event) => e.preventDefault() }, sev, minScore, q, technique, host),
    h("table", { class: "list", id: "incidents" },
      h("thead", {}, h("tr", {}, ...["Severity", "Score", "Title", "Techniques", "Hosts", "First seen", "Last seen"].map((t) => h("th", {}, t)))),
      tbody),
    more);
  await load(true);
  // Live: a new or grown incident reloads the visible list (filters stay applied).
  const onLive = () => reload();
  live.add(onLive);
  return () => { live.delete(onLive); clearTimeout(timer); };
}
