//! The annotations overlay: what runtime cannot see (CIA ratings, owner, authentication...),
//! in a YAML file of its own keyed by stable ids, merged into exports. Regenerating the model
//! never touches it. A malformed file is refused as a whole with `file:line:col` for every
//! problem (the rules crate's YAML-with-positions reader), so nothing is half-applied.
//!
//! ```yaml
//! api-service-1a2b3c4d:          # a workload
//!   owner: team-api
//!   confidentiality: confidential
//!   integrity: critical
//!   availability: important
//! frontend-to-api-tcp-8080-0badf00d:   # a flow
//!   authentication: token
//! ```

use crate::model::ThreatModel;
use causeway_rules::diag::{Diagnostic, FileError, LoadError, Pos};
use causeway_rules::yaml::{self, Node, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// Threagile's CIA vocabularies (facts file §1): confidentiality, then integrity/availability.
pub const CONFIDENTIALITY: &[&str] = &[
    "public",
    "internal",
    "restricted",
    "confidential",
    "strictly-confidential",
];
pub const CRITICALITY: &[&str] = &[
    "archive",
    "operational",
    "important",
    "critical",
    "mission-critical",
];
pub const AUTHENTICATION: &[&str] = &[
    "none",
    "credentials",
    "session-id",
    "token",
    "client-certificate",
    "two-factor",
    "externalized",
];
pub const AUTHORIZATION: &[&str] = &["none", "technical-user", "end-user-identity-propagation"];

/// Human facts about one element.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Annotation {
    pub owner: Option<String>,
    pub description: Option<String>,
    pub confidentiality: Option<String>,
    pub integrity: Option<String>,
    pub availability: Option<String>,
    pub justification: Option<String>,
    /// Flows only.
    pub authentication: Option<String>,
    pub authorization: Option<String>,
    pub encrypted: Option<bool>,
    /// Where the element's entry starts, for errors found when applying.
    #[serde(skip)]
    pub pos: Pos,
    #[serde(skip)]
    pub(crate) flow_fields: Option<Pos>,
    #[serde(skip)]
    pub(crate) cia_fields: Option<Pos>,
}

/// The overlay, by element id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    pub file: std::path::PathBuf,
    pub by_id: BTreeMap<String, Annotation>,
}

#[derive(Debug, thiserror::Error)]
pub enum AnnotationsError {
    #[error("reading annotations {path}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] LoadError),
}

fn diag(pos: Pos, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        pos,
        message: message.into(),
    }
}

fn enum_field(
    v: &Node,
    field: &str,
    allowed: &[&str],
    errs: &mut Vec<Diagnostic>,
) -> Option<String> {
    match v.as_str() {
        Some(s) if allowed.contains(&s) => Some(s.to_string()),
        Some(s) => {
            errs.push(diag(
                v.pos,
                format!("{field}: {s:?} is not one of {}", allowed.join(", ")),
            ));
            None
        }
        None => {
            errs.push(diag(
                v.pos,
                format!("{field}: expected a string, got {}", v.type_name()),
            ));
            None
        }
    }
}

fn str_field(v: &Node, field: &str, errs: &mut Vec<Diagnostic>) -> Option<String> {
    match v.as_str() {
        Some(s) if s.len() <= 4096 => Some(s.to_string()),
        Some(_) => {
            errs.push(diag(v.pos, format!("{field}: longer than 4096 bytes")));
            None
        }
        None => {
            errs.push(diag(
                v.pos,
                format!("{field}: expected a string, got {}", v.type_name()),
            ));
            None
        }
    }
}

impl Annotations {
    /// Load and validate a file.
    pub fn load(path: &Path) -> Result<Self, AnnotationsError> {
        let src = std::fs::read_to_string(path).map_err(|source| AnnotationsError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &src)
    }

    /// Parse and validate text (`path` names it in errors).
    pub fn parse(path: &Path, src: &str) -> Result<Self, AnnotationsError> {
        let fail = |ds: Vec<Diagnostic>| LoadError {
            errors: ds.into_iter().map(|d| FileError::new(path, d)).collect(),
        };
        let root = yaml::parse(src).map_err(|d| fail(vec![d]))?;
        let mut errs = Vec::new();
        let mut by_id = BTreeMap::new();
        let entries = match &root.value {
            Value::Map(m) => m.as_slice(),
            Value::Null => &[],
            _ => {
                return Err(fail(vec![diag(
                    root.pos,
                    "annotations: expected a mapping of element id to fields",
                )])
                .into())
            }
        };
        for (k, v) in entries {
            let Some(id) = k.as_str() else {
                errs.push(diag(k.pos, "element id: expected a string"));
                continue;
            };
            if by_id.contains_key(id) {
                errs.push(diag(k.pos, format!("{id}: annotated twice")));
                continue;
            }
            let Value::Map(fields) = &v.value else {
                errs.push(diag(
                    v.pos,
                    format!("{id}: expected a mapping of fields, got {}", v.type_name()),
                ));
                continue;
            };
            let mut a = Annotation {
                pos: k.pos,
                ..Default::default()
            };
            for (fk, fv) in fields {
                let Some(name) = fk.as_str() else {
                    errs.push(diag(fk.pos, "field name: expected a string"));
                    continue;
                };
                match name {
                    "owner" => a.owner = str_field(fv, name, &mut errs),
                    "description" => a.description = str_field(fv, name, &mut errs),
                    "justification" => a.justification = str_field(fv, name, &mut errs),
                    "confidentiality" => {
                        a.cia_fields.get_or_insert(fk.pos);
                        a.confidentiality = enum_field(fv, name, CONFIDENTIALITY, &mut errs)
                    }
                    "integrity" | "availability" => {
                        a.cia_fields.get_or_insert(fk.pos);
                        let val = enum_field(fv, name, CRITICALITY, &mut errs);
                        if name == "integrity" {
                            a.integrity = val
                        } else {
                            a.availability = val
                        }
                    }
                    "authentication" => {
                        a.flow_fields.get_or_insert(fk.pos);
                        a.authentication = enum_field(fv, name, AUTHENTICATION, &mut errs)
                    }
                    "authorization" => {
                        a.flow_fields.get_or_insert(fk.pos);
                        a.authorization = enum_field(fv, name, AUTHORIZATION, &mut errs)
                    }
                    "encrypted" => {
                        a.flow_fields.get_or_insert(fk.pos);
                        match fv.value {
                            Value::Bool(b) => a.encrypted = Some(b),
                            _ => errs.push(diag(
                                fv.pos,
                                format!(
                                    "encrypted: expected true or false, got {}",
                                    fv.type_name()
                                ),
                            )),
                        }
                    }
                    other => errs.push(diag(
                        fk.pos,
                        format!(
                            "unknown field {other:?}; one of owner, description, justification, \
                             confidentiality, integrity, availability, authentication, \
                             authorization, encrypted"
                        ),
                    )),
                }
            }
            by_id.insert(id.to_string(), a);
        }
        if !errs.is_empty() {
            return Err(fail(errs).into());
        }
        Ok(Annotations {
            file: path.to_path_buf(),
            by_id,
        })
    }

    /// Check the overlay against a model: flow fields only on flows, CIA ratings not on
    /// flows. Returns the ids the model does not have (kept in the file, reported, unused:
    /// an element not seen in this window must not lose its annotation).
    pub fn check(&self, m: &ThreatModel) -> Result<Vec<String>, LoadError> {
        let mut errs = Vec::new();
        let mut unknown = Vec::new();
        for (id, a) in &self.by_id {
            let is_flow = m.flows.contains_key(id);
            let known = is_flow
                || m.workloads.contains_key(id)
                || m.data_assets.contains_key(id)
                || m.entry_points.contains_key(id)
                || m.externals.contains_key(id)
                || m.boundaries.contains_key(id);
            if !known {
                unknown.push(id.clone());
                continue;
            }
            if let (false, Some(p)) = (is_flow, a.flow_fields) {
                errs.push(FileError::new(
                    &self.file,
                    diag(p, format!("{id} is not a flow: authentication, authorization and encrypted apply to flows")),
                ));
            }
            if let (true, Some(p)) = (is_flow, a.cia_fields) {
                errs.push(FileError::new(
                    &self.file,
                    diag(
                        p,
                        format!("{id} is a flow: CIA ratings apply to workloads and data assets"),
                    ),
                ));
            }
        }
        if errs.is_empty() {
            Ok(unknown)
        } else {
            Err(LoadError { errors: errs })
        }
    }

    pub fn get(&self, id: &str) -> Option<&Annotation> {
        self.by_id.get(id)
    }
}
