//! The walk shared by learning and diffing, the deviations it reports, and `merge`.

use crate::net::Cidr;
use crate::track::{basename, glob_match, user_matches, user_name, Tracker};
use crate::{NetRule, Peer, Policy, PortSpec, ProcessNode};
use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, Kind};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What kind of thing the policy does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviationKind {
    /// An executable not in the tree at that position.
    Process,
    /// A known executable run as a user the node does not list.
    User,
    /// A listening port the node does not list.
    Listen,
    /// An accepted connection no ingress rule allows.
    Ingress,
    /// An outbound connection no egress rule allows.
    Egress,
}

/// Which list a flow belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Ingress,
    Egress,
}

/// The policy change that would allow a deviation (what `merge` applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Add `node` (without children) under the node `under` (top level when `None`).
    AddProcess {
        under: Option<String>,
        node: ProcessNode,
    },
    AddUser {
        node: String,
        user: String,
    },
    AddListen {
        node: String,
        port: PortSpec,
    },
    /// Allow this peer (a single host) on this port for this process node. `cidr` is `None`
    /// when the event's address did not parse; such a flow is reported but cannot be merged.
    AddFlow {
        direction: Direction,
        node: String,
        cidr: Option<Cidr>,
        port: PortSpec,
    },
}

/// One thing the policy does not allow, at its first occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deviation {
    /// Stable across runs over the same policy and events: `kind:node:what`.
    pub key: String,
    pub kind: DeviationKind,
    pub time: Timestamp,
    pub event_kind: Kind,
    pub process_id: String,
    pub pid: u32,
    pub exe: String,
    /// What is not allowed, for people (workload strings quoted as data).
    pub message: String,
    pub change: Change,
}

/// Where an instance was first seen.
#[derive(Debug, Clone)]
struct Origin {
    time: Timestamp,
    kind: Kind,
    process_id: String,
    pid: u32,
}

/// Grows `policy` from events; with `record`, every growth is a deviation. Fed one event at
/// a time it is also the live checker: each deviation is reported once, at its first event.
pub struct Walker {
    pub policy: Policy,
    record: bool,
    tracker: Tracker,
    origin: Vec<Origin>,
    node_of: HashMap<usize, String>,
    used_ids: HashSet<String>,
    pub deviations: Vec<Deviation>,
    seen_keys: HashSet<String>,
    /// Workload events inside the window.
    pub events_seen: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl Walker {
    pub fn new(policy: Policy, record: bool) -> Self {
        let used_ids = policy.nodes().iter().map(|n| n.id.clone()).collect();
        Walker {
            policy,
            record,
            tracker: Tracker::default(),
            origin: Vec::new(),
            node_of: HashMap::new(),
            used_ids,
            deviations: Vec::new(),
            seen_keys: HashSet::new(),
            events_seen: 0,
            first: None,
            last: None,
        }
    }

    /// Feed every event (sorted here by time); only those in `[since, until]` count, the
    /// earlier ones still establish who descends from whom.
    pub fn run(&mut self, events: &[Event], since: Option<Timestamp>, until: Option<Timestamp>) {
        let mut order: Vec<&Event> = events.iter().collect();
        order.sort_by_key(|e| e.time);
        for e in order {
            if until.is_some_and(|u| e.time > u) {
                break;
            }
            self.step(e, since.is_none_or(|s| e.time >= s));
        }
    }

    /// Take one event (in time order); new deviations are appended to `deviations`.
    pub fn step(&mut self, e: &Event, in_window: bool) {
        let Some((i, created)) = self.tracker.step(e, &self.policy.selector) else {
            return;
        };
        if created {
            self.origin.push(Origin {
                time: e.time,
                kind: e.kind,
                process_id: e.process.id.clone(),
                pid: e.process.pid,
            });
        }
        let in_workload = self.tracker.instances.get(i).is_some_and(|x| x.in_workload);
        if !in_workload || !in_window {
            return;
        }
        self.events_seen += 1;
        self.first = Some(self.first.map_or(e.time, |f| f.min(e.time)));
        self.last = Some(self.last.map_or(e.time, |l| l.max(e.time)));
        let node = self.ensure_node(i, e);
        match e.kind {
            Kind::NetListen | Kind::NetAccept | Kind::NetConnect => self.network(e, &node),
            _ => {}
        }
    }

    /// The node of instance `i`, creating it (and its ancestors') where the policy has none.
    fn ensure_node(&mut self, i: usize, e: &Event) -> String {
        // Collect the chain of instances without a node yet, then resolve from the top: an
        // iterative walk, so a hostile million-deep fork chain cannot overflow the stack.
        let mut chain = vec![i];
        let mut cur = i;
        while !self.node_of.contains_key(&cur) {
            match self.tracker.workload_parent(cur) {
                Some(p) if !self.node_of.contains_key(&p) => {
                    chain.push(p);
                    cur = p;
                }
                _ => break,
            }
        }
        let mut last = String::new();
        for &inst in chain.iter().rev() {
            if let Some(id) = self.node_of.get(&inst) {
                last = id.clone();
                continue;
            }
            let under = self
                .tracker
                .workload_parent(inst)
                .and_then(|p| self.node_of.get(&p).cloned());
            let id = self.resolve(inst, under, e);
            self.node_of.insert(inst, id.clone());
            last = id;
        }
        last
    }

    fn resolve(&mut self, inst: usize, under: Option<String>, e: &Event) -> String {
        let Some(x) = self.tracker.instances.get(inst).cloned() else {
            return String::new();
        };
        let siblings: &[ProcessNode] = match &under {
            Some(u) => self
                .policy
                .node(u)
                .map(|n| n.children.as_slice())
                .unwrap_or(&[]),
            None => &self.policy.process_policy,
        };
        let by_exe: Vec<&ProcessNode> = siblings
            .iter()
            .filter(|n| n.exe.iter().any(|g| glob_match(g, &x.exe)))
            .collect();
        if let Some(n) = by_exe
            .iter()
            .find(|n| n.euser.is_empty() || n.euser.iter().any(|u| user_matches(u, x.euid)))
        {
            return n.id.clone();
        }
        let origin = self.origin.get(inst).cloned();
        let user = user_name(x.euid);
        if let Some(n) = by_exe.first() {
            let id = n.id.clone();
            let change = Change::AddUser {
                node: id.clone(),
                user: user.clone(),
            };
            let msg = format!(
                "{:?} runs as user {user}, not allowed for node `{id}`",
                x.exe
            );
            self.report(
                DeviationKind::User,
                format!("user:{id}:{user}"),
                msg,
                &x.exe,
                origin,
                e,
                change.clone(),
            );
            apply(&mut self.policy, &change);
            return id;
        }
        let id = self.fresh_id(basename(&x.exe));
        let node = ProcessNode {
            id: id.clone(),
            name: basename(&x.exe).to_string(),
            exe: vec![x.exe.clone()],
            euser: vec![user],
            listen: Vec::new(),
            children: Vec::new(),
        };
        let place = under.as_deref().unwrap_or("(top level)");
        let msg = format!("executable {:?} is not allowed under {place}", x.exe);
        let key = format!("process:{}:{}", under.as_deref().unwrap_or("-"), x.exe);
        let change = Change::AddProcess { under, node };
        self.report(
            DeviationKind::Process,
            key,
            msg,
            &x.exe,
            origin,
            e,
            change.clone(),
        );
        apply(&mut self.policy, &change);
        id
    }

    fn network(&mut self, e: &Event, node: &str) {
        let Some(n) = &e.network else { return };
        let protocol = n.protocol.to_ascii_lowercase();
        let (kind, dir, port, ip) = match e.kind {
            Kind::NetListen => {
                let port = PortSpec {
                    protocol,
                    port: n.local.port,
                };
                let allowed = self
                    .policy
                    .node(node)
                    .is_some_and(|x| x.listen.contains(&port));
                if !allowed {
                    let change = Change::AddListen {
                        node: node.to_string(),
                        port: port.clone(),
                    };
                    let key = format!("listen:{node}:{}/{}", port.protocol, port.port);
                    let msg = format!(
                        "listening on {}/{} is not allowed for `{node}`",
                        port.protocol, port.port
                    );
                    self.report(
                        DeviationKind::Listen,
                        key,
                        msg,
                        &e.process.exe,
                        None,
                        e,
                        change.clone(),
                    );
                    apply(&mut self.policy, &change);
                }
                return;
            }
            Kind::NetAccept => (
                DeviationKind::Ingress,
                Direction::Ingress,
                n.local.port,
                &n.remote.ip,
            ),
            _ => (
                DeviationKind::Egress,
                Direction::Egress,
                n.remote.port,
                &n.remote.ip,
            ),
        };
        let port = PortSpec { protocol, port };
        let rules = match dir {
            Direction::Ingress => &self.policy.network_policy.ingress,
            Direction::Egress => &self.policy.network_policy.egress,
        };
        if rules.iter().any(|r| rule_allows(r, node, ip, &port)) {
            return;
        }
        let what = match dir {
            Direction::Ingress => "connection from",
            Direction::Egress => "connection to",
        };
        let key = format!(
            "{}:{node}:{ip}:{}/{}",
            dir_str(dir),
            port.protocol,
            port.port
        );
        let msg = format!(
            "{what} {ip:?} on {}/{} is not allowed for `{node}`",
            port.protocol, port.port
        );
        let change = Change::AddFlow {
            direction: dir,
            node: node.to_string(),
            cidr: Cidr::host(ip),
            port,
        };
        self.report(kind, key, msg, &e.process.exe, None, e, change.clone());
        apply(&mut self.policy, &change);
    }

    #[allow(clippy::too_many_arguments)] // one private call shape; a struct would only rename them
    fn report(
        &mut self,
        kind: DeviationKind,
        key: String,
        message: String,
        exe: &str,
        origin: Option<Origin>,
        e: &Event,
        change: Change,
    ) {
        if !self.record || !self.seen_keys.insert(key.clone()) {
            return;
        }
        // A process deviation names the event that started the image (its exec), which may
        // precede the event that made us look at it.
        let o = origin.unwrap_or(Origin {
            time: e.time,
            kind: e.kind,
            process_id: e.process.id.clone(),
            pid: e.process.pid,
        });
        self.deviations.push(Deviation {
            key,
            kind,
            time: o.time,
            event_kind: o.kind,
            process_id: o.process_id,
            pid: o.pid,
            exe: exe.to_string(),
            message,
            change,
        });
    }

    fn fresh_id(&mut self, base: &str) -> String {
        let id = fresh_id(&self.used_ids, base);
        self.used_ids.insert(id.clone());
        id
    }
}

fn dir_str(d: Direction) -> &'static str {
    match d {
        Direction::Ingress => "ingress",
        Direction::Egress => "egress",
    }
}

/// A node id from an executable's name: `[A-Za-z0-9._-]`, unique with a `-N` suffix.
pub(crate) fn fresh_id(used: &HashSet<String>, base: &str) -> String {
    let mut b: String = base
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if b.is_empty() || !b.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        b = format!("p{b}");
    }
    if !used.contains(&b) {
        return b;
    }
    (2u64..)
        .map(|n| format!("{b}-{n}"))
        .find(|c| !used.contains(c))
        .unwrap_or(b)
}

fn rule_allows(r: &NetRule, node: &str, ip: &str, port: &PortSpec) -> bool {
    (r.processes.is_empty() || r.processes.iter().any(|p| p == node))
        && (r.ports.is_empty() || r.ports.contains(port))
        && (r.peers.is_empty()
            || r.peers.iter().any(|p| match p {
                Peer::IpBlock(c) => c.contains(ip),
                Peer::DnsSelector(_) => false,
            }))
}

/// Apply one change to a policy; changes that no longer fit (a node gone) are skipped.
fn apply(p: &mut Policy, c: &Change) {
    match c {
        Change::AddProcess { under, node } => {
            if p.node(&node.id).is_some() {
                return;
            }
            let list = match under {
                Some(u) => match p.node_mut(u) {
                    Some(n) => &mut n.children,
                    None => return,
                },
                None => &mut p.process_policy,
            };
            let mut n = node.clone();
            n.children.clear();
            list.push(n);
        }
        Change::AddUser { node, user } => {
            if let Some(n) = p.node_mut(node) {
                if !n.euser.contains(user) {
                    n.euser.push(user.clone());
                }
            }
        }
        Change::AddListen { node, port } => {
            if let Some(n) = p.node_mut(node) {
                if !n.listen.contains(port) {
                    n.listen.push(port.clone());
                }
            }
        }
        Change::AddFlow {
            direction,
            node,
            cidr,
            port,
        } => {
            let Some(cidr) = cidr else { return };
            if p.node(node).is_none() {
                return;
            }
            let rules = match direction {
                Direction::Ingress => &mut p.network_policy.ingress,
                Direction::Egress => &mut p.network_policy.egress,
            };
            let peer = Peer::IpBlock(*cidr);
            if let Some(r) = rules
                .iter_mut()
                .find(|r| r.processes == [node.clone()] && r.ports == [port.clone()])
            {
                if !r.peers.contains(&peer) {
                    r.peers.push(peer);
                }
            } else {
                rules.push(NetRule {
                    peers: vec![peer],
                    ports: vec![port.clone()],
                    processes: vec![node.clone()],
                });
            }
        }
    }
}

/// Sort every list so the same policy always renders the same text.
pub(crate) fn normalise(p: &mut Policy) {
    fn nodes(ns: &mut [ProcessNode]) {
        ns.sort_by(|a, b| (&a.exe, &a.id).cmp(&(&b.exe, &b.id)));
        for n in ns {
            n.exe.sort();
            n.exe.dedup();
            n.euser.sort();
            n.euser.dedup();
            n.listen.sort();
            n.listen.dedup();
            nodes(&mut n.children);
        }
    }
    fn rules(rs: &mut [NetRule]) {
        for r in rs.iter_mut() {
            r.peers.sort();
            r.peers.dedup();
            r.ports.sort();
            r.ports.dedup();
            r.processes.sort();
            r.processes.dedup();
        }
        rs.sort_by(|a, b| {
            (&a.processes, &a.ports, &a.peers).cmp(&(&b.processes, &b.ports, &b.peers))
        });
    }
    nodes(&mut p.process_policy);
    rules(&mut p.network_policy.ingress);
    rules(&mut p.network_policy.egress);
}

/// The deviations of `events` from `policy` in `[since, until]`, in time order: the dry run.
pub fn diff(
    policy: &Policy,
    events: &[Event],
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Vec<Deviation> {
    let mut w = Walker::new(policy.clone(), true);
    w.run(events, since, until);
    w.deviations
}

/// Fold reviewed deviations into the policy (in order: a process before its children).
pub fn merge(policy: &Policy, deviations: &[Deviation]) -> Policy {
    let mut p = policy.clone();
    for d in deviations {
        apply(&mut p, &d.change);
    }
    normalise(&mut p);
    p
}
