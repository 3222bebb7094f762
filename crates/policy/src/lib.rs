//! Causeway's workload policies as code: learn what a workload does from stored events, write
//! it as a readable YAML policy, validate policy files (every error as `file:line:col`), diff
//! a policy against stored events (the deviations; also the dry run), merge reviewed
//! deviations back, and turn a past incident into a detection rule.
//!
//! Key design choice: learning and diffing are *the same walk*. Both replay events in time
//! order through one process-image tracker ([`track`]) that maps every process of the
//! workload onto a node of the policy's process tree (an exec creates a node under the
//! image that started it; a fork without exec stays on its parent's node). `learn` grows
//! an empty policy from what it sees; `diff` checks against a given policy and, for each
//! thing it does not allow, records the deviation *and* grows a shadow copy, so that a
//! deviating process's children and flows are reported against the node `merge` would add.
//! That is why `merge(policy, diff(policy, events))` then `diff` again yields nothing.
//!
//! The schema (see `docs/policy.md`):
//!
//! ```yaml
//! apiVersion: causeway/v1
//! kind: Policy
//! metadata: {name: web, description: "...", labels: {team: x}}
//! spec:
//!   selector: {exe: /usr/bin/python3}     # or {container: ID} or {service: UNIT}
//!   mode: audit                            # audit | enforce
//!   processPolicy:                         # a tree; ids are unique in the file
//!     - id: python3
//!       name: python3
//!       exe: [/usr/bin/python3]            # paths or globs (`*` within one component)
//!       euser: [root, "1000"]              # names or uids
//!       listen: [{protocol: tcp, port: 8080}]
//!       children: [...]
//!   networkPolicy:
//!     ingress: [{from: [{ipBlock: {cidr: 127.0.0.1/32}}], ports: [{protocol: tcp, port: 8080}], processes: [python3]}]
//!     egress:  [{to: [{dnsSelector: [example.com]}], ports: [...], processes: [...]}]
//!   response:
//!     default: [{makeRedFlag: {severity: high}}]
//!     actions: [{agentKillProcess: {processSelector: {exe: ["/tmp/*"]}}}]
//! ```

pub mod diff;
pub mod genrule;
pub mod learn;
pub mod load;
pub mod net;
pub mod timearg;
pub mod track;
pub mod write;

pub use causeway_rules::{FileError, LoadError};
pub use diff::{diff, merge, Change, Deviation, DeviationKind, Walker};
pub use genrule::{rule_from_incident, GenRuleError};
pub use learn::{learn, Selection};
pub use load::{load, load_str, validate};
pub use net::Cidr;
pub use timearg::{parse_time, TimeArgError};

use serde::Serialize;
use std::collections::BTreeMap;

/// Which processes a policy governs: the roots of the workload and all their descendants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Selector {
    /// Roots run this executable (path or glob).
    Exe(String),
    /// Roots are the outermost processes of this container (runtime id or id prefix).
    Container(String),
    /// Roots are the outermost processes of this systemd unit (`nginx` = `nginx.service`).
    Service(String),
}

/// What the policy does with a deviation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Audit,
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Audit => "audit",
            Mode::Enforce => "enforce",
        }
    }
}

/// A protocol and port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PortSpec {
    /// `tcp` or `udp`.
    pub protocol: String,
    pub port: u16,
}

/// One node of the process tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessNode {
    /// Unique in the policy; network rules refer to it.
    pub id: String,
    /// For people; not matched.
    pub name: String,
    /// Paths or globs; a process matches the node when its image matches one of them.
    pub exe: Vec<String>,
    /// Effective users allowed at exec (names or decimal uids); empty = any.
    pub euser: Vec<String>,
    /// Ports the process may listen on.
    pub listen: Vec<PortSpec>,
    pub children: Vec<ProcessNode>,
}

/// A network peer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Peer {
    IpBlock(Cidr),
    /// DNS names. Kept for when the agent reports resolutions; today they match no address.
    DnsSelector(Vec<String>),
}

/// One ingress or egress rule: any of the peers, on any of the ports, by any of the processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetRule {
    /// `from` (ingress) or `to` (egress). Empty = any peer.
    pub peers: Vec<Peer>,
    /// Local port for ingress, remote port for egress. Empty = any port.
    pub ports: Vec<PortSpec>,
    /// Process node ids. Empty = any process of the workload.
    pub processes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkPolicy {
    pub ingress: Vec<NetRule>,
    pub egress: Vec<NetRule>,
}

/// A response action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Raise a flag of this severity (`info`..`critical`).
    MakeRedFlag { severity: String },
    /// Kill the deviating process; with globs, only when its image matches one of them.
    AgentKillProcess { exe: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Response {
    pub default: Vec<Action>,
    pub actions: Vec<Action>,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            default: vec![Action::MakeRedFlag {
                severity: "high".into(),
            }],
            actions: Vec::new(),
        }
    }
}

/// A workload policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub name: String,
    pub description: String,
    pub labels: BTreeMap<String, String>,
    pub selector: Selector,
    pub mode: Mode,
    pub process_policy: Vec<ProcessNode>,
    pub network_policy: NetworkPolicy,
    pub response: Response,
}

impl Policy {
    /// An empty audit-mode policy.
    pub fn new(name: impl Into<String>, selector: Selector) -> Self {
        Policy {
            name: name.into(),
            description: String::new(),
            labels: BTreeMap::new(),
            selector,
            mode: Mode::Audit,
            process_policy: Vec::new(),
            network_policy: NetworkPolicy::default(),
            response: Response::default(),
        }
    }

    pub fn selector(&self) -> &Selector {
        &self.selector
    }

    /// Every path or glob of every process node, sorted, deduplicated: what the enforcer
    /// compiles into its allow map.
    pub fn allowed_executables(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        for n in self.nodes() {
            out.extend(n.exe.iter().cloned());
        }
        out.into_iter().collect()
    }

    /// Every node, depth first.
    pub fn nodes(&self) -> Vec<&ProcessNode> {
        fn walk<'a>(ns: &'a [ProcessNode], out: &mut Vec<&'a ProcessNode>) {
            for n in ns {
                out.push(n);
                walk(&n.children, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.process_policy, &mut out);
        out
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&ProcessNode> {
        self.nodes().into_iter().find(|n| n.id == id)
    }

    /// The node with this id, mutable.
    pub fn node_mut(&mut self, id: &str) -> Option<&mut ProcessNode> {
        fn walk<'a>(ns: &'a mut [ProcessNode], id: &str) -> Option<&'a mut ProcessNode> {
            for n in ns {
                if n.id == id {
                    return Some(n);
                }
                if let Some(f) = walk(&mut n.children, id) {
                    return Some(f);
                }
            }
            None
        }
        walk(&mut self.process_policy, id)
    }

    /// Render as YAML (see [`write`]).
    pub fn to_yaml(&self) -> String {
        write::to_yaml(self)
    }
}
