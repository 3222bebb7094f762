//! `enforce_check --expect bpf_lsm|bpf_send_signal|auto`: load the agent, put a shell under an
//! enforced policy that allows the shell and `sleep` but not a copy of `true`, and check that
//! the denied exec is stopped by the mechanism this kernel offers: refused with EPERM by
//! BPF-LSM (the shell reports exit status 126) or killed at exec (status 137). Prints
//! `ENFORCE-CHECK PASS …` or `ENFORCE-CHECK FAIL …`. Used on this machine and inside a qemu
//! guest running a stock Debian kernel (tests/qemu/lsm.sh).

use causeway_agent::{AgentConfig, Mode, Ready, Stats};
use causeway_model::{Event, Kind};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn main() {
    match check() {
        Ok(msg) => println!("ENFORCE-CHECK PASS {msg}"),
        Err(msg) => {
            println!("ENFORCE-CHECK FAIL {msg}");
            std::process::exit(1);
        }
    }
}

fn file_id(path: &str) -> Result<(u32, u64), String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("{path}: {e}"))?;
    let m = std::fs::metadata(&real).map_err(|e| format!("{path}: {e}"))?;
    Ok((causeway_agent::sensitive::kernel_dev(m.dev()), m.ino()))
}

fn check() -> Result<String, String> {
    let args: Vec<String> = std::env::args().collect();
    let expect = args
        .iter()
        .position(|a| a == "--expect")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .ok_or("usage: enforce_check --expect bpf_lsm|bpf_send_signal|auto")?;
    let stop = Arc::new(AtomicBool::new(false));
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let (s2, e2) = (Arc::clone(&stop), Arc::clone(&events));
    let agent = std::thread::spawn(move || {
        let cfg = AgentConfig {
            snapshot: false,
            ..Default::default()
        };
        let mut sink = |e: Event| e2.lock().map(|mut v| v.push(e)).is_ok();
        let mut ready = |r: Ready| {
            let _ = tx.send((r.policy, r.enforcement));
        };
        if let Err(e) = causeway_agent::run(&cfg, &s2, &Stats::default(), &mut sink, &mut ready) {
            eprintln!("agent: {e}");
        }
    });
    let (maps, mechanism) = rx.recv().map_err(|_| "agent failed to start")?;
    let maps = maps.ok_or("no enforcement maps")?;
    let mech = mechanism.name();
    // `auto`: whichever mechanism the kernel offers, its outcome must be the right one.
    let expect = if expect == "auto" {
        mech.to_string()
    } else {
        expect
    };
    if mech != expect {
        return Err(format!(
            "mechanism {mech}, expected {expect} ({mechanism:?})"
        ));
    }
    for exe in ["/bin/sh", "/bin/sleep"] {
        let (dev, ino) = file_id(exe)?;
        maps.allow(42, dev, ino).map_err(|e| e.to_string())?;
    }
    let dir = std::env::temp_dir().join(format!("cw-enforce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let denied = dir.join("denied");
    std::fs::copy("/bin/true", &denied).map_err(|e| format!("copy: {e}"))?;
    let child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("sleep 1; {}; echo rc=$?", denied.display()))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    maps.scope_process(child.id(), 42, Mode::Enforce)
        .map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let _ = agent.join();
    let _ = std::fs::remove_dir_all(&dir);

    let want_rc = if expect == "bpf_lsm" {
        "rc=126"
    } else {
        "rc=137"
    };
    if stdout != want_rc {
        return Err(format!("shell printed {stdout:?}, expected {want_rc}"));
    }
    let events = events.lock().map_err(|_| "poisoned")?;
    let decision = events
        .iter()
        .filter(|e| e.kind == Kind::ProcessExec)
        .find_map(|e| e.enforcement.clone().filter(|x| x.policy_id == 42))
        .ok_or("no enforcement event")?;
    let want_action = if expect == "bpf_lsm" {
        "blocked"
    } else {
        "killed"
    };
    if decision.action != want_action || decision.mechanism != expect {
        return Err(format!("decision {decision:?}"));
    }
    let fallback = match &mechanism {
        causeway_agent::Enforcement::KillAtExec { lsm_error } => {
            format!(" (BPF-LSM unavailable: {lsm_error})")
        }
        causeway_agent::Enforcement::LsmDeny => String::new(),
    };
    Ok(format!(
        "mechanism={mech} action={} {stdout}{fallback}",
        decision.action
    ))
}
