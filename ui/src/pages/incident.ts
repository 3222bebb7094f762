// Incident: the causal graph from the entry point to every flagged act, a details panel,
// on-demand expansion, and a timeline of the incident's acts beside the graph.
import type { Core } from "cytoscape";
import { enc, get, IncidentDetail, Trace, TraceNode } from "../api";
import { append, clear, fmtTime, h, kv, sevBadge } from "../dom";
import { contextCount, createGraph, EDGE_KINDS, merge, NODE_KINDS, nodeOf, runLayout, shortName, showContext } from "../graph";
import { argvList } from "./process";

declare global {
  interface Window { __cy?: Core; __causeway?: { incident: string; renderedMs: number; nodes: number } }
}

function userOf(d: any): string {
  const parts = [`uid ${d.uid}`];
  if (d.euid !== d.uid) parts.push(`euid ${d.euid}`);
  parts.push(`gid ${d.gid}`);
  if (d.auid !== null && d.auid !== undefined) parts.push(`auid ${d.auid}`);
  return parts.join(" · ");
}

function exitOf(d: any): string {
  if (!d.exit_time) return "";
  const how = d.exit ? (d.exit.signal != null ? `killed by signal ${d.exit.signal}` : `exit code ${d.exit.code}`) : "";
  return `${fmtTime(d.exit_time)} ${how}`;
}

/** What the shapes and colours mean, and the switch for hidden program files. */
function legend(toggle: HTMLElement): HTMLElement {
  // Colours through the CSSOM: the CSP forbids inline style attributes.
  const sw = (cls: string, color: string, border = false) => {
    const el = h("span", { class: `sw ${cls}` });
    if (border) el.style.borderColor = color; else el.style.backgroundColor = color;
    return el;
  };
  return h("div", { class: "legend", id: "legend" },
    ...NODE_KINDS.map(([k, color, shape]) => h("span", { class: "item" }, sw(`node ${shape}`, color), k)),
    h("span", { class: "item" }, sw("node flagged", "#d64545"), "flagged"),
    ...EDGE_KINDS.map(([k, color, line]) => h("span", { class: "item" },
      sw(`edge ${line}`, color, true), k)), toggle);
}

export async function incidentPage(root: HTMLElement, id: string): Promise<void> {
  const inc = await get<IncidentDetail>(`/incidents/${enc(id)}`);
  const graphEl = h("div", { id: "graph", class: "graph" });
  const details = h("div", { id: "details", class: "details" }, h("p", { class: "muted" }, "Click a node for its details."));
  const timeline = h("ol", { id: "timeline", class: "timeline" });
  const agg = inc.trace.aggregated;
  const toggle = h("button", { type: "button", id: "toggle-context", class: "small" });
  append(root,
    h("section", { class: "incident-head" },
      h("h1", { id: "incident-title" }, inc.title),
      h("div", { class: "meta" }, sevBadge(inc.severity), h("span", { class: "score" }, `score ${inc.score.toFixed(1)}`),
        ...inc.techniques.map((t) => h("span", { class: "tech" }, t)),
        h("span", {}, `hosts: ${inc.hosts.join(", ")}`),
        h("span", { class: "muted" }, `${fmtTime(inc.first_seen)} → ${fmtTime(inc.last_seen)}`),
        agg ? h("span", { class: "agg", id: "aggregated" },
          `showing ${inc.trace.nodes.length} of ${agg.original_nodes} nodes (similar siblings grouped)`) : null)),
    h("div", { class: "incident-body" }, h("div", { class: "graph-wrap" }, graphEl, legend(toggle)),
      h("aside", {}, h("h2", {}, "Details"), details, h("h2", {}, "Timeline"), timeline)));

  const titles = new Map(inc.flags.map((f) => [f.rule_id, f.title]));
  const cy = createGraph(graphEl, inc.trace, titles);
  window.__cy = cy;
  let shown = false;
  const labelToggle = () => {
    const n = contextCount(cy);
    toggle.textContent = `${shown ? "Hide" : "Show"} ${n} program file${n === 1 ? "" : "s"}`;
    toggle.hidden = n === 0;
  };
  labelToggle();
  toggle.addEventListener("click", () => {
    shown = !shown;
    showContext(cy, shown);
    labelToggle();
    void runLayout(cy);
  });
  await new Promise((r) => requestAnimationFrame(() => r(null)));
  await runLayout(cy);
  // A graph fitted whole at a small zoom is unreadable: start on the path from the entry
  // point to the flagged acts, and if even that is too large, on the flagged acts.
  const flagged = cy.nodes("[?flagged]");
  if (cy.zoom() < 0.8 && flagged.nonempty()) {
    cy.fit(cy.nodes(".path"), 30);
    if (cy.zoom() < 0.6) cy.fit(flagged.closedNeighborhood(), 40);
  }
  await new Promise((r) => requestAnimationFrame(() => r(null)));
  window.__causeway = { incident: id, renderedMs: performance.now(), nodes: cy.nodes().length };
  document.body.dataset.rendered = id;

  const relayout = async () => { await runLayout(cy); };

  const expand = async (n: TraceNode, direction: "forward" | "backward") => {
    const t = await get<Trace>(`/processes/${enc(n.id)}/trace`, { direction, depth: 1, max_nodes: 60, collapse: "false" });
    if (merge(cy, t) > 0) await relayout();
  };

  const expandGroup = async (g: TraceNode) => {
    const t = await get<Trace>(`/processes/${enc(g.data.parent)}/trace`, { direction: "forward", depth: 1, max_nodes: 20000, collapse: "false" });
    const members = new Set<string>(g.data.members);
    const keep: Trace = { nodes: t.nodes.filter((x) => members.has(x.id)), edges: t.edges };
    cy.getElementById(g.id).remove();
    merge(cy, keep);
    await relayout();
  };

  const show = (n: TraceNode) => {
    clear(details);
    const d = n.data ?? {};
    append(details, h("h3", { id: "details-title" }, n.label));
    if (n.flagged) {
      const flags = inc.flags.filter((f) => n.rules.includes(f.rule_id));
      append(details, h("div", { class: "flags" }, ...flags.map((f) => h("div", { class: "flag" },
        h("strong", {}, f.title), " ", h("span", { class: "tech" }, f.techniques.join(", ")),
        h("div", { class: "muted" }, `${f.rule_id} · ${fmtTime(f.time)}`), h("div", {}, f.message)))));
    }
    if (n.kind === "process") {
      append(details, kv([["pid", String(d.pid)], ["exe", h("code", {}, d.exe)], ["argv", argvList(d.argv ?? [])],
        ["User", userOf(d)], ["cwd", h("code", {}, d.cwd ?? "")], ["tty", d.tty ?? ""],
        ["Container", d.container ? `${d.container.runtime} ${d.container.id}` : ""], ["Service", d.service ?? ""],
        ["Host", d.host ? `${d.host.name}` : n.host ?? ""], ["Started", fmtTime(d.start_time)], ["Exited", exitOf(d)],
        ["Id", h("code", {}, n.id)]]),
        h("div", { class: "actions" },
          h("button", { type: "button", id: "expand-back", onclick: () => void expand(n, "backward") }, "Expand causes"),
          h("button", { type: "button", id: "expand-fwd", onclick: () => void expand(n, "forward") }, "Expand effects"),
          h("a", { id: "open-explorer", href: `#/process/${enc(d.id ?? n.id)}` }, "Open in explorer")));
    } else if (n.kind === "group") {
      append(details, kv([["Collapsed", `${d.count} similar ${d.member_kind} nodes`], ["Edge", d.edge_kind]]),
        h("div", { class: "actions" }, h("button", { type: "button", id: "expand-group",
          onclick: () => void expandGroup(n) }, `Show all ${d.count}`)));
    } else {
      append(details, kv(Object.entries(d).map(([k, v]) => [k, typeof v === "string" ? h("code", {}, v) : JSON.stringify(v)] as [string, any])),
        kv([["Host", n.host ?? ""], ["First seen", fmtTime(n.time)]]));
    }
  };

  // The graph selects the timeline: a tapped node's acts are highlighted there.
  cy.on("tap", "node", (e) => {
    const n = nodeOf(e.target);
    show(n);
    const lis = [...timeline.querySelectorAll("li")];
    for (const li of lis) li.classList.toggle("selected", li.dataset.node === n.id || li.dataset.source === n.id);
    lis.find((li) => li.classList.contains("selected"))?.scrollIntoView({ block: "nearest" });
  });

  // Timeline: every edge (an act) and flag, in time order.
  // Short names in the timeline (a process as name [pid], as in the graph); the details
  // panel has the full command line.
  const label = (nid: string) => {
    const n = cy.getElementById(nid).data("node") as TraceNode | undefined;
    if (!n) return nid;
    return n.kind === "process" ? `${shortName(n)} [${n.data?.pid}]` : n.label;
  };
  type Item = { time: string; text: string; node: string; source: string; flagged: boolean };
  const byId = new Map(inc.trace.nodes.map((x) => [x.id, x]));
  const items: Item[] = inc.trace.edges.map((e) => ({
    time: e.time, node: e.target, source: e.source, flagged: !!byId.get(e.target)?.flagged,
    text: `${label(e.source)} ${e.kind.replace(/_/g, " ")}${e.count > 1 ? ` ×${e.count}` : ""} ${label(e.target)}`,
  }));
  // A flag names a process; its node is the flagged image of that process.
  const flaggedImage = (pid: string, rule: string) => inc.trace.nodes.find((x) => x.kind === "process" &&
    x.data?.id === pid && x.rules.includes(rule))?.id ?? inc.trace.nodes.find((x) => x.data?.id === pid)?.id ?? pid;
  for (const f of inc.flags) {
    const node = flaggedImage(f.process_id, f.rule_id);
    items.push({ time: f.time, node, source: node, flagged: true, text: `⚑ ${f.title}: ${f.message}` });
  }
  items.sort((a, b) => a.time.localeCompare(b.time));
  const MAX = 400;
  append(timeline, ...items.slice(0, MAX).map((it) => h("li", { class: it.flagged ? "flagged" : "", "data-node": it.node, "data-source": it.source, onclick: () => {
    const el = cy.getElementById(it.node);
    if (el.nonempty()) { cy.$(":selected").unselect(); el.select(); cy.animate({ center: { eles: el }, zoom: Math.max(cy.zoom(), 0.8) }, { duration: 200 }); show(nodeOf(el as any)); }
  } }, h("span", { class: "time" }, fmtTime(it.time).slice(11)), " ", it.text)));
  if (items.length > MAX) append(timeline, h("li", { class: "muted" }, `${items.length - MAX} more…`));
}
