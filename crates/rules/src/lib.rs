//! Causeway's detection engine: rules as code (YAML + CEL conditions), validated with
//! file:line:col on every error, compiled once and indexed by event kind; flags on the
//! same causal chain are grouped into scored incidents.
//!
//! Key design choice: conditions are standard CEL evaluated over the event *and its graph
//! context* (ancestors, session, container, flow peer), which the engine reads through the
//! small [`Lineage`] trait rather than depending on the graph crate. Context that no rule
//! of an event's kind reads is never built, and a prefilter compiled from each condition
//! (exact: it only skips rules whose condition cannot be true) keeps CEL off the events no
//! rule can match, so evaluation stays cheap enough to run inline next to ingestion.

pub mod compile;
pub mod diag;
pub mod eval;
pub mod incident;
pub mod lazy;
pub mod lineage;
pub mod prefilter;
pub mod ruleset;
pub mod schema;
pub mod testcase;
pub mod values;
pub mod yaml;

pub use diag::{FileError, LoadError, Pos};
pub use eval::{EvalStats, Flag};

pub use incident::{
    Incident, IncidentConfig, IncidentEngine, IncidentFlag, IncidentUpdate, ProcessRef, Trace,
};
pub use lineage::{Lineage, NoLineage, ProcessIndex};
pub use prefilter::Coverage;
pub use ruleset::{Loaded, Rule, Ruleset};
pub use schema::Severity;
