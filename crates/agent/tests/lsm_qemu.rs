//! The two enforcement mechanisms, on real kernels: on this machine's kernel (which refuses
//! BPF-LSM) a denied exec falls back to kill-at-exec and says so; on Debian's stock kernel,
//! booted under qemu (TCG), the same policy is enforced by BPF-LSM and the exec fails with
//! EPERM. Both run the `enforce_check` example that `cargo test` builds.

use std::path::PathBuf;
use std::process::Command;

fn example() -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/enforce_check
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    profile_dir.join("examples/enforce_check")
}

fn must_run(test: &str, need: &str) -> bool {
    if std::env::var("CI").as_deref() == Ok("true") {
        return true;
    }
    eprintln!("SKIP {test}: needs {need}");
    false
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn this_kernel_enforces_with_what_it_offers() {
    if !is_root() && !must_run("this_kernel_enforces_with_what_it_offers", "root") {
        return;
    }
    // Whichever mechanism this kernel offers, the check asserts its outcome (126: EPERM from
    // BPF-LSM; 137: SIGKILL at exec). This project's VMs refuse BPF-LSM, so there the agent
    // must say it fell back, naming the load error.
    let out = Command::new(example())
        .args(["--expect", "auto"])
        .output()
        .expect("run enforce_check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("ENFORCE-CHECK PASS"),
        "{stdout}\n{stderr}"
    );
    if stdout.contains("mechanism=bpf_send_signal") {
        assert!(
            stdout.contains("BPF-LSM unavailable"),
            "fallback must be reported: {stdout}"
        );
        assert!(stdout.contains("action=killed rc=137"), "{stdout}");
    }
}

#[test]
fn stock_debian_kernel_denies_with_bpf_lsm() {
    let have_qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let can_run = is_root() && have_qemu;
    if !can_run
        && !must_run(
            "stock_debian_kernel_denies_with_bpf_lsm",
            "root and qemu-system-x86",
        )
    {
        return;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/qemu/lsm.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(example())
        .output()
        .expect("run tests/qemu/lsm.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && stdout.contains("ENFORCE-CHECK PASS mechanism=bpf_lsm action=blocked rc=126"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
