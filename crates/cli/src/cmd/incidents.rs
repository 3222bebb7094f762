//! `causeway incidents [--json]` and `causeway incidents show ID [--json]`: the incidents a
//! node raised, and one incident's causal trace as a tree.

use super::trace::safe;
use causeway_node::{Node, NodeConfig};
use causeway_server::types::{IncidentDetail, Trace};
use causeway_server::{Backend, IncidentQuery};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = super::up::DEFAULT_DATA_DIR, global = true)]
    data_dir: PathBuf,
    /// JSON for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// At most this many incidents.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[command(subcommand)]
    show: Option<Show>,
}

#[derive(clap::Subcommand)]
enum Show {
    /// One incident with its flags and causal trace.
    Show { id: String },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.data_dir.join("causeway.db").exists() {
        anyhow::bail!(
            "no store at {} (run `causeway up` or `causeway ingest` first)",
            args.data_dir.display()
        );
    }
    let node = Node::open(&NodeConfig {
        data_dir: args.data_dir.clone(),
        rules: Vec::new(),
        ..Default::default()
    })?;
    let backend = node.backend(None);
    let code = match &args.show {
        None => {
            let page = backend
                .incidents(&IncidentQuery {
                    limit: args.limit.clamp(1, 1000),
                    ..Default::default()
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&page.items)?);
            } else if page.items.is_empty() {
                println!("no incidents");
            } else {
                for i in &page.items {
                    println!(
                        "{}  {:>3}  {:<8}  {}  [{}]  root {} (pid {})  last {}",
                        i.id,
                        i.score,
                        i.severity.as_str(),
                        safe(&i.title),
                        i.techniques.join(","),
                        safe(&i.root_process.exe),
                        i.root_process.pid,
                        i.last_seen.to_rfc3339()
                    );
                }
            }
            ExitCode::SUCCESS
        }
        Some(Show::Show { id }) => {
            match backend.incident(id).map_err(|e| anyhow::anyhow!("{e}"))? {
                None => {
                    eprintln!("causeway: no incident {id}");
                    ExitCode::from(1)
                }
                Some(d) if args.json => {
                    println!("{}", serde_json::to_string_pretty(&d)?);
                    ExitCode::SUCCESS
                }
                Some(d) => {
                    print_detail(&d);
                    ExitCode::SUCCESS
                }
            }
        }
    };
    node.shutdown();
    Ok(code)
}

/// Everything printed here may hold workload text (titles name executables, objects are
/// paths and command lines): it goes through `safe`, so the terminal shows it, never obeys it.
fn print_detail(d: &IncidentDetail) {
    let s = &d.summary;
    println!(
        "{}  score {}  {}  {}",
        s.id,
        s.score,
        s.severity.as_str(),
        safe(&s.title)
    );
    println!("techniques: {}", s.techniques.join(", "));
    println!(
        "hosts: {}   first {}   last {}",
        safe(&s.hosts.join(", ")),
        s.first_seen.to_rfc3339(),
        s.last_seen.to_rfc3339()
    );
    println!("flags:");
    for f in &d.flags {
        println!(
            "  {} {:<8} {} ({}) pid {} {}: {}",
            f.time.to_rfc3339(),
            f.severity.as_str(),
            f.rule_id,
            f.techniques.join(","),
            f.pid,
            safe(&f.exe),
            safe(&f.object)
        );
    }
    println!("trace:");
    print_tree(&d.trace);
}

/// The trace as an indented tree from its roots (nodes nothing points to).
pub fn print_tree(t: &Trace) {
    let mut children: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    let mut has_parent: BTreeSet<&str> = BTreeSet::new();
    for e in &t.edges {
        children
            .entry(e.source.as_str())
            .or_default()
            .push((e.target.as_str(), e.kind.as_str()));
        has_parent.insert(e.target.as_str());
    }
    let label: BTreeMap<&str, (&str, bool)> = t
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), (n.label.as_str(), n.flagged)))
        .collect();
    let mut seen = BTreeSet::new();
    fn walk<'a>(
        id: &'a str,
        via: &str,
        depth: usize,
        children: &BTreeMap<&'a str, Vec<(&'a str, &'a str)>>,
        label: &BTreeMap<&str, (&str, bool)>,
        seen: &mut BTreeSet<&'a str>,
    ) {
        let (l, flagged) = label.get(id).copied().unwrap_or((id, false));
        let mark = if flagged { "  <== flagged" } else { "" };
        let via = if via.is_empty() {
            String::new()
        } else {
            format!("-{via}-> ")
        };
        // Workload text: one line per node, control characters shown, not obeyed.
        let text = safe(&l.chars().take(160).collect::<String>());
        println!("{}{via}{text}{mark}", "  ".repeat(depth + 1));
        if !seen.insert(id) || depth > 40 {
            return;
        }
        for (c, k) in children.get(id).into_iter().flatten() {
            walk(c, k, depth + 1, children, label, seen);
        }
    }
    for n in t
        .nodes
        .iter()
        .filter(|n| !has_parent.contains(n.id.as_str()))
    {
        walk(&n.id, "", 0, &children, &label, &mut seen);
    }
}
