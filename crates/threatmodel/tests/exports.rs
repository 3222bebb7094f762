//! Exports checked against the constraints their tools document, as written in
//! shared/design/threat-model-facts.md (section cited at each check), and the annotations
//! overlay merged into them. The pytm export is loaded by OWASP pytm itself.

mod common;

use causeway_rules::yaml::{self, Node, Value};
use causeway_threatmodel::export::{Annotated, Meta};
use causeway_threatmodel::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const HOSTILE: &str = "/opt/we\"ird\\\n: - {x} #\u{7}\u{85}é'/python3";

fn hostile_model() -> ThreatModel {
    build(&events(&Topo {
        frontend_exe: HOSTILE.into(),
        ..Topo::default()
    }))
}

fn meta() -> Meta {
    Meta {
        title: "node-a \"runtime\"".into(),
        date: "2026-12-01".into(),
    }
}

fn render(m: &ThreatModel, notes: &Annotations, f: Format) -> String {
    export(
        &Annotated {
            model: m,
            notes,
            meta: &meta(),
        },
        f,
    )
}

fn get<'a>(n: &'a Node, key: &str) -> Option<&'a Node> {
    match &n.value {
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn entries(n: &Node) -> Vec<(&str, &Node)> {
    match &n.value {
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (k.as_str().expect("string key"), v))
            .collect(),
        _ => Vec::new(),
    }
}

fn strs(n: &Node) -> Vec<&str> {
    match &n.value {
        Value::Seq(s) => s.iter().map(|i| i.as_str().expect("string item")).collect(),
        _ => panic!("not a list: {n:?}"),
    }
}

fn s<'a>(n: &'a Node, key: &str) -> &'a str {
    get(n, key)
        .and_then(Node::as_str)
        .unwrap_or_else(|| panic!("missing string {key}"))
}

fn one_of(v: &str, allowed: &[&str], what: &str) {
    assert!(allowed.contains(&v), "{what}: {v:?} not in {allowed:?}");
}

fn id_ok(id: &str) {
    // §1 Parser constraints: IDs must match ^[a-zA-Z0-9\-]+$.
    assert!(
        !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "bad id {id:?}"
    );
}

#[test]
fn threagile_export_meets_parse_constraints() {
    let m = hostile_model();
    let y = render(&m, &Annotations::default(), Format::Threagile);
    let doc = yaml::parse(&y).unwrap_or_else(|e| panic!("not YAML: {e:?}\n{y}"));
    // §1: the schema's required list.
    for k in [
        "threagile_version",
        "title",
        "author",
        "business_criticality",
        "tags_available",
        "data_assets",
        "technical_assets",
        "shared_runtimes",
    ] {
        assert!(get(&doc, k).is_some(), "missing required key {k}");
    }
    assert_eq!(s(&doc, "title"), meta().title);
    // §9: quote the date (a string, YYYY-MM-DD).
    assert_eq!(s(&doc, "date"), "2026-12-01");
    one_of(
        s(&doc, "business_criticality"),
        &[
            "archive",
            "operational",
            "important",
            "critical",
            "mission-critical",
        ],
        "business_criticality",
    );
    let tags: BTreeSet<&str> = strs(get(&doc, "tags_available").unwrap())
        .into_iter()
        .collect();
    let crit = [
        "archive",
        "operational",
        "important",
        "critical",
        "mission-critical",
    ];
    let conf = [
        "public",
        "internal",
        "restricted",
        "confidential",
        "strictly-confidential",
    ];
    // §1 data_assets.
    let data: BTreeSet<&str> = entries(get(&doc, "data_assets").unwrap())
        .iter()
        .map(|(k, _)| *k)
        .collect();
    for (k, d) in entries(get(&doc, "data_assets").unwrap()) {
        assert_eq!(s(d, "id"), k);
        id_ok(k);
        one_of(s(d, "usage"), &["business", "devops"], "usage");
        one_of(
            s(d, "quantity"),
            &["very-few", "few", "many", "very-many"],
            "quantity",
        );
        one_of(s(d, "confidentiality"), &conf, "confidentiality");
        one_of(s(d, "integrity"), &crit, "integrity");
        one_of(s(d, "availability"), &crit, "availability");
    }
    assert!(data.contains("cloud-credentials"));
    // §1 technical_assets and communication_links (protocol: the values §1 and §7 list).
    let protocols = [
        "http",
        "https",
        "ws",
        "wss",
        "mqtt",
        "jdbc",
        "odbc",
        "sql-access-protocol",
        "sql-access-protocol-encrypted",
        "nosql-access-protocol",
        "nosql-access-protocol-encrypted",
        "binary",
        "binary-encrypted",
        "text",
        "text-encrypted",
        "ssh",
        "ssh-tunnel",
        "smtp",
        "smtp-encrypted",
        "pop3",
        "imap",
        "imap-encrypted",
        "ftp",
        "ftps",
        "sftp",
        "scp",
        "ldap",
        "ldaps",
        "jms",
        "nfs",
        "smb",
        "smb-encrypted",
        "nrpe",
        "xmpp",
        "iiop",
        "jrmp",
        "local-file-access",
        "in-process-library-call",
        "inter-process-communication",
        "container-spawning",
        "unknown-protocol",
    ];
    let assets = entries(get(&doc, "technical_assets").unwrap());
    let asset_ids: BTreeSet<&str> = assets.iter().map(|(_, a)| s(a, "id")).collect();
    let mut links = 0;
    let mut described = false;
    for (_, a) in &assets {
        id_ok(s(a, "id"));
        one_of(
            s(a, "type"),
            &["external-entity", "process", "datastore"],
            "type",
        );
        one_of(s(a, "usage"), &["business", "devops"], "usage");
        one_of(
            s(a, "size"),
            &["system", "service", "application", "component"],
            "size",
        );
        one_of(
            s(a, "machine"),
            &["physical", "virtual", "container", "serverless"],
            "machine",
        );
        one_of(
            s(a, "encryption"),
            &[
                "none",
                "transparent",
                "data-with-symmetric-shared-key",
                "data-with-asymmetric-shared-key",
                "data-with-end-user-individual-key",
            ],
            "encryption",
        );
        one_of(s(a, "confidentiality"), &conf, "confidentiality");
        one_of(s(a, "integrity"), &crit, "integrity");
        one_of(s(a, "availability"), &crit, "availability");
        // §9: technology singular.
        assert!(get(a, "technology").is_some() && get(a, "technologies").is_none());
        for t in strs(get(a, "tags").unwrap()) {
            assert!(tags.contains(t), "undeclared tag {t}");
        }
        for d in strs(get(a, "data_assets_processed").unwrap()) {
            assert!(data.contains(d), "unknown data asset {d}");
        }
        described |= s(a, "description").contains(HOSTILE);
        for (_, l) in entries(get(a, "communication_links").unwrap()) {
            links += 1;
            assert!(asset_ids.contains(s(l, "target")), "link to unknown asset");
            one_of(s(l, "protocol"), &protocols, "protocol");
            one_of(
                s(l, "authentication"),
                &[
                    "none",
                    "credentials",
                    "session-id",
                    "token",
                    "client-certificate",
                    "two-factor",
                    "externalized",
                ],
                "authentication",
            );
            one_of(
                s(l, "authorization"),
                &["none", "technical-user", "end-user-identity-propagation"],
                "authorization",
            );
            // §8 D: at least one data asset per link.
            let sent = strs(get(l, "data_assets_sent").unwrap());
            assert!(!sent.is_empty() && sent.iter().all(|d| data.contains(d)));
        }
    }
    assert_eq!(links, 3);
    assert!(
        described,
        "the hostile executable round-trips through YAML quoting"
    );
    // §1: trust boundary types; an asset directly in only one boundary; nesting is a tree.
    let mut inside: BTreeMap<&str, u32> = BTreeMap::new();
    let bounds = entries(get(&doc, "trust_boundaries").unwrap());
    let bids: BTreeSet<&str> = bounds.iter().map(|(k, _)| *k).collect();
    let mut nested_count: BTreeMap<&str, u32> = BTreeMap::new();
    for (k, b) in &bounds {
        id_ok(k);
        one_of(
            s(b, "type"),
            &[
                "network-on-prem",
                "network-dedicated-hoster",
                "network-virtual-lan",
                "network-cloud-provider",
                "network-cloud-security-group",
                "network-policy-namespace-isolation",
                "execution-environment",
            ],
            "boundary type",
        );
        for a in strs(get(b, "technical_assets_inside").unwrap()) {
            assert!(asset_ids.contains(a));
            *inside.entry(a).or_default() += 1;
        }
        for n in strs(get(b, "trust_boundaries_nested").unwrap()) {
            assert!(bids.contains(n));
            *nested_count.entry(n).or_default() += 1;
        }
    }
    assert!(inside.values().all(|c| *c == 1), "{inside:?}");
    assert!(nested_count.values().all(|c| *c == 1));
    assert_eq!(
        bounds.len(),
        2,
        "host and container (the internet is outside in Threagile)"
    );
    // Deterministic.
    assert_eq!(
        y,
        render(&hostile_model(), &Annotations::default(), Format::Threagile)
    );
}

#[test]
fn threat_dragon_export_meets_v2_shape() {
    let m = hostile_model();
    let j: serde_json::Value =
        serde_json::from_str(&render(&m, &Annotations::default(), Format::ThreatDragon)).unwrap();
    // §3 Structure: {version, summary{title*}, detail{contributors, diagrams[], diagramTop, reviewer, threatTop}}.
    assert!(j["version"].is_string());
    assert_eq!(j["summary"]["title"], meta().title);
    for k in [
        "contributors",
        "diagrams",
        "diagramTop",
        "reviewer",
        "threatTop",
    ] {
        assert!(!j["detail"][k].is_null(), "detail.{k}");
    }
    let d = &j["detail"]["diagrams"][0];
    assert!(d["id"].is_i64());
    assert!(["CIA", "CIADIE", "LINDDUN", "PLOT4ai", "STRIDE", "EOP"]
        .contains(&d["diagramType"].as_str().unwrap()));
    let cells = d["cells"].as_array().unwrap();
    let uuid = |s: &str| {
        s.len() == 36
            && s.chars().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    };
    let ids: BTreeSet<&str> = cells.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), cells.len(), "unique cell ids");
    let types = [
        ("actor", "tm.Actor"),
        ("process", "tm.Process"),
        ("store", "tm.Store"),
        ("flow", "tm.Flow"),
        ("trust-boundary-box", "tm.BoundaryBox"),
    ];
    let mut flows = 0;
    for c in cells {
        assert!(uuid(c["id"].as_str().unwrap()));
        let shape = c["shape"].as_str().unwrap();
        let ty = types
            .iter()
            .find(|(s, _)| *s == shape)
            .unwrap_or_else(|| panic!("shape {shape}"))
            .1;
        assert_eq!(c["data"]["type"], ty);
        assert!(c["data"]["name"].is_string());
        if shape == "flow" {
            flows += 1;
            assert!(ids.contains(c["source"]["cell"].as_str().unwrap()));
            assert!(ids.contains(c["target"]["cell"].as_str().unwrap()));
            for k in [
                "protocol",
                "isEncrypted",
                "isPublicNetwork",
                "isBidirectional",
            ] {
                assert!(!c["data"][k].is_null(), "flow {k}");
            }
        } else {
            // §3: nodes need position{x,y} and size{width,height}.
            assert!(c["position"]["x"].is_i64() && c["position"]["y"].is_i64());
            assert!(
                c["size"]["width"].as_i64().unwrap() > 0
                    && c["size"]["height"].as_i64().unwrap() > 0
            );
            if shape == "trust-boundary-box" {
                assert_eq!(c["data"]["isTrustBoundary"], true);
            } else {
                assert!(c["data"]["threats"].is_array());
            }
        }
    }
    assert_eq!(flows, 3 + 1, "three flows and one credential read");
    let text = serde_json::to_string(&j).unwrap();
    assert!(text.contains(&serde_json::to_string(HOSTILE).unwrap()[1..HOSTILE.len()]));
}

#[test]
fn otm_export_meets_required_fields() {
    let m = hostile_model();
    let j: serde_json::Value =
        serde_json::from_str(&render(&m, &Annotations::default(), Format::Otm)).unwrap();
    // §4: required otmVersion, project{name,id}; TD needs a diagram representation (§9).
    assert!(j["otmVersion"].is_string());
    assert!(j["project"]["name"].is_string() && j["project"]["id"].is_string());
    assert!(j["representations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["type"] == "diagram"));
    let zones = j["trustZones"].as_array().unwrap();
    let zids: BTreeSet<&str> = zones.iter().map(|z| z["id"].as_str().unwrap()).collect();
    for z in zones {
        assert!(z["name"].is_string());
        let r = z["risk"]["trustRating"].as_i64().unwrap();
        assert!((0..=100).contains(&r));
        if let Some(p) = z.get("parent") {
            assert!(zids.contains(p["trustZone"].as_str().unwrap()));
        }
    }
    let comps = j["components"].as_array().unwrap();
    let cids: BTreeSet<&str> = comps.iter().map(|c| c["id"].as_str().unwrap()).collect();
    for c in comps {
        assert!(c["name"].is_string() && c["type"].is_string());
        assert!(zids.contains(c["parent"]["trustZone"].as_str().unwrap()));
    }
    let flows = j["dataflows"].as_array().unwrap();
    assert_eq!(flows.len(), 3);
    for f in flows {
        assert!(
            cids.contains(f["source"].as_str().unwrap())
                && cids.contains(f["destination"].as_str().unwrap())
        );
    }
    for a in j["assets"].as_array().unwrap() {
        for k in ["confidentiality", "integrity", "availability"] {
            assert!((0..=100).contains(&a["risk"][k].as_i64().unwrap()));
        }
    }
}

/// OWASP pytm from PyPI must load and process the export (`--dfd` and `--json`).
#[test]
fn pytm_export_loads_with_owasp_pytm() {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import pytm"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "python3 with pytm (pip install pytm) is required under CI=true"
        );
        eprintln!(
            "SKIP pytm_export_loads_with_owasp_pytm: python3 or pytm missing (pip install pytm)"
        );
        return;
    }
    let m = hostile_model();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("export.py");
    std::fs::write(&script, render(&m, &Annotations::default(), Format::Pytm)).unwrap();
    let dfd = std::process::Command::new("python3")
        .arg(&script)
        .arg("--dfd")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        dfd.status.success(),
        "pytm --dfd failed: {}",
        String::from_utf8_lossy(&dfd.stderr)
    );
    let dot = String::from_utf8_lossy(&dfd.stdout);
    assert!(dot.starts_with("digraph"), "{dot}");
    // pytm wraps labels in the DFD, so count edges here and check names in its JSON.
    assert_eq!(dot.matches(" -> ").count(), 3 + 1, "{dot}");
    let out = dir.path().join("out.json");
    let js = std::process::Command::new("python3")
        .arg(&script)
        .arg("--json")
        .arg(&out)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        js.status.success(),
        "pytm --json failed: {}",
        String::from_utf8_lossy(&js.stderr)
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let flows = j["flows"].as_array().expect("flows in pytm's JSON");
    assert_eq!(flows.len(), 3 + 1, "three flows and one credential read");
    let text = j.to_string();
    for w in m.workloads.values() {
        assert!(text.contains(&w.id), "{} missing in pytm's JSON", w.id);
    }
    assert!(text.contains("cloud-credentials"));
    assert!(text.contains("203.0.113.7") || text.contains("Internet"));
}

#[test]
fn annotations_merge_and_survive_regeneration() {
    let m = build(&events(&Topo::default()));
    let api = m
        .workloads
        .values()
        .find(|w| w.name == "api.service")
        .unwrap();
    let flow = m.flows.values().find(|f| f.port == 9000).unwrap();
    let src = format!("{}:\n  owner: team-api\n  confidentiality: confidential\n  integrity: critical\n  availability: important\n{}:\n  authentication: token\n  encrypted: true\ngone-00000000:\n  owner: someone\n", api.id, flow.id);
    let notes = Annotations::parse(Path::new("notes.yaml"), &src).unwrap();
    assert_eq!(
        notes.check(&m).unwrap(),
        vec!["gone-00000000".to_string()],
        "unknown ids are reported, not dropped"
    );
    let later = build(&events(&Topo {
        boot: "00000000000000cc",
        t0: Topo::default().t0 + 604_800_000_000_000,
        ..Topo::default()
    }));
    assert!(notes.check(&later).is_ok());
    let y = render(&later, &notes, Format::Threagile);
    let doc = yaml::parse(&y).unwrap();
    let assets = get(&doc, "technical_assets").unwrap();
    let a = get(assets, &api.id).unwrap();
    assert_eq!(s(a, "owner"), "team-api");
    assert_eq!(s(a, "confidentiality"), "confidential");
    let fe = m
        .workloads
        .values()
        .find(|w| w.name == "python3 http.server")
        .unwrap();
    let l = get(
        get(get(assets, &fe.id).unwrap(), "communication_links").unwrap(),
        &flow.id,
    )
    .unwrap();
    assert_eq!(s(l, "authentication"), "token");
    assert_eq!(
        s(l, "protocol"),
        "binary-encrypted",
        "annotated encrypted upgrades the port-guessed protocol"
    );
    let otm: serde_json::Value =
        serde_json::from_str(&render(&later, &notes, Format::Otm)).unwrap();
    assert!(otm["components"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == api.id.as_str()));
}

#[test]
fn malformed_annotations_are_refused_with_positions() {
    let bad = "api-1:\n  owner: x\n  confidentiality: secretish\n  colour: blue\nflow-2: [1]\n";
    let e = Annotations::parse(Path::new("notes.yaml"), bad)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("notes.yaml:3:20: confidentiality: \"secretish\" is not one of"),
        "{e}"
    );
    assert!(
        e.contains("notes.yaml:4:3: unknown field \"colour\""),
        "{e}"
    );
    assert!(e.contains("notes.yaml:5:9:"), "{e}");
    let syntax = Annotations::parse(Path::new("n.yaml"), "a: [1,\n")
        .unwrap_err()
        .to_string();
    assert!(syntax.starts_with("n.yaml:"), "{syntax}");
    // A flow field on a workload: refused when checked against the model, with position.
    let m = build(&events(&Topo::default()));
    let api = m
        .workloads
        .values()
        .find(|w| w.name == "api.service")
        .unwrap();
    let notes = Annotations::parse(
        Path::new("n.yaml"),
        &format!("{}:\n  owner: me\n  authentication: token\n", api.id),
    )
    .unwrap();
    let e = notes.check(&m).unwrap_err().to_string();
    assert!(
        e.contains("n.yaml:3:3:") && e.contains("is not a flow"),
        "{e}"
    );
}
