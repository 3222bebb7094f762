//! The HTTP API of the real `causeway server` over a store ingested from the fixtures the real
//! agent recorded: incidents, traces, processes, events, errors, health. Expected answers are
//! derived from the fixture events themselves (ids, parents, flows), not written down.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod api_support;

use api_support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

const RS_ROOT: [&str; 2] = ["bash", "/tmp/causeway-fixture/revshell/run.sh"];

/// The fixture's own lineage: parent of each process id, from the events' `parent_id`.
fn parents(name: &str) -> BTreeMap<String, String> {
    events(name)
        .iter()
        .filter_map(|e| {
            let p = &e["process"];
            Some((
                p["id"].as_str()?.to_string(),
                p["parent_id"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn kind_process(name: &str, kind: &str) -> String {
    events(name)
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {name}"))["process"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn incident_list_filters_and_paging() {
    let s = Server::fixtures();
    let v = s.json("/api/v1/incidents");
    let items = v["items"].as_array().unwrap();
    assert_eq!(v["total"], 4, "one incident per fixture: {v}");
    let last: Vec<&str> = items
        .iter()
        .map(|i| i["last_seen"].as_str().unwrap())
        .collect();
    let mut sorted = last.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(last, sorted, "newest first");
    let rs = exec_id("revshell", &RS_ROOT);
    let inc = items
        .iter()
        .find(|i| i["root_process"]["id"] == rs)
        .unwrap();
    assert_eq!(inc["severity"], "critical");
    assert!(inc["first_seen"].as_str().unwrap().ends_with('Z'));
    let host = events("revshell")[0]["host"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(inc["hosts"], serde_json::json!([host]));

    let f = |q: &str| s.json(&format!("/api/v1/incidents?{q}"));
    let crit = f("severity=critical");
    assert!(crit["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["severity"] == "critical"));
    assert!(
        (crit["total"].as_u64().unwrap()) < 4,
        "the xss cat is medium"
    );
    let t = f("technique=T1003");
    assert!(t["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["techniques"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x.as_str().unwrap().starts_with("T1003"))));
    assert!(t["total"].as_u64().unwrap() >= 2);
    assert_eq!(f(&format!("host={host}"))["total"], 4);
    assert_eq!(f("host=no-such-host")["total"], 0);
    let by_q = f("q=CAT");
    assert!(ids(&by_q, "items").iter().all(|id| items
        .iter()
        .find(|i| i["id"] == id.as_str())
        .is_some_and(|i| i.to_string().to_lowercase().contains("cat"))));
    let page = f("limit=1&offset=1");
    assert_eq!(page["total"], 4);
    assert_eq!(ids(&page, "items"), [items[1]["id"].as_str().unwrap()]);
}

#[test]
fn bad_parameters_are_json_400() {
    let s = Server::fixtures();
    let inc = s.json("/api/v1/incidents")["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let long = format!("/api/v1/events?q={}", "x".repeat(2000));
    for q in [
        "/api/v1/incidents?limit=0",
        "/api/v1/incidents?limit=abc",
        "/api/v1/incidents?limit=1001",
        "/api/v1/incidents?offset=-1",
        "/api/v1/incidents?severity=huge",
        "/api/v1/incidents?min_score=NaN",
        "/api/v1/incidents?limit=1&limit=2",
        "/api/v1/events?kind=process.nope",
        "/api/v1/events?since=yesterday",
        "/api/v1/events?limit=100000",
        &format!("/api/v1/incidents/{inc}?max_nodes=1"),
        &format!("/api/v1/incidents/{inc}?collapse=maybe"),
        "/api/v1/processes/x/trace?direction=sideways",
        "/api/v1/processes/x/trace?depth=0",
        &long,
    ] {
        let r = s.get(q);
        assert_eq!(r.status, 400, "{q}: {}", r.text());
        let v = r.json();
        assert!(
            v["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{q}: {v}"
        );
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
}

#[test]
fn unknown_ids_routes_and_methods() {
    let s = Server::fixtures();
    for uri in [
        "/api/v1/incidents/nope",
        "/api/v1/processes/p-0-0-0",
        "/api/v1/processes/p-0-0-0/trace",
        "/api/v1/processes/proc:p-0-0-0@5",
        "/api/v1/processes/proc:p-0-0-0@5/trace",
        "/api/v1/nothing",
        "/api/v1/incidents/%FF%FE",
    ] {
        let r = s.get(uri);
        assert_eq!(r.status, 404, "{uri}: {}", r.text());
        assert!(r.json()["error"].is_string());
    }
    let r = raw(s.addr, "DELETE /api/v1/incidents HTTP/1.0\r\n\r\n");
    assert!(r.starts_with(b"HTTP/1.0 405") || r.starts_with(b"HTTP/1.1 405"));
}

#[test]
fn reverse_shell_incident_has_its_chain_and_every_node_id_works() {
    let s = Server::fixtures();
    let root = exec_id("revshell", &RS_ROOT);
    let connector = kind_process("revshell", "net.connect");
    let listener = kind_process("revshell", "net.accept");
    let v = incident_of(&s, &root);
    let titles: Vec<&str> = v["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Password hashes read"), "{titles:?}");
    let nodes = v["trace"]["nodes"].as_array().unwrap();
    let edges = v["trace"]["edges"].as_array().unwrap();
    let of = |pid: &str| -> Vec<&Value> {
        nodes
            .iter()
            .filter(|n| n["kind"] == "process" && n["data"]["id"] == pid)
            .collect()
    };
    assert!(
        of(&connector).iter().any(|n| n["flagged"] == true),
        "the connector is flagged"
    );
    assert!(!of(&listener).is_empty(), "the listener accepted the shell");
    assert!(
        nodes
            .iter()
            .any(|n| n["id"].as_str().unwrap().ends_with(":/etc/shadow")),
        "the password file"
    );
    // The commands the listener sent ran in the shell, after the flagged acts.
    for cmd in [
        ["id"].as_slice(),
        &["uname", "-a"],
        &["cat", "/etc/hostname"],
    ] {
        let pid = exec_id("revshell", cmd);
        assert!(!of(&pid).is_empty(), "{cmd:?} in the trace");
    }
    let present: HashSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    for e in edges {
        assert!(present.contains(e["source"].as_str().unwrap()), "{e}");
        assert!(present.contains(e["target"].as_str().unwrap()), "{e}");
    }
    // Every process node: its id names an image of the process in its data, and both the
    // process page and the trace accept that node id.
    let procs: Vec<&Value> = nodes.iter().filter(|n| n["kind"] == "process").collect();
    assert!(procs.len() >= 8);
    for n in procs {
        let nid = n["id"].as_str().unwrap();
        let pid = n["data"]["id"].as_str().unwrap();
        assert!(nid.starts_with(&format!("proc:{pid}@")), "{nid}");
        let p = s.json(&format!("/api/v1/processes/{}", enc(nid)));
        assert_eq!(p["process"]["id"], pid);
        let t = s.json(&format!(
            "/api/v1/processes/{}/trace?direction=backward&depth=2",
            enc(nid)
        ));
        assert_eq!(
            t["nodes"][0]["id"], nid,
            "the trace starts at the node itself"
        );
        let t = s.json(&format!(
            "/api/v1/processes/{}/trace?direction=forward&depth=2",
            enc(nid)
        ));
        assert!(ids(&t, "nodes").iter().any(|x| x == nid));
    }
}

/// What the API says about a process's lineage and flows, for comparing.
fn lineage(s: &Server, pid: &str) -> (Vec<String>, BTreeSet<String>, Vec<(String, String)>) {
    let p = s.json(&format!("/api/v1/processes/{}", enc(pid)));
    let flows = p["flows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["direction"].as_str().unwrap().to_string(),
                f["peer"]["id"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    (
        ids(&p, "ancestors"),
        ids(&p, "children").into_iter().collect(),
        flows,
    )
}

#[test]
fn processes_have_their_recorded_lineage_and_flow_peers_across_restarts() {
    let dir = scratch("restart");
    ingest(&dir, &["revshell", "dropper"]);
    let mut expected = BTreeMap::new();
    for name in ["revshell", "dropper"] {
        let par = parents(name);
        for id in par.keys() {
            // Ancestors, parent first, as far as the fixture's own tree goes.
            let mut anc = Vec::new();
            let mut cur = par.get(id);
            while let Some(p) = cur.filter(|p| par.contains_key(*p)) {
                anc.push(p.clone());
                cur = par.get(p);
            }
            let kids: BTreeSet<String> = par
                .iter()
                .filter(|(c, p)| *p == id && *c != id)
                .map(|(c, _)| c.clone())
                .collect();
            expected.insert(id.clone(), (anc, kids));
        }
    }
    let flows_of = |s: &Server, name: &str| {
        let (c, l) = (
            kind_process(name, "net.connect"),
            kind_process(name, "net.accept"),
        );
        let (_, _, cf) = lineage(s, &c);
        let (_, _, lf) = lineage(s, &l);
        assert!(
            cf.contains(&("outbound".into(), l.clone())),
            "{name}: {cf:?}"
        );
        assert!(
            lf.contains(&("inbound".into(), c.clone())),
            "{name}: {lf:?}"
        );
        (cf, lf)
    };
    let mut answers = Vec::new();
    for round in 0..2 {
        // A new server each round: nothing comes from the RAM of the ingesting process.
        let s = Server::start(&dir, &[]);
        let mut got = BTreeMap::new();
        for (id, (anc, kids)) in &expected {
            let (a, k, f) = lineage(&s, id);
            assert_eq!(&a, anc, "round {round}: ancestors of {id}");
            assert_eq!(&k, kids, "round {round}: children of {id}");
            got.insert(id.clone(), (a, k, f));
        }
        let flows = (flows_of(&s, "revshell"), flows_of(&s, "dropper"));
        answers.push((got, flows));
        s.stop();
    }
    assert!(answers[0] == answers[1], "the same answers after a restart");
    assert!(expected.values().any(|(a, _)| a.len() >= 2));
}

#[test]
fn dropper_chain_is_one_incident_from_download_to_child() {
    let s = Server::fixtures();
    let root = exec_id("dropper", &["bash", "/tmp/causeway-fixture/dropper/run.sh"]);
    let v = incident_of(&s, &root);
    let nodes = v["trace"]["nodes"].as_array().unwrap();
    let has = |pid: &str| nodes.iter().any(|n| n["data"]["id"] == pid);
    for argv in [
        ["curl", "-s"].as_slice(),
        &["chmod", "+x"],
        &["/bin/sh", "/tmp/update.sh"],
        &["uname", "-a"],
        &["id"],
    ] {
        assert!(has(&exec_id("dropper", argv)), "{argv:?}");
    }
    let ok = nodes
        .iter()
        .any(|n| n["id"].as_str().unwrap().ends_with(":/tmp/update.sh"));
    assert!(ok, "the dropped file");
}

#[test]
fn build_incident_is_aggregated_around_the_flagged_step() {
    let s = Server::fixtures();
    let root = exec_id("build", &["bash", "/tmp/causeway-fixture/build/run.sh"]);
    let cat = exec_id("build", &["cat", "/etc/shadow"]);
    let v = incident_of(&s, &root);
    let t = &v["trace"];
    let nodes = t["nodes"].as_array().unwrap();
    assert!(nodes.len() <= 400, "{} nodes", nodes.len());
    assert!(
        t["aggregated"]["original_nodes"].as_u64().unwrap() > 5000,
        "{}",
        t["aggregated"]
    );
    assert!(nodes
        .iter()
        .any(|n| n["data"]["id"] == cat.as_str() && n["flagged"] == true));
    let groups: Vec<&Value> = nodes.iter().filter(|n| n["kind"] == "group").collect();
    assert!(groups
        .iter()
        .any(|g| g["label"].as_str().unwrap().contains("more")));
    let present: HashSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    for e in t["edges"].as_array().unwrap() {
        assert!(present.contains(e["source"].as_str().unwrap()));
        assert!(present.contains(e["target"].as_str().unwrap()));
    }
    let id = v["id"].as_str().unwrap();
    let all = s.json(&format!(
        "/api/v1/incidents/{id}?max_nodes=20000&collapse=false"
    ));
    assert!(all["trace"]["nodes"].as_array().unwrap().len() > 5000);
}

#[test]
fn events_search() {
    let s = Server::fixtures();
    let all: Vec<Value> = ALL.iter().flat_map(|n| events(n)).collect();
    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|e| f(e)).count();
    let v = s.json("/api/v1/events?kind=net.connect,net.accept&limit=10000");
    let want = count(&|e| e["kind"] == "net.connect" || e["kind"] == "net.accept");
    assert_eq!(v.as_array().unwrap().len(), want);
    let v = s.json("/api/v1/events?q=/etc/shadow&limit=10000");
    let got = v.as_array().unwrap();
    let reads = count(&|e| e["file"]["path"] == "/etc/shadow");
    assert!(
        got.iter()
            .filter(|e| e["file"]["path"] == "/etc/shadow")
            .count()
            == reads
            && reads >= 3
    );
    assert!(got.iter().all(|e| e.to_string().contains("/etc/shadow")));
    let p = kind_process("revshell", "net.connect");
    let v = s.json(&format!("/api/v1/events?process={p}&limit=10000"));
    assert_eq!(
        v.as_array().unwrap().len(),
        count(&|e| e["process"]["id"] == p.as_str())
    );
    let times: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["time"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    let since = events("dropper")[0]["time"].as_str().unwrap().to_string();
    let v = s.json(&format!("/api/v1/events?since={since}&limit=5"));
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 5);
    assert!(a
        .iter()
        .all(|e| e["time"].as_str().unwrap() >= since.as_str()));
}

#[test]
fn health_rules_policies_metrics_headers() {
    let s = Server::fixtures();
    let v = s.json("/api/v1/health");
    assert_eq!(v["incidents"], 4);
    assert_eq!(v["status"], "ok");
    let rules = s.json("/api/v1/rules");
    let rule_ids: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(rule_ids.len() > 20);
    let inc = incident_of(&s, &exec_id("revshell", &RS_ROOT));
    for f in inc["flags"].as_array().unwrap() {
        assert!(rule_ids.contains(&f["rule_id"].as_str().unwrap()), "{f}");
    }
    assert!(s.json("/api/v1/policies").is_array());
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    assert!(m.text().contains("causeway_incidents 4"), "{}", m.text());
    let r = s.get("/");
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        s.get("/api/v1/health").header("x-content-type-options"),
        Some("nosniff")
    );
}
