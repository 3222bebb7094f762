//! Causeway on one node. Events (live from the agent, or replayed by `causeway ingest`) go
//! through one ingest thread: the causal graph and the embedded store (the store crate's
//! `Pipeline`), then detection (rules evaluated with their lineage context, flags grouped
//! into incidents), and every incident that opens or grows is saved and broadcast. The HTTP
//! API reads the same state through [`NodeBackend`].
//!
//! Key design choice: one [`Core`] behind one mutex, taken per batch by the ingest thread and
//! per request by the API. On a single node this is simple and fast enough (a batch holds the
//! lock for milliseconds), and it keeps the graph, the store and the incidents consistent
//! with each other without any cross-thread protocol. Detection runs on events as they
//! arrive, before the graph's reorder horizon, so an incident never waits for it.

mod backend;
mod convert;
mod lanes;
pub mod losses;
mod metrics;
pub mod stages;

pub use backend::NodeBackend;
pub use lanes::IntakeConfig;
pub use losses::{Cause, Loss, Losses, Stage as LossStage};

use causeway_export::{Change, Exports, Output};
use causeway_graph::GraphConfig;
use causeway_index::{IndexConfig, ProcessIndex};
use causeway_model::{Event, Kind};
use causeway_rules::{IncidentConfig, IncidentEngine, Ruleset};
use causeway_store::{Pipeline, SqliteOptions, SqliteStore, Store};
use lanes::{Intake, Lanes};
use stages::{Detection, Deviations, EnforcementFlags, Incidents, Stage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

include!(concat!(env!("OUT_DIR"), "/shipped_rules.rs"));

/// Errors opening a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("store: {0}")]
    Store(#[from] causeway_store::StoreError),
    #[error("rules:\n{0}")]
    Rules(String),
    #[error("spawning the ingest thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("exports: {0}")]
    Exports(#[from] causeway_export::ExportError),
}

/// What a node runs with.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// Rule files or directories; empty means the shipped ruleset built into the binary.
    pub rules: Vec<PathBuf>,
    /// The workload policies in force, by their kernel id.
    pub policies: BTreeMap<u32, causeway_policy::Policy>,
    /// Capacities of the intake lanes.
    pub intake: IntakeConfig,
    /// Sinks that export incidents and flags (webhook, syslog, OTLP, JSON lines).
    pub exports: causeway_export::ExportConfig,
}

/// Load rules from paths, or the shipped set. Any error in any file loads nothing.
pub fn load_rules(paths: &[PathBuf]) -> Result<Ruleset, NodeError> {
    let report = |errors: &[causeway_rules::FileError]| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    if paths.is_empty() {
        let sources: Vec<(PathBuf, &str)> = SHIPPED_RULES
            .iter()
            .map(|(n, t)| (PathBuf::from("rules").join(n), *t))
            .collect();
        let refs: Vec<(&Path, &str)> = sources.iter().map(|(p, t)| (p.as_path(), *t)).collect();
        let loaded = Ruleset::from_sources(&refs);
        if !loaded.errors.is_empty() {
            return Err(NodeError::Rules(report(&loaded.errors)));
        }
        return Ok(loaded.ruleset);
    }
    Ruleset::load(paths).map_err(|e| NodeError::Rules(report(&e.errors)))
}

/// Counters of the node itself.
#[derive(Debug, Default, Clone)]
pub struct NodeCounters {
    pub events: u64,
    /// Events received, indexed by [`Kind::code`].
    pub received: [u64; Kind::MAX_CODE as usize + 1],
    pub flags: u64,
    pub suppressed_flags: u64,
    /// Events lost inside the node, by cause (`queue_full:<kind>`, `store_error`).
    pub lost: BTreeMap<String, u64>,
    pub last_event: Option<causeway_model::timefmt::Timestamp>,
}

/// The outcome of the latest (re)load of rules, for health and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    pub time: causeway_model::timefmt::Timestamp,
    /// `None` when it succeeded; the error otherwise (the previous set stayed in force).
    pub error: Option<String>,
    pub rules: usize,
    pub reloads: u64,
}

/// The judging stages, in the order they run (see [`stages`]).
struct Stages {
    detection: Detection,
    enforcement: EnforcementFlags,
    deviations: Deviations,
    incidents: Incidents,
}

/// Everything the node knows, behind one lock: the process index, the judging stages, and
/// the store sink (graph + SQLite) the API reads.
pub struct Core {
    pub pipeline: Pipeline<SqliteStore>,
    /// The one process-and-flow index (arrival time; rebuilt from the store at open).
    pub index: ProcessIndex,
    stages: Stages,
    pub counters: NodeCounters,
    pub reload: ReloadStatus,
    losses: Arc<Losses>,
    updates: tokio::sync::broadcast::Sender<causeway_server::types::IncidentUpdate>,
    /// Export sinks: each on its own thread behind a bounded queue; offering never blocks.
    exports: Exports,
    /// Whether any sink wants every event (costs one shared copy per event).
    export_events: bool,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("counters", &self.counters)
            .finish()
    }
}

impl Core {
    /// The rules detection runs.
    pub fn ruleset(&self) -> &Ruleset {
        &self.stages.detection.ruleset
    }

    /// One event through the pipeline: index, judges, incidents, then the sinks (live
    /// updates, store).
    pub fn ingest(&mut self, mut ev: Event) {
        self.counters.events += 1;
        if let Some(n) = self.counters.received.get_mut(usize::from(ev.kind.code())) {
            *n += 1;
        }
        self.counters.last_event = Some(ev.time);
        self.index.observe(&ev);
        let mut flags = Vec::new();
        let s = &mut self.stages;
        for stage in [
            &mut s.detection as &mut dyn Stage,
            &mut s.enforcement,
            &mut s.deviations,
        ] {
            stage.judge(&mut ev, &self.index, &mut flags);
        }
        let updates = s.incidents.group(&ev, &flags, &self.index);
        if !flags.is_empty() {
            self.counters.flags += flags.len() as u64;
            self.counters.suppressed_flags +=
                flags.iter().filter(|f| f.suppressed_by.is_some()).count() as u64;
        }
        // Copies for the sinks only when there are sinks: the common case has none.
        if !self.exports.is_empty() {
            for f in flags.iter().filter(|f| f.suppressed_by.is_none()) {
                self.exports.offer(&Output::Flag(Arc::new(f.clone())));
            }
        }
        for u in updates {
            self.incident_sinks(&u);
        }
        if self.export_events {
            self.exports.offer(&Output::Event(Arc::new(ev.clone())));
        }
        if let Err(e) = self.pipeline.ingest(ev) {
            tracing::error!("store: {e}");
        }
    }

    /// An incident that opened or grew: saved, and broadcast to live subscribers.
    fn incident_sinks(&mut self, u: &causeway_rules::IncidentUpdate) {
        let i = &u.incident;
        match serde_json::to_value(i) {
            Ok(json) => {
                if let Err(e) = self.pipeline.store_mut().put_incident(
                    &i.id,
                    &json,
                    f64::from(i.score),
                    i.first_seen,
                    i.last_seen,
                ) {
                    tracing::error!("saving incident {}: {e}", i.id);
                }
            }
            Err(e) => tracing::error!("encoding incident {}: {e}", i.id),
        }
        if !self.exports.is_empty() {
            self.exports.offer(&Output::Incident {
                change: if u.opened {
                    Change::Opened
                } else {
                    Change::Updated
                },
                incident: Arc::new(i.clone()),
            });
        }
        let change = if u.opened { "new" } else { "updated" };
        // No subscriber is not an error: the UI may simply not be open.
        let _ = self.updates.send(causeway_server::types::IncidentUpdate {
            change: change.to_string(),
            incident: convert::summary(i),
        });
    }

    /// Commit what is batched; with `drain`, also apply what waits in the reorder buffer.
    pub fn commit(&mut self, drain: bool) {
        let r = if drain {
            self.pipeline.flush()
        } else {
            self.pipeline.commit()
        };
        if let Err(e) = r {
            tracing::error!("store commit: {e}");
        }
        self.losses
            .set(LossStage::Store, Cause::StoreError, self.pipeline.lost());
        self.counters.lost = self
            .losses
            .snapshot()
            .iter()
            .map(|l| (l.health_key(), l.count))
            .collect();
        // Export losses are outputs (incidents, flags), not events; they are named apart.
        for st in self.exports.stats() {
            for cause in causeway_export::LossCause::ALL {
                let n = match cause {
                    causeway_export::LossCause::QueueFull => st.lost.queue_full,
                    causeway_export::LossCause::DeadLetter => st.lost.dead_letter,
                    causeway_export::LossCause::EncodeError => st.lost.encode_error,
                    causeway_export::LossCause::Shutdown => st.lost.shutdown,
                };
                if n > 0 {
                    self.counters
                        .lost
                        .insert(format!("sink:{}:{}", st.sink, cause.as_str()), n);
                }
            }
        }
    }

    /// Put a new rule set in force (all or nothing: the caller loaded it completely).
    pub fn set_ruleset(&mut self, ruleset: Ruleset) {
        self.reload = ReloadStatus {
            time: causeway_model::timefmt::Timestamp::now(),
            error: None,
            rules: ruleset.rules().len(),
            reloads: self.reload.reloads + 1,
        };
        self.stages.detection.ruleset = Arc::new(ruleset);
    }

    /// Record a reload that failed (the rules in force stay).
    pub fn reload_failed(&mut self, error: String) {
        self.reload.time = causeway_model::timefmt::Timestamp::now();
        self.reload.error = Some(error);
        self.reload.reloads += 1;
    }
}

/// A running node: the intake lanes, the ingest thread and the shared state.
pub struct Node {
    core: Arc<Mutex<Core>>,
    intake: Intake,
    losses: Arc<Losses>,
    /// Events handed to the ingest thread, so `sync` can wait for exactly these.
    accepted: std::sync::atomic::AtomicU64,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
    rules: Vec<PathBuf>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Node")
    }
}

impl Node {
    /// Open the store under `data_dir` (rebuilding the graph and the process index from it)
    /// and start ingesting.
    pub fn open(cfg: &NodeConfig) -> Result<Node, NodeError> {
        let ruleset = load_rules(&cfg.rules)?;
        let store = SqliteStore::open(&cfg.data_dir, &SqliteOptions::default())?;
        let mut index = ProcessIndex::with_config(IndexConfig::default());
        let graph_cfg = GraphConfig {
            flow: index.config().flow,
            ..GraphConfig::default()
        };
        let pipeline = Pipeline::open_observing(store, graph_cfg, &mut |e| index.observe(e))?;
        let (updates, _) = tokio::sync::broadcast::channel(1024);
        let losses = Arc::new(Losses::default());
        let rules = ruleset.rules().len();
        let export_events = cfg.exports.jsonl.as_ref().is_some_and(|j| j.events)
            || cfg.exports.otlp.as_ref().is_some_and(|o| o.events);
        let exports = Exports::start(cfg.exports.clone())?;
        // Incidents saved earlier stay listed (the API reads them from the store); the
        // engine starts afresh for new activity.
        let core = Core {
            pipeline,
            index,
            stages: Stages {
                detection: Detection {
                    ruleset: Arc::new(ruleset),
                },
                enforcement: EnforcementFlags {
                    names: cfg
                        .policies
                        .iter()
                        .map(|(id, p)| (*id, p.name.clone()))
                        .collect(),
                },
                deviations: Deviations {
                    checkers: cfg
                        .policies
                        .values()
                        .map(|p| {
                            (
                                p.name.clone(),
                                causeway_policy::Walker::new(p.clone(), true),
                            )
                        })
                        .collect(),
                },
                incidents: Incidents {
                    engine: IncidentEngine::new(IncidentConfig::default()),
                },
            },
            counters: NodeCounters::default(),
            reload: ReloadStatus {
                time: causeway_model::timefmt::Timestamp::now(),
                error: None,
                rules,
                reloads: 0,
            },
            losses: Arc::clone(&losses),
            updates,
            exports,
            export_events,
        };
        let core = Arc::new(Mutex::new(core));
        let (intake, lanes) = lanes::intake(cfg.intake, Arc::clone(&losses));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let core = Arc::clone(&core);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("causeway-ingest".into())
                .spawn(move || ingest_loop(&core, &lanes, &stop))
                .map_err(NodeError::Thread)?
        };
        Ok(Node {
            core,
            intake,
            losses,
            accepted: Default::default(),
            stop,
            thread: Some(thread),
            started: Instant::now(),
            rules: cfg.rules.clone(),
        })
    }

    /// Hand an event to its lane; `false` (and counted, by kind) when that lane is full.
    /// Bulk file activity can fill only its own lane: critical events keep their capacity.
    pub fn submit(&self, ev: Event) -> bool {
        let ok = self.intake.offer(ev);
        if ok {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Hand an event over, waiting for room (for replays, where nothing may be dropped).
    pub fn submit_blocking(&self, ev: Event) {
        if self.intake.send(ev) {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reload the rules from the paths the node was opened with (or the shipped set): all
    /// or nothing, the rules in force stay on any error. Returns the error, if any.
    pub fn reload_rules(&self) -> Result<usize, NodeError> {
        match load_rules(&self.rules) {
            Ok(r) => {
                let n = r.rules().len();
                self.core().set_ruleset(r);
                tracing::info!("rules reloaded: {n} rules in force");
                Ok(n)
            }
            Err(e) => {
                tracing::error!("rules reload failed, the previous rules stay in force: {e}");
                self.core().reload_failed(e.to_string());
                Err(e)
            }
        }
    }

    /// Loss counters of the node (intake by kind, store).
    pub fn losses(&self) -> &Arc<Losses> {
        &self.losses
    }

    /// The shared state (for the CLI's read-only commands).
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The API's view of this node.
    pub fn backend(&self, agent: Option<Arc<causeway_agent::Stats>>) -> NodeBackend {
        NodeBackend::new(Arc::clone(&self.core), agent, self.started)
    }

    /// Wait until everything submitted so far is ingested and committed.
    pub fn sync(&self) {
        // The queues being empty is not enough: the ingest thread may hold a batch it took.
        let want = self.accepted.load(Ordering::Relaxed);
        while self.core().counters.events < want {
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.core().commit(true);
    }

    /// Stop the ingest thread after it drained the queues, and commit.
    pub fn shutdown(mut self) {
        self.sync();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the ingest thread panicked");
            }
        }
        let mut core = self.core();
        core.commit(true);
        let report = std::mem::take(&mut core.exports).shutdown(Duration::from_secs(5));
        for s in &report.sinks {
            if s.lost.total() > 0 {
                tracing::warn!(sink = s.sink, lost = ?s.lost, "export losses");
            }
        }
        if !report.unfinished.is_empty() {
            tracing::warn!(sinks = ?report.unfinished, "export sinks still busy at shutdown");
        }
    }

    /// Counters of the export sinks.
    pub fn export_stats(&self) -> Vec<causeway_export::SinkStats> {
        self.core().exports.stats()
    }
}

/// Events taken per lock: API requests wait milliseconds at most.
const BATCH: usize = 2048;

fn ingest_loop(core: &Mutex<Core>, lanes: &Lanes, stop: &AtomicBool) {
    let mut idle_since = Instant::now();
    let mut drained = true;
    while !stop.load(Ordering::Relaxed) {
        let first = match lanes.next(Duration::from_millis(100)) {
            lanes::Next::Event(e) => e,
            lanes::Next::Closed => break,
            lanes::Next::Idle => {
                let mut c = core.lock().unwrap_or_else(|p| p.into_inner());
                // After a second without events, apply what waits in the reorder buffer so
                // queries see it; while events flow, only commit.
                let drain = !drained && idle_since.elapsed() > Duration::from_secs(1);
                c.commit(drain);
                drained |= drain;
                continue;
            }
        };
        let mut c = core.lock().unwrap_or_else(|p| p.into_inner());
        c.ingest(first);
        // Critical events first, every batch: a bulk flood waits, an exec does not.
        for ev in lanes.batch(BATCH) {
            c.ingest(ev);
        }
        idle_since = Instant::now();
        drained = false;
    }
}

/// Kinds the process explorer lists as flows / files.
pub(crate) fn is_flow(k: Kind) -> bool {
    matches!(k, Kind::NetConnect | Kind::NetAccept | Kind::NetListen)
}
