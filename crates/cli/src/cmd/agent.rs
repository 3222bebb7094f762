//! `causeway agent`: run the sensor alone, writing events as JSON lines to stdout or a file.
//! Exits 0 on SIGINT/SIGTERM after flushing, and prints the seen/lost counters to stderr.

use causeway_agent::{AgentConfig, Sink, Stats};
use causeway_model::Event;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Where to write JSON lines: a file path, or `-` for stdout.
    #[arg(long, default_value = "-")]
    output: String,
    /// Do not report opens for writing (sensitive reads are still reported).
    #[arg(long)]
    no_file_writes: bool,
    /// Do not emit snapshot events for processes running at start.
    #[arg(long)]
    no_snapshot: bool,
    /// Extra sensitive paths (reads reported); `*` matches one path component.
    #[arg(long = "sensitive", value_name = "PATH")]
    sensitive: Vec<String>,
    /// Critical ring buffer size in KiB (rounded up to a power of two, at least one page):
    /// process, network, credential, kernel and sensitive-read records.
    #[arg(long, default_value_t = 8192)]
    ringbuf_kib: u32,
    /// Bulk ring buffer size in KiB (rounded up to a power of two): file activity.
    #[arg(long, default_value_t = 16384)]
    bulk_ringbuf_kib: u32,
    /// Put every process running this executable, and its descendants, under an executable
    /// allow-list (see --allow); repeatable.
    #[arg(long = "enforce-root", value_name = "PATH")]
    enforce_root: Vec<String>,
    /// An executable the --enforce-root workload may run (`*` matches one path component).
    #[arg(long = "allow", value_name = "PATTERN")]
    allow: Vec<String>,
    /// Only report execs outside the allow-list (default: kill them before they run).
    #[arg(long)]
    audit: bool,
    /// Write a line to this file once the probes are attached (for scripts and tests).
    #[arg(long, value_name = "PATH")]
    ready_file: Option<PathBuf>,
}

struct JsonLines<W: Write> {
    out: W,
    failed: bool,
}

impl<W: Write> Sink for JsonLines<W> {
    fn send(&mut self, event: Event) -> bool {
        if self.failed {
            return false;
        }
        let ok = serde_json::to_writer(&mut self.out, &event).is_ok()
            && self.out.write_all(b"\n").is_ok();
        if !ok {
            // A closed pipe or a full disk: stop writing, keep counting what is lost.
            self.failed = true;
        }
        ok
    }
    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// Register SIGINT/SIGTERM to raise the returned flag.
pub fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = stop_flag()?;
    let mut cfg = AgentConfig {
        file_writes: !args.no_file_writes,
        snapshot: !args.no_snapshot,
        ringbuf_bytes: args.ringbuf_kib.clamp(4, 1 << 20).next_power_of_two() << 10,
        bulk_ringbuf_bytes: args.bulk_ringbuf_kib.clamp(4, 1 << 20).next_power_of_two() << 10,
        ..Default::default()
    };
    cfg.sensitive.extend(args.sensitive);
    let out: Box<dyn Write> = if args.output == "-" {
        Box::new(std::io::stdout().lock())
    } else {
        Box::new(
            std::fs::File::create(&args.output)
                .map_err(|e| anyhow::anyhow!("{}: {e}", args.output))?,
        )
    };
    let mut sink = JsonLines {
        out: BufWriter::with_capacity(1 << 16, out),
        failed: false,
    };
    let stats = Stats::default();
    let ready_file = args.ready_file;
    let policy = (!args.enforce_root.is_empty()).then(|| causeway_agent::enforce::ExecPolicy {
        id: 1,
        mode: if args.audit {
            causeway_agent::Mode::Audit
        } else {
            causeway_agent::Mode::Enforce
        },
        root_executables: args.enforce_root.clone(),
        cgroups: Vec::new(),
        allowed: args.allow.clone(),
    });
    let policy_error = std::cell::RefCell::new(None::<String>);
    let mut ready = |r: causeway_agent::Ready| {
        if let (Some(p), Some(maps)) = (&policy, &r.policy) {
            match causeway_agent::enforce::apply(maps, p) {
                Ok(a) => tracing::info!(
                    "exec policy loaded: {} roots, {} allowed files, unresolved {:?}; denied execs stopped by {}",
                    a.roots,
                    a.allowed_files,
                    a.unresolved,
                    r.enforcement.name()
                ),
                Err(e) => {
                    // Fail closed: an enforcement that was asked for and is not in force must
                    // not look like it is.
                    *policy_error.borrow_mut() = Some(e.to_string());
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        tracing::info!("probes attached; capturing");
        if let Some(p) = &ready_file {
            let _ = std::fs::write(p, format!("{}\n", std::process::id()));
        }
    };
    causeway_agent::run(&cfg, &stop, &stats, &mut sink, &mut ready)?;
    sink.flush();
    if let Some(e) = policy_error.into_inner() {
        anyhow::bail!("the exec policy could not be loaded: {e}");
    }
    let snap = stats.snapshot();
    eprintln!("{}", serde_json::to_string(&snap)?);
    Ok(ExitCode::SUCCESS)
}
