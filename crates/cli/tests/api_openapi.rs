//! The served OpenAPI document against the real `causeway server`: every documented path is
//! routed and real responses (over the recorded fixtures) match the documented schemas; the
//! bearer token, generated for a non-loopback listener; the live stream. (That
//! every route is documented is checked on the route table in crates/server/tests.)
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod api_support;

use api_support::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

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
            let a = v.as_array().unwrap_or_else(|| panic!("{at}: not an array"));
            for (i, x) in a.iter().enumerate() {
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

#[test]
fn documented_paths_are_routed_and_responses_match_their_schemas() {
    let s = Server::fixtures();
    let doc = s.json("/api/v1/openapi.json");
    let paths = doc["paths"].as_object().unwrap();
    for path in paths.keys() {
        let r = s.get(&path.replace("{id}", "some-id"));
        assert!(!r.text().contains("no such route"), "{path} is not routed");
    }
    let list = s.json("/api/v1/incidents?limit=1000");
    let mut cases: Vec<(&str, String, &str)> = vec![
        ("/api/v1/incidents", "/api/v1/incidents".into(), "200"),
        (
            "/api/v1/incidents/{id}",
            "/api/v1/incidents/none".into(),
            "404",
        ),
        ("/api/v1/events", "/api/v1/events?limit=500".into(), "200"),
        ("/api/v1/events", "/api/v1/events?limit=x".into(), "400"),
        ("/api/v1/health", "/api/v1/health".into(), "200"),
        ("/api/v1/rules", "/api/v1/rules".into(), "200"),
        ("/api/v1/policies", "/api/v1/policies".into(), "200"),
    ];
    // Every incident (the build's is aggregated, with group nodes), and every process and
    // trace node id of the reverse shell's.
    for i in list["items"].as_array().unwrap() {
        let id = i["id"].as_str().unwrap();
        cases.push((
            "/api/v1/incidents/{id}",
            format!("/api/v1/incidents/{id}"),
            "200",
        ));
    }
    let rs = incident_of(
        &s,
        &exec_id(
            "revshell",
            &["bash", "/tmp/causeway-fixture/revshell/run.sh"],
        ),
    );
    for n in rs["trace"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "process")
    {
        for id in [n["id"].as_str().unwrap(), n["data"]["id"].as_str().unwrap()] {
            cases.push((
                "/api/v1/processes/{id}",
                format!("/api/v1/processes/{}", enc(id)),
                "200",
            ));
            cases.push((
                "/api/v1/processes/{id}/trace",
                format!(
                    "/api/v1/processes/{}/trace?direction=forward&depth=9",
                    enc(id)
                ),
                "200",
            ));
        }
    }
    for (path, uri, code) in cases {
        let r = s.get(&uri);
        assert_eq!(r.status.to_string(), code, "{uri}: {}", r.text());
        let schema =
            &doc["paths"][path]["get"]["responses"][code]["content"]["application/json"]["schema"];
        assert!(!schema.is_null(), "{path} {code} undocumented");
        check(&doc, schema, &r.json(), &uri);
    }
}

#[test]
fn token_is_required_when_configured() {
    let s = Server::start(store(), &["--token", "s3cret-token", "--require-token"]);
    let r = s.get("/api/v1/incidents");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert!(r.json()["error"].is_string());
    for bad in [
        "Bearer wrong",
        "Bearer s3cret-toke",
        "Basic s3cret-token",
        "s3cret-token",
    ] {
        let r = request(s.addr, "/api/v1/health", &[("authorization", bad)]);
        assert_eq!(r.status, 401, "{bad}");
    }
    assert_eq!(s.get("/metrics").status, 401);
    let ok = [("authorization", "Bearer s3cret-token")];
    let r = request(s.addr, "/api/v1/incidents", &ok);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 4);
    assert_eq!(request(s.addr, "/metrics", &ok).status, 200);
    // The UI shell and the API description are public; data is not.
    assert_eq!(s.get("/").status, 200);
    assert_eq!(s.get("/api/v1/openapi.json").status, 200);
}

#[test]
fn live_stream_needs_its_accept_header_and_says_ready() {
    let s = Server::fixtures();
    let r = s.get("/api/v1/stream");
    assert_eq!(r.status, 406, "{}", r.text());
    let mut c = std::net::TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "GET /api/v1/stream HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut got = String::new();
    let mut buf = [0u8; 4096];
    while !got.contains("event: ready") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed: {got}");
        got.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(
        got.to_lowercase()
            .contains("content-type: text/event-stream"),
        "{got}"
    );
}

#[test]
fn non_loopback_listener_generates_a_token_and_requires_it() {
    let dir = scratch("generated-token");
    ingest(&dir, &["dropper"]);
    let s = Server::start_on(&dir, "0.0.0.0", &[]);
    let path = dir.join("api-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the generated token is private");
    let token = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert_eq!(token.len(), 64);
    assert_eq!(
        s.get("/api/v1/incidents").status,
        401,
        "loopback clients too"
    );
    let auth = format!("Bearer {token}");
    let r = request(s.addr, "/api/v1/incidents", &[("authorization", &auth)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["total"], 1);
    s.stop();
    // The same token on the next start.
    let s = Server::start_on(&dir, "0.0.0.0", &[]);
    assert_eq!(
        request(s.addr, "/api/v1/health", &[("authorization", &auth)]).status,
        200
    );
}
