//! [`ModelBuilder`]: events in, [`ThreatModel`] out. Feed each event to the node's
//! `ProcessIndex` first, then to [`ModelBuilder::observe`] with the index as the lineage.

use crate::classify::{self, AddrClass};
use crate::ids::stable_id;
use crate::model::*;
use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, Kind, Lineage, Process};
use rustc_hash::FxHashMap;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// Bounds of the builder.
#[derive(Debug, Clone, Copy)]
pub struct BuilderConfig {
    /// A connect is counted from its own side only if no monitored accept paired with it
    /// within this window (ns); the index's pairing window.
    pub pair_window_ns: i64,
    /// Connects held for pairing at most; beyond, the oldest are decided early (counted).
    pub max_pending: usize,
    /// How far up the ancestry a workload root is looked for.
    pub max_depth: usize,
    /// Outside addresses kept as a sample per flow or entry point.
    pub max_addresses: usize,
}

impl Default for BuilderConfig {
    fn default() -> Self {
        BuilderConfig {
            pair_window_ns: causeway_index::FlowConfig::default().window_ns,
            max_pending: 100_000,
            max_depth: 64,
            max_addresses: 16,
        }
    }
}

/// Fixed ids of the outside parties.
pub const INTERNET: &str = "internet";
pub const PRIVATE_NETWORK: &str = "private-network";
pub const LOCAL_UNMONITORED: &str = "local-unmonitored";

/// Builds the model from events in time order.
pub struct ModelBuilder {
    cfg: BuilderConfig,
    m: ThreatModel,
    /// Process id → workload id, resolved once per process image (dropped at exec and exit).
    resolved: FxHashMap<Arc<str>, Arc<str>>,
    /// Connects held for the pairing window (see the crate doc: a connection counts once).
    pending: VecDeque<Event>,
    newest: i64,
}

impl Default for ModelBuilder {
    fn default() -> Self {
        ModelBuilder::new(BuilderConfig::default())
    }
}

fn base(exe: &str) -> &str {
    exe.rsplit('/').next().unwrap_or(exe)
}

/// The script or module an interpreter runs: the first argument that is not an option
/// (`-m mod` gives `mod`).
fn script_of(p: &Process) -> Option<&str> {
    let mut it = p.argv.iter().skip(1);
    while let Some(a) = it.next() {
        if a == "-m" {
            return it.next().map(String::as_str);
        }
        if a == "-c" {
            return Some("-c");
        }
        if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

impl ModelBuilder {
    pub fn new(cfg: BuilderConfig) -> Self {
        ModelBuilder {
            cfg,
            m: ThreatModel::default(),
            resolved: FxHashMap::default(),
            pending: VecDeque::new(),
            newest: i64::MIN,
        }
    }

    /// Learn from one event (already observed by the index `lin`).
    pub fn observe(&mut self, lin: &dyn Lineage, e: &Event) {
        self.m.stats.events += 1;
        if e.process.id.is_empty() {
            self.m.stats.unattributed += 1;
            return;
        }
        self.newest = self.newest.max(e.time.0);
        if e.kind == Kind::ProcessExec {
            self.resolved.remove(e.process.id.as_str());
        }
        let wl = self.workload_of(lin, &e.process, e);
        match e.kind {
            Kind::ProcessExec => {
                if let Some(w) = self.m.workloads.get_mut(wl.as_ref()) {
                    let exe = e.process.exe.clone();
                    if w.executables.contains_key(&exe) || w.executables.len() < Workload::MAX_EXES
                    {
                        *w.executables.entry(exe).or_insert(0) += 1;
                    } else {
                        w.exes_truncated = true;
                    }
                    w.provenance
                        .saw(e.time, e.kind, &e.host.name, &e.process.id);
                }
            }
            Kind::ProcessExit => {
                self.resolved.remove(e.process.id.as_str());
            }
            Kind::NetListen => self.listen(&wl, e),
            Kind::NetAccept => self.accept(lin, &wl, e),
            Kind::NetConnect => {
                if e.network.is_none() {
                    self.m.stats.malformed += 1;
                } else {
                    self.pending.push_back(e.clone());
                }
            }
            Kind::FileOpen => self.file(&wl, e),
            _ => {}
        }
        self.flush(lin, false);
    }

    /// The model so far (pending connects decided as unpaired), idle workloads dropped.
    pub fn finish(mut self, lin: &dyn Lineage) -> ThreatModel {
        self.flush(lin, true);
        let mut m = self.m;
        let used: BTreeSet<String> = used_workloads(&m).into_iter().map(String::from).collect();
        m.workloads.retain(|id, _| used.contains(id));
        for ep in m.entry_points.values() {
            if classify::is_datastore_port(ep.port) {
                if let Some(w) = m.workloads.get_mut(&ep.workload) {
                    w.datastore = true;
                }
            }
        }
        for w in m.workloads.values_mut() {
            if w.executables.keys().any(|x| classify::is_datastore_exe(x)) {
                w.datastore = true;
            }
        }
        m.boundaries = boundaries(&m);
        m
    }

    fn flush(&mut self, lin: &dyn Lineage, all: bool) {
        let horizon = self.newest.saturating_sub(self.cfg.pair_window_ns);
        while let Some(front) = self.pending.front() {
            let over = self.pending.len() > self.cfg.max_pending;
            if !all && !over && front.time.0 >= horizon {
                break;
            }
            let Some(e) = self.pending.pop_front() else {
                break;
            };
            if over && !all && e.time.0 >= horizon {
                self.m.stats.pending_overflow += 1;
            }
            self.connect(lin, &e);
        }
    }

    /// Resolve (and register) the workload of a process.
    fn workload_of(&mut self, lin: &dyn Lineage, p: &Arc<Process>, e: &Event) -> Arc<str> {
        if let Some(w) = self.resolved.get(p.id.as_str()) {
            return Arc::clone(w);
        }
        let (kind, name, identity, container) = identify(lin, p, self.cfg.max_depth);
        let id = stable_id(&name, &identity);
        let w = self
            .m
            .workloads
            .entry(id.clone())
            .or_insert_with(|| Workload {
                id: id.clone(),
                name,
                kind,
                identity,
                container: container.as_ref().map(|c| c.id.clone()),
                runtime: container.as_ref().map(|c| c.runtime.clone()),
                executables: BTreeMap::new(),
                exes_truncated: false,
                processes: 0,
                datastore: false,
                provenance: Provenance::new(Confidence::Observed, e.time),
            });
        w.processes += 1;
        if w.executables.is_empty() && !p.exe.is_empty() {
            w.executables.insert(p.exe.clone(), 0);
        }
        w.provenance.saw(e.time, e.kind, &e.host.name, &p.id);
        let id: Arc<str> = Arc::from(id);
        self.resolved
            .insert(Arc::from(p.id.as_str()), Arc::clone(&id));
        id
    }

    fn listen(&mut self, wl: &str, e: &Event) {
        let Some(n) = &e.network else {
            self.m.stats.malformed += 1;
            return;
        };
        let ep = self.entry(wl, &n.protocol, n.local.port, e.time);
        ep.bind.insert(n.local.ip.clone());
        ep.exposed |= classify::addr_class(&n.local.ip) != AddrClass::Loopback;
        ep.provenance
            .saw(e.time, e.kind, &e.host.name, &e.process.id);
    }

    fn entry(&mut self, wl: &str, transport: &str, port: u16, t: Timestamp) -> &mut EntryPoint {
        let name = format!("{} {transport} {port}", self.m.name_of(wl));
        let id = stable_id(&name, &format!("entry\0{wl}\0{transport}\0{port}"));
        self.m
            .entry_points
            .entry(id.clone())
            .or_insert_with(|| EntryPoint {
                id,
                workload: wl.to_string(),
                transport: transport.to_string(),
                port,
                bind: BTreeSet::new(),
                exposed: false,
                reached: Reached::default(),
                provenance: Provenance::new(Confidence::Observed, t),
            })
    }

    fn accept(&mut self, lin: &dyn Lineage, wl: &Arc<str>, e: &Event) {
        let Some(n) = &e.network else {
            self.m.stats.malformed += 1;
            return;
        };
        let max = self.cfg.max_addresses;
        let client = lin
            .peer(e)
            .map(|p| self.workload_of(lin, &p, e).to_string());
        let ep = self.entry(wl, &n.protocol, n.local.port, e.time);
        ep.bind.insert(n.local.ip.clone());
        ep.exposed |= classify::addr_class(&n.local.ip) != AddrClass::Loopback;
        ep.provenance
            .saw(e.time, e.kind, &e.host.name, &e.process.id);
        let source = match client {
            Some(c) => {
                *ep.reached.workloads.entry(c.clone()).or_insert(0) += 1;
                self.m.stats.connects_paired += 1;
                Peer::Workload(c)
            }
            None => match classify::addr_class(&n.remote.ip) {
                AddrClass::Loopback => {
                    ep.reached.local += 1;
                    return;
                }
                class => {
                    ep.reached.external += 1;
                    if ep.reached.external_addresses.len() < max {
                        ep.reached.external_addresses.insert(n.remote.ip.clone());
                    }
                    Peer::External(self.external(class, e).to_string())
                }
            },
        };
        let target = Peer::Workload(wl.to_string());
        self.flow(source, target, e, n.local.port, Some(&n.remote.ip));
    }

    fn connect(&mut self, lin: &dyn Lineage, e: &Event) {
        let Some(n) = &e.network else { return };
        if lin.peer(e).is_some() {
            // A monitored server accepted it: counted from the accept.
            return;
        }
        let wl = self.workload_of(lin, &e.process, e);
        let class = classify::addr_class(&n.remote.ip);
        let target = Peer::External(self.external(class, e).to_string());
        self.flow(
            Peer::Workload(wl.to_string()),
            target,
            e,
            n.remote.port,
            Some(&n.remote.ip),
        );
    }

    fn external(&mut self, class: AddrClass, e: &Event) -> &'static str {
        let (id, name, internet) = match class {
            AddrClass::Public => (INTERNET, "Internet", true),
            AddrClass::Loopback | AddrClass::Unspecified => {
                (LOCAL_UNMONITORED, "local, unmonitored peer", false)
            }
            AddrClass::Private | AddrClass::Unparsed => {
                (PRIVATE_NETWORK, "private network, unmonitored peer", false)
            }
        };
        let x = self
            .m
            .externals
            .entry(id.to_string())
            .or_insert_with(|| ExternalEntity {
                id: id.to_string(),
                name: name.to_string(),
                internet,
                provenance: Provenance::new(Confidence::Inferred, e.time),
            });
        x.provenance
            .saw(e.time, e.kind, &e.host.name, &e.process.id);
        id
    }

    fn flow(&mut self, source: Peer, target: Peer, e: &Event, port: u16, addr: Option<&str>) {
        let Some(n) = &e.network else { return };
        let transport = n.protocol.as_str();
        let name = format!(
            "{} to {} {transport} {port}",
            self.m.name_of(source.id()),
            self.m.name_of(target.id())
        );
        let key = format!(
            "flow\0{}\0{}\0{transport}\0{port}",
            source.id(),
            target.id()
        );
        let id = stable_id(&name, &key);
        let external = matches!(source, Peer::External(_)) || matches!(target, Peer::External(_));
        let f = self.m.flows.entry(id.clone()).or_insert_with(|| {
            let protocol = classify::protocol_for_port(port).to_string();
            Flow {
                id,
                source,
                target,
                transport: transport.to_string(),
                port,
                protocol,
                connections: 0,
                bytes: None,
                addresses: BTreeSet::new(),
                provenance: Provenance::new(Confidence::Observed, e.time),
            }
        });
        f.connections += e.occurrences();
        f.provenance
            .saw(e.time, e.kind, &e.host.name, &e.process.id);
        if let Some(a) = addr.filter(|_| external) {
            if f.addresses.len() < self.cfg.max_addresses {
                f.addresses.insert(a.to_string());
            }
        }
    }

    fn file(&mut self, wl: &str, e: &Event) {
        let Some(f) = &e.file else {
            self.m.stats.malformed += 1;
            return;
        };
        if !f.sensitive || f.write {
            return;
        }
        let (group, description) = classify::sensitive_group(&f.path);
        let a = self
            .m
            .data_assets
            .entry(group.to_string())
            .or_insert_with(|| DataAsset {
                id: group.to_string(),
                description: description.to_string(),
                paths: BTreeSet::new(),
                paths_truncated: false,
                readers: BTreeMap::new(),
                provenance: Provenance::new(Confidence::Observed, e.time),
            });
        if !a.paths.contains(&f.path) {
            if a.paths.len() < DataAsset::MAX_PATHS {
                a.paths.insert(f.path.clone());
            } else {
                a.paths_truncated = true;
            }
        }
        *a.readers.entry(wl.to_string()).or_insert(0) += e.occurrences();
        a.provenance
            .saw(e.time, e.kind, &e.host.name, &e.process.id);
    }
}

/// A workload's identity: (kind, display name, identity key, container).
fn identify(
    lin: &dyn Lineage,
    p: &Arc<Process>,
    max_depth: usize,
) -> (
    WorkloadKind,
    String,
    String,
    Option<causeway_model::Container>,
) {
    if let Some(c) = &p.container {
        let short: String = c.id.chars().take(12).collect();
        return (
            WorkloadKind::Container,
            format!("container {short}"),
            format!("container\0{}", c.id),
            Some(c.clone()),
        );
    }
    // Session scopes and user managers are not services: a login's processes are host trees.
    if let Some(s) = p
        .service
        .as_ref()
        .filter(|s| s.ends_with(".service") && !s.starts_with("user@"))
    {
        return (
            WorkloadKind::Service,
            s.clone(),
            format!("service\0{s}"),
            None,
        );
    }
    // The root: climb while the parent is an ordinary process of the same attribution (no
    // container, no service), stopping below init, a session or a shell.
    let mut root = Arc::clone(p);
    for a in lin.ancestors(&p.id, max_depth) {
        let stop = a.pid <= 1
            || classify::is_session(&a.exe)
            || a.container.is_some()
            || a.service.as_ref().is_some_and(|s| s.ends_with(".service"));
        if stop {
            break;
        }
        root = a;
    }
    let exe = if root.exe.is_empty() {
        root.comm.as_str()
    } else {
        root.exe.as_str()
    };
    let script = if classify::is_interpreter(exe) {
        script_of(&root)
    } else {
        None
    };
    let name = match script {
        Some(s) => format!("{} {s}", base(exe)),
        None => base(exe).to_string(),
    };
    let identity = format!("exe\0{exe}\0{}", script.unwrap_or(""));
    (WorkloadKind::HostExecutable, name, identity, None)
}

fn used_workloads(m: &ThreatModel) -> BTreeSet<&str> {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    for ep in m.entry_points.values() {
        used.insert(&ep.workload);
        used.extend(ep.reached.workloads.keys().map(String::as_str));
    }
    for f in m.flows.values() {
        for p in [&f.source, &f.target] {
            if let Peer::Workload(w) = p {
                used.insert(w);
            }
        }
    }
    for a in m.data_assets.values() {
        used.extend(a.readers.keys().map(String::as_str));
    }
    used
}

/// The boundary tree: internet (internet entities), one box per host (its host workloads),
/// one per container inside its host. An element sits in exactly one boundary: a workload
/// seen on several hosts sits in the first host by name.
fn boundaries(m: &ThreatModel) -> BTreeMap<String, Boundary> {
    let mut out: BTreeMap<String, Boundary> = BTreeMap::new();
    let internet: BTreeSet<String> = m
        .externals
        .values()
        .filter(|x| x.internet)
        .map(|x| x.id.clone())
        .collect();
    if !internet.is_empty() {
        out.insert(
            "internet".into(),
            Boundary {
                id: "internet".into(),
                name: "Internet".into(),
                kind: BoundaryKind::Internet,
                parent: None,
                members: internet,
            },
        );
    }
    for w in m.workloads.values() {
        let host = w
            .provenance
            .hosts
            .iter()
            .next()
            .cloned()
            .unwrap_or_default();
        let hid = stable_id(&format!("host {host}"), &format!("host\0{host}"));
        let hb = out.entry(hid.clone()).or_insert_with(|| Boundary {
            id: hid.clone(),
            name: format!("host {host}"),
            kind: BoundaryKind::Host,
            parent: None,
            members: BTreeSet::new(),
        });
        match &w.container {
            Some(c) => {
                let short: String = c.chars().take(12).collect();
                let cid = stable_id(&format!("container {short}"), &format!("boundary\0{c}"));
                let cb = out.entry(cid.clone()).or_insert_with(|| Boundary {
                    id: cid,
                    name: format!("container {short}"),
                    kind: BoundaryKind::Container,
                    parent: Some(hid),
                    members: BTreeSet::new(),
                });
                cb.members.insert(w.id.clone());
            }
            None => {
                hb.members.insert(w.id.clone());
            }
        }
    }
    out
}
