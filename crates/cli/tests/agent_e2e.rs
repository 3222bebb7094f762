//! End-to-end tests of the sensor: each test starts the real `causeway agent` (real eBPF
//! programs), then starts processes of its own with unique markers, and asserts the exact
//! fields of the events those processes caused.

mod support;

use causeway_model::{Event, Kind, ProcessKey};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::Command;
use support::{bpf_available, marker, with_marker, Agent};

fn my_id() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").expect("boot id");
    let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let start: u64 = rest
        .split_whitespace()
        .nth(19)
        .expect("starttime")
        .parse()
        .expect("num");
    ProcessKey {
        boot: causeway_model::id::boot_prefix(&boot),
        pid: std::process::id(),
        start_ticks: start,
    }
    .to_string()
}

fn one<'a>(events: &[&'a Event], kind: Kind, what: &str) -> &'a Event {
    let found: Vec<&&Event> = events.iter().filter(|e| e.kind == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {kind} for {what}, got {found:#?}"
    );
    found[0]
}

#[test]
fn exec_chain_fork_and_exit_code() {
    if !bpf_available("exec_chain_fork_and_exit_code") {
        return;
    }
    let agent = Agent::start(&["--no-snapshot"]);
    let outer_m = marker("outer");
    let inner_m = marker("inner");
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("/bin/sh -c 'exit 7' {inner_m}; exit 0"))
        .arg(&outer_m)
        .status()
        .expect("run sh");
    assert!(status.success());
    let (events, counters) = agent.stop();
    assert_eq!(counters["lost_total"], 0, "{counters}");

    let outer = with_marker(&events, &outer_m);
    let exec = one(&outer, Kind::ProcessExec, "outer");
    let p = &exec.process;
    assert_eq!(
        p.argv,
        vec![
            "/bin/sh".to_string(),
            "-c".into(),
            format!("/bin/sh -c 'exit 7' {inner_m}; exit 0"),
            outer_m.clone()
        ]
    );
    let sh = std::fs::canonicalize("/bin/sh").expect("canonicalize");
    assert_eq!(p.exe, sh.to_string_lossy());
    assert_eq!(p.ppid, std::process::id());
    assert_eq!(p.parent_id, my_id());
    assert_eq!(
        p.cwd,
        std::env::current_dir().expect("cwd").to_string_lossy()
    );
    assert_eq!(
        exec.exec.as_ref().map(|x| x.filename.as_str()),
        Some("/bin/sh")
    );
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    assert_eq!((p.uid, p.euid, p.gid, p.egid), (uid, uid, gid, gid));
    let outer_exit = one(&outer, Kind::ProcessExit, "outer");
    assert_eq!(outer_exit.exit.as_ref().and_then(|x| x.code), Some(0));

    // The inner shell: forked by the outer one (same id through fork and exec), exit code 7.
    // Only the inner shell has its marker as last argument (the outer's script mentions it).
    let inner: Vec<&Event> = with_marker(&events, &inner_m)
        .into_iter()
        .filter(|e| e.process.argv.last() == Some(&inner_m))
        .collect();
    let iexec = one(&inner, Kind::ProcessExec, "inner");
    assert_eq!(iexec.process.ppid, p.pid);
    assert_eq!(iexec.process.parent_id, p.id);
    let fork = events
        .iter()
        .find(|e| e.kind == Kind::ProcessFork && e.process.id == iexec.process.id)
        .expect("fork of the inner shell");
    assert_eq!(fork.process.parent_id, p.id);
    assert_eq!(fork.process.ppid, p.pid);
    let iexit = one(&inner, Kind::ProcessExit, "inner");
    assert_eq!(iexit.process.id, iexec.process.id);
    let x = iexit.exit.as_ref().expect("exit object");
    assert_eq!((x.code, x.signal), (Some(7), None));
    assert!(fork.time <= iexec.time && iexec.time <= iexit.time);
}

#[test]
fn killed_by_signal() {
    if !bpf_available("killed_by_signal") {
        return;
    }
    let agent = Agent::start(&["--no-snapshot"]);
    let m = marker("sig");
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg("kill -9 $$")
        .arg(&m)
        .status()
        .expect("sh");
    assert!(!status.success());
    let (events, _) = agent.stop();
    let ev = with_marker(&events, &m);
    let x = one(&ev, Kind::ProcessExit, "killed")
        .exit
        .clone()
        .expect("exit");
    assert_eq!((x.code, x.signal), (None, Some(9)));
}

fn tcp_flow(listen_ip: &str) {
    let agent = Agent::start(&["--no-snapshot"]);
    let listener = std::net::TcpListener::bind((listen_ip, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let m = marker("tcp");
    let mut client = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3<>/dev/tcp/{listen_ip}/{port}; echo hi >&3; read -t 5 line <&3"
        ))
        .arg(&m)
        .spawn()
        .expect("bash");
    let (mut conn, peer) = listener.accept().expect("accept");
    let mut buf = [0u8; 3];
    conn.read_exact(&mut buf).expect("read");
    conn.write_all(b"ok\n").expect("write");
    assert!(client.wait().expect("wait").success());
    let (events, _) = agent.stop();

    let cev = with_marker(&events, &m);
    let connect = one(&cev, Kind::NetConnect, "client");
    assert_eq!(connect.process.pid, client.id());
    let n = connect.network.as_ref().expect("network");
    assert_eq!(n.protocol, "tcp");
    assert_eq!((n.remote.ip.as_str(), n.remote.port), (listen_ip, port));
    assert_eq!(
        (n.local.ip.as_str(), n.local.port),
        (listen_ip, peer.port())
    );

    let me = std::process::id();
    let accept = events
        .iter()
        .find(|e| {
            e.kind == Kind::NetAccept && e.network.as_ref().is_some_and(|x| x.local.port == port)
        })
        .expect("accept event");
    assert_eq!(accept.process.pid, me);
    let a = accept.network.as_ref().expect("network");
    // Mirrored endpoints: the server's local is the client's remote and vice versa.
    assert_eq!(a.local, n.remote);
    assert_eq!(a.remote, n.local);
    let listen = events
        .iter()
        .find(|e| e.kind == Kind::NetListen && e.process.pid == me)
        .expect("listen event");
    assert_eq!(listen.network.as_ref().map(|x| x.local.port), Some(port));
}

#[test]
fn tcp_connect_accept_ipv4() {
    if bpf_available("tcp_connect_accept_ipv4") {
        tcp_flow("127.0.0.1");
    }
}

#[test]
fn tcp_connect_accept_ipv6() {
    if bpf_available("tcp_connect_accept_ipv6") {
        tcp_flow("::1");
    }
}

#[test]
fn file_write_sensitive_read_rename_chmod_unlink() {
    if !bpf_available("file_write_sensitive_read_rename_chmod_unlink") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = std::fs::canonicalize(dir.path()).expect("canon");
    let agent = Agent::start(&["--no-snapshot"]);
    let m = marker("file");
    // Relative names on purpose: the kernel side resolves them against the cwd.
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg("echo x > out.txt; mv out.txt moved.txt; chmod 0755 moved.txt; rm moved.txt; exec cat /etc/shadow > /dev/null")
        .arg(&m)
        .current_dir(&d)
        .status()
        .expect("sh");
    assert!(status.success());
    let (events, _) = agent.stop();
    let ev = with_marker(&events, &m);
    let sh_pid = one(&ev, Kind::ProcessExec, "sh").process.pid;
    let by_sh: Vec<&Event> = events
        .iter()
        .filter(|e| e.process.pid == sh_pid || e.process.ppid == sh_pid)
        .collect();
    let path = |p: &str| d.join(p).to_string_lossy().into_owned();

    let w = by_sh
        .iter()
        .find(|e| {
            e.kind == Kind::FileOpen && e.file.as_ref().is_some_and(|f| f.path == path("out.txt"))
        })
        .expect("write open");
    assert!(w.file.as_ref().is_some_and(|f| f.write && !f.sensitive));
    let r = by_sh
        .iter()
        .find(|e| e.kind == Kind::FileRename)
        .expect("rename")
        .file
        .clone()
        .expect("file");
    assert_eq!(
        (r.path, r.new_path),
        (path("out.txt"), Some(path("moved.txt")))
    );
    let c = by_sh
        .iter()
        .find(|e| e.kind == Kind::FileChmod)
        .expect("chmod")
        .file
        .clone()
        .expect("file");
    assert_eq!(
        (c.path, c.mode.map(|m| m & 0o7777)),
        (path("moved.txt"), Some(0o755))
    );
    let u = by_sh
        .iter()
        .find(|e| e.kind == Kind::FileUnlink)
        .expect("unlink")
        .file
        .clone()
        .expect("file");
    assert_eq!(u.path, path("moved.txt"));
    let s = by_sh
        .iter()
        .find(|e| {
            e.kind == Kind::FileOpen && e.file.as_ref().is_some_and(|f| f.path == "/etc/shadow")
        })
        .expect("sensitive read of /etc/shadow");
    let f = s.file.as_ref().expect("file");
    assert!(f.sensitive && !f.write);
    assert_eq!(
        s.process.exe,
        std::fs::canonicalize("/bin/cat")
            .expect("cat")
            .to_string_lossy()
    );
}

#[test]
fn setresuid_change() {
    if !bpf_available("setresuid_change") {
        return;
    }
    let agent = Agent::start(&["--no-snapshot"]);
    let mut cmd = Command::new("/bin/true");
    // SAFETY: setresgid/setresuid are async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setresgid(65534, 65534, 65534) != 0
                || libc::setresuid(65534, 65534, 65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    assert!(child.wait().expect("wait").success());
    let (events, _) = agent.stop();
    let creds: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == Kind::CredChange && e.process.pid == pid)
        .collect();
    let uid = creds
        .iter()
        .find_map(|e| e.cred.as_ref().filter(|c| c.syscall == "setresuid"))
        .expect("setresuid event");
    assert_eq!((uid.old.uid, uid.old.euid), (0, 0));
    assert_eq!(
        (uid.new.uid, uid.new.euid, uid.new.suid),
        (65534, 65534, 65534)
    );
    let gid = creds
        .iter()
        .find_map(|e| e.cred.as_ref().filter(|c| c.syscall == "setresgid"))
        .expect("setresgid");
    assert_eq!((gid.old.gid, gid.new.gid), (0, 65534));
}

#[test]
fn ptrace_seize() {
    if !bpf_available("ptrace_seize") {
        return;
    }
    let agent = Agent::start(&["--no-snapshot"]);
    let mut target = Command::new("sleep").arg("5").spawn().expect("sleep");
    let tpid = target.id() as libc::pid_t;
    // SAFETY: plain ptrace calls on our own child.
    let rc = unsafe { libc::ptrace(libc::PTRACE_SEIZE, tpid, 0, 0) };
    assert_eq!(rc, 0, "PTRACE_SEIZE: {}", std::io::Error::last_os_error());
    unsafe { libc::ptrace(libc::PTRACE_DETACH, tpid, 0, 0) };
    let _ = target.kill();
    let _ = target.wait();
    let (events, _) = agent.stop();
    let ev = events
        .iter()
        .find(|e| {
            e.kind == Kind::ProcessPtrace && e.target.as_ref().is_some_and(|t| t.pid == tpid as u32)
        })
        .expect("ptrace event");
    assert_eq!(ev.process.pid, std::process::id());
    let t = ev.target.as_ref().expect("target");
    assert_eq!(t.request, "PTRACE_SEIZE");
    assert!(
        t.id.starts_with("p-") && t.id.contains(&format!("-{tpid}-")),
        "{}",
        t.id
    );
}

fn memfd_with_true(name: &str) -> i32 {
    let cname = std::ffi::CString::new(name).expect("cstring");
    // SAFETY: valid C string; flags 0 so the fd is inherited by the exec'd child.
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    let bytes = std::fs::read("/bin/true").expect("read /bin/true");
    // SAFETY: fd is a valid memfd we own; buffer is valid for its length.
    let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    assert_eq!(n as usize, bytes.len());
    fd
}

#[test]
fn memfd_and_deleted_file_exec() {
    if !bpf_available("memfd_and_deleted_file_exec") {
        return;
    }
    let agent = Agent::start(&["--no-snapshot"]);
    let m = marker("memfd");
    let fd = memfd_with_true("cwtest-payload");
    let st = Command::new(format!("/proc/self/fd/{fd}"))
        .arg(&m)
        .status()
        .expect("exec memfd");
    assert!(st.success());
    // SAFETY: closing our own fd.
    unsafe { libc::close(fd) };

    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("gone");
    std::fs::copy("/bin/true", &p).expect("copy");
    let f = std::fs::File::open(&p).expect("open");
    std::fs::remove_file(&p).expect("unlink");
    let dm = marker("deleted");
    let fd2 = std::os::fd::AsRawFd::as_raw_fd(&f);
    // SAFETY: clear FD_CLOEXEC on our own fd so the child can exec it.
    unsafe { libc::fcntl(fd2, libc::F_SETFD, 0) };
    let st = Command::new(format!("/proc/self/fd/{fd2}"))
        .arg(&dm)
        .status()
        .expect("exec deleted");
    assert!(st.success());
    let (events, _) = agent.stop();

    let mc = events
        .iter()
        .find(|e| e.kind == Kind::ProcessMemfdCreate && e.process.pid == std::process::id())
        .expect("memfd_create event");
    let md = mc.memfd.as_ref().expect("memfd");
    assert_eq!(md.name, "cwtest-payload");
    assert_eq!(md.result, i64::from(fd));
    let ev = with_marker(&events, &m);
    let x = one(&ev, Kind::ProcessExec, "memfd exec")
        .exec
        .clone()
        .expect("exec");
    assert!(x.memfd && x.filename.starts_with("/proc/self/fd/"), "{x:?}");
    let ev = with_marker(&events, &dm);
    let x = one(&ev, Kind::ProcessExec, "deleted exec")
        .exec
        .clone()
        .expect("exec");
    assert!(x.deleted && !x.memfd, "{x:?}");
}

#[test]
fn argv_bounds_and_invalid_utf8() {
    if !bpf_available("argv_bounds_and_invalid_utf8") {
        return;
    }
    use std::os::unix::ffi::OsStrExt;
    let agent = Agent::start(&["--no-snapshot"]);
    let m = marker("argv");
    let mut args: Vec<std::ffi::OsString> = (0..1000).map(|i| format!("a{i}").into()).collect();
    args.push("x".repeat(4096).into());
    let mut bad = vec![0xffu8, 0xfe, b'\\'];
    bad.extend_from_slice(m.as_bytes());
    args.push(std::ffi::OsStr::from_bytes(&bad).to_owned());
    assert!(Command::new("/bin/true")
        .args(&args)
        .status()
        .expect("true")
        .success());

    let big_m = marker("bigargv");
    let mut big: Vec<String> = (0..20)
        .map(|i| format!("{i}-{}", "y".repeat(2048)))
        .collect();
    big.push(big_m.clone());
    assert!(Command::new("/bin/true")
        .args(&big)
        .status()
        .expect("true")
        .success());
    let (events, counters) = agent.stop();

    let ev = with_marker(&events, &m);
    let p = &one(&ev, Kind::ProcessExec, "1000 args").process;
    assert!(!p.argv_truncated);
    assert_eq!(p.argv.len(), 1003);
    assert_eq!(p.argv[0], "/bin/true");
    assert_eq!(p.argv[1], "a0");
    assert_eq!(p.argv[1000], "a999");
    assert_eq!(p.argv[1001], "x".repeat(4096));
    // Invalid bytes become \xNN and the backslash is doubled: lossless and reversible.
    assert_eq!(p.argv[1002], format!("\\xff\\xfe\\\\{m}"));
    assert_eq!(
        causeway_model::unescape(&p.argv[1002]).expect("unescape"),
        bad
    );

    // Over the bound: the exec is reported, cut at the bound, and says so.
    let exec = events
        .iter()
        .find(|e| {
            e.kind == Kind::ProcessExec && e.process.argv.get(1).is_some_and(|a| a == &big[0])
        })
        .expect("big exec");
    assert!(exec.process.argv_truncated);
    // NUL-separated bytes captured: at most the documented bound of 16 KiB.
    let total: usize = exec.process.argv.iter().map(|a| a.len() + 1).sum::<usize>() - 1;
    assert!(total <= 16384, "{total}");
    assert_eq!(&exec.process.argv[1..5], &big[0..4]);
    assert!(
        counters["truncated"].as_u64().unwrap_or(0) >= 1,
        "{counters}"
    );
}

#[test]
fn process_running_before_start_has_lineage() {
    if !bpf_available("process_running_before_start_has_lineage") {
        return;
    }
    let m = marker("before");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg("sleep 30")
        .arg(&m)
        .spawn()
        .expect("sh");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let agent = Agent::start(&[]);
    let _ = child.kill();
    let _ = child.wait();
    let (events, _) = agent.stop();
    let ev = with_marker(&events, &m);
    let snap = ev
        .iter()
        .find(|e| e.kind == Kind::ProcessExec && e.exec.as_ref().is_some_and(|x| x.snapshot))
        .expect("snapshot exec of the pre-existing process");
    assert_eq!(snap.process.pid, child.id());
    assert_eq!(snap.process.parent_id, my_id());
    assert_eq!(
        snap.process.argv,
        vec![
            "/bin/sh".to_string(),
            "-c".into(),
            "sleep 30".into(),
            m.clone()
        ]
    );
    // The kill we sent is seen live, with the same process id as the snapshot.
    let exit = ev
        .iter()
        .find(|e| e.kind == Kind::ProcessExit)
        .expect("exit");
    assert_eq!(exit.process.id, snap.process.id);
    assert_eq!(exit.exit.as_ref().and_then(|x| x.signal), Some(9));
}

#[test]
fn events_arrive_while_running() {
    if !bpf_available("events_arrive_while_running") {
        return;
    }
    let agent = Agent::start(&["--no-snapshot"]);
    let m = marker("live");
    assert!(Command::new("/bin/true")
        .arg(&m)
        .status()
        .expect("true")
        .success());
    // The reader polls every 20 ms and the sink flushes every 100 ms: a lone event must be
    // out well within a second, not only when the agent stops.
    let waited = agent.wait_for(&m, std::time::Duration::from_secs(5));
    let (events, _) = agent.stop();
    assert!(!with_marker(&events, &m).is_empty());
    let waited = waited.expect("event written while the agent runs");
    assert!(waited < std::time::Duration::from_secs(1), "{waited:?}");
}
