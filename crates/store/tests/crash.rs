//! Crash safety: a child process ingests into a store and is killed with SIGKILL mid-ingest;
//! the store must reopen consistent, with every batch the child saw committed still there.
//!
//! The child is this same test binary re-executed with `--ignored --exact crash_child_writer`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use causeway_graph::GraphConfig;
use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, File, Host, Kind, Process};
use causeway_store::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const ENV: &str = "CAUSEWAY_CRASH_CHILD_DIR";
const MS: i64 = 1_000_000;

fn event(i: i64) -> Event {
    let h = Host {
        name: "h".into(),
        id: "hid".into(),
    };
    let p = Process {
        id: format!("p-{}", i % 50),
        pid: (i % 50) as u32,
        exe: "/bin/w".into(),
        ..Default::default()
    };
    let mut e = Event::new(Timestamp(i * MS), Kind::FileOpen, h, p);
    e.file = Some(File {
        path: format!("/data/{i}"),
        write: true,
        ..Default::default()
    });
    e
}

#[test]
#[ignore = "child half of kill_minus_9_during_ingest (needs CAUSEWAY_CRASH_CHILD_DIR)"]
fn crash_child_writer() {
    let dir = std::env::var(ENV).expect("run by kill_minus_9_during_ingest");
    let s = SqliteStore::open(std::path::Path::new(&dir), &SqliteOptions::default()).unwrap();
    let mut p = Pipeline::open(s, GraphConfig::default()).unwrap();
    p.set_batch_size(997);
    let mut reported = 0;
    let mut out = std::io::stdout();
    for i in 0..50_000_000 {
        p.ingest(event(i)).unwrap();
        if p.committed() != reported {
            reported = p.committed();
            writeln!(out, "COMMITTED {reported}").unwrap();
            out.flush().unwrap();
        }
    }
}

#[test]
fn kill_minus_9_during_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = 0u64;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("COMMITTED ") {
            committed = n.trim().parse().unwrap();
            if committed >= 30_000 {
                break;
            }
        }
    }
    // SIGKILL while the child is busy ingesting (it never stops on its own).
    child.kill().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert!(committed >= 30_000, "child reported only {committed}");

    let s = SqliteStore::open(dir.path(), &SqliteOptions::default()).unwrap();
    assert_eq!(s.check().unwrap(), Vec::<String>::new());
    let st = s.stats().unwrap();
    assert!(st.events >= committed, "{st:?} < {committed}");
    // The reorder buffer releases in time order, so the first `committed` events are there.
    let early = s
        .events(&EventQuery {
            until: Some((committed as i64 - 1) * MS),
            limit: 10_000_000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(early.len() as u64, committed);
    let mut times: Vec<i64> = early.iter().map(|e| e.event.time.0 / MS).collect();
    times.sort();
    assert!(times.iter().enumerate().all(|(i, &t)| i as i64 == t));
    // And the store keeps working: rebuild the graph, append more.
    let mut p = Pipeline::open(s, GraphConfig::default()).unwrap();
    assert!(p.graph().stats().events >= committed);
    p.ingest(event(100_000_000)).unwrap();
    p.flush().unwrap();
    assert_eq!(p.store().stats().unwrap().events, st.events + 1);
}
