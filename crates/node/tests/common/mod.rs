//! What the node's tests share: the recorded fixtures of the rules crate, and one incident
//! listing.

use causeway_model::Event;
use causeway_node::Node;
use causeway_server::types::{IncidentSummary, Page};
use causeway_server::{Backend, IncidentQuery};
use std::path::PathBuf;

pub fn fixture(name: &str) -> Vec<Event> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../rules/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&p)
        .expect("fixture")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Event::from_json(l).expect("event"))
        .collect()
}

/// The first ten incidents the API lists.
pub fn incidents(node: &Node) -> Page<IncidentSummary> {
    node.backend(None)
        .incidents(&IncidentQuery {
            limit: 10,
            ..Default::default()
        })
        .expect("list")
}
