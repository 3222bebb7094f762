//! A small causal graph built from a list of events, for [`super::MemoryBackend`].
//!
//! Nodes are processes, files, remote endpoints and other acts; edges are causal (`source`
//! caused or acted on `target`) and repeats are merged with a count. A connect and an accept
//! with the mirrored tuple within [`FLOW_WINDOW_NS`] are one flow: the edge then links the
//! client process to the server process directly, on one host or across hosts.

use crate::types::{FileAccess, FlowInfo, ProcessBrief, TraceEdge, TraceNode};
use causeway_model::timefmt::Timestamp;
use causeway_model::{Endpoint, Event, Exit, Host, Kind, Process};
use serde_json::json;
use std::collections::{HashMap, HashSet, VecDeque};

/// How far apart the two ends of one flow may be seen (clocks of two hosts differ a bit).
const FLOW_WINDOW_NS: i64 = 10_000_000_000;

/// Connects by (protocol, local, remote): (time, process id, index in its flows).
type Connects = HashMap<(String, Endpoint, Endpoint), Vec<(Timestamp, String, usize)>>;

/// What we know about one process.
#[derive(Debug, Clone)]
pub(crate) struct ProcInfo {
    pub process: Process,
    pub host: Host,
    pub first_seen: Timestamp,
    pub start: Option<Timestamp>,
    pub exit_time: Option<Timestamp>,
    pub exit: Option<Exit>,
    pub files: Vec<FileAccess>,
    pub flows: Vec<FlowInfo>,
    /// Peer process ids of `flows`, same order (filled after matching).
    pub flow_peers: Vec<Option<String>>,
    pub children: Vec<String>,
}

impl ProcInfo {
    pub fn brief(&self) -> ProcessBrief {
        ProcessBrief {
            id: self.process.id.clone(),
            pid: self.process.pid,
            exe: self.process.exe.clone(),
            argv: self.process.argv.clone(),
            host: self.host.name.clone(),
            start_time: self.start,
        }
    }

    pub fn time(&self) -> Timestamp {
        self.start.unwrap_or(self.first_seen)
    }
}

/// A node that is not a process.
#[derive(Debug, Clone)]
struct OtherNode {
    kind: &'static str,
    label: String,
    data: serde_json::Value,
    time: Timestamp,
    host: String,
}

#[derive(Debug, Clone)]
struct EdgeRec {
    source: usize,
    target: usize,
    kind: &'static str,
    time: Timestamp,
    count: u64,
}

/// The graph.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub procs: HashMap<String, ProcInfo>,
    ids: Vec<String>,
    index: HashMap<String, usize>,
    others: HashMap<usize, OtherNode>,
    edges: Vec<EdgeRec>,
    edge_index: HashMap<(usize, usize, &'static str), usize>,
    out: Vec<Vec<usize>>,
    inn: Vec<Vec<usize>>,
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Display label of a process: image name and pid.
pub(crate) fn proc_label(p: &Process) -> String {
    let name = if !p.exe.is_empty() {
        basename(&p.exe)
    } else if let Some(a) = p.argv.first() {
        basename(a)
    } else {
        p.comm.as_str()
    };
    format!("{name} ({})", p.pid)
}

fn is_loopback(ip: &str) -> bool {
    ip.starts_with("127.") || ip == "::1"
}

impl Graph {
    pub fn build(events: &[Event]) -> Graph {
        let mut g = Graph::default();
        // Pass 1: processes.
        for e in events {
            g.observe_process(e);
        }
        let mut ids: Vec<String> = g.procs.keys().cloned().collect();
        ids.sort_by_key(|id| g.procs.get(id).map(|p| (p.time(), p.process.pid)));
        for id in &ids {
            g.node(id);
        }
        for id in &ids {
            let Some(p) = g.procs.get(id) else { continue };
            let parent = p.process.parent_id.clone();
            let t = p.time();
            if !parent.is_empty() && g.procs.contains_key(&parent) {
                g.edge_ids(&parent, id, "fork", t);
                if let Some(pp) = g.procs.get_mut(&parent) {
                    pp.children.push(id.clone());
                }
            }
        }
        // Pass 2: acts.
        let mut connects: Connects = HashMap::new();
        let mut accepts: Vec<(Timestamp, String, usize, Event)> = Vec::new();
        for e in events {
            g.observe_act(e, &mut connects, &mut accepts);
        }
        // Flows: an accept's mirrored tuple is some connect's tuple.
        let mut matched_connects: HashSet<(String, usize)> = HashSet::new();
        for (t, pid, flow_idx, e) in &accepts {
            let Some(n) = &e.network else { continue };
            let key = (n.protocol.clone(), n.remote.clone(), n.local.clone());
            let same_host_only = is_loopback(&n.local.ip) || is_loopback(&n.remote.ip);
            let best = connects.get(&key).and_then(|v| {
                v.iter()
                    .filter(|(ct, cpid, _)| {
                        (ct.0 - t.0).abs() <= FLOW_WINDOW_NS
                            && cpid != pid
                            && (!same_host_only
                                || g.procs.get(cpid).map(|p| &p.host.id)
                                    == g.procs.get(pid).map(|p| &p.host.id))
                    })
                    .min_by_key(|(ct, _, _)| (ct.0 - t.0).abs())
                    .cloned()
            });
            match best {
                Some((ct, cpid, cidx)) => {
                    g.edge_ids(&cpid, pid, "connect", ct.min(*t));
                    matched_connects.insert((cpid.clone(), cidx));
                    g.set_peer(pid, *flow_idx, &cpid);
                    g.set_peer(&cpid, cidx, pid);
                }
                None => {
                    let id = format!("endpoint:{}:{}", n.protocol, n.remote.ip);
                    g.other(
                        &id,
                        OtherNode {
                            kind: "endpoint",
                            label: format!("{} {}", n.protocol, n.remote.ip),
                            data: json!({"protocol": n.protocol, "ip": n.remote.ip}),
                            time: *t,
                            host: String::new(),
                        },
                    );
                    g.edge_ids(&id, pid, "accept", *t);
                }
            }
        }
        for ((proto, local, remote), v) in &connects {
            for (t, pid, idx) in v {
                if matched_connects.contains(&(pid.clone(), *idx)) {
                    continue;
                }
                let _ = local;
                let id = format!("endpoint:{proto}:{}:{}", remote.ip, remote.port);
                g.other(
                    &id,
                    OtherNode {
                        kind: "endpoint",
                        label: format!("{proto} {}:{}", remote.ip, remote.port),
                        data: json!({"protocol": proto, "ip": remote.ip, "port": remote.port}),
                        time: *t,
                        host: String::new(),
                    },
                );
                g.edge_ids(pid, &id, "connect", *t);
            }
        }
        // A process that executed a file written in the graph was caused by that write.
        for e in events {
            if e.kind != Kind::ProcessExec {
                continue;
            }
            let fid = format!("file:{}:{}", e.host.id, e.process.exe);
            if g.index.contains_key(&fid) {
                g.edge_ids(&fid, &e.process.id, "exec", e.time);
            }
        }
        g
    }

    fn set_peer(&mut self, pid: &str, idx: usize, peer: &str) {
        if let Some(p) = self.procs.get_mut(pid) {
            if let Some(slot) = p.flow_peers.get_mut(idx) {
                *slot = Some(peer.to_string());
            }
        }
    }

    fn observe_process(&mut self, e: &Event) {
        let entry = self
            .procs
            .entry(e.process.id.clone())
            .or_insert_with(|| ProcInfo {
                process: (*e.process).clone(),
                host: e.host.clone(),
                first_seen: e.time,
                start: None,
                exit_time: None,
                exit: None,
                files: Vec::new(),
                flows: Vec::new(),
                flow_peers: Vec::new(),
                children: Vec::new(),
            });
        // Exec changes the image: the latest exec (or anything better than an empty record)
        // is the process as users know it.
        if e.kind == Kind::ProcessExec || entry.process.exe.is_empty() {
            let parent = entry.process.parent_id.clone();
            entry.process = (*e.process).clone();
            if entry.process.parent_id.is_empty() {
                entry.process.parent_id = parent;
            }
        }
        if entry.start.is_none() {
            entry.start = e.process.start_time.or(match e.kind {
                Kind::ProcessFork => Some(e.time),
                _ => None,
            });
        }
        if e.kind == Kind::ProcessExit {
            entry.exit_time = Some(e.time);
            entry.exit = e.exit.clone();
        }
    }

    fn observe_act(
        &mut self,
        e: &Event,
        connects: &mut Connects,
        accepts: &mut Vec<(Timestamp, String, usize, Event)>,
    ) {
        let pid = e.process.id.clone();
        let hostname = e.host.name.clone();
        let mut flow_idx = None;
        if let (Some(n), Some(p)) = (&e.network, self.procs.get_mut(&pid)) {
            let direction = match e.kind {
                Kind::NetConnect => "outbound",
                Kind::NetAccept => "inbound",
                _ => "listen",
            };
            p.flows.push(FlowInfo {
                direction: direction.to_string(),
                protocol: n.protocol.clone(),
                local: n.local.clone(),
                remote: n.remote.clone(),
                time: e.time,
                peer: None,
            });
            p.flow_peers.push(None);
            flow_idx = Some(p.flows.len() - 1);
        }
        match (e.kind, &e.network, flow_idx) {
            (Kind::NetConnect, Some(n), Some(i)) => {
                connects
                    .entry((n.protocol.clone(), n.local.clone(), n.remote.clone()))
                    .or_default()
                    .push((e.time, pid.clone(), i));
            }
            (Kind::NetAccept, Some(_), Some(i)) => {
                accepts.push((e.time, pid.clone(), i, e.clone()));
            }
            _ => {}
        }
        if let Some(f) = &e.file {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.files.push(FileAccess {
                    path: f.path.clone(),
                    kind: e.kind.as_str().to_string(),
                    write: f.write,
                    sensitive: f.sensitive,
                    time: e.time,
                });
            }
            let (path, kind) = match e.kind {
                Kind::FileRename => (
                    f.new_path.clone().unwrap_or_else(|| f.path.clone()),
                    "rename",
                ),
                Kind::FileUnlink => (f.path.clone(), "unlink"),
                Kind::FileChmod => (f.path.clone(), "chmod"),
                _ if f.write => (f.path.clone(), "write"),
                _ => (f.path.clone(), "read"),
            };
            let fid = format!("file:{}:{}", e.host.id, path);
            self.other(
                &fid,
                OtherNode {
                    kind: "file",
                    label: path.clone(),
                    data: json!({"path": path, "sensitive": f.sensitive}),
                    time: e.time,
                    host: hostname.clone(),
                },
            );
            if kind == "read" {
                self.edge_ids(&fid, &pid, kind, e.time);
            } else {
                self.edge_ids(&pid, &fid, kind, e.time);
            }
        }
        if let Some(t) = &e.target {
            if !t.id.is_empty() && self.procs.contains_key(&t.id) {
                self.edge_ids(&pid, &t.id.clone(), "ptrace", e.time);
                return;
            }
        }
        let object = match e.kind {
            Kind::CredChange => e
                .cred
                .as_ref()
                .map(|c| format!("{} uid {}", c.syscall, c.new.euid)),
            Kind::FsMount => e
                .mount
                .as_ref()
                .map(|m| format!("{} on {}", m.source, m.target)),
            Kind::KernelModuleLoad => e
                .module
                .as_ref()
                .map(|m| m.path.clone().unwrap_or_else(|| m.syscall.clone())),
            Kind::KernelBpfLoad => e.bpf.as_ref().map(|b| b.prog_name.clone()),
            Kind::ProcessMemfdCreate => e.memfd.as_ref().map(|m| m.name.clone()),
            Kind::ProcessPtrace => e
                .target
                .as_ref()
                .map(|t| format!("{} pid {}", t.request, t.pid)),
            _ => None,
        };
        if let Some(object) = object {
            let id = format!("act:{pid}:{}:{object}", e.kind.as_str());
            self.other(
                &id,
                OtherNode {
                    kind: "act",
                    label: format!("{} {object}", e.kind.as_str()),
                    data: json!({"kind": e.kind.as_str(), "object": object}),
                    time: e.time,
                    host: hostname,
                },
            );
            self.edge_ids(&pid, &id, "act", e.time);
        }
    }

    fn node(&mut self, id: &str) -> usize {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len();
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        self.out.push(Vec::new());
        self.inn.push(Vec::new());
        i
    }

    fn other(&mut self, id: &str, n: OtherNode) {
        let i = self.node(id);
        self.others.entry(i).or_insert(n);
    }

    fn edge_ids(&mut self, s: &str, t: &str, kind: &'static str, time: Timestamp) {
        let (s, t) = (self.node(s), self.node(t));
        if let Some(&ei) = self.edge_index.get(&(s, t, kind)) {
            if let Some(e) = self.edges.get_mut(ei) {
                e.count += 1;
                e.time = e.time.min(time);
            }
            return;
        }
        let ei = self.edges.len();
        self.edges.push(EdgeRec {
            source: s,
            target: t,
            kind,
            time,
            count: 1,
        });
        self.edge_index.insert((s, t, kind), ei);
        self.out[s].push(ei);
        self.inn[t].push(ei);
    }

    pub fn contains(&self, id: &str) -> bool {
        self.index.contains_key(id)
    }

    /// Parent chain, parent first, bounded against cycles in bad data.
    pub fn ancestors(&self, id: &str) -> Vec<&ProcInfo> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut cur = self.procs.get(id);
        while let Some(p) = cur {
            if !seen.insert(p.process.id.as_str()) || out.len() >= 256 {
                break;
            }
            cur = self.procs.get(&p.process.parent_id);
            if let Some(parent) = cur {
                out.push(parent);
            }
        }
        out
    }

    /// Breadth-first walk from `start` along out-edges (`forward`) or in-edges, at most
    /// `depth` hops (`None`: unbounded) and `max_nodes` nodes. `kinds` restricts the edges
    /// followed. Returns node indices in visit order.
    pub fn walk(
        &self,
        start: &[&str],
        forward: bool,
        depth: Option<u32>,
        kinds: Option<&[&str]>,
        max_nodes: usize,
    ) -> Vec<usize> {
        let mut seen: HashSet<usize> = HashSet::new();
        let mut order = Vec::new();
        let mut queue = VecDeque::new();
        for s in start {
            if let Some(&i) = self.index.get(*s) {
                if seen.insert(i) {
                    order.push(i);
                    queue.push_back((i, 0u32));
                }
            }
        }
        while let Some((n, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            let list = if forward { &self.out[n] } else { &self.inn[n] };
            for &ei in list {
                let e = &self.edges[ei];
                if kinds.is_some_and(|k| !k.contains(&e.kind)) {
                    continue;
                }
                let next = if forward { e.target } else { e.source };
                if order.len() >= max_nodes {
                    return order;
                }
                if seen.insert(next) {
                    order.push(next);
                    queue.push_back((next, d + 1));
                }
            }
        }
        order
    }

    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    pub fn id_of(&self, i: usize) -> &str {
        self.ids.get(i).map(String::as_str).unwrap_or("")
    }

    /// The trace over a node set: those nodes and every edge between two of them.
    pub fn trace_of(&self, nodes: &[usize]) -> (Vec<TraceNode>, Vec<TraceEdge>) {
        let set: HashSet<usize> = nodes.iter().copied().collect();
        let tn = nodes.iter().map(|&i| self.trace_node(i)).collect();
        let mut te = Vec::new();
        for &n in nodes {
            for &ei in &self.out[n] {
                let e = &self.edges[ei];
                if set.contains(&e.target) {
                    te.push(TraceEdge {
                        id: Some(format!("e{ei}")),
                        source: self.ids[e.source].clone(),
                        target: self.ids[e.target].clone(),
                        kind: e.kind.to_string(),
                        time: e.time,
                        count: e.count,
                    });
                }
            }
        }
        (tn, te)
    }

    fn trace_node(&self, i: usize) -> TraceNode {
        let id = self.id_of(i).to_string();
        if let Some(p) = self.procs.get(&id) {
            let q = &p.process;
            return TraceNode {
                label: proc_label(q),
                kind: "process".into(),
                data: json!({
                    "pid": q.pid, "ppid": q.ppid, "parent_id": q.parent_id, "exe": q.exe,
                    "argv": q.argv, "argv_truncated": q.argv_truncated, "cwd": q.cwd,
                    "comm": q.comm, "uid": q.uid, "euid": q.euid, "gid": q.gid, "egid": q.egid,
                    "auid": q.auid, "tty": q.tty, "container": q.container,
                    "service": q.service, "host": p.host, "start_time": p.start,
                    "exit_time": p.exit_time, "exit": p.exit,
                }),
                flagged: false,
                rules: Vec::new(),
                techniques: Vec::new(),
                time: Some(p.time()),
                host: Some(p.host.name.clone()),
                id,
            };
        }
        let o = self.others.get(&i);
        TraceNode {
            kind: o.map(|o| o.kind).unwrap_or("unknown").to_string(),
            label: o.map(|o| o.label.clone()).unwrap_or_else(|| id.clone()),
            data: o.map(|o| o.data.clone()).unwrap_or(serde_json::Value::Null),
            flagged: false,
            rules: Vec::new(),
            techniques: Vec::new(),
            time: o.map(|o| o.time),
            host: o.map(|o| o.host.clone()).filter(|h| !h.is_empty()),
            id,
        }
    }
}
