//! The index's contract: ancestry from arrival order, bounds that never evict what is alive
//! or an ancestor of something alive, counted misses, and the flow-pairing window.

use causeway_index::{FlowConfig, IndexConfig, ProcessIndex};
use causeway_model::timefmt::Timestamp;
use causeway_model::{Endpoint, Event, Host, Kind, Lineage, Network, Process};

fn proc(pid: u32, ppid: u32, exe: &str) -> Process {
    Process {
        id: format!("p-1-{pid}-0"),
        pid,
        ppid,
        parent_id: if ppid == 0 {
            String::new()
        } else {
            format!("p-1-{ppid}-0")
        },
        exe: exe.into(),
        argv: vec![exe.into()],
        ..Default::default()
    }
}

fn ev(t: i64, kind: Kind, p: Process) -> Event {
    Event::new(Timestamp(t), kind, Host::default(), p)
}

fn net(t: i64, kind: Kind, p: Process, local: (&str, u16), remote: (&str, u16)) -> Event {
    let mut e = ev(t, kind, p);
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

#[test]
fn ancestry_follows_arrival() {
    let mut ix = ProcessIndex::new();
    ix.observe(&ev(1, Kind::ProcessExec, proc(1, 0, "/sbin/init")));
    ix.observe(&ev(2, Kind::ProcessFork, proc(10, 1, "/sbin/init")));
    ix.observe(&ev(3, Kind::ProcessExec, proc(10, 1, "/usr/sbin/sshd")));
    ix.observe(&ev(4, Kind::ProcessFork, proc(20, 10, "/usr/sbin/sshd")));
    ix.observe(&ev(5, Kind::ProcessExec, proc(20, 10, "/bin/bash")));
    // A later event of the child that still carries the fork-time image does not undo the exec.
    ix.observe(&ev(6, Kind::FileOpen, proc(20, 10, "/usr/sbin/sshd")));
    let anc = ix.ancestors("p-1-20-0", 8);
    let exes: Vec<&str> = anc.iter().map(|p| p.exe.as_str()).collect();
    assert_eq!(exes, ["/usr/sbin/sshd", "/sbin/init"]);
    assert_eq!(
        ix.process("p-1-20-0").map(|p| p.exe.clone()).as_deref(),
        Some("/bin/bash")
    );
    assert_eq!(ix.stats().misses, 0);
    assert!(ix.process("p-1-999-0").is_none());
    assert_eq!(ix.stats().misses, 1);
}

#[test]
fn bounded_but_never_evicts_the_living_or_their_ancestors() {
    let cfg = IndexConfig {
        max_processes: 50,
        ..Default::default()
    };
    let mut ix = ProcessIndex::with_config(cfg);
    let mut t = 1;
    ix.observe(&ev(t, Kind::ProcessExec, proc(1, 0, "/sbin/init")));
    // A long-lived shell whose parent exits early: the parent must stay while the shell lives.
    ix.observe(&ev(2, Kind::ProcessExec, proc(2, 1, "/usr/bin/tmux")));
    ix.observe(&ev(3, Kind::ProcessExec, proc(3, 2, "/bin/bash")));
    ix.observe(&ev(4, Kind::ProcessExit, proc(2, 1, "/usr/bin/tmux")));
    t = 10;
    // Thousands of short-lived children of the shell come and go.
    for pid in 100..5_100u32 {
        t += 1;
        ix.observe(&ev(t, Kind::ProcessFork, proc(pid, 3, "/bin/bash")));
        ix.observe(&ev(t, Kind::ProcessExec, proc(pid, 3, "/bin/true")));
        ix.observe(&ev(t, Kind::ProcessExit, proc(pid, 3, "/bin/true")));
        assert!(ix.len() <= 51, "index grew to {}", ix.len());
    }
    let st = ix.stats();
    assert!(st.evicted >= 4_900, "{st:?}");
    assert_eq!(st.evicted_stale, 0);
    // The living shell, its exited parent and init are all still there.
    let anc: Vec<String> = ix
        .ancestors("p-1-3-0", 8)
        .iter()
        .map(|p| p.exe.clone())
        .collect();
    assert_eq!(anc, ["/usr/bin/tmux", "/sbin/init"]);
    // Once the shell exits, the chain becomes evictable like any other exited leaf.
    ix.observe(&ev(t + 1, Kind::ProcessExit, proc(3, 2, "/bin/bash")));
    for pid in 10_000..10_300u32 {
        ix.observe(&ev(t + 2, Kind::ProcessExec, proc(pid, 1, "/bin/true")));
        ix.observe(&ev(t + 2, Kind::ProcessExit, proc(pid, 1, "/bin/true")));
    }
    assert!(ix.process("p-1-2-0").is_none());
    assert!(ix.process("p-1-1-0").is_some(), "init never exited");
}

#[test]
fn stale_live_processes_go_only_when_the_index_is_full_of_the_living() {
    let cfg = IndexConfig {
        max_processes: 10,
        stale_after_ns: 1_000,
        ..Default::default()
    };
    let mut ix = ProcessIndex::with_config(cfg);
    for pid in 1..=10u32 {
        ix.observe(&ev(1, Kind::ProcessExec, proc(pid, 0, "/usr/bin/daemon")));
    }
    ix.observe(&ev(5_000, Kind::ProcessExec, proc(11, 0, "/usr/bin/new")));
    assert!(ix.len() <= 10);
    assert_eq!(ix.stats().evicted_stale, 1);
    assert!(ix.process("p-1-11-0").is_some());
}

#[test]
fn flows_pair_within_the_one_window() {
    let mut ix = ProcessIndex::with_config(IndexConfig {
        flow: FlowConfig {
            window_ns: 1_000,
            ..Default::default()
        },
        ..Default::default()
    });
    let client = proc(50, 1, "/usr/bin/curl");
    let server = proc(60, 1, "/usr/sbin/nginx");
    ix.observe(&ev(1, Kind::ProcessExec, client.clone()));
    ix.observe(&ev(1, Kind::ProcessExec, server.clone()));
    let c = net(
        100,
        Kind::NetConnect,
        client.clone(),
        ("127.0.0.1", 40000),
        ("127.0.0.1", 80),
    );
    // The server reports the client with an IPv4-mapped address: still the same flow.
    let s = net(
        600,
        Kind::NetAccept,
        server.clone(),
        ("::ffff:127.0.0.1", 80),
        ("127.0.0.1", 40000),
    );
    ix.observe(&c);
    ix.observe(&s);
    assert_eq!(
        ix.peer(&s).map(|p| p.exe.clone()).as_deref(),
        Some("/usr/bin/curl")
    );
    assert_eq!(
        ix.peer(&c).map(|p| p.exe.clone()).as_deref(),
        Some("/usr/sbin/nginx")
    );
    assert_eq!(ix.stats().flows_paired, 1);
    // The same tuple much later is another flow: no peer from the old one.
    let late = net(
        5_000,
        Kind::NetAccept,
        server,
        ("127.0.0.1", 80),
        ("127.0.0.1", 40000),
    );
    ix.observe(&late);
    assert!(ix.peer(&late).is_none());
}
