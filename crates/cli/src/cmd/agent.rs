//! `causeway agent`: run the sensor alone, writing events as JSON lines to stdout or a file.
//! Exits 0 on SIGINT/SIGTERM after flushing, and prints the seen/lost counters to stderr.

use causeway_agent::{AgentConfig, Sink, Stats};
use causeway_model::{Event, Process};
use std::collections::HashMap;
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
    procs: ProcessJson,
    line: Vec<u8>,
}

/// The serialized JSON of each shared process object: the agent hands the same `Arc` to
/// every event of a process image, so its JSON (most of a line: argv, exe, cwd, container)
/// is made once, not per event. The cache holds the `Arc`s it has seen, so an address in it
/// is never reused by another process object; it is cleared when it reaches its bound.
struct ProcessJson {
    by_ptr: HashMap<usize, (Arc<Process>, Vec<u8>)>,
    placeholder: Arc<Process>,
    /// `"process":` followed by the placeholder's JSON, as it appears in a line.
    placeholder_field: Vec<u8>,
}

const PROCESS_JSON_MAX: usize = 8192;

impl ProcessJson {
    fn new() -> anyhow::Result<ProcessJson> {
        let placeholder = Arc::new(Process::default());
        let mut placeholder_field = b"\"process\":".to_vec();
        serde_json::to_writer(&mut placeholder_field, &*placeholder)?;
        Ok(ProcessJson {
            by_ptr: HashMap::new(),
            placeholder,
            placeholder_field,
        })
    }

    /// Write `event` as one JSON line into `line`, byte for byte what serializing the event
    /// whole gives: the event is serialized with a placeholder process, whose JSON is then
    /// replaced by the cached JSON of the real one. The first match of `"process":` plus the
    /// placeholder's JSON is the field: that text holds quotes, which inside any string
    /// value would be escaped, so no value before it can contain it.
    fn write_line(&mut self, mut event: Event, line: &mut Vec<u8>) -> serde_json::Result<()> {
        line.clear();
        let process = std::mem::replace(&mut event.process, Arc::clone(&self.placeholder));
        serde_json::to_writer(&mut *line, &event)?;
        let at = line
            .windows(self.placeholder_field.len())
            .position(|w| w == self.placeholder_field.as_slice());
        let Some(at) = at else {
            // Not the shape we expect: serialize it whole rather than guess.
            event.process = process;
            line.clear();
            return serde_json::to_writer(&mut *line, &event);
        };
        if self.by_ptr.len() >= PROCESS_JSON_MAX {
            self.by_ptr.clear();
        }
        let key = Arc::as_ptr(&process) as usize;
        let (_, json) = match self.by_ptr.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let json = serde_json::to_vec(&*process)?;
                v.insert((process, json))
            }
        };
        let start = at + b"\"process\":".len();
        let end = at + self.placeholder_field.len();
        line.splice(start..end, json.iter().copied());
        Ok(())
    }
}

impl<W: Write> Sink for JsonLines<W> {
    fn send(&mut self, event: Event) -> bool {
        if self.failed {
            return false;
        }
        let mut line = std::mem::take(&mut self.line);
        let ok = self.procs.write_line(event, &mut line).is_ok()
            && self.out.write_all(&line).is_ok()
            && self.out.write_all(b"\n").is_ok();
        self.line = line;
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
        procs: ProcessJson::new()?,
        line: Vec::with_capacity(4096),
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

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_model::{File, Host, Kind, Repeat};

    /// The cached-process line is byte for byte the whole-event serialization, for events
    /// sharing a process and for a process whose strings hold quotes and `"process":`.
    #[test]
    fn cached_process_lines_equal_plain_serialization() {
        let mut procs = ProcessJson::new().expect("placeholder");
        let p = Arc::new(Process {
            id: "p-1".into(),
            pid: 42,
            exe: "/bin/\"process\":{}".into(),
            argv: vec!["sh".into(), "-c".into(), "echo \"process\":1".into()],
            ..Default::default()
        });
        let host = Host {
            name: "h\"process\":x".into(),
            id: "id".into(),
        };
        let mut line = Vec::new();
        for i in 0..3u64 {
            let mut e = Event::new(
                causeway_model::timefmt::Timestamp(i as i64),
                Kind::FileOpen,
                host.clone(),
                Arc::clone(&p),
            );
            e.file = Some(File {
                path: format!("/tmp/{i}"),
                write: true,
                ..Default::default()
            });
            e.repeat = (i == 2).then_some(Repeat {
                count: 7,
                last_time: causeway_model::timefmt::Timestamp(9),
            });
            let want = serde_json::to_vec(&e).expect("plain");
            procs.write_line(e, &mut line).expect("cached");
            assert_eq!(
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(&want)
            );
        }
        assert_eq!(procs.by_ptr.len(), 1, "one process, serialized once");
    }
}
