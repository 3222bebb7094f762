//! Full node pipeline benchmark: process index, rules, incidents, graph and SQLite store on
//! one ingest thread, over a mix built from the recorded fixtures.
//!
//! `cargo run --release -p causeway-node --example node_bench -- [EVENTS] [--rate R]`
//!
//! The mix: the recorded attack and benign fixtures (`crates/rules/tests/fixtures`),
//! replayed again and again under fresh process ids and times, interleaved with the bulk of
//! a busy host — daemons writing their logs and temp files (distinct and repeated paths),
//! reading configs — so that about 70 % of events are file activity, as on real hosts.
//!
//! Measured: (1) throughput, events/s, with everything pre-generated and submitted as fast
//! as the intake takes them (the ingest thread is the one core doing the work); (2) with
//! `--rate R`, the event → incident latency of the replayed reverse shells while R events/s
//! are offered (p50/p99 over every replay), and what the lanes shed. RSS at the end.

use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, File, Kind, Process};
use causeway_node::{Node, NodeConfig};
use causeway_server::Backend;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn fixtures() -> Vec<Vec<Event>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rules/tests/fixtures");
    let mut out = Vec::new();
    for name in [
        "reverse_shell",
        "benign",
        "dropper",
        "webshell",
        "privesc",
        "persistence",
    ] {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.jsonl"))) else {
            continue;
        };
        let evs: Vec<Event> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| Event::from_json(l).ok())
            .collect();
        out.push(evs);
    }
    out
}

/// A copy of a recorded scenario under fresh process ids, starting at `t`.
fn replay(evs: &[Event], copy: u64, t: i64) -> Vec<Event> {
    let t0 = evs.first().map_or(0, |e| e.time.0);
    let fix = |id: &str| {
        if id.is_empty() {
            String::new()
        } else {
            format!("{id}-{copy}")
        }
    };
    let mut cache: std::collections::HashMap<*const Process, Arc<Process>> = Default::default();
    evs.iter()
        .map(|e| {
            let mut e = e.clone();
            let key = Arc::as_ptr(&e.process);
            let p = cache
                .entry(key)
                .or_insert_with(|| {
                    let mut p = (*e.process).clone();
                    p.id = fix(&p.id);
                    p.parent_id = fix(&p.parent_id);
                    Arc::new(p)
                })
                .clone();
            e.process = p;
            e.time = Timestamp(t + (e.time.0 - t0));
            e
        })
        .collect()
}

struct Mix {
    events: Vec<Event>,
    /// Index (in `events`) of each replayed reverse shell's first flagged exec.
    attacks: Vec<usize>,
}

fn mix(total: usize) -> Mix {
    let scenarios = fixtures();
    let daemons: Vec<Arc<Process>> = (0..40u32)
        .map(|i| {
            Arc::new(Process {
                id: format!("p-00000000000000aa-{}-1", 500 + i),
                pid: 500 + i,
                ppid: 1,
                exe: format!("/usr/sbin/daemon{i}"),
                argv: vec![format!("daemon{i}"), "--foreground".into()],
                uid: 100 + i,
                euid: 100 + i,
                ..Default::default()
            })
        })
        .collect();
    let host = scenarios
        .first()
        .and_then(|s| s.first())
        .map(|e| e.host.clone())
        .unwrap_or_default();
    let mut events = Vec::with_capacity(total);
    let mut attacks = Vec::new();
    let mut t: i64 = 1_800_000_000_000_000_000;
    let mut copy = 0u64;
    let mut i = 0u64;
    while events.len() < total {
        // One scenario replay per ~300 bulk events.
        for _ in 0..300 {
            i += 1;
            t += 10_000;
            let d = &daemons[(i % 40) as usize];
            let (kind, path, write) = match i % 10 {
                0..=4 => (
                    Kind::FileOpen,
                    format!("/var/log/daemon{}.log", i % 40),
                    true,
                ),
                5 | 6 => (
                    Kind::FileOpen,
                    format!("/var/tmp/d{}/{}", i % 40, i % 5000),
                    true,
                ),
                7 => (
                    Kind::FileRename,
                    format!("/var/tmp/d{}/{}", i % 40, i % 5000),
                    false,
                ),
                _ => (
                    Kind::FileUnlink,
                    format!("/var/tmp/d{}/{}", i % 40, i % 4999),
                    false,
                ),
            };
            let mut e = Event::new(Timestamp(t), kind, host.clone(), Arc::clone(d));
            e.file = Some(File {
                path,
                write,
                ..Default::default()
            });
            events.push(e);
        }
        let s = &scenarios[(copy as usize) % scenarios.len()];
        copy += 1;
        let base = events.len();
        let r = replay(s, copy, t);
        t = r.last().map_or(t, |e| e.time.0) + 1;
        if (copy as usize - 1).is_multiple_of(scenarios.len()) {
            // The reverse shell: the exec whose flag matters.
            if let Some(k) = r.iter().position(|e| {
                e.kind == Kind::ProcessExec && e.process.argv.iter().any(|a| a.contains("/dev/tcp"))
            }) {
                attacks.push(base + k);
            }
        }
        events.extend(r);
    }
    events.truncate(total);
    attacks.retain(|&k| k < total);
    Mix { events, attacks }
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let rate: Option<f64> = args
        .iter()
        .position(|a| a == "--rate")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok());
    let m = mix(total);
    let dir = tempfile::tempdir()?;
    let node = Node::open(&NodeConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    })?;
    let backend = node.backend(None);
    let mut updates = backend.subscribe();
    // Incident updates are timestamped as they arrive, on their own thread.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut got: Vec<(Vec<String>, Instant)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match updates.try_recv() {
                    Ok(u) => got.push((
                        u.incident.processes.iter().map(|p| p.id.clone()).collect(),
                        Instant::now(),
                    )),
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
            got
        })
    };
    let start = Instant::now();
    match rate {
        None => {
            for e in m.events {
                node.submit_blocking(e);
            }
            node.sync();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let secs = start.elapsed().as_secs_f64();
            println!(
                "throughput: {total} events in {secs:.2} s = {:.0} events/s (one ingest thread)",
                total as f64 / secs
            );
        }
        Some(r) => {
            let gap = Duration::from_secs_f64(1.0 / r);
            let mut sent_at = std::collections::HashMap::new();
            let attacks: std::collections::HashSet<usize> = m.attacks.iter().copied().collect();
            let mut ids = Vec::new();
            for (i, e) in m.events.into_iter().enumerate() {
                let due = start + gap.mul_f64(i as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if attacks.contains(&i) {
                    sent_at.insert(e.process.id.clone(), Instant::now());
                    ids.push(e.process.id.clone());
                }
                node.submit(e);
            }
            node.sync();
            let secs = start.elapsed().as_secs_f64();
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let got = listener
                .join()
                .map_err(|_| anyhow::anyhow!("listener panicked"))?;
            // Each reverse shell: the first incident update naming its process.
            let mut lat = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for (procs, at) in &got {
                for p in procs {
                    if let Some(t0) = sent_at.get(p) {
                        if seen.insert(p.clone()) {
                            lat.push(at.duration_since(*t0).as_secs_f64() * 1e3);
                        }
                    }
                }
            }
            println!(
                "offered {r:.0} events/s for {secs:.1} s; reverse shells {} / flagged {}",
                ids.len(),
                lat.len()
            );
            println!(
                "event -> incident update p50 {:.1} ms, p99 {:.1} ms",
                percentile(&mut lat.clone(), 0.5),
                percentile(&mut lat, 0.99)
            );
        }
    }
    let h = backend.health().map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("lost: {:?}", h.events_lost);
    println!("index: {:?}", node.core().index.stats());
    println!("peak RSS: {:.0} MB", rss_mb());
    node.shutdown();
    Ok(())
}
