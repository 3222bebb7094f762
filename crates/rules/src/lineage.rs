//! What the engine needs from the node's process index. The [`Lineage`] trait lives in the
//! model crate so that the index (`causeway-index`) can implement it without depending on
//! the rules; every caller — the node, `causeway rules test`, the policy crate, the tests and
//! the benchmark — hands the engine the one real index, never a table of its own.

pub use causeway_index::ProcessIndex;
pub use causeway_model::{Lineage, NoLineage};
