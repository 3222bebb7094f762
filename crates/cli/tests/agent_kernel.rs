//! Kernel-facing events end to end: mounts, module loads and BPF program loads, each caused
//! by this test process itself.

mod support;

use causeway_model::Kind;
use support::{bpf_available, Agent};

#[test]
fn mount_module_and_bpf_loads() {
    if !bpf_available("mount_module_and_bpf_loads") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let target = std::fs::canonicalize(dir.path()).expect("canon");
    let agent = Agent::start(&["--no-snapshot"]);
    let me = std::process::id();

    // mount(2) of a tmpfs, then unmount.
    let t = std::ffi::CString::new(target.to_string_lossy().as_bytes()).expect("cstring");
    // SAFETY: valid C strings; a plain tmpfs mount on our own temp dir.
    let rc = unsafe {
        libc::mount(
            c"cwtest-src".as_ptr(),
            t.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "mount: {}", std::io::Error::last_os_error());
    // SAFETY: unmounting what we mounted.
    unsafe { libc::umount(t.as_ptr()) };

    // finit_module on a bad fd: refused by the kernel, still an attempt worth reporting.
    // SAFETY: raw syscall with an invalid fd; the kernel returns EBADF.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, -1, c"".as_ptr(), 0) };
    assert_eq!(rc, -1);
    // EBADF, or ENOSYS on a kernel built without modules: the event must carry what we saw.
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);

    // BPF_PROG_LOAD of a two-instruction socket filter named "cwtest".
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095]; // r0 = 0; exit
    let license = c"GPL";
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // BPF_PROG_TYPE_SOCKET_FILTER
    attr[4..8].copy_from_slice(&2u32.to_ne_bytes()); // insn_cnt
    attr[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
    attr[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    attr[48..54].copy_from_slice(b"cwtest"); // prog_name
                                             // SAFETY: attr is a valid bpf_attr prefix of the size we pass.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 5, attr.as_ptr(), attr.len()) };
    assert!(
        fd >= 0,
        "BPF_PROG_LOAD: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: closing the program fd we got.
    unsafe { libc::close(fd as i32) };

    let (events, _) = agent.stop();
    let mine: Vec<_> = events.iter().filter(|e| e.process.pid == me).collect();
    let m = mine
        .iter()
        .find_map(|e| e.mount.as_ref().filter(|m| m.source == "cwtest-src"))
        .expect("fs.mount event");
    assert_eq!(
        (m.target.as_str(), m.fstype.as_str(), m.result),
        (&*target.to_string_lossy(), "tmpfs", 0)
    );
    let md = mine
        .iter()
        .find(|e| e.kind == Kind::KernelModuleLoad)
        .and_then(|e| e.module.clone())
        .expect("module");
    assert_eq!(
        (md.syscall.as_str(), md.result),
        ("finit_module", -i64::from(errno))
    );
    let b = mine
        .iter()
        .find(|e| e.kind == Kind::KernelBpfLoad)
        .and_then(|e| e.bpf.clone())
        .expect("bpf");
    assert_eq!(
        (b.prog_type, b.prog_name.as_str(), b.result),
        (1, "cwtest", fd)
    );
}

#[test]
fn udp_connect_is_a_flow() {
    if !bpf_available("udp_connect_is_a_flow") {
        return;
    }
    let agent = Agent::start(&["--no-snapshot"]);
    let server = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    let client = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind client");
    client.connect(("127.0.0.1", port)).expect("connect");
    let cport = client.local_addr().expect("addr").port();
    let (events, _) = agent.stop();
    let c = events
        .iter()
        .find(|e| {
            e.kind == Kind::NetConnect && e.network.as_ref().is_some_and(|n| n.remote.port == port)
        })
        .expect("udp connect");
    let n = c.network.as_ref().expect("network");
    assert_eq!(
        (n.protocol.as_str(), n.local.port, c.process.pid),
        ("udp", cport, std::process::id())
    );
}

#[test]
fn not_root_is_a_clear_error() {
    // Needs root to drop to another user; that is all it needs.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP not_root_is_a_clear_error: needs root to switch to an unprivileged user");
        return;
    }
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_causeway"))
        .args(["agent", "--output", "/dev/null"])
        .output()
        .expect("setpriv");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("needs root") && err.contains("uid 65534"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

/// The kernel folds repetitive writes of one file by one process: far fewer records than
/// opens, and the occurrences they stand for add up to exactly the opens issued.
#[test]
fn repetitive_writes_are_folded_with_exact_counts() {
    if !bpf_available("repetitive_writes_are_folded_with_exact_counts") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = std::fs::canonicalize(dir.path())
        .expect("canon")
        .join("folded.txt");
    let agent = Agent::start(&["--no-snapshot"]);
    let m = support::marker("fold");
    // Three bursts of `: > file` (one open for writing each, by bash itself), separated by
    // pauses longer and shorter than the kernel's 1 s window, so windows are closed both by
    // the sweep and by the next occurrence.
    const BURST: usize = 5000;
    let script = format!(
        "f=\"$1\"; for b in 1 2 3; do i=0; while [ $i -lt {BURST} ]; do : > \"$f\"; i=$((i+1)); done; \
         if [ $b = 1 ]; then sleep 1.3; else sleep 0.4; fi; done"
    );
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .arg(&m)
        .arg(&file)
        .status()
        .expect("run bash");
    assert!(status.success());
    // While the agent runs, the sweep reports closed windows (no need to wait for stop).
    assert!(
        agent
            .wait_for("\"repeat\"", std::time::Duration::from_secs(3))
            .is_some(),
        "no repeat event from the sweep while running"
    );
    let (events, counters) = agent.stop();
    let path = file.to_string_lossy().to_string();
    let mine: Vec<_> = support::with_marker(&events, &m)
        .into_iter()
        .filter(|e| e.kind == Kind::FileOpen && e.file.as_ref().is_some_and(|f| f.path == path))
        .collect();
    let issued = (3 * BURST) as u64;
    let occurrences: u64 = mine.iter().map(|e| e.occurrences()).sum();
    let repeats = mine.iter().filter(|e| e.repeat.is_some()).count();
    assert_eq!(
        occurrences, issued,
        "occurrences {occurrences} of {} records ({repeats} repeats) != {issued} opens issued; counters {counters}",
        mine.len()
    );
    assert!(
        mine.len() * 50 < 3 * BURST,
        "{} records for {issued} opens: not folded",
        mine.len()
    );
    eprintln!(
        "{issued} opens -> {} records ({repeats} repeats), occurrences {occurrences}",
        mine.len()
    );
    assert!(repeats >= 2, "expected repeats from several windows");
    for e in &mine {
        if let Some(r) = e.repeat {
            assert!(r.last_time >= e.time, "repeat ends before it starts: {e:?}");
            assert!(e.file.as_ref().is_some_and(|f| f.write));
        }
    }
    assert!(
        counters["folded"]["file.open"].as_u64().unwrap_or(0) >= issued - mine.len() as u64,
        "kernel folded counter: {counters}"
    );
    let lost = counters["lost"].as_object().cloned().unwrap_or_default();
    assert!(
        !lost.keys().any(|k| k.contains("file.open")),
        "file.open lost: {counters}"
    );
}

/// Writes after an exec are never folded into the previous image's window: each image's
/// opens are reported under that image, with exact counts.
#[test]
fn folding_never_hides_a_new_image_behind_the_old_one() {
    if !bpf_available("folding_never_hides_a_new_image_behind_the_old_one") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = std::fs::canonicalize(dir.path())
        .expect("canon")
        .join("same.txt");
    let agent = Agent::start(&["--no-snapshot"]);
    let (m1, m2) = (support::marker("img1"), support::marker("img2"));
    const N: usize = 2000;
    // The same process (pid) writes the file N times, execs a new bash image at once (well
    // within the 1 s window) and writes it N times again.
    let lp = format!("i=0; while [ $i -lt {N} ]; do : > \"$f\"; i=$((i+1)); done");
    let script = format!("f=\"$1\"; {lp}; exec bash -c 'f=\"$1\"; {lp}' {m2} \"$f\"");
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .arg(&m1)
        .arg(&file)
        .status()
        .expect("run bash");
    assert!(status.success());
    let (events, counters) = agent.stop();
    let path = file.to_string_lossy().to_string();
    // The first image's script names the second's marker too; the second's argv has only
    // its own.
    let count = |m: &str, not: Option<&str>| -> (u64, u32) {
        let mine: Vec<_> = support::with_marker(&events, m)
            .into_iter()
            .filter(|e| not.is_none_or(|n| !e.process.argv.iter().any(|a| a.contains(n))))
            .filter(|e| e.kind == Kind::FileOpen && e.file.as_ref().is_some_and(|f| f.path == path))
            .collect();
        let pid = mine.first().map(|e| e.process.pid).unwrap_or(0);
        (mine.iter().map(|e| e.occurrences()).sum(), pid)
    };
    let ((n1, pid1), (n2, pid2)) = (count(&m1, None), count(&m2, Some(&m1)));
    assert_eq!(pid1, pid2, "one process, two images");
    assert_eq!(
        n1, N as u64,
        "first image: {n1} of {N}; counters {counters}"
    );
    assert_eq!(
        n2, N as u64,
        "second image: {n2} of {N}; counters {counters}"
    );
}
