//! Graph + store benchmark on a synthetic workload.
//!
//! `cargo run --release -p causeway-store --example store_bench -- [EVENTS] [--persist] [--unreduced]`
//!
//! Workload: 4 hosts; 40 long-lived daemons per host that keep writing their own logs,
//! reading their configs and connecting to a database daemon on another host (mirrored
//! connect/accept pairs); a process tree grown by preferential attachment (power-law fan-out)
//! whose members exec, write new and old files, read, rename and exit; pids wrap at 32768 so
//! they are reused. Halfway through, an attack chain is injected: a login shell on host 0 runs
//! curl, which connects to a web server on host 1; the server's child writes `/tmp/.x`,
//! chmods it, and a cron child executes it. The backward trace from that exec must reach the
//! login shell on host 0 (the known answer).
//!
//! Measured: ingest events/s on one core (graph only; and graph + SQLite when `--persist`),
//! excluding event generation; graph heap bytes/event; on-disk bytes/event; reduction factor
//! (edge occurrences / stored edges); p50/p99 latency of backward traces from 1000 random
//! process images.

use causeway_graph::{Graph, GraphConfig, TraceQuery};
use causeway_model::timefmt::Timestamp;
use causeway_model::*;
use causeway_store::{Pipeline, SqliteOptions, SqliteStore, Store};
use std::time::{Duration, Instant};

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const HOSTS: usize = 4;
const DAEMONS: usize = 40;
const STEP_NS: i64 = 100_000;

struct Gen {
    rng: Rng,
    t: i64,
    hosts: Vec<Host>,
    procs: Vec<Vec<Process>>,
    next_pid: Vec<u32>,
    ticks: u64,
    port: u16,
    attack_at: u64,
    emitted: u64,
    pub attack_id: String,
}

impl Gen {
    fn new(total: u64) -> Self {
        let hosts: Vec<Host> = (0..HOSTS)
            .map(|i| Host {
                name: format!("host{i}"),
                id: format!("{i:032x}"),
            })
            .collect();
        Gen {
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            t: 1_790_000_000_000_000_000,
            hosts,
            procs: vec![Vec::new(); HOSTS],
            next_pid: vec![300; HOSTS],
            ticks: 1000,
            port: 32768,
            attack_at: total / 2,
            emitted: 0,
            attack_id: String::new(),
        }
    }

    fn new_proc(
        &mut self,
        h: usize,
        parent: Option<&Process>,
        exe: &str,
        argv: Vec<String>,
    ) -> Process {
        let pid = self.next_pid[h];
        self.next_pid[h] = if pid >= 32767 { 300 } else { pid + 1 };
        self.ticks += 1;
        Process {
            id: format!("p-{:016x}-{pid}-{}", h + 1, self.ticks),
            pid,
            ppid: parent.map(|p| p.pid).unwrap_or(1),
            parent_id: parent.map(|p| p.id.clone()).unwrap_or_default(),
            exe: exe.into(),
            argv,
            cwd: "/".into(),
            uid: 0,
            ..Default::default()
        }
    }

    fn ev(&mut self, kind: Kind, h: usize, p: &Process) -> Event {
        self.t += STEP_NS;
        self.emitted += 1;
        Event::new(Timestamp(self.t), kind, self.hosts[h].clone(), p.clone())
    }

    fn exec_ev(&mut self, h: usize, p: &Process) -> Event {
        let mut e = self.ev(Kind::ProcessExec, h, p);
        e.exec = Some(Exec {
            filename: p.exe.clone(),
            ..Default::default()
        });
        e
    }

    fn file_ev(&mut self, kind: Kind, h: usize, p: &Process, path: String, write: bool) -> Event {
        let mut e = self.ev(kind, h, p);
        e.file = Some(File {
            path,
            write,
            ..Default::default()
        });
        e
    }

    fn flow(
        &mut self,
        out: &mut Vec<Event>,
        ch: usize,
        c: &Process,
        sh: usize,
        s: &Process,
        sport: u16,
    ) {
        self.port = if self.port >= 60999 {
            32768
        } else {
            self.port + 1
        };
        let cip = format!("10.0.0.{}", ch + 1);
        let sip = format!("10.0.0.{}", sh + 1);
        let mk = |ip: &str, port: u16| Endpoint {
            ip: ip.into(),
            port,
        };
        let mut e = self.ev(Kind::NetConnect, ch, c);
        e.network = Some(Network {
            protocol: "tcp".into(),
            family: "ipv4".into(),
            local: mk(&cip, self.port),
            remote: mk(&sip, sport),
            in_progress: false,
        });
        out.push(e);
        let mut e = self.ev(Kind::NetAccept, sh, s);
        e.network = Some(Network {
            protocol: "tcp".into(),
            family: "ipv4".into(),
            local: mk(&sip, sport),
            remote: mk(&cip, self.port),
            in_progress: false,
        });
        out.push(e);
    }

    fn setup(&mut self, out: &mut Vec<Event>) {
        for h in 0..HOSTS {
            for d in 0..DAEMONS {
                let p = self.new_proc(
                    h,
                    None,
                    &format!("/usr/sbin/daemon{d}"),
                    vec![format!("daemon{d}"), "-f".into()],
                );
                out.push(self.exec_ev(h, &p));
                self.procs[h].push(p);
            }
        }
    }

    fn attack(&mut self, out: &mut Vec<Event>) {
        let sshd = self.procs[0][0].clone();
        let mut sh = self.new_proc(0, Some(&sshd), "/usr/bin/bash", vec!["-bash".into()]);
        sh.tty = Some("pts/7".into());
        out.push(self.exec_ev(0, &sh));
        let mut curl = self.new_proc(
            0,
            Some(&sh),
            "/usr/bin/curl",
            vec!["curl".into(), "http://10.0.0.2/x".into()],
        );
        curl.tty = sh.tty.clone();
        out.push(self.exec_ev(0, &curl));
        let web = self.procs[1][1].clone();
        self.flow(out, 0, &curl, 1, &web, 80);
        let child = self.new_proc(
            1,
            Some(&web),
            "/bin/sh",
            vec!["sh".into(), "-c".into(), "dl".into()],
        );
        out.push(self.exec_ev(1, &child));
        out.push(self.file_ev(Kind::FileOpen, 1, &child, "/tmp/.x".into(), true));
        out.push(self.file_ev(Kind::FileChmod, 1, &child, "/tmp/.x".into(), false));
        let cron = self.procs[1][2].clone();
        let x = self.new_proc(1, Some(&cron), "/tmp/.x", vec!["/tmp/.x".into()]);
        out.push(self.exec_ev(1, &x));
        self.attack_id = x.id;
    }

    /// Append about `n` events.
    fn chunk(&mut self, n: usize, out: &mut Vec<Event>) {
        if self.emitted == 0 {
            self.setup(out);
        }
        while out.len() < n {
            if self.attack_id.is_empty() && self.emitted >= self.attack_at {
                self.attack(out);
                continue;
            }
            let h = self.rng.below(HOSTS);
            let r = self.rng.unit();
            let len = self.procs[h].len();
            if r < 0.45 {
                // A daemon's routine: log writes, config reads, db connections.
                let d = self.rng.below(DAEMONS);
                let p = self.procs[h][d].clone();
                let r2 = self.rng.unit();
                if r2 < 0.7 {
                    out.push(self.file_ev(
                        Kind::FileOpen,
                        h,
                        &p,
                        format!("/var/log/daemon{d}.log"),
                        true,
                    ));
                } else if r2 < 0.85 {
                    out.push(self.file_ev(
                        Kind::FileOpen,
                        h,
                        &p,
                        format!("/etc/daemon{d}.conf"),
                        false,
                    ));
                } else {
                    let sh = (h + 1) % HOSTS;
                    let db = self.procs[sh][3].clone();
                    self.flow(out, h, &p, sh, &db, 5432);
                }
            } else if r < 0.52 && len < 20_000 {
                // fork + exec, parent by preferential attachment (u^3 favours old processes).
                let i = ((len as f64) * self.rng.unit().powi(3)) as usize;
                let parent = self.procs[h][i.min(len - 1)].clone();
                let tool = self.rng.below(50);
                let mut c = self.new_proc(h, Some(&parent), &parent.exe, parent.argv.clone());
                let e = self.ev(Kind::ProcessFork, h, &c);
                out.push(e);
                c.exe = format!("/usr/bin/tool{tool}");
                c.argv = vec![
                    format!("tool{tool}"),
                    format!("--job={}", self.rng.below(1000)),
                ];
                out.push(self.exec_ev(h, &c));
                self.procs[h].push(c);
            } else if r < 0.54 && len > DAEMONS + 10 {
                // exit of a non-daemon
                let i = DAEMONS + self.rng.below(len - DAEMONS);
                let p = self.procs[h].swap_remove(i);
                let mut e = self.ev(Kind::ProcessExit, h, &p);
                e.exit = Some(Exit {
                    code: Some(0),
                    signal: None,
                    core_dumped: false,
                });
                out.push(e);
            } else {
                // a worker touches files: its own outputs repeatedly, shared inputs, new temps
                let i = self.rng.below(len);
                let p = self.procs[h][i].clone();
                let r2 = self.rng.unit();
                let e = if r2 < 0.5 {
                    self.file_ev(
                        Kind::FileOpen,
                        h,
                        &p,
                        format!("/srv/out/{}.dat", p.pid),
                        true,
                    )
                } else if r2 < 0.8 {
                    let k = self.rng.below(200);
                    self.file_ev(Kind::FileOpen, h, &p, format!("/srv/in/{k}.csv"), false)
                } else if r2 < 0.95 {
                    let k = self.rng.next() % 1_000_000;
                    self.file_ev(Kind::FileOpen, h, &p, format!("/tmp/job-{k}"), true)
                } else {
                    let k = self.rng.next() % 1_000_000;
                    let mut e =
                        self.file_ev(Kind::FileRename, h, &p, format!("/tmp/job-{k}"), false);
                    if let Some(f) = e.file.as_mut() {
                        f.new_path = Some(format!("/srv/done/{k}"));
                    }
                    e
                };
                out.push(e);
            }
        }
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

fn trace_latency(g: &Graph, attack: &str) -> (Duration, Duration, usize, bool) {
    let ids: Vec<String> = g.process_ids().map(String::from).collect();
    let mut rng = Rng(42);
    let mut times = Vec::new();
    let mut walks = Vec::new();
    let mut sizes = 0;
    let q = TraceQuery::backward();
    for _ in 0..1000 {
        let id = &ids[rng.below(ids.len())];
        let t0 = Instant::now();
        let imgs = g.images_of(id);
        let w = g.walk(&imgs[imgs.len() - 1..], &q);
        walks.push(t0.elapsed());
        let t = g.render(&w);
        times.push(t0.elapsed());
        sizes += t.nodes.len();
    }
    println!(
        "  walk only (ids, no rendering): p50 {:?}, p99 {:?}",
        percentile(&mut walks, 0.5),
        percentile(&mut walks, 0.99)
    );
    // The known answer: the payload's backward trace reaches the login shell and curl on host0.
    let ok = g
        .trace_process(attack, &q)
        .map(|t| {
            let has = |s: &str| {
                t.nodes
                    .iter()
                    .any(|n| n.label.starts_with(s) && n.id.contains("-0000000000000001-"))
            };
            has("-bash") && has("curl")
        })
        .unwrap_or(false);
    let p50 = percentile(&mut times, 0.5);
    let p99 = percentile(&mut times, 0.99);
    (p50, p99, sizes / 1000, ok)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let total: u64 = args
        .iter()
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let persist = args.iter().any(|a| a == "--persist");
    let reduce = !args.iter().any(|a| a == "--unreduced");
    let cfg = GraphConfig {
        reduce,
        ..GraphConfig::default()
    };
    let mut gen = Gen::new(total);
    let rss0 = rss_bytes();
    let mut spent = Duration::ZERO;
    let mut n = 0u64;
    let mut chunk = Vec::with_capacity(100_000);
    println!("events: {total}, persisted: {persist}, reduction: {reduce}");
    if persist {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(dir.path(), &SqliteOptions::default())?;
        let mut p = Pipeline::open(store, cfg)?;
        p.set_batch_size(50_000);
        while n < total {
            chunk.clear();
            gen.chunk(100_000.min((total - n) as usize), &mut chunk);
            n += chunk.len() as u64;
            let t0 = Instant::now();
            for e in chunk.drain(..) {
                p.ingest(e)?;
            }
            spent += t0.elapsed();
        }
        let t0 = Instant::now();
        p.flush()?;
        spent += t0.elapsed();
        let st = p.store().stats()?;
        let file = std::fs::metadata(p.store().path())?.len();
        let wal = std::fs::metadata(p.store().path().with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        println!(
            "persisted ingest: {:.0} events/s (graph + SQLite, one thread), {n} events in {:.2}s",
            n as f64 / spent.as_secs_f64(),
            spent.as_secs_f64()
        );
        println!(
            "on disk: {} rows for {} events (row fold factor {:.2}), used pages {} B = {:.1} B/event, db file {} B + wal {} B",
            st.rows,
            st.events,
            st.events as f64 / st.rows.max(1) as f64,
            st.bytes,
            st.bytes as f64 / n as f64,
            file,
            wal
        );
        let gs = p.graph().stats();
        println!(
            "graph: {} nodes, {} edges for {} occurrences (reduction factor {:.2})",
            gs.nodes,
            gs.runs,
            gs.occurrences,
            gs.occurrences as f64 / gs.runs.max(1) as f64
        );
        // Restart: rebuild the graph from the store.
        let t0 = Instant::now();
        let store = SqliteStore::open(dir.path(), &SqliteOptions::default())?;
        let p2 = Pipeline::open(store, GraphConfig::default())?;
        println!(
            "reopen + rebuild graph from store: {:.2}s ({} events replayed)",
            t0.elapsed().as_secs_f64(),
            p2.graph().stats().events
        );
        let (p50, p99, avg, ok) = trace_latency(p2.graph(), &gen.attack_id);
        println!("backward trace after restart: p50 {p50:?}, p99 {p99:?}, mean {avg} nodes; attack chain found: {ok}");
        return Ok(());
    }
    let mut g = Graph::new(cfg);
    while n < total {
        chunk.clear();
        gen.chunk(100_000.min((total - n) as usize), &mut chunk);
        n += chunk.len() as u64;
        let t0 = Instant::now();
        for e in &chunk {
            g.apply(e);
        }
        spent += t0.elapsed();
    }
    drop(chunk);
    let gs = g.stats();
    println!(
        "in-memory ingest: {:.0} events/s (one thread, events pre-parsed, in time order), {n} events in {:.2}s",
        n as f64 / spent.as_secs_f64(),
        spent.as_secs_f64()
    );
    println!(
        "graph: {} nodes ({} process images, {} files, {} flows), {} edges for {} occurrences: reduction factor {:.2}",
        gs.nodes,
        gs.processes,
        gs.files,
        gs.flows,
        gs.runs,
        gs.occurrences,
        gs.occurrences as f64 / gs.runs.max(1) as f64
    );
    println!(
        "memory: graph heap estimate {:.1} B/event, RSS growth {:.1} B/event",
        gs.heap_bytes as f64 / n as f64,
        rss_bytes().saturating_sub(rss0) as f64 / n as f64
    );
    let (p50, p99, avg, ok) = trace_latency(&g, &gen.attack_id);
    println!("backward trace (walk + render to Trace, max 2000 nodes): p50 {p50:?}, p99 {p99:?}, mean {avg} nodes; attack chain found: {ok}");
    Ok(())
}
