//! OWASP Threat Dragon v2 JSON (facts file §3): `{version, summary{title}, detail{contributors,
//! diagrams[{id, title, diagramType, version, cells}], diagramTop, reviewer, threatTop}}`.
//! Cells have deterministic UUIDs ([`crate::ids::uuid_of`]), a position and a size (TD has
//! no auto-layout, so we lay out a grid: externals left, one column per host with its
//! containers nested, credential stores right). Strings go through serde_json.

use super::Annotated;
use crate::classify;
use crate::ids::uuid_of;
use crate::model::*;
use serde_json::{json, Value};

const W: i64 = 160;
const H: i64 = 80;

#[allow(clippy::too_many_arguments)] // a cell is exactly these fields; a struct would only rename them
fn node(
    id: &str,
    shape: &str,
    ty: &str,
    name: &str,
    desc: &str,
    x: i64,
    y: i64,
    extra: Value,
) -> Value {
    let mut data = json!({
        "type": ty, "name": name, "description": desc, "outOfScope": false,
        "reasonOutOfScope": "", "isTrustBoundary": false, "hasOpenThreats": false, "threats": [],
    });
    if let (Some(d), Value::Object(e)) = (data.as_object_mut(), extra) {
        d.extend(e);
    }
    json!({
        "id": uuid_of(id), "shape": shape, "zIndex": 1,
        "position": {"x": x, "y": y}, "size": {"width": W, "height": H},
        "attrs": {"text": {"text": name}},
        "data": data,
    })
}

fn boxed(id: &str, name: &str, x: i64, y: i64, w: i64, h: i64) -> Value {
    json!({
        "id": uuid_of(&format!("boundary\0{id}")), "shape": "trust-boundary-box", "zIndex": -1,
        "position": {"x": x, "y": y}, "size": {"width": w, "height": h},
        "attrs": {"headerText": {"text": name}},
        "data": {"type": "tm.BoundaryBox", "name": name, "description": "",
                 "isTrustBoundary": true, "hasOpenThreats": false},
    })
}

pub fn render(a: &Annotated<'_>) -> String {
    let m = a.model;
    let mut cells: Vec<Value> = Vec::new();
    // Externals: the internet box first, then the other outside parties below it.
    let mut y = 40;
    let inet: Vec<&ExternalEntity> = m.externals.values().filter(|x| x.internet).collect();
    if !inet.is_empty() {
        let h = 40 + inet.len() as i64 * (H + 40);
        cells.push(boxed("internet", "Internet", 0, y - 20, W + 40, h));
        y += 20;
    }
    for x in inet
        .iter()
        .copied()
        .chain(m.externals.values().filter(|x| !x.internet))
    {
        let extra = json!({"providesAuthentication": false});
        let mut c = node(
            &x.id,
            "actor",
            "tm.Actor",
            &x.name,
            &format!("id {}", x.id),
            20,
            y,
            extra,
        );
        c["data"]["outOfScope"] = json!(true);
        c["data"]["reasonOutOfScope"] = json!("outside the monitored hosts");
        cells.push(c);
        y += H + 40;
    }
    let eps = m.entry_points_by_workload();
    let wnode = |w: &Workload, x: i64, y: i64| -> Value {
        let n = a.note(&w.id);
        let desc = n.description.clone().unwrap_or_else(|| {
            let exes: Vec<&str> = w.executables.keys().map(String::as_str).collect();
            format!("id {}; executables: {}", w.id, exes.join(", "))
        });
        if w.datastore {
            node(
                &w.id,
                "store",
                "tm.Store",
                &w.name,
                &desc,
                x,
                y,
                json!({
                "isALog": false, "isEncrypted": false, "isSigned": false,
                "storesCredentials": false, "storesInventory": false}),
            )
        } else {
            let web = eps.get(w.id.as_str()).is_some_and(|v| {
                v.iter()
                    .any(|e| classify::protocol_for_port(e.port).starts_with("http"))
            });
            node(
                &w.id,
                "process",
                "tm.Process",
                &w.name,
                &desc,
                x,
                y,
                json!({
                "handlesCardPayment": false, "handlesGoodsOrServices": false,
                "isWebApplication": web, "privilegeLevel": ""}),
            )
        }
    };
    let mut hx = 300;
    for hb in m
        .boundaries
        .values()
        .filter(|b| b.kind == BoundaryKind::Host)
    {
        let top = 20;
        let mut y = top + 40;
        let mut inner = Vec::new();
        for id in &hb.members {
            if let Some(w) = m.workloads.get(id) {
                inner.push(wnode(w, hx + 40, y));
                y += H + 40;
            }
        }
        for cb in m
            .boundaries
            .values()
            .filter(|b| b.parent.as_deref() == Some(hb.id.as_str()))
        {
            let cy = y;
            y += 40;
            for id in &cb.members {
                if let Some(w) = m.workloads.get(id) {
                    inner.push(wnode(w, hx + 40, y));
                    y += H + 40;
                }
            }
            inner.push(boxed(&cb.id, &cb.name, hx + 20, cy, W + 40, y - cy));
            y += 20;
        }
        cells.push(boxed(&hb.id, &hb.name, hx, top, W + 80, y - top + 20));
        cells.extend(inner);
        hx += W + 140;
    }
    let mut sy = 40;
    for d in m.data_assets.values() {
        let sid = format!("store\0{}", d.id);
        let paths: Vec<&str> = d.paths.iter().map(String::as_str).collect();
        cells.push(node(
            &sid,
            "store",
            "tm.Store",
            &format!("files: {}", d.id),
            &paths.join(", "),
            hx,
            sy,
            json!({
            "isALog": false, "isEncrypted": false, "isSigned": false,
            "storesCredentials": true, "storesInventory": false}),
        ));
        sy += H + 40;
        for r in d.readers.keys() {
            cells.push(edge(
                &format!("read\0{}\0{r}", d.id),
                &sid,
                r,
                &format!("read {}", d.id),
                "local-file-access",
                false,
                false,
            ));
        }
    }
    for f in m.flows.values() {
        let public = matches!(&f.source, Peer::External(x) if x == crate::builder::INTERNET)
            || matches!(&f.target, Peer::External(x) if x == crate::builder::INTERNET);
        let enc = a
            .note(&f.id)
            .encrypted
            .unwrap_or(classify::is_encrypted(&f.protocol));
        cells.push(edge(
            &f.id,
            f.source.id(),
            f.target.id(),
            &format!("{}/{} {}", f.transport, f.port, f.protocol),
            &f.protocol,
            enc,
            public,
        ));
    }
    let doc = json!({
        "version": "2.6.2",
        "summary": {"title": a.meta.title, "owner": "", "description": "derived from runtime by causeway", "id": 0},
        "detail": {
            "contributors": [],
            "diagrams": [{
                "id": 0, "title": "Runtime data flow", "diagramType": "STRIDE",
                "placeholder": "derived from runtime", "thumbnail": "./public/content/images/thumbnail.stride.jpg",
                "version": "2.6.2", "cells": cells,
            }],
            "diagramTop": 1, "reviewer": "", "threatTop": 0,
        },
    });
    serde_json::to_string_pretty(&doc).expect("a JSON value always serializes")
}

fn edge(
    id: &str,
    src: &str,
    dst: &str,
    label: &str,
    protocol: &str,
    enc: bool,
    public: bool,
) -> Value {
    json!({
        "id": uuid_of(id), "shape": "flow", "zIndex": 2,
        "source": {"cell": uuid_of(src)}, "target": {"cell": uuid_of(dst)},
        "vertices": [], "labels": [label],
        "data": {"type": "tm.Flow", "name": label, "description": format!("id {id}"),
                 "outOfScope": false, "reasonOutOfScope": "", "protocol": protocol,
                 "isEncrypted": enc, "isPublicNetwork": public, "isBidirectional": false,
                 "isTrustBoundary": false, "hasOpenThreats": false, "threats": []},
    })
}
