//! An OWASP pytm script (facts file §2): run it with `--dfd`, `--json FILE` or `--report`.
//! Boundaries nest by `inBoundary`; workloads with an entry point are `Server`s (datastores
//! `Datastore`s, others `Process`es); outside parties are `Actor` (internet) or
//! `ExternalEntity`; credential groups are `Data(isCredentials=True)` carried by a flow from
//! a file-system `Datastore`. Every string is a Python literal with every non-ASCII or
//! control character escaped, so the source itself is plain ASCII.

use super::Annotated;
use crate::classify;
use crate::model::*;
use std::collections::BTreeMap;
use std::fmt::Write;

/// A Python string literal.
pub fn py(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if c.is_ascii() && !c.is_ascii_control() => o.push(c),
            c if (c as u32) < 0x100 => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(o, "\\U{:08x}", c as u32);
            }
        }
    }
    o.push('"');
    o
}

pub fn render(a: &Annotated<'_>) -> String {
    let m = a.model;
    let mut o = String::new();
    let _ = writeln!(o, "#!/usr/bin/env python3\n# Derived from runtime by causeway. Run: python3 THIS --dfd | dot -Tpng > dfd.png");
    let _ = writeln!(o, "from pytm import TM, Actor, Boundary, Classification, Data, Dataflow, Datastore, DatastoreType, ExternalEntity, Process, Server\n");
    let _ = writeln!(o, "tm = TM({})", py(&a.meta.title));
    let _ = writeln!(
        o,
        "tm.description = {}",
        py("threat model derived from runtime observation (causeway)")
    );
    let _ = writeln!(o, "tm.isOrdered = False\n");

    // Variables are positional (v0, v1...) so hostile names never reach Python syntax.
    let mut var: BTreeMap<&str, String> = BTreeMap::new();
    let mut next = 0usize;
    // Boundaries, parents before children.
    let mut order: Vec<&Boundary> = m
        .boundaries
        .values()
        .filter(|b| b.parent.is_none())
        .collect();
    let mut i = 0;
    while i < order.len() {
        let id = order[i].id.clone();
        order.extend(
            m.boundaries
                .values()
                .filter(|b| b.parent.as_deref() == Some(id.as_str())),
        );
        i += 1;
    }
    for b in order {
        next += 1;
        let v = format!("v{next}");
        let _ = writeln!(
            o,
            "{v} = Boundary({})",
            py(&format!("{} [{}]", b.name, b.id))
        );
        if let Some(p) = b.parent.as_deref().and_then(|p| var.get(p)) {
            let _ = writeln!(o, "{v}.inBoundary = {p}");
        }
        var.insert(&b.id, v);
    }
    let inside = m.membership();
    let by_wl = m.entry_points_by_workload();
    let boundary_of = |id: &str, var: &BTreeMap<&str, String>| -> Option<String> {
        inside.get(id).and_then(|b| var.get(b).cloned())
    };
    for x in m.externals.values() {
        next += 1;
        let v = format!("v{next}");
        let class = if x.internet {
            "Actor"
        } else {
            "ExternalEntity"
        };
        let _ = writeln!(
            o,
            "{v} = {class}({})",
            py(&format!("{} [{}]", x.name, x.id))
        );
        if let Some(b) = boundary_of(&x.id, &var) {
            let _ = writeln!(o, "{v}.inBoundary = {b}");
        }
        var.insert(&x.id, v);
    }
    for w in m.workloads.values() {
        next += 1;
        let v = format!("v{next}");
        let eps: &[&EntryPoint] = by_wl.get(w.id.as_str()).map_or(&[], Vec::as_slice);
        let class = if w.datastore {
            "Datastore"
        } else if eps.is_empty() {
            "Process"
        } else {
            "Server"
        };
        let _ = writeln!(
            o,
            "{v} = {class}({})",
            py(&format!("{} [{}]", w.name, w.id))
        );
        let n = a.note(&w.id);
        let exes: Vec<&str> = w.executables.keys().map(String::as_str).collect();
        let desc = n
            .description
            .clone()
            .unwrap_or_else(|| format!("executables: {}", exes.join(", ")));
        let _ = writeln!(o, "{v}.description = {}", py(&desc));
        if let Some(b) = boundary_of(&w.id, &var) {
            let _ = writeln!(o, "{v}.inBoundary = {b}");
        }
        if let Some(ep) = eps.first() {
            let _ = writeln!(o, "{v}.port = {}", ep.port);
            let _ = writeln!(
                o,
                "{v}.protocol = {}",
                py(classify::protocol_for_port(ep.port))
            );
        }
        var.insert(&w.id, v);
    }
    for d in m.data_assets.values() {
        next += 1;
        let dv = format!("v{next}");
        let _ = writeln!(
            o,
            "{dv} = Data({}, classification=Classification.SECRET, isCredentials=True)",
            py(&d.id)
        );
        let _ = writeln!(o, "{dv}.description = {}", py(&d.description));
        next += 1;
        let sv = format!("v{next}");
        let _ = writeln!(o, "{sv} = Datastore({})", py(&format!("files: {}", d.id)));
        let _ = writeln!(
            o,
            "{sv}.type = DatastoreType.FILE_SYSTEM\n{sv}.storesSensitiveData = True"
        );
        let paths: Vec<&str> = d.paths.iter().map(String::as_str).collect();
        let _ = writeln!(o, "{sv}.description = {}", py(&paths.join(", ")));
        for (r, count) in &d.readers {
            if let Some(rv) = var.get(r.as_str()) {
                let fv = format!("v{}", next + 1);
                next += 1;
                let _ = writeln!(
                    o,
                    "{fv} = Dataflow({sv}, {rv}, {})",
                    py(&format!("read {} ({count}x)", d.id))
                );
                let _ = writeln!(
                    o,
                    "{fv}.protocol = \"local-file-access\"\n{fv}.data = [{dv}]"
                );
            }
        }
    }
    for f in m.flows.values() {
        let (Some(s), Some(t)) = (var.get(f.source.id()), var.get(f.target.id())) else {
            continue;
        };
        next += 1;
        let v = format!("v{next}");
        let _ = writeln!(
            o,
            "{v} = Dataflow({s}, {t}, {})",
            py(&format!("{}/{} {}", f.transport, f.port, f.protocol))
        );
        let _ = writeln!(o, "{v}.dstPort = {}", f.port);
        let _ = writeln!(o, "{v}.protocol = {}", py(&f.protocol));
        let _ = writeln!(
            o,
            "{v}.note = {}",
            py(&format!(
                "{} connection(s), bytes unknown, first {}, last {}, id {}",
                f.connections,
                f.provenance.first_seen.to_rfc3339(),
                f.provenance.last_seen.to_rfc3339(),
                f.id
            ))
        );
        let enc = a
            .note(&f.id)
            .encrypted
            .unwrap_or(classify::is_encrypted(&f.protocol));
        let _ = writeln!(
            o,
            "{v}.controls.isEncrypted = {}",
            if enc { "True" } else { "False" }
        );
    }
    let _ = writeln!(o, "\nif __name__ == \"__main__\":\n    tm.process()");
    o
}
