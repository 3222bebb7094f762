//! Shared helpers: the demo fixture as a router, and requests without a socket.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use causeway_server::{router, AppState, MemoryBackend};
use http_body_util::BodyExt;
use std::path::PathBuf;
use std::sync::Arc;
use tower::ServiceExt;

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn demo_backend() -> Arc<MemoryBackend> {
    Arc::new(
        MemoryBackend::from_files(
            &fixture("demo-events.jsonl"),
            Some(&fixture("demo-incidents.json")),
        )
        .unwrap(),
    )
}

pub fn demo_app() -> Router {
    router(AppState::new(demo_backend(), None))
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub async fn get(app: &Router, uri: &str) -> Resp {
    get_with(app, uri, &[]).await
}

pub async fn get_with(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// Process id in the demo fixture (see fixtures/gen_demo.py).
pub fn pid(host: &str, pid: u32) -> String {
    let boot = if host == "web-1" {
        "1111111111111111"
    } else {
        "2222222222222222"
    };
    let ticks = match (host, pid) {
        ("web-1", 1) => 179571060000u64,
        ("web-1", 500) => 179571070000,
        ("web-1", 1200) => 179571420000,
        ("web-1", 1201) => 179571420100,
        ("web-1", 1202) => 179571420500,
        ("web-1", 1204) => 179571421000,
        ("web-1", 1205) => 179571421300,
        ("ws-2", 4000) => 179571419800,
        _ => panic!("no such fixture process"),
    };
    format!("p-{boot}-{pid}-{ticks}")
}
