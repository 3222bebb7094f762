//! Kill-at-exec enforcement on real eBPF: a process under an enforced policy that execs an
//! executable outside the policy dies before its first instruction (the marker file it
//! would write never exists), allowed executables run untouched, and the decision is an
//! event. Audit mode reports the same exec without acting.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use causeway_agent::{AgentConfig, Mode, PolicyMaps, Ready, Stats};
use causeway_model::{Event, Kind};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn bpf_available(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let ok =
        unsafe { libc::geteuid() } == 0 && std::path::Path::new("/sys/kernel/btf/vmlinux").exists();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: needs root and BPF under CI"
        );
        eprintln!("SKIP {test}: needs root and BPF");
    }
    ok
}

struct InProcessAgent {
    stop: Arc<AtomicBool>,
    events: Arc<Mutex<Vec<Event>>>,
    thread: std::thread::JoinHandle<()>,
    policy: PolicyMaps,
}

fn start() -> InProcessAgent {
    let stop = Arc::new(AtomicBool::new(false));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let (s2, e2) = (Arc::clone(&stop), Arc::clone(&events));
    let thread = std::thread::spawn(move || {
        let cfg = AgentConfig {
            snapshot: false,
            ..Default::default()
        };
        let stats = Stats::default();
        let mut sink = |e: Event| {
            e2.lock().unwrap().push(e);
            true
        };
        let mut ready = |r: Ready| {
            let _ = tx.send(r.policy);
        };
        causeway_agent::run(&cfg, &s2, &stats, &mut sink, &mut ready).expect("agent run");
    });
    let policy = rx.recv().expect("agent ready").expect("policy maps");
    InProcessAgent {
        stop,
        events,
        thread,
        policy,
    }
}

impl InProcessAgent {
    fn finish(self) -> Vec<Event> {
        std::thread::sleep(std::time::Duration::from_millis(300));
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("agent thread");
        Arc::try_unwrap(self.events)
            .expect("sole owner")
            .into_inner()
            .unwrap()
    }
}

fn file_id(path: &str) -> (u32, u64) {
    let m = std::fs::metadata(std::fs::canonicalize(path).unwrap()).unwrap();
    (causeway_agent::sensitive::kernel_dev(m.dev()), m.ino())
}

fn run_workload(
    agent: &InProcessAgent,
    policy_id: u32,
    mode: Mode,
    marker: &std::path::Path,
) -> (u32, std::process::ExitStatus) {
    // The shell sleeps first so that it is in scope before it execs touch.
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("sleep 0.3; touch {}; exit 0", marker.display()))
        .spawn()
        .unwrap();
    agent
        .policy
        .scope_process(child.id(), policy_id, mode)
        .unwrap();
    let status = child.wait().unwrap();
    (child.id(), status)
}

#[test]
fn enforce_kills_before_first_instruction_and_audit_only_reports() {
    if !bpf_available("enforce_kills_before_first_instruction_and_audit_only_reports") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let agent = start();
    for (policy, allowed) in [
        (7u32, ["/bin/sh", "/bin/sleep"]),
        (8, ["/bin/sh", "/bin/sleep"]),
    ] {
        for exe in allowed {
            let (dev, ino) = file_id(exe);
            agent.policy.allow(policy, dev, ino).unwrap();
        }
    }
    // PID 1 and the agent itself are refused outright.
    assert!(agent.policy.scope_process(1, 7, Mode::Enforce).is_err());
    assert!(agent
        .policy
        .scope_process(std::process::id(), 7, Mode::Enforce)
        .is_err());

    let enforced = dir.path().join("enforced-marker");
    let (sh_enf, st) = run_workload(&agent, 7, Mode::Enforce, &enforced);
    assert!(st.success());
    let audited = dir.path().join("audited-marker");
    let (sh_aud, st) = run_workload(&agent, 8, Mode::Audit, &audited);
    assert!(st.success());
    let events = agent.finish();

    // Enforce: touch never ran a single instruction, so its file does not exist.
    assert!(!enforced.exists(), "the denied process ran");
    let touch = |sh: u32| {
        events
            .iter()
            .find(|e| {
                e.kind == Kind::ProcessExec
                    && e.process.ppid == sh
                    && e.process.argv.first().is_some_and(|a| a == "touch")
            })
            .unwrap_or_else(|| panic!("exec of touch under {sh}"))
            .clone()
    };
    let t = touch(sh_enf);
    let enf = t
        .enforcement
        .clone()
        .expect("enforcement on the exec event");
    assert_eq!(
        (enf.policy_id, enf.action.as_str(), enf.mechanism.as_str()),
        (7, "killed", "bpf_send_signal")
    );
    let exit = events
        .iter()
        .find(|e| e.kind == Kind::ProcessExit && e.process.id == t.process.id)
        .expect("exit of the killed process");
    assert_eq!(exit.exit.as_ref().and_then(|x| x.signal), Some(9));
    // The allowed sleep ran untouched, in the same policy.
    let sleep = events
        .iter()
        .find(|e| {
            e.kind == Kind::ProcessExec
                && e.process.ppid == sh_enf
                && e.process.argv.first().is_some_and(|a| a == "sleep")
        })
        .expect("sleep exec");
    assert!(sleep.enforcement.is_none());
    let sleep_exit = events
        .iter()
        .find(|e| e.kind == Kind::ProcessExit && e.process.id == sleep.process.id)
        .expect("sleep exit");
    assert_eq!(sleep_exit.exit.as_ref().and_then(|x| x.code), Some(0));

    // Audit: reported, not acted on.
    assert!(audited.exists(), "audit mode must not kill");
    let a = touch(sh_aud)
        .enforcement
        .expect("audit decision is an event");
    assert_eq!((a.policy_id, a.action.as_str()), (8, "audited"));
}

#[test]
fn workload_selected_by_its_root_executable_is_enforced_from_its_first_exec() {
    if !bpf_available("workload_selected_by_its_root_executable_is_enforced_from_its_first_exec") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The workload's root is its own executable (a copy of sh: its own inode).
    let root = dir.path().join("svc-root");
    std::fs::copy("/bin/sh", &root).unwrap();
    let agent = start();
    let applied = causeway_agent::enforce::apply(
        &agent.policy,
        &causeway_agent::enforce::ExecPolicy {
            id: 9,
            mode: Mode::Enforce,
            root_executables: vec![root.to_string_lossy().into_owned()],
            cgroups: vec![],
            allowed: vec!["/bin/true".into(), "/nonexistent/*/tool".into()],
        },
    )
    .unwrap();
    assert_eq!(applied.roots, 1);
    assert_eq!(applied.unresolved, vec!["/nonexistent/*/tool".to_string()]);
    // No sleep, no race: the scope is taken in the kernel at the root's own exec.
    let marker = dir.path().join("marker");
    let st = std::process::Command::new(&root)
        .arg("-c")
        .arg(format!("/bin/true && touch {}; exit 0", marker.display()))
        .status()
        .unwrap();
    assert!(st.success());
    let events = agent.finish();
    assert!(!marker.exists(), "touch ran under the policy");
    let killed = events
        .iter()
        .filter(|e| e.kind == Kind::ProcessExec)
        .filter_map(|e| {
            e.enforcement.as_ref().map(|x| {
                (
                    e.process.argv.first().cloned(),
                    x.action.clone(),
                    x.policy_id,
                )
            })
        })
        .collect::<Vec<_>>();
    assert_eq!(
        killed,
        vec![(Some("touch".to_string()), "killed".to_string(), 9)],
        "{killed:?}"
    );
}
