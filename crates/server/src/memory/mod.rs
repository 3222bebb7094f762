//! [`MemoryBackend`]: an in-memory [`Backend`] built from a list of events and incidents.
//!
//! It exists for tests, benchmarks and the UI's dev server (`examples/demo_server.rs`). It is
//! not the product's backend: it does no detection (the caller supplies the incidents and
//! their flags), keeps everything in RAM and builds its own small causal graph. The real one
//! is implemented by the integrator over the store, graph and rules crates.

mod graph;
pub mod synthetic;

use crate::backend::{Backend, BackendError, Direction, EventQuery, IncidentQuery};
use crate::types::{
    AgentHealth, Flag, Health, IncidentDetail, IncidentSummary, IncidentUpdate, Page, PolicyInfo,
    ProcessBrief, ProcessDetail, ProcessRef, RootProcess, RuleInfo, Severity, Trace,
};
use causeway_model::timefmt::Timestamp;
use causeway_model::Event;
use graph::Graph;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::sync::RwLock;
use std::time::Instant;
use tokio::sync::broadcast;

/// An incident as the caller describes it; the backend computes its trace and summary.
#[derive(Debug, Clone, Deserialize)]
pub struct IncidentSpec {
    pub id: String,
    pub title: String,
    pub score: f64,
    pub severity: Severity,
    /// The entry point; by default the lowest common ancestor of the flagged processes.
    #[serde(default)]
    pub root: Option<String>,
    pub flags: Vec<Flag>,
}

/// The incidents file: a bare array of incidents, or an object with rules and policies too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IncidentsFile {
    List(Vec<IncidentSpec>),
    Full {
        #[serde(default)]
        incidents: Vec<IncidentSpec>,
        #[serde(default)]
        rules: Vec<RuleInfo>,
        #[serde(default)]
        policies: Vec<PolicyInfo>,
        #[serde(default)]
        health: Option<Health>,
    },
}

/// Why a fixture could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {source}")]
    Json {
        path: String,
        line: usize,
        source: serde_json::Error,
    },
}

struct Stored {
    summary: IncidentSummary,
    spec: IncidentSpec,
    nodes: Vec<usize>,
    /// The detail, computed on first request (events never change after construction).
    detail: std::sync::OnceLock<IncidentDetail>,
}

/// See the module docs.
pub struct MemoryBackend {
    graph: Graph,
    events: Vec<Event>,
    incidents: RwLock<Vec<Stored>>,
    rules: Vec<RuleInfo>,
    policies: Vec<PolicyInfo>,
    health: Option<Health>,
    started: Instant,
    tx: broadcast::Sender<IncidentUpdate>,
}

/// Bound on an incident's forward closure, so a bad `root` cannot take the whole graph.
const MAX_INCIDENT_NODES: usize = 50_000;

impl MemoryBackend {
    /// Build from events (any order) and incidents.
    pub fn new(mut events: Vec<Event>, incidents: Vec<IncidentSpec>) -> MemoryBackend {
        events.sort_by_key(|e| e.time);
        let graph = Graph::build(&events);
        let (tx, _) = broadcast::channel(256);
        let b = MemoryBackend {
            graph,
            events,
            incidents: RwLock::new(Vec::new()),
            rules: Vec::new(),
            policies: Vec::new(),
            health: None,
            started: Instant::now(),
            tx,
        };
        for spec in incidents {
            b.publish(spec);
        }
        b
    }

    /// Load `events.jsonl` (one agent event per line) and optionally an incidents file.
    pub fn from_files(events: &Path, incidents: Option<&Path>) -> Result<MemoryBackend, LoadError> {
        let io = |p: &Path, source| LoadError::Io {
            path: p.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(events).map_err(|e| io(events, e))?;
        let mut evs = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            evs.push(Event::from_json(line).map_err(|source| LoadError::Json {
                path: events.display().to_string(),
                line: n + 1,
                source,
            })?);
        }
        let (specs, rules, policies, health) = match incidents {
            None => (Vec::new(), Vec::new(), Vec::new(), None),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| io(p, e))?;
                let f: IncidentsFile =
                    serde_json::from_str(&text).map_err(|source| LoadError::Json {
                        path: p.display().to_string(),
                        line: 1,
                        source,
                    })?;
                match f {
                    IncidentsFile::List(v) => (v, Vec::new(), Vec::new(), None),
                    IncidentsFile::Full {
                        incidents,
                        rules,
                        policies,
                        health,
                    } => (incidents, rules, policies, health),
                }
            }
        };
        let mut b = MemoryBackend::new(evs, specs);
        b.rules = rules;
        b.policies = policies;
        b.health = health;
        Ok(b)
    }

    pub fn with_rules(mut self, rules: Vec<RuleInfo>) -> Self {
        self.rules = rules;
        self
    }

    pub fn with_policies(mut self, policies: Vec<PolicyInfo>) -> Self {
        self.policies = policies;
        self
    }

    /// Report this health instead of one derived from the events.
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    /// Add an incident (or replace one with the same id) and tell subscribers.
    pub fn publish(&self, spec: IncidentSpec) -> IncidentSummary {
        let nodes = self.incident_nodes(&spec);
        let summary = self.summarize(&spec, &nodes);
        let change = {
            let mut list = match self.incidents.write() {
                Ok(l) => l,
                Err(poisoned) => poisoned.into_inner(),
            };
            let stored = Stored {
                summary: summary.clone(),
                spec,
                nodes,
                detail: std::sync::OnceLock::new(),
            };
            if let Some(slot) = list.iter_mut().find(|s| s.summary.id == summary.id) {
                *slot = stored;
                "updated"
            } else {
                list.push(stored);
                "new"
            }
        };
        // No subscriber is not an error.
        let _ = self.tx.send(IncidentUpdate {
            change: change.to_string(),
            incident: summary.clone(),
        });
        summary
    }

    /// The incidents as supplied (insertion order).
    pub fn specs(&self) -> Vec<IncidentSpec> {
        self.read().iter().map(|s| s.spec.clone()).collect()
    }

    fn incident_nodes(&self, spec: &IncidentSpec) -> Vec<usize> {
        let g = &self.graph;
        let flagged: Vec<&str> = spec
            .flags
            .iter()
            .map(|f| f.process_id.as_str())
            .filter(|id| g.procs.contains_key(*id))
            .collect();
        let root = spec
            .root
            .as_deref()
            .filter(|r| g.contains(r))
            .map(str::to_string)
            .or_else(|| self.common_ancestor(&flagged));
        let roots: Vec<&str> = match &root {
            Some(r) => vec![r.as_str()],
            None => flagged.clone(),
        };
        let mut nodes = g.walk(&roots, true, None, None, MAX_INCIDENT_NODES);
        let mut seen: HashSet<usize> = nodes.iter().copied().collect();
        // What the processes read or came from that is not a process: sensitive files read,
        // clients that connected in from unknown peers.
        let extra: Vec<usize> = nodes
            .iter()
            .filter(|&&i| g.procs.contains_key(g.id_of(i)))
            .flat_map(|&i| g.walk(&[g.id_of(i)], false, Some(1), Some(&["read", "accept"]), 64))
            .collect();
        for i in extra {
            if seen.insert(i) {
                nodes.push(i);
            }
        }
        // Context before the entry point: its ancestors and the flows into them (the session
        // or service it came from, the client on another host).
        for r in &roots {
            let mut chain = vec![r.to_string()];
            chain.extend(g.ancestors(r).iter().map(|p| p.process.id.clone()));
            let refs: Vec<&str> = chain.iter().map(String::as_str).collect();
            for i in g.walk(&refs, false, Some(1), Some(&["connect", "accept"]), 1000) {
                if seen.insert(i) {
                    nodes.push(i);
                }
            }
            for id in &chain {
                if let Some(i) = g.index_of(id) {
                    if seen.insert(i) {
                        nodes.push(i);
                    }
                }
            }
        }
        for f in &flagged {
            if let Some(i) = g.index_of(f) {
                if seen.insert(i) {
                    nodes.push(i);
                }
            }
        }
        nodes
    }

    fn common_ancestor(&self, ids: &[&str]) -> Option<String> {
        let chains: Vec<Vec<String>> = ids
            .iter()
            .map(|id| {
                let mut c = vec![id.to_string()];
                c.extend(
                    self.graph
                        .ancestors(id)
                        .iter()
                        .map(|p| p.process.id.clone()),
                );
                c
            })
            .collect();
        let (first, rest) = chains.split_first()?;
        let sets: Vec<HashSet<&String>> = rest.iter().map(|c| c.iter().collect()).collect();
        first
            .iter()
            .find(|id| sets.iter().all(|s| s.contains(id)))
            .cloned()
    }

    fn summarize(&self, spec: &IncidentSpec, nodes: &[usize]) -> IncidentSummary {
        let g = &self.graph;
        let mut processes = Vec::new();
        let mut hosts = BTreeSet::new();
        let mut times: Vec<Timestamp> = spec.flags.iter().map(|f| f.time).collect();
        for &i in nodes {
            if let Some(p) = g.procs.get(g.id_of(i)) {
                processes.push(ProcessRef {
                    id: p.process.id.clone(),
                    pid: p.process.pid,
                });
                hosts.insert(p.host.name.clone());
                times.push(p.time());
            }
        }
        let root = spec
            .root
            .clone()
            .or_else(|| {
                let flagged: Vec<&str> = spec.flags.iter().map(|f| f.process_id.as_str()).collect();
                self.common_ancestor(&flagged)
            })
            .or_else(|| spec.flags.first().map(|f| f.process_id.clone()))
            .unwrap_or_default();
        let root_process = match g.procs.get(&root) {
            Some(p) => RootProcess {
                id: root.clone(),
                pid: p.process.pid,
                exe: p.process.exe.clone(),
            },
            None => RootProcess {
                id: root.clone(),
                pid: 0,
                exe: String::new(),
            },
        };
        let techniques: BTreeSet<String> = spec
            .flags
            .iter()
            .flat_map(|f| f.techniques.iter().cloned())
            .collect();
        IncidentSummary {
            id: spec.id.clone(),
            title: spec.title.clone(),
            score: spec.score,
            severity: spec.severity,
            techniques: techniques.into_iter().collect(),
            root_process,
            processes,
            hosts: hosts.into_iter().collect(),
            first_seen: times.iter().min().copied().unwrap_or_default(),
            last_seen: times.iter().max().copied().unwrap_or_default(),
        }
    }

    fn detail(&self, s: &Stored) -> IncidentDetail {
        let (mut nodes, edges) = self.graph.trace_of(&s.nodes);
        // Mark what the rules flagged: the process, and the file or act the flag names.
        for f in &s.spec.flags {
            let host_id = self
                .graph
                .procs
                .get(&f.process_id)
                .map(|p| p.host.id.clone())
                .unwrap_or_default();
            let also = if f.kind.starts_with("file.") {
                format!("file:{host_id}:{}", f.object)
            } else if f.kind.starts_with("net.") {
                format!("endpoint:tcp:{}", f.object)
            } else {
                format!("act:{}:{}:{}", f.process_id, f.kind, f.object)
            };
            for n in nodes
                .iter_mut()
                .filter(|n| n.id == f.process_id || n.id == also)
            {
                n.flagged = true;
                if !n.rules.contains(&f.rule_id) {
                    n.rules.push(f.rule_id.clone());
                }
                for t in &f.techniques {
                    if !n.techniques.contains(t) {
                        n.techniques.push(t.clone());
                    }
                }
            }
        }
        IncidentDetail {
            summary: s.summary.clone(),
            flags: s.spec.flags.clone(),
            trace: Trace {
                nodes,
                edges,
                aggregated: None,
            },
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Stored>> {
        match self.incidents.read() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

fn matches_incident(s: &IncidentSummary, q: &IncidentQuery) -> bool {
    if q.severity.is_some_and(|min| s.severity < min) {
        return false;
    }
    if q.min_score.is_some_and(|min| s.score < min) {
        return false;
    }
    if let Some(h) = &q.host {
        if !s.hosts.iter().any(|x| x == h) {
            return false;
        }
    }
    if let Some(t) = &q.technique {
        let sub = format!("{t}.");
        if !s
            .techniques
            .iter()
            .any(|x| x == t || x.starts_with(sub.as_str()))
        {
            return false;
        }
    }
    if let Some(text) = &q.q {
        let needle = text.to_lowercase();
        let hay = [&s.title, &s.id, &s.root_process.exe]
            .into_iter()
            .chain(s.hosts.iter())
            .chain(s.techniques.iter());
        if !hay.into_iter().any(|h| h.to_lowercase().contains(&needle)) {
            return false;
        }
    }
    true
}

fn matches_event(e: &Event, q: &EventQuery) -> bool {
    if !q.kinds.is_empty() && !q.kinds.contains(&e.kind) {
        return false;
    }
    if q.since.is_some_and(|t| e.time < t) || q.until.is_some_and(|t| e.time > t) {
        return false;
    }
    if let Some(h) = &q.host {
        if &e.host.name != h && &e.host.id != h {
            return false;
        }
    }
    if let Some(c) = &q.container {
        let ok = e
            .process
            .container
            .as_ref()
            .is_some_and(|x| &x.id == c || (c.len() >= 4 && x.id.starts_with(c.as_str())));
        if !ok {
            return false;
        }
    }
    if q.process.as_ref().is_some_and(|p| &e.process.id != p) {
        return false;
    }
    if let Some(text) = &q.q {
        let t = text.as_str();
        let file_hit = e.file.as_ref().is_some_and(|f| {
            f.path.contains(t) || f.new_path.as_ref().is_some_and(|p| p.contains(t))
        });
        if !(e.process.exe.contains(t) || e.process.argv.iter().any(|a| a.contains(t)) || file_hit)
        {
            return false;
        }
    }
    true
}

impl Backend for MemoryBackend {
    fn incidents(&self, q: &IncidentQuery) -> Result<Page<IncidentSummary>, BackendError> {
        let list = self.read();
        let mut hits: Vec<&IncidentSummary> = list
            .iter()
            .map(|s| &s.summary)
            .filter(|s| matches_incident(s, q))
            .collect();
        hits.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.id.cmp(&b.id)));
        let total = hits.len() as u64;
        let items = hits
            .into_iter()
            .skip(usize::try_from(q.offset).unwrap_or(usize::MAX))
            .take(q.limit as usize)
            .cloned()
            .collect();
        Ok(Page {
            items,
            total,
            limit: q.limit,
            offset: q.offset,
        })
    }

    fn incident(&self, id: &str) -> Result<Option<IncidentDetail>, BackendError> {
        let list = self.read();
        let Some(s) = list.iter().find(|s| s.summary.id == id) else {
            return Ok(None);
        };
        Ok(Some(s.detail.get_or_init(|| self.detail(s)).clone()))
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<Event>, BackendError> {
        let start = match q.since {
            Some(t) => self.events.partition_point(|e| e.time < t),
            None => 0,
        };
        Ok(self.events[start..]
            .iter()
            .filter(|e| matches_event(e, q))
            .take(q.limit as usize)
            .cloned()
            .collect())
    }

    fn process(&self, id: &str) -> Result<Option<ProcessDetail>, BackendError> {
        let g = &self.graph;
        let Some(p) = g.procs.get(id) else {
            return Ok(None);
        };
        let brief = |id: &str| g.procs.get(id).map(|p| p.brief());
        let flows = p
            .flows
            .iter()
            .zip(&p.flow_peers)
            .map(|(f, peer)| {
                let mut f = f.clone();
                f.peer = peer.as_deref().and_then(brief);
                f
            })
            .collect();
        let children: Vec<ProcessBrief> = p.children.iter().filter_map(|c| brief(c)).collect();
        Ok(Some(ProcessDetail {
            process: p.process.clone(),
            host: p.host.clone(),
            start_time: p.start,
            exit_time: p.exit_time,
            exit: p.exit.clone(),
            ancestors: g.ancestors(id).iter().map(|a| a.brief()).collect(),
            children,
            flows,
            files: p.files.clone(),
        }))
    }

    fn trace(&self, id: &str, dir: Direction, depth: u32) -> Result<Option<Trace>, BackendError> {
        if !self.graph.procs.contains_key(id) {
            return Ok(None);
        }
        let forward = dir == Direction::Forward;
        let nodes = self
            .graph
            .walk(&[id], forward, Some(depth), None, MAX_INCIDENT_NODES);
        let (nodes, edges) = self.graph.trace_of(&nodes);
        Ok(Some(Trace {
            nodes,
            edges,
            aggregated: None,
        }))
    }

    fn health(&self) -> Result<Health, BackendError> {
        let incidents = self.read().len() as u64;
        if let Some(h) = &self.health {
            let mut h = h.clone();
            h.incidents = incidents;
            h.uptime_seconds = self.started.elapsed().as_secs();
            return Ok(h);
        }
        let mut agents: BTreeMap<String, AgentHealth> = BTreeMap::new();
        for e in &self.events {
            let a = agents
                .entry(e.host.id.clone())
                .or_insert_with(|| AgentHealth {
                    host: e.host.name.clone(),
                    host_id: e.host.id.clone(),
                    // Replayed events: nothing is running.
                    state: "replay".into(),
                    last_event: None,
                    events_seen: 0,
                    events_lost: BTreeMap::new(),
                });
            a.events_seen += 1;
            a.last_event = Some(e.time);
        }
        Ok(Health {
            status: "ok".into(),
            agents: agents.into_values().collect(),
            events_seen: self.events.len() as u64,
            events_lost: BTreeMap::new(),
            incidents,
            uptime_seconds: self.started.elapsed().as_secs(),
        })
    }

    fn rules(&self) -> Result<Vec<RuleInfo>, BackendError> {
        Ok(self.rules.clone())
    }

    fn policies(&self) -> Result<Vec<PolicyInfo>, BackendError> {
        Ok(self.policies.clone())
    }

    fn subscribe(&self) -> broadcast::Receiver<IncidentUpdate> {
        self.tx.subscribe()
    }
}
