//! The threat model derived from what runs: workloads as technical assets (their process
//! trees collapsed), entry points, data flows aggregated per workload pair and server port,
//! trust boundaries as a tree (internet, host, container) and data assets (credentials read),
//! every element with its provenance; an annotations overlay for what runtime cannot see;
//! exports to Threagile YAML, OWASP pytm, Threat Dragon v2 JSON and OTM.
//!
//! Key design choices:
//! - **The node's process index is the only process table.** [`ModelBuilder`] is fed events
//!   in time order *after* the `causeway_index::ProcessIndex` has observed them, and asks the
//!   index (via `causeway_model::Lineage`) for ancestry (to find a workload's root) and for
//!   flow peers (to tell another workload from an outside address). The builder only keeps
//!   aggregates and a per-process cache of the workload it resolved to.
//! - **A connection is counted once.** Accepts whose client the index knows count the flow
//!   (client workload → server workload); connects are held for the pairing window and count
//!   only if no monitored server accepted them (then the peer is an address outside).
//! - **Stable ids from identity**: slug of the name plus a 32-bit FNV-1a hash of the identity
//!   key, so regenerating gives the same ids, exports diff cleanly and annotations (keyed by
//!   id, [`annotate`]) survive regeneration.
//! - **Deterministic output**: every collection in the model is sorted (BTreeMap/BTreeSet),
//!   and each exporter escapes strings for its own format.

pub mod annotate;
pub mod builder;
pub mod classify;
pub mod export;
pub mod ids;
pub mod model;

pub use annotate::{Annotation, Annotations, AnnotationsError};
pub use builder::{BuilderConfig, ModelBuilder};
pub use export::{export, Format};
pub use model::*;
