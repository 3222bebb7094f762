//! Serve a [`MemoryBackend`] loaded from a fixture: the UI's dev/test server. Not the product
//! (that is `causeway up`): no agent, no detection, just recorded events and incidents.
//!
//! ```text
//! cargo run -p causeway-server --example demo_server -- \
//!     --fixture crates/server/fixtures/demo-events.jsonl \
//!     --incidents crates/server/fixtures/demo-incidents.json --listen 127.0.0.1:8080
//! cargo run -p causeway-server --example demo_server -- --synthetic 1000 --big 5000
//! ```
//! `--publish-after SECS` re-publishes the first incident as a new one (`<id>-live`) after a
//! delay, to exercise the live list.

use anyhow::Context as _;
use causeway_server::memory::synthetic;
use causeway_server::{serve, MemoryBackend, ServerConfig};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
struct Args {
    /// Events, one agent JSON object per line.
    #[arg(long)]
    fixture: Option<PathBuf>,
    /// Incidents (array, or object with incidents/rules/policies/health).
    #[arg(long)]
    incidents: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Bearer token to require.
    #[arg(long)]
    token: Option<String>,
    /// Data directory (for a generated token on non-loopback addresses).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Generate this many small synthetic incidents instead of loading a fixture.
    #[arg(long, default_value_t = 0)]
    synthetic: usize,
    /// With --synthetic: one more incident of about this many nodes (`inc-big`).
    #[arg(long, default_value_t = 0)]
    big: usize,
    #[arg(long)]
    publish_after: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backend = if args.synthetic > 0 || args.big > 0 {
        let (events, incidents) = synthetic::workload(args.synthetic, args.big);
        MemoryBackend::new(events, incidents)
    } else {
        let fixture = args
            .fixture
            .context("--fixture or --synthetic is required")?;
        MemoryBackend::from_files(&fixture, args.incidents.as_deref())?
    };
    let backend = Arc::new(backend);
    if let Some(secs) = args.publish_after {
        let b = Arc::clone(&backend);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
            if let Some(mut spec) = b.specs().into_iter().next() {
                spec.id = format!("{}-live", spec.id);
                spec.title = format!("{} (live)", spec.title);
                b.publish(spec);
            }
        });
    }
    let mut config = ServerConfig::new(args.listen);
    config.token = args.token;
    config.data_dir = args.data_dir;
    serve(config, backend).await?;
    Ok(())
}
