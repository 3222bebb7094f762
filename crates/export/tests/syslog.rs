//! The syslog sink against a real rsyslogd (Debian `rsyslog`): the test writes its own
//! configuration (imudp and imtcp on free loopback ports, mmpstrucdata to parse the
//! structured data, omfile with a JSON template), starts it, sends, and checks what
//! rsyslog parsed. Skips when rsyslogd is missing, except under CI=true.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns: a failed unwrap is a failed test

mod support;

use causeway_export::{ExportConfig, Exports, QueueConfig, RetryPolicy, SyslogConfig, SD_ID};
use std::time::Duration;
use support::rsyslog::{rsyslogd, Rsyslog};
use support::*;

fn syslog(url: String) -> ExportConfig {
    let mut s = SyslogConfig::new(url);
    s.hostname = Some("node-a".into());
    s.queue = QueueConfig {
        retry: RetryPolicy {
            max_attempts: 100,
            base: Duration::from_millis(50),
            cap: Duration::from_millis(300),
        },
        ..Default::default()
    };
    ExportConfig {
        syslog: Some(s),
        ..Default::default()
    }
}

fn by_msgid<'a>(lines: &'a [serde_json::Value], input: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["input"] == input).collect()
}

#[test]
fn incidents_and_flags_reach_rsyslog_over_udp_and_tcp() {
    let Some(bin) = rsyslogd() else { return };
    let mut rs = Rsyslog::configure(bin);
    let tcp = rs.tcp;
    // The TCP sink starts before rsyslog is up: its first attempts are refused, then it
    // reconnects.
    let tcp_ex = Exports::start(syslog(format!("tcp://127.0.0.1:{tcp}"))).unwrap();
    let hostile = "/tmp/a \"quoted\" ]bracket\\back\nnewline";
    tcp_ex.offer(&out_flag(1, hostile));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        tcp_ex.stats()[0].failed_attempts >= 1,
        "{:?}",
        tcp_ex.stats()
    );
    rs.start();
    let udp_ex = Exports::start(syslog(format!("udp://127.0.0.1:{}", rs.udp))).unwrap();
    udp_ex.offer(&out_incident(7, true));
    let big = "x".repeat(10_000);
    tcp_ex.offer(&out_flag(2, &big));
    tcp_ex.offer(&out_incident(8, false));
    let lines = rs.lines(4);
    let udp_r = udp_ex.shutdown(Duration::from_secs(2));
    let tcp_r = tcp_ex.shutdown(Duration::from_secs(2));
    assert_eq!(udp_r.sinks[0].delivered, 1);
    assert_eq!(tcp_r.sinks[0].delivered, 3);
    assert_eq!(udp_r.sinks[0].lost.total() + tcp_r.sinks[0].lost.total(), 0);

    let tcp_lines = by_msgid(&lines, "imtcp");
    let udp_lines = by_msgid(&lines, "imudp");
    assert_eq!((tcp_lines.len(), udp_lines.len()), (3, 1), "{lines:#?}");
    for l in &lines {
        assert_eq!(l["version"], "1", "parsed as RFC 5424: {l}");
        assert_eq!(l["app"], "causeway");
        assert_eq!(l["procid"], std::process::id().to_string());
        assert_eq!(l["facility"], "local0");
        // The flag's or incident's host, not the sender's default.
        assert_eq!(l["hostname"], "web-1");
    }

    // The incident over UDP: critical -> crit, PRI 16*8+2.
    let i = udp_lines[0];
    assert_eq!(
        (i["pri"].as_str(), i["severity"].as_str()),
        (Some("130"), Some("crit"))
    );
    assert_eq!(i["msgid"], "incident");
    assert!(
        i["timestamp"]
            .as_str()
            .unwrap()
            .starts_with("2026-05-28T20:26:45.123456"),
        "{i}"
    );
    let sd = &i["parsed"][SD_ID];
    assert_eq!(sd["incident_id"], "inc-7");
    assert_eq!(sd["change"], "opened");
    assert_eq!(sd["score"], "80");
    assert_eq!(sd["techniques"], "T1059.004,T1071");
    assert_eq!(sd["rules"], "CW-EXEC-001");
    assert_eq!(
        i["msg"],
        "incident inc-7 opened: Reverse shell from nginx (score 80, critical, 1 flags)"
    );

    // The hostile flag over TCP: high -> err (PRI 131), escaping survived rsyslog's parser.
    let f = tcp_lines
        .iter()
        .find(|l| l["parsed"][SD_ID]["pid"] == "4001")
        .unwrap();
    assert_eq!(
        (f["pri"].as_str(), f["msgid"].as_str()),
        (Some("131"), Some("flag"))
    );
    let raw_sd = f["sd"].as_str().unwrap();
    assert!(
        raw_sd.contains(r#"object="/tmp/a \"quoted\" \]bracket\\back\\x0anewline""#),
        "{raw_sd}"
    );
    let sd = &f["parsed"][SD_ID];
    // rsyslog's own SD parser undoes the escaping; the newline arrives as the text `\x0a`.
    assert_eq!(sd["object"], "/tmp/a \"quoted\" ]bracket\\back\\x0anewline");
    assert_eq!(sd["rule_id"], "CW-EXEC-001");
    assert_eq!(sd["exe"], "/usr/bin/bash");
    assert_eq!(sd["event_kind"], "process.exec");
    assert_eq!(sd["tactic"], "execution");
    assert_eq!(
        f["msg"],
        "Reverse shell: bash -i connected its stdin to a socket (#1)"
    );

    // The 10 kB object was cut so that the message fits the 2048-byte bound.
    let b = tcp_lines
        .iter()
        .find(|l| l["parsed"][SD_ID]["pid"] == "4002")
        .unwrap();
    let obj = b["parsed"][SD_ID]["object"].as_str().unwrap();
    assert!(
        obj.len() <= 256 && obj.chars().all(|c| c == 'x'),
        "{}",
        obj.len()
    );
    let total = b["sd"].as_str().unwrap().len() + b["msg"].as_str().unwrap().len();
    assert!(total < 2048, "{total}");
}

/// rsyslog restarts while flags keep coming over TCP: the sink notices the closed
/// connection, retries while nobody listens, reconnects, and nothing is lost or doubled.
#[test]
fn tcp_survives_a_receiver_restart() {
    let Some(bin) = rsyslogd() else { return };
    let mut rs = Rsyslog::configure(bin);
    rs.start();
    let ex = Exports::start(syslog(format!("tcp://127.0.0.1:{}", rs.tcp))).unwrap();
    for n in 0..50 {
        ex.offer(&out_flag(n, "/etc/shadow"));
    }
    rs.lines(50);
    rs.stop();
    for n in 50..100 {
        ex.offer(&out_flag(n, "/etc/shadow"));
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(300));
    rs.start();
    let lines = rs.lines(100);
    let report = ex.shutdown(Duration::from_secs(5));
    let mut pids: Vec<u64> = lines
        .iter()
        .map(|l| l["parsed"][SD_ID]["pid"].as_str().unwrap().parse().unwrap())
        .collect();
    pids.sort();
    assert_eq!(pids, (4000..4100).collect::<Vec<_>>());
    let s = &report.sinks[0];
    assert_eq!((s.delivered, s.lost.total()), (100, 0), "{s:?}");
    assert!(s.failed_attempts >= 1, "the restart was noticed: {s:?}");
}
