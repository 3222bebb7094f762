//! Learn, re-run, deviate, validate, merge: on fixtures of a small service, through a real store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use causeway_graph::GraphConfig;
use causeway_model::Event;
use causeway_policy::{diff, learn, load, load_str, merge, DeviationKind, Policy, Selector};
use causeway_store::{Pipeline, SqliteOptions, SqliteStore, Store};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Ingest fixtures into a fresh SQLite store and read every event back with `replay`.
fn stored(files: &[&str]) -> Vec<Event> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), &SqliteOptions::default()).unwrap();
    let mut pipe = Pipeline::open(store, GraphConfig::default()).unwrap();
    for f in files {
        let text = std::fs::read_to_string(fixture(f)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            pipe.ingest(Event::from_json(line).unwrap()).unwrap();
        }
    }
    pipe.flush().unwrap();
    let mut out = Vec::new();
    pipe.store().replay(&mut |e| out.push(e)).unwrap();
    out
}

fn learned() -> Policy {
    learn(
        &stored(&["service_run1.jsonl"]),
        &Selector::Exe("/usr/bin/python3".into()),
        None,
        None,
    )
}

#[test]
fn learns_the_service_tree_and_flows() {
    let p = learned();
    let y = p.to_yaml();
    assert_eq!(p.process_policy.len(), 1, "{y}");
    let root = &p.process_policy[0];
    assert_eq!(root.exe, ["/usr/bin/python3"], "{y}");
    assert_eq!(root.euser, ["1000"], "{y}");
    assert_eq!(root.listen.len(), 1, "{y}");
    assert_eq!(root.listen[0].port, 8080);
    // The worker fork stays on the root node; sh is a child, date its child.
    assert_eq!(root.children.len(), 1, "{y}");
    assert_eq!(root.children[0].exe, ["/usr/bin/sh"], "{y}");
    assert_eq!(root.children[0].children[0].exe, ["/usr/bin/date"], "{y}");
    // The client curl is outside the workload.
    assert!(!y.contains("curl"), "{y}");
    let ing = &p.network_policy.ingress;
    assert_eq!(ing.len(), 1, "{y}");
    assert_eq!(ing[0].ports[0].port, 8080);
    assert_eq!(ing[0].processes, std::slice::from_ref(&root.id));
    let eg = &p.network_policy.egress;
    assert_eq!(eg.len(), 1, "{y}");
    assert_eq!(eg[0].ports[0].port, 5432);
    assert!(y.contains("cidr: 127.0.0.1/32"), "{y}");
    assert_eq!(
        p.allowed_executables(),
        ["/usr/bin/date", "/usr/bin/python3", "/usr/bin/sh"]
    );
    // Deterministic.
    assert_eq!(y, learned().to_yaml());
}

#[test]
fn service_selector_learns_the_same_tree() {
    let events = stored(&["service_run1.jsonl"]);
    let by_exe = learn(
        &events,
        &Selector::Exe("/usr/bin/python3".into()),
        None,
        None,
    );
    let by_unit = learn(&events, &Selector::Service("demo".into()), None, None);
    assert_eq!(by_exe.process_policy, by_unit.process_policy);
    assert_eq!(by_exe.network_policy, by_unit.network_policy);
}

#[test]
fn learned_yaml_reloads_and_round_trips() {
    let p = learned();
    let y = p.to_yaml();
    let back = load_str(Path::new("learned.yaml"), &y).unwrap_or_else(|e| panic!("{e}\n{y}"));
    assert_eq!(back, p);
    assert_eq!(back.to_yaml(), y);
    // Through a real file too.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.yaml");
    std::fs::write(&f, &y).unwrap();
    assert_eq!(load(&f).unwrap(), p);
}

#[test]
fn rerun_of_the_same_workload_has_no_deviations() {
    let p = learned();
    let d = diff(&p, &stored(&["service_run2.jsonl"]), None, None);
    assert!(d.is_empty(), "{d:#?}");
}

#[test]
fn extra_child_and_connection_are_exactly_two_deviations() {
    let p = learned();
    let d = diff(&p, &stored(&["service_deviant.jsonl"]), None, None);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(d[0].kind, DeviationKind::Process);
    assert_eq!(d[0].exe, "/usr/bin/curl");
    assert_eq!(d[0].pid, 904);
    assert_eq!(d[0].event_kind.as_str(), "process.exec");
    assert_eq!(d[1].kind, DeviationKind::Egress);
    assert!(d[1].message.contains("10.0.0.5"), "{}", d[1].message);
    assert!(d[1].key.contains("443"), "{}", d[1].key);
    // Keys are stable.
    let again = diff(&p, &stored(&["service_deviant.jsonl"]), None, None);
    assert_eq!(
        d.iter().map(|x| &x.key).collect::<Vec<_>>(),
        again.iter().map(|x| &x.key).collect::<Vec<_>>()
    );
}

#[test]
fn merge_then_diff_is_clean_and_merged_policy_reloads() {
    let p = learned();
    let events = stored(&["service_deviant.jsonl"]);
    let d = diff(&p, &events, None, None);
    let m = merge(&p, &d);
    assert!(diff(&m, &events, None, None).is_empty());
    let y = m.to_yaml();
    assert!(y.contains("/usr/bin/curl"), "{y}");
    assert!(y.contains("10.0.0.5/32"), "{y}");
    assert_eq!(load_str(Path::new("m.yaml"), &y).unwrap(), m);
}

#[test]
fn since_window_limits_the_diff() {
    let p = learned();
    let events = stored(&["service_deviant.jsonl"]);
    let late = causeway_model::timefmt::Timestamp::parse_rfc3339("2026-11-26T12:00:30Z").unwrap();
    assert!(diff(&p, &events, Some(late), None).is_empty());
}

fn errors(text: &str) -> Vec<String> {
    match load_str(Path::new("bad.yaml"), text) {
        Ok(p) => panic!("loaded: {p:?}"),
        Err(e) => e.errors.iter().map(|x| x.to_string()).collect(),
    }
}

const GOOD: &str = "apiVersion: causeway/v1
kind: Policy
metadata:
  name: demo
spec:
  selector:
    exe: /usr/bin/python3
  mode: audit
  processPolicy:
    - id: py
      exe: [/usr/bin/python3]
      euser: [1000]
  networkPolicy:
    egress:
      - to: [{ipBlock: {cidr: 127.0.0.1/32}}]
        ports: [{protocol: tcp, port: 5432}]
        processes: [py]
";

#[test]
fn validation_errors_name_file_line_col() {
    assert!(load_str(Path::new("good.yaml"), GOOD).is_ok());
    let e = errors(&GOOD.replace("mode: audit", "mode: block"));
    assert_eq!(
        e,
        ["bad.yaml:8:9: mode must be `audit` or `enforce`, not `block`"]
    );
    let e = errors(&GOOD.replace("127.0.0.1/32", "127.0.0.1/40"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("bad.yaml:15:31: "), "{e:?}");
    let e = errors(&GOOD.replace("processes: [py]", "processes: [nope]"));
    assert_eq!(
        e,
        ["bad.yaml:17:21: unknown process id `nope` (not in processPolicy)"]
    );
    let e = errors(&GOOD.replace(
        "      euser: [1000]",
        "      euser: [1000]\n      colour: red",
    ));
    assert!(
        e[0].starts_with("bad.yaml:13:7: unknown field `colour`"),
        "{e:?}"
    );
    let e = errors(&GOOD.replace("apiVersion: causeway/v1", "apiVersion: v2"));
    assert!(
        e[0].starts_with("bad.yaml:1:13: unsupported apiVersion"),
        "{e:?}"
    );
    // Several errors: all reported, in file order, nothing loaded.
    let e = errors(
        &GOOD
            .replace("mode: audit", "mode: x")
            .replace("port: 5432", "port: 70000"),
    );
    assert_eq!(e.len(), 2, "{e:?}");
    let e = errors("a: [1, 2\n");
    assert!(e[0].starts_with("bad.yaml:"), "{e:?}");
}

#[test]
fn hostile_yaml_never_panics() {
    let inputs = [
        "", "~", "[]", "- - -", "spec: 1", "apiVersion: causeway/v1\nkind: Policy\nmetadata: {name: x}\nspec: {selector: {}, mode: audit}",
        "apiVersion: causeway/v1\nkind: Policy\nmetadata: {name: x}\nspec: {selector: {exe: a, service: b}, mode: audit, processPolicy: [{id: a, exe: []}, {id: a, exe: [\"/**\"]}]}",
        "&a x: *a", "!!binary x", "{? [a]: b}", "\u{0}",
    ];
    for i in inputs {
        assert!(load_str(Path::new("h.yaml"), i).is_err(), "{i:?}");
    }
    let deep = "[".repeat(10_000);
    assert!(load_str(Path::new("h.yaml"), &deep).is_err());
}

#[test]
fn workload_strings_stay_data_in_yaml() {
    let mut p = learned();
    p.process_policy[0].exe = vec!["/tmp/a b\"c\\d\n: {x}".into()];
    p.description = "#not a comment".into();
    let y = p.to_yaml();
    assert_eq!(load_str(Path::new("x.yaml"), &y).unwrap(), p, "{y}");
}

#[test]
fn hostile_events_never_panic() {
    let mut events = stored(&["service_deviant.jsonl"]);
    let mut extra = events.clone();
    for (i, e) in extra.iter_mut().enumerate() {
        match i % 5 {
            0 => e.process_mut().id.clear(),
            1 => e.process_mut().parent_id = e.process.id.clone(),
            2 => {
                if let Some(n) = e.network.as_mut() {
                    n.remote.ip = "not an ip\u{7}".into();
                    n.protocol = "TCP\n".into();
                }
            }
            3 => e.process_mut().exe = "\u{0}/\\x41*\"".into(),
            _ => e.process_mut().parent_id = "p-missing".into(),
        }
    }
    events.extend(extra);
    for sel in [
        Selector::Exe("/usr/bin/python3".into()),
        Selector::Exe("*".into()),
        Selector::Container(String::new()),
        Selector::Service("demo".into()),
    ] {
        let p = learn(&events, &sel, None, None);
        let y = p.to_yaml();
        let back = load_str(Path::new("h.yaml"), &y);
        if !p.process_policy.is_empty() {
            assert!(back.is_ok(), "{back:?}\n{y}");
        }
        let d = diff(&p, &events, None, None);
        let m = merge(&p, &d);
        assert!(diff(&m, &events, None, None).is_empty());
    }
}
