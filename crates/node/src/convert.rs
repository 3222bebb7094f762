//! From the engine's and the graph's types to the API's, and the process lineage the API
//! shows, read from the causal graph's traces (the graph is rebuilt from the store at open,
//! so this survives restarts where the RAM lineage table does not).

use causeway_graph::{EdgeKind, NodeKind, Trace as GTrace, TraceNode as GTraceNode};
use causeway_model::timefmt::Timestamp;
use causeway_rules::{Incident, IncidentFlag, Ruleset};
use causeway_server::types::{
    Flag, IncidentSummary, ProcessBrief, ProcessRef, RootProcess, Trace, TraceEdge, TraceNode,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

pub fn summary(i: &Incident) -> IncidentSummary {
    IncidentSummary {
        id: i.id.clone(),
        title: i.title.clone(),
        score: f64::from(i.score),
        severity: i.severity,
        techniques: i.techniques.clone(),
        root_process: RootProcess {
            id: i.root.id.clone(),
            pid: i.root.pid,
            exe: i.root.exe.clone(),
        },
        processes: i
            .processes
            .iter()
            .map(|p| ProcessRef {
                id: p.id.clone(),
                pid: p.pid,
            })
            .collect(),
        hosts: i.hosts.clone(),
        first_seen: i.first_seen,
        last_seen: i.last_seen,
    }
}

/// A flag with what the API shows beside it (rule title, the process's pid and image).
pub fn flag(f: &IncidentFlag, i: &Incident, rules: &Ruleset) -> Flag {
    let rule = rules.rules().iter().find(|r| r.id == f.rule_id);
    let proc = i.processes.iter().find(|p| p.id == f.process_id);
    Flag {
        rule_id: f.rule_id.clone(),
        // Flags without a rule (policy deviations) carry their title in the message.
        title: rule.map(|r| r.title.clone()).unwrap_or_else(|| {
            f.message
                .split(':')
                .next()
                .unwrap_or(&f.rule_id)
                .to_string()
        }),
        severity: f.severity,
        techniques: f.techniques.clone(),
        tactic: f.tactic.clone(),
        time: f.time,
        kind: rule
            .and_then(|r| r.kinds.first())
            .map(|k| k.as_str().to_string())
            .unwrap_or_default(),
        host: i.hosts.first().cloned().unwrap_or_default(),
        process_id: f.process_id.clone(),
        pid: proc.map(|p| p.pid).unwrap_or(0),
        exe: proc.map(|p| p.exe.clone()).unwrap_or_default(),
        object: f.object.clone(),
        message: f.message.clone(),
    }
}

fn node_kind(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Process => "process",
        NodeKind::File => "file",
        NodeKind::Flow => "endpoint",
        NodeKind::Host | NodeKind::Container | NodeKind::Session => "act",
    }
}

/// The start of a trace node's image (`start` detail), if it has one.
fn image_start(n: &GTraceNode) -> Option<Timestamp> {
    n.details
        .get("start")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

/// The graph's trace in the API's form. A flag (by model process id) marks the image of
/// its process that was running when it fired (the latest started at or before the flag),
/// not every image: a fork image and the program it exec'd are different acts.
pub fn trace(g: &GTrace, flags: &[IncidentFlag]) -> Trace {
    let mut images: HashMap<&str, Vec<(Option<Timestamp>, usize)>> = HashMap::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if let Some(pid) = node_process_id(n) {
            images.entry(pid).or_default().push((image_start(n), i));
        }
    }
    let mut by_node: BTreeMap<usize, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for f in flags {
        let Some(imgs) = images.get(f.process_id.as_str()) else {
            continue;
        };
        let running = imgs
            .iter()
            .filter(|(start, _)| start.is_some_and(|s| s <= f.time))
            .max_by_key(|(start, _)| *start)
            .or_else(|| imgs.iter().min_by_key(|(start, _)| *start));
        // The object the flag names, when it is a file of the trace (the password file
        // read, the payload written).
        let object = g.nodes.iter().position(|n| {
            n.kind == NodeKind::File
                && !f.object.is_empty()
                && n.details.get("path").and_then(|v| v.as_str()) == Some(f.object.as_str())
        });
        for i in running.map(|r| r.1).into_iter().chain(object) {
            let e = by_node.entry(i).or_default();
            e.0.insert(f.rule_id.clone());
            e.1.extend(f.techniques.iter().cloned());
        }
    }
    let nodes = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let hit = by_node.get(&i);
            let time = image_start(n);
            let host = n
                .details
                .get("host")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            TraceNode {
                id: n.id.clone(),
                kind: node_kind(n.kind).to_string(),
                label: n.label.clone(),
                data: n.details.clone(),
                flagged: hit.is_some(),
                rules: hit
                    .map(|h| h.0.iter().cloned().collect())
                    .unwrap_or_default(),
                techniques: hit
                    .map(|h| h.1.iter().cloned().collect())
                    .unwrap_or_default(),
                time,
                host,
            }
        })
        .collect();
    let edges = g
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| TraceEdge {
            id: Some(format!("e{i}")),
            source: e.from.clone(),
            target: e.to.clone(),
            kind: e.kind.as_str().to_string(),
            time: e.time,
            count: e.count,
        })
        .collect();
    Trace {
        nodes,
        edges,
        aggregated: None,
    }
}

/// Merge traces (same node ids are the same entity).
pub fn merge(into: &mut GTrace, other: GTrace) {
    let seen: BTreeSet<String> = into.nodes.iter().map(|n| n.id.clone()).collect();
    into.nodes
        .extend(other.nodes.into_iter().filter(|n| !seen.contains(&n.id)));
    let seen_e: BTreeSet<(String, String, String)> = into
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone(), e.kind.as_str().to_string()))
        .collect();
    into.edges.extend(other.edges.into_iter().filter(|e| {
        !seen_e.contains(&(e.from.clone(), e.to.clone(), e.kind.as_str().to_string()))
    }));
    into.truncated |= other.truncated;
}

/// The model process id behind an id the API handed out: a trace node id of a process
/// (`proc:<process id>@<image start>`, see the graph's `node_key`) or the process id itself.
/// Process ids never contain `@`, so the last `@` ends the id.
pub fn process_id(id: &str) -> &str {
    id.strip_prefix("proc:")
        .and_then(|rest| rest.rsplit_once('@'))
        .map_or(id, |(p, _)| p)
}

/// The brief of a trace's process node (its details are the model's `Process` fields).
pub fn node_brief(n: &GTraceNode, host: &str) -> Option<ProcessBrief> {
    if n.kind != NodeKind::Process {
        return None;
    }
    let str_of = |k: &str| n.details.get(k).and_then(|v| v.as_str());
    Some(ProcessBrief {
        id: str_of("id")?.to_string(),
        pid: n
            .details
            .get("pid")
            .and_then(|v| v.as_u64())
            .and_then(|p| u32::try_from(p).ok())?,
        exe: str_of("exe")?.to_string(),
        argv: n
            .details
            .get("argv")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        host: host.to_string(),
        start_time: n
            .details
            .get("start_time")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
    })
}

/// The model process id of a trace node, if it is a process.
fn node_process_id(n: &GTraceNode) -> Option<&str> {
    (n.kind == NodeKind::Process)
        .then(|| n.details.get("id").and_then(|v| v.as_str()))
        .flatten()
}

/// Ancestors of `id`, parent first, from a lineage-only backward trace of its latest image:
/// each image has one lineage in-edge (the fork of its first image, or the exec that
/// replaced the previous one), so the chain is followed edge by edge; an ancestor is shown
/// by the image that forked the chain.
pub fn ancestors(t: &GTrace, id: &str, host: &str, max: usize) -> Vec<ProcessBrief> {
    let by_key: HashMap<&str, &GTraceNode> = t.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let up: HashMap<&str, &str> = t
        .edges
        .iter()
        .filter(|e| matches!(e.kind, EdgeKind::Spawned | EdgeKind::Executed))
        .map(|e| (e.to.as_str(), e.from.as_str()))
        .collect();
    let mut out: Vec<ProcessBrief> = Vec::new();
    let mut seen = HashSet::new();
    let mut cur = t.nodes.first().map(|n| n.id.as_str());
    while let Some(k) = cur {
        if out.len() >= max || !seen.insert(k) {
            break;
        }
        if let Some(b) = by_key.get(k).and_then(|n| node_brief(n, host)) {
            if b.id != id && !out.iter().any(|x| x.id == b.id) {
                out.push(b);
            }
        }
        cur = up.get(k).copied();
    }
    out
}

/// Children of `id` from a lineage-only forward trace of its first image deep enough to
/// reach all its images and one exec beyond: the targets of fork edges leaving any image of
/// `id`, each shown by its latest image in the trace (the program it became, not the copy of
/// the parent it started as).
pub fn children(t: &GTrace, id: &str, host: &str) -> Vec<ProcessBrief> {
    let by_key: HashMap<&str, &GTraceNode> = t.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut latest: HashMap<&str, &GTraceNode> = HashMap::new();
    for n in &t.nodes {
        if let Some(pid) = node_process_id(n) {
            let e = latest.entry(pid).or_insert(n);
            if image_start(n) > image_start(e) {
                *e = n;
            }
        }
    }
    let mut out: Vec<ProcessBrief> = Vec::new();
    for e in t.edges.iter().filter(|e| e.kind == EdgeKind::Spawned) {
        let from_self = by_key.get(e.from.as_str()).and_then(|n| node_process_id(n)) == Some(id);
        let Some(child) = by_key
            .get(e.to.as_str())
            .and_then(|n| node_process_id(n))
            .filter(|c| *c != id)
        else {
            continue;
        };
        if !from_self || out.iter().any(|x| x.id == child) {
            continue;
        }
        if let Some(b) = latest.get(child).and_then(|n| node_brief(n, host)) {
            out.push(b);
        }
    }
    out
}

/// A process at the other end of a connection edge of one of `id`'s images.
#[derive(Debug, Clone)]
pub struct GraphPeer {
    /// `true`: `id` connected (client side); `false`: `id` accepted.
    pub outbound: bool,
    pub time: Timestamp,
    /// The peer's process node (its `host` detail is the host id).
    pub node: GTraceNode,
}

/// The processes `id` is connected with, from the `Connected` edges of depth-1 traces
/// around its images (the graph pairs both ends of a flow seen on any host).
pub fn graph_peers(traces: &[GTrace], id: &str) -> Vec<GraphPeer> {
    let mut out = Vec::new();
    for t in traces {
        let by_key: HashMap<&str, &GTraceNode> =
            t.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
        let pid_of = |k: &str| by_key.get(k).and_then(|n| node_process_id(n));
        for e in t.edges.iter().filter(|e| e.kind == EdgeKind::Connected) {
            let (outbound, other) = if pid_of(&e.from) == Some(id) {
                (true, e.to.as_str())
            } else if pid_of(&e.to) == Some(id) {
                (false, e.from.as_str())
            } else {
                continue;
            };
            let Some(node) = by_key.get(other).filter(|n| n.kind == NodeKind::Process) else {
                continue;
            };
            if node_process_id(node) == Some(id) {
                continue;
            }
            out.push(GraphPeer {
                outbound,
                time: e.time,
                node: (*node).clone(),
            });
        }
    }
    out
}

/// The graph peer of a flow event of the given side: the connection edge nearest in time.
pub fn nearest_peer(peers: &[GraphPeer], outbound: bool, time: Timestamp) -> Option<&GraphPeer> {
    peers
        .iter()
        .filter(|p| p.outbound == outbound)
        .min_by_key(|p| p.time.0.abs_diff(time.0))
}
