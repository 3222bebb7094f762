//! Runs the real `causeway up` (agent, detection, API) for end-to-end tests.

use serde_json::Value;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One `causeway up` at a time: each runs a full agent and detection, and two at once on a
/// 2-core machine only make each other slow.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct Up {
    _serial: std::sync::MutexGuard<'static, ()>,
    child: Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

pub fn get(base: &str, path: &str) -> Value {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect api");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}\n{body}");
    // Bodies may be chunked; the JSON is the part between the first '{'/'[' and the last.
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map(|i| i + 1).unwrap_or(body.len());
    serde_json::from_str(&body[start..end]).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

pub fn start_up_with(extra: &[&str], data_dir: Option<&std::path::Path>) -> Up {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(["up", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir.unwrap_or(dir.path()))
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn causeway up");
    let base = format!("http://127.0.0.1:{port}");
    let up = Up {
        _serial: serial,
        child,
        base,
        _dir: dir,
    };
    let t0 = Instant::now();
    loop {
        if std::net::TcpStream::connect(up.base.trim_start_matches("http://")).is_ok() {
            let h = get(&up.base, "/api/v1/health");
            if h["agents"][0]["state"] == "running" {
                return up;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "causeway up not ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn try_wait<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > Duration::from_secs(secs) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn wait_for<T>(what: &str, secs: u64, f: impl FnMut() -> Option<T>) -> T {
    try_wait(secs, f).unwrap_or_else(|| panic!("timed out waiting for {what}"))
}

/// `causeway up` on a fresh data directory.
pub fn start_up() -> Up {
    start_up_with(&[], None)
}
