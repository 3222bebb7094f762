//! Threagile YAML (facts file §1, §9): `technology` singular, quoted date, ids matching
//! `^[a-zA-Z0-9\-]+$`, only documented enum values, one trust boundary per asset, every key
//! of the schema's `required` list, every tag declared in `tags_available`, and one data
//! asset per link so `unnecessary-communication-link` stays quiet. Every string is written
//! double-quoted with YAML escapes.

use super::Annotated;
use crate::classify;
use crate::model::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// A YAML double-quoted scalar. Escapes `"`, `\`, and everything outside YAML's printable
/// set (C0/C1 controls, DEL, U+FFFE/U+FFFF), so hostile workload strings cannot break out.
pub fn q(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            '\r' => o.push_str("\\r"),
            c if (c as u32) < 0x20 || (0x7f..=0x9f).contains(&(c as u32)) => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            '\u{fffe}' | '\u{ffff}' | '\u{feff}' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let v: Vec<String> = items.into_iter().map(q).collect();
    format!("[{}]", v.join(", "))
}

/// Tags we use, all declared in `tags_available`.
const TAGS: &[&str] = &[
    "cw-container",
    "cw-datastore",
    "cw-host-executable",
    "cw-inferred",
    "cw-observed",
    "cw-service",
];

fn traffic_asset(port: u16, transport: &str) -> String {
    format!("traffic-{transport}-{port}")
}

fn technology(w: &Workload, listens_http: bool) -> &'static str {
    if w.datastore {
        "database"
    } else if listens_http {
        "web-server"
    } else {
        "unknown-technology"
    }
}

pub fn render(a: &Annotated<'_>) -> String {
    let m = a.model;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Derived from runtime by causeway; annotations from the overlay."
    );
    let _ = writeln!(o, "threagile_version: \"1.0.0\"");
    let _ = writeln!(o, "title: {}", q(&a.meta.title));
    let _ = writeln!(o, "author:\n  name: \"causeway\"");
    let _ = writeln!(o, "date: {}", q(&a.meta.date));
    let _ = writeln!(o, "business_criticality: important");
    let _ = writeln!(o, "tags_available: {}", list(TAGS.iter().copied()));

    // Data assets: credential groups, plus one per (transport, server port) carried by flows.
    let mut traffic: BTreeSet<(String, u16)> = BTreeSet::new();
    for f in m.flows.values() {
        traffic.insert((f.transport.clone(), f.port));
    }
    let _ = writeln!(o, "data_assets:");
    if m.data_assets.is_empty() && traffic.is_empty() {
        let _ = writeln!(o, "  {{}}");
    }
    for d in m.data_assets.values() {
        let n = a.note(&d.id);
        let _ = writeln!(o, "  {}:", q(&d.id));
        let _ = writeln!(o, "    id: {}", q(&d.id));
        let desc = n.description.clone().unwrap_or_else(|| {
            format!(
                "{}; read from {} path(s), first {}, last {}",
                d.description,
                d.paths.len(),
                d.provenance.first_seen.to_rfc3339(),
                d.provenance.last_seen.to_rfc3339()
            )
        });
        let _ = writeln!(o, "    description: {}", q(&desc));
        let _ = writeln!(o, "    usage: devops");
        let _ = writeln!(o, "    tags: [\"cw-observed\"]");
        let _ = writeln!(o, "    origin: \"runtime\"");
        let _ = writeln!(o, "    owner: {}", q(n.owner.as_deref().unwrap_or("")));
        let _ = writeln!(o, "    quantity: very-few");
        let _ = writeln!(
            o,
            "    confidentiality: {}",
            n.confidentiality
                .as_deref()
                .unwrap_or("strictly-confidential")
        );
        let _ = writeln!(
            o,
            "    integrity: {}",
            n.integrity.as_deref().unwrap_or("critical")
        );
        let _ = writeln!(
            o,
            "    availability: {}",
            n.availability.as_deref().unwrap_or("operational")
        );
        let _ = writeln!(
            o,
            "    justification_cia_rating: {}",
            q(n.justification
                .as_deref()
                .unwrap_or("credentials: rated by causeway from the file class"))
        );
    }
    for (t, p) in &traffic {
        let id = traffic_asset(*p, t);
        let _ = writeln!(o, "  {}:", q(&id));
        let _ = writeln!(o, "    id: {}", q(&id));
        let _ = writeln!(
            o,
            "    description: {}",
            q(&format!("unclassified payload {t}/{p} (not inspected)"))
        );
        let _ = writeln!(o, "    usage: business\n    tags: [\"cw-inferred\"]\n    origin: \"runtime\"\n    owner: \"\"\n    quantity: many");
        let _ = writeln!(
            o,
            "    confidentiality: internal\n    integrity: important\n    availability: important"
        );
        let _ = writeln!(
            o,
            "    justification_cia_rating: \"default: payload not classified\""
        );
    }

    // Technical assets: workloads and external entities; links on their source.
    let mut links: BTreeMap<&str, Vec<&Flow>> = BTreeMap::new();
    for f in m.flows.values() {
        links.entry(f.source.id()).or_default().push(f);
    }
    let mut http: BTreeSet<&str> = BTreeSet::new();
    for ep in m.entry_points.values() {
        if classify::protocol_for_port(ep.port).starts_with("http") {
            http.insert(&ep.workload);
        }
    }
    let _ = writeln!(o, "technical_assets:");
    if m.workloads.is_empty() && m.externals.is_empty() {
        let _ = writeln!(o, "  {{}}");
    }
    let empty = Vec::new();
    for x in m.externals.values() {
        let n = a.note(&x.id);
        let _ = writeln!(o, "  {}:", q(&x.id));
        let _ = writeln!(o, "    id: {}", q(&x.id));
        let _ = writeln!(
            o,
            "    description: {}",
            q(n.description.as_deref().unwrap_or(&x.name))
        );
        let _ = writeln!(
            o,
            "    type: external-entity\n    usage: business\n    used_as_client_by_human: false"
        );
        let _ = writeln!(o, "    out_of_scope: true\n    justification_out_of_scope: \"outside the monitored hosts\"");
        let _ = writeln!(
            o,
            "    size: system\n    technology: {}",
            if x.internet {
                "browser"
            } else {
                "unknown-technology"
            }
        );
        let _ = writeln!(o, "    tags: [\"cw-inferred\"]\n    internet: {}\n    machine: virtual\n    encryption: none", x.internet);
        asset_tail(
            &mut o,
            a,
            &x.id,
            "public",
            "operational",
            &[],
            links.get(x.id.as_str()).unwrap_or(&empty),
        );
    }
    for w in m.workloads.values() {
        let n = a.note(&w.id);
        let _ = writeln!(o, "  {}:", q(&w.id));
        let _ = writeln!(o, "    id: {}", q(&w.id));
        let desc = n.description.clone().unwrap_or_else(|| {
            let exes: Vec<&str> = w.executables.keys().map(String::as_str).collect();
            format!(
                "{} ({:?}); executables: {}; {} process(es); first {}, last {}",
                w.name,
                w.kind,
                exes.join(", "),
                w.processes,
                w.provenance.first_seen.to_rfc3339(),
                w.provenance.last_seen.to_rfc3339()
            )
        });
        let _ = writeln!(o, "    description: {}", q(&desc));
        let _ = writeln!(
            o,
            "    type: {}",
            if w.datastore { "datastore" } else { "process" }
        );
        let _ = writeln!(o, "    usage: business\n    used_as_client_by_human: false\n    out_of_scope: false\n    justification_out_of_scope: \"\"");
        let _ = writeln!(
            o,
            "    size: service\n    technology: {}",
            technology(w, http.contains(w.id.as_str()))
        );
        let kind_tag = match w.kind {
            WorkloadKind::Container => "cw-container",
            WorkloadKind::Service => "cw-service",
            WorkloadKind::HostExecutable => "cw-host-executable",
        };
        let mut tags = vec!["cw-observed", kind_tag];
        if w.datastore {
            tags.push("cw-datastore");
        }
        tags.sort_unstable();
        let _ = writeln!(o, "    tags: {}", list(tags));
        let machine = if w.container.is_some() {
            "container"
        } else {
            "virtual"
        };
        let _ = writeln!(
            o,
            "    internet: false\n    machine: {machine}\n    encryption: none"
        );
        let reads: Vec<&str> = m
            .data_assets
            .values()
            .filter(|d| d.readers.contains_key(&w.id))
            .map(|d| d.id.as_str())
            .collect();
        asset_tail(
            &mut o,
            a,
            &w.id,
            "internal",
            "important",
            &reads,
            links.get(w.id.as_str()).unwrap_or(&empty),
        );
    }

    // Trust boundaries: hosts (network-on-prem) with containers (execution-environment)
    // nested; the internet is outside every boundary in Threagile.
    let _ = writeln!(o, "trust_boundaries:");
    let tb: Vec<&Boundary> = m
        .boundaries
        .values()
        .filter(|b| b.kind != BoundaryKind::Internet)
        .collect();
    if tb.is_empty() {
        let _ = writeln!(o, "  {{}}");
    }
    for b in tb {
        let nested: Vec<&str> = m
            .boundaries
            .values()
            .filter(|c| c.parent.as_deref() == Some(&b.id))
            .map(|c| c.id.as_str())
            .collect();
        let _ = writeln!(o, "  {}:", q(&b.id));
        let _ = writeln!(o, "    id: {}\n    description: {}", q(&b.id), q(&b.name));
        let t = if b.kind == BoundaryKind::Host {
            "network-on-prem"
        } else {
            "execution-environment"
        };
        let _ = writeln!(o, "    type: {t}\n    tags: []");
        let _ = writeln!(
            o,
            "    technical_assets_inside: {}",
            list(b.members.iter().map(String::as_str))
        );
        let _ = writeln!(o, "    trust_boundaries_nested: {}", list(nested));
    }

    // Shared runtimes: one per host (the node's kernel), not a trust boundary.
    let mut hosts: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for w in m.workloads.values() {
        for h in &w.provenance.hosts {
            hosts.entry(h).or_default().push(&w.id);
        }
    }
    let _ = writeln!(o, "shared_runtimes:");
    if hosts.is_empty() {
        let _ = writeln!(o, "  {{}}");
    }
    for (h, ws) in hosts {
        let id = crate::ids::stable_id(&format!("kernel {h}"), &format!("runtime\0{h}"));
        let _ = writeln!(o, "  {}:", q(&id));
        let _ = writeln!(
            o,
            "    id: {}\n    description: {}\n    tags: []",
            q(&id),
            q(&format!("kernel of host {h}"))
        );
        let _ = writeln!(o, "    technical_assets_running: {}", list(ws));
    }
    o
}

#[allow(clippy::too_many_arguments)]
fn asset_tail(
    o: &mut String,
    a: &Annotated<'_>,
    id: &str,
    conf: &str,
    crit: &str,
    reads: &[&str],
    links: &[&Flow],
) {
    let n = a.note(id);
    let _ = writeln!(o, "    owner: {}", q(n.owner.as_deref().unwrap_or("")));
    let _ = writeln!(
        o,
        "    confidentiality: {}",
        n.confidentiality.as_deref().unwrap_or(conf)
    );
    let _ = writeln!(
        o,
        "    integrity: {}",
        n.integrity.as_deref().unwrap_or(crit)
    );
    let _ = writeln!(
        o,
        "    availability: {}",
        n.availability.as_deref().unwrap_or(crit)
    );
    let _ = writeln!(
        o,
        "    justification_cia_rating: {}",
        q(n.justification.as_deref().unwrap_or("default: not rated"))
    );
    let _ = writeln!(
        o,
        "    multi_tenant: false\n    redundant: false\n    custom_developed_parts: false"
    );
    let _ = writeln!(
        o,
        "    data_assets_processed: {}",
        list(reads.iter().copied())
    );
    let _ = writeln!(
        o,
        "    data_assets_stored: []\n    data_formats_accepted: []"
    );
    if links.is_empty() {
        let _ = writeln!(o, "    communication_links: {{}}");
        return;
    }
    let _ = writeln!(o, "    communication_links:");
    for f in links {
        let fnote = a.note(&f.id);
        let _ = writeln!(o, "      {}:", q(&f.id));
        let _ = writeln!(o, "        target: {}", q(f.target.id()));
        let desc = fnote.description.clone().unwrap_or_else(|| {
            format!(
                "{}/{} {} connection(s), bytes unknown, first {}, last {}",
                f.transport,
                f.port,
                f.connections,
                f.provenance.first_seen.to_rfc3339(),
                f.provenance.last_seen.to_rfc3339()
            )
        });
        let _ = writeln!(o, "        description: {}", q(&desc));
        let proto = match (fnote.encrypted, f.protocol.as_str()) {
            (Some(true), "http") => "https",
            (Some(true), "unknown-protocol" | "binary") => "binary-encrypted",
            (Some(false), "https") => "http",
            (_, p) => p,
        };
        let _ = writeln!(o, "        protocol: {proto}");
        let _ = writeln!(
            o,
            "        authentication: {}",
            fnote.authentication.as_deref().unwrap_or("none")
        );
        let _ = writeln!(
            o,
            "        authorization: {}",
            fnote.authorization.as_deref().unwrap_or("none")
        );
        let _ = writeln!(o, "        tags: [\"cw-observed\"]\n        vpn: false\n        ip_filtered: false\n        readonly: false\n        usage: business");
        let _ = writeln!(
            o,
            "        data_assets_sent: {}",
            list([traffic_asset(f.port, &f.transport).as_str()])
        );
        let _ = writeln!(o, "        data_assets_received: []");
    }
}
