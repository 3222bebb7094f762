//! The data operations the API needs, as one object-safe trait.
//!
//! The trait is synchronous on purpose: the embedded store is SQLite, whose calls block.
//! The server runs every backend call on tokio's blocking pool (`spawn_blocking`), so a slow
//! query never stalls the runtime that serves other requests and the live stream. Validation
//! of user input (limits, enums, times) is done by the server before a query reaches the
//! backend: an implementation may trust the ranges documented on each query field.

use crate::types::{
    Health, IncidentDetail, IncidentSummary, IncidentUpdate, Page, PolicyInfo, ProcessDetail,
    RuleInfo, Severity, Trace,
};
use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, Kind};
use tokio::sync::broadcast;

/// Why a backend call failed. The message is logged, never sent to clients (except for
/// [`BackendError::BadRequest`], whose message is meant for the user).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The request is valid HTTP but the backend cannot answer it as asked (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The store is temporarily unavailable (503).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything else (500, with a generic message).
    #[error("internal: {0}")]
    Internal(String),
}

/// Filters and paging for the incident list. Sorted by `last_seen`, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentQuery {
    /// 1..=1000.
    pub limit: u32,
    /// 0..=1_000_000.
    pub offset: u64,
    /// At least this severity.
    pub severity: Option<Severity>,
    /// At least this score (finite).
    pub min_score: Option<f64>,
    /// Host name, exact.
    pub host: Option<String>,
    /// ATT&CK technique; `T1059` also matches sub-techniques such as `T1059.004`.
    pub technique: Option<String>,
    /// Case-insensitive substring of the title, id, root exe, host names or techniques.
    pub q: Option<String>,
}

/// Filters for the event search. Sorted by time, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Any of these kinds; empty means all.
    pub kinds: Vec<Kind>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// Host name or host id, exact.
    pub host: Option<String>,
    /// Container id (or a prefix of at least 4 characters).
    pub container: Option<String>,
    /// Process id (the opaque string), exact.
    pub process: Option<String>,
    /// Case-sensitive substring of argv, exe or paths.
    pub q: Option<String>,
    /// 1..=10_000.
    pub limit: u32,
}

/// Which way a trace walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// What caused this process: parents, inbound flows, files it read or executed.
    Backward,
    /// What this process caused: children, outbound flows, files it wrote and their readers.
    Forward,
}

impl Direction {
    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "backward" => Some(Direction::Backward),
            "forward" => Some(Direction::Forward),
            _ => None,
        }
    }
}

/// The data behind the API, implemented by the node over the real store, graph and rules.
pub trait Backend: Send + Sync + 'static {
    /// Incidents matching the query, one page.
    fn incidents(&self, query: &IncidentQuery) -> Result<Page<IncidentSummary>, BackendError>;

    /// One incident with its flags and full trace; `None` if unknown. The server aggregates
    /// large traces itself, so return the whole graph.
    fn incident(&self, id: &str) -> Result<Option<IncidentDetail>, BackendError>;

    /// Events matching the query (agent JSON form).
    fn events(&self, query: &EventQuery) -> Result<Vec<Event>, BackendError>;

    /// A process with ancestors, children, flows (with peers) and files; `None` if unknown.
    /// `id` is a process id or a trace node id of one of its images (`proc:<id>@<start>`):
    /// every id the API hands out works here.
    fn process(&self, id: &str) -> Result<Option<ProcessDetail>, BackendError>;

    /// The causal trace from a process, `depth` (1..=64) hops; `None` if the process is
    /// unknown. The process itself is always a node. `id` as for [`Backend::process`]; a
    /// trace node id starts the trace at that image.
    fn trace(
        &self,
        id: &str,
        direction: Direction,
        depth: u32,
    ) -> Result<Option<Trace>, BackendError>;

    /// Agent state and counters.
    fn health(&self) -> Result<Health, BackendError>;

    /// The loaded detection rules.
    fn rules(&self) -> Result<Vec<RuleInfo>, BackendError>;

    /// The loaded policies (may be empty).
    fn policies(&self) -> Result<Vec<PolicyInfo>, BackendError>;

    /// Further Prometheus text exposition lines of the backend's own counters (pipeline
    /// stages, losses by stage and cause, the process index, sinks); appended to
    /// `/metrics` after the health counters.
    fn metrics(&self) -> Result<String, BackendError> {
        Ok(String::new())
    }

    /// Live updates: every new incident and every incident that grew. Each subscriber gets
    /// its own receiver; a slow subscriber loses old updates (it is told, and the UI reloads).
    fn subscribe(&self) -> broadcast::Receiver<IncidentUpdate>;
}
