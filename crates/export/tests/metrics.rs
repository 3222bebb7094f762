//! The `metrics` facade carries the same counters as the snapshot. Alone in its test binary
//! because it installs the process's global recorder.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns: a failed unwrap is a failed test

mod support;

use causeway_export::{ExportConfig, Exports, QueueConfig, RetryPolicy, WebhookConfig};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use std::time::Duration;
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
fn metrics_and_shutdown_accounting() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    // Nobody listens on this port: every attempt is refused.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}/", free_port());
    let queue = QueueConfig {
        capacity: 2,
        max_batch: 1,
        retry: RetryPolicy {
            max_attempts: 2,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(10),
        },
    };
    let ex = Exports::start(webhook(url, &dir, queue)).unwrap();
    for n in 0..10 {
        ex.offer(&out_incident(n, true));
    }
    let report = ex.shutdown(Duration::from_secs(3));
    let s = &report.sinks[0];
    assert_eq!(s.lost.total(), 10, "{s:?}");
    assert!(s.lost.queue_full >= 7, "{s:?}");
    assert_eq!(s.lost.dead_letter + s.lost.shutdown, 10 - s.lost.queue_full);

    let mut lost = std::collections::HashMap::new();
    let mut failed = 0;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<(String, String)> = key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        let get = |k: &str| labels.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let DebugValue::Counter(v) = value else {
            continue;
        };
        match key.name() {
            "causeway_events_lost_total" => {
                assert_eq!(get("stage").as_deref(), Some("sink"));
                assert_eq!(get("sink").as_deref(), Some("webhook"));
                lost.insert(get("cause").unwrap(), v);
            }
            "causeway_sink_deliveries_total" => {
                assert_eq!(get("sink").as_deref(), Some("webhook"));
                assert_eq!(get("status").as_deref(), Some("failed"));
                failed += v;
            }
            _ => {}
        }
    }
    assert_eq!(lost.get("queue_full").copied(), Some(s.lost.queue_full));
    assert_eq!(
        lost.get("dead_letter").copied().unwrap_or(0),
        s.lost.dead_letter
    );
    assert_eq!(lost.get("shutdown").copied().unwrap_or(0), s.lost.shutdown);
    assert_eq!(failed, s.failed_attempts);
}
