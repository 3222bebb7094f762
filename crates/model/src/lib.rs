//! Causeway's domain model: the event record every part of the system exchanges, the stable
//! identities of hosts and processes, and the lossless escaping of workload-controlled bytes.
//!
//! Key design choice: one flat, serde-derived [`Event`] whose JSON form *is* the public
//! contract of `shared/design/brief.md` (agent output, `causeway ingest` input, HTTP API).
//! The kind-specific part is a set of optional objects (`network`, `file`, ...) rather than a
//! tagged enum, so the JSON stays exactly as documented and old readers ignore new objects.
//! This crate does no I/O so that the graph, rules and server can depend on it cheaply.

pub mod escape;
pub mod event;
pub mod id;
pub mod lineage;
pub mod severity;
pub mod timefmt;

pub use escape::{escape_bytes, unescape};
pub use event::*;
pub use id::{HostId, ProcessKey};
pub use lineage::{Lineage, NoLineage};
pub use severity::Severity;
