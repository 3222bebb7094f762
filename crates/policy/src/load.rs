//! Loading and validation: strict (unknown fields are errors), complete (every error in the
//! file is reported, each as `file:line:col`) and all-or-nothing (a file with any error
//! yields no policy).

use crate::net::Cidr;
use crate::{
    Action, Mode, NetRule, NetworkPolicy, Peer, Policy, PortSpec, ProcessNode, Response, Selector,
};
use causeway_rules::diag::{Diagnostic, Pos};
use causeway_rules::yaml::{self, Node, Value};
use causeway_rules::{FileError, LoadError};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Load and validate a policy file.
pub fn load(path: &Path) -> Result<Policy, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        errors: vec![FileError {
            file: path.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("cannot read: {e}"),
        }],
    })?;
    load_str(path, &text)
}

/// Same as [`load`]; the name says what the caller means.
pub fn validate(path: &Path) -> Result<Policy, LoadError> {
    load(path)
}

/// Load a policy from text; `name` is the file name errors carry.
pub fn load_str(name: &Path, text: &str) -> Result<Policy, LoadError> {
    let wrap = |ds: Vec<Diagnostic>| LoadError {
        errors: ds.into_iter().map(|d| FileError::new(name, d)).collect(),
    };
    let root = yaml::parse(text).map_err(|d| wrap(vec![d]))?;
    let mut cx = Cx::default();
    let p = cx.policy(&root);
    let mut errs = cx.errs;
    errs.sort_by_key(|d| d.pos);
    match p {
        Some(p) if errs.is_empty() => Ok(p),
        _ if errs.is_empty() => Err(wrap(vec![Diagnostic {
            pos: root.pos,
            message: "invalid policy".into(),
        }])),
        _ => Err(wrap(errs)),
    }
}

#[derive(Default)]
struct Cx {
    errs: Vec<Diagnostic>,
    ids: HashMap<String, Pos>,
}

const SEVERITIES: [&str; 5] = ["info", "low", "medium", "high", "critical"];

impl Cx {
    fn err(&mut self, pos: Pos, msg: impl Into<String>) {
        self.errs.push(Diagnostic {
            pos,
            message: msg.into(),
        });
    }

    /// The fields of a mapping, checked against the allowed names (unknown and duplicate
    /// keys are errors) and the required ones.
    fn fields<'a>(
        &mut self,
        n: &'a Node,
        what: &str,
        allowed: &[&'static str],
        required: &[&str],
    ) -> Option<BTreeMap<&'static str, &'a Node>> {
        let Value::Map(m) = &n.value else {
            self.err(
                n.pos,
                format!("{what} must be a mapping, not {}", n.type_name()),
            );
            return None;
        };
        let mut out: BTreeMap<&'static str, &'a Node> = BTreeMap::new();
        for (k, v) in m {
            let Some(ks) = k.as_str() else {
                self.err(k.pos, format!("keys of {what} must be strings"));
                continue;
            };
            // Map the key onto our static spelling; unknown keys are errors.
            match allowed.iter().find(|a| **a == ks) {
                Some(a) => {
                    let a: &'static str = a;
                    if out.insert(a, v).is_some() {
                        self.err(k.pos, format!("duplicate field `{ks}` in {what}"));
                    }
                }
                None => self.err(
                    k.pos,
                    format!(
                        "unknown field `{}` in {what} (expected one of: {})",
                        ks.escape_debug(),
                        allowed.join(", ")
                    ),
                ),
            }
        }
        for r in required {
            if !out.contains_key(r) {
                self.err(n.pos, format!("missing `{r}` in {what}"));
            }
        }
        Some(out)
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.value {
            Value::Str(s, _) => Some(s.clone()),
            _ => {
                self.err(
                    n.pos,
                    format!("{what} must be a string, not {}", n.type_name()),
                );
                None
            }
        }
    }

    fn seq<'a>(&mut self, n: &'a Node, what: &str) -> &'a [Node] {
        match &n.value {
            Value::Seq(s) => s,
            Value::Null => &[],
            _ => {
                self.err(
                    n.pos,
                    format!("{what} must be a list, not {}", n.type_name()),
                );
                &[]
            }
        }
    }

    fn strings(&mut self, n: &Node, what: &str) -> Vec<String> {
        let items = self.seq(n, what);
        items.iter().filter_map(|i| self.string(i, what)).collect()
    }

    /// An executable path or glob. Relative or odd names are accepted because the agent
    /// reports what the kernel gave it (a learned policy must reload); they match only an
    /// image reported with exactly that name.
    fn exe(&mut self, n: &Node, what: &str) -> Option<String> {
        let s = self.string(n, what)?;
        if s.is_empty() {
            self.err(n.pos, format!("{what} must not be empty"));
            return None;
        }
        Some(s)
    }

    fn policy(&mut self, root: &Node) -> Option<Policy> {
        let f = self.fields(
            root,
            "the policy",
            &["apiVersion", "kind", "metadata", "spec"],
            &["apiVersion", "kind", "metadata", "spec"],
        )?;
        if let Some(v) = f.get("apiVersion") {
            if let Some(s) = self.string(v, "apiVersion") {
                if s != "causeway/v1" {
                    self.err(
                        v.pos,
                        format!(
                            "unsupported apiVersion `{}` (expected causeway/v1)",
                            s.escape_debug()
                        ),
                    );
                }
            }
        }
        if let Some(v) = f.get("kind") {
            if let Some(s) = self.string(v, "kind") {
                if s != "Policy" {
                    self.err(
                        v.pos,
                        format!("unsupported kind `{}` (expected Policy)", s.escape_debug()),
                    );
                }
            }
        }
        let (name, description, labels) = f.get("metadata").and_then(|m| self.metadata(m))?;
        let spec = f.get("spec")?;
        let s = self.fields(
            spec,
            "spec",
            &[
                "selector",
                "mode",
                "processPolicy",
                "networkPolicy",
                "response",
            ],
            &["selector", "mode"],
        )?;
        let selector = s.get("selector").and_then(|n| self.selector(n));
        let mode = s.get("mode").and_then(|n| {
            let m = self.string(n, "mode")?;
            match m.as_str() {
                "audit" => Some(Mode::Audit),
                "enforce" => Some(Mode::Enforce),
                _ => {
                    self.err(
                        n.pos,
                        format!(
                            "mode must be `audit` or `enforce`, not `{}`",
                            m.escape_debug()
                        ),
                    );
                    None
                }
            }
        });
        let procs = match s.get("processPolicy") {
            Some(n) => self.nodes(n),
            None => Vec::new(),
        };
        let network = match s.get("networkPolicy") {
            Some(n) => self.network(n),
            None => NetworkPolicy::default(),
        };
        let response = match s.get("response") {
            Some(n) => self.response(n),
            None => Response::default(),
        };
        Some(Policy {
            name,
            description,
            labels,
            selector: selector?,
            mode: mode?,
            process_policy: procs,
            network_policy: network,
            response,
        })
    }

    fn metadata(&mut self, n: &Node) -> Option<(String, String, BTreeMap<String, String>)> {
        let f = self.fields(n, "metadata", &["name", "description", "labels"], &["name"])?;
        let name = f.get("name").and_then(|v| self.string(v, "name"));
        if let (Some(nm), Some(v)) = (&name, f.get("name")) {
            if nm.trim().is_empty() {
                self.err(v.pos, "metadata.name must not be empty");
            }
        }
        let description = f
            .get("description")
            .and_then(|v| self.string(v, "description"))
            .unwrap_or_default();
        let mut labels = BTreeMap::new();
        if let Some(l) = f.get("labels") {
            match &l.value {
                Value::Map(m) => {
                    for (k, v) in m {
                        if let (Some(k), Some(v)) = (
                            self.string(k, "a label name"),
                            self.string(v, "a label value"),
                        ) {
                            labels.insert(k, v);
                        }
                    }
                }
                _ => self.err(
                    l.pos,
                    format!("labels must be a mapping, not {}", l.type_name()),
                ),
            }
        }
        Some((name?, description, labels))
    }

    fn selector(&mut self, n: &Node) -> Option<Selector> {
        let f = self.fields(n, "selector", &["exe", "container", "service"], &[])?;
        if f.len() != 1 {
            self.err(
                n.pos,
                "selector needs exactly one of `exe`, `container`, `service`",
            );
            return None;
        }
        let (k, v) = f.into_iter().next()?;
        match k {
            "exe" => self.exe(v, "selector exe").map(Selector::Exe),
            "container" => self
                .nonempty(v, "selector container")
                .map(Selector::Container),
            _ => self.nonempty(v, "selector service").map(Selector::Service),
        }
    }

    fn nonempty(&mut self, n: &Node, what: &str) -> Option<String> {
        let s = self.string(n, what)?;
        if s.is_empty() {
            self.err(n.pos, format!("{what} must not be empty"));
            return None;
        }
        Some(s)
    }

    fn nodes(&mut self, n: &Node) -> Vec<ProcessNode> {
        let items = self.seq(n, "processPolicy");
        items.iter().filter_map(|i| self.node(i)).collect()
    }

    fn node(&mut self, n: &Node) -> Option<ProcessNode> {
        let f = self.fields(
            n,
            "a process",
            &["id", "name", "exe", "euser", "listen", "children"],
            &["id", "exe"],
        )?;
        let id = f.get("id").and_then(|v| {
            let s = self.nonempty(v, "process id")?;
            if let Some(prev) = self.ids.get(&s) {
                let msg = format!(
                    "duplicate process id `{}` (first at line {})",
                    s.escape_debug(),
                    prev.line
                );
                self.err(v.pos, msg);
            } else {
                self.ids.insert(s.clone(), v.pos);
            }
            Some(s)
        });
        let name = f
            .get("name")
            .and_then(|v| self.string(v, "name"))
            .unwrap_or_default();
        let exe: Vec<String> = match f.get("exe") {
            Some(v) => {
                let items = self.seq(v, "exe");
                if items.is_empty() {
                    self.err(v.pos, "exe must list at least one path or glob");
                }
                items.iter().filter_map(|i| self.exe(i, "exe")).collect()
            }
            None => Vec::new(),
        };
        let mut euser = Vec::new();
        if let Some(v) = f.get("euser") {
            for u in self.seq(v, "euser") {
                match &u.value {
                    Value::Str(s, _) if !s.is_empty() => euser.push(s.clone()),
                    Value::Int(i) if u32::try_from(*i).is_ok() => euser.push(i.to_string()),
                    _ => self.err(u.pos, "euser entries are user names or uids"),
                }
            }
        }
        let listen = match f.get("listen") {
            Some(v) => self.ports(v),
            None => Vec::new(),
        };
        let children = match f.get("children") {
            Some(v) => {
                let items = self.seq(v, "children");
                items.iter().filter_map(|i| self.node(i)).collect()
            }
            None => Vec::new(),
        };
        Some(ProcessNode {
            name: if name.is_empty() { id.clone()? } else { name },
            id: id?,
            exe,
            euser,
            listen,
            children,
        })
    }

    fn ports(&mut self, n: &Node) -> Vec<PortSpec> {
        let items = self.seq(n, "ports");
        let mut out = Vec::new();
        for i in items {
            let Some(f) = self.fields(i, "a port", &["protocol", "port"], &["port"]) else {
                continue;
            };
            let protocol = match f.get("protocol") {
                Some(v) => match self.string(v, "protocol") {
                    Some(p) if p == "tcp" || p == "udp" => p,
                    Some(p) => {
                        self.err(
                            v.pos,
                            format!("protocol must be tcp or udp, not `{}`", p.escape_debug()),
                        );
                        continue;
                    }
                    None => continue,
                },
                None => "tcp".into(),
            };
            let Some(v) = f.get("port") else { continue };
            match &v.value {
                Value::Int(p) if (1..=65535).contains(p) => out.push(PortSpec {
                    protocol,
                    port: u16::try_from(*p).unwrap_or(0),
                }),
                _ => self.err(v.pos, "port must be a number from 1 to 65535"),
            }
        }
        out
    }

    fn network(&mut self, n: &Node) -> NetworkPolicy {
        let Some(f) = self.fields(n, "networkPolicy", &["ingress", "egress"], &[]) else {
            return NetworkPolicy::default();
        };
        let mut out = NetworkPolicy::default();
        for (key, peer_key) in [("ingress", "from"), ("egress", "to")] {
            let Some(v) = f.get(key) else { continue };
            let mut rules = Vec::new();
            for r in self.seq(v, key) {
                if let Some(r) = self.rule(r, key, peer_key) {
                    rules.push(r);
                }
            }
            if key == "ingress" {
                out.ingress = rules;
            } else {
                out.egress = rules;
            }
        }
        out
    }

    fn rule(&mut self, n: &Node, what: &str, peer_key: &'static str) -> Option<NetRule> {
        let what = format!("an {what} rule");
        let f = self.fields(n, &what, &[peer_key, "ports", "processes"], &[])?;
        let mut peers = Vec::new();
        if let Some(v) = f.get(peer_key) {
            for p in self.seq(v, peer_key) {
                let Some(pf) = self.fields(p, "a peer", &["ipBlock", "dnsSelector"], &[]) else {
                    continue;
                };
                if pf.len() != 1 {
                    self.err(
                        p.pos,
                        "a peer needs exactly one of `ipBlock`, `dnsSelector`",
                    );
                    continue;
                }
                if let Some(b) = pf.get("ipBlock") {
                    let Some(bf) = self.fields(b, "ipBlock", &["cidr"], &["cidr"]) else {
                        continue;
                    };
                    if let Some(c) = bf.get("cidr") {
                        if let Some(s) = self.string(c, "cidr") {
                            match Cidr::parse(&s) {
                                Ok(x) => peers.push(Peer::IpBlock(x)),
                                Err(e) => self.err(c.pos, e),
                            }
                        }
                    }
                }
                if let Some(d) = pf.get("dnsSelector") {
                    let names = self.strings(d, "dnsSelector");
                    peers.push(Peer::DnsSelector(names));
                }
            }
        }
        let ports = match f.get("ports") {
            Some(v) => self.ports(v),
            None => Vec::new(),
        };
        let processes = match f.get("processes") {
            Some(v) => {
                // Checked after the whole tree is read: ids may be defined below.
                self.seq(v, "processes")
                    .iter()
                    .filter_map(|i| Some((self.string(i, "a process id")?, i.pos)))
                    .collect::<Vec<_>>()
            }
            None => Vec::new(),
        };
        let mut ids = Vec::new();
        for (id, pos) in processes {
            if !self.ids.contains_key(&id) {
                self.err(
                    pos,
                    format!(
                        "unknown process id `{}` (not in processPolicy)",
                        id.escape_debug()
                    ),
                );
            }
            ids.push(id);
        }
        Some(NetRule {
            peers,
            ports,
            processes: ids,
        })
    }

    fn response(&mut self, n: &Node) -> Response {
        let Some(f) = self.fields(n, "response", &["default", "actions"], &[]) else {
            return Response::default();
        };
        let mut r = Response {
            default: Vec::new(),
            actions: Vec::new(),
        };
        if let Some(v) = f.get("default") {
            r.default = self.actions(v, "default");
        }
        if let Some(v) = f.get("actions") {
            r.actions = self.actions(v, "actions");
        }
        r
    }

    fn actions(&mut self, n: &Node, what: &str) -> Vec<Action> {
        let mut out = Vec::new();
        for a in self.seq(n, what) {
            let Some(f) = self.fields(a, "an action", &["makeRedFlag", "agentKillProcess"], &[])
            else {
                continue;
            };
            if f.len() != 1 {
                self.err(
                    a.pos,
                    "an action needs exactly one of `makeRedFlag`, `agentKillProcess`",
                );
                continue;
            }
            if let Some(v) = f.get("makeRedFlag") {
                let Some(mf) = self.fields(v, "makeRedFlag", &["severity"], &["severity"]) else {
                    continue;
                };
                if let Some(s) = mf.get("severity") {
                    match self.string(s, "severity") {
                        Some(sev) if SEVERITIES.contains(&sev.as_str()) => {
                            out.push(Action::MakeRedFlag { severity: sev })
                        }
                        Some(sev) => self.err(
                            s.pos,
                            format!(
                                "severity must be one of {}, not `{}`",
                                SEVERITIES.join(", "),
                                sev.escape_debug()
                            ),
                        ),
                        None => {}
                    }
                }
            }
            if let Some(v) = f.get("agentKillProcess") {
                let mut exe = Vec::new();
                if !matches!(v.value, Value::Null) {
                    if let Some(kf) = self.fields(v, "agentKillProcess", &["processSelector"], &[])
                    {
                        if let Some(ps) = kf.get("processSelector") {
                            if let Some(pf) = self.fields(ps, "processSelector", &["exe"], &["exe"])
                            {
                                if let Some(e) = pf.get("exe") {
                                    let items = self.seq(e, "exe");
                                    exe = items.iter().filter_map(|i| self.exe(i, "exe")).collect();
                                }
                            }
                        }
                    }
                }
                out.push(Action::AgentKillProcess { exe });
            }
        }
        out
    }
}
