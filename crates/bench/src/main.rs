//! `agent-bench`: measures what the agent costs and whether it sees everything.
//!
//! For each workload (exec storm, loopback connect/accept storm, open/write storm) it runs
//! the workload without the agent and with it, interleaved (A B A B …) so drift in the
//! machine hits both sides alike, and reports the median slowdown ratio, completeness
//! (events the agent wrote for the workload's own operations ÷ operations issued), lost
//! counters, agent CPU seconds per million events and peak RSS. An overload run (open storm
//! on a deliberately small ring buffer) checks that losses are counted exactly and memory
//! stays bounded. It needs root; run it in release mode:
//! `cargo run --release -p causeway-bench -- --causeway target/release/causeway`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// The causeway binary to measure.
    #[arg(long, default_value = "target/release/causeway")]
    causeway: PathBuf,
    /// A/B pairs per workload.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
    /// Operations per run of each workload.
    #[arg(long, default_value_t = 4000)]
    execs: usize,
    #[arg(long, default_value_t = 20000)]
    connects: usize,
    #[arg(long, default_value_t = 100000)]
    opens: usize,
    /// Only these workloads (exec, connect, open, overload).
    #[arg(long)]
    only: Vec<String>,
}

struct AgentRun {
    child: Child,
    out: PathBuf,
    /// (user, sys) CPU seconds once the probes were attached: start-up (BPF load, verifier)
    /// is a one-off cost, so it is taken out of the per-event figure.
    cpu_at_ready: (f64, f64),
}

/// (user, sys) CPU seconds of a live process, from /proc/PID/stat.
fn proc_cpu(pid: u32) -> (f64, f64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rfind(')').map(|i| &s[i + 2..]).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / hz;
    (tick(11), tick(12))
}

struct AgentResult {
    user_s: f64,
    sys_s: f64,
    max_rss_kb: i64,
    counters: serde_json::Value,
    out: PathBuf,
}

fn start_agent(bin: &Path, dir: &Path, extra: &[&str]) -> Result<AgentRun> {
    let out = dir.join("events.jsonl");
    let ready = dir.join("ready");
    // A leftover from an earlier run may or may not exist.
    std::fs::remove_file(&ready).ok();
    let child = Command::new(bin)
        .args(["agent", "--no-snapshot", "--output"])
        .arg(&out)
        .arg("--ready-file")
        .arg(&ready)
        .args(extra)
        .env("CAUSEWAY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning the agent")?;
    let t0 = Instant::now();
    while !ready.exists() {
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("agent not ready");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu_at_ready = proc_cpu(child.id());
    Ok(AgentRun {
        child,
        out,
        cpu_at_ready,
    })
}

fn stop_agent(mut a: AgentRun) -> Result<AgentResult> {
    std::thread::sleep(Duration::from_millis(300));
    let (u1, s1) = proc_cpu(a.child.id());
    let pid = a.child.id() as i32;
    // SAFETY: signalling and reaping our own child; rusage is a valid out-parameter.
    let mut status = 0;
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe {
        libc::kill(pid, libc::SIGINT);
        libc::wait4(pid, &mut status, 0, &mut ru);
    }
    let mut err = String::new();
    if let Some(e) = a.child.stderr.as_mut() {
        e.read_to_string(&mut err)?;
    }
    let counters = err
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .context(format!("no counters from agent: {err}"))?;
    Ok(AgentResult {
        user_s: u1 - a.cpu_at_ready.0,
        sys_s: s1 - a.cpu_at_ready.1,
        max_rss_kb: ru.ru_maxrss,
        counters,
        out: a.out,
    })
}

/// Which events of a kind belong to the workload.
#[derive(Clone, Copy)]
enum Own {
    /// Caused by the bench process itself.
    Pid,
    /// Of processes the bench process started.
    Parent,
    /// Of processes whose whole argv is `[/bin/true]` (the enforced storm runs in a shell).
    TrueAlone,
}

/// Occurrences of `kind` in the output that belong to the workload (an event folded by the
/// kernel stands for `repeat.count` of them).
fn count_events(out: &Path, kind: &str, pid: u32, own: Own) -> Result<u64> {
    let f = std::io::BufReader::new(std::fs::File::open(out)?);
    let mut n = 0;
    for line in f.lines() {
        let line = line?;
        if !line.contains(kind) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        let mine = match own {
            Own::Pid => v["process"]["pid"] == pid,
            Own::Parent => v["process"]["ppid"] == pid,
            Own::TrueAlone => v["process"]["argv"] == serde_json::json!(["/bin/true"]),
        };
        if v["kind"] == kind && mine {
            n += v["repeat"]["count"].as_u64().unwrap_or(1);
        }
    }
    Ok(n)
}

fn exec_storm(n: usize) -> Result<()> {
    // Two workers: the machine has two cores.
    let per = n / 2;
    let handles: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || -> Result<()> {
                for _ in 0..per {
                    Command::new("/bin/true").status()?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(())
}

fn connect_storm(n: usize) -> Result<()> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = l.local_addr()?;
    let server = std::thread::spawn(move || -> Result<()> {
        for _ in 0..n {
            let (mut s, _) = l.accept()?;
            s.write_all(b"x")?;
        }
        Ok(())
    });
    for _ in 0..n {
        let mut c = std::net::TcpStream::connect(addr)?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
    }
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server panicked"))??;
    Ok(())
}

/// Opens for writing of 64 files per thread, over and over (what the kernel folds), or with
/// `distinct`, of a new file each time (nothing to fold: the overload run).
fn open_storm(n: usize, dir: &Path, threads: usize, distinct: bool) -> Result<()> {
    let per = n / threads;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dir = dir.to_path_buf();
            std::thread::spawn(move || -> Result<()> {
                for i in 0..per {
                    let name = if distinct {
                        format!("f{t}-{i}")
                    } else {
                        format!("f{t}-{}", i % 64)
                    };
                    let mut f = std::fs::File::create(dir.join(name))?;
                    f.write_all(b"x")?;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

struct Workload<'a> {
    name: &'a str,
    /// Extra `causeway agent` arguments for the B runs.
    agent_args: Vec<String>,
    kind: &'a str,
    own: Own,
    ops: usize,
    run: Box<dyn Fn() -> Result<()> + 'a>,
}

fn bench(args: &Args, w: &Workload<'_>) -> Result<serde_json::Value> {
    let me = std::process::id();
    let mut ratios = Vec::new();
    let (mut base_s, mut agent_s) = (Vec::new(), Vec::new());
    let mut completeness = Vec::new();
    let (mut cpu, mut sys, mut events_total, mut max_rss, mut lost) = (0.0, 0.0, 0u64, 0i64, 0u64);
    // Events written plus occurrences the kernel folded into them.
    let mut occurrences_total = 0u64;
    for _ in 0..args.pairs {
        let t = Instant::now();
        (w.run)()?;
        let a = t.elapsed().as_secs_f64();
        let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
        let extra: Vec<&str> = w.agent_args.iter().map(String::as_str).collect();
        let agent = start_agent(&args.causeway, dir.path(), &extra)?;
        let t = Instant::now();
        (w.run)()?;
        let b = t.elapsed().as_secs_f64();
        let r = stop_agent(agent)?;
        let seen = count_events(&r.out, w.kind, me, w.own)?;
        completeness.push(seen as f64 / w.ops as f64);
        cpu += r.user_s;
        sys += r.sys_s;
        events_total += r.counters["seen_total"].as_u64().unwrap_or(0);
        occurrences_total += r.counters["seen_total"].as_u64().unwrap_or(0)
            + r.counters["folded"]
                .as_object()
                .map(|m| m.values().filter_map(|v| v.as_u64()).sum::<u64>())
                .unwrap_or(0);
        max_rss = max_rss.max(r.max_rss_kb);
        lost += r.counters["lost_total"].as_u64().unwrap_or(0);
        base_s.push(a);
        agent_s.push(b);
        ratios.push(b / a);
    }
    let res = serde_json::json!({
        "workload": w.name,
        "ops_per_run": w.ops,
        "pairs": args.pairs,
        "median_ops_per_s_without_agent": w.ops as f64 / median(&mut base_s.clone()),
        "median_ops_per_s_with_agent": w.ops as f64 / median(&mut agent_s.clone()),
        "median_slowdown_ratio": median(&mut ratios),
        "completeness_min": completeness.iter().copied().fold(f64::INFINITY, f64::min),
        "lost_total": lost,
        "agent_user_cpu_s_per_million_events": cpu / (events_total.max(1) as f64 / 1e6),
        "agent_sys_cpu_s_per_million_events": sys / (events_total.max(1) as f64 / 1e6),
        "agent_user_cpu_s_per_million_occurrences": cpu / (occurrences_total.max(1) as f64 / 1e6),
        "events_seen_total": events_total,
        "occurrences_total": occurrences_total,
        "agent_peak_rss_mb": max_rss as f64 / 1024.0,
    });
    println!("{res}");
    Ok(res)
}

fn overload(args: &Args) -> Result<serde_json::Value> {
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir())?;
    let work = tempfile::tempdir()?;
    let agent = start_agent(
        &args.causeway,
        dir.path(),
        &["--ringbuf-kib", "64", "--bulk-ringbuf-kib", "64"],
    )?;
    let n = args.opens * 4;
    let t = Instant::now();
    open_storm(n, work.path(), 4, true)?;
    let secs = t.elapsed().as_secs_f64();
    let r = stop_agent(agent)?;
    let seen = count_events(&r.out, "file.open", std::process::id(), Own::Pid)?;
    let lost_open = r.counters["lost"]["ringbuf_full:file.open"]
        .as_u64()
        .unwrap_or(0)
        + r.counters["lost"]["bulk_ringbuf_full:file.open"]
            .as_u64()
            .unwrap_or(0);
    let res = serde_json::json!({
        "workload": "overload-open-storm-distinct-files-64KiB-rings",
        "opens_issued": n,
        "opens_per_s": n as f64 / secs,
        "file_open_events_seen_for_workload": seen,
        "file_open_lost_ringbuf_full": lost_open,
        "opens_accounted_seen_plus_lost": seen + lost_open,
        "lost": r.counters["lost"],
        "agent_peak_rss_mb": r.max_rss_kb as f64 / 1024.0,
        "agent_alive_until_stopped": true,
    });
    println!("{res}");
    Ok(res)
}

fn main() -> Result<()> {
    let args = Args::parse();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("agent-bench needs root (it runs the eBPF agent)");
    }
    let work = tempfile::tempdir()?;
    let wp = work.path().to_path_buf();
    let want = |n: &str| args.only.is_empty() || args.only.iter().any(|o| o == n);
    let mut all = Vec::new();
    if want("exec") {
        let n = args.execs;
        all.push(bench(
            &args,
            &Workload {
                name: "exec-storm",
                agent_args: vec![],
                kind: "process.exec",
                own: Own::Parent,
                ops: n,
                run: Box::new(move || exec_storm(n)),
            },
        )?);
    }
    if want("connect") {
        let n = args.connects;
        all.push(bench(
            &args,
            &Workload {
                name: "connect-accept-storm",
                agent_args: vec![],
                kind: "net.connect",
                own: Own::Pid,
                ops: n,
                run: Box::new(move || connect_storm(n)),
            },
        )?);
    }
    if want("open") {
        let n = args.opens;
        let p = wp.clone();
        all.push(bench(
            &args,
            &Workload {
                name: "open-write-storm",
                agent_args: vec![],
                kind: "file.open",
                own: Own::Pid,
                ops: n,
                run: Box::new(move || open_storm(n, &p, 2, false)),
            },
        )?);
    }
    if want("enforce") {
        // The exec storm run by a workload root under an enforced policy of 1,000 allowed
        // executables (/bin/true and 999 others), against the same storm with no agent.
        let root = wp.join("workload-root");
        std::fs::copy("/bin/sh", &root)?;
        let mut agent_args = vec![
            "--enforce-root".to_string(),
            root.to_string_lossy().into_owned(),
        ];
        let mut allowed = vec!["/bin/true".to_string()];
        if let Ok(rd) = std::fs::read_dir("/usr/bin") {
            for e in rd.flatten().take(2000) {
                if allowed.len() >= 1000 {
                    break;
                }
                let p = e.path();
                if p.is_file() && !p.ends_with("true") {
                    allowed.push(p.to_string_lossy().into_owned());
                }
            }
        }
        for a in &allowed {
            agent_args.push("--allow".into());
            agent_args.push(a.clone());
        }
        let n = args.execs;
        let r = root.clone();
        all.push(bench(
            &args,
            &Workload {
                name: "exec-storm-enforced-1000-allowed",
                agent_args,
                kind: "process.exec",
                own: Own::TrueAlone,
                ops: n,
                run: Box::new(move || {
                    let script =
                        format!("i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done");
                    let st = Command::new(&r).arg("-c").arg(script).status()?;
                    anyhow::ensure!(st.success(), "the enforced storm failed: {st}");
                    Ok(())
                }),
            },
        )?);
    }
    if want("overload") {
        all.push(overload(&args)?);
    }
    println!("{}", serde_json::to_string_pretty(&all)?);
    Ok(())
}
