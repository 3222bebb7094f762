//! Store tests on a real SQLite file in a temporary directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use causeway_graph::{GraphConfig, TraceQuery};
use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, File, Host, Kind, Process};
use causeway_store::*;
use std::collections::BTreeSet;
use std::path::Path;

fn fixtures() -> Vec<Event> {
    let dir = format!("{}/../graph/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for f in ["alpha.jsonl", "beta.jsonl"] {
        for l in std::fs::read_to_string(format!("{dir}/{f}"))
            .unwrap()
            .lines()
        {
            out.push(Event::from_json(l).unwrap());
        }
    }
    out
}

fn open(dir: &Path) -> Pipeline<SqliteStore> {
    let s = SqliteStore::open(dir, &SqliteOptions::default()).unwrap();
    Pipeline::open(s, GraphConfig::default()).unwrap()
}

fn trace_set(p: &Pipeline<SqliteStore>, id: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let t = p
        .graph()
        .trace_process(id, &TraceQuery::backward())
        .unwrap();
    (
        t.nodes.into_iter().map(|n| n.id).collect(),
        t.edges
            .into_iter()
            .map(|e| format!("{:?} {} {}", e.kind, e.from, e.to))
            .collect(),
    )
}

fn writes(n: i64, path: &str) -> Vec<Event> {
    let h = Host {
        name: "h".into(),
        id: "hid".into(),
    };
    let p = Process {
        id: "p-d".into(),
        pid: 9,
        exe: "/usr/sbin/d".into(),
        argv: vec!["d".into()],
        ..Default::default()
    };
    (0..n)
        .map(|i| {
            let mut e = Event::new(
                Timestamp(1_000_000_000 + i),
                Kind::FileOpen,
                h.clone(),
                p.clone(),
            );
            e.file = Some(File {
                path: path.into(),
                write: true,
                ..Default::default()
            });
            e
        })
        .collect()
}

#[test]
fn events_roundtrip_in_agent_json_and_filters_work() {
    let dir = tempfile::tempdir().unwrap();
    let evs = fixtures();
    let mut p = open(dir.path());
    for e in evs.clone() {
        p.ingest(e).unwrap();
    }
    p.flush().unwrap();
    let s = p.store();
    let all = s
        .events(&EventQuery {
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(all.len(), evs.len());
    // Every stored event comes back exactly as the agent wrote it.
    let want: BTreeSet<String> = evs.iter().map(|e| e.to_json()).collect();
    let got: BTreeSet<String> = all.iter().map(|e| e.to_json().to_string()).collect();
    let got_ev: BTreeSet<String> = all.iter().map(|e| e.event.to_json()).collect();
    assert_eq!(got_ev, want);
    assert_eq!(got.len(), want.len());
    // Newest first.
    assert!(all.windows(2).all(|w| w[0].event.time >= w[1].event.time));

    let q = |q: EventQuery| s.events(&EventQuery { limit: 1000, ..q }).unwrap();
    let execs = q(EventQuery {
        kind: Some(Kind::ProcessExec),
        ..Default::default()
    });
    assert_eq!(
        execs.len(),
        evs.iter().filter(|e| e.kind == Kind::ProcessExec).count()
    );
    let payload = q(EventQuery {
        q: Some("/TMP/PAYLOAD".into()),
        ..Default::default()
    });
    // the write, the chmod, the exec (path), and the sh whose argv names it (4 of its events)
    assert!(payload.iter().any(|e| e.event.kind == Kind::FileChmod));
    assert!(payload
        .iter()
        .any(|e| e.event.process.exe == "/tmp/payload"));
    assert!(payload
        .iter()
        .all(|e| e.to_json().to_string().contains("/tmp/payload")));
    let curl = q(EventQuery {
        q: Some("hostname".into()),
        ..Default::default()
    });
    assert_eq!(
        curl.len(),
        3,
        "curl's argv mentions @/etc/hostname in exec, connect, exit"
    );
    let alpha = q(EventQuery {
        host: Some("alpha".into()),
        ..Default::default()
    });
    assert_eq!(alpha.len(), 5);
    let by_proc = q(EventQuery {
        process: Some("p-bbbbbbbbbbbbbbbb-701-12000".into()),
        ..Default::default()
    });
    assert_eq!(by_proc.len(), 3);
    let t0 = Timestamp::parse_rfc3339("2026-11-26T10:00:01Z").unwrap().0;
    let t1 = Timestamp::parse_rfc3339("2026-11-26T10:00:01.015Z")
        .unwrap()
        .0;
    let window = q(EventQuery {
        since: Some(t0),
        until: Some(t1),
        ..Default::default()
    });
    assert_eq!(window.len(), 4);
    assert_eq!(
        s.events(&EventQuery {
            limit: 2,
            ..Default::default()
        })
        .unwrap()
        .len(),
        2
    );
}

#[test]
fn hostile_query_text_is_a_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open(dir.path());
    let mut evs = writes(3, "/tmp/x'); DROP TABLE events; --");
    evs[0].process_mut().argv = vec!["%".into(), "_".into(), "\\x00".into()];
    for e in evs {
        p.ingest(e).unwrap();
    }
    p.flush().unwrap();
    let s = p.store();
    for q in ["'; DROP TABLE events; --", "%", "_", "\\", "\"", "\u{0}"] {
        s.events(&EventQuery {
            q: Some(q.into()),
            ..Default::default()
        })
        .unwrap();
    }
    // `%` and `_` are literal characters, not wildcards.
    let pct = s
        .events(&EventQuery {
            q: Some("%".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(pct.len(), 1);
    let inj = s
        .events(&EventQuery {
            q: Some("drop table".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(inj.iter().map(|e| e.count).sum::<u64>(), 3);
    assert!(s.check().unwrap().is_empty());
}

#[test]
fn repeats_fold_on_disk_and_replay_gives_same_traces() {
    let dir = tempfile::tempdir().unwrap();
    let mut evs = fixtures();
    evs.sort_by_key(|e| e.time);
    // a noisy daemon on beta interleaved with the attack
    let mut noisy = writes(5000, "/var/log/d.log");
    for e in &mut noisy {
        e.host = evs
            .iter()
            .find(|x| x.host.name == "beta")
            .unwrap()
            .host
            .clone();
        e.time = Timestamp(evs[0].time.0 + e.time.0 * 100);
    }
    evs.extend(noisy);
    evs.sort_by_key(|e| e.time);
    let live = {
        let mut p = open(dir.path());
        p.set_batch_size(777); // folds across batch boundaries too
        for e in evs.clone() {
            p.ingest(e).unwrap();
        }
        p.flush().unwrap();
        let st = p.store().stats().unwrap();
        assert_eq!(st.events, evs.len() as u64);
        assert!(st.rows < 40, "{st:?}");
        let d = p
            .store()
            .events(&EventQuery {
                q: Some("d.log".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].count, 5000);
        assert_eq!(d[0].to_json()["repeat"]["count"], 5000);
        trace_set(&p, "p-bbbbbbbbbbbbbbbb-711-6000")
    };
    let reopened = open(dir.path());
    assert_eq!(trace_set(&reopened, "p-bbbbbbbbbbbbbbbb-711-6000"), live);
    let fwd = |p: &Pipeline<SqliteStore>| {
        let t = p
            .graph()
            .trace_process("p-d", &TraceQuery::forward())
            .unwrap();
        t.edges
            .iter()
            .map(|e| (e.to.clone(), e.count))
            .collect::<Vec<_>>()
    };
    // Replayed as first + last occurrence: the same edge, fewer counted occurrences.
    assert_eq!(fwd(&reopened).len(), 1);
}

#[test]
fn incidents_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = SqliteStore::open(dir.path(), &SqliteOptions::default()).unwrap();
    let doc = serde_json::json!({"title": "reverse shell", "techniques": ["T1059"]});
    s.put_incident("inc-1", &doc, 7.5, Timestamp(10), Timestamp(20))
        .unwrap();
    s.put_incident("inc-2", &doc, 3.0, Timestamp(5), Timestamp(30))
        .unwrap();
    let updated = serde_json::json!({"title": "reverse shell", "techniques": ["T1059", "T1105"]});
    s.put_incident("inc-1", &updated, 9.0, Timestamp(10), Timestamp(40))
        .unwrap();
    let got = s.get_incident("inc-1").unwrap().unwrap();
    assert_eq!(
        (got.json, got.score, got.last_seen),
        (updated, 9.0, Timestamp(40))
    );
    assert!(s.get_incident("nope").unwrap().is_none());
    let ids: Vec<_> = s
        .list_incidents(10)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(ids, ["inc-1", "inc-2"]);
    assert_eq!(s.list_incidents(1).unwrap().len(), 1);
    drop(s);
    let s = SqliteStore::open(dir.path(), &SqliteOptions::default()).unwrap();
    assert_eq!(s.stats().unwrap().incidents, 2);
}

#[test]
fn retention_by_age_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open(dir.path());
    // 20k distinct events (distinct paths: nothing folds), 1 s apart
    let h = Host {
        name: "h".into(),
        id: "hid".into(),
    };
    let proc_ = Process {
        id: "p-x".into(),
        pid: 1,
        exe: "/bin/x".into(),
        ..Default::default()
    };
    for i in 0..20_000i64 {
        let mut e = Event::new(
            Timestamp(i * 1_000_000_000),
            Kind::FileOpen,
            h.clone(),
            proc_.clone(),
        );
        e.file = Some(File {
            path: format!("/data/file-{i}"),
            write: true,
            ..Default::default()
        });
        p.ingest(e).unwrap();
    }
    p.flush().unwrap();
    let s = p.store_mut();
    let before = s.stats().unwrap();
    assert_eq!(before.rows, 20_000);
    let now = 20_000 * 1_000_000_000;
    let rep = s
        .retain(
            &Retention {
                max_age_ns: Some(5_000 * 1_000_000_000),
                max_bytes: None,
            },
            now,
        )
        .unwrap();
    assert_eq!(rep.deleted_by_age, 15_000);
    let oldest = s
        .events(&EventQuery {
            limit: 100_000,
            ..Default::default()
        })
        .unwrap();
    assert!(oldest
        .iter()
        .all(|e| e.event.time.0 >= 15_000 * 1_000_000_000));
    assert!(s.stats().unwrap().details <= 5_000);
    let half = s.stats().unwrap().bytes / 2;
    let rep = s
        .retain(
            &Retention {
                max_age_ns: None,
                max_bytes: Some(half),
            },
            now,
        )
        .unwrap();
    assert!(
        rep.deleted_by_size > 0 && rep.bytes_after <= half,
        "{rep:?}"
    );
    // Size retention deletes oldest first.
    let left = s
        .events(&EventQuery {
            limit: 100_000,
            ..Default::default()
        })
        .unwrap();
    let newest_kept = left.iter().map(|e| e.event.time.0).max().unwrap();
    assert_eq!(newest_kept, 19_999 * 1_000_000_000);
    assert!(s.check().unwrap().is_empty());
}

#[test]
fn kernel_folded_events_keep_their_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = open(dir.path());
    let mut evs = writes(3, "/var/log/app.log");
    // The kernel folded 500 identical writes into the second record.
    evs[1].repeat = Some(causeway_model::Repeat {
        count: 500,
        last_time: Timestamp(1_000_000_000 + 900),
    });
    for e in evs {
        p.ingest(e).unwrap();
    }
    p.flush().unwrap();
    let stored = p
        .store()
        .events(&EventQuery {
            limit: 100,
            ..Default::default()
        })
        .unwrap();
    let total: u64 = stored.iter().map(|s| s.count).sum();
    assert_eq!(total, 502, "{stored:?}");
    let last = stored.iter().map(|s| s.last_time).max().unwrap();
    assert!(last >= Timestamp(1_000_000_000 + 900));
}
