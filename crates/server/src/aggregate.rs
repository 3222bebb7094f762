//! Server-side aggregation of large traces, so a browser never has to lay out thousands of
//! nodes.
//!
//! What matters in an incident is the path from the entry point to each flagged act; noise is
//! the many similar, unflagged siblings around it (a shell loop's 500 `sleep`s, a web
//! server's workers). So: nodes that are flagged, or lead to a flagged node, are always kept.
//! Other children of one parent are grouped by (edge kind, what they are); beyond
//! [`KEEP_PER_GROUP`] per group and [`KEEP_PER_PARENT`] per parent the rest (with everything
//! below them) becomes one `group` node ("37 more children") that the UI can expand through
//! the process trace API. A last resort caps the node count in breadth-first order.

use crate::types::{Aggregation, Trace, TraceEdge, TraceNode};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Similar siblings shown before the rest are grouped.
pub const KEEP_PER_GROUP: usize = 3;
/// Unflagged children shown per parent before the rest are grouped.
pub const KEEP_PER_PARENT: usize = 12;
/// Similar unflagged siblings collapsed even when the trace is within budget: a run this
/// long is noise however small the graph.
pub const ALWAYS_COLLAPSE: usize = 7;
/// Member ids a group node lists (the count is exact; the list is a sample).
const MAX_MEMBERS_LISTED: usize = 200;

fn sibling_key(n: &TraceNode, edge_kind: &str) -> String {
    let what = match n.kind.as_str() {
        "process" => n
            .data
            .get("exe")
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| n.label.clone()),
        "file" => {
            // Same directory: /tmp/a1, /tmp/a2, ...
            let l = n.label.as_str();
            l.rsplit_once('/')
                .map(|(d, _)| d.to_string())
                .unwrap_or_default()
        }
        _ => n.kind.clone(),
    };
    format!("{edge_kind}\u{0}{}\u{0}{what}", n.kind)
}

/// (parent, sibling key, members as (node, edge) indices).
type Group = (usize, String, Vec<(usize, usize)>);

/// Aggregate `trace` down to about `max_nodes` nodes. Within budget, only runs of at least
/// [`ALWAYS_COLLAPSE`] similar unflagged siblings are grouped, and only if `collapse`.
pub fn aggregate(trace: Trace, max_nodes: usize, collapse: bool) -> Trace {
    let n = trace.nodes.len();
    let over = n > max_nodes;
    if !over && !collapse {
        return trace;
    }
    let original_edges = trace.edges.len();
    let idx: HashMap<&str, usize> = trace
        .nodes
        .iter()
        .enumerate()
        .map(|(i, x)| (x.id.as_str(), i))
        .collect();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut inn: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (ei, e) in trace.edges.iter().enumerate() {
        if let (Some(&s), Some(&t)) = (idx.get(e.source.as_str()), idx.get(e.target.as_str())) {
            out[s].push(ei);
            inn[t].push(ei);
        }
    }
    let src = |ei: usize| {
        idx.get(trace.edges[ei].source.as_str())
            .copied()
            .unwrap_or(0)
    };
    let dst = |ei: usize| {
        idx.get(trace.edges[ei].target.as_str())
            .copied()
            .unwrap_or(0)
    };

    // Essential: flagged nodes and everything that leads to them.
    let mut essential = vec![false; n];
    let mut queue: VecDeque<usize> = (0..n).filter(|&i| trace.nodes[i].flagged).collect();
    for &i in &queue {
        essential[i] = true;
    }
    while let Some(i) = queue.pop_front() {
        for &ei in &inn[i] {
            let s = src(ei);
            if !essential[s] {
                essential[s] = true;
                queue.push_back(s);
            }
        }
    }

    // A spanning forest in breadth-first order from the roots: each node's tree parent is
    // the first node that reached it.
    let mut roots: Vec<usize> = (0..n).filter(|&i| inn[i].is_empty()).collect();
    if roots.is_empty() {
        roots.push(0);
    }
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut tree_children: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    let mut q: VecDeque<usize> = VecDeque::new();
    for &r in &roots {
        seen[r] = true;
        q.push_back(r);
    }
    loop {
        while let Some(i) = q.pop_front() {
            order.push(i);
            for &ei in &out[i] {
                let t = dst(ei);
                if !seen[t] {
                    seen[t] = true;
                    tree_children[i].push((t, ei));
                    q.push_back(t);
                }
            }
        }
        // Nodes only on cycles: start from the first one not reached yet.
        match (0..n).find(|&i| !seen[i]) {
            Some(i) => {
                seen[i] = true;
                roots.push(i);
                q.push_back(i);
            }
            None => break,
        }
    }

    // Decide which children to collapse into which group.
    let mut collapsed = vec![false; n];
    let mut groups: Vec<Group> = Vec::new();
    for &parent in &order {
        let mut by_key: BTreeMap<String, Vec<(usize, usize)>> = BTreeMap::new();
        for &(c, ei) in &tree_children[parent] {
            if !essential[c] {
                by_key
                    .entry(sibling_key(&trace.nodes[c], &trace.edges[ei].kind))
                    .or_default()
                    .push((c, ei));
            }
        }
        let mut kept = 0usize;
        let mut rest: Vec<(usize, usize)> = Vec::new();
        for (key, mut members) in by_key {
            members.sort_by_key(|&(c, _)| trace.nodes[c].time);
            let threshold = if over {
                KEEP_PER_GROUP + 2
            } else {
                ALWAYS_COLLAPSE
            };
            if members.len() >= threshold {
                let tail = members.split_off(KEEP_PER_GROUP);
                groups.push((parent, key, tail));
            }
            for m in members {
                if !over || kept < KEEP_PER_PARENT {
                    kept += 1;
                } else {
                    rest.push(m);
                }
            }
        }
        if !rest.is_empty() {
            groups.push((parent, String::new(), rest));
        }
    }
    if groups.is_empty() && !over {
        return trace;
    }
    for (_, _, members) in &groups {
        for &(c, _) in members {
            collapsed[c] = true;
        }
    }

    // Visible: reachable from the roots without entering a collapsed node.
    let mut visible = vec![false; n];
    let mut q: VecDeque<usize> = roots.iter().copied().filter(|&r| !collapsed[r]).collect();
    for &r in &q {
        visible[r] = true;
    }
    while let Some(i) = q.pop_front() {
        for &ei in &out[i] {
            let t = dst(ei);
            if !visible[t] && !collapsed[t] {
                visible[t] = true;
                q.push_back(t);
            }
        }
    }
    // Essential nodes stay even when reached only through a collapsed path.
    for i in 0..n {
        if essential[i] {
            visible[i] = true;
        }
    }

    // Last resort: cap in breadth-first order (essential nodes first).
    let budget = max_nodes.saturating_sub(groups.len().min(max_nodes / 2));
    let mut count = visible.iter().filter(|&&v| v).count();
    if count > budget {
        for &i in order.iter().rev() {
            if count <= budget {
                break;
            }
            if visible[i] && !essential[i] {
                visible[i] = false;
                count -= 1;
            }
        }
    }

    // Group nodes first (they read the members), then move the kept nodes out: no clones of
    // the (possibly large) node data.
    let mut group_nodes: Vec<TraceNode> = Vec::new();
    let mut group_edges: Vec<TraceEdge> = Vec::new();
    for (gi, (parent, key, members)) in groups.iter().enumerate() {
        if !visible[*parent] {
            continue;
        }
        let p = &trace.nodes[*parent];
        let first = &trace.nodes[members[0].0];
        let edge_kind = trace.edges[members[0].1].kind.clone();
        let what = key.rsplit('\u{0}').next().unwrap_or("");
        let label = if key.is_empty() {
            format!("{} more children", members.len())
        } else {
            let name = what.rsplit('/').next().unwrap_or(what);
            format!("{} more: {}", members.len(), name)
        };
        let id = format!("group:{}:{gi}", p.id);
        let time = members
            .iter()
            .filter_map(|&(c, _)| trace.nodes[c].time)
            .min();
        group_nodes.push(TraceNode {
            id: id.clone(),
            kind: "group".into(),
            label,
            data: json!({
                "count": members.len(),
                "parent": p.id,
                "edge_kind": edge_kind,
                "member_kind": first.kind,
                "members": members.iter().take(MAX_MEMBERS_LISTED)
                    .map(|&(c, _)| trace.nodes[c].id.clone()).collect::<Vec<_>>(),
            }),
            flagged: false,
            rules: Vec::new(),
            techniques: Vec::new(),
            time,
            host: first.host.clone(),
        });
        group_edges.push(TraceEdge {
            id: Some(format!("{id}:edge")),
            source: p.id.clone(),
            target: id,
            kind: edge_kind,
            time: time.unwrap_or_default(),
            count: members.len() as u64,
        });
    }
    let keep_edge: Vec<bool> = trace
        .edges
        .iter()
        .map(|e| {
            matches!((idx.get(e.source.as_str()), idx.get(e.target.as_str())),
                (Some(&s), Some(&t)) if visible[s] && visible[t])
        })
        .collect();
    drop(idx);
    let mut nodes: Vec<TraceNode> = trace
        .nodes
        .into_iter()
        .zip(&visible)
        .filter_map(|(node, &v)| v.then_some(node))
        .collect();
    nodes.extend(group_nodes);
    let mut edges: Vec<TraceEdge> = trace
        .edges
        .into_iter()
        .zip(keep_edge)
        .filter_map(|(e, k)| k.then_some(e))
        .collect();
    edges.extend(group_edges);
    let hidden = n.saturating_sub(count);
    Trace {
        nodes,
        edges,
        aggregated: Some(Aggregation {
            original_nodes: n,
            original_edges,
            hidden_nodes: hidden,
        }),
    }
}
