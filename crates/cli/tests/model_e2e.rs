//! A real three-tier topology on loopback under the real agent (root/BPF): curl reaches a
//! frontend (python3 http.server on all interfaces), which calls an API (python3, loopback),
//! which reads a planted credential file and calls a datastore (python3 socket server on a
//! loopback port). Recorded with `causeway agent`, ingested, then `causeway model show`.
//! The datastore runs in a real cgroup named like a docker scope (the agent attributes it to
//! that container id from its cgroup; it shares the host's network namespace, unlike a runc
//! container, so the loopback topology still works). Each tier is started under `sh -c '...; :'` so that its workload root is its own
//! interpreter below a shell (the session rule), not the test harness.

mod support;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

fn causeway(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(args)
        .output()
        .expect("run causeway")
}

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

/// Move the child into `procs` (a cgroup's `cgroup.procs`) before it execs.
fn into_cgroup(cmd: &mut Command, procs: &std::path::Path) {
    let procs_c = std::ffi::CString::new(procs.to_string_lossy().as_bytes()).expect("cstring");
    // SAFETY: open/write/close are async-signal-safe.
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
}

#[test]
fn real_topology_becomes_the_model() {
    if !support::bpf_available("real_topology_becomes_the_model") {
        return;
    }
    if Command::new("python3").arg("-V").output().is_err()
        || Command::new("curl").arg("-V").output().is_err()
    {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "python3 and curl are required under CI=true"
        );
        eprintln!("SKIP real_topology_becomes_the_model: python3 or curl missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = 20_000 + (std::process::id() % 10_000) as u16 * 3 % 30_000;
    let (pf, pa, pd) = (base, base + 1, base + 2);
    let cred = d.join("credentials");
    std::fs::write(&cred, "[default]\naws_secret_access_key = planted\n").unwrap();
    std::fs::write(d.join("datastore.py"), format!(
        "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1',{pd})); s.listen()\nwhile True:\n    c,_=s.accept(); c.recv(100); c.sendall(b'v'); c.close()\n")).unwrap();
    std::fs::write(d.join("api.py"), format!(
        "import http.server, socket\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        open({cred:?}).read()\n        c=socket.create_connection(('127.0.0.1',{pd})); c.sendall(b'get'); v=c.recv(10); c.close()\n        self.send_response(200); self.end_headers(); self.wfile.write(v)\nhttp.server.HTTPServer(('127.0.0.1',{pa}),H).serve_forever()\n")).unwrap();
    std::fs::write(d.join("frontend.py"), format!(
        "import http.server, urllib.request\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        v=urllib.request.urlopen('http://127.0.0.1:{pa}/').read()\n        self.send_response(200); self.end_headers(); self.wfile.write(v)\nhttp.server.HTTPServer(('0.0.0.0',{pf}),H).serve_forever()\n")).unwrap();
    let cid = format!("{:0>64}", format!("c0ffee{:x}", std::process::id()));
    let cg = cgroup2_root().join(format!("docker-{cid}.scope"));
    std::fs::create_dir(&cg).expect("mkdir cgroup");
    let agent = support::Agent::start(&["--sensitive", cred.to_str().unwrap()]);
    let mut kids = Vec::new();
    for s in ["datastore.py", "api.py", "frontend.py"] {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!("python3 {}; :", d.join(s).display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if s == "datastore.py" {
            into_cgroup(&mut cmd, &cg.join("cgroup.procs"));
        }
        let child = cmd.spawn().unwrap();
        kids.push(child);
        std::thread::sleep(Duration::from_millis(400));
    }
    let mut ok = false;
    for _ in 0..30 {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("curl -s -m 3 http://127.0.0.1:{pf}/; :"))
            .output()
            .unwrap();
        if out.stdout == b"v" {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let (events, _) = agent.stop();
    for k in &mut kids {
        // The python3 under our sh, by pid (from /proc), then the sh itself.
        let kids = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", k.id()))
            .unwrap_or_default();
        for pid in kids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a pid we started (the child of our own sh).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = k.kill();
        let _ = k.wait();
    }
    for _ in 0..50 {
        if std::fs::remove_dir(&cg).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "the topology did not answer");
    let file = d.join("events.jsonl");
    let lines: Vec<String> = events.iter().map(|e| e.to_json()).collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let data = d.join("data");
    let out = causeway(&[
        "ingest",
        "--data-dir",
        data.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = causeway(&[
        "model",
        "show",
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let wl = |script: &str| -> String {
        m["workloads"]
            .as_object()
            .unwrap()
            .values()
            .find(|w| w["name"].as_str().unwrap().ends_with(script))
            .unwrap_or_else(|| {
                panic!(
                    "no workload for {script}: {:?}",
                    m["workloads"]
                        .as_object()
                        .unwrap()
                        .values()
                        .map(|w| w["name"].clone())
                        .collect::<Vec<_>>()
                )
            })["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (fe, api) = (wl("frontend.py"), wl("api.py"));
    // The datastore's workload is its container (named by id, its tree collapsed).
    let dbw = m["workloads"]
        .as_object()
        .unwrap()
        .values()
        .find(|w| w["container"] == cid.as_str())
        .unwrap_or_else(|| panic!("no container workload {cid}"));
    assert_eq!(dbw["kind"], "container");
    assert_eq!(
        dbw["datastore"], false,
        "port {pd} is not a known datastore port"
    );
    let db = dbw["id"].as_str().unwrap().to_string();
    let boundaries = m["boundaries"].as_object().unwrap();
    let cb = boundaries
        .values()
        .find(|b| {
            b["members"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == db.as_str())
        })
        .expect("container boundary");
    assert_eq!(cb["kind"], "container");
    let host = &boundaries[cb["parent"].as_str().unwrap()];
    assert_eq!(host["kind"], "host");
    assert!(host["members"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == api.as_str()));
    let flow = |src: &str, dst: &str, port: u16| {
        m["flows"]
            .as_object()
            .unwrap()
            .values()
            .any(|f| f["source"]["id"] == src && f["target"]["id"] == dst && f["port"] == port)
    };
    assert!(flow(&fe, &api, pa), "frontend -> api:{pa}");
    assert!(flow(&api, &db, pd), "api -> datastore:{pd}");
    let eps = m["entry_points"].as_object().unwrap();
    let fe_ep = eps
        .values()
        .find(|e| e["workload"] == fe.as_str() && e["port"] == pf)
        .expect("frontend entry point");
    assert_eq!(fe_ep["exposed"], true);
    let reached = fe_ep["reached"]["workloads"].as_object().unwrap();
    assert!(!reached.is_empty(), "curl reached the frontend: {fe_ep}");
    let api_ep = eps
        .values()
        .find(|e| e["workload"] == api.as_str() && e["port"] == pa)
        .expect("api entry point");
    assert_eq!(api_ep["exposed"], false);
    let readers = m["data_assets"]
        .as_object()
        .unwrap()
        .values()
        .find(|a| {
            a["paths"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == cred.to_str().unwrap())
        })
        .expect("the planted credential as a data asset")["readers"]
        .clone();
    assert!(
        readers.get(&api).is_some(),
        "api reads the credential: {readers}"
    );
}
