//! Workload policies end to end on the real agent: learn a policy from a run of a small
//! service (a child process and a loopback connection), re-run it with zero deviations, run
//! it with an extra child and a new connection and get exactly those deviations; then put
//! the policy in force and see the outside process killed before it runs a single
//! instruction (its marker file is never written) while the allowed ones run, the decision
//! recorded on the exec event and raised as a flag of an incident.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::up::{free_port, get, start_up_with, try_wait, Up};
use support::{bpf_available, marker};

fn causeway(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(args)
        .output()
        .expect("causeway");
    assert!(
        out.status.success(),
        "causeway {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One run of the service: its root (our own executable: a copy of sh) starts a child that
/// connects to `port`, then runs `extra`.
fn run_service(root: &Path, port: u16, extra: &str, m: &str) -> std::process::ExitStatus {
    let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("listen");
    let script = format!(
        "bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}; echo hi >&3'; sleep 0.1; {extra} exit 0"
    );
    let mut child = Command::new(root)
        .arg("-c")
        .arg(script)
        .arg(m)
        .spawn()
        .expect("service");
    let _ = l.accept();
    child.wait().expect("wait")
}

fn deviations(data: &Path, policy: &Path, since: &str) -> Vec<serde_json::Value> {
    let (d, p) = (data.to_string_lossy(), policy.to_string_lossy());
    let out = causeway(&[
        "policy",
        "diff",
        "--data-dir",
        &d,
        &p,
        "--since",
        since,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["deviations"].as_array().cloned().unwrap_or_default()
}

/// The first flag of `rule` in any incident, waiting for it to appear.
fn incident_flag(up: &Up, rule: &str) -> Option<serde_json::Value> {
    try_wait(60, || {
        let list = get(&up.base, "/api/v1/incidents?limit=100");
        list["items"].as_array()?.iter().find_map(|i| {
            let d = get(
                &up.base,
                &format!("/api/v1/incidents/{}", i["id"].as_str()?),
            );
            d["flags"]
                .as_array()?
                .iter()
                .find(|f| f["rule_id"] == rule)
                .cloned()
        })
    })
}

#[test]
fn learn_diff_and_enforce_a_workload_policy() {
    if !bpf_available("learn_diff_and_enforce_a_workload_policy") {
        return;
    }
    let work = tempfile::tempdir().expect("tempdir");
    let root = work.path().join("svc");
    std::fs::copy("/bin/sh", &root).expect("copy sh");
    let data = work.path().join("data");
    let (port, other_port) = (free_port(), free_port());

    // Record three runs with `causeway up`: one to learn from, the same again, a deviant one.
    let up = start_up_with(&[], Some(&data));
    assert!(run_service(&root, port, "", &marker("learn")).success());
    std::thread::sleep(Duration::from_secs(2));
    let t1 = causeway_model::timefmt::Timestamp::now().to_rfc3339();
    assert!(run_service(&root, port, "", &marker("again")).success());
    let t2 = causeway_model::timefmt::Timestamp::now().to_rfc3339();
    let deviant = "/usr/bin/id >/dev/null;";
    assert!(run_service(&root, other_port, deviant, &marker("deviant")).success());
    // Wait until the last run is stored (its exec of id is queryable), then stop.
    try_wait(60, || {
        let evs = get(
            &up.base,
            "/api/v1/events?kind=process.exec&q=/usr/bin/id&limit=5",
        );
        (!evs.as_array()?.is_empty()).then_some(())
    })
    .expect("events stored");
    std::thread::sleep(Duration::from_secs(2));
    drop(up);

    let policy = work.path().join("svc.yaml");
    let (d, r) = (data.to_string_lossy(), root.to_string_lossy());
    let yaml = causeway(&[
        "policy",
        "learn",
        "--data-dir",
        &d,
        "--exe",
        &r,
        "--until",
        &t1,
        "--name",
        "svc",
    ]);
    std::fs::write(&policy, &yaml).expect("write policy");
    causeway(&["policy", "validate", &policy.to_string_lossy()]);
    assert!(yaml.contains("bash") && yaml.contains("sleep"), "{yaml}");
    assert!(yaml.contains(&format!("port: {port}")), "{yaml}");

    // The same workload again: nothing deviates.
    let again: Vec<_> = deviations(&data, &policy, &t1)
        .into_iter()
        .filter(|d| d["time"].as_str() < Some(t2.as_str()))
        .collect();
    assert!(again.is_empty(), "{again:#?}");
    // The deviant run: exactly the extra child and the new connection.
    let devs = deviations(&data, &policy, &t2);
    let kinds: Vec<&str> = devs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(devs.len(), 2, "{devs:#?}");
    assert!(
        kinds.contains(&"process") && kinds.contains(&"egress"),
        "{kinds:?}"
    );

    // Enforce: the same policy, in force. An executable outside it is killed at exec.
    let enforced = work.path().join("svc-enforce.yaml");
    std::fs::write(&enforced, yaml.replace("mode: audit", "mode: enforce")).expect("write");
    let up = start_up_with(&["--policy", &enforced.to_string_lossy()], None);
    let touched = work.path().join("touched");
    let extra = format!("touch {};", touched.display());
    let st = run_service(&root, port, &extra, &marker("enforced"));
    assert!(st.success(), "the allowed part of the workload ran");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!touched.exists(), "a process outside the policy ran");

    // The deviation is a flag of the incident of its causal chain (whose title may name a
    // more severe flag of the same chain).
    let flag = incident_flag(&up, "CW-POLICY-EXEC")
        .expect("the policy deviation is a flag of an incident");
    assert!(
        flag["object"]
            .as_str()
            .is_some_and(|o| o.ends_with("touch")),
        "{flag}"
    );
    let title = flag["title"].as_str().unwrap_or("");
    assert!(title.contains("outside workload policy svc"), "{flag}");

    // A connection the policy does not allow is a live deviation too (checked in user space:
    // the kernel enforces executables only).
    assert!(run_service(&root, other_port, "", &marker("egress")).success());
    let dev = incident_flag(&up, "CW-POLICY-DEVIATION")
        .expect("the new connection is a flag of an incident");
    assert!(
        dev["object"]
            .as_str()
            .is_some_and(|o| o.contains(&other_port.to_string())),
        "{dev}"
    );

    // The exec event itself carries the decision (stored once the graph's reorder window has
    // passed it).
    let killed = try_wait(60, || {
        let evs = get(
            &up.base,
            "/api/v1/events?kind=process.exec&q=touch&limit=20",
        );
        evs.as_array()?
            .iter()
            .find(|e| e["enforcement"]["action"] == "killed")
            .cloned()
    })
    .expect("enforcement event");
    assert_eq!(killed["enforcement"]["policy"], "svc");
    assert_eq!(killed["enforcement"]["mechanism"], "bpf_send_signal");
}
