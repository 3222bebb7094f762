//! The OpenAPI document against the route table (both ways) and against real responses;
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test
//! authentication; and the server over real TCP, including the live stream.

mod common;

use axum::http::StatusCode;
use causeway_server::memory::synthetic;
use causeway_server::{
    api, openapi, resolve_token, router, serve_with_shutdown, AppState, ServeError, ServerConfig,
    TokenSource,
};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn every_route_is_documented_and_every_documented_path_is_routed() {
    let doc = openapi::document();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    let routed: BTreeSet<String> = api::routes().iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(documented, routed);
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(methods, ["get"], "{path}: only GET is routed");
    }
}

#[tokio::test]
async fn documented_paths_resolve_in_the_router() {
    let app = demo_app();
    for path in openapi::document()["paths"].as_object().unwrap().keys() {
        let uri = path.replace("{id}", "some-id");
        let r = get(&app, &uri).await;
        // Routed paths never answer with the fallback's "no such route".
        assert!(!r.text().contains("no such route"), "{path} is not routed");
    }
}

/// A small JSON-schema check: type, required, properties, items, enum, $ref, allOf, nullable.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return check(doc, &doc["components"]["schemas"][name], v, at);
    }
    if v.is_null() {
        assert!(schema["nullable"] == true, "{at}: null but not nullable");
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, v, at);
        }
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        assert!(e.contains(v), "{at}: {v} not in {e:?}");
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let o = v
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object"));
            for k in schema["required"].as_array().into_iter().flatten() {
                assert!(o.contains_key(k.as_str().unwrap()), "{at}: missing {k}");
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if let Some(x) = o.get(k) {
                        check(doc, s, x, &format!("{at}.{k}"));
                    }
                }
            }
            if let Some(ap) = schema.get("additionalProperties") {
                for (k, x) in o {
                    check(doc, ap, x, &format!("{at}.{k}"));
                }
            }
        }
        Some("array") => {
            for (i, x) in v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array"))
                .iter()
                .enumerate()
            {
                check(doc, &schema["items"], x, &format!("{at}[{i}]"));
            }
        }
        Some("string") => assert!(v.is_string(), "{at}: not a string: {v}"),
        Some("integer") => assert!(v.is_i64() || v.is_u64(), "{at}: not an integer: {v}"),
        Some("number") => assert!(v.is_number(), "{at}: not a number"),
        Some("boolean") => assert!(v.is_boolean(), "{at}: not a boolean"),
        _ => {}
    }
}

#[tokio::test]
async fn responses_match_the_documented_schemas() {
    let doc = openapi::document();
    let app = demo_app();
    let p = pid("web-1", 500);
    let cases = [
        ("/api/v1/incidents", "/api/v1/incidents".to_string(), "200"),
        (
            "/api/v1/incidents/{id}",
            "/api/v1/incidents/inc-ssh-payload".into(),
            "200",
        ),
        (
            "/api/v1/incidents/{id}",
            "/api/v1/incidents/none".into(),
            "404",
        ),
        ("/api/v1/events", "/api/v1/events?limit=50".into(), "200"),
        ("/api/v1/events", "/api/v1/events?limit=x".into(), "400"),
        (
            "/api/v1/processes/{id}",
            format!("/api/v1/processes/{p}"),
            "200",
        ),
        (
            "/api/v1/processes/{id}/trace",
            format!("/api/v1/processes/{p}/trace?direction=forward&depth=9"),
            "200",
        ),
        ("/api/v1/health", "/api/v1/health".into(), "200"),
        ("/api/v1/rules", "/api/v1/rules".into(), "200"),
        ("/api/v1/policies", "/api/v1/policies".into(), "200"),
    ];
    for (path, uri, code) in cases {
        let r = get(&app, &uri).await;
        assert_eq!(r.status.as_str(), code, "{uri}");
        let schema =
            &doc["paths"][path]["get"]["responses"][code]["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{path} {code} undocumented");
        check(&doc, schema, &r.json(), &uri);
    }
    // The aggregated big trace too (group nodes).
    let (ev, inc) = synthetic::workload(2, 2000);
    let big = router(AppState::new(
        Arc::new(causeway_server::MemoryBackend::new(ev, inc)),
        None,
    ));
    let r = get(&big, "/api/v1/incidents/inc-big").await;
    check(
        &doc,
        &serde_json::json!({"$ref": "#/components/schemas/IncidentDetail"}),
        &r.json(),
        "big",
    );
}

#[tokio::test]
async fn token_is_required_when_configured() {
    let app = router(AppState::new(demo_backend(), Some("s3cret-token".into())));
    let r = get(&app, "/api/v1/incidents").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert!(r.json()["error"].is_string());
    for bad in [
        "Bearer wrong",
        "Bearer s3cret-toke",
        "Basic s3cret-token",
        "s3cret-token",
    ] {
        let r = get_with(&app, "/api/v1/health", &[("authorization", bad)]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let ok = [("authorization", "Bearer s3cret-token")];
    assert_eq!(
        get_with(&app, "/api/v1/incidents", &ok).await.status,
        StatusCode::OK
    );
    assert_eq!(get_with(&app, "/metrics", &ok).await.status, StatusCode::OK);
    // The UI shell and the API description are public; data is not.
    assert_eq!(get(&app, "/").await.status, StatusCode::OK);
    assert_eq!(
        get(&app, "/api/v1/openapi.json").await.status,
        StatusCode::OK
    );
}

#[test]
fn token_resolution() {
    let lo: SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let any: SocketAddr = "0.0.0.0:7000".parse().unwrap();
    assert_eq!(
        resolve_token(lo, None, None, false).unwrap(),
        (None, TokenSource::None)
    );
    assert!(matches!(
        resolve_token(any, None, None, false),
        Err(ServeError::TokenRequired(_))
    ));
    assert!(matches!(
        resolve_token(lo, None, None, true),
        Err(ServeError::TokenRequired(_))
    ));
    assert!(matches!(
        resolve_token(any, Some("  "), None, false),
        Err(ServeError::EmptyToken)
    ));
    let (t, s) = resolve_token(any, Some("abc"), None, false).unwrap();
    assert_eq!((t.as_deref(), s), (Some("abc"), TokenSource::Configured));

    let dir = tempfile::tempdir().unwrap();
    let (t1, s1) = resolve_token(any, None, Some(dir.path()), false).unwrap();
    assert_eq!(s1, TokenSource::Generated);
    let t1 = t1.unwrap();
    assert_eq!(t1.len(), 64);
    let path = dir.path().join("api-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (t2, s2) = resolve_token(any, None, Some(dir.path()), false).unwrap();
    assert_eq!((t2.unwrap(), s2), (t1, TokenSource::Stored));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn raw_get(addr: SocketAddr, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_over_tcp_with_live_stream() {
    let backend = demo_backend();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_shutdown(
        ServerConfig::new(addr),
        backend.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));
    // Wait for the listener.
    let mut up = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up);
    let res = tokio::task::spawn_blocking(move || raw_get(addr, "/api/v1/health", ""))
        .await
        .unwrap();
    assert!(res.starts_with("HTTP/1.1 200"), "{res}");
    assert!(res.contains("\"events_seen\":39"));
    let res = tokio::task::spawn_blocking(move || raw_get(addr, "/api/v1/stream", ""))
        .await
        .unwrap();
    assert!(res.starts_with("HTTP/1.1 406"), "{res}");

    // Live stream: ready, then the incident published after subscribing.
    let reader = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /api/v1/stream HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
        )
        .unwrap();
        let mut got = String::new();
        let mut buf = [0u8; 4096];
        while !got.contains("inc-live") {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "stream closed: {got}");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut spec = backend.specs().remove(0);
    spec.id = "inc-live".into();
    backend.publish(spec);
    let got = reader.await.unwrap();
    assert!(got.contains("event: ready"), "{got}");
    assert!(got.contains("event: incident"), "{got}");
    assert!(got.contains("\"change\":\"new\""), "{got}");

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn non_loopback_without_token_refuses_to_start() {
    let addr: SocketAddr = format!("0.0.0.0:{}", free_port()).parse().unwrap();
    let r = serve_with_shutdown(ServerConfig::new(addr), demo_backend(), async {}).await;
    assert!(matches!(r, Err(ServeError::TokenRequired(_))), "{r:?}");
}
