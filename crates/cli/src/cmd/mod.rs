//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<ExitCode>`.

pub mod agent;
pub mod events;
pub mod ingest;
pub mod trace;
