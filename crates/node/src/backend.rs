//! The HTTP API's [`Backend`] over a node: incidents from the store (so they survive
//! restarts), traces from the causal graph, events from the store, health from the agent's
//! and the node's counters.

use crate::convert;
use crate::{is_flow, Core};
use causeway_graph::{NodeKind, TraceQuery};
use causeway_model::{Event, Kind};
use causeway_rules::{Incident, Lineage};
use causeway_server::types::*;
use causeway_server::{Backend, BackendError, Direction, EventQuery, IncidentQuery};
use causeway_store::Store;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// How far back an incident's trace reaches from each flagged process.
const INCIDENT_TRACE_DEPTH: u32 = 16;
/// Incidents considered by one list query, at most.
const MAX_LISTED: usize = 100_000;
/// Ancestors listed for a process, and the lineage edges walked to find them (an exec chain
/// adds edges without adding ancestors).
const MAX_ANCESTORS: usize = 64;
const MAX_ANCESTRY_EDGES: u32 = 256;
/// Nodes of an incident's forward trace from its root (the server aggregates it for display).
const INCIDENT_FORWARD_NODES: usize = 20_000;

/// The API's view of a node.
pub struct NodeBackend {
    core: Arc<Mutex<Core>>,
    agent: Option<Arc<causeway_agent::Stats>>,
    started: Instant,
    updates: tokio::sync::broadcast::Sender<IncidentUpdate>,
}

impl std::fmt::Debug for NodeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeBackend")
    }
}

fn internal(e: impl std::fmt::Display) -> BackendError {
    BackendError::Internal(e.to_string())
}

fn brief(p: &causeway_model::Process, host: &str) -> ProcessBrief {
    ProcessBrief {
        id: p.id.clone(),
        pid: p.pid,
        exe: p.exe.clone(),
        argv: p.argv.clone(),
        host: host.to_string(),
        start_time: p.start_time,
    }
}

impl NodeBackend {
    pub(crate) fn new(
        core: Arc<Mutex<Core>>,
        agent: Option<Arc<causeway_agent::Stats>>,
        started: Instant,
    ) -> Self {
        let updates = core
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .updates
            .clone();
        NodeBackend {
            core,
            agent,
            started,
            updates,
        }
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The brief of a peer found in the graph. Its host is named from its own stored events
    /// when it is not on `local`'s host (the graph keeps host ids).
    fn peer_brief(
        &self,
        core: &Core,
        gp: &convert::GraphPeer,
        local: &causeway_model::Host,
    ) -> Result<Option<ProcessBrief>, BackendError> {
        let host_id = gp.node.details.get("host").and_then(|v| v.as_str());
        let name = if host_id == Some(local.id.as_str()) {
            local.name.clone()
        } else {
            let Some(pid) = gp.node.details.get("id").and_then(|v| v.as_str()) else {
                return Ok(None);
            };
            let q = causeway_store::EventQuery {
                process: Some(pid.to_string()),
                limit: 1,
                ..Default::default()
            };
            match core.pipeline.store().events(&q).map_err(internal)?.first() {
                Some(s) => s.event.host.name.clone(),
                None => host_id.unwrap_or_default().to_string(),
            }
        };
        Ok(convert::node_brief(&gp.node, &name))
    }

    fn stored_incidents(&self, core: &Core) -> Result<Vec<Incident>, BackendError> {
        let docs = core
            .pipeline
            .store()
            .list_incidents(MAX_LISTED)
            .map_err(internal)?;
        Ok(docs
            .into_iter()
            .filter_map(|d| serde_json::from_value(d.json).ok())
            .collect())
    }
}

fn matches(i: &IncidentSummary, q: &IncidentQuery) -> bool {
    if q.severity.is_some_and(|s| i.severity < s) || q.min_score.is_some_and(|m| i.score < m) {
        return false;
    }
    if q.host
        .as_ref()
        .is_some_and(|h| !i.hosts.iter().any(|x| x == h))
    {
        return false;
    }
    if let Some(t) = &q.technique {
        let sub = format!("{t}.");
        if !i.techniques.iter().any(|x| x == t || x.starts_with(&sub)) {
            return false;
        }
    }
    if let Some(text) = &q.q {
        let t = text.to_lowercase();
        let hay = [&i.title, &i.id, &i.root_process.exe]
            .into_iter()
            .chain(i.hosts.iter())
            .chain(i.techniques.iter());
        if !hay.into_iter().any(|s| s.to_lowercase().contains(&t)) {
            return false;
        }
    }
    true
}

impl Backend for NodeBackend {
    fn incidents(&self, query: &IncidentQuery) -> Result<Page<IncidentSummary>, BackendError> {
        let core = self.core();
        let mut all: Vec<IncidentSummary> = self
            .stored_incidents(&core)?
            .iter()
            .map(convert::summary)
            .collect();
        all.retain(|i| matches(i, query));
        all.sort_by_key(|i| std::cmp::Reverse(i.last_seen));
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(query.offset as usize)
            .take(query.limit as usize)
            .collect();
        Ok(Page {
            items,
            total,
            limit: query.limit,
            offset: query.offset,
        })
    }

    fn incident(&self, id: &str) -> Result<Option<IncidentDetail>, BackendError> {
        let core = self.core();
        let Some(doc) = core.pipeline.store().get_incident(id).map_err(internal)? else {
            return Ok(None);
        };
        let inc: Incident = serde_json::from_value(doc.json).map_err(internal)?;
        // The causal chain from the entry point to every flagged act: the union of the
        // backward traces of the flagged processes, and the root's own images.
        let graph = core.pipeline.graph();
        let mut merged = causeway_graph::Trace::default();
        let q = TraceQuery::backward().depth(INCIDENT_TRACE_DEPTH);
        let mut starts: Vec<&str> = inc.flags.iter().map(|f| f.process_id.as_str()).collect();
        starts.push(inc.root.id.as_str());
        starts.sort_unstable();
        starts.dedup();
        for p in starts {
            if let Some(t) = graph.trace_process(p, &q) {
                convert::merge(&mut merged, t);
            }
        }
        // And what the root went on to cause: the rest of the chain around the flagged
        // acts (a shell's commands, a build's jobs), which the server groups for display.
        let forward = TraceQuery {
            max_nodes: INCIDENT_FORWARD_NODES,
            ..TraceQuery::forward().depth(INCIDENT_TRACE_DEPTH)
        };
        if let Some(t) = graph.trace_process(&inc.root.id, &forward) {
            convert::merge(&mut merged, t);
        }
        let flags = inc
            .flags
            .iter()
            .map(|f| convert::flag(f, &inc, core.ruleset()))
            .collect();
        Ok(Some(IncidentDetail {
            summary: convert::summary(&inc),
            flags,
            trace: convert::trace(&merged, &inc.flags),
        }))
    }

    fn events(&self, query: &EventQuery) -> Result<Vec<Event>, BackendError> {
        let core = self.core();
        // The store filters on one kind: several kinds are one query each, merged, so that
        // a rare kind is not crowded out of a shared fetch by a frequent one.
        let kinds: Vec<Option<Kind>> = if query.kinds.is_empty() {
            vec![None]
        } else {
            query.kinds.iter().copied().map(Some).collect()
        };
        // The container filter is not the store's: it is applied here, on a larger fetch.
        let limit = if query.container.is_some() {
            10_000
        } else {
            query.limit as usize
        };
        let mut out: Vec<Event> = Vec::new();
        for kind in kinds {
            let q = causeway_store::EventQuery {
                kind,
                q: query.q.clone(),
                since: query.since.map(|t| t.0),
                until: query.until.map(|t| t.0),
                host: query.host.clone(),
                process: query.process.clone(),
                limit,
            };
            out.extend(
                core.pipeline
                    .store()
                    .events(&q)
                    .map_err(internal)?
                    .into_iter()
                    .map(|s| s.event)
                    .filter(|e| match &query.container {
                        Some(c) => e
                            .process
                            .container
                            .as_ref()
                            .is_some_and(|x| x.id.starts_with(c.as_str())),
                        None => true,
                    }),
            );
        }
        // The store answers newest first; the API lists the newest `limit`, oldest first.
        out.sort_by_key(|e| std::cmp::Reverse(e.time));
        out.truncate(query.limit as usize);
        out.reverse();
        Ok(out)
    }

    fn process(&self, id: &str) -> Result<Option<ProcessDetail>, BackendError> {
        let id = convert::process_id(id);
        let core = self.core();
        let q = causeway_store::EventQuery {
            process: Some(id.to_string()),
            limit: 10_000,
            ..Default::default()
        };
        let mut evs: Vec<Event> = core
            .pipeline
            .store()
            .events(&q)
            .map_err(internal)?
            .into_iter()
            .map(|s| s.event)
            .collect();
        evs.reverse();
        let last = evs
            .iter()
            .rev()
            .find(|e| e.kind == Kind::ProcessExec)
            .or(evs.last());
        let (process, host) = match (last, core.index.process(id)) {
            (Some(e), _) => (e.process.clone(), e.host.clone()),
            (None, Some(p)) => (p, causeway_model::Host::default()),
            (None, None) => return Ok(None),
        };
        let hn = host.name.clone();
        // History from the causal graph (rebuilt from the store at open, unbounded): the
        // process index is bounded and forgets exited processes, which a person exploring an
        // old incident still wants to see. Live judging uses the index.
        let graph = core.pipeline.graph();
        let ancestors = graph
            .ancestors(id, Some(MAX_ANCESTRY_EDGES))
            .map(|t| convert::ancestors(&t, id, &hn, MAX_ANCESTORS))
            .unwrap_or_default();
        let images = graph.images_of(id);
        // Every image of the process, then one fork and one exec of each child.
        let depth = u32::try_from(images.len() + 1).unwrap_or(u32::MAX);
        let children = graph
            .descendants(id, Some(depth))
            .map(|t| convert::children(&t, id, &hn))
            .unwrap_or_default();
        let around: Vec<causeway_graph::Trace> = images
            .iter()
            .flat_map(|&n| {
                [TraceQuery::backward(), TraceQuery::forward()].map(|q| graph.trace(n, &q.depth(1)))
            })
            .collect();
        let graph_peers = convert::graph_peers(&around, id);
        let exit = evs.iter().find(|e| e.kind == Kind::ProcessExit);
        let mut flows = Vec::new();
        for e in evs.iter().filter(|e| is_flow(e.kind)) {
            let Some(n) = e.network.as_ref() else {
                continue;
            };
            let direction = match e.kind {
                Kind::NetConnect => "outbound",
                Kind::NetAccept => "inbound",
                _ => "listen",
            };
            let peer = match core.index.peer(e) {
                Some(p) => Some(brief(&p, "")),
                None if direction != "listen" => {
                    match convert::nearest_peer(&graph_peers, direction == "outbound", e.time) {
                        Some(gp) => self.peer_brief(&core, gp, &host)?,
                        None => None,
                    }
                }
                None => None,
            };
            flows.push(FlowInfo {
                direction: direction.to_string(),
                protocol: n.protocol.clone(),
                local: n.local.clone(),
                remote: n.remote.clone(),
                time: e.time,
                peer,
            });
        }
        let files = evs
            .iter()
            .filter_map(|e| {
                let f = e.file.as_ref()?;
                Some(FileAccess {
                    path: f.path.clone(),
                    kind: e.kind.as_str().to_string(),
                    write: f.write,
                    sensitive: f.sensitive,
                    time: e.time,
                })
            })
            .collect();
        Ok(Some(ProcessDetail {
            start_time: process.start_time,
            process: (*process).clone(),
            host,
            exit_time: exit.map(|e| e.time),
            exit: exit.and_then(|e| e.exit.clone()),
            ancestors,
            children,
            flows,
            files,
        }))
    }

    fn trace(
        &self,
        id: &str,
        direction: Direction,
        depth: u32,
    ) -> Result<Option<Trace>, BackendError> {
        let core = self.core();
        let q = match direction {
            Direction::Backward => TraceQuery::backward(),
            Direction::Forward => TraceQuery::forward(),
        }
        .depth(depth);
        let graph = core.pipeline.graph();
        // A trace node id names one image of a process: trace from that image, so "expand"
        // on a node continues from the node itself.
        if id.starts_with("proc:") {
            if let Some(n) = graph
                .find_key(id)
                .filter(|&n| graph.node_kind(n) == Some(NodeKind::Process))
            {
                return Ok(Some(convert::trace(&graph.trace(n, &q), &[])));
            }
        }
        Ok(graph
            .trace_process(convert::process_id(id), &q)
            .map(|t| convert::trace(&t, &[])))
    }

    fn health(&self) -> Result<Health, BackendError> {
        let core = self.core();
        // Losses inside the node (store errors); the whole picture adds the agent's own.
        let mut lost = core.counters.lost.clone();
        let mut agents = Vec::new();
        // The node counts what its own lanes refused, per kind, in `counters.lost`; the
        // agent's losses (ring buffers, decoding) add to them.
        if let Some(a) = &self.agent {
            {
                let s = a.snapshot();
                let host = causeway_agent::host::HostInfo::detect();
                for (k, v) in &s.lost {
                    *lost.entry(k.clone()).or_default() += v;
                }
                agents.push(AgentHealth {
                    host: host.host.name,
                    host_id: host.host.id,
                    state: s.state.clone(),
                    last_event: core.counters.last_event,
                    events_seen: s.seen_total,
                    events_lost: s.lost,
                });
            }
        }
        let incidents = core
            .pipeline
            .store()
            .stats()
            .map(|s| s.incidents)
            .unwrap_or(0);
        let degraded = lost.values().any(|v| *v > 0) || agents.iter().any(|a| a.state != "running");
        Ok(Health {
            status: if degraded { "degraded" } else { "ok" }.to_string(),
            agents,
            events_seen: core.counters.events,
            events_lost: lost,
            incidents,
            uptime_seconds: self.started.elapsed().as_secs(),
        })
    }

    fn rules(&self) -> Result<Vec<RuleInfo>, BackendError> {
        let core = self.core();
        Ok(core
            .ruleset()
            .rules()
            .iter()
            .map(|r| RuleInfo {
                id: r.id.clone(),
                title: r.title.clone(),
                description: r.description.clone(),
                severity: r.severity,
                techniques: r.techniques.clone(),
                tactic: r.tactic.clone(),
                kinds: r.kinds.iter().map(|k| k.as_str().to_string()).collect(),
                origin: r.origin.clone(),
            })
            .collect())
    }

    fn policies(&self) -> Result<Vec<PolicyInfo>, BackendError> {
        // Workload policies are not built yet (see the README's status).
        Ok(Vec::new())
    }

    fn metrics(&self) -> Result<String, BackendError> {
        Ok(crate::metrics::render(&self.core()))
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<IncidentUpdate> {
        self.updates.subscribe()
    }
}
