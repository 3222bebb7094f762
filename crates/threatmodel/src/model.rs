//! The model's elements. Everything is sorted (BTreeMap keyed by stable id) so that output is
//! deterministic; every element carries [`Provenance`].

use causeway_model::timefmt::Timestamp;
use causeway_model::Kind;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How sure the model is of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// Seen directly in events.
    Observed,
    /// Derived by a heuristic (a datastore from its port, a protocol from its port).
    Inferred,
    /// Stated by a human in the annotations overlay.
    Annotated,
}

/// One event that supports an element: enough to find it in the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Evidence {
    pub time: Timestamp,
    pub kind: Kind,
    pub process: String,
}

/// Where an element comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Host names, at most [`Provenance::MAX_HOSTS`] (`hosts_truncated` says when more).
    pub hosts: BTreeSet<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub hosts_truncated: bool,
    /// The first [`Provenance::MAX_EVIDENCE`] supporting events.
    pub evidence: Vec<Evidence>,
    /// Supporting events in all (the evidence list is bounded; this is not).
    pub events: u64,
    pub confidence: Confidence,
}

impl Provenance {
    pub const MAX_EVIDENCE: usize = 8;
    pub const MAX_HOSTS: usize = 16;

    pub fn new(confidence: Confidence, t: Timestamp) -> Self {
        Provenance {
            first_seen: t,
            last_seen: t,
            hosts: BTreeSet::new(),
            hosts_truncated: false,
            evidence: Vec::new(),
            events: 0,
            confidence,
        }
    }

    /// Count one supporting event.
    pub fn saw(&mut self, t: Timestamp, kind: Kind, host: &str, process: &str) {
        self.first_seen = self.first_seen.min(t);
        self.last_seen = self.last_seen.max(t);
        self.events += 1;
        if !self.hosts.contains(host) {
            if self.hosts.len() < Self::MAX_HOSTS {
                self.hosts.insert(host.to_string());
            } else {
                self.hosts_truncated = true;
            }
        }
        if self.evidence.len() < Self::MAX_EVIDENCE {
            self.evidence.push(Evidence {
                time: t,
                kind,
                process: process.to_string(),
            });
        }
    }
}

/// What a workload's identity is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    /// A container (by runtime id: the event carries no image name yet).
    Container,
    /// A systemd unit on a host.
    Service,
    /// A host executable tree: the root executable below init or a login session.
    HostExecutable,
}

/// A workload as a technical asset, its process tree collapsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub id: String,
    pub name: String,
    pub kind: WorkloadKind,
    /// The identity key the id hashes (e.g. `container\0<id>`).
    pub identity: String,
    /// Container id and runtime for container workloads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Executables run in the workload (the collapsed process tree), with exec counts; at
    /// most [`Workload::MAX_EXES`] (`exes_truncated`).
    pub executables: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exes_truncated: bool,
    /// Distinct processes attributed to it.
    pub processes: u64,
    /// Inferred: a datastore (by listening port or executable name).
    pub datastore: bool,
    pub provenance: Provenance,
}

impl Workload {
    pub const MAX_EXES: usize = 64;
}

/// Who reached an entry point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reached {
    /// Accepts from loopback whose client the index did not know.
    pub local: u64,
    /// Client workloads (by id) with accept counts.
    pub workloads: BTreeMap<String, u64>,
    /// Accepts from addresses outside every monitored workload.
    pub external: u64,
    /// A bounded sample of those outside addresses.
    pub external_addresses: BTreeSet<String>,
}

/// A listening socket of a workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntryPoint {
    pub id: String,
    pub workload: String,
    /// `tcp` or `udp`.
    pub transport: String,
    pub port: u16,
    /// Addresses bound (e.g. `0.0.0.0`, `127.0.0.1`).
    pub bind: BTreeSet<String>,
    /// Bound to a wildcard or non-loopback address: reachable from the network.
    pub exposed: bool,
    pub reached: Reached,
    pub provenance: Provenance,
}

/// The far end of a flow.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", content = "id", rename_all = "kebab-case")]
pub enum Peer {
    /// A monitored workload.
    Workload(String),
    /// An address outside every monitored workload (see [`ExternalEntity`]).
    External(String),
}

impl Peer {
    pub fn id(&self) -> &str {
        match self {
            Peer::Workload(s) | Peer::External(s) => s,
        }
    }
}

/// A data flow aggregated per (client, server, transport, server port).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flow {
    pub id: String,
    pub source: Peer,
    pub target: Peer,
    pub transport: String,
    pub port: u16,
    /// Application protocol inferred from the port (`confidence: inferred`), else `unknown`.
    pub protocol: String,
    /// Connections counted.
    pub connections: u64,
    /// Byte counts are not recorded by the sensor: always `None` today.
    pub bytes: Option<u64>,
    /// A bounded sample of outside addresses (for flows to or from an external entity).
    pub addresses: BTreeSet<String>,
    pub provenance: Provenance,
}

/// An outside party: the internet, or private-network peers no monitored workload answers for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExternalEntity {
    pub id: String,
    pub name: String,
    /// Outside RFC 1918 / loopback / link-local / ULA.
    pub internet: bool,
    pub provenance: Provenance,
}

/// A trust boundary; they form a tree by `parent`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Boundary {
    pub id: String,
    pub name: String,
    pub kind: BoundaryKind,
    pub parent: Option<String>,
    /// Workloads or external entities directly inside (each element is in one boundary).
    pub members: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundaryKind {
    Internet,
    Host,
    Container,
}

/// Sensitive files read, grouped by what they hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataAsset {
    /// The group, e.g. `os-credentials`, `ssh-keys`, `cloud-credentials`.
    pub id: String,
    pub description: String,
    /// Paths read (escaped form), at most [`DataAsset::MAX_PATHS`].
    pub paths: BTreeSet<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paths_truncated: bool,
    /// Reading workloads (by id) with read counts.
    pub readers: BTreeMap<String, u64>,
    pub provenance: Provenance,
}

impl DataAsset {
    pub const MAX_PATHS: usize = 32;
}

/// The model.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ThreatModel {
    pub workloads: BTreeMap<String, Workload>,
    pub entry_points: BTreeMap<String, EntryPoint>,
    pub flows: BTreeMap<String, Flow>,
    pub externals: BTreeMap<String, ExternalEntity>,
    pub boundaries: BTreeMap<String, Boundary>,
    pub data_assets: BTreeMap<String, DataAsset>,
    pub stats: BuildStats,
}

/// What the builder saw and what it could not use (counted per cause, never silent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuildStats {
    pub events: u64,
    /// Connects paired with a monitored accept (counted from the accept side).
    pub connects_paired: u64,
    /// Network events without a `network` object, or file events without `file`.
    pub malformed: u64,
    /// Events of processes with no id (cannot be attributed).
    pub unattributed: u64,
    /// Connects flushed early because the pending bound was reached.
    pub pending_overflow: u64,
}

impl ThreatModel {
    /// The display name of a workload or external entity id.
    pub fn name_of<'a>(&'a self, id: &'a str) -> &'a str {
        if let Some(w) = self.workloads.get(id) {
            return &w.name;
        }
        if let Some(x) = self.externals.get(id) {
            return &x.name;
        }
        id
    }

    /// The boundary directly containing an element (a scan: exports use [`Self::membership`]).
    pub fn boundary_of(&self, id: &str) -> Option<&Boundary> {
        self.boundaries.values().find(|b| b.members.contains(id))
    }

    /// Element id → the id of the boundary directly containing it.
    pub fn membership(&self) -> BTreeMap<&str, &str> {
        let mut out = BTreeMap::new();
        for b in self.boundaries.values() {
            for m in &b.members {
                out.insert(m.as_str(), b.id.as_str());
            }
        }
        out
    }

    /// Entry points per workload id.
    pub fn entry_points_by_workload(&self) -> BTreeMap<&str, Vec<&EntryPoint>> {
        let mut out: BTreeMap<&str, Vec<&EntryPoint>> = BTreeMap::new();
        for e in self.entry_points.values() {
            out.entry(e.workload.as_str()).or_default().push(e);
        }
        out
    }
}
