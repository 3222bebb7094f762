//! Synthetic workloads for benchmarks and load tests: `n` small incidents plus one large one
//! of about `big` nodes (a build-like fan-out of workers with one malicious chain inside).
//! Deterministic, so figures are comparable between runs.

use super::IncidentSpec;
use crate::types::{Flag, Severity};
use causeway_model::timefmt::Timestamp;
use causeway_model::{Endpoint, Event, Exec, File, Host, Kind, Network, Process};

const BASE: i64 = 1_795_714_200_000_000_000;
const MS: i64 = 1_000_000;

struct Gen {
    events: Vec<Event>,
}

impl Gen {
    fn process(
        &self,
        host: &Host,
        pid: u32,
        parent: Option<&Process>,
        exe: &str,
        t: i64,
    ) -> Process {
        Process {
            id: format!("p-{}-{pid}-{}", &host.id[..16], t / 10_000_000),
            pid,
            ppid: parent.map_or(1, |p| p.pid),
            parent_id: parent.map(|p| p.id.clone()).unwrap_or_default(),
            exe: exe.to_string(),
            argv: vec![
                exe.rsplit('/').next().unwrap_or(exe).to_string(),
                format!("--n={pid}"),
            ],
            cwd: "/srv".into(),
            uid: 1000,
            euid: 1000,
            gid: 1000,
            egid: 1000,
            start_time: Some(Timestamp(t)),
            ..Default::default()
        }
    }

    fn exec(&mut self, host: &Host, p: &Process, t: i64) {
        let mut e = Event::new(Timestamp(t), Kind::ProcessExec, host.clone(), p.clone());
        e.exec = Some(Exec {
            filename: p.exe.clone(),
            ..Default::default()
        });
        self.events.push(e);
    }

    fn file(&mut self, host: &Host, p: &Process, t: i64, path: &str, write: bool) {
        let mut e = Event::new(Timestamp(t), Kind::FileOpen, host.clone(), p.clone());
        e.file = Some(File {
            path: path.into(),
            write,
            sensitive: !write,
            ..Default::default()
        });
        self.events.push(e);
    }

    fn connect(&mut self, host: &Host, p: &Process, t: i64, ip: &str, port: u16) {
        let mut e = Event::new(Timestamp(t), Kind::NetConnect, host.clone(), p.clone());
        e.network = Some(Network {
            protocol: "tcp".into(),
            family: "ipv4".into(),
            local: Endpoint {
                ip: "10.1.0.2".into(),
                port: 40000,
            },
            remote: Endpoint {
                ip: ip.into(),
                port,
            },
            in_progress: false,
        });
        self.events.push(e);
    }
}

fn flag(
    rule: &str,
    sev: Severity,
    tech: &str,
    t: i64,
    kind: Kind,
    p: &Process,
    object: &str,
) -> Flag {
    Flag {
        rule_id: rule.into(),
        title: rule.replace('-', " "),
        severity: sev,
        techniques: vec![tech.into()],
        tactic: String::new(),
        time: Timestamp(t),
        kind: kind.as_str().into(),
        host: String::new(),
        process_id: p.id.clone(),
        pid: p.pid,
        exe: p.exe.clone(),
        object: object.into(),
        message: format!("{rule} by {}", p.exe),
    }
}

/// `small` small incidents and, if `big > 0`, one incident (`inc-big`) of about `big` nodes.
pub fn workload(small: usize, big: usize) -> (Vec<Event>, Vec<IncidentSpec>) {
    let mut g = Gen { events: Vec::new() };
    let mut incidents = Vec::new();
    let sevs = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    for i in 0..small {
        let host = Host {
            name: format!("host-{:02}", i % 20),
            id: format!("{:016x}{:04x}", 0x1000 + (i % 20) as u64, i % 20),
        };
        let t = BASE + (i as i64) * 1000 * MS;
        let pid = 10_000 + (i as u32) * 3;
        let sh = g.process(&host, pid, None, "/bin/sh", t);
        g.exec(&host, &sh, t);
        let curl = g.process(&host, pid + 1, Some(&sh), "/usr/bin/curl", t + MS);
        g.exec(&host, &curl, t + MS);
        g.connect(&host, &curl, t + 2 * MS, "198.51.100.7", 443);
        let path = format!("/tmp/drop-{i}");
        g.file(&host, &curl, t + 3 * MS, &path, true);
        let run = g.process(&host, pid + 2, Some(&sh), &path, t + 4 * MS);
        g.exec(&host, &run, t + 4 * MS);
        incidents.push(IncidentSpec {
            id: format!("inc-{i:05}"),
            title: format!("Dropper {i} on {}", host.name),
            score: (i % 100) as f64,
            severity: sevs[i % 4],
            root: Some(sh.id.clone()),
            flags: vec![
                flag(
                    "download-to-tmp",
                    Severity::Medium,
                    "T1105",
                    t + 3 * MS,
                    Kind::FileOpen,
                    &curl,
                    &path,
                ),
                flag(
                    "exec-from-tmp",
                    Severity::High,
                    "T1204.002",
                    t + 4 * MS,
                    Kind::ProcessExec,
                    &run,
                    &path,
                ),
            ],
        });
    }
    if big > 0 {
        let host = Host {
            name: "build-1".into(),
            id: "00000000000b1d01ffff".into(),
        };
        let t0 = BASE - 3_600_000 * MS;
        let root = g.process(&host, 2000, None, "/usr/bin/bash", t0);
        g.exec(&host, &root, t0);
        let workers = 20usize;
        let per = (big / workers).max(2) - 1;
        let exes = ["/usr/bin/cc", "/usr/bin/as", "/usr/bin/ld", "/usr/bin/grep"];
        let mut pid = 3000u32;
        let mut flags = Vec::new();
        for w in 0..workers {
            let tw = t0 + (w as i64 + 1) * 1000 * MS;
            let worker = g.process(&host, pid, Some(&root), "/usr/bin/make", tw);
            pid += 1;
            g.exec(&host, &worker, tw);
            for c in 0..per {
                let tc = tw + (c as i64 + 1) * MS;
                let exe = exes[c % exes.len()];
                let child = g.process(&host, pid, Some(&worker), exe, tc);
                pid += 1;
                g.exec(&host, &child, tc);
                if c % 25 == 0 {
                    g.file(
                        &host,
                        &child,
                        tc + 1,
                        &format!("/srv/build/w{w}/obj{c}.o"),
                        true,
                    );
                }
                if w == 7 && c == 100 {
                    let evil = g.process(&host, pid, Some(&child), "/tmp/.cache/kworker", tc + 2);
                    pid += 1;
                    g.exec(&host, &evil, tc + 2);
                    g.file(&host, &evil, tc + 3, "/etc/shadow", false);
                    g.connect(&host, &evil, tc + 4, "203.0.113.66", 4444);
                    flags.push(flag(
                        "exec-from-tmp",
                        Severity::High,
                        "T1204.002",
                        tc + 2,
                        Kind::ProcessExec,
                        &evil,
                        "/tmp/.cache/kworker",
                    ));
                    flags.push(flag(
                        "shadow-read",
                        Severity::High,
                        "T1003.008",
                        tc + 3,
                        Kind::FileOpen,
                        &evil,
                        "/etc/shadow",
                    ));
                }
            }
        }
        incidents.push(IncidentSpec {
            id: "inc-big".into(),
            title: format!("Build host compromise ({big} nodes)"),
            score: 99.0,
            severity: Severity::Critical,
            root: Some(root.id.clone()),
            flags,
        });
    }
    (g.events, incidents)
}
