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

pub use backend::NodeBackend;

use causeway_graph::GraphConfig;
use causeway_model::{Event, Kind};
use causeway_rules::{IncidentConfig, IncidentEngine, MemoryLineage, Ruleset};
use causeway_store::{Pipeline, SqliteOptions, SqliteStore, Store};
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
}

/// What a node runs with.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    /// Rule files or directories; empty means the shipped ruleset built into the binary.
    pub rules: Vec<PathBuf>,
    /// The workload policies in force, by their kernel id.
    pub policies: BTreeMap<u32, causeway_policy::Policy>,
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
    pub flags: u64,
    pub suppressed_flags: u64,
    /// Events lost inside the node, by cause (`queue_full`, `store_error`).
    pub lost: BTreeMap<String, u64>,
    pub last_event: Option<causeway_model::timefmt::Timestamp>,
}

/// Everything the node knows, behind one lock.
pub struct Core {
    pub pipeline: Pipeline<SqliteStore>,
    /// Policy names by kernel id, and a live checker per policy for what the kernel does not
    /// check (users, listening ports, ingress and egress).
    pub policies: BTreeMap<u32, String>,
    checkers: Vec<(String, causeway_policy::Walker)>,
    pub ruleset: Ruleset,
    pub engine: IncidentEngine,
    pub lineage: MemoryLineage,
    pub counters: NodeCounters,
    updates: tokio::sync::broadcast::Sender<causeway_server::types::IncidentUpdate>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("counters", &self.counters)
            .finish()
    }
}

impl Core {
    /// Graph, store, detection for one event.
    pub fn ingest(&mut self, mut ev: Event) {
        self.counters.events += 1;
        self.counters.last_event = Some(ev.time);
        self.lineage.observe(&ev);
        let mut flags = self.ruleset.evaluate(&ev, &self.lineage);
        // A policy deviation the kernel acted on (or audited) is a flag like any detection,
        // so it joins the incident of its causal chain.
        if let Some(enf) = ev.enforcement.as_mut() {
            if let Some(name) = self.policies.get(&enf.policy_id) {
                enf.policy = name.clone();
            }
        }
        if let Some(enf) = &ev.enforcement {
            flags.push(policy_flag(&ev, enf));
        }
        for (name, w) in &mut self.checkers {
            let before = w.deviations.len();
            w.step(&ev, true);
            // Executables are the kernel's job (flagged above, from its decision).
            for d in w.deviations[before..]
                .iter()
                .filter(|d| d.kind != causeway_policy::DeviationKind::Process)
            {
                flags.push(deviation_flag(&ev, name, d));
            }
        }
        self.engine.observe(&ev, &self.lineage);
        if !flags.is_empty() {
            self.counters.flags += flags.len() as u64;
            self.counters.suppressed_flags +=
                flags.iter().filter(|f| f.suppressed_by.is_some()).count() as u64;
            for u in self.engine.add_flags(&flags, &self.lineage) {
                let json = serde_json::to_value(&u.incident).unwrap_or_default();
                let i = &u.incident;
                if let Err(e) = self.pipeline.store_mut().put_incident(
                    &i.id,
                    &json,
                    f64::from(i.score),
                    i.first_seen,
                    i.last_seen,
                ) {
                    tracing::error!("saving incident {}: {e}", i.id);
                }
                let summary = convert::summary(i);
                let change = if u.opened { "new" } else { "updated" };
                let _ = self.updates.send(causeway_server::types::IncidentUpdate {
                    change: change.to_string(),
                    incident: summary,
                });
            }
        }
        if let Err(e) = self.pipeline.ingest(ev) {
            tracing::error!("store: {e}");
        }
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
        let lost = self.pipeline.lost();
        if lost > 0 {
            self.counters.lost.insert("store_error".into(), lost);
        }
    }
}

/// How a flag names its host: the name people know, the id when there is none (as the
/// rules engine does).
fn host_label(h: &causeway_model::Host) -> String {
    if h.name.is_empty() {
        h.id.clone()
    } else {
        h.name.clone()
    }
}

/// The flag of an exec outside a workload policy.
fn policy_flag(ev: &Event, enf: &causeway_model::Enforcement) -> causeway_rules::Flag {
    let name = if enf.policy.is_empty() {
        format!("#{}", enf.policy_id)
    } else {
        enf.policy.clone()
    };
    let severity = if enf.action == "audited" {
        causeway_rules::Severity::Medium
    } else {
        causeway_rules::Severity::High
    };
    let exe = ev
        .exec
        .as_ref()
        .map(|x| x.filename.clone())
        .unwrap_or_else(|| ev.process.exe.clone());
    // Messages read `title: details`, as the rules engine writes them (incident titles use
    // the part before the colon).
    let title = format!("Executable outside workload policy {name}");
    causeway_rules::Flag {
        rule_id: "CW-POLICY-EXEC".to_string(),
        message: format!(
            "{title}: {exe} {} by {}",
            enf.action,
            enf.mechanism,
            exe = exe
        ),
        title,
        severity,
        techniques: Vec::new(),
        tactic: "execution".to_string(),
        time: ev.time,
        kind: ev.kind,
        host: host_label(&ev.host),
        process_id: ev.process.id.clone(),
        pid: ev.process.pid,
        exe: ev.process.exe.clone(),
        object: exe,
        suppressed_by: None,
    }
}

/// The flag of a connection, listening port or user outside a workload policy.
fn deviation_flag(
    ev: &Event,
    policy: &str,
    d: &causeway_policy::Deviation,
) -> causeway_rules::Flag {
    let title = format!("Activity outside workload policy {policy}");
    causeway_rules::Flag {
        rule_id: "CW-POLICY-DEVIATION".to_string(),
        message: format!("{title}: {}", d.message),
        title,
        severity: causeway_rules::Severity::Medium,
        techniques: Vec::new(),
        tactic: "execution".to_string(),
        time: ev.time,
        kind: ev.kind,
        host: host_label(&ev.host),
        process_id: d.process_id.clone(),
        pid: d.pid,
        exe: d.exe.clone(),
        object: d.key.clone(),
        suppressed_by: None,
    }
}

/// A running node: the ingest thread and the shared state.
pub struct Node {
    core: Arc<Mutex<Core>>,
    tx: crossbeam_channel::Sender<Event>,
    queue_full: Arc<std::sync::atomic::AtomicU64>,
    /// Events handed to the ingest thread, so `sync` can wait for exactly these.
    accepted: std::sync::atomic::AtomicU64,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    started: Instant,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Node")
    }
}

/// Events waiting for the ingest thread, at most; beyond that they are counted and dropped
/// rather than growing memory without bound.
const QUEUE: usize = 262_144;

impl Node {
    /// Open the store under `data_dir` (rebuilding the graph from it) and start ingesting.
    pub fn open(cfg: &NodeConfig) -> Result<Node, NodeError> {
        let ruleset = load_rules(&cfg.rules)?;
        let store = SqliteStore::open(&cfg.data_dir, &SqliteOptions::default())?;
        let pipeline = Pipeline::open(store, GraphConfig::default())?;
        let (updates, _) = tokio::sync::broadcast::channel(1024);
        // Incidents saved earlier stay listed (the API reads them from the store); the
        // engine starts afresh for new activity.
        let core = Core {
            pipeline,
            policies: cfg
                .policies
                .iter()
                .map(|(id, p)| (*id, p.name.clone()))
                .collect(),
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
            ruleset,
            engine: IncidentEngine::new(IncidentConfig::default()),
            lineage: MemoryLineage::new(),
            counters: NodeCounters::default(),
            updates,
        };
        let core = Arc::new(Mutex::new(core));
        let (tx, rx) = crossbeam_channel::bounded::<Event>(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let core = Arc::clone(&core);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("causeway-ingest".into())
                .spawn(move || ingest_loop(&core, &rx, &stop))
                .map_err(|e| NodeError::Rules(format!("spawning the ingest thread: {e}")))?
        };
        Ok(Node {
            core,
            tx,
            queue_full: Arc::default(),
            accepted: Default::default(),
            stop,
            thread: Some(thread),
            started: Instant::now(),
        })
    }

    /// Hand an event to the ingest thread; `false` (and counted) when the queue is full.
    pub fn submit(&self, ev: Event) -> bool {
        match self.tx.try_send(ev) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(_) => {
                self.queue_full.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Hand an event over, waiting for room (for replays, where nothing may be dropped).
    pub fn submit_blocking(&self, ev: Event) {
        if self.tx.send(ev).is_ok() {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The shared state (for the CLI's read-only commands).
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The API's view of this node.
    pub fn backend(&self, agent: Option<Arc<causeway_agent::Stats>>) -> NodeBackend {
        NodeBackend::new(
            Arc::clone(&self.core),
            agent,
            Arc::clone(&self.queue_full),
            self.started,
        )
    }

    /// Wait until everything submitted so far is ingested and committed.
    pub fn sync(&self) {
        // The queue being empty is not enough: the ingest thread may hold a batch it took.
        let want = self.accepted.load(Ordering::Relaxed);
        while self.core().counters.events < want {
            if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.core().commit(true);
    }

    /// Stop the ingest thread after it drained the queue, and commit.
    pub fn shutdown(mut self) {
        self.sync();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.core().commit(true);
    }
}

fn ingest_loop(core: &Mutex<Core>, rx: &crossbeam_channel::Receiver<Event>, stop: &AtomicBool) {
    let mut idle_since = Instant::now();
    let mut drained = true;
    while !stop.load(Ordering::Relaxed) {
        let first = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(e) => e,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                let mut c = core.lock().unwrap_or_else(|p| p.into_inner());
                // After a second without events, apply what waits in the reorder buffer so
                // queries see it; while events flow, only commit.
                let drain = !drained && idle_since.elapsed() > Duration::from_secs(1);
                c.commit(drain);
                drained |= drain;
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        let mut c = core.lock().unwrap_or_else(|p| p.into_inner());
        c.ingest(first);
        // A bounded batch per lock, so API requests wait milliseconds at most.
        for ev in rx.try_iter().take(2048) {
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
