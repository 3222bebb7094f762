//! OTLP sink: incidents and flags (and events, if asked) as OTLP log records, POSTed to
//! `/v1/logs` as `application/x-protobuf` `ExportLogsServiceRequest`s, one per batch.
//!
//! Attribute names follow the OpenTelemetry semantic conventions pinned in
//! [`SEMCONV_VERSION`] (also sent as the schema URL of every resource and scope):
//! `process.pid`, `process.parent_pid`, `process.executable.path`, `process.command_args`,
//! `process.working_directory`, `process.user.id`, `container.id`,
//! `container.runtime.name`, `host.name`, `host.id`, `network.transport`, `network.type`,
//! `network.peer.address`, `network.peer.port`, `network.local.address`,
//! `network.local.port`, `file.path`. Causeway's own fields are under `causeway.*`
//! (`causeway.kind`, `causeway.rule.id`, `causeway.incident.id`, `causeway.score`,
//! `causeway.techniques`, ...). Each record carries the fields its output has: a flag or an
//! incident names its process and host; container and network fields come with events.
//! `host.*` is on each record, not on the resource, because one node (or server) exports
//! outputs of many hosts; the resource is `service.name = causeway`.
//!
//! Severity: info → INFO (9), low → INFO4 (12), medium → WARN (13), high → ERROR (17),
//! critical → FATAL (21); `severity_text` is ours. 2xx is done; 408/429/5xx and transport
//! failures are retried, other answers make the batch a dead letter.

use crate::config::{parse_url, ExportError, OtlpConfig};
use crate::output::{rule_ids, Accepts, Event, Flag, Incident, Output, Severity};
use crate::runner::{DeliveryError, EncodeError, Sink};
use causeway_model::timefmt::Timestamp;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

/// The semantic-conventions version the attribute names follow.
pub const SEMCONV_VERSION: &str = "1.37.0";
/// Its schema URL, sent with every request.
pub const SEMCONV_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.37.0";

pub struct OtlpSink {
    url: String,
    agent: ureq::Agent,
    events: bool,
}

impl OtlpSink {
    pub fn new(cfg: &OtlpConfig) -> Result<OtlpSink, ExportError> {
        let u = parse_url("otlp", &cfg.url, &["http", "https"])?;
        if u.path.contains(['?', '#']) {
            return Err(ExportError::Url {
                sink: "otlp",
                url: cfg.url.clone(),
                reason: "no query or fragment allowed".into(),
            });
        }
        let base = cfg.url.trim_end_matches('/');
        let url = if base.ends_with("/v1/logs") {
            base.to_string()
        } else {
            format!("{base}/v1/logs")
        };
        crate::http::check_url("otlp", &url)?;
        Ok(OtlpSink {
            url,
            agent: crate::http::agent(cfg.timeout),
            events: cfg.events,
        })
    }

    /// The URL requests go to.
    pub fn endpoint(&self) -> &str {
        &self.url
    }
}

fn kv(key: &str, v: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, Value::StringValue(v.into()))
}

fn i(key: &str, v: impl Into<i64>) -> KeyValue {
    kv(key, Value::IntValue(v.into()))
}

fn arr(key: &str, items: &[String]) -> KeyValue {
    let values = items
        .iter()
        .map(|x| AnyValue {
            value: Some(Value::StringValue(x.clone())),
        })
        .collect();
    kv(key, Value::ArrayValue(ArrayValue { values }))
}

fn severity_number(s: Severity) -> SeverityNumber {
    match s {
        Severity::Info => SeverityNumber::Info,
        Severity::Low => SeverityNumber::Info4,
        Severity::Medium => SeverityNumber::Warn,
        Severity::High => SeverityNumber::Error,
        Severity::Critical => SeverityNumber::Fatal,
    }
}

/// OTLP times are unsigned nanoseconds where 0 means "unknown": a time before 1970 (a
/// broken clock) is sent as unknown rather than as a wrapped value.
fn nanos(t: Timestamp) -> u64 {
    u64::try_from(t.0).unwrap_or(0)
}

fn incident_record(i_: &Incident, change: &str) -> LogRecord {
    let rules: Vec<String> = rule_ids(i_).into_iter().map(String::from).collect();
    let mut attrs = vec![
        s("causeway.kind", "incident"),
        s("causeway.incident.id", &*i_.id),
        s("causeway.incident.change", change),
        s("causeway.incident.title", &*i_.title),
        i("causeway.score", i_.score),
        s("causeway.severity", i_.severity.as_str()),
        arr("causeway.techniques", &i_.techniques),
        arr("causeway.tactics", &i_.tactics),
        arr("causeway.rule.ids", &rules),
        i(
            "causeway.flags",
            i64::try_from(i_.flags.len()).unwrap_or(i64::MAX),
        ),
        s("causeway.process.id", &*i_.root.id),
        i("process.pid", i_.root.pid),
        s("process.executable.path", &*i_.root.exe),
        arr("causeway.hosts", &i_.hosts),
    ];
    if let Some(h) = i_.hosts.first() {
        attrs.push(s("host.name", &**h));
    }
    LogRecord {
        time_unix_nano: nanos(i_.last_seen),
        observed_time_unix_nano: nanos(Timestamp::now()),
        severity_number: severity_number(i_.severity) as i32,
        severity_text: i_.severity.as_str().to_string(),
        event_name: format!("causeway.incident.{change}"),
        body: Some(AnyValue {
            value: Some(Value::StringValue(format!(
                "incident {} {change}: {} (score {})",
                i_.id, i_.title, i_.score
            ))),
        }),
        attributes: attrs,
        ..Default::default()
    }
}

fn flag_record(f: &Flag) -> LogRecord {
    let mut attrs = vec![
        s("causeway.kind", "flag"),
        s("causeway.rule.id", &*f.rule_id),
        s("causeway.rule.title", &*f.title),
        s("causeway.severity", f.severity.as_str()),
        arr("causeway.techniques", &f.techniques),
        s("causeway.tactic", &*f.tactic),
        s("causeway.event.kind", f.kind.as_str()),
        s("causeway.object", &*f.object),
        s("causeway.process.id", &*f.process_id),
        i("process.pid", f.pid),
        s("process.executable.path", &*f.exe),
        s("host.name", &*f.host),
    ];
    if let Some(by) = &f.suppressed_by {
        attrs.push(s("causeway.suppressed_by", &**by));
    }
    LogRecord {
        time_unix_nano: nanos(f.time),
        observed_time_unix_nano: nanos(Timestamp::now()),
        severity_number: severity_number(f.severity) as i32,
        severity_text: f.severity.as_str().to_string(),
        event_name: "causeway.flag".into(),
        body: Some(AnyValue {
            value: Some(Value::StringValue(format!("{}: {}", f.title, f.message))),
        }),
        attributes: attrs,
        ..Default::default()
    }
}

fn event_record(e: &Event) -> LogRecord {
    let p = &e.process;
    let mut attrs = vec![
        s("causeway.kind", "event"),
        s("causeway.event.kind", e.kind.as_str()),
        s("causeway.process.id", &*p.id),
        i("process.pid", p.pid),
        i("process.parent_pid", p.ppid),
        s("process.executable.path", &*p.exe),
        arr("process.command_args", &p.argv),
        s("process.working_directory", &*p.cwd),
        i("process.user.id", p.uid),
        s("host.name", &*e.host.name),
        s("host.id", &*e.host.id),
    ];
    if let Some(c) = &p.container {
        attrs.push(s("container.id", &*c.id));
        attrs.push(s("container.runtime.name", &*c.runtime));
    }
    if let Some(n) = &e.network {
        attrs.push(s("network.transport", &*n.protocol));
        attrs.push(s("network.type", &*n.family));
        attrs.push(s("network.peer.address", &*n.remote.ip));
        attrs.push(i("network.peer.port", n.remote.port));
        attrs.push(s("network.local.address", &*n.local.ip));
        attrs.push(i("network.local.port", n.local.port));
    }
    if let Some(f) = &e.file {
        attrs.push(s("file.path", &*f.path));
    }
    LogRecord {
        time_unix_nano: nanos(e.time),
        observed_time_unix_nano: nanos(Timestamp::now()),
        severity_number: SeverityNumber::Info as i32,
        severity_text: "info".into(),
        event_name: format!("causeway.event.{}", e.kind.as_str()),
        body: Some(AnyValue {
            value: Some(Value::StringValue(format!(
                "{} by {} ({})",
                e.kind.as_str(),
                p.exe,
                p.pid
            ))),
        }),
        attributes: attrs,
        ..Default::default()
    }
}

/// The request for a batch of records.
pub(crate) fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    s("service.name", "causeway"),
                    s("service.version", env!("CARGO_PKG_VERSION")),
                ],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "causeway".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                log_records: records,
                schema_url: SEMCONV_SCHEMA_URL.into(),
            }],
            schema_url: SEMCONV_SCHEMA_URL.into(),
        }],
    }
}

impl Sink for OtlpSink {
    type Message = LogRecord;

    fn name(&self) -> &'static str {
        "otlp"
    }

    fn accepts(&self) -> Accepts {
        Accepts {
            incidents: true,
            flags: true,
            events: self.events,
        }
    }

    fn encode(&mut self, output: &Output) -> Result<LogRecord, EncodeError> {
        Ok(match output {
            Output::Incident { change, incident } => incident_record(incident, change.as_str()),
            Output::Flag(f) => flag_record(f),
            Output::Event(e) => event_record(e),
        })
    }

    fn deliver(&mut self, batch: &[LogRecord]) -> Result<(), DeliveryError> {
        let body = request(batch.to_vec()).encode_to_vec();
        crate::http::post(&self.agent, &self.url, "application/x-protobuf", &[], &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_paths() {
        let ep = |u: &str| OtlpSink::new(&OtlpConfig::new(u)).map(|s| s.url);
        assert_eq!(ep("http://c:4318").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(ep("http://c:4318/").unwrap(), "http://c:4318/v1/logs");
        assert_eq!(
            ep("http://c:4318/v1/logs").unwrap(),
            "http://c:4318/v1/logs"
        );
        assert_eq!(ep("https://c/otel").unwrap(), "https://c/otel/v1/logs");
        assert!(ep("c:4318").is_err());
        assert!(ep("http://c:4318/?x=1").is_err());
    }
}
