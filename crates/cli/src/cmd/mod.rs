//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> Result<ExitCode>`.

pub mod agent;
pub mod events;
pub mod incidents;
pub mod ingest;
pub mod model;
pub mod policy;
pub mod rule;
pub mod rules;
pub mod trace;
pub mod up;
