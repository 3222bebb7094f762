//! `causeway model show|export`: replay the store through a fresh process index and a
//! `ModelBuilder` (the index first, as the node does), then print or export the model.

use anyhow::Context;
use causeway_index::ProcessIndex;
use causeway_store::Store;
use causeway_threatmodel::export::{Annotated, Meta};
use causeway_threatmodel::{export, Annotations, Format, ModelBuilder, ThreatModel};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand)]
pub enum Sub {
    /// Print the model derived from the store.
    Show {
        #[arg(long)]
        data_dir: PathBuf,
        /// The whole model as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Export the model: threagile, pytm, threat-dragon or otm.
    Export {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        format: String,
        /// Annotations overlay (YAML keyed by stable ids), merged into the export.
        #[arg(long)]
        annotations: Option<PathBuf>,
        /// Write here instead of stdout.
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
}

fn build(dir: &Path) -> anyhow::Result<ThreatModel> {
    let store = super::events::open_existing(dir)?;
    let mut index = ProcessIndex::new();
    let mut builder = ModelBuilder::default();
    store
        .replay(&mut |e| {
            index.observe(&e);
            builder.observe(&index, &e);
        })
        .context("replaying the store")?;
    Ok(builder.finish(&index))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Show { data_dir, json } => {
            let m = build(&data_dir)?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            if json {
                serde_json::to_writer_pretty(&mut out, &m)?;
                writeln!(out)?;
            } else {
                show(&mut out, &m)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Sub::Export {
            data_dir,
            format,
            annotations,
            output,
        } => {
            let f = Format::parse(&format).with_context(|| {
                format!("unknown format {format:?}; one of threagile, pytm, threat-dragon, otm")
            })?;
            // Load the overlay before any work: a malformed file refuses the whole export.
            let notes = match &annotations {
                Some(p) => Annotations::load(p)?,
                None => Annotations::default(),
            };
            let m = build(&data_dir)?;
            for id in notes.check(&m)? {
                eprintln!(
                    "causeway: annotation for {id} matches no element of this model (kept, unused)"
                );
            }
            let meta = Meta {
                title: format!("causeway runtime model ({})", data_dir.display()),
                date: causeway_model::timefmt::Timestamp::now().to_rfc3339()[..10].to_string(),
            };
            let text = export(
                &Annotated {
                    model: &m,
                    notes: &notes,
                    meta: &meta,
                },
                f,
            );
            match output {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => std::io::stdout().lock().write_all(text.as_bytes())?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn show(out: &mut impl Write, m: &ThreatModel) -> std::io::Result<()> {
    let safe = super::trace::safe;
    writeln!(out, "workloads ({}):", m.workloads.len())?;
    for w in m.workloads.values() {
        writeln!(
            out,
            "  {} {} [{:?}{}] {} process(es)",
            w.id,
            safe(&w.name),
            w.kind,
            if w.datastore { ", datastore" } else { "" },
            w.processes
        )?;
    }
    writeln!(out, "entry points ({}):", m.entry_points.len())?;
    for e in m.entry_points.values() {
        let r = &e.reached;
        writeln!(
            out,
            "  {} {}/{} on {} {} reached: {} local, {} workload(s), {} external",
            e.id,
            e.transport,
            e.port,
            safe(m.name_of(&e.workload)),
            if e.exposed { "exposed" } else { "loopback" },
            r.local,
            r.workloads.len(),
            r.external
        )?;
    }
    writeln!(out, "flows ({}; bytes not recorded):", m.flows.len())?;
    for f in m.flows.values() {
        writeln!(
            out,
            "  {} -> {} {}/{} {} x{}",
            safe(m.name_of(f.source.id())),
            safe(m.name_of(f.target.id())),
            f.transport,
            f.port,
            f.protocol,
            f.connections
        )?;
    }
    writeln!(out, "trust boundaries ({}):", m.boundaries.len())?;
    for b in m.boundaries.values() {
        writeln!(
            out,
            "  {} {} parent={} members={}",
            b.id,
            safe(&b.name),
            b.parent.as_deref().unwrap_or("-"),
            b.members.len()
        )?;
    }
    writeln!(out, "data assets ({}):", m.data_assets.len())?;
    for d in m.data_assets.values() {
        let readers: Vec<String> = d
            .readers
            .keys()
            .map(|r| safe(m.name_of(r)).to_string())
            .collect();
        writeln!(out, "  {} read by {}", d.id, readers.join(", "))?;
    }
    Ok(())
}
