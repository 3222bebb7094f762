//! Open Threat Model JSON (facts file §4; schema copy td.vue/src/assets/schema/
//! open-threat-model.schema.json): `otmVersion`, `project{name,id}`, a diagram
//! representation, `trustZones` (tree by `parent`, `risk.trustRating`), `components` (each
//! with `parent{trustZone}`), `dataflows`, and credential `assets` with CIA risk (0-100).

use super::Annotated;
use crate::model::*;
use serde_json::{json, Value};

fn rating(level: &str) -> i64 {
    match level {
        "public" | "archive" => 10,
        "internal" | "operational" => 30,
        "restricted" | "important" => 50,
        "confidential" | "critical" => 75,
        _ => 100,
    }
}

pub fn render(a: &Annotated<'_>) -> String {
    let m = a.model;
    let mut zones: Vec<Value> = Vec::new();
    for b in m.boundaries.values() {
        let trust = match b.kind {
            BoundaryKind::Internet => 0,
            BoundaryKind::Host => 70,
            BoundaryKind::Container => 60,
        };
        let mut z = json!({"id": b.id, "name": b.name, "type": format!("{:?}", b.kind).to_lowercase(),
                           "risk": {"trustRating": trust}});
        if let Some(p) = &b.parent {
            z["parent"] = json!({"trustZone": p});
        }
        zones.push(z);
    }
    // Outside parties not in the internet zone get a zone of their own.
    let inside = m.membership();
    let needs_outside = m.externals.keys().any(|x| !inside.contains_key(x.as_str()));
    if needs_outside {
        zones.push(
            json!({"id": "outside", "name": "outside the monitored hosts", "type": "network",
                          "risk": {"trustRating": 20}}),
        );
    }
    let zone_of = |id: &str| inside.get(id).copied().unwrap_or("outside").to_string();
    let mut comps: Vec<Value> = Vec::new();
    for x in m.externals.values() {
        comps.push(json!({"id": x.id, "name": x.name, "type": "generic-client",
                          "parent": {"trustZone": zone_of(&x.id)}, "tags": ["cw-inferred"]}));
    }
    for w in m.workloads.values() {
        let n = a.note(&w.id);
        let exes: Vec<&str> = w.executables.keys().map(String::as_str).collect();
        comps.push(json!({"id": w.id, "name": w.name,
            "type": if w.datastore { "other-database" } else { "generic-service" },
            "description": n.description.clone().unwrap_or_else(|| format!("executables: {}", exes.join(", "))),
            "parent": {"trustZone": zone_of(&w.id)},
            "tags": ["cw-observed"],
            "assets": {"processed": m.data_assets.values().filter(|d| d.readers.contains_key(&w.id)).map(|d| d.id.clone()).collect::<Vec<_>>(), "stored": []}}));
    }
    let assets: Vec<Value> = m.data_assets.values().map(|d| {
        let n = a.note(&d.id);
        json!({"id": d.id, "name": d.id, "description": d.description,
               "risk": {"confidentiality": rating(n.confidentiality.as_deref().unwrap_or("strictly-confidential")),
                        "integrity": rating(n.integrity.as_deref().unwrap_or("critical")),
                        "availability": rating(n.availability.as_deref().unwrap_or("operational"))}})
    }).collect();
    let flows: Vec<Value> = m
        .flows
        .values()
        .map(|f| {
            json!({
                "id": f.id, "name": format!("{}/{} {}", f.transport, f.port, f.protocol),
                "source": f.source.id(), "destination": f.target.id(), "bidirectional": false,
                "tags": [format!("connections:{}", f.connections), "bytes:unknown".to_string()],
            })
        })
        .collect();
    let doc = json!({
        "otmVersion": "0.2.0",
        "project": {"name": a.meta.title, "id": crate::ids::slug(&a.meta.title),
                    "description": "derived from runtime by causeway"},
        "representations": [{"name": "Runtime data flow", "id": "runtime-dfd", "type": "diagram",
                             "size": {"width": 2000, "height": 1000}}],
        "assets": assets,
        "trustZones": zones,
        "components": comps,
        "dataflows": flows,
        "threats": [],
        "mitigations": [],
    });
    serde_json::to_string_pretty(&doc).expect("a JSON value always serializes")
}
