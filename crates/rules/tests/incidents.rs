//! Incident grouping, deduplication, scoring and suppression.

use causeway_rules::testcase::read_events;
use causeway_rules::{
    IncidentConfig, IncidentEngine, IncidentUpdate, ProcessIndex, Ruleset, Severity,
};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(rules: &Ruleset, fixtures: &[&str]) -> (IncidentEngine, ProcessIndex, Vec<IncidentUpdate>) {
    let mut lineage = ProcessIndex::new();
    let mut engine = IncidentEngine::new(IncidentConfig::default());
    let mut updates = Vec::new();
    for name in fixtures {
        for e in read_events(&root().join("tests/fixtures").join(format!("{name}.jsonl")))
            .expect("events")
        {
            lineage.observe(&e);
            engine.observe(&e, &lineage);
            let flags = rules.evaluate(&e, &lineage);
            updates.extend(engine.add_flags(&flags, &lineage));
        }
    }
    (engine, lineage, updates)
}

fn shipped() -> Ruleset {
    Ruleset::load(&[root().join("../../rules")]).expect("load")
}

#[test]
fn reverse_shell_is_one_incident_rooted_at_the_session() {
    let rules = shipped();
    let (engine, lineage, updates) = run(&rules, &["reverse_shell"]);
    let incidents: Vec<_> = engine.incidents().collect();
    assert_eq!(incidents.len(), 1);
    let inc = incidents[0];
    // The session entry is the per-user sshd (pid 1000), not the shell that was flagged.
    assert_eq!(inc.root.pid, 1000);
    assert!(inc.techniques.contains(&"T1059.004".to_string()));
    assert_eq!(inc.severity, Severity::Critical);
    assert!(inc.score >= 80, "score {}", inc.score);
    assert!(updates.first().is_some_and(|u| u.opened));
    assert!(updates.iter().skip(1).all(|u| !u.opened));
    let trace = engine.trace(&inc.id, &lineage).expect("trace");
    // The chain from the session entry to the flagged shell: sshd -> bash -> bash.
    let ids: Vec<u32> = trace.nodes.iter().map(|n| n.pid).collect();
    for pid in [1000, 1001, 1100] {
        assert!(ids.contains(&pid), "{ids:?}");
    }
    assert!(trace
        .edges
        .iter()
        .any(|e| e.kind == "spawn" && e.to.contains("-1100-")));
}

#[test]
fn benign_workload_opens_no_incident() {
    let rules = shipped();
    let (engine, _, updates) = run(&rules, &["benign"]);
    assert_eq!(engine.incidents().count(), 0);
    assert!(updates.is_empty());
}

#[test]
fn separate_roots_are_separate_incidents() {
    let rules = shipped();
    let (engine, _, _) = run(&rules, &["webshell", "dropper"]);
    let mut roots: Vec<u32> = engine.incidents().map(|i| i.root.pid).collect();
    roots.sort();
    // Web shell: rooted at the php-fpm service; dropper: at the login session.
    assert_eq!(roots, vec![510, 1000]);
}

fn rules_from(text: &str) -> Ruleset {
    let loaded = Ruleset::from_sources(&[(Path::new("t.yaml"), text)]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.ruleset
}

#[test]
fn duplicates_merge_and_low_flags_stay_below_threshold() {
    let rules = rules_from(
        r#"
rules:
  - id: T-LOW
    title: any exec
    kinds: [process.exec]
    condition: "true"
    severity: low
    techniques: [T1059]
    tactic: execution
"#,
    );
    let (engine, _, updates) = run(&rules, &["reverse_shell"]);
    // Three execs under one session, all low: capped at 35, never opens at 40.
    assert!(updates.is_empty(), "{updates:?}");
    assert_eq!(engine.incidents().count(), 0);
}

#[test]
fn suppressed_flags_are_kept_but_not_scored() {
    let rules = rules_from(
        r#"
rules:
  - id: T-CRIT
    title: shell connect
    kinds: [net.connect]
    condition: event.process.name == "bash"
    severity: critical
    techniques: [T1059.004]
    tactic: execution
  - id: T-HIGH
    title: id ran
    kinds: [process.exec]
    condition: event.process.name == "id"
    severity: high
    techniques: [T1033]
    tactic: discovery
suppressions:
  - id: lab-box
    rules: [T-C*]
    condition: ancestors.exists(a, a.name == "sshd")
    reason: red-team lab
"#,
    );
    let (engine, _, _) = run(&rules, &["reverse_shell"]);
    let incs: Vec<_> = engine.incidents().collect();
    assert_eq!(incs.len(), 1);
    assert_eq!(incs[0].suppressed.len(), 1);
    assert_eq!(
        incs[0].suppressed[0].suppressed_by.as_deref(),
        Some("suppression:lab-box")
    );
    assert!(incs[0].flags.iter().all(|f| f.rule_id == "T-HIGH"));
    assert_eq!(incs[0].score, 45);
}

#[test]
fn discovery_burst_raises_a_synthetic_flag() {
    let rules = shipped();
    let (engine, _, _) = run(&rules, &["webshell", "reverse_shell"]);
    // The web shell ran id, uname and cat /etc/passwd: three discovery flags, no burst yet.
    let web = engine
        .incidents()
        .find(|i| i.root.pid == 510)
        .expect("web incident");
    assert!(!web.flags.iter().any(|f| f.rule_id == "CW-DISC-BURST"));
    let cfg = IncidentConfig {
        burst_min: 2,
        ..IncidentConfig::default()
    };
    let mut lineage = ProcessIndex::new();
    let mut eng = IncidentEngine::new(cfg);
    for e in read_events(&root().join("tests/fixtures/webshell.jsonl")).expect("events") {
        lineage.observe(&e);
        let f = rules.evaluate(&e, &lineage);
        eng.add_flags(&f, &lineage);
    }
    let web = eng.incidents().next().expect("incident");
    assert!(
        web.flags.iter().any(|f| f.rule_id == "CW-DISC-BURST"),
        "{:?}",
        web.flags
    );
}

#[test]
fn after_an_idle_trace_closes_later_flags_of_the_root_join_one_new_incident() {
    let rules = shipped();
    let events = read_events(&root().join("tests/fixtures/reverse_shell.jsonl")).expect("events");
    let mut lineage = ProcessIndex::new();
    let mut engine = IncidentEngine::new(IncidentConfig::default());
    // The same attack twice, the second run two hours later (its flags at several distinct
    // times): the first trace is idle by then, so a new one opens, and only one.
    for shift in [0i64, 7_200_000_000_000] {
        for (i, e) in events.iter().enumerate() {
            let mut e = e.clone();
            e.time.0 += shift + i as i64 * 1_000;
            lineage.observe(&e);
            engine.observe(&e, &lineage);
            let flags = rules.evaluate(&e, &lineage);
            engine.add_flags(&flags, &lineage);
        }
    }
    let incidents: Vec<_> = engine.incidents().collect();
    assert_eq!(
        incidents.len(),
        2,
        "{:#?}",
        incidents
            .iter()
            .map(|i| (&i.id, i.flags.len()))
            .collect::<Vec<_>>()
    );
    let (a, b) = (incidents[0].flags.len(), incidents[1].flags.len());
    assert_eq!(a, b, "both runs carry all their flags");
}
