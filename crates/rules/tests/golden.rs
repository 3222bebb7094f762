//! Golden tests: recorded events in, expected detections out, with the shipped ruleset.

use causeway_rules::testcase::{replay_file, TestCase};
use causeway_rules::Ruleset;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Ruleset {
    Ruleset::load(&[root().join("../../rules")]).expect("shipped rules load")
}

fn fired(name: &str, rules: &Ruleset) -> BTreeSet<String> {
    let flags = replay_file(
        &root().join("tests/fixtures").join(format!("{name}.jsonl")),
        rules,
    )
    .expect("replay");
    for f in &flags {
        eprintln!("{} {:?} {}", f.rule_id, f.suppressed_by, f.message);
    }
    flags
        .into_iter()
        .filter(|f| f.suppressed_by.is_none())
        .map(|f| f.rule_id)
        .collect()
}

fn check(name: &str, expected: &[&str]) {
    let rules = shipped();
    let got = fired(name, &rules);
    let want: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(got, want, "fixture {name}");
}

#[test]
fn reverse_shell() {
    check(
        "reverse_shell",
        &["CW-EXEC-001", "CW-C2-001", "CW-DISC-002"],
    );
}

#[test]
fn webshell() {
    check("webshell", &["CW-EXEC-006", "CW-DISC-001", "CW-DISC-002"]);
}

#[test]
fn python_reverse_shell() {
    check(
        "python_revshell",
        &["CW-EXEC-003", "CW-EXEC-005", "CW-C2-004"],
    );
}

#[test]
fn dropper_and_miner() {
    check(
        "dropper",
        &[
            "CW-C2-008",
            "CW-EVAS-008",
            "CW-EXEC-009",
            "CW-EVAS-015",
            "CW-EVAS-007",
            "CW-EVAS-006",
            "CW-C2-006",
            "CW-IMP-003",
            "CW-IMP-001",
            "CW-IMP-002",
        ],
    );
}

#[test]
fn persistence() {
    check(
        "persistence",
        &[
            "CW-PERS-001",
            "CW-PERS-002",
            "CW-PERS-003",
            "CW-PERS-004",
            "CW-PERS-005",
            "CW-PERS-006",
            "CW-EVAS-005",
        ],
    );
}

#[test]
fn privilege_escalation_and_escapes() {
    check(
        "privesc",
        &[
            "CW-PRIV-001",
            "CW-CRED-001",
            "CW-PRIV-003",
            "CW-EVAS-008",
            "CW-PRIV-010",
            "CW-PRIV-012",
            "CW-EVAS-011",
            "CW-EVAS-012",
            "CW-EVAS-013",
            "CW-EXEC-011",
            "CW-PRIV-014",
            "CW-PRIV-016",
            "CW-PRIV-017",
        ],
    );
}

#[test]
fn benign_workload_raises_nothing() {
    check("benign", &[]);
}

#[test]
fn case_file_format() {
    let rules = shipped();
    let tc = TestCase::load(&root().join("tests/fixtures/reverse_shell.case.yaml")).expect("case");
    let out = tc.run(&rules).expect("run");
    assert!(out.passed(), "{out:?}");
    let mut strict = tc.clone();
    strict.expect.retain(|r| r != "CW-C2-001");
    let out = strict.run(&rules).expect("run");
    assert_eq!(out.unexpected, vec!["CW-C2-001".to_string()]);
}
