//! Exports. Each format has its own module and its own escaping; all iterate the model's
//! sorted maps, so the output is deterministic.

pub mod dragon;
pub mod otm;
pub mod pytm;
pub mod threagile;

use crate::annotate::{Annotation, Annotations};
use crate::model::ThreatModel;

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Threagile,
    Pytm,
    ThreatDragon,
    Otm,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "threagile" => Some(Format::Threagile),
            "pytm" => Some(Format::Pytm),
            "threat-dragon" => Some(Format::ThreatDragon),
            "otm" => Some(Format::Otm),
            _ => None,
        }
    }
}

/// Options shared by the exports.
#[derive(Debug, Clone)]
pub struct Meta {
    pub title: String,
    /// `YYYY-MM-DD` (Threagile's `date`).
    pub date: String,
}

/// The model with its annotations (an empty overlay when none).
pub struct Annotated<'a> {
    pub model: &'a ThreatModel,
    pub notes: &'a Annotations,
    pub meta: &'a Meta,
}

static NONE: Annotation = Annotation {
    owner: None,
    description: None,
    confidentiality: None,
    integrity: None,
    availability: None,
    justification: None,
    authentication: None,
    authorization: None,
    encrypted: None,
    pos: causeway_rules::diag::Pos { line: 0, col: 0 },
    flow_fields: None,
    cia_fields: None,
};

impl Annotated<'_> {
    pub fn note(&self, id: &str) -> &Annotation {
        self.notes.get(id).unwrap_or(&NONE)
    }
}

/// Render the model in a format.
pub fn export(a: &Annotated<'_>, f: Format) -> String {
    match f {
        Format::Threagile => threagile::render(a),
        Format::Pytm => pytm::render(a),
        Format::ThreatDragon => dragon::render(a),
        Format::Otm => otm::render(a),
    }
}
