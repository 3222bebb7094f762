//! `causeway ingest`: replay recorded JSON-lines files (typically one per host) into the store
//! through the same pipeline as live events (reorder -> graph -> store).
//!
//! The files are merged by event time as they are read (each agent's file is in near time
//! order), so flows between hosts pair up as they would have live. Lines that do not parse are
//! reported as `file:line: reason`, counted, and skipped.

use anyhow::Context;
use causeway_model::Event;
use causeway_node::{Node, NodeConfig};
use causeway_store::Store;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Exit status: 0 when every line was ingested, 2 when some lines were \
bad (the good ones are ingested), 1 on error."
)]
pub struct Args {
    /// Directory of the store (created if missing).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// JSON-lines files as written by `causeway agent` (`-` = stdin).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Rule files or directories for detection (default: the shipped ruleset).
    #[arg(long = "rules", value_name = "PATH")]
    pub rules: Vec<PathBuf>,
}

/// One input: its reader, the next parsed event, and where we are.
struct Input {
    name: String,
    reader: Box<dyn BufRead>,
    line: u64,
    next: Option<Event>,
    done: bool,
}

/// Report at most this many bad lines per file, then only count them.
const MAX_REPORTED: u64 = 20;

impl Input {
    /// Advance to the next good event; bad lines are reported and counted in `bad`.
    fn advance(&mut self, bad: &mut u64) -> anyhow::Result<()> {
        let mut buf = Vec::new();
        self.next = None;
        while !self.done {
            buf.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .with_context(|| format!("reading {}", self.name))?;
            if n == 0 {
                self.done = true;
                break;
            }
            self.line += 1;
            let text = String::from_utf8_lossy(&buf);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match Event::from_json(text) {
                Ok(e) => {
                    self.next = Some(e);
                    break;
                }
                Err(e) => {
                    *bad += 1;
                    if *bad <= MAX_REPORTED {
                        eprintln!("{}:{}: {e}", self.name, self.line);
                    }
                }
            }
        }
        Ok(())
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut inputs = Vec::new();
    for f in &args.files {
        let reader: Box<dyn Read> = if f.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            Box::new(std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?)
        };
        inputs.push(Input {
            name: f.display().to_string(),
            reader: Box::new(BufReader::with_capacity(1 << 20, reader)),
            line: 0,
            next: None,
            done: false,
        });
    }
    // Through the same node as live events: graph, store *and* detection, so a replay raises
    // the incidents the live run would have.
    let node = Node::open(&NodeConfig {
        data_dir: args.data_dir.clone(),
        rules: args.rules.clone(),
        ..Default::default()
    })
    .with_context(|| format!("opening the store in {}", args.data_dir.display()))?;
    let mut bad = 0u64;
    for i in &mut inputs {
        i.advance(&mut bad)?;
    }
    let mut events = 0u64;
    // k-way merge by time: always take the earliest next event among the files.
    while let Some(k) = inputs
        .iter()
        .enumerate()
        .filter_map(|(k, i)| i.next.as_ref().map(|e| (e.time, k)))
        .min()
        .map(|x| x.1)
    {
        let Some(ev) = inputs[k].next.take() else {
            break;
        };
        node.submit_blocking(ev);
        events += 1;
        inputs[k].advance(&mut bad)?;
    }
    node.sync();
    let (stats, graph, lost) = {
        let core = node.core();
        let stats = core
            .pipeline
            .store()
            .stats()
            .context("reading store stats")?;
        (stats, core.pipeline.graph().stats(), core.pipeline.lost())
    };
    node.shutdown();
    if lost > 0 {
        anyhow::bail!("{lost} events could not be stored (see the log)");
    }
    if bad > MAX_REPORTED {
        eprintln!("... {} more bad lines not shown", bad - MAX_REPORTED);
    }
    if args.json {
        let summary = serde_json::json!({
            "events": events, "bad_lines": bad, "files": inputs.len(),
            "store": stats, "graph": graph,
        });
        println!("{summary}");
    } else {
        eprintln!(
            "ingested {events} events from {} file(s), {bad} bad line(s); store: {} events in {} rows, {} bytes, {} incidents; graph: {} nodes, {} edges",
            inputs.len(),
            stats.events,
            stats.rows,
            stats.bytes,
            stats.incidents,
            graph.nodes,
            graph.runs
        );
    }
    Ok(if bad > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
