//! Causeway's exports: incidents, flags and events sent to a webhook (Standard Webhooks
//! signatures), syslog (RFC 5424 over UDP or TCP), an OTLP/HTTP logs collector and a
//! rotated JSON-lines file.
//!
//! Key design choice: detection must never wait for an export. [`Exports::offer`] only
//! clones an `Arc` into each sink's *bounded* queue with `try_send`; a full queue drops the
//! output and counts it (`queue_full`). Every sink runs on its own thread, encodes outputs
//! there, delivers them in batches, retries transient failures with capped exponential
//! backoff and jitter, and turns a batch that keeps failing (or fails permanently) into a
//! counted dead letter. Every loss has a cause, is in [`SinkStats`] (for health) and in the
//! `metrics` facade as `causeway_events_lost_total{stage="sink",sink,cause}`; deliveries are
//! `causeway_sink_deliveries_total{sink,status}`. Delivery is at least once: a batch that
//! failed half-way is sent again whole.

mod config;
mod http;
mod jsonl;
mod otlp;
mod output;
mod runner;
mod syslog;
mod webhook;

pub use config::{
    ExportConfig, ExportError, Facility, FsyncPolicy, JsonlConfig, OtlpConfig, QueueConfig,
    RetryPolicy, SyslogConfig, SyslogTransport, WebhookConfig,
};
pub use jsonl::JsonlSink;
pub use otlp::{OtlpSink, SEMCONV_SCHEMA_URL, SEMCONV_VERSION};
pub use output::{Accepts, Change, Output};
pub use runner::{
    DeliveryError, EncodeError, Exports, LossCause, Losses, ShutdownReport, Sink, SinkStats,
};
pub use syslog::{SyslogSink, SD_ID};
pub use webhook::{WebhookSecret, WebhookSink};
