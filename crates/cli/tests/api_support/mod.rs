//! The real `causeway server` over a store filled by `causeway ingest` from the fixtures the
//! real agent recorded (tests/fixtures, see record.sh), and a small HTTP/1.0 client (no
//! chunked bodies to undo). Needs no root: ingest and server load no BPF.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_causeway");

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch directory under the target directory, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The recorded fixture `name` (`revshell`, `dropper`, `build`, `xss`) as a plain JSON-lines
/// file (gunzipped into the scratch area when stored compressed).
pub fn fixture(name: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let plain = repo().join(format!("tests/fixtures/{name}.jsonl"));
    if plain.exists() {
        return plain;
    }
    let gz = repo().join(format!("tests/fixtures/{name}.jsonl.gz"));
    let dir = DIR.get_or_init(|| scratch("fixtures"));
    let out = dir.join(format!("{name}.jsonl"));
    if !out.exists() {
        let data = Command::new("gzip").arg("-dc").arg(&gz).output().unwrap();
        assert!(data.status.success(), "gunzip {}", gz.display());
        let tmp = dir.join(format!("{name}.jsonl.part"));
        std::fs::write(&tmp, data.stdout).unwrap();
        std::fs::rename(&tmp, &out).unwrap();
    }
    out
}

pub const ALL: [&str; 4] = ["revshell", "dropper", "build", "xss"];

/// The events of a fixture.
pub fn events(name: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The process id of the first exec in `name` whose argv starts with `argv`.
pub fn exec_id(name: &str, argv: &[&str]) -> String {
    events(name)
        .iter()
        .find(|e| {
            e["kind"] == "process.exec"
                && e["process"]["argv"].as_array().is_some_and(|a| {
                    a.len() >= argv.len() && a.iter().zip(argv).all(|(x, y)| x == y)
                })
        })
        .unwrap_or_else(|| panic!("no exec of {argv:?} in {name}"))["process"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `causeway ingest --data-dir DIR FILES...`, asserting success.
pub fn ingest(dir: &Path, names: &[&str]) {
    let out = Command::new(BIN)
        .arg("ingest")
        .arg("--data-dir")
        .arg(dir)
        .args(names.iter().map(|n| fixture(n)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ingest failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One store with every fixture, shared by the tests of one binary (ingesting the build
/// trace takes seconds).
pub fn store() -> &'static Path {
    static STORE: OnceLock<PathBuf> = OnceLock::new();
    STORE.get_or_init(|| {
        let d = scratch("store");
        ingest(&d, &ALL);
        d
    })
}

/// A running `causeway server`; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// `causeway server --data-dir DIR --listen 127.0.0.1:PORT EXTRA...`, once it accepts.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_on(dir, "127.0.0.1", extra)
    }

    /// Listening on `ip` (reached through loopback).
    pub fn start_on(dir: &Path, ip: &str, extra: &[&str]) -> Server {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut child = Command::new(BIN)
            .arg("server")
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("{ip}:{port}"))
            .args(extra)
            .env_remove("CAUSEWAY_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if let Some(st) = child.try_wait().unwrap() {
                panic!("causeway server exited: {st}");
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "server not up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server { child, addr }
    }

    /// Over the shared store of every fixture.
    pub fn fixtures() -> Server {
        Server::start(store(), &[])
    }

    pub fn get(&self, path: &str) -> Resp {
        request(self.addr, path, &[])
    }

    /// GET, asserting 200 and JSON.
    pub fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        r.json()
    }

    /// Stop it (SIGKILL: the store is SQLite, and a server writes nothing).
    pub fn stop(self) {}
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send raw request bytes, read until the server closes.
pub fn raw(addr: SocketAddr, req: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    out
}

/// GET over HTTP/1.0: the body is delimited by the close, never chunked.
pub fn request(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let out = raw(addr, &req);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end: {}", String::from_utf8_lossy(&out)));
    let head = String::from_utf8_lossy(&out[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: out[split + 4..].to_vec(),
    }
}

/// Percent-encode a path segment (ids hold `:` and `@`).
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ids of the objects in `v[key]`.
pub fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

/// The incident whose root is the process `root`.
pub fn incident_of(s: &Server, root: &str) -> Value {
    let list = s.json("/api/v1/incidents?limit=1000");
    let id = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["root_process"]["id"] == root)
        .unwrap_or_else(|| panic!("no incident rooted at {root}: {list}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    s.json(&format!("/api/v1/incidents/{}", enc(&id)))
}
