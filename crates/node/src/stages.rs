//! The judging stages of the node's pipeline, in order: detection (rules), enforcement
//! flags (the kernel's policy decisions), policy deviations (what the kernel does not check),
//! then incidents (flags grouped on their causal chain). Each stage sees the event and the
//! one process index and adds flags; the incident stage turns flags into incident updates
//! for the sinks. A new judge (the threat model's drift, say) is one more [`Stage`].

use causeway_index::ProcessIndex;
use causeway_model::{Enforcement, Event};
use causeway_rules::{Flag, IncidentEngine, IncidentUpdate, Ruleset, Severity};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One judge of the pipeline.
pub trait Stage: Send {
    /// For logs and health.
    fn name(&self) -> &'static str;
    /// Judge one event (already in the index); push its flags. A stage may annotate the
    /// event for the stages and sinks after it.
    fn judge(&mut self, ev: &mut Event, index: &ProcessIndex, flags: &mut Vec<Flag>);
}

/// Rules as code over the event and its lineage.
pub struct Detection {
    pub ruleset: Arc<Ruleset>,
}

impl Stage for Detection {
    fn name(&self) -> &'static str {
        "detection"
    }
    fn judge(&mut self, ev: &mut Event, index: &ProcessIndex, flags: &mut Vec<Flag>) {
        flags.extend(self.ruleset.evaluate(ev, index));
    }
}

/// A policy decision the kernel took (killed, blocked or audited an exec) is a flag like any
/// detection, so it joins the incident of its causal chain.
pub struct EnforcementFlags {
    /// Policy names by kernel id.
    pub names: BTreeMap<u32, String>,
}

impl Stage for EnforcementFlags {
    fn name(&self) -> &'static str {
        "enforcement"
    }
    fn judge(&mut self, ev: &mut Event, _index: &ProcessIndex, flags: &mut Vec<Flag>) {
        let Some(enf) = ev.enforcement.as_mut() else {
            return;
        };
        if let Some(name) = self.names.get(&enf.policy_id) {
            enf.policy = name.clone();
        }
        if let Some(enf) = &ev.enforcement {
            flags.push(policy_flag(ev, enf));
        }
    }
}

/// What the kernel does not check (connections, listening ports, users), checked live
/// against the same policies.
pub struct Deviations {
    pub checkers: Vec<(String, causeway_policy::Walker)>,
}

impl Stage for Deviations {
    fn name(&self) -> &'static str {
        "deviations"
    }
    fn judge(&mut self, ev: &mut Event, _index: &ProcessIndex, flags: &mut Vec<Flag>) {
        for (name, w) in &mut self.checkers {
            let before = w.deviations.len();
            w.step(ev, true);
            // Executables are the kernel's job (flagged by `EnforcementFlags`).
            for d in w.deviations[before..]
                .iter()
                .filter(|d| d.kind != causeway_policy::DeviationKind::Process)
            {
                flags.push(deviation_flag(ev, name, d));
            }
        }
    }
}

/// Flags on one causal chain grouped into scored incidents.
pub struct Incidents {
    pub engine: IncidentEngine,
}

impl Incidents {
    /// Learn flow links from the event, then add its flags; the incidents that opened or grew.
    pub fn group(
        &mut self,
        ev: &Event,
        flags: &[Flag],
        index: &ProcessIndex,
    ) -> Vec<IncidentUpdate> {
        self.engine.observe(ev, index);
        if flags.is_empty() {
            return Vec::new();
        }
        self.engine.add_flags(flags, index)
    }
}

/// How a flag names its host: the name people know, the id when there is none (as the
/// rules engine does).
fn host_label(h: &causeway_model::Host) -> String {
    if h.name.is_empty() {
        h.id.clone()
    } else {
        h.name.clone()
    }
}

/// The flag of an exec outside a workload policy.
fn policy_flag(ev: &Event, enf: &Enforcement) -> Flag {
    let name = if enf.policy.is_empty() {
        format!("#{}", enf.policy_id)
    } else {
        enf.policy.clone()
    };
    let severity = if enf.action == "audited" {
        Severity::Medium
    } else {
        Severity::High
    };
    let exe = ev
        .exec
        .as_ref()
        .map(|x| x.filename.clone())
        .unwrap_or_else(|| ev.process.exe.clone());
    // Messages read `title: details`, as the rules engine writes them.
    let title = format!("Executable outside workload policy {name}");
    Flag {
        rule_id: "CW-POLICY-EXEC".to_string(),
        message: format!("{title}: {exe} {} by {}", enf.action, enf.mechanism),
        title,
        severity,
        techniques: Vec::new(),
        tactic: "execution".to_string(),
        time: ev.time,
        kind: ev.kind,
        host: host_label(&ev.host),
        process_id: ev.process.id.clone(),
        pid: ev.process.pid,
        exe: ev.process.exe.clone(),
        object: exe,
        suppressed_by: None,
    }
}

/// The flag of a connection, listening port or user outside a workload policy.
fn deviation_flag(ev: &Event, policy: &str, d: &causeway_policy::Deviation) -> Flag {
    let title = format!("Activity outside workload policy {policy}");
    Flag {
        rule_id: "CW-POLICY-DEVIATION".to_string(),
        message: format!("{title}: {}", d.message),
        title,
        severity: Severity::Medium,
        techniques: Vec::new(),
        tactic: "execution".to_string(),
        time: ev.time,
        kind: ev.kind,
        host: host_label(&ev.host),
        process_id: d.process_id.clone(),
        pid: d.pid,
        exe: d.exe.clone(),
        object: d.key.clone(),
        suppressed_by: None,
    }
}
