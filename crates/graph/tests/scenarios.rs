//! Scenario tests: recorded two-host fixtures, pid reuse, out-of-order delivery, loopback,
//! sessions, dropper chains and reduction of repeated edges.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use causeway_graph::{EdgeKind, Graph, GraphConfig, NodeKind, Trace, TraceQuery};
use causeway_model::{Event, Kind};
use common::*;
use std::collections::BTreeSet;

fn load(name: &str) -> Vec<Event> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| Event::from_json(l).unwrap())
        .collect()
}

fn graph_of(evs: impl IntoIterator<Item = Event>) -> Graph {
    let mut g = Graph::default();
    for e in evs {
        g.ingest_event(e);
    }
    g.flush();
    g
}

fn procs_in(t: &Trace) -> BTreeSet<String> {
    t.nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Process)
        .map(|n| n.id.clone())
        .collect()
}

const PAYLOAD: &str = "p-bbbbbbbbbbbbbbbb-711-6000";

/// Process images the backward trace from the payload's exec must contain, exactly.
fn expected_chain() -> BTreeSet<String> {
    [
        // the payload run by cron's child, and that child before exec
        "proc:p-bbbbbbbbbbbbbbbb-711-6000@1795687260001000000",
        "proc:p-bbbbbbbbbbbbbbbb-711-6000@1795687260000000000",
        "proc:p-bbbbbbbbbbbbbbbb-710-10@1795687230000000000",
        // the shell that wrote /tmp/payload, its fork of the web server, the server
        "proc:p-bbbbbbbbbbbbbbbb-701-300@1795687201021000000",
        "proc:p-bbbbbbbbbbbbbbbb-701-300@1795687201020000000",
        "proc:p-bbbbbbbbbbbbbbbb-700-50@1795687140000000000",
        // across the flow to host alpha: curl, its fork of bash, the login shell
        "proc:p-aaaaaaaaaaaaaaaa-501-200@1795687201001000000",
        "proc:p-aaaaaaaaaaaaaaaa-501-200@1795687201000000000",
        "proc:p-aaaaaaaaaaaaaaaa-500-100@1795687200000000000",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[test]
fn two_hosts_time_merged_gives_exact_chain() {
    let mut evs = load("alpha.jsonl");
    evs.extend(load("beta.jsonl"));
    evs.sort_by_key(|e| e.time);
    let g = graph_of(evs);
    let t = g.trace_process(PAYLOAD, &TraceQuery::backward()).unwrap();
    assert_eq!(procs_in(&t), expected_chain());
    // The cross-host link is a direct client -> server edge.
    let link = t
        .edges
        .iter()
        .find(|e| e.kind == EdgeKind::Connected)
        .expect("connected edge");
    assert!(
        link.from.starts_with("proc:p-aaaaaaaaaaaaaaaa-501-200@"),
        "{link:?}"
    );
    assert!(
        link.to.starts_with("proc:p-bbbbbbbbbbbbbbbb-700-50@"),
        "{link:?}"
    );
    // Dropper chain: the writer of /tmp/payload is linked to the image executed from it.
    assert!(t
        .edges
        .iter()
        .any(|e| e.kind == EdgeKind::ExecutedFileWrittenBy
            && e.from.starts_with("proc:p-bbbbbbbbbbbbbbbb-701-300@")));
    // The login session of the shell on alpha is in the trace as context.
    assert!(t.nodes.iter().any(
        |n| n.kind == NodeKind::Session && n.id == "session:aaaa0000aaaa0000aaaa0000aaaa0000:3"
    ));
    let json = serde_json::to_value(&t).unwrap();
    assert!(json["nodes"].is_array() && json["edges"].is_array());
    assert_eq!(json["edges"][0]["count"], 1);
}

#[test]
fn whole_files_in_either_order_still_link_hosts() {
    // A host's file replayed entirely before the other's: far beyond the reorder horizon.
    for first in ["alpha.jsonl", "beta.jsonl"] {
        let second = if first == "alpha.jsonl" {
            "beta.jsonl"
        } else {
            "alpha.jsonl"
        };
        let g = graph_of(load(first).into_iter().chain(load(second)));
        let t = g.trace_process(PAYLOAD, &TraceQuery::backward()).unwrap();
        let got = procs_in(&t);
        // Late events are linked conservatively: the true chain is always there.
        assert!(got.is_superset(&expected_chain()), "{first}: {got:?}");
        assert!(!got.iter().any(|p| p.contains("-701-12000")), "{got:?}");
    }
}

#[test]
fn pid_reuse_gives_distinct_processes() {
    let g = graph_of(load("beta.jsonl"));
    let old = g.images_of("p-bbbbbbbbbbbbbbbb-701-300");
    let new = g.images_of("p-bbbbbbbbbbbbbbbb-701-12000");
    assert_eq!((old.len(), new.len()), (2, 2));
    let fwd_new = g
        .trace_process("p-bbbbbbbbbbbbbbbb-701-12000", &TraceQuery::forward())
        .unwrap();
    assert!(fwd_new
        .nodes
        .iter()
        .any(|n| n.id.ends_with(":/var/log/other")));
    assert!(!fwd_new
        .nodes
        .iter()
        .any(|n| n.id.ends_with(":/tmp/payload")));
    let fwd_old = g
        .trace_process("p-bbbbbbbbbbbbbbbb-701-300", &TraceQuery::forward())
        .unwrap();
    assert!(fwd_old
        .nodes
        .iter()
        .any(|n| n.id.ends_with(":/tmp/payload")));
    assert!(!fwd_old
        .nodes
        .iter()
        .any(|n| n.id.ends_with(":/var/log/other")));
    // Both reused-pid processes have pid 701 in their details.
    for id in ["p-bbbbbbbbbbbbbbbb-701-300", "p-bbbbbbbbbbbbbbbb-701-12000"] {
        let a = g.ancestors(id, None).unwrap();
        assert_eq!(a.nodes[0].details["pid"], 701);
    }
}

#[test]
fn reversed_delivery_within_horizon_is_identical() {
    let mut evs = load("alpha.jsonl");
    evs.extend(load("beta.jsonl"));
    evs.sort_by_key(|e| e.time);
    let a = graph_of(evs.clone());
    // Reverse each window of 3 events (all within a few ms, far inside the 5 s horizon
    // except across the big gaps, which the reversal does not cross).
    let mut shuffled = Vec::new();
    for chunk in evs.chunks(3) {
        let span = chunk.last().unwrap().time.0 - chunk[0].time.0;
        if span < 5_000_000_000 {
            shuffled.extend(chunk.iter().rev().cloned());
        } else {
            shuffled.extend(chunk.iter().cloned());
        }
    }
    assert_ne!(shuffled, evs);
    let b = graph_of(shuffled);
    assert_eq!(a.canonical(), b.canonical());
}

#[test]
fn child_before_parent_beyond_horizon_is_linked() {
    let h = host("h");
    let parent = proc_("p-1", 10, "", "/usr/bin/make");
    let child = proc_("p-2", 11, "p-1", "/usr/bin/cc");
    // The child's events arrive a minute before its parent is ever seen.
    let evs = vec![
        exec(100_000_000_000, &h, &child),
        file(100_000_000_001, &h, &child, "/tmp/a.o", true),
        exec(10, &h, &parent),
    ];
    let g = graph_of(evs);
    let t = g.ancestors("p-2", None).unwrap();
    assert!(
        procs_in(&t).iter().any(|p| p.starts_with("proc:p-1@")),
        "{t:?}"
    );
}

#[test]
fn loopback_flow_links_two_trees_on_one_host() {
    let h = host("h");
    let client = proc_("p-c", 20, "", "/usr/bin/python3");
    let server = proc_("p-s", 30, "", "/usr/bin/nc");
    let evs = vec![
        exec(1, &h, &client),
        exec(2, &h, &server),
        net(
            100,
            Kind::NetListen,
            &h,
            &server,
            ("127.0.0.1", 9000),
            ("0.0.0.0", 0),
        ),
        // Accept delivered before connect.
        net(
            201,
            Kind::NetAccept,
            &h,
            &server,
            ("127.0.0.1", 9000),
            ("127.0.0.1", 50000),
        ),
        net(
            200,
            Kind::NetConnect,
            &h,
            &client,
            ("127.0.0.1", 50000),
            ("127.0.0.1", 9000),
        ),
        file(300, &h, &server, "/tmp/x", true),
    ];
    let g = graph_of(evs);
    let mut q = TraceQuery::backward();
    q.depth = Some(3);
    let f = g.find_key("file:h-id::/tmp/x").unwrap();
    let t = g.trace(f, &q);
    assert!(
        procs_in(&t).iter().any(|p| p.starts_with("proc:p-c@")),
        "{t:?}"
    );
    // A connection after the write did not cause it.
    let g2 = graph_of(vec![
        exec(1, &h, &client),
        exec(2, &h, &server),
        file(150, &h, &server, "/tmp/x", true),
        net(
            201,
            Kind::NetAccept,
            &h,
            &server,
            ("127.0.0.1", 9000),
            ("127.0.0.1", 50000),
        ),
        net(
            200,
            Kind::NetConnect,
            &h,
            &client,
            ("127.0.0.1", 50000),
            ("127.0.0.1", 9000),
        ),
    ]);
    let f = g2.find_key("file:h-id::/tmp/x").unwrap();
    let t = g2.trace(f, &TraceQuery::backward());
    assert!(
        !procs_in(&t).iter().any(|p| p.starts_with("proc:p-c@")),
        "{t:?}"
    );
}

#[test]
fn tty_login_starts_a_session_inherited_by_children() {
    let h = host("h");
    let sshd = proc_("p-sshd", 5, "", "/usr/sbin/sshd");
    let mut shell = proc_("p-sh", 6, "p-sshd", "/usr/bin/bash");
    shell.tty = Some("pts/1".into());
    let mut ls = proc_("p-ls", 7, "p-sh", "/usr/bin/ls");
    ls.tty = Some("pts/1".into());
    let g = graph_of(vec![
        exec(1, &h, &sshd),
        exec(5, &h, &shell),
        exec(9, &h, &ls),
    ]);
    let t = g.ancestors("p-ls", None).unwrap();
    let s: Vec<_> = t
        .nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Session)
        .collect();
    assert_eq!(s.len(), 1, "{t:?}");
    assert!(s[0].details["root"]
        .as_str()
        .unwrap()
        .starts_with("proc:p-sh@"));
    assert_eq!(t.nodes[0].details["session"], s[0].id.as_str());
    // sshd itself is outside the session.
    let sshd_t = g.ancestors("p-sshd", None).unwrap();
    assert!(sshd_t.nodes.iter().all(|n| n.kind != NodeKind::Session));
}

#[test]
fn repeated_writes_fold_until_something_new_flows_in() {
    let h = host("h");
    let d = proc_("p-d", 40, "", "/usr/sbin/daemon");
    let mut evs = vec![exec(1, &h, &d)];
    for i in 0..1000 {
        evs.push(file(10 + i, &h, &d, "/var/log/d.log", true));
    }
    evs.push(file(2000, &h, &d, "/etc/d.conf", false));
    for i in 0..10 {
        evs.push(file(3000 + i, &h, &d, "/var/log/d.log", true));
    }
    let mut g = Graph::new(GraphConfig::default());
    for e in &evs {
        g.apply(e);
    }
    let s = g.stats();
    // exec file, two write runs (split by the read), one read run
    assert_eq!(s.runs, 4, "{:?}", g.canonical().1);
    assert_eq!(s.occurrences, 1012);
    let f = g.find_key("file:h-id::/var/log/d.log").unwrap();
    let t = g.trace(f, &TraceQuery::backward());
    let w: Vec<_> = t
        .edges
        .iter()
        .filter(|e| e.kind == EdgeKind::Wrote)
        .collect();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].count, 1010);
    assert!(t.nodes.iter().any(|n| n.id.ends_with("/etc/d.conf")));
    // Before the read, the config file cannot have caused the log.
    let mut early = TraceQuery::backward();
    early.until = Some(1500);
    let t = g.trace(f, &early);
    assert!(!t.nodes.iter().any(|n| n.id.ends_with("/etc/d.conf")));
}

#[test]
fn depth_bounds_the_walk() {
    let h = host("h");
    let mut evs = Vec::new();
    for i in 0..6u32 {
        let parent = if i == 0 {
            String::new()
        } else {
            format!("p-{}", i - 1)
        };
        evs.push(exec(
            i64::from(i) + 1,
            &h,
            &proc_(&format!("p-{i}"), i, &parent, "/bin/x"),
        ));
    }
    let g = graph_of(evs);
    assert_eq!(g.ancestors("p-5", Some(2)).unwrap().nodes.len(), 3);
    assert_eq!(g.ancestors("p-5", None).unwrap().nodes.len(), 6);
    assert_eq!(g.descendants("p-0", Some(1)).unwrap().nodes.len(), 2);
    assert!(g.ancestors("p-unknown", None).is_none());
}

#[test]
fn hostile_strings_are_data() {
    let h = host("h");
    let mut p = proc_("p-x", 1, "", "/tmp/\\xff'; DROP TABLE events;--");
    p.argv = vec!["\u{0}".into(), "a\nb".into()];
    let g = graph_of(vec![
        exec(1, &h, &p),
        file(2, &h, &p, "../../\u{202e}", true),
    ]);
    let t = g.trace_process("p-x", &TraceQuery::forward()).unwrap();
    let j = serde_json::to_string(&t).unwrap();
    let back: serde_json::Value = serde_json::from_str(&j).unwrap();
    assert_eq!(back["nodes"][0]["details"]["argv"][1], "a\nb");
}

#[test]
fn kind_spellings_match_json() {
    for k in [
        EdgeKind::Spawned,
        EdgeKind::ExecutedFileWrittenBy,
        EdgeKind::ListenedOn,
        EdgeKind::RenamedTo,
    ] {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
    for k in [NodeKind::Process, NodeKind::Session, NodeKind::Flow] {
        assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
    }
}
