//! Validation errors name file:line:col, and a bad file loads nothing.

use causeway_rules::Ruleset;
use std::path::Path;

fn errors(text: &str) -> Vec<String> {
    let l = Ruleset::from_sources(&[(Path::new("r.yaml"), text)]);
    if !l.errors.is_empty() {
        assert!(l.ruleset.rules().is_empty(), "a bad file must load nothing");
    }
    l.errors.iter().map(|e| e.to_string()).collect()
}

const HEAD: &str =
    "rules:\n  - id: X-1\n    title: t\n    tactic: execution\n    techniques: [T1059]\n";

#[test]
fn valid_file_loads() {
    let e = errors(&format!("{HEAD}    severity: low\n    condition: event.process.name == 'sh'\n    kinds: [process.exec]\n"));
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn unknown_field() {
    let e = errors(&format!(
        "{HEAD}    severity: low\n    condition: 'true'\n    sevrity: low\n"
    ));
    assert_eq!(e, vec!["r.yaml:8:5: unknown field `sevrity` in a rule"]);
}

#[test]
fn bad_severity() {
    let e = errors(&format!(
        "{HEAD}    severity: urgent\n    condition: 'true'\n"
    ));
    assert_eq!(
        e,
        vec!["r.yaml:6:15: bad severity `urgent`: use info, low, medium, high or critical"]
    );
}

#[test]
fn bad_technique() {
    let e = errors("rules:\n  - id: X-1\n    title: t\n    tactic: execution\n    techniques: [T1059, t10]\n    severity: low\n    condition: 'true'\n");
    assert_eq!(
        e,
        vec!["r.yaml:5:25: bad ATT&CK technique id `t10`: expected T1234 or T1234.567"]
    );
}

#[test]
fn cel_syntax_error_inside_block_condition() {
    let e = errors(&format!("{HEAD}    severity: low\n    condition: |\n      event.process.name == 'sh' &&\n        event.process.pid +* 2\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    // Line 9 of the file, the `*` at column 28.
    assert!(e[0].starts_with("r.yaml:9:28: CEL: "), "{e:?}");
}

#[test]
fn cel_error_in_single_line_condition() {
    let e = errors(&format!(
        "{HEAD}    severity: low\n    condition: event.process.name == \n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("r.yaml:7:"), "{e:?}");
}

#[test]
fn unknown_macro_or_list() {
    let e = errors(&format!(
        "{HEAD}    severity: low\n    condition: is_shel && event.process.name in shellz\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("r.yaml:7:16: unknown name `is_shel`"),
        "{e:?}"
    );
    let e = errors(&format!("lists:\n  shells: [sh]\nmacros:\n  is_shell: event.process.name in shells\n{HEAD}    severity: low\n    condition: is_shell && event.process.name in shellz\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("r.yaml:11:50: unknown name `shellz`"),
        "{e:?}"
    );
}

#[test]
fn bad_regex_is_an_error() {
    let e = errors(&format!(
        "{HEAD}    severity: low\n    condition: event.process.name.matches('(unclosed')\n"
    ));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("r.yaml:7:") && e[0].contains("regex"),
        "{e:?}"
    );
}

#[test]
fn yaml_syntax_error_has_position() {
    let e = errors("rules:\n  - id: [unclosed\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("r.yaml:"), "{e:?}");
}

#[test]
fn missing_fields_and_duplicates() {
    let e = errors("rules:\n  - id: A\n    title: t\n");
    assert!(e.iter().any(|m| m.contains("missing `condition`")), "{e:?}");
    let e = errors(&format!("{HEAD}    severity: low\n    condition: 'true'\n  - id: X-1\n    title: t\n    tactic: execution\n    techniques: [T1059]\n    severity: low\n    condition: 'true'\n"));
    assert!(
        e.iter()
            .any(|m| m.starts_with("r.yaml:8:5: duplicate rule id `X-1`")),
        "{e:?}"
    );
}

#[test]
fn one_bad_file_does_not_poison_others() {
    let good = format!("{HEAD}    severity: low\n    condition: 'true'\n");
    let bad = "rules:\n  - id: Y-1\n    title: t\n    tactic: nope\n    techniques: [T1059]\n    severity: low\n    condition: 'true'\n";
    let l = Ruleset::from_sources(&[
        (Path::new("good.yaml"), good.as_str()),
        (Path::new("bad.yaml"), bad),
    ]);
    assert_eq!(l.errors.len(), 1);
    assert_eq!(
        l.errors[0].to_string(),
        "bad.yaml:4:13: unknown ATT&CK tactic `nope` (e.g. execution, persistence)"
    );
    assert_eq!(l.ruleset.rules().len(), 1);
}

#[test]
fn hostile_input_does_not_panic() {
    for text in [
        "",
        "[",
        "rules: 5",
        "rules: [1, 2]",
        "lists: {a: [[]]}",
        &"[".repeat(500),
        "macros: {a: 'a'}",
        "\u{0}\u{ffff}",
    ] {
        let _ = errors(text);
    }
}
