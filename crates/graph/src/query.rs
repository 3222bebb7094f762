//! Queries: time-respecting backward and forward traces, ancestors and descendants.
//!
//! Semantics (the ones the reduction preserves exactly):
//! - **backward** from node `n` with bound `b` (initially the window's end): every in-edge
//!   occurrence at time `t <= b` (and `t >=` the window's start) is a cause; continue at its
//!   source with bound `t`. So only what happened *before* an effect can explain it.
//! - **forward** from `n` with bound `b` (initially the window's start): every out-edge
//!   occurrence at `t >= b` (and `<=` the window's end) is an effect; continue at its target
//!   with bound `t`.
//!
//! A run folds occurrences whose choice does not matter (see `build`), so a backward step
//! uses the run's first time and a forward step its first time when the bound allows it, its
//! last time otherwise. Depth counts edges from the start node.

use crate::build::Graph;
use crate::types::*;
use causeway_model::timefmt::Timestamp;
use rustc_hash::FxHashMap;
use serde::Serialize;
use std::collections::VecDeque;

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// What caused it.
    Backward,
    /// What it caused.
    Forward,
}

/// Parameters of a trace.
#[derive(Debug, Clone)]
pub struct TraceQuery {
    pub direction: Direction,
    /// Maximum number of edges from the start; `None` = unbounded.
    pub depth: Option<u32>,
    /// Window start, ns since the epoch.
    pub since: Option<i64>,
    /// Window end, ns since the epoch.
    pub until: Option<i64>,
    /// Only follow process lineage (fork/exec): ancestors / descendants.
    pub lineage_only: bool,
    /// Stop after this many nodes (the trace is then marked truncated). Default 2000.
    pub max_nodes: usize,
}

impl TraceQuery {
    pub fn backward() -> Self {
        TraceQuery {
            direction: Direction::Backward,
            depth: None,
            since: None,
            until: None,
            lineage_only: false,
            max_nodes: 2_000,
        }
    }

    pub fn forward() -> Self {
        TraceQuery {
            direction: Direction::Forward,
            ..TraceQuery::backward()
        }
    }

    pub fn depth(mut self, d: u32) -> Self {
        self.depth = Some(d);
        self
    }
}

/// A node of a trace.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceNode {
    /// Stable key: the same entity has the same id across restarts and hosts.
    pub id: String,
    pub kind: NodeKind,
    pub label: String,
    /// Kind-specific details; for a process, the model's `Process` fields plus `start`,
    /// `exit`, `host`, `session`.
    pub details: serde_json::Value,
}

/// An edge of a trace (all traversed runs of one `(from, to, kind)` combined).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TraceEdge {
    pub kind: EdgeKind,
    pub from: String,
    pub to: String,
    /// First occurrence (RFC 3339).
    pub time: Timestamp,
    /// Last occurrence (RFC 3339).
    pub last_time: Timestamp,
    /// Occurrences folded into this edge.
    pub count: u64,
}

/// The answer of a trace query: `{"nodes": [...], "edges": [...]}`.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct Trace {
    pub nodes: Vec<TraceNode>,
    pub edges: Vec<TraceEdge>,
    /// Set when `max_nodes` cut the walk short.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Raw walk result: reached nodes (start first) and traversed runs.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    pub nodes: Vec<NodeId>,
    pub runs: Vec<RunId>,
    pub truncated: bool,
}

impl Graph {
    /// Walk from `starts` and return node and run ids (no rendering).
    pub fn walk(&self, starts: &[NodeId], q: &TraceQuery) -> Walk {
        let back = q.direction == Direction::Backward;
        let since = q.since.unwrap_or(i64::MIN);
        let until = q.until.unwrap_or(i64::MAX);
        let max_depth = q.depth.unwrap_or(u32::MAX);
        // Pareto frontier of (bound, depth) per node: a state is useless if another reached
        // the node with a bound at least as permissive and no greater depth.
        let mut seen: FxHashMap<NodeId, Vec<(i64, u32)>> = FxHashMap::default();
        let mut out = Walk::default();
        let mut node_set = rustc_hash::FxHashSet::default();
        let mut run_set = rustc_hash::FxHashSet::default();
        let mut queue = VecDeque::new();
        let better = |a: i64, b: i64| if back { a >= b } else { a <= b };
        let admit = |seen: &mut FxHashMap<NodeId, Vec<(i64, u32)>>, n: NodeId, b: i64, d: u32| {
            let f = seen.entry(n).or_default();
            if f.iter().any(|&(fb, fd)| better(fb, b) && fd <= d) {
                return false;
            }
            f.retain(|&(fb, fd)| !(better(b, fb) && d <= fd));
            f.push((b, d));
            true
        };
        for &s in starts {
            if (s as usize) < self.nodes.len() {
                let b = if back { until } else { since };
                if admit(&mut seen, s, b, 0) {
                    queue.push_back((s, b, 0u32));
                }
                if node_set.insert(s) {
                    out.nodes.push(s);
                }
            }
        }
        // Bound the work as well as the output: a walk through hub nodes (a database server
        // with thousands of clients) may revisit them with many bounds.
        let mut budget = q.max_nodes.saturating_mul(500);
        while let Some((n, b, d)) = queue.pop_front() {
            if d >= max_depth {
                continue;
            }
            if out.truncated || budget == 0 {
                out.truncated = true;
                break;
            }
            let node = &self.nodes[n as usize];
            let list = if back { &node.ins } else { &node.outs };
            budget = budget.saturating_sub(list.len());
            for &r in list {
                let run = &self.runs[r as usize];
                if q.lineage_only && !run.kind.is_lineage() {
                    continue;
                }
                let (next, nb) = if back {
                    if run.first > b || run.last < since || run.first > until {
                        continue;
                    }
                    (run.src, run.first.max(since))
                } else {
                    if run.last < b || run.first > until || run.last < since {
                        continue;
                    }
                    (run.dst, if b <= run.first { run.first } else { run.last })
                };
                if run_set.insert(r) {
                    out.runs.push(r);
                }
                if !node_set.contains(&next) {
                    if out.nodes.len() >= q.max_nodes {
                        out.truncated = true;
                        continue;
                    }
                    node_set.insert(next);
                    out.nodes.push(next);
                }
                if admit(&mut seen, next, nb, d + 1) {
                    queue.push_back((next, nb, d + 1));
                }
            }
        }
        out
    }

    /// Trace from one node.
    pub fn trace(&self, start: NodeId, q: &TraceQuery) -> Trace {
        let w = self.walk(&[start], q);
        self.render(&w)
    }

    /// Trace a process by its model id: backward from its latest image (which reaches the
    /// earlier ones through exec edges), forward from its first. `None` if unknown.
    pub fn trace_process(&self, process_id: &str, q: &TraceQuery) -> Option<Trace> {
        let imgs = self.images_of(process_id);
        let start = match q.direction {
            Direction::Backward => imgs.last(),
            Direction::Forward => imgs.first(),
        }?;
        Some(self.trace(*start, q))
    }

    /// Process lineage upward (parents, exec predecessors), up to `depth` edges.
    pub fn ancestors(&self, process_id: &str, depth: Option<u32>) -> Option<Trace> {
        let q = TraceQuery {
            depth,
            lineage_only: true,
            ..TraceQuery::backward()
        };
        self.trace_process(process_id, &q)
    }

    /// Process lineage downward (children, later images), up to `depth` edges.
    pub fn descendants(&self, process_id: &str, depth: Option<u32>) -> Option<Trace> {
        let q = TraceQuery {
            depth,
            lineage_only: true,
            ..TraceQuery::forward()
        };
        self.trace_process(process_id, &q)
    }

    /// Render a walk: nodes with details, edges grouped by `(from, to, kind)`. Session nodes
    /// of the processes in the trace are added as context (without edges).
    pub fn render(&self, w: &Walk) -> Trace {
        let mut nodes: Vec<NodeId> = w.nodes.clone();
        let mut have: rustc_hash::FxHashSet<NodeId> = nodes.iter().copied().collect();
        for &n in &w.nodes {
            if let Some(NodeData::Process(im)) = self.nodes.get(n as usize).map(|x| &x.data) {
                if let Some(s) = im.session {
                    if have.insert(s) {
                        nodes.push(s);
                    }
                }
            }
        }
        let mut groups: FxHashMap<(NodeId, NodeId, EdgeKind), (i64, i64, u64)> =
            FxHashMap::default();
        let mut order = Vec::new();
        for &r in &w.runs {
            let run = &self.runs[r as usize];
            let k = (run.src, run.dst, run.kind);
            match groups.get_mut(&k) {
                Some(g) => {
                    g.0 = g.0.min(run.first);
                    g.1 = g.1.max(run.last);
                    g.2 += u64::from(run.count);
                }
                None => {
                    groups.insert(k, (run.first, run.last, u64::from(run.count)));
                    order.push(k);
                }
            }
        }
        let edges = order
            .into_iter()
            .filter_map(|k| {
                let g = groups.get(&k)?;
                Some(TraceEdge {
                    kind: k.2,
                    from: self.node_key(k.0),
                    to: self.node_key(k.1),
                    time: Timestamp(g.0),
                    last_time: Timestamp(g.1),
                    count: g.2,
                })
            })
            .collect();
        Trace {
            nodes: nodes.into_iter().map(|n| self.trace_node(n)).collect(),
            edges,
            truncated: w.truncated,
        }
    }

    fn host_key(&self, host: NodeId) -> &str {
        match self.nodes.get(host as usize).map(|n| &n.data) {
            Some(NodeData::Host { id, .. }) => self.strings.resolve(*id),
            _ => "",
        }
    }

    /// Stable, human-readable identity of a node (used as the trace's node id).
    pub fn node_key(&self, n: NodeId) -> String {
        let s = |x: Sym| self.strings.resolve(x);
        match self.nodes.get(n as usize).map(|x| &x.data) {
            None => String::new(),
            Some(NodeData::Host { id, .. }) => format!("host:{}", s(*id)),
            Some(NodeData::Process(im)) => format!("proc:{}@{}", im.process.id, im.start),
            Some(NodeData::Container { id, .. }) => format!("container:{}", s(*id)),
            Some(NodeData::File {
                host,
                container,
                path,
            }) => {
                let c = if *container == u32::MAX {
                    ""
                } else {
                    s(*container)
                };
                format!("file:{}:{}:{}", self.host_key(*host), c, s(*path))
            }
            Some(NodeData::Flow {
                role,
                host,
                protocol,
                ip,
                port,
            }) => {
                let role = match role {
                    FlowRole::RemoteServer => "server",
                    FlowRole::RemoteClient => "client",
                    FlowRole::Listen => "listen",
                };
                format!(
                    "flow:{role}:{}:{}:{}:{}",
                    self.host_key(*host),
                    s(*protocol),
                    s(*ip),
                    port
                )
            }
            Some(NodeData::Session {
                host, audit, root, ..
            }) => match audit {
                Some(a) => format!("session:{}:{a}", self.host_key(*host)),
                None => format!(
                    "session:{}:tty:{}",
                    self.host_key(*host),
                    root.map(|r| self.node_key(r)).unwrap_or_default()
                ),
            },
        }
    }

    /// A node with its label and details.
    pub fn trace_node(&self, n: NodeId) -> TraceNode {
        use serde_json::json;
        let s = |x: Sym| self.strings.resolve(x).to_string();
        let id = self.node_key(n);
        let Some(node) = self.nodes.get(n as usize) else {
            return TraceNode {
                id,
                kind: NodeKind::Host,
                label: String::new(),
                details: serde_json::Value::Null,
            };
        };
        let (label, details) = match &node.data {
            NodeData::Host { id, name } => (s(*name), json!({"id": s(*id), "name": s(*name)})),
            NodeData::Process(im) => {
                let p = &im.process;
                let mut label = if p.argv.is_empty() {
                    basename(&p.exe).to_string()
                } else {
                    p.argv.join(" ")
                };
                if label.chars().count() > 120 {
                    label = label.chars().take(117).collect::<String>() + "...";
                }
                let mut d = serde_json::to_value(p).unwrap_or_default();
                if let Some(m) = d.as_object_mut() {
                    m.insert("start".into(), json!(Timestamp(im.start)));
                    m.insert("exit".into(), json!(im.exit.map(Timestamp)));
                    m.insert("exit_code".into(), json!(im.exit_code));
                    m.insert("exit_signal".into(), json!(im.exit_signal));
                    m.insert("host".into(), json!(self.host_key(im.host)));
                    m.insert(
                        "session".into(),
                        json!(im.session.map(|x| self.node_key(x))),
                    );
                }
                (format!("{label} [{}]", p.pid), d)
            }
            NodeData::Container { id, runtime } => (
                s(*id).chars().take(12).collect(),
                json!({"id": s(*id), "runtime": s(*runtime)}),
            ),
            NodeData::File {
                host,
                container,
                path,
            } => (
                s(*path),
                json!({"path": s(*path), "host": self.host_key(*host),
                       "container": (*container != u32::MAX).then(|| s(*container))}),
            ),
            NodeData::Flow {
                role,
                protocol,
                ip,
                port,
                ..
            } => (
                format!("{} {}:{}", s(*protocol), s(*ip), port),
                json!({"role": role, "protocol": s(*protocol), "ip": s(*ip), "port": port}),
            ),
            NodeData::Session {
                audit,
                auid,
                tty,
                root,
                ..
            } => (
                format!(
                    "session {} (auid {})",
                    audit.map(|a| a.to_string()).unwrap_or_else(|| "tty".into()),
                    auid.map(|a| a.to_string()).unwrap_or_else(|| "-".into())
                ),
                json!({"audit_session": audit, "auid": auid, "tty": tty.map(s),
                       "root": root.map(|r| self.node_key(r))}),
            ),
        };
        TraceNode {
            id,
            kind: node.kind(),
            label,
            details,
        }
    }

    /// Canonical form: sorted node keys and sorted runs, independent of insertion order.
    /// Two graphs are the same graph iff their canonical forms are equal.
    pub fn canonical(&self) -> (Vec<String>, Vec<String>) {
        let mut nodes: Vec<String> = (0..self.nodes.len() as NodeId)
            .map(|n| self.node_key(n))
            .collect();
        nodes.sort();
        let mut runs: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                format!(
                    "{:?} {} -> {} [{}, {}] x{}",
                    r.kind,
                    self.node_key(r.src),
                    self.node_key(r.dst),
                    r.first,
                    r.last,
                    r.count
                )
            })
            .collect();
        runs.sort();
        (nodes, runs)
    }

    /// Run by id, for callers that walk with [`Graph::walk`].
    pub fn run(&self, r: RunId) -> Option<&Run> {
        self.runs.get(r as usize)
    }

    /// Node kind by id.
    pub fn node_kind(&self, n: NodeId) -> Option<NodeKind> {
        self.nodes.get(n as usize).map(|x| x.kind())
    }

    /// Find a node by its stable key (as in [`TraceNode::id`]). Linear: meant for tools.
    pub fn find_key(&self, key: &str) -> Option<NodeId> {
        (0..self.nodes.len() as NodeId).find(|&n| self.node_key(n) == key)
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
