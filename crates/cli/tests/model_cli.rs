//! `causeway model show|export` over a real store: the synthetic topology of
//! crates/threatmodel/tests/common is ingested with `causeway ingest`, then modeled.

#[path = "../../threatmodel/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;

fn causeway(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_causeway"))
        .args(args)
        .output()
        .expect("run causeway")
}

fn ingest(dir: &Path) {
    let evs = common::events(&common::Topo::default());
    let file = dir.join("events.jsonl");
    let lines: Vec<String> = evs.iter().map(|e| e.to_json()).collect();
    std::fs::write(&file, lines.join("\n") + "\n").expect("write events");
    let data = dir.join("data");
    let out = causeway(&[
        "ingest",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        file.to_str().expect("utf-8 path"),
    ]);
    assert!(
        out.status.success(),
        "ingest: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn model_show_and_export_over_a_store() {
    let dir = tempfile::tempdir().unwrap();
    ingest(dir.path());
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    let out = causeway(&["model", "show", "--data-dir", d, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["workloads"].as_object().unwrap().len(), 3);
    let mut ports: Vec<u64> = m["flows"]
        .as_object()
        .unwrap()
        .values()
        .map(|f| f["port"].as_u64().unwrap())
        .collect();
    ports.sort_unstable();
    assert_eq!(ports, vec![6379, 8080, 9000]);
    assert_eq!(
        m["data_assets"]["cloud-credentials"]["readers"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    let text = causeway(&["model", "show", "--data-dir", d]);
    assert!(String::from_utf8_lossy(&text.stdout)
        .contains("python3 http.server -> api.service tcp/9000"));

    // Each format to a file; the same store exported twice is byte-identical.
    for f in ["threagile", "pytm", "threat-dragon", "otm"] {
        let o1 = dir.path().join(format!("a.{f}"));
        let o2 = dir.path().join(format!("b.{f}"));
        for o in [&o1, &o2] {
            let out = causeway(&[
                "model",
                "export",
                "--data-dir",
                d,
                "--format",
                f,
                "-o",
                o.to_str().unwrap(),
            ]);
            assert!(
                out.status.success(),
                "{f}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let a = std::fs::read(&o1).unwrap();
        assert!(!a.is_empty());
        assert_eq!(
            a,
            std::fs::read(&o2).unwrap(),
            "{f} export is deterministic"
        );
    }

    // A malformed overlay refuses the export: file:line:col, nothing written.
    let notes = dir.path().join("notes.yaml");
    std::fs::write(&notes, "some-id:\n  integrity: very\n").unwrap();
    let o = dir.path().join("refused.yaml");
    let out = causeway(&[
        "model",
        "export",
        "--data-dir",
        d,
        "--format",
        "threagile",
        "--annotations",
        notes.to_str().unwrap(),
        "-o",
        o.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:2:14: integrity", notes.display())),
        "{err}"
    );
    assert!(!o.exists());
    let out = causeway(&["model", "export", "--data-dir", d, "--format", "visio"]);
    assert!(!out.status.success());
}
