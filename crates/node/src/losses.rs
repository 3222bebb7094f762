//! The node's internal events, as types: losses by stage, cause and kind, and the outcome of
//! reloads. Each is counted where it happens and read by health and `/metrics`, so a loss is
//! never just a log line (the habit of vector's `internal_events`).

use causeway_model::Kind;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Where in the node an event was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The intake queues between the agent and detection.
    Intake,
    /// The embedded store.
    Store,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Intake => "intake",
            Stage::Store => "store",
        }
    }
}

/// Why it was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    /// Its lane's bounded queue was full (bulk lane first: the critical lane has its own).
    QueueFull,
    /// The store failed to append the batch holding it.
    StoreError,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::QueueFull => "queue_full",
            Cause::StoreError => "store_error",
        }
    }
}

const KINDS: usize = Kind::MAX_CODE as usize + 1;

/// Loss counters. Intake losses are per kind on the hot path (atomics, no lock); the rest
/// are rare and kept in a map.
#[derive(Debug)]
pub struct Losses {
    intake: [AtomicU64; KINDS],
    other: Mutex<BTreeMap<(Stage, Cause), u64>>,
}

impl Default for Losses {
    fn default() -> Self {
        Losses {
            intake: std::array::from_fn(|_| AtomicU64::new(0)),
            other: Mutex::default(),
        }
    }
}

/// One counted loss, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loss {
    pub stage: Stage,
    pub cause: Cause,
    pub kind: Option<Kind>,
    pub count: u64,
}

impl Losses {
    /// An event refused by its full intake lane.
    pub fn intake_full(&self, kind: Kind) {
        if let Some(c) = self.intake.get(usize::from(kind.code())) {
            c.fetch_add(1, Relaxed);
        }
    }

    pub fn add(&self, stage: Stage, cause: Cause, n: u64) {
        if n == 0 {
            return;
        }
        let mut m = self.other.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((stage, cause)).or_default() += n;
    }

    /// Set a cumulative counter kept elsewhere (e.g. the store's own loss count).
    pub fn set(&self, stage: Stage, cause: Cause, n: u64) {
        let mut m = self.other.lock().unwrap_or_else(|p| p.into_inner());
        if n == 0 {
            m.remove(&(stage, cause));
        } else {
            m.insert((stage, cause), n);
        }
    }

    /// Every non-zero counter.
    pub fn snapshot(&self) -> Vec<Loss> {
        let mut out: Vec<Loss> = Kind::ALL
            .iter()
            .filter_map(|&k| {
                let n = self.intake.get(usize::from(k.code()))?.load(Relaxed);
                (n > 0).then_some(Loss {
                    stage: Stage::Intake,
                    cause: Cause::QueueFull,
                    kind: Some(k),
                    count: n,
                })
            })
            .collect();
        let m = self.other.lock().unwrap_or_else(|p| p.into_inner());
        out.extend(m.iter().map(|(&(stage, cause), &count)| Loss {
            stage,
            cause,
            kind: None,
            count,
        }));
        out
    }

    /// Intake losses of one kind.
    pub fn intake_lost(&self, kind: Kind) -> u64 {
        self.intake
            .get(usize::from(kind.code()))
            .map_or(0, |c| c.load(Relaxed))
    }
}

impl Loss {
    /// The key health uses: `queue_full:file.open`, `store_error`.
    pub fn health_key(&self) -> String {
        match self.kind {
            Some(k) => format!("{}:{}", self.cause.as_str(), k.as_str()),
            None => self.cause.as_str().to_string(),
        }
    }
}
