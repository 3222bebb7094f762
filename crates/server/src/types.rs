//! The API's response types (serde). These are what `/api/v1` returns and what a [`Backend`]
//! produces; `openapi.rs` documents the same shapes. Events are returned in the agent's JSON
//! form ([`causeway_model::Event`]) unchanged.
//!
//! Times are [`Timestamp`]s, serialized as RFC 3339 UTC with nanoseconds.
//!
//! [`Backend`]: crate::Backend

use causeway_model::timefmt::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub use causeway_model::Severity;

/// A process named in an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessRef {
    pub id: String,
    pub pid: u32,
}

/// The process an incident starts from (its entry point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootProcess {
    pub id: String,
    pub pid: u32,
    pub exe: String,
}

/// One incident as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: String,
    pub title: String,
    pub score: f64,
    pub severity: Severity,
    /// ATT&CK technique ids, e.g. `T1059.004`.
    pub techniques: Vec<String>,
    pub root_process: RootProcess,
    pub processes: Vec<ProcessRef>,
    /// Host names.
    pub hosts: Vec<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// A rule match inside an incident. Field names follow the rules crate's `Flag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub techniques: Vec<String>,
    #[serde(default)]
    pub tactic: String,
    pub time: Timestamp,
    /// Event kind, e.g. `file.open`.
    pub kind: String,
    #[serde(default)]
    pub host: String,
    pub process_id: String,
    #[serde(default)]
    pub pid: u32,
    #[serde(default)]
    pub exe: String,
    /// What the event acted on (a path, an endpoint, a target process, the command line).
    #[serde(default)]
    pub object: String,
    #[serde(default)]
    pub message: String,
}

/// One node of a causal trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceNode {
    pub id: String,
    /// `process`, `file`, `endpoint`, `act` (any other act, e.g. a module load), or `group`
    /// (siblings collapsed by the server; `data.count` says how many).
    pub kind: String,
    /// Short display text (workload-controlled: render as text).
    pub label: String,
    /// Kind-specific details; for a process: pid, ppid, exe, argv, cwd, uid/euid/gid/egid,
    /// auid, tty, container, service, host, start_time, exit_time, exit.
    pub data: serde_json::Value,
    pub flagged: bool,
    /// Ids of the rules that flagged this node.
    pub rules: Vec<String>,
    pub techniques: Vec<String>,
    /// When the node first appears (process start, first access); orders the layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// Host name, for cross-host traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// One causal edge: `source` caused or acted on `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEdge {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub source: String,
    pub target: String,
    /// `fork`, `exec`, `connect`, `accept`, `write`, `read`, `rename`, `unlink`, `chmod`,
    /// `ptrace`, `act`, `group`.
    pub kind: String,
    /// First occurrence.
    pub time: Timestamp,
    /// How many times it happened (repeats are merged).
    pub count: u64,
}

/// A causal graph.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub nodes: Vec<TraceNode>,
    pub edges: Vec<TraceEdge>,
    /// Set when the server collapsed nodes to keep the graph usable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregated: Option<Aggregation>,
}

/// What server-side aggregation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregation {
    pub original_nodes: usize,
    pub original_edges: usize,
    pub hidden_nodes: usize,
}

/// An incident with its flags and trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub summary: IncidentSummary,
    pub flags: Vec<Flag>,
    pub trace: Trace,
}

/// A page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matches before paging.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
}

/// A process in relation lists (ancestors, children, peers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessBrief {
    pub id: String,
    pub pid: u32,
    pub exe: String,
    pub argv: Vec<String>,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
}

/// One side of a network flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowInfo {
    /// `outbound` (connect), `inbound` (accept) or `listen`.
    pub direction: String,
    pub protocol: String,
    pub local: causeway_model::Endpoint,
    pub remote: causeway_model::Endpoint,
    pub time: Timestamp,
    /// The process on the other end, when seen (possibly on another host).
    pub peer: Option<ProcessBrief>,
}

/// A file a process touched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileAccess {
    pub path: String,
    /// The event kind, e.g. `file.open`.
    pub kind: String,
    pub write: bool,
    pub sensitive: bool,
    pub time: Timestamp,
}

/// A process with its relations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessDetail {
    /// The process as last seen (agent form).
    pub process: causeway_model::Process,
    pub host: causeway_model::Host,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<causeway_model::Exit>,
    /// Parent first.
    pub ancestors: Vec<ProcessBrief>,
    pub children: Vec<ProcessBrief>,
    pub flows: Vec<FlowInfo>,
    pub files: Vec<FileAccess>,
}

/// One agent's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHealth {
    pub host: String,
    pub host_id: String,
    /// `running`, `stopped`, `degraded` or `unknown`.
    pub state: String,
    pub last_event: Option<Timestamp>,
    pub events_seen: u64,
    /// Events lost, per cause (e.g. `ringbuf_full`, `queue_full`, `store_error`).
    pub events_lost: BTreeMap<String, u64>,
}

/// The backend's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    pub agents: Vec<AgentHealth>,
    pub events_seen: u64,
    pub events_lost: BTreeMap<String, u64>,
    pub incidents: u64,
    /// Seconds since the backend started.
    pub uptime_seconds: u64,
}

/// A detection rule (read only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub severity: Severity,
    #[serde(default)]
    pub techniques: Vec<String>,
    #[serde(default)]
    pub tactic: String,
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Where it was defined, `file:line`.
    #[serde(default)]
    pub origin: String,
}

/// A policy (read only) and how often it was deviated from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInfo {
    pub id: String,
    pub name: String,
    /// `monitor` or `enforce`.
    pub mode: String,
    #[serde(default)]
    pub description: String,
    pub deviations: u64,
}

/// A live update: a new incident or an incident that grew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentUpdate {
    /// `new` or `updated`.
    pub change: String,
    pub incident: IncidentSummary,
}

/// The error body of every failed request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
