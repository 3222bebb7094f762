//! Read access to process ancestry and network flows: what detection, incidents, policies
//! and the API ask of the node's process index (`causeway-index`), as a trait so that the
//! crates asking need not depend on the index's internals.

use crate::{Event, Process};
use std::sync::Arc;

/// Process ancestry and flow peers, as known at the time of asking.
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
