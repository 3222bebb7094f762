//! Event builders shared by the graph tests.
#![allow(dead_code)]

use causeway_model::timefmt::Timestamp;
use causeway_model::*;

pub fn host(name: &str) -> Host {
    Host {
        name: name.into(),
        id: format!("{name}-id"),
    }
}

pub fn proc_(id: &str, pid: u32, parent: &str, exe: &str) -> Process {
    Process {
        id: id.into(),
        pid,
        ppid: 1,
        parent_id: parent.into(),
        exe: exe.into(),
        argv: vec![exe.rsplit('/').next().unwrap_or(exe).into()],
        ..Default::default()
    }
}

pub fn ev(t: i64, kind: Kind, h: &Host, p: &Process) -> Event {
    Event::new(Timestamp(t), kind, h.clone(), p.clone())
}

pub fn exec(t: i64, h: &Host, p: &Process) -> Event {
    let mut e = ev(t, Kind::ProcessExec, h, p);
    e.exec = Some(Exec {
        filename: p.exe.clone(),
        ..Default::default()
    });
    e
}

pub fn file(t: i64, h: &Host, p: &Process, path: &str, write: bool) -> Event {
    let mut e = ev(t, Kind::FileOpen, h, p);
    e.file = Some(File {
        path: path.into(),
        write,
        ..Default::default()
    });
    e
}

pub fn rename(t: i64, h: &Host, p: &Process, from: &str, to: &str) -> Event {
    let mut e = ev(t, Kind::FileRename, h, p);
    e.file = Some(File {
        path: from.into(),
        new_path: Some(to.into()),
        ..Default::default()
    });
    e
}

pub fn net(
    t: i64,
    kind: Kind,
    h: &Host,
    p: &Process,
    local: (&str, u16),
    remote: (&str, u16),
) -> Event {
    let mut e = ev(t, kind, h, p);
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

pub fn ptrace(t: i64, h: &Host, p: &Process, target: &Process) -> Event {
    let mut e = ev(t, Kind::ProcessPtrace, h, p);
    e.target = Some(Target {
        pid: target.pid,
        id: target.id.clone(),
        request: "PTRACE_ATTACH".into(),
    });
    e
}
