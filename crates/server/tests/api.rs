//! API tests against the real router with the demo MemoryBackend (no socket).
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use axum::http::StatusCode;
use causeway_server::memory::synthetic;
use causeway_server::{router, AppState, MemoryBackend};
use common::*;
use serde_json::Value;
use std::sync::Arc;

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn incident_list_filters_and_paging() {
    let app = demo_app();
    let r = get(&app, "/api/v1/incidents").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["total"], 3);
    // Newest first.
    assert_eq!(
        ids(&v, "items"),
        ["inc-backup", "inc-sudo", "inc-ssh-payload"]
    );
    let first = &v["items"][2];
    assert_eq!(first["severity"], "critical");
    assert_eq!(first["root_process"]["pid"], 1200);
    assert_eq!(first["hosts"], serde_json::json!(["web-1", "ws-2"]));
    assert!(first["first_seen"].as_str().unwrap().ends_with('Z'));

    let f = |q: &str| format!("/api/v1/incidents?{q}");
    let v = get(&app, &f("severity=high")).await.json();
    assert_eq!(ids(&v, "items"), ["inc-ssh-payload"]);
    let v = get(&app, &f("min_score=40")).await.json();
    assert_eq!(v["total"], 2);
    let v = get(&app, &f("technique=T1003")).await.json();
    assert_eq!(ids(&v, "items"), ["inc-ssh-payload"]);
    // The sudo incident reaches ws-2 through the SSH client that started the session.
    let v = get(&app, &f("host=web-1")).await.json();
    assert_eq!(ids(&v, "items"), ["inc-sudo", "inc-ssh-payload"]);
    let v = get(&app, &f("q=ARCHIVE")).await.json();
    assert_eq!(ids(&v, "items"), ["inc-backup"]);
    let v = get(&app, &f("limit=1&offset=1")).await.json();
    assert_eq!(ids(&v, "items"), ["inc-sudo"]);
    assert_eq!(v["total"], 3);
}

#[tokio::test]
async fn bad_parameters_are_json_400() {
    let app = demo_app();
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
        "/api/v1/incidents/inc-ssh-payload?max_nodes=1",
        "/api/v1/processes/x/trace?direction=sideways",
        "/api/v1/processes/x/trace?depth=0",
        "/api/v1/incidents/inc-ssh-payload?collapse=maybe",
    ] {
        let r = get(&app, q).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{q}");
        let v = r.json();
        assert!(
            v["error"].as_str().is_some_and(|s| !s.is_empty()),
            "{q}: {v}"
        );
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let long = "x".repeat(2000);
    let r = get(&app, &format!("/api/v1/events?q={long}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unknown_ids_routes_and_methods() {
    let app = demo_app();
    for uri in [
        "/api/v1/incidents/nope",
        "/api/v1/processes/p-0-0-0",
        "/api/v1/processes/p-0-0-0/trace",
        "/api/v1/nothing",
        "/api/v1/incidents/%FF%FE",
    ] {
        let r = get(&app, uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(r.json()["error"].is_string());
    }
    let req = axum::http::Request::builder()
        .method("DELETE")
        .uri("/api/v1/incidents")
        .body(axum::body::Body::empty())
        .unwrap();
    let res = tower::ServiceExt::oneshot(app, req).await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn incident_trace_has_the_attack_chain() {
    let app = demo_app();
    let r = get(&app, "/api/v1/incidents/inc-ssh-payload").await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    let nodes = v["trace"]["nodes"].as_array().unwrap();
    let edges = v["trace"]["edges"].as_array().unwrap();
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).cloned();
    let has_edge = |s: &str, t: &str, k: &str| {
        edges
            .iter()
            .any(|e| e["source"] == s && e["target"] == t && e["kind"] == k)
    };
    let payload_file = "file:1111111111111111aaaa:/tmp/.x/payload";
    // Entry: a client on another host connected to sshd.
    assert!(has_edge(&pid("ws-2", 4000), &pid("web-1", 500), "connect"));
    assert!(has_edge(&pid("web-1", 500), &pid("web-1", 1200), "fork"));
    assert!(has_edge(&pid("web-1", 1200), &pid("web-1", 1201), "fork"));
    assert!(has_edge(&pid("web-1", 1202), payload_file, "write"));
    assert!(has_edge(payload_file, &pid("web-1", 1204), "exec"));
    assert!(has_edge(
        "file:1111111111111111aaaa:/etc/shadow",
        &pid("web-1", 1204),
        "read"
    ));
    assert!(has_edge(&pid("web-1", 1204), &pid("web-1", 1205), "fork"));
    let payload = node(&pid("web-1", 1204)).unwrap();
    assert_eq!(payload["flagged"], true);
    assert_eq!(payload["label"], "payload (1204)");
    assert!(payload["techniques"]
        .as_array()
        .unwrap()
        .contains(&"T1003.008".into()));
    assert_eq!(payload["data"]["argv"][1], "--quiet");
    assert_eq!(node(payload_file).unwrap()["flagged"], true);
    assert_eq!(
        node("endpoint:tcp:203.0.113.9:4444").unwrap()["flagged"],
        true
    );
    assert_eq!(node(&pid("web-1", 1201)).unwrap()["flagged"], false);
    // The XSS argv comes back as data, unchanged.
    let xss = node(&pid("web-1", 1205)).unwrap();
    assert_eq!(xss["data"]["argv"][2], "<img src=x onerror=alert(1)>");
    assert_eq!(v["flags"].as_array().unwrap().len(), 5);
    // The shell loop's eight sleeps: three shown, five grouped.
    let group = nodes.iter().find(|n| n["kind"] == "group").unwrap();
    assert_eq!(group["label"], "5 more: sleep");
    assert_eq!(group["data"]["count"], 5);
    assert_eq!(group["data"]["parent"], pid("web-1", 1201).as_str());
    let v = get(&app, "/api/v1/incidents/inc-ssh-payload?collapse=false")
        .await
        .json();
    assert!(v["trace"].get("aggregated").is_none());
}

#[tokio::test]
async fn events_search() {
    let app = demo_app();
    let v = get(&app, "/api/v1/events?kind=net.connect,net.accept")
        .await
        .json();
    assert_eq!(v.as_array().unwrap().len(), 4);
    let v = get(&app, "/api/v1/events?q=/etc/shadow").await.json();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["file"]["sensitive"], true);
    let p = pid("web-1", 1204);
    let v = get(&app, &format!("/api/v1/events?process={p}"))
        .await
        .json();
    assert_eq!(v.as_array().unwrap().len(), 3);
    let v = get(
        &app,
        "/api/v1/events?host=ws-2&since=2026-11-26T17:00:00Z&limit=2",
    )
    .await
    .json();
    let a = v.as_array().unwrap();
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|e| e["host"]["name"] == "ws-2"));
    let v = get(&app, "/api/v1/events?until=2026-11-26T16:45:00Z")
        .await
        .json();
    assert_eq!(v.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn process_detail_with_cross_host_peer() {
    let app = demo_app();
    let v = get(&app, &format!("/api/v1/processes/{}", pid("web-1", 500)))
        .await
        .json();
    assert_eq!(v["process"]["exe"], "/usr/sbin/sshd");
    assert_eq!(ids(&v, "ancestors"), [pid("web-1", 1)]);
    assert_eq!(ids(&v, "children"), [pid("web-1", 1200)]);
    let flow = &v["flows"][0];
    assert_eq!(flow["direction"], "inbound");
    assert_eq!(flow["peer"]["id"], pid("ws-2", 4000));
    assert_eq!(flow["peer"]["host"], "ws-2");
    let v = get(&app, &format!("/api/v1/processes/{}", pid("web-1", 1204)))
        .await
        .json();
    assert_eq!(v["ancestors"].as_array().unwrap().len(), 4);
    assert_eq!(v["files"][0]["path"], "/etc/shadow");
    assert!(v["flows"][0]["peer"].is_null());
    let v = get(&app, &format!("/api/v1/processes/{}", pid("web-1", 1205)))
        .await
        .json();
    assert_eq!(v["exit"]["signal"], 9);
}

#[tokio::test]
async fn process_trace_both_ways() {
    let app = demo_app();
    let p = pid("web-1", 1204);
    let back = |d: u32| format!("/api/v1/processes/{p}/trace?direction=backward&depth={d}");
    let n = ids(&get(&app, &back(1)).await.json(), "nodes");
    assert!(n.contains(&pid("web-1", 1201)), "parent");
    assert!(n.contains(&"file:1111111111111111aaaa:/tmp/.x/payload".to_string()));
    assert!(
        !n.contains(&pid("web-1", 1202)),
        "depth 1 stops before the writer"
    );
    let n = ids(&get(&app, &back(2)).await.json(), "nodes");
    assert!(
        n.contains(&pid("web-1", 1202)),
        "the writer of the executed file"
    );
    let v = get(
        &app,
        &format!(
            "/api/v1/processes/{}/trace?direction=forward&depth=64",
            pid("ws-2", 4000)
        ),
    )
    .await
    .json();
    let n = ids(&v, "nodes");
    assert!(
        n.contains(&pid("web-1", 1205)),
        "forward across hosts to the payload's shell"
    );
}

#[tokio::test]
async fn health_rules_policies_metrics() {
    let app = demo_app();
    let v = get(&app, "/api/v1/health").await.json();
    assert_eq!(v["events_seen"], 39);
    assert_eq!(v["incidents"], 3);
    assert_eq!(v["agents"].as_array().unwrap().len(), 2);
    let v = get(&app, "/api/v1/rules").await.json();
    assert_eq!(v[0]["id"], "download-to-tmp");
    let v = get(&app, "/api/v1/policies").await.json();
    assert_eq!(v, serde_json::json!([]));
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    let t = r.text();
    assert!(t.contains("causeway_events_seen_total 39"), "{t}");
    assert!(
        t.contains("causeway_agent_events_seen_total{host=\"web-1\"}"),
        "{t}"
    );
    assert!(t.contains("causeway_incidents 3"));
}

#[tokio::test]
async fn security_headers_and_ui_page() {
    let app = demo_app();
    let r = get(&app, "/").await;
    assert_eq!(r.status, StatusCode::OK);
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    if !causeway_server::http::ui_embedded() {
        assert!(r.text().contains("npm ci"));
    }
    let r = get(&app, "/api/v1/health").await;
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn large_incident_is_aggregated() {
    let (events, incidents) = synthetic::workload(10, 5000);
    let app = router(AppState::new(
        Arc::new(MemoryBackend::new(events, incidents)),
        None,
    ));
    let v = get(&app, "/api/v1/incidents/inc-big").await.json();
    let t = &v["trace"];
    let nodes = t["nodes"].as_array().unwrap();
    assert!(nodes.len() <= 400, "{} nodes", nodes.len());
    assert!(t["aggregated"]["original_nodes"].as_u64().unwrap() > 5000);
    let flagged: Vec<&Value> = nodes.iter().filter(|n| n["flagged"] == true).collect();
    assert_eq!(flagged.len(), 2, "the process and the file it read");
    assert!(nodes
        .iter()
        .any(|n| n["id"] == "file:00000000000b1d01ffff:/etc/shadow"));
    let groups: Vec<&Value> = nodes.iter().filter(|n| n["kind"] == "group").collect();
    assert!(!groups.is_empty());
    assert!(groups
        .iter()
        .any(|g| g["label"].as_str().unwrap().contains("more")));
    // Every edge joins two nodes that are present.
    let present: std::collections::HashSet<&str> =
        nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    for e in t["edges"].as_array().unwrap() {
        assert!(present.contains(e["source"].as_str().unwrap()));
        assert!(present.contains(e["target"].as_str().unwrap()));
    }
    // A larger budget shows more.
    let v = get(
        &app,
        "/api/v1/incidents/inc-big?max_nodes=20000&collapse=false",
    )
    .await
    .json();
    assert!(v["trace"]["nodes"].as_array().unwrap().len() > 5000);
    let v = get(&app, "/api/v1/incidents?limit=1000").await.json();
    assert_eq!(v["total"], 11);
}
