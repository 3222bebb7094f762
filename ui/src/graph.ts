// The causal graph view: cytoscape + dagre, left to right in causal (and time) order.
// Labels are drawn on canvas by cytoscape: workload strings never become HTML.
import cytoscape, { Core, ElementDefinition, NodeSingular } from "cytoscape";
import dagre from "cytoscape-dagre";
import type { Trace, TraceNode, TraceEdge } from "./api";

cytoscape.use(dagre);

const MAX_LABEL = 42;

function short(s: string): string {
  return s.length > MAX_LABEL ? `${s.slice(0, MAX_LABEL - 1)}…` : s;
}

function display(n: TraceNode): string {
  let l = short(n.label);
  if (n.host && n.kind === "process") l += `\n@${short(n.host)}`;
  if (n.flagged) l += `\n⚑ ${[...n.techniques, ...n.rules].join(" · ")}`;
  return l;
}

export function nodeDef(n: TraceNode): ElementDefinition {
  return { group: "nodes", data: { id: n.id, display: display(n), kind: n.kind, flagged: n.flagged, node: n } };
}

export function edgeDef(e: TraceEdge): ElementDefinition {
  return { group: "edges", data: {
    id: e.id ?? `${e.source}|${e.kind}|${e.target}`, source: e.source, target: e.target, kind: e.kind,
    elabel: e.count > 1 ? `${e.kind} ×${e.count}` : e.kind, edge: e,
  } };
}

const STYLE: cytoscape.StylesheetJson = [
  { selector: "node", style: {
    label: "data(display)", "font-size": 10, "text-wrap": "wrap", "text-max-width": "220px",
    "text-valign": "bottom", "text-margin-y": 3, color: "#1f2933", width: 26, height: 26,
    "background-color": "#6b8bb3", "border-width": 1, "border-color": "#40566f",
  } },
  { selector: 'node[kind = "process"]', style: { shape: "round-rectangle", width: 34, "background-color": "#5b7fa8" } },
  { selector: 'node[kind = "file"]', style: { shape: "tag", "background-color": "#8a9a5b" } },
  { selector: 'node[kind = "endpoint"]', style: { shape: "diamond", "background-color": "#b38b4d" } },
  { selector: 'node[kind = "act"]', style: { shape: "hexagon", "background-color": "#9a6fb0" } },
  { selector: 'node[kind = "group"]', style: { shape: "barrel", "background-color": "#e4e8ee",
    "border-style": "dashed", "border-color": "#7b8794", width: 44, color: "#52606d", "font-style": "italic" } },
  { selector: "node[?flagged]", style: { "background-color": "#d64545", "border-color": "#7a0c0c",
    "border-width": 4, color: "#8a1010", "font-weight": "bold", width: 38, height: 30 } },
  { selector: "node:selected", style: { "overlay-color": "#2f80ed", "overlay-opacity": 0.25, "overlay-padding": 6 } },
  { selector: "edge", style: {
    width: 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle", "line-color": "#9aa5b1",
    "target-arrow-color": "#9aa5b1", label: "data(elabel)", "font-size": 8, color: "#7b8794",
    "text-rotation": "autorotate", "text-background-color": "#fff", "text-background-opacity": 0.8,
  } },
  { selector: 'edge[kind = "connect"], edge[kind = "accept"]', style: { "line-style": "dashed", "line-color": "#2f80ed", "target-arrow-color": "#2f80ed" } },
  { selector: 'edge[kind = "exec"]', style: { "line-color": "#d9822b", "target-arrow-color": "#d9822b", width: 2.5 } },
  { selector: 'edge[kind = "write"], edge[kind = "chmod"], edge[kind = "rename"]', style: { "line-color": "#3f9142", "target-arrow-color": "#3f9142" } },
  { selector: 'edge[kind = "read"]', style: { "line-color": "#8e44ad", "target-arrow-color": "#8e44ad" } },
];

/** Nodes ordered by time, so dagre's in-rank order follows it. */
function byTime(nodes: TraceNode[]): TraceNode[] {
  return [...nodes].sort((a, b) => (a.time ?? "").localeCompare(b.time ?? ""));
}

export function createGraph(container: HTMLElement, trace: Trace): Core {
  const big = trace.nodes.length > 150;
  const cy = cytoscape({
    container,
    elements: [...byTime(trace.nodes).map(nodeDef), ...trace.edges.map(edgeDef)],
    style: STYLE,
    layout: { name: "preset" },
    minZoom: 0.05, maxZoom: 3,
    textureOnViewport: big, hideEdgesOnViewport: big, pixelRatio: 1,
    selectionType: "single", boxSelectionEnabled: false,
  });
  return cy;
}

export function runLayout(cy: Core): Promise<void> {
  return new Promise((resolve) => {
    const layout = cy.layout({ name: "dagre", rankDir: "LR", nodeSep: 18, rankSep: 80, edgeSep: 8, nodeDimensionsIncludeLabels: true,
      animate: false, fit: true, padding: 24 } as cytoscape.LayoutOptions);
    layout.one("layoutstop", () => resolve());
    layout.run();
  });
}

/** Add what is not there yet; returns how many nodes were added. */
export function merge(cy: Core, trace: Trace): number {
  const nodes = byTime(trace.nodes).filter((n) => cy.getElementById(n.id).empty());
  cy.add(nodes.map(nodeDef));
  const edges = trace.edges.filter((e) =>
    !cy.getElementById(e.source).empty() && !cy.getElementById(e.target).empty() &&
    cy.edges().filter((x) => x.data("source") === e.source && x.data("target") === e.target && x.data("kind") === e.kind).empty());
  cy.add(edges.map(edgeDef));
  return nodes.length;
}

export function nodeOf(n: NodeSingular): TraceNode {
  return n.data("node") as TraceNode;
}
