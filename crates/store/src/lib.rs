//! Causeway's storage: the [`Store`] trait (so a fleet can plug in PostgreSQL later), the
//! embedded SQLite default ([`SqliteStore`]), and the [`Pipeline`] that feeds every event
//! through the causal graph and into a store.
//!
//! Key design choice: events are stored *normalised and folded*, not as one JSON blob per
//! event. A row is `(time, kind, host, process snapshot, detail, [last, count])` of small
//! integers; the process snapshot (the model `Process`) and the kind-specific detail (`file`,
//! `network`, ...) are interned once in their own tables. Identical repeats of an event are
//! folded into one row (count + last time) exactly where the graph's dependence-preserving
//! reduction folded their edge, so replaying the rows rebuilds a graph with the same traces.
//! Every event is still returned in the agent's JSON form (see [`StoredEvent::to_json`]).
//!
//! Retention (see [`Retention`]): by age (rows whose last occurrence is older than `max_age`
//! are deleted) and by size (oldest rows are deleted in chunks until the database's used pages
//! fit `max_bytes`); snapshots and details no longer referenced are then dropped and the
//! freed pages returned to the filesystem (incremental vacuum). The graph rebuilt at the next
//! open reflects what is retained.
//!
//! Durability: WAL with `synchronous=NORMAL`: a committed batch survives the process being
//! killed at any point (tested with `kill -9`); on power loss the last batches may roll back
//! but the database stays consistent. `SqliteOptions::durable` selects `synchronous=FULL`.

mod codec;
mod pipeline;
mod sqlite;

pub use pipeline::Pipeline;
pub use sqlite::{SqliteOptions, SqliteStore};

use causeway_graph::Verdict;
use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, Kind};
use serde::Serialize;

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record {what} {id}: {msg}")]
    Corrupt {
        what: &'static str,
        id: i64,
        msg: String,
    },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// A filter over stored events. Every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub kind: Option<Kind>,
    /// Case-insensitive substring of argv, exe or a path (file, rename target, module).
    pub q: Option<String>,
    /// Only events whose last occurrence is at or after this time (ns since the epoch).
    pub since: Option<i64>,
    /// Only events whose first occurrence is at or before this time.
    pub until: Option<i64>,
    /// Host name or id.
    pub host: Option<String>,
    /// Model process id (`p-...`).
    pub process: Option<String>,
    /// At most this many, newest first (0 = the default of 100).
    pub limit: usize,
}

/// An event as stored: the event (at its first occurrence) and how many identical repeats
/// were folded into it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: i64,
    pub event: Event,
    pub count: u64,
    pub last_time: Timestamp,
}

impl StoredEvent {
    /// The agent's JSON form. A folded row adds one field the agent never writes,
    /// `"repeat": {"count": N, "last_time": "..."}`; readers of the contract ignore it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.event).unwrap_or_default();
        if self.count > 1 {
            if let Some(m) = v.as_object_mut() {
                m.insert(
                    "repeat".into(),
                    serde_json::json!({"count": self.count, "last_time": self.last_time}),
                );
            }
        }
        v
    }
}

/// An incident document saved by the detection engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentDoc {
    pub id: String,
    pub json: serde_json::Value,
    pub score: f64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

/// Retention policy. `None` = unlimited.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// Keep events whose last occurrence is newer than `now - max_age_ns`.
    pub max_age_ns: Option<i64>,
    /// Keep the database's used pages under this many bytes.
    pub max_bytes: Option<u64>,
}

/// What a retention pass removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub deleted_by_age: u64,
    pub deleted_by_size: u64,
    pub bytes_after: u64,
}

/// Sizes and counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStats {
    /// Rows in the events table.
    pub rows: u64,
    /// Events represented (sum of folded counts).
    pub events: u64,
    pub process_snapshots: u64,
    pub details: u64,
    pub incidents: u64,
    /// Bytes of used database pages (excluding free pages and the WAL).
    pub bytes: u64,
}

/// A storage backend. Appends happen in the order the graph applied the events, with the
/// graph's verdict for each, so the store can fold rows exactly where the graph folded edges.
pub trait Store: Send {
    /// Durably append a batch (one transaction).
    fn append(&mut self, batch: &[(Event, Verdict)]) -> Result<(), StoreError>;
    /// Events matching `q`, newest first.
    fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError>;
    /// Every stored event in time order, folded rows replayed as their first and last
    /// occurrence (enough to rebuild a graph with identical traces). Returns the count.
    fn replay(&self, sink: &mut dyn FnMut(Event)) -> Result<u64, StoreError>;
    /// Insert or replace an incident document.
    fn put_incident(
        &mut self,
        id: &str,
        json: &serde_json::Value,
        score: f64,
        first_seen: Timestamp,
        last_seen: Timestamp,
    ) -> Result<(), StoreError>;
    fn get_incident(&self, id: &str) -> Result<Option<IncidentDoc>, StoreError>;
    /// Most recent (by last_seen) first.
    fn list_incidents(&self, limit: usize) -> Result<Vec<IncidentDoc>, StoreError>;
    /// Apply a retention policy relative to `now` (ns since the epoch).
    fn retain(&mut self, policy: &Retention, now: i64) -> Result<RetentionReport, StoreError>;
    fn stats(&self) -> Result<StoreStats, StoreError>;
}
