//! `causeway policy learn|validate|diff|merge` as the built binary, on the policy crate's
//! service fixtures: learn from one run, a re-run is clean, a deviant run shows exactly its
//! two deviations, merge makes it clean, a broken file fails with file:line:col.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../policy/tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn store_of(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(&run(&[
        "ingest",
        "--data-dir",
        d,
        fixture(name).to_str().unwrap(),
    ]));
    dir
}

#[test]
fn learn_validate_diff_merge() {
    let learned_from = store_of("service_run1.jsonl");
    let yaml = ok(&run(&[
        "policy",
        "learn",
        "--data-dir",
        learned_from.path().to_str().unwrap(),
        "--exe",
        "/usr/bin/python3",
        "--name",
        "demo",
    ]));
    assert!(yaml.contains("name: demo"), "{yaml}");
    assert!(yaml.contains("/usr/bin/sh"), "{yaml}");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("demo.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let f = file.to_str().unwrap();
    ok(&run(&["policy", "validate", f]));

    let rerun = store_of("service_run2.jsonl");
    let out = ok(&run(&[
        "policy",
        "diff",
        "--data-dir",
        rerun.path().to_str().unwrap(),
        f,
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deviations"].as_array().unwrap().len(), 0, "{out}");

    let deviant = store_of("service_deviant.jsonl");
    let dd = deviant.path().to_str().unwrap();
    let out = ok(&run(&["policy", "diff", "--data-dir", dd, f, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let devs = v["deviations"].as_array().unwrap();
    assert_eq!(devs.len(), 2, "{out}");
    assert_eq!(devs[0]["kind"], "process");
    assert_eq!(devs[1]["kind"], "egress");
    let text = ok(&run(&["policy", "diff", "--data-dir", dd, f]));
    assert!(text.contains("2 deviation(s)"), "{text}");

    let merged = ok(&run(&["policy", "merge", f, "--data-dir", dd]));
    let mfile = work.path().join("merged.yaml");
    std::fs::write(&mfile, &merged).unwrap();
    let out = ok(&run(&[
        "policy",
        "diff",
        "--data-dir",
        dd,
        mfile.to_str().unwrap(),
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["deviations"].as_array().unwrap().len(), 0, "{out}");
}

#[test]
fn validate_reports_file_line_col_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "apiVersion: causeway/v1\nkind: Policy\nmetadata: {name: x}\nspec:\n  selector: {exe: /bin/x}\n  mode: block\n",
    )
    .unwrap();
    let out = run(&["policy", "validate", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:6:9: mode must be"), "{err}");
}

#[test]
fn apply_stores_only_valid_policies_and_list_shows_them() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.yaml");
    std::fs::write(
        &good,
        "apiVersion: causeway/v1\nkind: Policy\nmetadata:\n  name: web\nspec:\n  selector:\n    exe: /usr/sbin/nginx\n  mode: enforce\n  processPolicy:\n    - id: nginx\n      name: nginx\n      exe: [/usr/sbin/nginx]\n",
    )
    .unwrap();
    let bad = work.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: causeway/v1\nkind: Policy\nmetadata:\n  name: broken\nspec:\n  mode: sometimes\n").unwrap();

    let out = run(&["policy", "apply", bad.to_str().unwrap(), "--data-dir", d]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.yaml:"),
        "{out:?}"
    );
    assert!(
        !data.path().join("policies").exists(),
        "nothing stored from a bad file"
    );

    ok(&run(&[
        "policy",
        "apply",
        good.to_str().unwrap(),
        "--data-dir",
        d,
    ]));
    let list: serde_json::Value =
        serde_json::from_str(&ok(&run(&["policy", "list", "--data-dir", d, "--json"]))).unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["name"], "web");
    assert_eq!(rows[0]["mode"], "enforce");
}
