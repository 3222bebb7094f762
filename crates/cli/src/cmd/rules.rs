//! `causeway rules validate|test`: check rule files (every error as `file:line:col:
//! message`) and replay recorded events against rules with expected results, for users' CI.

use anyhow::Context as _;
use causeway_rules::testcase::{replay_file, TestCase};
use causeway_rules::Ruleset;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Check rule files; print every error as file:line:col: message; exit 1 on any error.
    Validate {
        /// Rule files or directories (directories: every *.yaml / *.yml in them).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print a JSON report instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replay recorded events against rules and compare with expected detections.
    ///
    /// Either give test case files (YAML: `events: FILE.jsonl`, `expect: [RULE...]`,
    /// optional `forbid`, `suppressed`, `only: true`), or `--events` with `--expect`
    /// rule ids. Without expectations, prints what fired.
    Test {
        /// Rule files or directories to load (all must be valid); repeat or comma-separate.
        #[arg(long = "rules", required = true, value_delimiter = ',')]
        rules: Vec<PathBuf>,
        /// Test case files.
        cases: Vec<PathBuf>,
        /// A JSON-lines events file to replay (instead of case files).
        #[arg(long)]
        events: Option<PathBuf>,
        /// Rule ids that must fire on `--events` (repeatable or comma-separated), or a case file.
        #[arg(long, value_delimiter = ',')]
        expect: Vec<String>,
        /// With --expect: fail if any other rule fires.
        #[arg(long)]
        only: bool,
        /// Print a JSON report instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Print to stdout, ignoring a closed pipe (`causeway rules test | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Validate { files, json } => validate(&files, json),
        Command::Test {
            rules,
            cases,
            events,
            expect,
            only,
            json,
        } => test(&rules, cases, events, expect, only, json),
    }
}

fn validate(files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let loaded = match Ruleset::load_lenient(files) {
        Ok(l) => l,
        // Unreadable files: reported like any other error.
        Err(e) => {
            if json {
                say!(
                    "{}",
                    serde_json::json!({"ok": false, "rules": 0, "errors": e.errors})
                );
            } else {
                eprintln!("{e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let ok = loaded.errors.is_empty();
    if json {
        let report = serde_json::json!({
            "ok": ok,
            "rules": loaded.ruleset.rules().len(),
            "disabled": loaded.ruleset.disabled,
            "errors": loaded.errors,
        });
        say!("{report}");
    } else {
        for e in &loaded.errors {
            eprintln!("{e}");
        }
        if ok {
            say!(
                "ok: {} rules ({} disabled), {} suppressions",
                loaded.ruleset.rules().len(),
                loaded.ruleset.disabled.len(),
                loaded.ruleset.suppressions().len()
            );
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn test(
    rule_paths: &[PathBuf],
    mut cases: Vec<PathBuf>,
    events: Option<PathBuf>,
    expect: Vec<String>,
    only: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let rules = match Ruleset::load(rule_paths) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut inline = Vec::new();
    if let Some(ev) = events {
        // `--expect FILE.yaml` names a case file whose `events` is replaced by --events.
        let (case, ids): (Option<TestCase>, Vec<String>) = match expect.as_slice() {
            [one] if one.ends_with(".yaml") || one.ends_with(".yml") => {
                (Some(TestCase::load(std::path::Path::new(one))?), Vec::new())
            }
            _ => (
                None,
                expect
                    .into_iter()
                    .filter(|s| !s.trim().is_empty())
                    .collect(),
            ),
        };
        let mut tc = case.unwrap_or_else(|| TestCase {
            expect: ids,
            only,
            ..Default::default()
        });
        tc.events = ev;
        inline.push(tc);
    }
    let mut all = Vec::new();
    for c in cases.drain(..) {
        all.push((
            c.display().to_string(),
            TestCase::load(&c).with_context(|| c.display().to_string())?,
        ));
    }
    for tc in inline {
        all.push((tc.events.display().to_string(), tc));
    }
    let mut failed = 0;
    let mut reports = Vec::new();
    for (name, tc) in &all {
        let flags = replay_file(&tc.events, &rules)?;
        let out = tc.judge(flags);
        if !out.passed() {
            failed += 1;
        }
        if json {
            reports.push(serde_json::json!({"case": name, "passed": out.passed(), "outcome": out}));
            continue;
        }
        for f in &out.flags {
            let sup = f
                .suppressed_by
                .as_deref()
                .map(|s| format!(" [suppressed by {s}]"))
                .unwrap_or_default();
            say!("  {} {} {}{sup}", f.time.to_rfc3339(), f.rule_id, f.message);
        }
        let status = if out.passed() { "PASS" } else { "FAIL" };
        say!("{status} {name}");
        for m in &out.missing {
            say!("  missing: {m}");
        }
        for m in &out.missing_suppressed {
            say!("  not suppressed as expected: {m}");
        }
        for u in &out.unexpected {
            say!("  unexpected: {u}");
        }
    }
    if json {
        say!(
            "{}",
            serde_json::json!({"passed": all.len() - failed, "failed": failed, "cases": reports})
        );
    } else {
        say!("{} passed, {} failed", all.len() - failed, failed);
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
