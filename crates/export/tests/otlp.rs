//! The OTLP sink against a real HTTP server that decodes the protobuf body with
//! opentelemetry-proto and checks the semantic-convention attributes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns: a failed unwrap is a failed test

mod support;

use causeway_export::{
    ExportConfig, Exports, OtlpConfig, Output, QueueConfig, RetryPolicy, SEMCONV_SCHEMA_URL,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use support::*;

fn attrs(r: &LogRecord) -> HashMap<String, Value> {
    r.attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.clone().and_then(|v| v.value).expect("value"),
            )
        })
        .collect()
}

fn str_of(v: &Value) -> &str {
    match v {
        Value::StringValue(s) => s,
        other => panic!("not a string: {other:?}"),
    }
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::IntValue(i) => *i,
        other => panic!("not an int: {other:?}"),
    }
}

fn strs_of(v: &Value) -> Vec<String> {
    match v {
        Value::ArrayValue(a) => a
            .values
            .iter()
            .map(|x| str_of(x.value.as_ref().unwrap()).to_string())
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn logs_reach_a_collector_with_semconv_attributes() {
    // First request: 503 (retried), then 200.
    let rx = Receiver::start(0, |n, _| if n == 0 { 503 } else { 200 });
    let mut c = OtlpConfig::new(rx.url(""));
    c.events = true;
    c.queue = QueueConfig {
        retry: RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(20),
            cap: Duration::from_millis(100),
        },
        ..Default::default()
    };
    let ex = Exports::start(ExportConfig {
        otlp: Some(c),
        ..Default::default()
    })
    .unwrap();
    ex.offer(&out_incident(3, true));
    ex.offer(&out_flag(4, "/etc/shadow"));
    ex.offer(&Output::Event(Arc::new(connect_event())));
    let report = ex.shutdown(Duration::from_secs(5));
    let s = &report.sinks[0];
    assert_eq!(s.lost.total(), 0, "{s:?}");
    assert_eq!(s.delivered, 3);
    assert!(s.failed_attempts >= 1);

    let reqs = rx.requests();
    assert!(reqs.len() >= 2);
    let mut records = Vec::new();
    for (n, r) in reqs.iter().enumerate() {
        assert_eq!(r.path, "/v1/logs");
        assert_eq!(r.headers["content-type"], "application/x-protobuf");
        let req = ExportLogsServiceRequest::decode(&r.body[..]).expect("protobuf");
        let rl = &req.resource_logs[0];
        assert_eq!(rl.schema_url, SEMCONV_SCHEMA_URL);
        let res = rl.resource.as_ref().unwrap();
        assert!(res.attributes.iter().any(|kv| kv.key == "service.name"
            && kv.value.as_ref().and_then(|v| v.value.as_ref()).map(str_of) == Some("causeway")));
        if n > 0 {
            // Only accepted requests count; the refused one was sent again.
            records.extend(rl.scope_logs[0].log_records.iter().cloned());
        }
    }
    assert_eq!(records.len(), 3);
    let kinds: Vec<String> = records
        .iter()
        .map(|r| str_of(&attrs(r)["causeway.kind"]).to_string())
        .collect();
    assert_eq!(kinds, ["incident", "flag", "event"]);

    let inc = &records[0];
    let a = attrs(inc);
    assert_eq!(str_of(&a["causeway.incident.id"]), "inc-3");
    assert_eq!(str_of(&a["causeway.incident.change"]), "opened");
    assert_eq!(int_of(&a["causeway.score"]), 80);
    assert_eq!(strs_of(&a["causeway.techniques"]), ["T1059.004", "T1071"]);
    assert_eq!(strs_of(&a["causeway.rule.ids"]), ["CW-EXEC-001"]);
    assert_eq!(int_of(&a["process.pid"]), 812);
    assert_eq!(str_of(&a["process.executable.path"]), "/usr/sbin/nginx");
    assert_eq!(str_of(&a["host.name"]), "web-1");
    assert_eq!(inc.severity_number, 21, "critical -> FATAL");
    assert_eq!(inc.severity_text, "critical");
    assert_eq!(inc.time_unix_nano, (T0 + 5_000_000_000) as u64);
    assert_eq!(inc.event_name, "causeway.incident.opened");

    let flag = &records[1];
    let a = attrs(flag);
    assert_eq!(str_of(&a["causeway.rule.id"]), "CW-EXEC-001");
    assert_eq!(str_of(&a["causeway.object"]), "/etc/shadow");
    assert_eq!(str_of(&a["causeway.event.kind"]), "process.exec");
    assert_eq!(int_of(&a["process.pid"]), 4004);
    assert_eq!(str_of(&a["process.executable.path"]), "/usr/bin/bash");
    assert_eq!(flag.severity_number, 17, "high -> ERROR");
    match flag.body.as_ref().and_then(|b| b.value.as_ref()).unwrap() {
        Value::StringValue(b) => assert!(b.starts_with("Reverse shell: bash -i")),
        other => panic!("{other:?}"),
    }

    let ev = &records[2];
    let a = attrs(ev);
    assert_eq!(int_of(&a["process.pid"]), 77);
    assert_eq!(int_of(&a["process.parent_pid"]), 1);
    assert_eq!(
        strs_of(&a["process.command_args"]),
        ["curl", "http://10.0.0.9/x"]
    );
    assert_eq!(int_of(&a["process.user.id"]), 1000);
    assert_eq!(str_of(&a["container.id"]), "ab".repeat(32));
    assert_eq!(str_of(&a["container.runtime.name"]), "containerd");
    assert_eq!(str_of(&a["host.id"]), "0123456789abcdef");
    assert_eq!(str_of(&a["network.transport"]), "tcp");
    assert_eq!(str_of(&a["network.type"]), "ipv4");
    assert_eq!(str_of(&a["network.peer.address"]), "10.0.0.9");
    assert_eq!(int_of(&a["network.peer.port"]), 80);
    assert_eq!(str_of(&a["network.local.address"]), "10.0.0.2");
    assert_eq!(int_of(&a["network.local.port"]), 40000);
}

#[test]
fn a_refused_batch_is_one_dead_letter_per_output() {
    let rx = Receiver::start(0, |_, _| 400);
    let mut c = OtlpConfig::new(rx.url("/v1/logs"));
    c.queue.max_batch = 16;
    let ex = Exports::start(ExportConfig {
        otlp: Some(c),
        ..Default::default()
    })
    .unwrap();
    for n in 0..5 {
        ex.offer(&out_flag(n, "x"));
    }
    let report = ex.shutdown(Duration::from_secs(5));
    let s = &report.sinks[0];
    assert_eq!(s.lost.dead_letter, 5, "{s:?}");
    assert_eq!(s.delivered, 0);
    let n_records: usize = rx
        .requests()
        .iter()
        .map(|r| {
            ExportLogsServiceRequest::decode(&r.body[..])
                .unwrap()
                .resource_logs[0]
                .scope_logs[0]
                .log_records
                .len()
        })
        .sum();
    assert_eq!(n_records, 5, "each record was sent once, never retried");
}
