// The causal graph view: cytoscape + dagre, top-down from the entry point in causal (and
// time) order. What matters is drawn large and labelled: flagged acts (short name, pid, the
// flag's title) and the path that leads to them; everything else is small, with a short name
// only, and similar siblings arrive collapsed into group nodes (server-side aggregation) that
// expand on demand. Labels are drawn on canvas by cytoscape: workload strings never become HTML.
import cytoscape, { Core, ElementDefinition, NodeSingular } from "cytoscape";
import dagre from "cytoscape-dagre";
import type { Trace, TraceNode, TraceEdge } from "./api";

cytoscape.use(dagre);

const MAX_NAME = 28;

function short(s: string, max = MAX_NAME): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function base(p: string): string {
  return p.split("/").filter(Boolean).pop() ?? p;
}

/** A process's short name: the executable's base name (argv[0] when the exe is unknown). */
export function shortName(n: TraceNode): string {
  const d = n.data ?? {};
  if (n.kind === "process") return base(d.exe || (d.argv ?? [])[0] || n.label);
  if (n.kind === "file") return base(d.path ?? n.label);
  return n.label;
}

/** Flag titles by rule id, for labels. */
export type Titles = Map<string, string>;

function display(n: TraceNode, titles: Titles): string {
  if (n.kind === "group") return short(n.label, 40);
  const name = short(shortName(n));
  const d = n.data ?? {};
  if (n.kind === "process") {
    const head = `${name} [${d.pid}]`;
    if (!n.flagged) return head;
    const t = [...new Set(n.rules.map((r) => titles.get(r) ?? r))];
    // One line for the flags keeps ranks short: the first title, and how many more.
    return `${head}\n⚑ ${short(t[0] ?? "", 40)}${t.length > 1 ? ` (+${t.length - 1})` : ""}`;
  }
  if (n.kind === "file") return n.flagged || n.label.length <= MAX_NAME ? short(n.label, 44) : name;
  return short(n.label, 36);
}

export function nodeDef(n: TraceNode, titles: Titles): ElementDefinition {
  return { group: "nodes", data: { id: n.id, display: display(n, titles), kind: n.kind, flagged: n.flagged, node: n } };
}

export function edgeDef(e: TraceEdge): ElementDefinition {
  return { group: "edges", data: {
    id: e.id ?? `${e.source}|${e.kind}|${e.target}`, source: e.source, target: e.target, kind: e.kind,
    elabel: e.count > 1 ? `${e.kind.replace(/_/g, " ")} ×${e.count}` : e.kind.replace(/_/g, " "), edge: e,
  } };
}

/** Node kinds: colour and shape, shared by the stylesheet and the legend. */
export const NODE_KINDS: [string, string, string][] = [
  ["process", "#5b7fa8", "round-rectangle"],
  ["file", "#8a9a5b", "tag"],
  ["endpoint", "#b38b4d", "diamond"],
  ["act", "#9a6fb0", "hexagon"],
  ["group", "#e4e8ee", "barrel"],
];
/** Edge kinds by family: colour, line style, the kinds in it. */
export const EDGE_KINDS: [string, string, string, string[]][] = [
  ["spawned", "#7b8794", "solid", ["spawned"]],
  ["executed", "#d9822b", "solid", ["executed", "executed_file", "executed_file_written_by"]],
  ["connected", "#2f80ed", "dashed", ["connected", "listened_on"]],
  ["wrote", "#3f9142", "solid", ["wrote", "chmod", "renamed", "renamed_to", "unlinked"]],
  ["read", "#8e44ad", "solid", ["read"]],
  ["other", "#c0392b", "dotted", ["ptraced", "changed_credentials"]],
];

const STYLE: cytoscape.StylesheetJson = [
  { selector: "node", style: {
    label: "data(display)", "font-size": 12, "text-wrap": "wrap", "text-max-width": "300px",
    "text-valign": "bottom", "text-margin-y": 3, color: "#3e4c59", width: 16, height: 16,
    "background-color": "#6b8bb3", "border-width": 1, "border-color": "#40566f",
    "text-background-color": "#fff", "text-background-opacity": 0.75, "text-background-padding": "1px",
  } },
  ...NODE_KINDS.map(([k, color, shape]) => ({ selector: `node[kind = "${k}"]`, style: { shape, "background-color": color } })) as cytoscape.StylesheetJson,
  { selector: 'node[kind = "group"]', style: { "border-style": "dashed", "border-color": "#7b8794", width: 30, height: 18,
    color: "#52606d", "font-style": "italic" } },
  // The path from the entry point to the flagged acts.
  { selector: "node.path", style: { width: 26, height: 22, "font-size": 14, color: "#1f2933", "font-weight": "bold" } },
  { selector: "node[?flagged]", style: { "background-color": "#d64545", "border-color": "#7a0c0c",
    "border-width": 4, color: "#8a1010", "font-weight": "bold", "font-size": 16, width: 40, height: 32 } },
  // Program files nobody in the trace wrote: context, hidden unless asked for.
  { selector: ".context", style: { display: "none" } },
  { selector: "node:selected", style: { "overlay-color": "#2f80ed", "overlay-opacity": 0.3, "overlay-padding": 8 } },
  { selector: "edge", style: {
    width: 1.2, "curve-style": "bezier", "target-arrow-shape": "triangle", "arrow-scale": 0.8, "line-color": "#9aa5b1",
    "target-arrow-color": "#9aa5b1", "font-size": 10, color: "#52606d",
    "text-rotation": "autorotate", "text-background-color": "#fff", "text-background-opacity": 0.85,
  } },
  ...EDGE_KINDS.flatMap(([, color, line, kinds]) => kinds.map((k) => ({ selector: `edge[kind = "${k}"]`,
    style: { "line-color": color, "target-arrow-color": color, "line-style": line } }))) as cytoscape.StylesheetJson,
  { selector: "edge.path", style: { width: 3, label: "data(elabel)" } },
];

/** Nodes ordered by time, so dagre's in-rank order follows it. */
function byTime(nodes: TraceNode[]): TraceNode[] {
  return [...nodes].sort((a, b) => (a.time ?? "").localeCompare(b.time ?? ""));
}

export function createGraph(container: HTMLElement, trace: Trace, titles: Titles = new Map()): Core {
  const big = trace.nodes.length > 150;
  const cy = cytoscape({
    container,
    elements: [...byTime(trace.nodes).map((n) => nodeDef(n, titles)), ...trace.edges.map(edgeDef)],
    style: STYLE,
    layout: { name: "preset" },
    minZoom: 0.05, maxZoom: 3,
    textureOnViewport: big, hideEdgesOnViewport: big, pixelRatio: 1,
    selectionType: "single", boxSelectionEnabled: false,
  });
  cy.scratch("titles", titles);
  markPath(cy);
  return cy;
}

/** Mark the flagged nodes' causes (everything leading to them) as the path, and program
 * files that only provide an image (nothing in the trace wrote them) as context. */
export function markPath(cy: Core): void {
  const flagged = cy.nodes("[?flagged]");
  cy.elements().removeClass("path");
  flagged.union(flagged.predecessors()).addClass("path");
  const showContext = cy.scratch("showContext") === true;
  cy.nodes('[kind = "file"]').forEach((n) => {
    const context = !n.data("flagged") && n.incomers("edge").empty() &&
      n.outgoers("edge").every((e) => e.data("kind") === "executed_file");
    n.toggleClass("context", context && !showContext);
    n.connectedEdges().toggleClass("context", context && !showContext);
  });
}

/** Program files: how many there are, and show or hide them. */
export function contextCount(cy: Core): number {
  return cy.nodes('[kind = "file"]').filter((n) => !n.data("flagged") && n.incomers("edge").empty() &&
    n.outgoers("edge").every((e) => e.data("kind") === "executed_file")).length;
}
export function showContext(cy: Core, show: boolean): void {
  cy.scratch("showContext", show);
  markPath(cy);
}

export function runLayout(cy: Core): Promise<void> {
  return new Promise((resolve) => {
    const layout = cy.elements().not(".context").layout({ name: "dagre", rankDir: "TB", nodeSep: 12, rankSep: 30, edgeSep: 6,
      nodeDimensionsIncludeLabels: true, animate: false, fit: true, padding: 24 } as cytoscape.LayoutOptions);
    layout.one("layoutstop", () => resolve());
    layout.run();
  });
}

/** Add what is not there yet; returns how many nodes were added. */
export function merge(cy: Core, trace: Trace): number {
  const titles = (cy.scratch("titles") as Titles | undefined) ?? new Map();
  const nodes = byTime(trace.nodes).filter((n) => cy.getElementById(n.id).empty());
  cy.add(nodes.map((n) => nodeDef(n, titles)));
  const edges = trace.edges.filter((e) =>
    !cy.getElementById(e.source).empty() && !cy.getElementById(e.target).empty() &&
    cy.edges().filter((x) => x.data("source") === e.source && x.data("target") === e.target && x.data("kind") === e.kind).empty());
  cy.add(edges.map(edgeDef));
  markPath(cy);
  return nodes.length;
}

export function nodeOf(n: NodeSingular): TraceNode {
  return n.data("node") as TraceNode;
}
