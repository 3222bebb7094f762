//! `causeway policy learn|validate|diff|merge|apply|list`: workload policies as code (see
//! `docs/policy.md`). Learning, diffing and merging read the stored events. `apply` stores a
//! validated policy in the data directory, where `causeway up` puts every stored policy in
//! force at start; nothing is applied half-validated.

use anyhow::Context;
use causeway_model::timefmt::Timestamp;
use causeway_model::Event;
use causeway_policy::{Deviation, Policy, Selector};
use causeway_store::{SqliteOptions, SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Learn a workload's policy from the stored events; writes YAML to stdout.
    Learn(LearnArgs),
    /// Check policy files; errors as file:line:col (exit 1 when any file has one).
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// What the policy would have flagged over the stored events (the dry run).
    Diff {
        #[arg(long)]
        data_dir: PathBuf,
        file: PathBuf,
        /// RFC 3339, or a duration like 10m / 2h meaning that long ago.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Validate a policy and store it in the data directory: `causeway up` on that directory
    /// puts it in force at start (restart a running one).
    Apply {
        file: PathBuf,
        #[arg(long, default_value = super::up::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// The policies stored in the data directory, with their mode.
    List {
        #[arg(long, default_value = super::up::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Fold the deviations found in the stored events into the policy; writes YAML to stdout.
    Merge {
        file: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
    },
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("selector").required(true).args(["exe", "container", "service"])))]
struct LearnArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// The executable the workload's root runs (path or glob).
    #[arg(long)]
    exe: Option<String>,
    /// Container runtime id (or a 12+ digit prefix).
    #[arg(long)]
    container: Option<String>,
    /// systemd unit (`nginx` or `nginx.service`).
    #[arg(long)]
    service: Option<String>,
    /// RFC 3339, or a duration like 10m / 2h meaning that long ago.
    #[arg(long)]
    since: Option<String>,
    #[arg(long)]
    until: Option<String>,
    /// metadata.name (default: from the selector).
    #[arg(long)]
    name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Cmd::Learn(a) => learn(a),
        Cmd::Validate { files, json } => validate(&files, json),
        Cmd::Apply { file, data_dir } => {
            let Some(policy) = load_or_report(&file) else {
                return Ok(ExitCode::from(1));
            };
            let dest = stored_policy_path(&data_dir, &policy.name)?;
            let dir = data_dir.join(POLICY_DIR);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Write then rename: a crash never leaves a half-written policy to be loaded.
            let tmp = dest.with_extension("yaml.tmp");
            std::fs::copy(&file, &tmp).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &dest).with_context(|| format!("writing {}", dest.display()))?;
            eprintln!(
                "causeway: policy {} ({} mode) stored as {}; `causeway up --data-dir {}` puts it in force",
                safe(&policy.name),
                policy.mode.as_str(),
                dest.display(),
                data_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::List { data_dir, json } => {
            let mut rows = Vec::new();
            for f in stored_policies(&data_dir)? {
                match causeway_policy::load(&f) {
                    Ok(p) => rows.push(serde_json::json!({
                        "name": p.name, "mode": p.mode.as_str(), "file": f,
                        "selector": p.selector(), "processes": p.nodes().len(), "valid": true,
                    })),
                    Err(e) => rows.push(serde_json::json!({
                        "file": f, "valid": false,
                        "errors": e.errors.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                    })),
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else if rows.is_empty() {
                println!("no policies in {}", data_dir.display());
            } else {
                for r in &rows {
                    println!(
                        "{:<24} {:<8} {}",
                        safe(r["name"].as_str().unwrap_or("(invalid)")),
                        r["mode"].as_str().unwrap_or("-"),
                        r["file"].as_str().unwrap_or("")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Diff {
            data_dir,
            file,
            since,
            until,
            json,
        } => {
            let Some((policy, devs)) = deviations_of(&file, &data_dir, since, until)? else {
                return Ok(ExitCode::from(1));
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "policy": policy.name,
                        "deviations": devs,
                    }))?
                );
            } else {
                print_deviations(&policy, &devs);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Merge {
            file,
            data_dir,
            since,
            until,
        } => {
            let Some((policy, devs)) = deviations_of(&file, &data_dir, since, until)? else {
                return Ok(ExitCode::from(1));
            };
            eprintln!("causeway: merged {} deviation(s)", devs.len());
            print!("{}", causeway_policy::merge(&policy, &devs).to_yaml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn learn(a: LearnArgs) -> anyhow::Result<ExitCode> {
    let selector = match (a.exe, a.container, a.service) {
        (Some(e), _, _) => Selector::Exe(e),
        (_, Some(c), _) => Selector::Container(c),
        (_, _, Some(s)) => Selector::Service(s),
        _ => anyhow::bail!("one of --exe, --container, --service is required"),
    };
    let (since, until) = (time_arg(a.since.as_deref())?, time_arg(a.until.as_deref())?);
    let events = read_events(&a.data_dir)?;
    let mut p = causeway_policy::learn(&events, &selector, since, until);
    if p.process_policy.is_empty() {
        eprintln!("causeway: no process of the selected workload in the stored events");
    }
    if let Some(n) = a.name {
        p.name = n;
    }
    print!("{}", p.to_yaml());
    Ok(ExitCode::SUCCESS)
}

fn validate(files: &[PathBuf], json: bool) -> anyhow::Result<ExitCode> {
    let mut ok = true;
    let mut report = Vec::new();
    for f in files {
        match causeway_policy::validate(f) {
            Ok(p) => {
                if !json {
                    println!(
                        "{}: ok (policy {}, {} process nodes)",
                        f.display(),
                        safe(&p.name),
                        p.nodes().len()
                    );
                }
                report.push(serde_json::json!({"file": f, "ok": true, "errors": []}));
            }
            Err(e) => {
                ok = false;
                if !json {
                    for x in &e.errors {
                        eprintln!("{}", safe(&x.to_string()));
                    }
                }
                report.push(serde_json::json!({"file": f, "ok": false, "errors": e.errors}));
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A policy and its deviations over the stored events in a time window (diff and merge
/// share this); `None` when the policy file has errors (already reported).
fn deviations_of(
    file: &Path,
    data_dir: &Path,
    since: Option<String>,
    until: Option<String>,
) -> anyhow::Result<Option<(Policy, Vec<Deviation>)>> {
    let Some(policy) = load_or_report(file) else {
        return Ok(None);
    };
    let (since, until) = (time_arg(since.as_deref())?, time_arg(until.as_deref())?);
    let events = read_events(data_dir)?;
    let devs = causeway_policy::diff(&policy, &events, since, until);
    Ok(Some((policy, devs)))
}

/// Load a policy, printing its errors (file:line:col) when it has any.
fn load_or_report(file: &Path) -> Option<Policy> {
    match causeway_policy::load(file) {
        Ok(p) => Some(p),
        Err(e) => {
            for x in &e.errors {
                eprintln!("{}", safe(&x.to_string()));
            }
            None
        }
    }
}

fn print_deviations(p: &Policy, devs: &[Deviation]) {
    for d in devs {
        println!(
            "{}  {:<7}  {}  pid {}  {}: {}  [{}]",
            d.time.to_rfc3339(),
            serde_json::to_value(d.kind)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            d.event_kind,
            d.pid,
            safe(&d.exe),
            safe(&d.message),
            safe(&d.key)
        );
    }
    println!("{} deviation(s) from policy {}", devs.len(), safe(&p.name));
}

pub(crate) fn time_arg(s: Option<&str>) -> anyhow::Result<Option<Timestamp>> {
    s.map(|s| causeway_policy::parse_time(s, Timestamp::now()))
        .transpose()
        .map_err(Into::into)
}

/// Every stored event, in time order.
pub(crate) fn read_events(data_dir: &Path) -> anyhow::Result<Vec<Event>> {
    if !data_dir.join("causeway.db").exists() {
        anyhow::bail!(
            "no store at {} (run `causeway up` or `causeway ingest` first)",
            data_dir.display()
        );
    }
    let store = SqliteStore::open(data_dir, &SqliteOptions::default())
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    let mut out = Vec::new();
    store.replay(&mut |e| out.push(e))?;
    Ok(out)
}

/// Workload text for a terminal: one escaping for every subcommand (control and
/// bidirectional-override characters shown escaped, never obeyed).
pub(crate) use super::trace::safe;

/// Where `policy apply` stores policies inside a data directory.
pub const POLICY_DIR: &str = "policies";

/// The stored file of a policy name; names are workload-chosen text, so only a plain,
/// bounded file name is accepted.
fn stored_policy_path(data_dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    anyhow::ensure!(
        ok,
        "policy name {:?} is not usable as a file name (letters, digits, - _ .)",
        safe(name)
    );
    Ok(data_dir.join(POLICY_DIR).join(format!("{name}.yaml")))
}

/// Policy files stored in a data directory, sorted.
pub fn stored_policies(data_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = data_dir.join(POLICY_DIR);
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    out.sort();
    Ok(out)
}
