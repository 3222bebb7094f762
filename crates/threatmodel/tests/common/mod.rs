//! The synthetic topology the tests share: a frontend (host executable tree, listening on
//! all interfaces, reached by an internet client) calls an API service (systemd unit) that
//! calls a datastore in a container on a loopback port and reads a planted credential file.
#![allow(dead_code)]

use causeway_index::ProcessIndex;
use causeway_model::timefmt::Timestamp;
use causeway_model::*;
use causeway_threatmodel::{ModelBuilder, ThreatModel};
use std::sync::Arc;

pub const REDIS_CONTAINER: &str =
    "4f2a9c0d1e3b5a7c9e1f3a5b7c9d1e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d";

pub struct Topo {
    /// Shifts every process id (a new boot) and time, to regenerate "a week later".
    pub boot: &'static str,
    pub t0: i64,
    /// A hostile executable name for the frontend (escaping tests).
    pub frontend_exe: String,
}

impl Default for Topo {
    fn default() -> Self {
        Topo {
            boot: "00000000000000aa",
            t0: 1_795_000_000_000_000_000,
            frontend_exe: "/usr/bin/python3".into(),
        }
    }
}

fn proc(t: &Topo, pid: u32, parent: u32, exe: &str, argv: &[&str]) -> Process {
    Process {
        id: format!("p-{}-{pid}-{}", t.boot, pid * 10),
        pid,
        ppid: parent,
        parent_id: if parent == 0 {
            String::new()
        } else {
            format!("p-{}-{parent}-{}", t.boot, parent * 10)
        },
        exe: exe.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn net(kind: Kind, t: i64, p: &Arc<Process>, local: (&str, u16), remote: (&str, u16)) -> Event {
    let mut e = Event::new(Timestamp(t), kind, host(), Arc::clone(p));
    e.network = Some(Network {
        protocol: "tcp".into(),
        family: "ipv4".into(),
        local: Endpoint {
            ip: local.0.into(),
            port: local.1,
        },
        remote: Endpoint {
            ip: remote.0.into(),
            port: remote.1,
        },
        in_progress: false,
    });
    e
}

pub fn host() -> Host {
    Host {
        name: "node-a".into(),
        id: "m1".into(),
    }
}

pub fn events(t: &Topo) -> Vec<Event> {
    let ms = 1_000_000;
    let init = Arc::new(proc(t, 1, 0, "/sbin/init", &["/sbin/init"]));
    let fe = Arc::new(proc(
        t,
        100,
        1,
        &t.frontend_exe,
        &["python3", "-m", "http.server", "8080"],
    ));
    let worker = Arc::new(proc(
        t,
        101,
        100,
        &t.frontend_exe,
        &["python3", "-m", "http.server", "8080"],
    ));
    let mut api = proc(t, 200, 1, "/usr/local/bin/api", &["api", "--port", "9000"]);
    api.service = Some("api.service".into());
    let api = Arc::new(api);
    let mut redis = proc(t, 300, 1, "/usr/bin/redis-server", &["redis-server"]);
    redis.container = Some(Container {
        id: REDIS_CONTAINER.into(),
        runtime: "docker".into(),
        pod_uid: None,
        cgroup: None,
    });
    let redis = Arc::new(redis);
    let mut ev = Vec::new();
    let mut at = t.t0;
    let mut tick = |d: i64| {
        at += d;
        at
    };
    for p in [&init, &fe, &worker, &api, &redis] {
        let mut e = Event::new(
            Timestamp(tick(ms)),
            Kind::ProcessExec,
            host(),
            Arc::clone(p),
        );
        e.exec = Some(Exec {
            filename: p.exe.clone(),
            ..Default::default()
        });
        ev.push(e);
    }
    ev.push(net(
        Kind::NetListen,
        tick(ms),
        &fe,
        ("0.0.0.0", 8080),
        ("0.0.0.0", 0),
    ));
    ev.push(net(
        Kind::NetListen,
        tick(ms),
        &api,
        ("127.0.0.1", 9000),
        ("0.0.0.0", 0),
    ));
    ev.push(net(
        Kind::NetListen,
        tick(ms),
        &redis,
        ("127.0.0.1", 6379),
        ("0.0.0.0", 0),
    ));
    // An internet client reaches the frontend (no connect half: the client is not ours).
    ev.push(net(
        Kind::NetAccept,
        tick(ms),
        &fe,
        ("10.0.0.5", 8080),
        ("203.0.113.7", 51000),
    ));
    // Twice frontend worker -> api, from two ephemeral ports (one aggregate).
    for eph in [40001, 40002] {
        ev.push(net(
            Kind::NetConnect,
            tick(ms),
            &worker,
            ("127.0.0.1", eph),
            ("127.0.0.1", 9000),
        ));
        ev.push(net(
            Kind::NetAccept,
            tick(ms),
            &api,
            ("127.0.0.1", 9000),
            ("127.0.0.1", eph),
        ));
    }
    ev.push(net(
        Kind::NetConnect,
        tick(ms),
        &api,
        ("127.0.0.1", 40100),
        ("127.0.0.1", 6379),
    ));
    ev.push(net(
        Kind::NetAccept,
        tick(ms),
        &redis,
        ("127.0.0.1", 6379),
        ("127.0.0.1", 40100),
    ));
    let mut read = Event::new(
        Timestamp(tick(ms)),
        Kind::FileOpen,
        host(),
        Arc::clone(&api),
    );
    read.file = Some(File {
        path: "/root/.aws/credentials".into(),
        sensitive: true,
        ..Default::default()
    });
    ev.push(read);
    ev
}

/// Replay through a fresh index and builder, the index first (as the node does).
pub fn build(evs: &[Event]) -> ThreatModel {
    let mut index = ProcessIndex::new();
    let mut b = ModelBuilder::default();
    for e in evs {
        index.observe(e);
        b.observe(&index, e);
    }
    b.finish(&index)
}
