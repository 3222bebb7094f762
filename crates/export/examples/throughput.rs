//! Figures for the export sinks (not a test): `offer` latency, and the throughput of each
//! sink against a real receiver on loopback (axum HTTP server, rsyslogd, a file).
//!
//! `cargo run --release -p causeway-export --example throughput`
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a panic

#[path = "../tests/support/mod.rs"]
mod support;

use causeway_export::{
    ExportConfig, Exports, JsonlConfig, OtlpConfig, Output, SyslogConfig, WebhookConfig,
};
use std::time::{Duration, Instant};
use support::rsyslog::{rsyslogd, Rsyslog};
use support::*;

/// Offer `n` outputs as fast as the sink takes them (waiting while its queue is full, so
/// nothing is dropped) and return outputs per second until all were delivered.
fn throughput(ex: &Exports, n: u32, make: impl Fn(u32) -> Output) -> f64 {
    let cap = ex.stats()[0].capacity;
    let t0 = Instant::now();
    for i in 0..n {
        // Look at the queue every 32 offers only: `stats` is not free.
        if i % 32 == 0 {
            while ex.stats()[0].queued + 32 >= cap {
                std::thread::yield_now();
            }
        }
        ex.offer(&make(i));
    }
    loop {
        let s = &ex.stats()[0];
        if s.delivered + s.lost.total() >= u64::from(n) {
            assert_eq!(s.lost.total(), 0, "{s:?}");
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    f64::from(n) / t0.elapsed().as_secs_f64()
}

fn one(cfg: ExportConfig) -> Exports {
    Exports::start(cfg).unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let http = Receiver::start(0, |_, _| 200);

    // Webhook: one signed POST per incident.
    let ex = one(ExportConfig {
        webhook: Some(WebhookConfig::new(http.url("/hook"), &secret)),
        ..Default::default()
    });
    let r = throughput(&ex, 5_000, |i| out_incident(i, true));
    ex.shutdown(Duration::from_secs(5));
    println!("webhook: {r:.0} incidents/s");

    // OTLP: batches of up to 256 records per request.
    let ex = one(ExportConfig {
        otlp: Some(OtlpConfig::new(http.url(""))),
        ..Default::default()
    });
    let r = throughput(&ex, 100_000, |i| out_flag(i, "/etc/shadow"));
    ex.shutdown(Duration::from_secs(5));
    println!("otlp: {r:.0} flags/s");

    // JSON lines with rotation every 8 MiB.
    let mut j = JsonlConfig::new(dir.path().join("out.jsonl"));
    j.max_bytes = 8 << 20;
    let ex = one(ExportConfig {
        jsonl: Some(j),
        ..Default::default()
    });
    let r = throughput(&ex, 200_000, |i| out_flag(i, "/etc/shadow"));
    ex.shutdown(Duration::from_secs(5));
    println!("jsonl: {r:.0} flags/s");

    if let Some(bin) = rsyslogd() {
        let mut rs = Rsyslog::configure(bin);
        rs.start();
        for (scheme, port) in [("tcp", rs.tcp), ("udp", rs.udp)] {
            let before = std::fs::read_to_string(&rs.out).map_or(0, |t| t.lines().count());
            let ex = one(ExportConfig {
                syslog: Some(SyslogConfig::new(format!("{scheme}://127.0.0.1:{port}"))),
                ..Default::default()
            });
            let n = 50_000;
            let r = throughput(&ex, n, |i| out_flag(i, "/etc/shadow"));
            ex.shutdown(Duration::from_secs(5));
            std::thread::sleep(Duration::from_secs(2));
            let after = std::fs::read_to_string(&rs.out).map_or(0, |t| t.lines().count());
            println!(
                "syslog {scheme}: {r:.0} flags/s sent; rsyslog wrote {} of {n}",
                after - before
            );
        }
    }

    // offer() with all four sinks configured, syslog pointed at a closed port (its queue
    // fills and drops), the others delivering.
    let cfg = ExportConfig {
        webhook: Some(WebhookConfig::new(http.url("/hook"), &secret)),
        otlp: Some(OtlpConfig::new(http.url(""))),
        jsonl: Some(JsonlConfig::new(dir.path().join("all.jsonl"))),
        syslog: Some(SyslogConfig::new("udp://127.0.0.1:9")),
    };
    let ex = one(cfg);
    let outs: Vec<Output> = (0..1000)
        .map(|i| {
            if i % 10 == 0 {
                out_incident(i, true)
            } else {
                out_flag(i, "/etc/shadow")
            }
        })
        .collect();
    let mut lat = Vec::with_capacity(200_000);
    let t0 = Instant::now();
    for i in 0..200_000 {
        let o = &outs[i % outs.len()];
        let s = Instant::now();
        ex.offer(o);
        lat.push(s.elapsed());
    }
    let total = t0.elapsed();
    let report = ex.shutdown(Duration::from_secs(2));
    let (p50, p99, max) = percentiles(lat);
    println!(
        "offer (4 sinks): p50 {:.2} us, p99 {:.2} us, max {:.1} us; {:.0} offers/s",
        p50,
        p99,
        max,
        200_000.0 / total.as_secs_f64()
    );
    for s in report.sinks {
        println!(
            "  {}: accepted {}, delivered {}, lost {:?}",
            s.sink, s.accepted, s.delivered, s.lost
        );
    }
}
