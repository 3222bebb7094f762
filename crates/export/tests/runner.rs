//! The runner's accounting seen from outside: `shutdown` counts what it could not deliver.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns: a failed unwrap is a failed test

mod support;

use causeway_export::{ExportConfig, Exports, QueueConfig, RetryPolicy, WebhookConfig};
use std::time::{Duration, Instant};
use support::*;

fn webhook(url: String, dir: &tempfile::TempDir, queue: QueueConfig) -> ExportConfig {
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "a raw secret\n").unwrap();
    let mut w = WebhookConfig::new(url, secret);
    w.timeout = Duration::from_secs(1);
    w.queue = queue;
    ExportConfig {
        webhook: Some(w),
        ..Default::default()
    }
}

#[test]
fn shutdown_counts_what_it_could_not_deliver() {
    let rx = Receiver::start(0, |_, _| 503);
    let dir = tempfile::tempdir().unwrap();
    let queue = QueueConfig {
        max_batch: 1,
        retry: RetryPolicy {
            max_attempts: 1000,
            base: Duration::from_millis(50),
            cap: Duration::from_millis(100),
        },
        ..Default::default()
    };
    let ex = Exports::start(webhook(rx.url("/"), &dir, queue)).unwrap();
    for n in 0..20 {
        ex.offer(&out_incident(n, true));
    }
    rx.wait_for(2, Duration::from_secs(5));
    let t0 = Instant::now();
    let report = ex.shutdown(Duration::from_millis(300));
    let took = t0.elapsed();
    let s = &report.sinks[0];
    assert!(report.unfinished.is_empty());
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(s.delivered, 0);
    assert_eq!(s.lost.shutdown, 20, "{s:?}");
    assert_eq!(s.lost.total(), 20);
}
