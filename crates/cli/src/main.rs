//! `causeway`: the one binary. A thin `main` that parses the command line with clap and hands
//! each subcommand to its own module under `cmd/`; the work itself lives in the library
//! crates (agent, graph, store, rules), so every subcommand stays a small adapter.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "causeway",
    version,
    about = "Runtime security for Linux: see what runs, explained as cause and effect"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the eBPF sensor alone and write events as JSON lines.
    Agent(cmd::agent::Args),
    /// Feed recorded JSON-lines events into the store, as if they had arrived live.
    Ingest(cmd::ingest::Args),
    /// Search stored events.
    Events(cmd::events::Args),
    /// One node: agent, graph, store, detection, HTTP API and web UI.
    Up(cmd::up::Args),
    /// The HTTP API and web UI over an existing data directory (no agent).
    Server(cmd::up::Args),
    /// Detection rules: validate files, test them against recorded events.
    Rules(cmd::rules::Args),
    /// Workload policies: learn, validate, diff (dry run), merge.
    Policy(cmd::policy::Args),
    /// Generate a detection rule from a past incident, for review (never applied).
    Rule(cmd::rule::Args),
    /// Incidents raised, or one incident with its causal trace.
    Incidents(cmd::incidents::Args),
    /// Walk the causal graph backward (what caused it) or forward (what it caused) from a process.
    Trace(cmd::trace::Args),
    /// The threat model derived from the store: show or export.
    Model(cmd::model::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAUSEWAY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent(a) => cmd::agent::run(a),
        Command::Ingest(a) => cmd::ingest::run(a),
        Command::Events(a) => cmd::events::run(a),
        Command::Trace(a) => cmd::trace::run(a),
        Command::Up(a) => cmd::up::run(a),
        Command::Server(a) => cmd::up::run_server(a),
        Command::Incidents(a) => cmd::incidents::run(a),
        Command::Rules(a) => cmd::rules::run(a),
        Command::Policy(a) => cmd::policy::run(a),
        Command::Rule(a) => cmd::rule::run(a),
        Command::Model(a) => cmd::model::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("causeway: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
