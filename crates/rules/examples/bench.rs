//! Rule evaluation throughput with the full shipped ruleset over a synthetic event mix,
//! and event -> incident latency at fixed arrival rates (single-server queue model fed
//! with the measured per-event service times, so no sleeping).
//!
//! Run: `cargo run --release -p causeway-rules --example bench [N_EVENTS]`

use causeway_model::timefmt::Timestamp;
use causeway_model::*;
use causeway_rules::{IncidentConfig, IncidentEngine, MemoryLineage, Ruleset};
use std::path::PathBuf;
use std::time::Instant;

fn proc(pid: u32, ppid: u32, exe: &str, argv: &[&str]) -> Process {
    Process {
        id: format!("p-00000000deadbeef-{pid}-{}", pid * 7),
        pid,
        ppid,
        parent_id: if ppid == 0 {
            String::new()
        } else {
            format!("p-00000000deadbeef-{ppid}-{}", ppid * 7)
        },
        exe: exe.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        cwd: "/home/alice/src".into(),
        uid: 1000,
        euid: 1000,
        gid: 1000,
        egid: 1000,
        auid: Some(1000),
        session: Some(3),
        tty: Some("pts/0".into()),
        ..Default::default()
    }
}

/// A deterministic mix resembling a developer box / app server: builds, shells, file
/// writes, outbound connections, exits.
fn synth(n: usize) -> Vec<Event> {
    let host = Host {
        name: "bench".into(),
        id: "h1".into(),
    };
    let progs: [(&str, &[&str]); 10] = [
        ("/usr/bin/bash", &["bash", "-c", "make -j2 all"]),
        ("/usr/bin/git", &["git", "status", "--porcelain"]),
        ("/usr/bin/cc", &["cc", "-O2", "-c", "x.c", "-o", "x.o"]),
        (
            "/home/alice/.cargo/bin/cargo",
            &["cargo", "build", "--release"],
        ),
        ("/usr/bin/python3.12", &["python3", "-m", "pytest", "-q"]),
        ("/usr/bin/ls", &["ls", "-la"]),
        ("/usr/bin/grep", &["grep", "-rn", "TODO", "src"]),
        (
            "/usr/bin/curl",
            &["curl", "-s", "https://example.invalid/api"],
        ),
        ("/usr/bin/make", &["make", "-j2"]),
        ("/usr/bin/node", &["node", "server.js"]),
    ];
    let mut out = Vec::with_capacity(n);
    let mut t = 1_795_714_204_000_000_000i64;
    // A fixed session: sshd -> bash; every synthetic process is a child or grandchild.
    let sshd = proc(100, 1, "/usr/sbin/sshd", &["sshd: alice@pts/0"]);
    let bash = proc(101, 100, "/usr/bin/bash", &["-bash"]);
    for p in [&sshd, &bash] {
        let mut e = Event::new(Timestamp(t), Kind::ProcessExec, host.clone(), p.clone());
        e.exec = Some(Exec {
            filename: p.exe.clone(),
            ..Default::default()
        });
        out.push(e);
    }
    let mut pid = 1000u32;
    let mut i = 0usize;
    while out.len() < n {
        i += 1;
        t += 10_000;
        let (exe, argv) = progs[i % progs.len()];
        // Realistic depth: chains of up to 4 below the login shell, then back to it.
        let parent = if i.is_multiple_of(4) {
            101
        } else {
            pid.max(101)
        };
        pid += 1;
        let p = proc(pid, parent, exe, argv);
        out.push(Event::new(
            Timestamp(t),
            Kind::ProcessFork,
            host.clone(),
            p.clone(),
        ));
        let mut e = Event::new(Timestamp(t + 1), Kind::ProcessExec, host.clone(), p.clone());
        e.exec = Some(Exec {
            filename: exe.into(),
            ..Default::default()
        });
        out.push(e);
        for k in 0..4 {
            let mut e = Event::new(
                Timestamp(t + 2 + k),
                Kind::FileOpen,
                host.clone(),
                p.clone(),
            );
            let path = match k {
                0 => format!("/home/alice/src/target/obj{i}.o"),
                1 if exe.ends_with("/cc") => format!("/tmp/cc{i}.s"),
                1 => format!("/home/alice/src/build/{i}.d"),
                2 => "/home/alice/.cache/pip/http/x".to_string(),
                _ => "/etc/ld.so.cache".to_string(),
            };
            e.file = Some(File {
                path,
                write: k != 3,
                flags: Some(577),
                ..Default::default()
            });
            out.push(e);
        }
        if i.is_multiple_of(2) && !exe.ends_with("bash") {
            let mut e = Event::new(Timestamp(t + 8), Kind::NetConnect, host.clone(), p.clone());
            e.network = Some(Network {
                protocol: "tcp".into(),
                family: "ipv4".into(),
                local: Endpoint {
                    ip: "10.0.0.5".into(),
                    port: (40000 + i % 20000) as u16,
                },
                remote: Endpoint {
                    ip: "93.184.216.34".into(),
                    port: 443,
                },
                in_progress: false,
            });
            out.push(e);
        }
        if i.is_multiple_of(5) {
            let mut e = Event::new(Timestamp(t + 9), Kind::FileRename, host.clone(), p.clone());
            e.file = Some(File {
                path: format!("/home/alice/src/.f{i}.tmp"),
                new_path: Some(format!("/home/alice/src/f{i}")),
                ..Default::default()
            });
            out.push(e);
        }
        let mut e = Event::new(Timestamp(t + 10), Kind::ProcessExit, host.clone(), p);
        e.exit = Some(Exit {
            code: Some(0),
            signal: None,
            core_dumped: false,
        });
        out.push(e);
    }
    out.truncate(n);
    out
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let t0 = Instant::now();
    let rules = Ruleset::load(&[dir])?;
    println!(
        "loaded {} rules in {:.1} ms",
        rules.rules().len(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    let events = synth(n);
    let mut lineage = MemoryLineage::new();
    for e in &events {
        lineage.observe(e);
    }
    // 1. Pure rule evaluation (lineage prebuilt): events/s on one core.
    let start = Instant::now();
    let mut flags = 0usize;
    let mut by_rule: std::collections::BTreeMap<String, usize> = Default::default();
    for e in &events {
        for f in rules.evaluate(e, &lineage) {
            flags += 1;
            *by_rule.entry(f.rule_id).or_default() += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "evaluate: {n} events in {secs:.3} s = {:.0} events/s/core ({flags} flags)",
        n as f64 / secs
    );
    if !by_rule.is_empty() {
        println!("  flags by rule on the synthetic mix: {by_rule:?}");
    }
    // Per kind.
    for kind in [
        Kind::ProcessExec,
        Kind::FileOpen,
        Kind::NetConnect,
        Kind::ProcessFork,
    ] {
        let sub: Vec<&Event> = events.iter().filter(|e| e.kind == kind).collect();
        let s = Instant::now();
        for e in &sub {
            let _ = rules.evaluate(e, &lineage);
        }
        let d = s.elapsed().as_secs_f64();
        println!(
            "  {kind}: {} rules, {:.1} us/event",
            rules.rules_for(kind).count(),
            d * 1e6 / sub.len().max(1) as f64
        );
    }
    let slow = rules.profile(&events[..events.len().min(20_000)], &lineage);
    println!("  slowest rules (CEL time summed over the first 20k events):");
    for (id, c) in slow.iter().take(8) {
        println!("    {id}: {:.2} s total", c);
    }
    // 2. Full pipeline per event (lineage update + evaluate + incidents): service times.
    let mut lineage = MemoryLineage::new();
    let mut inc = IncidentEngine::new(IncidentConfig::default());
    let mut service = Vec::with_capacity(n);
    for e in &events {
        let s = Instant::now();
        lineage.observe(e);
        inc.observe(e, &lineage);
        let f = rules.evaluate(e, &lineage);
        if !f.is_empty() {
            let _ = inc.add_flags(&f, &lineage);
        }
        service.push(s.elapsed().as_secs_f64());
    }
    let total: f64 = service.iter().sum();
    println!("pipeline: {:.0} events/s/core", n as f64 / total);
    for rate in [10_000.0, 100_000.0] {
        // Single-server FIFO queue: arrival i at i/rate; latency = finish - arrival.
        let mut free_at = 0.0f64;
        let mut lat: Vec<f64> = service
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let arrival = i as f64 / rate;
                let begin = free_at.max(arrival);
                free_at = begin + s;
                free_at - arrival
            })
            .collect();
        lat.sort_by(f64::total_cmp);
        println!(
            "  at {:>6} events/s: latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (one detection thread)",
            rate,
            pct(&lat, 0.5) * 1e3,
            pct(&lat, 0.99) * 1e3,
            lat.last().copied().unwrap_or(0.0) * 1e3
        );
    }
    Ok(())
}
