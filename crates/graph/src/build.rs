//! Building the graph: attribute each event to entities and add (or fold) its edges.
//!
//! Events are expected in time order (the [`Reorder`] buffer behind [`Graph::ingest_event`]
//! provides it). An edge at the same instant as, or older than, occurrences already folded
//! into a run may invalidate that fold: the run's last occurrence is then peeled off into its
//! own run when all its other occurrences are known to precede the new edge (exact), and
//! otherwise a marker run (`count == 0`) claims an occurrence at the new edge's time
//! (conservative: traces never lose the late cause, but may include a path the unreduced
//! graph would not). Only events later than the reorder horizon can hit the conservative case.

use crate::reorder::Reorder;
use crate::types::*;
use causeway_index::flow::{flow_key, norm_ip, FlowConfig, Side};
use causeway_model::{Container, Event, Host, Kind, Process};
use rustc_hash::FxHashMap;
use std::sync::Arc;

mod exec;

/// Tuning knobs.
#[derive(Debug, Clone)]
pub struct GraphConfig {
    /// Fold repeated edges (dependence-preserving reduction). Off only for tests/benchmarks.
    pub reduce: bool,
    /// How connects and accepts pair into flows: the node's one rule
    /// ([`causeway_index::flow`]), so traces and incidents agree on who talked to whom.
    pub flow: FlowConfig,
    /// Reorder horizon of [`Graph::ingest_event`] (ns of event time).
    pub reorder_ns: i64,
}

impl Default for GraphConfig {
    fn default() -> Self {
        GraphConfig {
            reduce: true,
            flow: FlowConfig::default(),
            reorder_ns: 5_000_000_000,
        }
    }
}

/// What applying one event did to the edges: the first edge it produced and whether every
/// edge it produced was folded into an existing run. The store uses this to fold identical
/// repeated events on disk exactly where the graph folded them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    pub run: Option<RunId>,
    pub merged: bool,
}

/// Counters and sizes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GraphStats {
    pub events: u64,
    pub late_events: u64,
    pub nodes: usize,
    pub processes: usize,
    pub files: usize,
    pub flows: usize,
    pub sessions: usize,
    pub runs: usize,
    /// Edge occurrences represented by the runs (before reduction).
    pub occurrences: u64,
    /// Approximate heap bytes held by the graph.
    pub heap_bytes: usize,
}

#[derive(Debug, Default)]
pub(crate) struct ProcEntry {
    /// Images of this process, sorted by (start, node).
    pub(crate) timeline: Vec<(i64, NodeId)>,
    /// A link to the parent was made or is pending.
    parent_linked: bool,
}

#[derive(Debug, Default)]
pub(crate) struct FlowSides {
    pub(crate) connects: Vec<(i64, NodeId)>,
    pub(crate) accepts: Vec<(i64, NodeId)>,
}

/// (protocol, client ip, client port, server ip, server port).
pub(crate) type FlowKey = (Sym, Sym, u16, Sym, u16);

const NONE: u32 = u32::MAX;

/// Executables whose children with a terminal start an interactive session.
const LOGIN_PROGRAMS: [&str; 6] = ["sshd", "sshd-session", "login", "su", "sudo", "agetty"];

/// The causal graph.
#[derive(Debug)]
pub struct Graph {
    pub(crate) cfg: GraphConfig,
    pub(crate) nodes: Vec<Node>,
    pub(crate) runs: Vec<Run>,
    pub(crate) strings: Interner,
    pub(crate) procs: FxHashMap<Box<str>, ProcEntry>,
    pending_children: FxHashMap<Box<str>, Vec<(NodeId, i64)>>,
    hosts: FxHashMap<Sym, NodeId>,
    containers: FxHashMap<Sym, NodeId>,
    pub(crate) files: FxHashMap<(NodeId, Sym, Sym), NodeId>,
    flow_nodes: FxHashMap<(FlowRole, NodeId, Sym, Sym, u16), NodeId>,
    pub(crate) flows: FxHashMap<FlowKey, FlowSides>,
    audit_sessions: FxHashMap<(NodeId, u32), NodeId>,
    pub(crate) latest_run: FxHashMap<(NodeId, NodeId, EdgeKind), RunId>,
    max_applied: i64,
    pub(crate) events: u64,
    pub(crate) late_events: u64,
    reorder: Reorder,
}

impl Default for Graph {
    fn default() -> Self {
        Graph::new(GraphConfig::default())
    }
}

fn lookup(timeline: &[(i64, NodeId)], t: i64) -> Option<NodeId> {
    let i = timeline.partition_point(|&(s, _)| s <= t);
    if i > 0 {
        Some(timeline[i - 1].1)
    } else {
        // Earlier than every known image (a too-late event): attribute to the first image.
        timeline.first().map(|x| x.1)
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Graph {
    pub fn new(cfg: GraphConfig) -> Self {
        let reorder = Reorder::new(cfg.reorder_ns);
        Graph {
            cfg,
            nodes: Vec::new(),
            runs: Vec::new(),
            strings: Interner::default(),
            procs: FxHashMap::default(),
            pending_children: FxHashMap::default(),
            hosts: FxHashMap::default(),
            containers: FxHashMap::default(),
            files: FxHashMap::default(),
            flow_nodes: FxHashMap::default(),
            flows: FxHashMap::default(),
            audit_sessions: FxHashMap::default(),
            latest_run: FxHashMap::default(),
            max_applied: i64::MIN,
            events: 0,
            late_events: 0,
            reorder,
        }
    }

    /// Live ingestion: buffer the event in the reorder window and apply what is ready.
    /// Call [`Graph::flush`] before querying to see the newest events.
    pub fn ingest_event(&mut self, ev: Event) {
        let mut r = std::mem::take(&mut self.reorder);
        r.push(ev, &mut |e| {
            self.apply(&e);
        });
        self.reorder = r;
    }

    /// Apply every buffered event.
    pub fn flush(&mut self) {
        let mut r = std::mem::take(&mut self.reorder);
        r.drain(&mut |e| {
            self.apply(&e);
        });
        self.reorder = r;
    }

    /// Events waiting in the reorder buffer.
    pub fn pending(&self) -> usize {
        self.reorder.len()
    }

    /// Apply one event now (callers that already deliver in time order, e.g. a replay).
    pub fn apply(&mut self, ev: &Event) -> Verdict {
        let t = ev.time.0;
        if t < self.max_applied {
            self.late_events += 1;
        }
        self.max_applied = self.max_applied.max(t);
        self.events += 1;
        let host = self.host_node(&ev.host);
        let p = &ev.process;
        let mut v = Verdict::default();
        match ev.kind {
            Kind::ProcessFork => self.fork(p, host, t),
            Kind::ProcessExec => v = self.exec(ev, host, t),
            Kind::ProcessExit => {
                let img = self.image_at(p, host, t);
                if let Some(NodeData::Process(im)) =
                    self.nodes.get_mut(img as usize).map(|n| &mut n.data)
                {
                    im.exit = Some(t);
                    if let Some(x) = &ev.exit {
                        im.exit_code = x.code;
                        im.exit_signal = x.signal;
                    }
                }
            }
            Kind::NetConnect | Kind::NetAccept => {
                let img = self.image_at(p, host, t);
                if let Some(n) = &ev.network {
                    v = self.flow(img, n, ev.kind == Kind::NetConnect, t);
                }
            }
            Kind::NetListen => {
                let img = self.image_at(p, host, t);
                if let Some(n) = &ev.network {
                    let proto = self.strings.intern(&n.protocol);
                    let ip = self.strings.intern(norm_ip(&n.local.ip));
                    let f = self.flow_node(FlowRole::Listen, host, proto, ip, n.local.port);
                    v = self.edge(img, f, EdgeKind::ListenedOn, t);
                }
            }
            Kind::FileOpen | Kind::FileUnlink | Kind::FileChmod | Kind::FileRename => {
                let img = self.image_at(p, host, t);
                if let Some(fl) = &ev.file {
                    let f = self.file_node(host, p.container.as_ref(), &fl.path);
                    v = match ev.kind {
                        Kind::FileOpen if fl.write => self.edge(img, f, EdgeKind::Wrote, t),
                        Kind::FileOpen => self.edge(f, img, EdgeKind::Read, t),
                        Kind::FileUnlink => self.edge(img, f, EdgeKind::Unlinked, t),
                        Kind::FileChmod => self.edge(img, f, EdgeKind::Chmod, t),
                        _ => match &fl.new_path {
                            Some(np) => {
                                let nf = self.file_node(host, p.container.as_ref(), np);
                                let a = self.edge(img, nf, EdgeKind::Renamed, t);
                                let b = self.edge(f, nf, EdgeKind::RenamedTo, t);
                                Verdict {
                                    run: a.run,
                                    merged: a.merged && b.merged,
                                }
                            }
                            None => self.edge(img, f, EdgeKind::Renamed, t),
                        },
                    };
                }
            }
            Kind::CredChange => {
                let img = self.image_at(p, host, t);
                v = self.edge(img, img, EdgeKind::ChangedCredentials, t);
            }
            Kind::ProcessPtrace => {
                let img = self.image_at(p, host, t);
                if let Some(tg) = ev.target.as_ref().filter(|tg| !tg.id.is_empty()) {
                    let tp = Arc::new(Process {
                        id: tg.id.clone(),
                        pid: tg.pid,
                        ..Default::default()
                    });
                    let timg = self.image_at(&tp, host, t);
                    v = self.edge(img, timg, EdgeKind::Ptraced, t);
                }
            }
            Kind::FsMount
            | Kind::KernelModuleLoad
            | Kind::KernelBpfLoad
            | Kind::ProcessMemfdCreate => {
                self.image_at(p, host, t);
            }
        }
        v
    }

    fn push_node(&mut self, data: NodeData) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node::new(data));
        id
    }

    fn host_node(&mut self, h: &Host) -> NodeId {
        // Hosts are keyed by machine id; fall back to the name when an agent has no id.
        let key = if h.id.is_empty() { &h.name } else { &h.id };
        let id = self.strings.intern(key);
        if let Some(&n) = self.hosts.get(&id) {
            return n;
        }
        let name = self.strings.intern(&h.name);
        let n = self.push_node(NodeData::Host { id, name });
        self.hosts.insert(id, n);
        n
    }

    fn container_node(&mut self, c: &Container) -> NodeId {
        let id = self.strings.intern(&c.id);
        if let Some(&n) = self.containers.get(&id) {
            return n;
        }
        let runtime = self.strings.intern(&c.runtime);
        let n = self.push_node(NodeData::Container { id, runtime });
        self.containers.insert(id, n);
        n
    }

    fn file_node(&mut self, host: NodeId, c: Option<&Container>, path: &str) -> NodeId {
        // Paths inside a container name files in its own mount namespace.
        let container = c.map(|c| self.strings.intern(&c.id)).unwrap_or(NONE);
        let path = self.strings.intern(path);
        if let Some(&n) = self.files.get(&(host, container, path)) {
            return n;
        }
        let n = self.push_node(NodeData::File {
            host,
            container,
            path,
        });
        self.files.insert((host, container, path), n);
        n
    }

    fn flow_node(
        &mut self,
        role: FlowRole,
        host: NodeId,
        proto: Sym,
        ip: Sym,
        port: u16,
    ) -> NodeId {
        let key = (role, host, proto, ip, port);
        if let Some(&n) = self.flow_nodes.get(&key) {
            return n;
        }
        let n = self.push_node(NodeData::Flow {
            role,
            host,
            protocol: proto,
            ip,
            port,
        });
        self.flow_nodes.insert(key, n);
        n
    }

    fn proc_key(p: &Process, host: NodeId) -> Box<str> {
        if p.id.is_empty() {
            // No stable id from the agent: the best we have is (host, pid).
            format!("?{host}:{}", p.pid).into()
        } else {
            p.id.as_str().into()
        }
    }

    fn image(&self, n: NodeId) -> Option<&Image> {
        match self.nodes.get(n as usize).map(|n| &n.data) {
            Some(NodeData::Process(im)) => Some(im),
            _ => None,
        }
    }

    fn image_mut(&mut self, n: NodeId) -> Option<&mut Image> {
        match self.nodes.get_mut(n as usize).map(|n| &mut n.data) {
            Some(NodeData::Process(im)) => Some(im),
            _ => None,
        }
    }

    /// The image `p` was running at `t`, created (and linked to its parent) if unseen.
    fn image_at(&mut self, p: &Arc<Process>, host: NodeId, t: i64) -> NodeId {
        // Hot path: look up by the borrowed id, allocate a key only for a new process.
        if !p.id.is_empty() {
            if let Some(n) = self
                .procs
                .get(p.id.as_str())
                .and_then(|e| lookup(&e.timeline, t))
            {
                return n;
            }
        }
        let key = Self::proc_key(p, host);
        if let Some(n) = self.procs.get(&key).and_then(|e| lookup(&e.timeline, t)) {
            return n;
        }
        let start = p.start_time.map(|s| s.0).filter(|&s| s <= t).unwrap_or(t);
        let img = self.new_image(p, key.clone(), host, start);
        self.link_first(img, &key, &p.parent_id, start);
        img
    }

    fn new_image(&mut self, p: &Arc<Process>, key: Box<str>, host: NodeId, start: i64) -> NodeId {
        let container = p.container.as_ref().map(|c| self.container_node(c));
        let img = self.push_node(NodeData::Process(Box::new(Image {
            process: Arc::clone(p),
            start,
            exit: None,
            exit_code: None,
            exit_signal: None,
            host,
            session: None,
            container,
        })));
        if let (Some(s), Some(a)) = (p.session, p.auid) {
            let sess = match self.audit_sessions.get(&(host, s)) {
                Some(&n) => n,
                None => {
                    let tty = p.tty.as_deref().map(|t| self.strings.intern(t));
                    let n = self.push_node(NodeData::Session {
                        host,
                        audit: Some(s),
                        auid: Some(a),
                        tty,
                        root: None,
                    });
                    self.audit_sessions.insert((host, s), n);
                    n
                }
            };
            self.join_session(img, sess);
        }
        let entry = self.procs.entry(key.clone()).or_default();
        let at = entry.timeline.partition_point(|&x| x < (start, img));
        entry.timeline.insert(at, (start, img));
        if entry.timeline.len() == 1 {
            // Children that showed up before this process did can now be linked.
            if let Some(waiting) = self.pending_children.remove(&key) {
                for (child, t) in waiting {
                    self.link_parent(child, &key, t);
                }
            }
        }
        img
    }

    fn join_session(&mut self, img: NodeId, sess: NodeId) {
        let start = self.image(img).map(|i| i.start).unwrap_or(0);
        let cur_root = match self.nodes.get(sess as usize).map(|n| &n.data) {
            Some(NodeData::Session { root, .. }) => *root,
            _ => return,
        };
        let earlier = match cur_root.and_then(|r| self.image(r)) {
            Some(r) => (start, img) < (r.start, cur_root.unwrap_or(NONE)),
            None => true,
        };
        if let Some(im) = self.image_mut(img) {
            im.session = Some(sess);
        }
        if earlier {
            if let Some(NodeData::Session { root, .. }) =
                self.nodes.get_mut(sess as usize).map(|n| &mut n.data)
            {
                *root = Some(img);
            }
        }
    }

    /// Link a process's first image to its parent (once per process).
    fn link_first(&mut self, img: NodeId, key: &str, parent_id: &str, t: i64) {
        let Some(entry) = self.procs.get_mut(key) else {
            return;
        };
        if entry.parent_linked || parent_id.is_empty() {
            return;
        }
        entry.parent_linked = true;
        self.link_parent(img, parent_id, t);
    }

    fn link_parent(&mut self, child: NodeId, parent_id: &str, t: i64) {
        let pimg = self
            .procs
            .get(parent_id)
            .and_then(|e| lookup(&e.timeline, t));
        let Some(pimg) = pimg else {
            self.pending_children
                .entry(parent_id.into())
                .or_default()
                .push((child, t));
            return;
        };
        self.edge(pimg, child, EdgeKind::Spawned, t);
        self.inherit_session(child, pimg);
    }

    fn inherit_session(&mut self, child: NodeId, parent: NodeId) {
        let (Some(c), Some(p)) = (self.image(child), self.image(parent)) else {
            return;
        };
        if c.session.is_some() {
            return;
        }
        let login = LOGIN_PROGRAMS.contains(&basename(&p.process.exe))
            && c.process.tty.is_some()
            && c.process.tty != p.process.tty;
        if login {
            let (host, tty) = (c.host, c.process.tty.clone());
            let tty = tty.map(|t| self.strings.intern(&t));
            let sess = self.push_node(NodeData::Session {
                host,
                audit: None,
                auid: None,
                tty,
                root: None,
            });
            self.join_session(child, sess);
        } else if let Some(s) = p.session {
            self.join_session(child, s);
        }
    }

    fn fork(&mut self, p: &Arc<Process>, host: NodeId, t: i64) {
        let key = Self::proc_key(p, host);
        let has = self.procs.get(&key).is_some_and(|e| !e.timeline.is_empty());
        if !has {
            self.new_image(p, key.clone(), host, t);
        }
        if let Some(first) = self
            .procs
            .get(&key)
            .and_then(|e| e.timeline.first())
            .map(|x| x.1)
        {
            self.link_first(first, &key, &p.parent_id, t);
        }
    }

    fn flow(&mut self, img: NodeId, n: &causeway_model::Network, connect: bool, t: i64) -> Verdict {
        let side = if connect { Side::Client } else { Side::Server };
        let (proto, cip, cport, sip, sport) = flow_key(n, side);
        let key = (
            self.strings.intern(proto),
            self.strings.intern(cip),
            cport,
            self.strings.intern(sip),
            sport,
        );
        let (proto, rip) = (key.0, self.strings.intern(norm_ip(&n.remote.ip)));
        let pairing = self.cfg.flow;
        let sides = self.flows.entry(key).or_default();
        let (mine, theirs) = if connect {
            (&mut sides.connects, &sides.accepts)
        } else {
            (&mut sides.accepts, &sides.connects)
        };
        mine.push((t, img));
        let peers: Vec<(i64, NodeId)> = theirs
            .iter()
            .filter(|(tp, _)| pairing.pairs(*tp, t))
            .copied()
            .collect();
        let mut v = Verdict {
            run: None,
            merged: true,
        };
        if peers.is_empty() {
            let f = if connect {
                self.flow_node(FlowRole::RemoteServer, NONE, proto, rip, n.remote.port)
            } else {
                self.flow_node(FlowRole::RemoteClient, NONE, proto, rip, 0)
            };
            return if connect {
                self.edge(img, f, EdgeKind::Connected, t)
            } else {
                self.edge(f, img, EdgeKind::Connected, t)
            };
        }
        for (tp, peer) in peers {
            // The link exists once both sides are known, i.e. at the later of the two times:
            // that keeps it in time order whichever side is applied first.
            let at = t.max(tp);
            let (c, s) = if connect { (img, peer) } else { (peer, img) };
            let e = self.edge(c, s, EdgeKind::Connected, at);
            v.run = v.run.or(e.run);
            v.merged &= e.merged;
        }
        v
    }

    /// Add one occurrence of `u -> v` at `t`, folding it into the latest run of the same
    /// `(u, v, kind)` when that provably changes no trace:
    /// - backward: `u` received nothing after the run's first occurrence, so reaching `u`
    ///   through any occurrence yields the same ancestors as through the first;
    /// - forward: `v` emitted nothing after the run's first occurrence, so leaving `v` after
    ///   any later occurrence reaches the same descendants as after the last.
    ///
    /// Edges that arrive at the same instant as, or later than, occurrences already folded
    /// can break those conditions after the fact; [`Graph::split_around`] repairs that.
    fn edge(&mut self, u: NodeId, v: NodeId, kind: EdgeKind, t: i64) -> Verdict {
        let mut verdict = None;
        if self.cfg.reduce {
            if let Some(&r) = self.latest_run.get(&(u, v, kind)) {
                let run = self.runs[r as usize];
                if run.count > 0
                    && t >= run.first
                    && self.nodes[u as usize].last_in <= run.first
                    && self.nodes[v as usize].last_out <= run.first
                {
                    let run = &mut self.runs[r as usize];
                    if t >= run.last {
                        run.prev = run.last;
                        run.last = t;
                    } else {
                        run.prev = run.prev.max(t);
                    }
                    run.count += 1;
                    verdict = Some(Verdict {
                        run: Some(r),
                        merged: true,
                    });
                }
            }
        }
        let verdict = match verdict {
            Some(v) => v,
            None => {
                let r = self.push_run(Run {
                    src: u,
                    dst: v,
                    kind,
                    first: t,
                    last: t,
                    prev: t,
                    count: 1,
                });
                if self.cfg.reduce {
                    self.latest_run.insert((u, v, kind), r);
                }
                Verdict {
                    run: Some(r),
                    merged: false,
                }
            }
        };
        if self.cfg.reduce {
            let this = verdict.run.unwrap_or(NONE);
            if self.nodes[v as usize].last_out >= t {
                self.split_around(v, t, this, true);
            }
            if self.nodes[u as usize].last_in > t {
                self.split_around(u, t, this, false);
            }
        }
        self.touch(u, v, t);
        verdict
    }

    /// `n` just gained an in-edge (`outs == true`: check its out-runs) or an out-edge (check
    /// its in-runs) at `t`, which may fall inside a folded run. Peel the run's last
    /// occurrence into its own run when every other occurrence is known to precede `t`
    /// (exact); otherwise add a marker run claiming an occurrence at `t` (conservative).
    fn split_around(&mut self, n: NodeId, t: i64, this: RunId, outs: bool) {
        let list = if outs {
            &self.nodes[n as usize].outs
        } else {
            &self.nodes[n as usize].ins
        };
        let hits: Vec<RunId> = list
            .iter()
            .copied()
            .filter(|&r| r != this)
            .filter(|&r| {
                let x = &self.runs[r as usize];
                x.count > 1 && x.first < t && (if outs { t <= x.last } else { t < x.last })
            })
            .collect();
        for r in hits {
            let x = self.runs[r as usize];
            if x.prev < t {
                let run = &mut self.runs[r as usize];
                run.last = x.prev;
                run.count -= 1;
                let tail = self.push_run(Run {
                    first: x.last,
                    prev: x.last,
                    count: 1,
                    ..x
                });
                if self.latest_run.get(&(x.src, x.dst, x.kind)) == Some(&r) {
                    self.latest_run.insert((x.src, x.dst, x.kind), tail);
                }
            } else {
                let (first, last) = if outs { (t, x.last) } else { (t, t) };
                self.push_run(Run {
                    first,
                    last,
                    prev: last,
                    count: 0,
                    ..x
                });
            }
        }
    }

    fn push_run(&mut self, run: Run) -> RunId {
        let r = self.runs.len() as RunId;
        self.nodes[run.src as usize].outs.push(r);
        self.nodes[run.dst as usize].ins.push(r);
        self.runs.push(run);
        r
    }

    fn touch(&mut self, u: NodeId, v: NodeId, t: i64) {
        let nu = &mut self.nodes[u as usize];
        nu.last_out = nu.last_out.max(t);
        let nv = &mut self.nodes[v as usize];
        nv.last_in = nv.last_in.max(t);
    }

    /// Images of a process id, oldest first.
    pub fn images_of(&self, process_id: &str) -> Vec<NodeId> {
        self.procs
            .get(process_id)
            .map(|e| e.timeline.iter().map(|x| x.1).collect())
            .unwrap_or_default()
    }

    /// Every process id in the graph.
    pub fn process_ids(&self) -> impl Iterator<Item = &str> {
        self.procs.keys().map(|k| &**k)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn run_count(&self) -> usize {
        self.runs.len()
    }
}
