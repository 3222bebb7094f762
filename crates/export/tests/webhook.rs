//! The webhook sink against a real HTTP server that checks Standard Webhooks signatures
//! with its own HMAC computation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns: a failed unwrap is a failed test

mod support;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use causeway_export::{ExportConfig, Exports, QueueConfig, RetryPolicy, WebhookConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{Duration, Instant};
use support::*;

const KEY_B64: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn secret_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("secret");
    std::fs::write(&p, format!("whsec_{KEY_B64}\n")).unwrap();
    p
}

/// The receiver's own check of a request, as the Standard Webhooks libraries do it.
fn verify(r: &Request) -> (String, serde_json::Value) {
    let h = |k: &str| {
        r.headers
            .get(k)
            .unwrap_or_else(|| panic!("no {k}"))
            .to_str()
            .unwrap()
    };
    let id = h("webhook-id").to_string();
    let ts: i64 = h("webhook-timestamp").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() <= 300, "timestamp {ts} outside tolerance");
    let mut mac = Hmac::<Sha256>::new_from_slice(&B64.decode(KEY_B64).unwrap()).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&r.body);
    let expected = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
    let sigs: Vec<&str> = h("webhook-signature").split(' ').collect();
    assert!(sigs.contains(&expected.as_str()), "bad signature {sigs:?}");
    assert_eq!(h("content-type"), "application/json");
    (id, serde_json::from_slice(&r.body).unwrap())
}

fn cfg(url: String, secret: std::path::PathBuf, queue: QueueConfig) -> ExportConfig {
    let mut w = WebhookConfig::new(url, secret);
    w.timeout = Duration::from_secs(2);
    w.queue = queue;
    ExportConfig {
        webhook: Some(w),
        ..Default::default()
    }
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    }
}

#[test]
fn signed_and_retried_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    // 500, 500, then 200 for everything.
    let rx = Receiver::start(0, |n, _| if n < 2 { 500 } else { 200 });
    let queue = QueueConfig {
        retry: fast_retry(5),
        ..Default::default()
    };
    let ex = Exports::start(cfg(rx.url("/hook"), secret_file(&dir), queue)).unwrap();
    ex.offer(&out_incident(1, true));
    ex.offer(&out_flag(1, "ignored: webhooks take incidents only"));
    let reqs = rx.wait_for(3, Duration::from_secs(10));
    ex.offer(&out_incident(1, false));
    let reqs_all = rx.wait_for(4, Duration::from_secs(10));
    let report = ex.shutdown(Duration::from_secs(5));

    let checked: Vec<_> = reqs_all.iter().map(verify).collect();
    assert_eq!(checked.len(), 4, "one flag must not have been sent");
    // The three attempts of the first message share its id; the next message has another.
    assert_eq!(checked[0].0, checked[1].0);
    assert_eq!(checked[1].0, checked[2].0);
    assert_ne!(checked[2].0, checked[3].0);
    assert!(checked[0].0.starts_with("msg_"));
    // Retries waited (backoff), they did not hammer.
    assert!(reqs[1].at - reqs[0].at >= Duration::from_millis(10));
    let (_, first) = &checked[2];
    assert_eq!(first["type"], "incident.opened");
    assert_eq!(first["data"]["id"], "inc-1");
    assert_eq!(first["data"]["score"], 80);
    assert_eq!(checked[3].1["type"], "incident.updated");
    assert!(reqs_all.iter().all(|r| r.path == "/hook"));

    let s = &report.sinks[0];
    assert_eq!((s.sink, s.delivered, s.failed_attempts), ("webhook", 2, 2));
    assert_eq!(s.lost.total(), 0);
    assert!(report.unfinished.is_empty());
}

#[test]
fn refused_and_exhausted_messages_are_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    // inc-1 is refused (400: never retried); inc-2 always 503 (retried 3 times).
    let rx = Receiver::start(0, |_, r| {
        if String::from_utf8_lossy(&r.body).contains("\"inc-1\"") {
            400
        } else {
            503
        }
    });
    let queue = QueueConfig {
        retry: fast_retry(3),
        ..Default::default()
    };
    let ex = Exports::start(cfg(rx.url("/"), secret_file(&dir), queue)).unwrap();
    ex.offer(&out_incident(1, true));
    let t0 = Instant::now();
    while ex.stats()[0].lost.dead_letter < 1 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    ex.offer(&out_incident(2, true));
    while ex.stats()[0].lost.dead_letter < 2 {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    let report = ex.shutdown(Duration::from_secs(2));
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1 + 3);
    let s = &report.sinks[0];
    assert_eq!(
        (s.delivered, s.failed_attempts, s.lost.dead_letter),
        (0, 4, 2)
    );
}

/// The receiver is down (connection refused) for a while: offer never blocks, the bounded
/// queue keeps what it can, everything else is counted as `queue_full`, and what was kept
/// is delivered once the receiver is back.
#[test]
fn receiver_down_for_a_while() {
    let down_for = Duration::from_secs(
        std::env::var("CAUSEWAY_DOWN_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let capacity = 64;
    let queue = QueueConfig {
        capacity,
        max_batch: 1,
        // Never gives up while down: the test is about the queue bound.
        retry: RetryPolicy {
            max_attempts: 10_000,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(250),
        },
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let ex = Exports::start(cfg(url, secret_file(&dir), queue)).unwrap();

    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut offered = 0u64;
    let mut n = 0;
    while t0.elapsed() < down_for {
        n += 1;
        let o = out_incident(n, true);
        let s = Instant::now();
        ex.offer(&o);
        lat.push(s.elapsed());
        offered += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let during = ex.stats()[0].clone();
    let rx = Receiver::start(port, |_, _| 200);
    let t1 = Instant::now();
    loop {
        let s = &ex.stats()[0];
        if s.delivered + s.lost.total() == offered {
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(20), "stuck at {s:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    let drained_in = t1.elapsed();
    let report = ex.shutdown(Duration::from_secs(5));
    let s = &report.sinks[0];
    let reqs = rx.requests();
    let mut ids: Vec<String> = reqs.iter().map(|r| verify(r).0).collect();
    ids.sort();
    ids.dedup();

    let (p50, p99, max) = percentiles(lat);
    eprintln!(
        "down {down_for:?}: offered {offered}, delivered {}, queue_full {}, failed attempts {}, \
         drained in {drained_in:?}; offer p50 {p50:.1} us, p99 {p99:.1} us, max {max:.1} us",
        s.delivered, s.lost.queue_full, during.failed_attempts
    );
    // Exact accounting: everything offered is delivered or counted lost, by cause.
    assert_eq!(s.delivered + s.lost.queue_full, offered);
    assert_eq!(s.lost.total(), s.lost.queue_full);
    // What was kept is the queue plus the one message in flight.
    assert!(s.delivered <= capacity as u64 + 1, "{s:?}");
    assert!(s.delivered >= capacity as u64, "{s:?}");
    assert!(
        during.failed_attempts > 3,
        "the sink kept retrying: {during:?}"
    );
    assert_eq!(ids.len() as u64, s.delivered);
    // A blocking offer would have waited for the receiver (seconds); it never did.
    assert!(max < 50_000.0, "offer took {max} us");
}

#[test]
fn bad_configuration_is_reported_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let e = Exports::start(cfg(
        "localhost:80/x".into(),
        secret_file(&dir),
        QueueConfig::default(),
    ))
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("webhook: invalid URL \"localhost:80/x\""),
        "{e}"
    );
    let e = Exports::start(cfg(
        "http://127.0.0.1:1/".into(),
        dir.path().join("missing"),
        QueueConfig::default(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("cannot read the secret file"), "{e}");
}

/// In a batch, a message refused for good does not take the others with it, and those
/// delivered before it are not sent again.
#[test]
fn one_refused_message_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start(0, |_, r| {
        if String::from_utf8_lossy(&r.body).contains("\"inc-2\"") {
            422
        } else {
            200
        }
    });
    let queue = QueueConfig {
        retry: fast_retry(5),
        ..Default::default()
    };
    let ex = Exports::start(cfg(rx.url("/"), secret_file(&dir), queue)).unwrap();
    for n in 1..=3 {
        ex.offer(&out_incident(n, true));
    }
    let report = ex.shutdown(Duration::from_secs(5));
    let s = &report.sinks[0];
    assert_eq!(
        (s.delivered, s.lost.dead_letter, s.failed_attempts),
        (2, 1, 1)
    );
    let ids: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| verify(r).1["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["inc-1", "inc-2", "inc-3"]);
}
