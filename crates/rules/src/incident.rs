//! Incidents: flags on the same causal chain grouped, deduplicated and scored.
//!
//! **Grouping.** A flag belongs to the trace of its *root*: the entry point of the flagged
//! process's login session (the oldest ancestor sharing its audit session, or tty), or, for
//! services, the oldest ancestor below init. A process that accepted or made a connection
//! whose other end belongs to an existing trace joins that trace (flow link), so an attack
//! hopping from a client to a server on the same or another host stays one incident.
//!
//! **Scoring** (0..=100), recomputed on every new flag:
//! 1. Each distinct flag (rule, process, object) is worth its severity's points: info 2,
//!    low 10, medium 25, high 45, critical 70. Repeats of one rule on *other* processes or
//!    objects add with halving weight (1, 1/2, 1/4, ...), so one noisy rule can at most
//!    double its worth; the same (rule, process, object) again merges into the first.
//! 2. Breadth: +5 per distinct ATT&CK technique beyond the first, +10 per distinct tactic
//!    beyond the first (an attack progressing along the kill chain).
//! 3. Privileged interactive sessions count up: ×1.25 when a flagged process runs in an
//!    interactive session as root or of a root login.
//! 4. Cap by the worst severity, as Spyderbat does: info 20, low 35, medium 60, high 80,
//!    critical 100; *but* a trace spanning 3 or more tactics has its cap raised one level,
//!    so a slow chain of medium flags across the kill chain is not held down forever.
//!
//! An incident opens when its trace's score reaches `open_threshold` (default 40: one
//! high or critical flag, two mediums, or a medium with enough breadth) and then grows
//! with the attack. Suppressed flags are kept on the trace, listed, and never scored.
//! Discovery bursts: 4 or more distinct discovery flags on one trace within 60 s add a
//! synthetic `CW-DISC-BURST` flag (medium; high from 8).

use crate::eval::Flag;
use crate::lineage::Lineage;
use crate::schema::Severity;
use crate::values;
use causeway_model::timefmt::Timestamp;
use causeway_model::{Event, Kind, Process};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Tuning of the incident engine.
#[derive(Debug, Clone)]
pub struct IncidentConfig {
    pub open_threshold: u32,
    /// A trace idle longer than this (ns, event time) is closed; later flags start anew.
    pub idle_ns: i64,
    pub burst_window_ns: i64,
    pub burst_min: usize,
    /// Bound on traces kept in memory.
    pub max_traces: usize,
}

impl Default for IncidentConfig {
    fn default() -> Self {
        IncidentConfig {
            open_threshold: 40,
            idle_ns: 3_600 * 1_000_000_000,
            burst_window_ns: 60 * 1_000_000_000,
            burst_min: 4,
            max_traces: 50_000,
        }
    }
}

/// A process as an incident shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessRef {
    pub id: String,
    pub pid: u32,
    pub exe: String,
}

/// A flag as an incident lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IncidentFlag {
    pub rule_id: String,
    pub time: Timestamp,
    pub process_id: String,
    /// The first (main) technique; all of them in `techniques`.
    pub technique: String,
    pub techniques: Vec<String>,
    pub tactic: String,
    pub severity: Severity,
    pub message: String,
    pub object: String,
    /// How many identical flags merged into this one.
    pub count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
}

/// A scored incident.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Incident {
    pub id: String,
    pub title: String,
    pub score: u32,
    pub severity: Severity,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    pub root: ProcessRef,
    pub processes: Vec<ProcessRef>,
    pub hosts: Vec<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub flags: Vec<IncidentFlag>,
    /// Flags that matched but were suppressed (exception or suppression), shown not scored.
    pub suppressed: Vec<IncidentFlag>,
}

/// A node or edge of an incident's trace subgraph.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceNode {
    pub id: String,
    pub pid: u32,
    pub exe: String,
    pub flagged: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TraceEdge {
    pub from: String,
    pub to: String,
    /// `spawn` (parent -> child) or `flow` (linked through a network flow).
    pub kind: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Trace {
    pub nodes: Vec<TraceNode>,
    pub edges: Vec<TraceEdge>,
}

/// An incident opened or grew.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncidentUpdate {
    pub incident: Incident,
    /// True when this update opened the incident.
    pub opened: bool,
}

fn points(s: Severity) -> f64 {
    match s {
        Severity::Info => 2.0,
        Severity::Low => 10.0,
        Severity::Medium => 25.0,
        Severity::High => 45.0,
        Severity::Critical => 70.0,
    }
}

fn cap(s: Severity) -> f64 {
    match s {
        Severity::Info => 20.0,
        Severity::Low => 35.0,
        Severity::Medium => 60.0,
        Severity::High => 80.0,
        Severity::Critical => 100.0,
    }
}

fn raise(s: Severity) -> Severity {
    match s {
        Severity::Info => Severity::Low,
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        _ => Severity::Critical,
    }
}

fn severity_of(score: u32) -> Severity {
    match score {
        80.. => Severity::Critical,
        60..=79 => Severity::High,
        40..=59 => Severity::Medium,
        20..=39 => Severity::Low,
        _ => Severity::Info,
    }
}

/// Stable short hash for ids (FNV-1a).
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[derive(Debug)]
struct TraceState {
    root: ProcessRef,
    host: String,
    hosts: Vec<String>,
    flags: Vec<IncidentFlag>,
    suppressed: Vec<IncidentFlag>,
    /// Discovery flags (time, object) for burst detection.
    discovery: Vec<(Timestamp, String)>,
    burst_level: u8,
    processes: Vec<ProcessRef>,
    privileged_interactive: bool,
    /// Processes linked in through a flow: (from, to).
    flow_edges: Vec<(String, String)>,
    incident: Option<Incident>,
    first_seen: Timestamp,
    last_seen: Timestamp,
}

/// Groups flags into incidents. Synchronous and cheap: the integrator runs it on the
/// detection thread after [`crate::Ruleset::evaluate`].
#[derive(Debug, Default)]
pub struct IncidentEngine {
    cfg: IncidentConfig,
    traces: HashMap<String, TraceState>,
    /// Process id -> trace key, for processes already in a trace.
    member: HashMap<String, String>,
    /// Process id -> (trace key, peer process id) learned through flows.
    links: HashMap<String, (String, String)>,
    /// Root key -> the key of its current trace: after an idle trace closes, later flags of
    /// the same root must all join the *one* new trace, not one each.
    current: HashMap<String, String>,
}

impl IncidentEngine {
    pub fn new(cfg: IncidentConfig) -> Self {
        IncidentEngine {
            cfg,
            ..Default::default()
        }
    }

    /// Learn flow links from network events: if the other end of this flow belongs to a
    /// trace, this process joins it when it is flagged.
    pub fn observe(&mut self, e: &Event, lineage: &dyn Lineage) {
        if !matches!(e.kind, Kind::NetAccept | Kind::NetConnect) {
            return;
        }
        if let Some(peer) = lineage.peer(e) {
            if let Some(key) = self.member.get(&peer.id) {
                self.links
                    .insert(e.process.id.clone(), (key.clone(), peer.id.clone()));
            }
        }
    }

    /// The trace key of a process: a flow link, else its session or service entry point.
    fn root_of(&self, process: &Process, ancestors: &[Arc<Process>]) -> (String, ProcessRef) {
        for p in std::iter::once(process).chain(ancestors.iter().map(|a| &**a)) {
            if let Some((key, _)) = self.links.get(&p.id) {
                if let Some(t) = self.traces.get(key) {
                    return (key.clone(), t.root.clone());
                }
            }
        }
        let entry = if process.session.is_some() || process.tty.is_some() {
            let s = values::session(process, ancestors);
            std::iter::once(process)
                .chain(ancestors.iter().map(|a| &**a))
                .find(|p| p.id == s.entry_id)
                .unwrap_or(process)
        } else {
            // Service: the oldest known ancestor that is not init (pid 1) or kthreadd.
            ancestors
                .iter()
                .rev()
                .map(|a| &**a)
                .find(|p| p.pid > 2)
                .unwrap_or(process)
        };
        let r = ProcessRef {
            id: entry.id.clone(),
            pid: entry.pid,
            exe: entry.exe.clone(),
        };
        (r.id.clone(), r)
    }

    /// Add the flags of one event. Returns the incidents that opened or grew.
    pub fn add_flags(&mut self, flags: &[Flag], lineage: &dyn Lineage) -> Vec<IncidentUpdate> {
        let mut touched: BTreeSet<String> = BTreeSet::new();
        for f in flags {
            let process = lineage.process(&f.process_id).unwrap_or_else(|| {
                Arc::new(Process {
                    id: f.process_id.clone(),
                    pid: f.pid,
                    exe: f.exe.clone(),
                    ..Default::default()
                })
            });
            let ancestors = lineage.ancestors(&process.id, crate::eval::MAX_ANCESTORS);
            let (base, root) = self.root_of(&process, &ancestors);
            let mut key = self
                .current
                .get(&base)
                .cloned()
                .unwrap_or_else(|| base.clone());
            // A closed (idle) trace is not reopened: a new one starts, and becomes the root's
            // current trace.
            if let Some(t) = self.traces.get(&key) {
                if f.time.0 - t.last_seen.0 > self.cfg.idle_ns {
                    key = format!("{base}@{}", f.time.0);
                    self.current.insert(base.clone(), key.clone());
                }
            }
            if !self.traces.contains_key(&key) && self.traces.len() >= self.cfg.max_traces {
                self.evict(f.time);
            }
            let session = values::session(&process, &ancestors);
            let t = self
                .traces
                .entry(key.clone())
                .or_insert_with(|| TraceState {
                    root,
                    host: f.host.clone(),
                    hosts: Vec::new(),
                    flags: Vec::new(),
                    suppressed: Vec::new(),
                    discovery: Vec::new(),
                    burst_level: 0,
                    processes: Vec::new(),
                    privileged_interactive: false,
                    flow_edges: Vec::new(),
                    incident: None,
                    first_seen: f.time,
                    last_seen: f.time,
                });
            t.last_seen = t.last_seen.max(f.time);
            if !t.hosts.contains(&f.host) {
                t.hosts.push(f.host.clone());
            }
            t.first_seen = t.first_seen.min(f.time);
            if let Some((_, peer)) = self.links.get(&process.id) {
                if !t
                    .flow_edges
                    .iter()
                    .any(|(a, b)| a == peer && *b == process.id)
                {
                    t.flow_edges.push((peer.clone(), process.id.clone()));
                }
            }
            if !t.processes.iter().any(|p| p.id == f.process_id) {
                t.processes.push(ProcessRef {
                    id: f.process_id.clone(),
                    pid: f.pid,
                    exe: f.exe.clone(),
                });
            }
            self.member.insert(f.process_id.clone(), key.clone());
            let entry = IncidentFlag {
                rule_id: f.rule_id.clone(),
                time: f.time,
                process_id: f.process_id.clone(),
                technique: f.techniques.first().cloned().unwrap_or_default(),
                techniques: f.techniques.clone(),
                tactic: f.tactic.clone(),
                severity: f.severity,
                message: f.message.clone(),
                object: f.object.clone(),
                count: 1,
                suppressed_by: f.suppressed_by.clone(),
            };
            let list = if f.suppressed_by.is_some() {
                &mut t.suppressed
            } else {
                &mut t.flags
            };
            if let Some(same) = list.iter_mut().find(|x| {
                x.rule_id == entry.rule_id
                    && x.process_id == entry.process_id
                    && x.object == entry.object
            }) {
                same.count = same.count.saturating_add(1);
                continue;
            }
            let scored = f.suppressed_by.is_none();
            list.push(entry);
            if scored {
                if session.interactive && session.privileged {
                    t.privileged_interactive = true;
                }
                if f.tactic == "discovery" {
                    t.discovery
                        .push((f.time, format!("{}|{}", f.rule_id, f.object)));
                    burst(t, f, &self.cfg);
                }
            }
            touched.insert(key);
        }
        let mut out = Vec::new();
        for key in touched {
            let Some(t) = self.traces.get_mut(&key) else {
                continue;
            };
            let inc = build(&key, t);
            let was_open = t.incident.is_some();
            let due = was_open || inc.score >= self.cfg.open_threshold;
            if due && t.incident.as_ref() != Some(&inc) {
                out.push(IncidentUpdate {
                    incident: inc.clone(),
                    opened: !was_open,
                });
                t.incident = Some(inc);
            }
        }
        out
    }

    /// Drop the least recently active trace (memory bound).
    fn evict(&mut self, _now: Timestamp) {
        if let Some(k) = self
            .traces
            .iter()
            .min_by_key(|(_, t)| t.last_seen)
            .map(|(k, _)| k.clone())
        {
            self.traces.remove(&k);
            self.member.retain(|_, v| *v != k);
            self.links.retain(|_, v| v.0 != k);
            self.current.retain(|_, v| *v != k);
        }
    }

    /// Open incidents.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.traces.values().filter_map(|t| t.incident.as_ref())
    }

    pub fn get(&self, id: &str) -> Option<&Incident> {
        self.incidents().find(|i| i.id == id)
    }

    /// The trace subgraph of an incident: the causal chain from its root to every flagged
    /// process (spawn edges), plus the flow edges that linked processes in.
    pub fn trace(&self, id: &str, lineage: &dyn Lineage) -> Option<Trace> {
        let t = self
            .traces
            .values()
            .find(|t| t.incident.as_ref().is_some_and(|i| i.id == id))?;
        let flagged: BTreeSet<&str> = t.flags.iter().map(|f| f.process_id.as_str()).collect();
        let mut nodes: Vec<TraceNode> = Vec::new();
        let mut edges: Vec<TraceEdge> = Vec::new();
        let add = |p: &Process, nodes: &mut Vec<TraceNode>| {
            if !nodes.iter().any(|n| n.id == p.id) {
                nodes.push(TraceNode {
                    id: p.id.clone(),
                    pid: p.pid,
                    exe: p.exe.clone(),
                    flagged: flagged.contains(p.id.as_str()),
                });
            }
        };
        for m in &t.processes {
            let p = lineage.process(&m.id).unwrap_or_else(|| {
                Arc::new(Process {
                    id: m.id.clone(),
                    pid: m.pid,
                    exe: m.exe.clone(),
                    ..Default::default()
                })
            });
            add(&p, &mut nodes);
            let mut child = p.id.clone();
            for a in lineage.ancestors(&p.id, crate::eval::MAX_ANCESTORS) {
                add(&a, &mut nodes);
                let e = TraceEdge {
                    from: a.id.clone(),
                    to: child.clone(),
                    kind: "spawn".into(),
                };
                if !edges.contains(&e) {
                    edges.push(e);
                }
                child = a.id.clone();
                if a.id == t.root.id {
                    break;
                }
            }
        }
        for (from, to) in &t.flow_edges {
            edges.push(TraceEdge {
                from: from.clone(),
                to: to.clone(),
                kind: "flow".into(),
            });
        }
        Some(Trace { nodes, edges })
    }
}

fn burst(t: &mut TraceState, f: &Flag, cfg: &IncidentConfig) {
    let since = f.time.0 - cfg.burst_window_ns;
    let distinct: BTreeSet<&str> = t
        .discovery
        .iter()
        .filter(|(ts, _)| ts.0 >= since)
        .map(|(_, o)| o.as_str())
        .collect();
    let level = if distinct.len() >= cfg.burst_min * 2 {
        2
    } else if distinct.len() >= cfg.burst_min {
        1
    } else {
        0
    };
    if level > t.burst_level {
        t.burst_level = level;
        let severity = if level == 2 {
            Severity::High
        } else {
            Severity::Medium
        };
        t.flags.retain(|x| x.rule_id != "CW-DISC-BURST");
        t.flags.push(IncidentFlag {
            rule_id: "CW-DISC-BURST".into(),
            time: f.time,
            process_id: f.process_id.clone(),
            technique: "T1082".into(),
            techniques: vec!["T1082".into(), "T1033".into(), "T1057".into()],
            tactic: "discovery".into(),
            severity,
            message: format!(
                "Discovery burst: {} distinct reconnaissance commands within {} s",
                distinct.len(),
                cfg.burst_window_ns / 1_000_000_000
            ),
            object: String::new(),
            count: 1,
            suppressed_by: None,
        });
    }
}

/// Score and render a trace as an incident.
fn build(key: &str, t: &TraceState) -> Incident {
    let mut per_rule: HashMap<&str, u32> = HashMap::new();
    let mut raw = 0.0;
    let mut worst = Severity::Info;
    let mut techniques: BTreeSet<String> = BTreeSet::new();
    let mut tactics: BTreeSet<String> = BTreeSet::new();
    for f in &t.flags {
        let n = per_rule.entry(f.rule_id.as_str()).or_insert(0);
        raw += points(f.severity) / f64::from(1u32 << (*n).min(16));
        *n += 1;
        worst = worst.max(f.severity);
        techniques.extend(f.techniques.iter().cloned());
        tactics.insert(f.tactic.clone());
    }
    raw += 5.0 * techniques.len().saturating_sub(1) as f64
        + 10.0 * tactics.len().saturating_sub(1) as f64;
    if t.privileged_interactive {
        raw *= 1.25;
    }
    let limit = if tactics.len() >= 3 {
        cap(raise(worst))
    } else {
        cap(worst)
    };
    let score = raw.min(limit).round() as u32;
    let main = t
        .flags
        .iter()
        .max_by_key(|f| (f.severity, std::cmp::Reverse(f.time)));
    let title = match main {
        Some(m) if t.flags.len() > 1 => format!(
            "{} (+{} more) from {}",
            m.message.split(':').next().unwrap_or(&m.rule_id),
            t.flags.len() - 1,
            values::basename(&t.root.exe)
        ),
        Some(m) => format!(
            "{} from {}",
            m.message.split(':').next().unwrap_or(&m.rule_id),
            values::basename(&t.root.exe)
        ),
        None => "Suppressed activity".to_string(),
    };
    Incident {
        id: format!("inc-{:016x}", fnv(&format!("{}|{key}", t.host))),
        title,
        score,
        severity: severity_of(score),
        techniques: techniques.into_iter().collect(),
        tactics: tactics.into_iter().collect(),
        root: t.root.clone(),
        processes: t.processes.clone(),
        hosts: t.hosts.clone(),
        first_seen: t.first_seen,
        last_seen: t.last_seen,
        flags: t.flags.clone(),
        suppressed: t.suppressed.clone(),
    }
}
