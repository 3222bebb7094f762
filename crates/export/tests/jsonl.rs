//! The JSON-lines sink: size-based rotation with exact line accounting.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns: a failed unwrap is a failed test

mod support;

use causeway_export::{ExportConfig, Exports, JsonlConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

fn run(path: &Path, max_bytes: u64, keep: usize, ns: std::ops::Range<u32>) {
    let mut c = JsonlConfig::new(path);
    c.max_bytes = max_bytes;
    c.keep = keep;
    let ex = Exports::start(ExportConfig {
        jsonl: Some(c),
        ..Default::default()
    })
    .unwrap();
    for n in ns.clone() {
        ex.offer(&out_flag(n, "/etc/shadow"));
    }
    let r = ex.shutdown(Duration::from_secs(10));
    assert_eq!(r.sinks[0].delivered, ns.len() as u64);
    assert_eq!(r.sinks[0].lost.total(), 0);
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

/// The `n` of every flag in the file, in order.
fn ns(path: &Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["type"], "flag");
            v["flag"]["pid"].as_u64().unwrap() as u32 - 4000
        })
        .collect()
}

/// Length of one line (all test flags have 3-digit numbers, so the same length).
fn line_len() -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("one.jsonl");
    run(&p, 1 << 20, 1, 100..101);
    std::fs::metadata(&p).unwrap().len()
}

#[test]
fn rotates_by_size_and_keeps_every_line_in_order() {
    let l = line_len();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.jsonl");
    // Ten lines fit in a file, the eleventh rotates.
    run(&p, 10 * l + l / 2, 20, 100..200);
    let mut all = Vec::new();
    for n in (1..=9).rev() {
        let f = rotated(&p, n);
        assert!(std::fs::metadata(&f).unwrap().len() <= 10 * l + l / 2);
        let got = ns(&f);
        assert_eq!(got.len(), 10, "{}", f.display());
        all.extend(got);
    }
    assert!(!rotated(&p, 10).exists());
    all.extend(ns(&p));
    assert_eq!(all, (100..200).collect::<Vec<_>>());

    // Restarting appends to the current file and goes on rotating from its size.
    run(&p, 10 * l + l / 2, 20, 200..215);
    assert_eq!(ns(&p), (210..215).collect::<Vec<_>>());
    assert_eq!(ns(&rotated(&p, 1)), (200..210).collect::<Vec<_>>());
    // Two rotations: the oldest file moved from .9 to .11.
    assert_eq!(ns(&rotated(&p, 11)), (100..110).collect::<Vec<_>>());
}

#[test]
fn keeps_only_the_newest_files() {
    let l = line_len();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("out.jsonl");
    run(&p, 10 * l, 3, 100..195);
    // 95 lines, 10 a file: the current file holds the last 5, .1 .. .3 the 30 before.
    assert_eq!(ns(&p), (190..195).collect::<Vec<_>>());
    for n in 1..=3 {
        let first = 190 - 10 * n as u32;
        assert_eq!(ns(&rotated(&p, n)), (first..first + 10).collect::<Vec<_>>());
    }
    assert!(!rotated(&p, 4).exists());
    let files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files, 4);
}

#[test]
fn a_missing_directory_is_a_clear_error() {
    let e = Exports::start(ExportConfig {
        jsonl: Some(JsonlConfig::new("/nonexistent/dir/out.jsonl")),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("jsonl: cannot open /nonexistent/dir/out.jsonl"),
        "{e}"
    );
}
