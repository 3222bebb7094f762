//! Golden test cases for users' CI: recorded events in, expected detections out.
//!
//! A case file (YAML):
//! ```yaml
//! events: attack.jsonl        # JSON lines in the agent's form, relative to this file
//! expect: [CW-EXEC-001]       # each must fire at least once, unsuppressed
//! forbid: [CW-DISC-001]       # none of these may fire unsuppressed (optional)
//! only: true                  # no rule outside `expect` may fire unsuppressed (optional)
//! suppressed: [CW-EXEC-009]   # each must fire, suppressed (optional)
//! ```

use crate::diag::{Diagnostic, FileError, Pos};
use crate::eval::Flag;
use crate::lineage::ProcessIndex;
use crate::ruleset::Ruleset;
use crate::yaml::{self, Value};
use causeway_model::Event;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A parsed test case.
#[derive(Debug, Clone, Default)]
pub struct TestCase {
    pub events: PathBuf,
    pub expect: Vec<String>,
    pub forbid: Vec<String>,
    pub suppressed: Vec<String>,
    pub only: bool,
}

/// Why a case could not run.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("{0}")]
    Parse(FileError),
    #[error("{file}:{line}: bad event: {msg}")]
    Event {
        file: PathBuf,
        line: usize,
        msg: String,
    },
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The outcome of one case.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Outcome {
    pub flags: Vec<Flag>,
    /// Expected rules that did not fire.
    pub missing: Vec<String>,
    /// Rules that fired but were forbidden, or not expected under `only`.
    pub unexpected: Vec<String>,
    /// Rules expected to fire suppressed that did not.
    pub missing_suppressed: Vec<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.missing_suppressed.is_empty()
    }
}

impl TestCase {
    /// Parse a case file.
    pub fn load(path: &Path) -> Result<TestCase, CaseError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| CaseError::Io(path.to_path_buf(), e))?;
        let fe = |d: Diagnostic| CaseError::Parse(FileError::new(path, d));
        let root = yaml::parse(&text).map_err(fe)?;
        let Value::Map(m) = &root.value else {
            return Err(fe(Diagnostic {
                pos: root.pos,
                message: "a test case must be a mapping".into(),
            }));
        };
        let mut tc = TestCase::default();
        let base = path.parent().unwrap_or(Path::new("."));
        let strings = |n: &yaml::Node| -> Result<Vec<String>, CaseError> {
            match &n.value {
                Value::Seq(items) => items
                    .iter()
                    .map(|i| {
                        i.as_str().map(str::to_string).ok_or_else(|| {
                            fe(Diagnostic {
                                pos: i.pos,
                                message: "expected a rule id".into(),
                            })
                        })
                    })
                    .collect(),
                _ => Err(fe(Diagnostic {
                    pos: n.pos,
                    message: "expected a list of rule ids".into(),
                })),
            }
        };
        let mut have_events = false;
        for (k, v) in m {
            match k.as_str() {
                Some("events") => {
                    let p = v.as_str().ok_or_else(|| {
                        fe(Diagnostic {
                            pos: v.pos,
                            message: "`events` must be a path".into(),
                        })
                    })?;
                    tc.events = base.join(p);
                    have_events = true;
                }
                Some("expect") => tc.expect = strings(v)?,
                Some("forbid") => tc.forbid = strings(v)?,
                Some("suppressed") => tc.suppressed = strings(v)?,
                Some("only") => match v.value {
                    Value::Bool(b) => tc.only = b,
                    _ => {
                        return Err(fe(Diagnostic {
                            pos: v.pos,
                            message: "`only` must be true or false".into(),
                        }))
                    }
                },
                _ => {
                    return Err(fe(Diagnostic {
                        pos: k.pos,
                        message: format!(
                            "unknown field `{}` in a test case",
                            k.as_str().unwrap_or("?")
                        ),
                    }))
                }
            }
        }
        if !have_events {
            return Err(fe(Diagnostic {
                pos: Pos { line: 1, col: 1 },
                message: "test case is missing `events`".into(),
            }));
        }
        Ok(tc)
    }

    /// Replay the events and compare.
    pub fn run(&self, rules: &Ruleset) -> Result<Outcome, CaseError> {
        let flags = replay_file(&self.events, rules)?;
        Ok(self.judge(flags))
    }

    /// Compare flags with the expectations.
    pub fn judge(&self, flags: Vec<Flag>) -> Outcome {
        let fired: BTreeSet<&str> = flags
            .iter()
            .filter(|f| f.suppressed_by.is_none())
            .map(|f| f.rule_id.as_str())
            .collect();
        let fired_sup: BTreeSet<&str> = flags
            .iter()
            .filter(|f| f.suppressed_by.is_some())
            .map(|f| f.rule_id.as_str())
            .collect();
        let missing = self
            .expect
            .iter()
            .filter(|r| !fired.contains(r.as_str()))
            .cloned()
            .collect();
        let missing_suppressed = self
            .suppressed
            .iter()
            .filter(|r| !fired_sup.contains(r.as_str()))
            .cloned()
            .collect();
        let unexpected = fired
            .iter()
            .filter(|r| {
                self.forbid.iter().any(|f| f == *r)
                    || (self.only && !self.expect.iter().any(|e| e == *r))
            })
            .map(|r| r.to_string())
            .collect();
        Outcome {
            flags,
            missing,
            unexpected,
            missing_suppressed,
        }
    }
}

/// Parse a JSON-lines file of events (blank lines skipped).
pub fn read_events(path: &Path) -> Result<Vec<Event>, CaseError> {
    let text = std::fs::read_to_string(path).map_err(|e| CaseError::Io(path.to_path_buf(), e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let e = Event::from_json(line).map_err(|e| CaseError::Event {
            file: path.to_path_buf(),
            line: i + 1,
            msg: e.to_string(),
        })?;
        out.push(e);
    }
    Ok(out)
}

/// Replay events in order through an in-memory lineage; every flag, suppressed ones too.
pub fn replay(events: &[Event], rules: &Ruleset) -> Vec<Flag> {
    let mut lineage = ProcessIndex::new();
    let mut flags = Vec::new();
    for e in events {
        lineage.observe(e);
        flags.extend(rules.evaluate(e, &lineage));
    }
    flags
}

pub fn replay_file(path: &Path, rules: &Ruleset) -> Result<Vec<Flag>, CaseError> {
    Ok(replay(&read_events(path)?, rules))
}
