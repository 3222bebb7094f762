// Process explorer: find a process, walk its ancestors, children and flows (across hosts).
import { enc, get, ProcessBrief, ProcessDetail } from "../api";
import { append, clear, fmtTime, h, kv } from "../dom";

function link(p: ProcessBrief): HTMLElement {
  const name = p.exe.split("/").pop() || p.exe;
  return h("a", { href: `#/process/${enc(p.id)}`, class: "proc" }, `${name} (${p.pid})`,
    h("span", { class: "muted" }, ` @${p.host} `), h("code", {}, p.argv.join(" ")));
}

export function argvList(argv: string[]): HTMLElement {
  return h("ol", { class: "argv" }, ...argv.map((a) => h("li", {}, h("code", {}, a))));
}

export async function processPage(root: HTMLElement, id: string): Promise<void> {
  const input = h("input", { type: "search", id: "proc-search", placeholder: "exe, argv or path (e.g. curl)" });
  const results = h("ul", { class: "results", id: "proc-results" });
  const search = async () => {
    const events = await get<any[]>("/events", { kind: "process.exec", q: input.value, limit: 200 });
    const seen = new Map<string, ProcessBrief>();
    for (const e of events) seen.set(e.process.id, { id: e.process.id, pid: e.process.pid,
      exe: e.process.exe, argv: e.process.argv, host: e.host.name, start_time: e.time });
    clear(results);
    append(results, ...[...seen.values()].map((p) => h("li", {}, link(p))));
    if (seen.size === 0) append(results, h("li", { class: "muted" }, "no process found"));
  };
  append(root, h("h1", {}, "Process explorer"),
    h("form", { class: "filters", onsubmit: (e: Event) => { e.preventDefault(); void search(); } },
      input, h("button", { type: "submit" }, "Search")), results);
  if (!id) return;
  const d = await get<ProcessDetail>(`/processes/${enc(id)}`);
  const p = d.process;
  const exit = d.exit ? (d.exit.signal != null ? `signal ${d.exit.signal}` : `code ${d.exit.code}`) : "";
  append(root, h("section", { class: "process", id: "process-detail" },
    h("h2", {}, `${p.exe} (${p.pid})`),
    h("h3", {}, "Ancestors"),
    h("ol", { class: "chain" }, ...[...d.ancestors].reverse().map((a) => h("li", {}, link(a))), h("li", { class: "self" }, `${p.exe} (${p.pid})`)),
    kv([["Id", h("code", {}, p.id)], ["Host", d.host.name], ["argv", argvList(p.argv ?? [])], ["cwd", p.cwd],
      ["User", `uid ${p.uid} euid ${p.euid} auid ${p.auid ?? "-"}`], ["tty", p.tty ?? ""],
      ["Container", p.container ? `${p.container.runtime} ${p.container.id}` : ""], ["Service", p.service ?? ""],
      ["Started", fmtTime(d.start_time)], ["Exited", d.exit_time ? `${fmtTime(d.exit_time)} (${exit})` : ""]]),
    h("h3", {}, `Children (${d.children.length})`),
    h("ul", { class: "results" }, ...d.children.map((c) => h("li", {}, link(c)))),
    h("h3", {}, `Flows (${d.flows.length})`),
    h("table", { class: "list" }, h("tbody", {}, ...d.flows.map((f) => h("tr", {},
      h("td", {}, f.direction), h("td", {}, `${f.protocol} ${f.local.ip}:${f.local.port} → ${f.remote.ip}:${f.remote.port}`),
      h("td", { class: "time" }, fmtTime(f.time)), h("td", {}, f.peer ? link(f.peer) : h("span", { class: "muted" }, "peer not seen")))))),
    h("h3", {}, `Files (${d.files.length})`),
    h("table", { class: "list" }, h("tbody", {}, ...d.files.map((f) => h("tr", {},
      h("td", {}, f.kind + (f.write ? " (write)" : "") + (f.sensitive ? " (sensitive)" : "")), h("td", {}, h("code", {}, f.path)),
      h("td", { class: "time" }, fmtTime(f.time))))))));
}
