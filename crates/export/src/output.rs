//! What the sinks receive. The only place that names where `Incident`, `Flag` and `Event`
//! come from, so that moving them to `causeway_model` later changes these imports only.

use std::sync::Arc;

pub use causeway_model::Event;
pub use causeway_rules::{Flag, Incident, Severity};

/// Whether an incident update opened the incident or made it grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Opened,
    Updated,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Opened => "opened",
            Change::Updated => "updated",
        }
    }
}

/// One thing the node exports. Cheap to clone: the payload is shared.
#[derive(Debug, Clone)]
pub enum Output {
    Incident {
        change: Change,
        incident: Arc<Incident>,
    },
    Flag(Arc<Flag>),
    Event(Arc<Event>),
}

/// Which outputs a sink takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub incidents: bool,
    pub flags: bool,
    pub events: bool,
}

impl Accepts {
    pub fn takes(self, output: &Output) -> bool {
        match output {
            Output::Incident { .. } => self.incidents,
            Output::Flag(_) => self.flags,
            Output::Event(_) => self.events,
        }
    }
}

/// The JSON object of an output, as the JSON-lines sink writes it and the webhook's `data`.
pub(crate) fn output_json(output: &Output) -> Result<serde_json::Value, serde_json::Error> {
    Ok(match output {
        Output::Incident { change, incident } => serde_json::json!({
            "type": "incident",
            "change": change.as_str(),
            "incident": serde_json::to_value(&**incident)?,
        }),
        Output::Flag(flag) => serde_json::json!({
            "type": "flag",
            "flag": serde_json::to_value(&**flag)?,
        }),
        Output::Event(event) => serde_json::json!({
            "type": "event",
            "event": serde_json::to_value(&**event)?,
        }),
    })
}

/// The distinct rule ids of an incident's flags, sorted.
pub(crate) fn rule_ids(i: &Incident) -> Vec<&str> {
    let mut r: Vec<&str> = i.flags.iter().map(|f| f.rule_id.as_str()).collect();
    r.sort_unstable();
    r.dedup();
    r
}
