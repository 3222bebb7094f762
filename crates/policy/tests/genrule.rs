//! A rule generated from an incident catches a re-run of the attack and stays quiet on
//! ordinary work.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use causeway_model::Event;
use causeway_policy::rule_from_incident;
use causeway_rules::testcase::read_events;
use causeway_rules::{IncidentConfig, IncidentEngine, ProcessIndex, Ruleset};
use std::path::{Path, PathBuf};

fn rules_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../rules/tests/fixtures")
        .join(name)
}

fn events(name: &str) -> Vec<Event> {
    read_events(&rules_fixture(name)).expect("events")
}

/// The incident the shipped ruleset raises on a fixture, as the JSON the store keeps.
fn incident_of(events: &[Event]) -> serde_json::Value {
    let shipped = Ruleset::load(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")])
        .expect("shipped rules");
    let mut lineage = ProcessIndex::new();
    let mut engine = IncidentEngine::new(IncidentConfig::default());
    for e in events {
        lineage.observe(e);
        engine.observe(e, &lineage);
        let flags = shipped.evaluate(e, &lineage);
        engine.add_flags(&flags, &lineage);
    }
    let all: Vec<_> = engine.incidents().collect();
    assert_eq!(all.len(), 1, "{all:#?}");
    serde_json::to_value(all[0]).unwrap()
}

/// The same attack again: other pids, ids, times and ephemeral ports.
fn rerun(events: &[Event]) -> Vec<Event> {
    let fix = |id: &str| {
        if id.is_empty() {
            String::new()
        } else {
            format!("{id}-again")
        }
    };
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.time.0 += 3_600_000_000_000;
            e.process_mut().pid += 5000;
            e.process_mut().ppid += 5000;
            e.process_mut().id = fix(&e.process.id);
            e.process_mut().parent_id = fix(&e.process.parent_id);
            if let Some(n) = e.network.as_mut() {
                if e.kind == causeway_model::Kind::NetConnect {
                    n.local.port = n.local.port.wrapping_add(17);
                }
            }
            e
        })
        .collect()
}

fn fired(rule_yaml: &str, events: &[Event]) -> Vec<String> {
    let loaded = Ruleset::from_sources(&[(Path::new("generated.yaml"), rule_yaml)]);
    assert!(loaded.errors.is_empty(), "{:?}\n{rule_yaml}", loaded.errors);
    assert_eq!(loaded.ruleset.rules().len(), 1);
    let mut lineage = ProcessIndex::new();
    let mut out = Vec::new();
    for e in events {
        lineage.observe(e);
        for f in loaded.ruleset.evaluate(e, &lineage) {
            out.push(format!("{} {} {}", f.rule_id, e.kind, e.process.exe));
        }
    }
    out
}

fn check(fixture: &str) {
    let attack = events(fixture);
    let incident = incident_of(&attack);
    let yaml = rule_from_incident(&incident, &attack).unwrap();
    assert!(yaml.contains("id: CW-GEN-"), "{yaml}");
    // Stable: the same incident gives the same rule.
    assert_eq!(yaml, rule_from_incident(&incident, &attack).unwrap());
    let again = fired(&yaml, &rerun(&attack));
    assert!(!again.is_empty(), "re-run not caught:\n{yaml}");
    let benign = fired(&yaml, &events("benign.jsonl"));
    assert!(
        benign.is_empty(),
        "fires on benign work: {benign:?}\n{yaml}"
    );
}

#[test]
fn reverse_shell_rule_catches_a_rerun_not_benign_work() {
    check("reverse_shell.jsonl");
}

#[test]
fn dropper_rule_catches_a_rerun_not_benign_work() {
    check("dropper.jsonl");
}

#[test]
fn webshell_rule_catches_a_rerun_not_benign_work() {
    check("webshell.jsonl");
}

#[test]
fn bad_incident_documents_are_errors_not_panics() {
    let ev = events("benign.jsonl");
    for doc in [
        serde_json::json!(null),
        serde_json::json!({"id": "x"}),
        serde_json::json!({"id": "x", "flags": [{"process_id": 7}]}),
        serde_json::json!({"id": "x", "flags": [{"process_id": "nope"}]}),
    ] {
        assert!(rule_from_incident(&doc, &ev).is_err(), "{doc}");
    }
}

#[test]
fn the_same_commands_without_the_attack_do_not_fire() {
    let attack = events("reverse_shell.jsonl");
    let yaml = rule_from_incident(&incident_of(&attack), &attack).unwrap();
    // An ordinary nested shell running `id` over the same ssh session shape.
    let ordinary: Vec<Event> = rerun(&attack)
        .into_iter()
        .filter(|e| e.network.is_none())
        .map(|mut e| {
            if e.process.argv.iter().any(|a| a.contains("/dev/tcp/")) {
                e.process_mut().argv = vec!["bash".into(), "-c".into(), "id".into()];
            }
            e
        })
        .collect();
    let f = fired(&yaml, &ordinary);
    assert!(f.is_empty(), "{f:?}\n{yaml}");
}
