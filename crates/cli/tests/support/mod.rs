//! Runs the real `causeway agent` for end-to-end tests and reads back its events.
//!
//! Tests that need root and BPF skip with a clear message when they cannot run, except under
//! CI (`CI=true`), where they must run: there a missing capability is a failure.
#![allow(dead_code)]

pub mod up;

use causeway_model::Event;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether this machine can run BPF tests; panics under CI when it cannot.
pub fn bpf_available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let btf = Path::new("/sys/kernel/btf/vmlinux").exists();
    if root && btf {
        return true;
    }
    let why = if !root { "not root" } else { "no kernel BTF" };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root and BPF ({why}), and CI=true forbids skipping");
    }
    eprintln!("SKIP {test}: needs root and BPF ({why})");
    false
}

/// A running agent writing to a file.
pub struct Agent {
    child: Child,
    pub out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Start `causeway agent` and wait until its probes are attached.
    pub fn start(extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("events.jsonl");
        let ready = dir.path().join("ready");
        let child = Command::new(env!("CARGO_BIN_EXE_causeway"))
            .arg("agent")
            .arg("--output")
            .arg(&out)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn causeway agent");
        let mut agent = Agent {
            child,
            out,
            _dir: dir,
        };
        let t0 = Instant::now();
        while !ready.exists() {
            if let Ok(Some(status)) = agent.child.try_wait() {
                let err = agent.stderr();
                panic!("causeway agent exited early ({status}): {err}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "agent not ready after 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(e) = self.child.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// Wait until a line containing `needle` is in the output while the agent runs.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < timeout {
            if std::fs::read_to_string(&self.out).is_ok_and(|t| t.contains(needle)) {
                return Some(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Stop with SIGINT; return (events, the counters line printed on stderr).
    pub fn stop(mut self) -> (Vec<Event>, serde_json::Value) {
        // Give the ring buffer's poll timeout a moment to deliver the last records.
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().expect("wait agent");
        let err = self.stderr();
        assert!(status.success(), "agent exit {status}: {err}");
        let counters = err
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .unwrap_or_else(|| panic!("no counters line in stderr: {err}"));
        let text = std::fs::read_to_string(&self.out).expect("read events");
        let events = text
            .lines()
            .map(|l| Event::from_json(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
            .collect();
        (events, counters)
    }
}

/// A unique marker for argv.
pub fn marker(name: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("cwtest-{name}-{}-{t}", std::process::id())
}

/// Events whose process argv contains `m`.
pub fn with_marker<'a>(events: &'a [Event], m: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.process.argv.iter().any(|a| a.contains(m)))
        .collect()
}
