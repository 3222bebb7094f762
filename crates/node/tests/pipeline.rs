//! The node's pipeline on recorded events (no eBPF needed): ancestry from the one process
//! index survives a restart, a bulk flood is shed in its own lane without costing a single
//! critical event or the incident that matters, and rules reload all or nothing.

mod common;
use causeway_model::{Event, File, Kind, Process};
use causeway_node::{Node, NodeConfig};
use causeway_server::Backend;
use common::{fixture, incidents};
use std::sync::Arc;

fn cfg(dir: &std::path::Path) -> NodeConfig {
    NodeConfig {
        data_dir: dir.to_path_buf(),
        ..Default::default()
    }
}

#[test]
fn ancestry_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events = fixture("reverse_shell.jsonl");
    // The deepest process of the fixture: the one with the longest parent chain in it.
    let parents: std::collections::HashMap<String, String> = events
        .iter()
        .map(|e| (e.process.id.clone(), e.process.parent_id.clone()))
        .collect();
    let depth = |id: &str| {
        let mut d = 0;
        let mut id = id.to_string();
        while let Some(p) = parents.get(&id).filter(|p| parents.contains_key(*p)) {
            d += 1;
            id = p.clone();
            if d > 64 {
                break;
            }
        }
        d
    };
    let deepest = parents
        .keys()
        .max_by_key(|id| depth(id))
        .expect("processes")
        .clone();
    let want = depth(&deepest);
    assert!(want >= 2, "fixture has a chain");

    let node = Node::open(&cfg(dir.path())).expect("open");
    for e in events.clone() {
        node.submit_blocking(e);
    }
    node.sync();
    let before = node
        .backend(None)
        .process(&deepest)
        .expect("process")
        .expect("known");
    assert_eq!(before.ancestors.len(), want, "{:?}", before.ancestors);
    node.shutdown();

    let node = Node::open(&cfg(dir.path())).expect("reopen");
    let after = node
        .backend(None)
        .process(&deepest)
        .expect("process")
        .expect("known after restart");
    let ids = |v: &[causeway_server::types::ProcessBrief]| {
        v.iter().map(|p| p.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&after.ancestors), ids(&before.ancestors));
    node.shutdown();
}

#[test]
fn a_bulk_flood_is_shed_in_its_own_lane_and_the_attack_still_opens_an_incident() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Small lanes, so that a flood a debug build can ingest quickly still overflows them.
    let node = Node::open(&NodeConfig {
        intake: causeway_node::IntakeConfig {
            critical: 1_000,
            bulk: 2_000,
        },
        ..cfg(dir.path())
    })
    .expect("open");
    let attack = fixture("reverse_shell.jsonl");
    let t0 = attack.first().map(|e| e.time).expect("events");
    // A writer rewriting one file as fast as it can, from an unrelated process.
    let writer = Arc::new(Process {
        id: "p-00000000000000ff-4242-1".into(),
        pid: 4242,
        ppid: 1,
        exe: "/usr/bin/python3".into(),
        argv: vec!["python3".into(), "flood.py".into()],
        ..Default::default()
    });
    let flood = |i: i64| {
        let mut e = Event::new(
            causeway_model::timefmt::Timestamp(t0.0 + i),
            Kind::FileOpen,
            attack[0].host.clone(),
            Arc::clone(&writer),
        );
        e.file = Some(File {
            path: "/dev/shm/flood".into(),
            write: true,
            ..Default::default()
        });
        e
    };
    let critical = attack
        .iter()
        .filter(|e| e.lane() == causeway_model::Lane::Critical)
        .count();
    let mut refused_critical = 0;
    let mut i = 0;
    // Far more bulk events than the bulk lane holds, the attack's events in the middle.
    for chunk in attack.chunks(4) {
        for _ in 0..20_000 {
            i += 1;
            node.submit(flood(i));
        }
        for e in chunk {
            if !node.submit(e.clone()) && e.lane() == causeway_model::Lane::Critical {
                refused_critical += 1;
            }
        }
    }
    node.sync();
    assert_eq!(refused_critical, 0, "no critical event refused");
    let losses = node.losses();
    assert!(losses.intake_lost(Kind::FileOpen) > 0, "the flood was shed");
    for k in [
        Kind::ProcessExec,
        Kind::ProcessFork,
        Kind::NetConnect,
        Kind::ProcessExit,
    ] {
        assert_eq!(losses.intake_lost(k), 0, "{k} lost");
    }
    let page = incidents(&node);
    assert_eq!(page.total, 1, "{:?}", page.items);
    let h = node.backend(None).health().expect("health");
    assert!(
        h.events_lost
            .get("queue_full:file.open")
            .is_some_and(|n| *n > 0),
        "{:?}",
        h.events_lost
    );
    assert!(critical > 0);
    let m = node.backend(None).metrics().expect("metrics");
    assert!(
        m.contains(
            "causeway_events_lost_total{stage=\"intake\",cause=\"queue_full\",kind=\"file.open\"}"
        ),
        "{m}"
    );
    let execs = attack
        .iter()
        .filter(|e| e.kind == Kind::ProcessExec)
        .count();
    assert!(
        m.contains(&format!(
            "causeway_events_received_total{{kind=\"process.exec\"}} {execs}\n"
        )),
        "{m}"
    );
    node.shutdown();
}

#[test]
fn rules_reload_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&rules).expect("mkdir");
    let rule = |id: &str| {
        format!(
            "rules:\n  - id: {id}\n    title: t\n    kinds: [process.exec]\n    condition: event.process.name == \"nothing-runs-this\"\n    severity: low\n    techniques: [T1059]\n    tactic: execution\n"
        )
    };
    std::fs::write(rules.join("a.yaml"), rule("T-1")).expect("write");
    let node = Node::open(&NodeConfig {
        data_dir: dir.path().join("data"),
        rules: vec![rules.clone()],
        ..Default::default()
    })
    .expect("open");
    assert_eq!(node.core().ruleset().rules().len(), 1);
    std::fs::write(rules.join("b.yaml"), rule("T-2")).expect("write");
    std::fs::write(
        rules.join("c.yaml"),
        "rules:\n  - id: X\n    condition: 'event.kind =='\n",
    )
    .expect("write");
    let err = node.reload_rules().expect_err("refused").to_string();
    assert!(err.contains("c.yaml:"), "{err}");
    // Nothing half-applied: b.yaml was fine but the set failed as a whole.
    assert_eq!(node.core().ruleset().rules().len(), 1);
    assert!(node.core().reload.error.is_some());
    std::fs::remove_file(rules.join("c.yaml")).expect("rm");
    assert_eq!(node.reload_rules().expect("reloaded"), 2);
    assert_eq!(node.core().ruleset().rules().len(), 2);
    assert!(node.core().reload.error.is_none());
    node.shutdown();
}

#[test]
fn incidents_and_flags_reach_the_export_sinks_while_a_dead_sink_costs_detection_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "not-so-secret").expect("secret");
    // A port nothing listens on: the webhook sink retries in its own thread.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_port = dead.local_addr().expect("addr").port();
    drop(dead);
    let mut exports = causeway_export::ExportConfig {
        jsonl: Some(causeway_export::JsonlConfig::new(&out)),
        ..Default::default()
    };
    exports.webhook = Some(causeway_export::WebhookConfig::new(
        format!("http://127.0.0.1:{dead_port}/hook"),
        &secret,
    ));
    let node = Node::open(&NodeConfig {
        exports,
        ..cfg(&dir.path().join("data"))
    })
    .expect("open");
    let started = std::time::Instant::now();
    for e in fixture("reverse_shell.jsonl") {
        node.submit_blocking(e);
    }
    node.sync();
    let page = incidents(&node);
    assert_eq!(page.total, 1);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "detection did not wait for the dead webhook"
    );
    let id = page.items[0].id.clone();
    let stats = node.export_stats();
    assert!(stats
        .iter()
        .any(|s| s.sink == "webhook" && s.delivered == 0));
    node.shutdown();
    let text = std::fs::read_to_string(&out).expect("jsonl written");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["type"] == "incident" && l["incident"]["id"] == id.as_str()));
    assert!(lines.iter().any(|l| l["type"] == "flag"));
}
