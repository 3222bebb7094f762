//! The shipped ruleset (rules/ at the repo root) loads without errors.

use causeway_rules::Ruleset;
use std::path::PathBuf;

fn rules_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

#[test]
fn shipped_ruleset_validates() {
    let loaded = Ruleset::load_lenient(&[rules_dir()]).expect("read rules dir");
    for e in &loaded.errors {
        eprintln!("{e}");
    }
    assert!(loaded.errors.is_empty(), "{} errors", loaded.errors.len());
    assert!(
        loaded.ruleset.rules().len() >= 60,
        "only {} rules",
        loaded.ruleset.rules().len()
    );
    for r in loaded.ruleset.rules() {
        assert!(!r.techniques.is_empty(), "{}", r.id);
        assert!(!r.kinds.is_empty(), "{}", r.id);
    }
}
