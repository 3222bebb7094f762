//! What needs no backend: the OpenAPI document against the route table, both ways, and how
//! the bearer token is chosen. Everything served is tested against the real `causeway server`
//! over recorded fixtures in crates/cli/tests/api_*.rs.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use causeway_server::{api, openapi, resolve_token, ServeError, TokenSource};
use std::collections::BTreeSet;
use std::net::SocketAddr;

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
