// API client: JSON over fetch with the bearer token (if the user gave one), and the live
// stream read with fetch (EventSource cannot send an Authorization header).

export interface ProcessRef { id: string; pid: number }
export interface IncidentSummary {
  id: string; title: string; score: number; severity: string; techniques: string[];
  root_process: { id: string; pid: number; exe: string };
  processes: ProcessRef[]; hosts: string[]; first_seen: string; last_seen: string;
}
export interface Flag {
  rule_id: string; title: string; severity: string; techniques: string[]; tactic: string;
  time: string; kind: string; host: string; process_id: string; pid: number; exe: string;
  object: string; message: string;
}
export interface TraceNode {
  id: string; kind: string; label: string; data: any; flagged: boolean; rules: string[];
  techniques: string[]; time?: string; host?: string;
}
export interface TraceEdge {
  id?: string; source: string; target: string; kind: string; time: string; count: number;
}
export interface Trace {
  nodes: TraceNode[]; edges: TraceEdge[];
  aggregated?: { original_nodes: number; original_edges: number; hidden_nodes: number };
}
export interface IncidentDetail extends IncidentSummary { flags: Flag[]; trace: Trace }
export interface Page<T> { items: T[]; total: number; limit: number; offset: number }
export interface ProcessBrief {
  id: string; pid: number; exe: string; argv: string[]; host: string; start_time?: string;
}
export interface ProcessDetail {
  process: any; host: { name: string; id: string }; start_time?: string; exit_time?: string;
  exit?: { code: number | null; signal: number | null };
  ancestors: ProcessBrief[]; children: ProcessBrief[];
  flows: { direction: string; protocol: string; local: { ip: string; port: number };
    remote: { ip: string; port: number }; time: string; peer: ProcessBrief | null }[];
  files: { path: string; kind: string; write: boolean; sensitive: boolean; time: string }[];
}
export interface Health {
  status: string; events_seen: number; events_lost: Record<string, number>;
  incidents: number; uptime_seconds: number;
  agents: { host: string; host_id: string; state: string; last_event: string | null;
    events_seen: number; events_lost: Record<string, number> }[];
}

const TOKEN_KEY = "causeway.token";

export class ApiError extends Error {
  constructor(public status: number, message: string) { super(message); }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = localStorage.getItem(TOKEN_KEY);
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

export function setToken(t: string): void {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

export async function get<T>(path: string, params: Record<string, string | number | undefined> = {}): Promise<T> {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const url = `/api/v1${path}${q.toString() ? `?${q}` : ""}`;
  const r = await fetch(url, { headers: headers() });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error ?? msg; } catch { /* not JSON */ }
    throw new ApiError(r.status, msg);
  }
  return r.json() as Promise<T>;
}

export const enc = encodeURIComponent;

/** Follow the live stream; calls `onEvent(name, data)`; reconnects with back-off. */
export function stream(onEvent: (name: string, data: string) => void, onState: (up: boolean) => void): () => void {
  let stopped = false;
  let ctrl: AbortController | null = null;
  const run = async () => {
    let delay = 1000;
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const r = await fetch("/api/v1/stream", {
          headers: headers({ Accept: "text/event-stream" }), signal: ctrl.signal,
        });
        if (!r.ok || !r.body) throw new Error(String(r.status));
        onState(true);
        delay = 1000;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i;
          while ((i = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let name = "message";
            const data: string[] = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            }
            if (data.length) onEvent(name, data.join("\n"));
          }
        }
      } catch { /* reconnect below */ }
      onState(false);
      if (stopped) break;
      await new Promise((res) => setTimeout(res, delay));
      delay = Math.min(delay * 2, 15000);
    }
  };
  void run();
  return () => { stopped = true; ctrl?.abort(); };
}
