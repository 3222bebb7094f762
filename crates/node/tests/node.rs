//! The node on recorded events (no eBPF needed): replayed attack events raise an incident
//! through the shipped rules, the API backend serves it with its causal trace, and it is
//! still there after the node is reopened on the same store.

mod common;
use causeway_node::{Node, NodeConfig};
use causeway_server::{Backend, Direction, EventQuery, IncidentQuery};
use common::{fixture, incidents};

#[test]
fn replayed_attack_raises_a_persistent_incident_with_its_trace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = NodeConfig {
        data_dir: dir.path().to_path_buf(),
        rules: Vec::new(),
        ..Default::default()
    };
    let events = fixture("reverse_shell.jsonl");
    let n = events.len();
    let node = Node::open(&cfg).expect("open");
    for e in events {
        node.submit_blocking(e);
    }
    node.sync();
    let backend = node.backend(None);
    let page = backend
        .incidents(&IncidentQuery {
            limit: 10,
            ..Default::default()
        })
        .expect("list");
    assert_eq!(page.total, 1, "{:?}", page.items);
    let inc = &page.items[0];
    assert!(
        inc.techniques.iter().any(|t| t == "T1059.004"),
        "{:?}",
        inc.techniques
    );
    let detail = backend.incident(&inc.id).expect("detail").expect("exists");
    assert!(!detail.flags.is_empty());
    let flagged: Vec<_> = detail.trace.nodes.iter().filter(|n| n.flagged).collect();
    assert!(!flagged.is_empty(), "flagged nodes in the trace");
    // The trace reaches the session's entry point (the root process).
    assert!(detail
        .trace
        .nodes
        .iter()
        .any(|n| n.data["id"].as_str() == Some(inc.root_process.id.as_str())));
    let evs = backend
        .events(&EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .expect("events");
    assert_eq!(evs.len(), n);
    assert!(
        evs.windows(2).all(|w| w[0].time <= w[1].time),
        "oldest first"
    );
    let t = backend
        .trace(
            flagged[0].data["id"].as_str().unwrap_or_default(),
            Direction::Backward,
            8,
        )
        .expect("trace")
        .expect("known process");
    assert!(t.nodes.len() > 1);
    let h = backend.health().expect("health");
    assert_eq!(h.events_seen, n as u64);
    assert!(h.events_lost.is_empty());
    node.shutdown();

    // Reopen: the store keeps the incident, the graph is rebuilt from the stored events.
    let node = Node::open(&cfg).expect("reopen");
    let backend = node.backend(None);
    let again = backend
        .incident(&inc.id)
        .expect("detail")
        .expect("still there");
    assert_eq!(again.summary.id, inc.id);
    assert!(!again.trace.nodes.is_empty());
    node.shutdown();
}

#[test]
fn benign_replay_raises_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::open(&NodeConfig {
        data_dir: dir.path().to_path_buf(),
        rules: Vec::new(),
        ..Default::default()
    })
    .expect("open");
    for e in fixture("benign.jsonl") {
        node.submit_blocking(e);
    }
    node.sync();
    let page = incidents(&node);
    assert_eq!(page.total, 0, "{:?}", page.items);
    node.shutdown();
}

#[test]
fn a_bad_rule_file_is_refused_with_its_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("bad.yaml");
    std::fs::write(
        &rules,
        "rules:\n  - id: X\n    title: t\n    condition: 'event.kind =='\n",
    )
    .expect("write");
    let err = Node::open(&NodeConfig {
        data_dir: dir.path().join("data"),
        rules: vec![rules],
        ..Default::default()
    })
    .expect_err("refused")
    .to_string();
    assert!(err.contains("bad.yaml:"), "{err}");
}
