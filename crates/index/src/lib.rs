//! The node's one process-and-flow index. Every consumer that needs to know *who* a process
//! is — detection (ancestors, session, flow peer), incidents (entry points, flow links), the
//! policy checker and the API — asks this index; nothing else in the node keeps a process
//! table.
//!
//! Key design choices:
//! - **Updated at arrival time.** The index takes each event as soon as the node receives it
//!   (before the causal graph's reorder horizon), so a rule never waits for the graph and
//!   an exec's ancestors are known when the exec is judged.
//! - **Shared snapshots, no copies.** An entry holds the event's `Arc<Process>`; lookups hand
//!   out clones of the `Arc`, never of the process.
//! - **Bounded, and never forgets what is alive.** At most [`IndexConfig::max_processes`]
//!   entries. An entry is counted by its live children (a reference count), so a process that
//!   has not exited, or that has a descendant still in the index, is never evicted; exited
//!   leaves go first, oldest first. Only when every entry is alive does the index evict live
//!   processes not heard from for [`IndexConfig::stale_after_ns`] (their exit may have been
//!   lost, e.g. while no agent ran). Evictions, stale evictions and lookup misses are counted
//!   ([`IndexStats`]).
//! - **Rebuilt from the store.** The node replays its store through [`ProcessIndex::observe`]
//!   at open, so ancestry survives restarts.
//! - **One flow-pairing rule** ([`flow`]), shared with the causal graph.

pub mod flow;

pub use flow::{FlowConfig, FlowTable, Side};

use causeway_model::{Event, Kind, Lineage, Process};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Bounds of the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexConfig {
    pub max_processes: usize,
    /// A live process not heard from for this long (event time, ns) may be evicted when the
    /// index is full of live processes.
    pub stale_after_ns: i64,
    pub flow: FlowConfig,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            max_processes: 200_000,
            stale_after_ns: 3_600 * 1_000_000_000,
            flow: FlowConfig::default(),
        }
    }
}

/// Sizes and counters, for health and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexStats {
    pub processes: usize,
    pub capacity: usize,
    /// Exited processes without descendants in the index, evicted to stay in bounds.
    pub evicted: u64,
    /// Live processes evicted because nothing was heard from them for a long time while the
    /// index was full of live processes.
    pub evicted_stale: u64,
    /// Lookups of a process the index did not know (never seen, or evicted).
    pub misses: u64,
    /// Flow halves remembered, flows paired, halves forgotten early to stay in bounds.
    pub flow_halves: usize,
    pub flows_paired: u64,
    pub flow_halves_forgotten: u64,
}

#[derive(Debug)]
struct Entry {
    process: Arc<Process>,
    /// The parent entry this one is counted by (set when the parent was known at creation).
    parent: Option<Arc<str>>,
    /// Entries that count this one as their parent.
    children: u32,
    exited: bool,
    last_seen: i64,
    /// Generation of this entry's latest place in the eviction queue.
    gen: u64,
}

impl Entry {
    fn evictable(&self) -> bool {
        self.exited && self.children == 0
    }
}

/// The process-and-flow index.
#[derive(Debug)]
pub struct ProcessIndex {
    cfg: IndexConfig,
    procs: FxHashMap<Arc<str>, Entry>,
    /// Eviction candidates in the order they became candidates; entries whose generation no
    /// longer matches were re-queued or removed and are skipped.
    queue: VecDeque<(u64, Arc<str>)>,
    gen: u64,
    newest: i64,
    flows: FlowTable,
    evicted: u64,
    evicted_stale: u64,
    misses: AtomicU64,
}

impl Default for ProcessIndex {
    fn default() -> Self {
        ProcessIndex::with_config(IndexConfig::default())
    }
}

/// Is the snapshot `p` of an already known process newer information than `known`? An exec
/// always is; otherwise only a change of what the kernel reports per event (credentials,
/// working directory, attribution) — a fork event shows the child with its parent's image,
/// and that must not overwrite an image learned from the child's own exec.
fn changed(known: &Process, p: &Process) -> bool {
    known.exe.is_empty() && !p.exe.is_empty()
        || known.uid != p.uid
        || known.euid != p.euid
        || known.gid != p.gid
        || known.egid != p.egid
        || known.auid != p.auid
        || known.session != p.session
        || known.tty != p.tty
        || known.container != p.container
        || known.service != p.service
}

impl ProcessIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_config(cfg: IndexConfig) -> Self {
        ProcessIndex {
            cfg,
            procs: FxHashMap::default(),
            queue: VecDeque::new(),
            gen: 0,
            newest: i64::MIN,
            flows: FlowTable::new(cfg.flow),
            evicted: 0,
            evicted_stale: 0,
            misses: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> IndexConfig {
        self.cfg
    }

    /// Learn from one event, as it arrives.
    pub fn observe(&mut self, e: &Event) {
        let p = &e.process;
        if p.id.is_empty() {
            return;
        }
        let t = e.time.0;
        self.newest = self.newest.max(t);
        let key: Arc<str> = match self.procs.get_key_value(p.id.as_str()) {
            Some((k, _)) => Arc::clone(k),
            None => self.insert(p),
        };
        if let Some(entry) = self.procs.get_mut(&key) {
            entry.last_seen = entry.last_seen.max(t);
            if !Arc::ptr_eq(&entry.process, p)
                && (e.kind == Kind::ProcessExec || changed(&entry.process, p))
            {
                entry.process = Arc::clone(p);
            }
        }
        match e.kind {
            Kind::ProcessExit => self.exited(&key),
            Kind::NetConnect | Kind::NetAccept => self.flows.observe(e, &key),
            _ => {}
        }
        self.evict();
    }

    fn insert(&mut self, p: &Arc<Process>) -> Arc<str> {
        let key: Arc<str> = Arc::from(p.id.as_str());
        let parent = match self.procs.get_key_value(p.parent_id.as_str()) {
            Some((k, _)) if !p.parent_id.is_empty() && p.parent_id != p.id => Some(Arc::clone(k)),
            _ => None,
        };
        if let Some(pk) = &parent {
            if let Some(pe) = self.procs.get_mut(pk) {
                pe.children += 1;
            }
        }
        self.gen += 1;
        self.procs.insert(
            Arc::clone(&key),
            Entry {
                process: Arc::clone(p),
                parent,
                children: 0,
                exited: false,
                last_seen: i64::MIN,
                gen: self.gen,
            },
        );
        // Every entry is queued once at creation: the queue doubles as the age order that a
        // full index of live processes falls back to.
        self.queue.push_back((self.gen, Arc::clone(&key)));
        key
    }

    fn exited(&mut self, key: &Arc<str>) {
        self.gen += 1;
        let gen = self.gen;
        if let Some(entry) = self.procs.get_mut(key) {
            entry.exited = true;
            if entry.evictable() {
                entry.gen = gen;
                self.queue.push_back((gen, Arc::clone(key)));
            }
        }
    }

    /// Evict until within bounds: exited leaves in queue order; live entries met on the way
    /// are re-queued, or evicted if stale. Bounded work per call.
    fn evict(&mut self) {
        let mut budget = 64;
        while self.procs.len() > self.cfg.max_processes && budget > 0 {
            budget -= 1;
            let Some((gen, key)) = self.queue.pop_front() else {
                break;
            };
            let Some(entry) = self.procs.get(&key) else {
                continue;
            };
            if entry.gen != gen {
                continue;
            }
            let stale = entry.children == 0
                && entry.last_seen < self.newest.saturating_sub(self.cfg.stale_after_ns);
            if entry.evictable() || stale {
                if !entry.evictable() {
                    self.evicted_stale += 1;
                } else {
                    self.evicted += 1;
                }
                self.remove(&key);
            } else {
                self.gen += 1;
                let g = self.gen;
                if let Some(e) = self.procs.get_mut(&key) {
                    e.gen = g;
                }
                self.queue.push_back((g, key));
            }
        }
        // Skipped queue slots are garbage; rebuild when they dominate.
        if self.queue.len() > 4 * self.procs.len() + 1024 {
            let mut live: Vec<(u64, Arc<str>)> = self
                .procs
                .iter()
                .map(|(k, e)| (e.gen, Arc::clone(k)))
                .collect();
            live.sort_unstable_by_key(|(g, _)| *g);
            self.queue = live.into();
        }
    }

    fn remove(&mut self, key: &Arc<str>) {
        let Some(entry) = self.procs.remove(key) else {
            return;
        };
        let Some(pk) = entry.parent else { return };
        self.gen += 1;
        let gen = self.gen;
        if let Some(pe) = self.procs.get_mut(&pk) {
            pe.children = pe.children.saturating_sub(1);
            if pe.evictable() {
                pe.gen = gen;
                self.queue.push_back((gen, pk));
            }
        }
    }

    /// Has this process exited (as far as the index knows)?
    pub fn has_exited(&self, id: &str) -> Option<bool> {
        self.procs.get(id).map(|e| e.exited)
    }

    /// The process id on the other end of this `net.connect` / `net.accept` event's flow.
    pub fn peer_id(&self, e: &Event) -> Option<Arc<str>> {
        self.flows.peer(e).cloned()
    }

    pub fn flows(&self) -> &FlowTable {
        &self.flows
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats {
            processes: self.procs.len(),
            capacity: self.cfg.max_processes,
            evicted: self.evicted,
            evicted_stale: self.evicted_stale,
            misses: self.misses.load(Ordering::Relaxed),
            flow_halves: self.flows.len(),
            flows_paired: self.flows.paired,
            flow_halves_forgotten: self.flows.forgotten,
        }
    }
}

impl Lineage for ProcessIndex {
    fn process(&self, id: &str) -> Option<Arc<Process>> {
        let found = self.procs.get(id).map(|e| Arc::clone(&e.process));
        if found.is_none() && !id.is_empty() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    fn peer(&self, event: &Event) -> Option<Arc<Process>> {
        let id = self.flows.peer(event)?;
        self.process(id)
    }
}
