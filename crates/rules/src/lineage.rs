//! What the engine needs from the causal graph, as a trait, and an in-memory version.
//!
//! The real graph (crates/graph) implements [`Lineage`] through an adapter; tests,
//! `causeway rules test` and the benchmark use [`MemoryLineage`], a process table and a
//! flow table built from the events themselves.

use causeway_model::{Event, Kind, Process};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Read access to process ancestry and network flows.
pub trait Lineage {
    /// The process with this id as last known (after its latest exec).
    fn process(&self, id: &str) -> Option<Arc<Process>>;

    /// Its ancestors, parent first, at most `max`. Empty when unknown.
    fn ancestors(&self, id: &str, max: usize) -> Vec<Arc<Process>> {
        let mut out = Vec::new();
        let mut cur = self.process(id).map(|p| p.parent_id.clone());
        while let Some(pid) = cur {
            if out.len() >= max || pid.is_empty() {
                break;
            }
            match self.process(&pid) {
                Some(p) => {
                    cur = Some(p.parent_id.clone());
                    out.push(p);
                }
                None => break,
            }
        }
        out
    }

    /// The process at the other end of a `net.*` event's flow, when known.
    fn peer(&self, event: &Event) -> Option<Arc<Process>>;
}

/// The (ip, port, ip, port) of a flow as one side sees it; the other side sees it mirrored.
type FlowKey = (String, String, u16, String, u16);

/// Bound on remembered processes and flows: the table is a cache, not a store.
const MAX_PROCESSES: usize = 200_000;
const MAX_FLOWS: usize = 100_000;

/// Process and flow tables built from events.
#[derive(Debug, Default)]
pub struct MemoryLineage {
    procs: HashMap<String, Arc<Process>>,
    order: VecDeque<String>,
    flows: HashMap<FlowKey, String>,
    flow_order: VecDeque<FlowKey>,
}

impl MemoryLineage {
    pub fn new() -> Self {
        Self::default()
    }

    /// Learn from one event: every event carries its process as known at that time; exec
    /// replaces the image; connect/accept remember which process owns which flow end.
    pub fn observe(&mut self, e: &Event) {
        let p = &e.process;
        if p.id.is_empty() {
            return;
        }
        match self.procs.get_mut(&p.id) {
            // A fork event shows the child with the parent's image; later events of the
            // same process are fresher than what we have.
            Some(known) => {
                if e.kind == Kind::ProcessExec || known.exe.is_empty() || **known != **p {
                    *known = p.clone();
                }
            }
            None => {
                self.procs.insert(p.id.clone(), p.clone());
                self.order.push_back(p.id.clone());
                if self.order.len() > MAX_PROCESSES {
                    if let Some(old) = self.order.pop_front() {
                        self.procs.remove(&old);
                    }
                }
            }
        }
        if matches!(e.kind, Kind::NetConnect | Kind::NetAccept) {
            if let Some(n) = &e.network {
                let key = (
                    n.protocol.clone(),
                    n.local.ip.clone(),
                    n.local.port,
                    n.remote.ip.clone(),
                    n.remote.port,
                );
                self.flows.insert(key.clone(), p.id.clone());
                self.flow_order.push_back(key);
                if self.flow_order.len() > MAX_FLOWS {
                    if let Some(old) = self.flow_order.pop_front() {
                        self.flows.remove(&old);
                    }
                }
            }
        }
    }

    /// The owner of the mirrored end of this event's flow.
    pub fn peer_id(&self, e: &Event) -> Option<&str> {
        let n = e.network.as_ref()?;
        let key = (
            n.protocol.clone(),
            n.remote.ip.clone(),
            n.remote.port,
            n.local.ip.clone(),
            n.local.port,
        );
        self.flows
            .get(&key)
            .map(String::as_str)
            .filter(|id| *id != e.process.id)
    }
}

impl Lineage for MemoryLineage {
    fn process(&self, id: &str) -> Option<Arc<Process>> {
        self.procs.get(id).cloned()
    }

    fn peer(&self, event: &Event) -> Option<Arc<Process>> {
        self.peer_id(event).and_then(|id| self.process(id))
    }
}

/// A lineage that knows nothing: rules see no ancestors.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLineage;

impl Lineage for NoLineage {
    fn process(&self, _id: &str) -> Option<Arc<Process>> {
        None
    }
    fn peer(&self, _event: &Event) -> Option<Arc<Process>> {
        None
    }
}
