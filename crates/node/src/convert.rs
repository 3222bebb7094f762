//! From the engine's and the graph's types to the API's.

use causeway_graph::{NodeKind, Trace as GTrace};
use causeway_rules::{Incident, IncidentFlag, Ruleset};
use causeway_server::types::{
    Flag, IncidentSummary, ProcessRef, RootProcess, Severity, Trace, TraceEdge, TraceNode,
};
use std::collections::{BTreeMap, BTreeSet};

pub fn severity(s: causeway_rules::Severity) -> Severity {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().and_then(Severity::parse))
        .unwrap_or(Severity::Info)
}

pub fn summary(i: &Incident) -> IncidentSummary {
    IncidentSummary {
        id: i.id.clone(),
        title: i.title.clone(),
        score: f64::from(i.score),
        severity: severity(i.severity),
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
        severity: severity(f.severity),
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

/// The graph's trace in the API's form. Process nodes flagged by `flags` (by model process
/// id) carry their rules and techniques.
pub fn trace(g: &GTrace, flags: &[IncidentFlag]) -> Trace {
    let mut by_process: BTreeMap<&str, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for f in flags {
        let e = by_process.entry(f.process_id.as_str()).or_default();
        e.0.insert(f.rule_id.clone());
        e.1.extend(f.techniques.iter().cloned());
    }
    let nodes = g
        .nodes
        .iter()
        .map(|n| {
            let pid_str = n.details.get("id").and_then(|v| v.as_str()).unwrap_or("");
            let hit = (n.kind == NodeKind::Process)
                .then(|| by_process.get(pid_str))
                .flatten();
            let time = n
                .details
                .get("start")
                .and_then(|v| serde_json::from_value(v.clone()).ok());
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
