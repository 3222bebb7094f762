//! Container attribution end to end: a process placed in a cgroup named like a docker scope,
//! and a process in a real OCI container run by runc from a local busybox rootfs.

mod support;

use causeway_model::Kind;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use support::{bpf_available, marker, with_marker, Agent};

fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 mount")
}

fn hex_id(seed: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut out = String::new();
    for i in 0..4u8 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (seed, i).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

#[test]
fn process_in_docker_like_scope_is_attributed() {
    if !bpf_available("process_in_docker_like_scope_is_attributed") {
        return;
    }
    let m = marker("cgroup");
    let id = hex_id(&m);
    let cg = cgroup2_root().join(format!("docker-{id}.scope"));
    std::fs::create_dir(&cg).expect("mkdir cgroup");
    let procs = cg.join("cgroup.procs");
    let agent = Agent::start(&["--no-snapshot"]);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg("exit 0").arg(&m);
    let procs_c = std::ffi::CString::new(procs.to_string_lossy().as_bytes()).expect("cstring");
    // SAFETY: open/write/close are async-signal-safe; moves the child into the cgroup
    // before it execs.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::open(procs_c.as_ptr(), libc::O_WRONLY);
            if fd < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
            libc::close(fd);
            if ok {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let st = cmd.status().expect("run in cgroup");
    let (events, _) = agent.stop();
    let _ = std::fs::remove_dir(&cg);
    assert!(st.success());
    let ev = with_marker(&events, &m);
    let exec = ev
        .iter()
        .find(|e| e.kind == Kind::ProcessExec)
        .expect("exec");
    let c = exec
        .process
        .container
        .as_ref()
        .expect("container attribution");
    assert_eq!(c.id, id);
    assert_eq!(c.runtime, "docker");
    // Host processes have none.
    let host = events
        .iter()
        .find(|e| e.process.pid == std::process::id())
        .map(|e| e.process.container.clone());
    if let Some(hc) = host {
        assert_eq!(hc, None);
    }
}

#[test]
fn process_in_runc_container_is_attributed() {
    if !bpf_available("process_in_runc_container_is_attributed") {
        return;
    }
    let busybox = PathBuf::from("/bin/busybox");
    let have_runc = Command::new("runc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_runc || !busybox.exists() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("runc and busybox-static are required under CI (.ci/run installs them)");
        }
        eprintln!("SKIP process_in_runc_container_is_attributed: needs runc and busybox-static");
        return;
    }
    let m = marker("runc");
    let id = hex_id(&m);
    let bundle = tempfile::tempdir().expect("bundle");
    let rootfs = bundle.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).expect("rootfs");
    for d in ["proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).expect("dir");
    }
    std::fs::copy(&busybox, rootfs.join("bin/busybox")).expect("copy busybox");
    for applet in ["sh", "true", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("symlink");
    }
    let spec = Command::new("runc")
        .arg("spec")
        .current_dir(bundle.path())
        .status()
        .expect("runc spec");
    assert!(spec.success());
    let cfg_path = bundle.path().join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("config")).expect("json");
    cfg["process"]["terminal"] = false.into();
    cfg["process"]["args"] = serde_json::json!(["/bin/sh", "-c", "/bin/true", m]);
    std::fs::write(&cfg_path, cfg.to_string()).expect("write config");

    let agent = Agent::start(&["--no-snapshot"]);
    let out = Command::new("runc")
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .output()
        .expect("runc run");
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .output();
    let (events, _) = agent.stop();
    assert!(
        out.status.success(),
        "runc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = with_marker(&events, &m);
    let exec = ev
        .iter()
        .find(|e| {
            e.kind == Kind::ProcessExec && e.process.argv.first().is_some_and(|a| a == "/bin/sh")
        })
        .expect("exec inside the container");
    let c = exec
        .process
        .container
        .as_ref()
        .unwrap_or_else(|| panic!("container attribution: {exec:?}"));
    assert_eq!(c.id, id);
    // Paths are as the container sees them (the walk stops at the container's root).
    assert_eq!(exec.process.exe, "/bin/busybox");
    assert_ne!(exec.process.pid, 1, "pids are host pids");
}
