//! Rule evaluation throughput with the full shipped ruleset, with the prefilter and without
//! it (every rule of the kind through CEL), per event kind, over two mixes: a synthetic
//! one (mostly file writes, some execs, connects and sensitive reads) and the recorded
//! fixture events of the repository replicated; then event -> incident latency at fixed
//! arrival rates (single-server queue model fed with the measured per-event service
//! times, so no sleeping).
//!
//! Run: `cargo run --release -p causeway-rules --example bench [N_EVENTS]`; with
//! `BENCH_PROFILE=before|after` only one path over the synthetic mix runs, once, for
//! stable instruction counts under `valgrind --tool=callgrind`.

use causeway_model::timefmt::Timestamp;
use causeway_model::*;
use causeway_rules::testcase::read_events;
use causeway_rules::{
    EvalStats, Flag, IncidentConfig, IncidentEngine, Lineage, ProcessIndex, Ruleset,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
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
    let git = proc(102, 101, "/usr/bin/git", &["git", "fetch"]);
    let aws = proc(103, 101, "/usr/local/bin/aws", &["aws", "s3", "ls"]);
    for p in [&sshd, &bash, &git, &aws] {
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
        // Sensitive reads the agent reports, mostly by their owners (sshd reading shadow,
        // git a key, the cloud CLI its credentials), 1 in 12 by something else.
        if i.is_multiple_of(3) {
            let (reader, path) = match i % 12 {
                0 => (&sshd, "/etc/shadow"),
                3 => (&git, "/home/alice/.ssh/id_ed25519"),
                6 => (&aws, "/home/alice/.aws/credentials"),
                _ => (&p, "/home/alice/.aws/credentials"),
            };
            let mut e = Event::new(
                Timestamp(t + 7),
                Kind::FileOpen,
                host.clone(),
                reader.clone(),
            );
            e.file = Some(File {
                path: path.into(),
                sensitive: true,
                flags: Some(0),
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

type Eval = fn(&Ruleset, &Event, &dyn Lineage) -> Vec<Flag>;

fn with_prefilter(r: &Ruleset, e: &Event, l: &dyn Lineage) -> Vec<Flag> {
    r.evaluate(e, l)
}

fn without_prefilter(r: &Ruleset, e: &Event, l: &dyn Lineage) -> Vec<Flag> {
    r.evaluate_unfiltered(e, l)
}

/// Events/s over `events` (best of `rounds`) and per-kind microseconds per event.
fn measure(
    rules: &Ruleset,
    events: &[Event],
    lineage: &dyn Lineage,
    eval: Eval,
    rounds: usize,
) -> (f64, usize, BTreeMap<Kind, (usize, f64)>) {
    let mut best = f64::MAX;
    let mut flags = 0;
    let mut per_kind: BTreeMap<Kind, (usize, f64)> = BTreeMap::new();
    for _ in 0..rounds {
        let mut kinds: BTreeMap<Kind, (usize, f64)> = BTreeMap::new();
        let start = Instant::now();
        flags = 0;
        for e in events {
            let s = Instant::now();
            flags += eval(rules, e, lineage).len();
            let k = kinds.entry(e.kind).or_default();
            k.0 += 1;
            k.1 += s.elapsed().as_secs_f64();
        }
        let secs = start.elapsed().as_secs_f64();
        if secs < best {
            best = secs;
            per_kind = kinds;
        }
    }
    (events.len() as f64 / best, flags, per_kind)
}

fn compare(name: &str, rules: &Ruleset, events: &[Event], lineage: &dyn Lineage) {
    // BENCH_PROFILE=after|before: one path only, once (for callgrind's instruction counts).
    match std::env::var("BENCH_PROFILE").as_deref() {
        Ok("before") => {
            let (r, f, _) = measure(rules, events, lineage, without_prefilter, 1);
            println!("{name}: without prefilter {r:.0} events/s/core ({f} flags)");
            return;
        }
        Ok(_) => {
            let (r, f, _) = measure(rules, events, lineage, with_prefilter, 1);
            println!("{name}: with prefilter {r:.0} events/s/core ({f} flags)");
            return;
        }
        Err(_) => {}
    }
    let (after, fa, ka) = measure(rules, events, lineage, with_prefilter, 3);
    let (before, fb, kb) = measure(rules, events, lineage, without_prefilter, 1);
    println!(
        "{name}: {} events; without prefilter {before:.0} events/s/core, with {after:.0} events/s/core (x{:.1}); flags {fb} / {fa}",
        events.len(),
        after / before
    );
    assert_eq!(fa, fb, "the prefilter changed the number of flags");
    for (k, (n, ta)) in &ka {
        let tb = kb.get(k).map_or(0.0, |x| x.1);
        println!(
            "  {:<22} {:>7} events ({:>4.1}%)  {:>3} rules  before {:>7.2} us/event  after {:>6.2} us/event",
            k.as_str(),
            n,
            *n as f64 * 100.0 / events.len() as f64,
            rules.rules_for(*k).count(),
            tb * 1e6 / *n as f64,
            ta * 1e6 / *n as f64
        );
    }
}

/// Every recorded JSON-lines fixture of the repository, in file order.
fn fixtures() -> Result<Vec<Event>, Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in [
        "crates/server/fixtures",
        "crates/rules/tests/fixtures",
        "crates/graph/tests/fixtures",
        "crates/policy/tests/fixtures",
    ] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for f in rd.flatten() {
            if f.path().extension().is_some_and(|x| x == "jsonl") {
                files.push(f.path());
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        out.extend(read_events(&f)?);
    }
    Ok(out)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let t0 = Instant::now();
    let rules = Ruleset::load(&[dir])?;
    let cov = rules.prefilter_coverage();
    println!(
        "loaded {} rules in {:.1} ms; prefilter: {} rules guarded ({} indexed by literal keys or patterns), {} always run CEL",
        rules.rules().len(),
        t0.elapsed().as_secs_f64() * 1e3,
        cov.guarded,
        cov.keyed,
        cov.rules - cov.guarded
    );
    let events = synth(n);
    let mut lineage = ProcessIndex::new();
    for e in &events {
        lineage.observe(e);
    }
    // 1. Pure rule evaluation (lineage prebuilt): events/s on one core.
    compare("synthetic mix", &rules, &events, &lineage);
    if std::env::var_os("BENCH_PROFILE").is_some() {
        return Ok(());
    }
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        for f in rules.evaluate(e, &lineage) {
            *by_rule.entry(f.rule_id).or_default() += 1;
        }
    }
    if !by_rule.is_empty() {
        println!("  flags by rule on the synthetic mix: {by_rule:?}");
    }
    let stats = EvalStats::default();
    let mut all_rules = 0usize;
    for e in &events {
        let _ = rules.evaluate_with_stats(e, &lineage, Some(&stats));
        all_rules += rules.rules_for(e.kind).count();
    }
    println!(
        "  CEL conditions run: {:.4} per event (without the prefilter: {:.2} per event)",
        stats.evaluations.load(Ordering::Relaxed) as f64 / events.len() as f64,
        all_rules as f64 / events.len() as f64
    );
    let mut passes: BTreeMap<(Kind, String), usize> = BTreeMap::new();
    for e in &events {
        for r in rules.prefilter_passes(e, &lineage) {
            *passes.entry((e.kind, r.id.clone())).or_default() += 1;
        }
    }
    let mut passes: Vec<_> = passes.into_iter().collect();
    passes.sort_by_key(|p| std::cmp::Reverse(p.1));
    println!("  rules whose guard let CEL run most often on the synthetic mix:");
    for ((k, id), c) in passes.iter().take(12) {
        println!("    {id} on {k}: {c}");
    }
    let recorded = fixtures()?;
    let mut rec_lineage = ProcessIndex::new();
    for e in &recorded {
        rec_lineage.observe(e);
    }
    let mut replicated = Vec::with_capacity(n);
    while replicated.len() < n && !recorded.is_empty() {
        replicated.extend(recorded.iter().take(n - replicated.len()).cloned());
    }
    compare(
        &format!(
            "recorded fixtures ({} distinct, replicated)",
            recorded.len()
        ),
        &rules,
        &replicated,
        &rec_lineage,
    );
    let slow = rules.profile(&events[..events.len().min(20_000)], &lineage);
    println!("  slowest rules (CEL time summed over the first 20k events, all rules run):");
    for (id, c) in slow.iter().take(8) {
        println!("    {id}: {:.3} s total", c);
    }
    // 2. Full pipeline per event (lineage update + evaluate + incidents): service times.
    let mut lineage = ProcessIndex::new();
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
