//! `causeway rule from-incident ID --data-dir DIR`: a detection rule generalised from a past
//! incident's causal pattern, printed for review. It is never applied: a person reads it,
//! tests it (`causeway rules test`) and adds it to a rules directory.

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Print a rule (YAML) that catches a re-run of this incident's attack.
    FromIncident {
        id: String,
        #[arg(long)]
        data_dir: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Cmd::FromIncident { id, data_dir } = args.cmd;
    let events = super::policy::read_events(&data_dir)?;
    let store =
        causeway_store::SqliteStore::open(&data_dir, &causeway_store::SqliteOptions::default())?;
    let doc = causeway_store::Store::get_incident(&store, &id)?;
    let Some(doc) = doc else {
        eprintln!("causeway: no incident {}", super::policy::safe(&id));
        return Ok(ExitCode::from(1));
    };
    let yaml = causeway_policy::rule_from_incident(&doc.json, &events)?;
    eprintln!(
        "causeway: generated for review; not applied. Add it to a rules directory to use it."
    );
    print!("{yaml}");
    Ok(ExitCode::SUCCESS)
}
