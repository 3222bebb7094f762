//! Causeway's causal graph: turns a stream of [`causeway_model::Event`]s into entities
//! (hosts, process images, containers, files, network peers, login sessions) joined by
//! time-stamped causal edges, and answers backward / forward traces over it.
//!
//! Key design choices:
//! - **One node per exec image**; fork and exec are edges. An event is attributed to the image
//!   its process was running at the event's time (a per-process timeline), so pid reuse and
//!   re-exec never mix identities.
//! - **Events are applied in time order** through a small reorder buffer ([`Reorder`]) with a
//!   configurable lateness horizon: any delivery order whose disorder fits the horizon yields
//!   the *identical* graph. Events later than the horizon are still linked, conservatively
//!   (a cause is never dropped; a spurious one may be added), see [`build`].
//! - **Dependence-preserving reduction** (Hossain et al., USENIX Security 2018): an edge
//!   occurrence `u -> v` is folded into the previous run of the same `(u, v, kind)` only if `u`
//!   received nothing since the run began and `v` emitted nothing since the run began. Under
//!   the time-respecting trace semantics of [`query`] every backward and forward trace is then
//!   exactly the one of the unreduced graph; `tests/reduction.rs` checks it with proptest.
//! - Compact storage: nodes and runs in flat vectors indexed by `u32`, strings interned.

pub mod build;
pub mod query;
pub mod reorder;
mod stats;
pub mod types;

pub use build::{Graph, GraphConfig, GraphStats, Verdict};
pub use query::{Direction, Trace, TraceEdge, TraceNode, TraceQuery};
pub use reorder::Reorder;
pub use types::{EdgeKind, NodeId, NodeKind};
