//! `causeway trace`: walk the causal graph from a process, backward (what caused it) or
//! forward (what it caused). `--json` prints `{"nodes": [...], "edges": [...]}`; otherwise an
//! indented tree. The graph is rebuilt from the store on each run.

use anyhow::Context;
use causeway_graph::{Direction, Graph, GraphConfig, Trace, TraceQuery};
use causeway_store::Store;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Dir {
    Backward,
    Forward,
}

#[derive(clap::Args)]
pub struct Args {
    /// Directory of the store.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Process id (`p-...`, as in events) or a node id from a previous trace.
    pub process_id: String,
    #[arg(long, value_enum, default_value_t = Dir::Backward)]
    pub direction: Dir,
    /// Maximum number of edges from the process (default: unbounded).
    #[arg(long)]
    pub depth: Option<u32>,
    /// Only edges at or after this time (RFC 3339 or a duration ago like `2h`).
    #[arg(long)]
    pub since: Option<String>,
    /// Only edges at or before this time.
    #[arg(long)]
    pub until: Option<String>,
    /// Print `{"nodes": [...], "edges": [...]}`.
    #[arg(long)]
    pub json: bool,
}

/// Make workload-controlled text safe for a terminal: control characters and bidi overrides
/// are shown escaped instead of being interpreted.
pub(crate) fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control()
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
            {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let store = super::events::open_existing(&args.data_dir)?;
    let mut graph = Graph::new(GraphConfig::default());
    store
        .replay(&mut |e| {
            graph.apply(&e);
        })
        .context("rebuilding the graph from the store")?;
    let q = TraceQuery {
        direction: match args.direction {
            Dir::Backward => Direction::Backward,
            Dir::Forward => Direction::Forward,
        },
        depth: args.depth,
        since: args
            .since
            .as_deref()
            .map(super::events::parse_time)
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(super::events::parse_time)
            .transpose()?,
        ..TraceQuery::backward()
    };
    let trace = match graph.trace_process(&args.process_id, &q) {
        Some(t) => t,
        None => match graph.find_key(&args.process_id) {
            Some(n) => graph.trace(n, &q),
            None => anyhow::bail!(
                "unknown process {:?} in {}",
                args.process_id,
                args.data_dir.display()
            ),
        },
    };
    if args.json {
        println!("{}", serde_json::to_string(&trace)?);
    } else {
        print!("{}", tree(&trace, q.direction));
    }
    Ok(ExitCode::SUCCESS)
}

/// Render a trace as an indented tree rooted at its start node.
fn tree(t: &Trace, dir: Direction) -> String {
    let mut out = String::new();
    let Some(root) = t.nodes.first() else {
        return out;
    };
    let by_id: HashMap<&str, &causeway_graph::TraceNode> =
        t.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut children: HashMap<&str, Vec<&causeway_graph::TraceEdge>> = HashMap::new();
    for e in &t.edges {
        let parent = if dir == Direction::Backward {
            &e.to
        } else {
            &e.from
        };
        children.entry(parent.as_str()).or_default().push(e);
    }
    for v in children.values_mut() {
        v.sort_by_key(|e| e.time);
    }
    let node_text = |id: &str| match by_id.get(id) {
        Some(n) => format!("{} ({})", safe(&n.label), n.kind.as_str()),
        None => safe(id),
    };
    out.push_str(&format!("{}  [{}]\n", node_text(&root.id), safe(&root.id)));
    let mut seen = HashSet::new();
    seen.insert(root.id.as_str());
    let mut stack: Vec<(&str, String)> = vec![(root.id.as_str(), String::new())];
    // Depth-first, iterative so a deep trace cannot overflow the stack.
    let mut frames: Vec<(Vec<&causeway_graph::TraceEdge>, usize, String)> = Vec::new();
    if let Some((id, prefix)) = stack.pop() {
        frames.push((children.get(id).cloned().unwrap_or_default(), 0, prefix));
    }
    while let Some((edges, i, prefix)) = frames.pop() {
        if i >= edges.len() {
            continue;
        }
        let e = edges[i];
        let last = i + 1 == edges.len();
        frames.push((edges.clone(), i + 1, prefix.clone()));
        let next = if dir == Direction::Backward {
            e.from.as_str()
        } else {
            e.to.as_str()
        };
        let arrow = if dir == Direction::Backward {
            "<-"
        } else {
            "->"
        };
        let count = if e.count > 1 {
            format!(" x{}", e.count)
        } else {
            String::new()
        };
        let again = !seen.insert(next);
        out.push_str(&format!(
            "{prefix}{} {arrow} {} {}{count}  {}{}\n",
            if last { "└─" } else { "├─" },
            e.kind.as_str(),
            e.time.to_rfc3339(),
            node_text(next),
            if again { "  (see above)" } else { "" }
        ));
        if !again {
            let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
            frames.push((
                children.get(next).cloned().unwrap_or_default(),
                0,
                child_prefix,
            ));
        }
    }
    if t.truncated {
        out.push_str("(truncated)\n");
    }
    out
}
