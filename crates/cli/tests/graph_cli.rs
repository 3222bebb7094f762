//! `causeway ingest`, `events` and `trace` run as the built binary on the two-host fixtures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_causeway"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../graph/tests/fixtures")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn ingested() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&[
        "ingest",
        "--data-dir",
        d,
        fixture("alpha.jsonl").to_str().unwrap(),
        fixture("beta.jsonl").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

#[test]
fn two_host_ingest_links_client_on_a_to_server_on_b() {
    let dir = ingested();
    let d = dir.path().to_str().unwrap();
    let out = run(&[
        "trace",
        "--data-dir",
        d,
        "p-bbbbbbbbbbbbbbbb-711-6000",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let edges = t["edges"].as_array().unwrap();
    let link = edges
        .iter()
        .find(|e| {
            e["kind"] == "connected"
                && e["from"]
                    .as_str()
                    .unwrap()
                    .starts_with("proc:p-aaaaaaaaaaaaaaaa-501-200@")
                && e["to"]
                    .as_str()
                    .unwrap()
                    .starts_with("proc:p-bbbbbbbbbbbbbbbb-700-50@")
        })
        .expect("client on alpha linked to server on beta");
    assert_eq!(link["count"], 1);
    let nodes = t["nodes"].as_array().unwrap();
    let curl = nodes
        .iter()
        .find(|n| n["details"]["exe"] == "/usr/bin/curl")
        .unwrap();
    assert_eq!(curl["details"]["host"], "aaaa0000aaaa0000aaaa0000aaaa0000");
    assert_eq!(curl["kind"], "process");
    // The reused pid 701 (a later, unrelated process) is not in the chain.
    assert!(!nodes
        .iter()
        .any(|n| n["id"].as_str().unwrap().contains("-701-12000")));

    // Forward from the login shell on alpha reaches the payload on beta.
    let out = run(&[
        "trace",
        "--data-dir",
        d,
        "p-aaaaaaaaaaaaaaaa-500-100",
        "--direction",
        "forward",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("/tmp/payload [711]"), "{text}");
    assert!(text.contains("-> connected"), "{text}");
    // Depth bounds it.
    let out = run(&[
        "trace",
        "--data-dir",
        d,
        "p-aaaaaaaaaaaaaaaa-500-100",
        "--direction",
        "forward",
        "--depth",
        "1",
        "--json",
    ]);
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(t["edges"].as_array().unwrap().len(), 1);
}

#[test]
fn events_filters_and_json_form() {
    let dir = ingested();
    let d = dir.path().to_str().unwrap();
    let out = run(&["events", "--data-dir", d, "--json", "--kind", "net.accept"]);
    assert!(out.status.success());
    let lines: Vec<_> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), 1);
    let e = causeway_model::Event::from_json(&lines[0]).unwrap();
    assert_eq!(e.network.unwrap().remote.port, 41000);
    let out = run(&[
        "events",
        "--data-dir",
        d,
        "--json",
        "--q",
        "PAYLOAD",
        "--since",
        "2026-11-26T10:00:01.025Z",
        "--until",
        "2026-11-26T10:00:01.035Z",
    ]);
    let kinds: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            causeway_model::Event::from_json(l)
                .unwrap()
                .kind
                .to_string()
        })
        .collect();
    assert_eq!(kinds, ["file.chmod", "file.open"]);
    let out = run(&["events", "--data-dir", d, "--limit", "3"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 3);
    let out = run(&["events", "--data-dir", d, "--kind", "no.such"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kind"));
}

#[test]
fn bad_lines_are_reported_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("mixed.jsonl");
    let good = std::fs::read_to_string(fixture("alpha.jsonl")).unwrap();
    let mut lines: Vec<&str> = good.lines().collect();
    lines.insert(1, "{not json");
    let mut body = lines.join("\n").into_bytes();
    body.extend_from_slice(b"\n\xff\xfe\x00 binary\n");
    std::fs::write(&f, body).unwrap();
    let data = dir.path().join("data");
    let out = run(&[
        "ingest",
        "--data-dir",
        data.to_str().unwrap(),
        f.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mixed.jsonl:2:"), "{err}");
    assert!(err.contains("mixed.jsonl:7:"), "{err}");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["events"], 5);
    assert_eq!(summary["bad_lines"], 2);
    // Ingesting again appends (a second replay of the same file is new data to the store).
    let out = run(&["events", "--data-dir", data.to_str().unwrap(), "--json"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 5);
}

#[test]
fn errors_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = run(&["trace", "--data-dir", d, "p-1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store"));
    let dir = ingested();
    let out = run(&[
        "trace",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "p-unknown",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown process"));
    for sub in ["ingest", "events", "trace"] {
        let out = run(&[sub, "--help"]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("--data-dir"));
    }
    let out = run(&["ingest", "--data-dir", d, "/no/such/file"]);
    assert!(!out.status.success());
}
