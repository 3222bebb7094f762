//! Causeway's host sensor. It loads the eBPF probes, reads `/proc` once so processes that
//! were already running have their lineage, and turns every kernel record into an event of
//! the public JSON contract, enriched from a process table (image, argv, cwd, container) so
//! each event stands on its own.
//!
//! Key design choice: one consumer thread owns the probes, the process table and the
//! conversion, so the hot path takes no locks; sinks receive finished events. Every event
//! that is lost anywhere (ring buffer full, syscall table full, undecodable record, sink
//! refusing) is counted by cause and kind in [`Stats`], which other threads read.
//!
//! Events come in two lanes (`Event::lane`): the kernel gives file activity its own ring
//! and folds its repeats (events with `repeat` set), and the consumer drains the critical
//! ring first, so a sink sees critical events ahead of a bulk backlog; events of the two
//! lanes are therefore not in time order with each other.

pub mod cgroups;
pub mod container;
pub mod convert;
pub mod enforce;
pub mod fold;
pub mod host;
pub mod procfs;
pub mod sensitive;
pub mod stats;
pub mod table;

pub use causeway_probes::{preflight, ProbeError};
pub use stats::{Stats, StatsSnapshot};

use causeway_model::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What the agent captures.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Report opens for writing (reads of sensitive files are always reported).
    pub file_writes: bool,
    /// Sensitive-file patterns (see [`sensitive::DEFAULT_SENSITIVE`]).
    pub sensitive: Vec<String>,
    /// Critical ring buffer size in bytes (power of two): lifecycle, network, credentials,
    /// ptrace, kernel loads, mounts, memfds, sensitive reads.
    pub ringbuf_bytes: u32,
    /// Bulk ring buffer size in bytes (power of two): file activity, which can flood.
    pub bulk_ringbuf_bytes: u32,
    /// Emit a `process.exec` with `exec.snapshot = true` for every process already running.
    pub snapshot: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            file_writes: true,
            sensitive: sensitive::DEFAULT_SENSITIVE
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ringbuf_bytes: 8 << 20,
            // At 45k file events/s of ~200 bytes, 16 MiB holds well over a second of backlog
            // before aggregation even folds any of it; the consumer polls every 20 ms.
            bulk_ringbuf_bytes: 16 << 20,
            snapshot: true,
        }
    }
}

/// Where events go. Returning `false` means the sink dropped the event (counted).
pub trait Sink {
    fn send(&mut self, event: Event) -> bool;
    /// Called about every 100 ms and at the end.
    fn flush(&mut self) {}
}

impl<F: FnMut(Event) -> bool> Sink for F {
    fn send(&mut self, event: Event) -> bool {
        self(event)
    }
}

/// Handed to the caller once the probes are attached.
#[derive(Debug)]
pub struct Ready {
    /// The kernel's enforcement tables, usable from any thread.
    pub policy: Option<causeway_probes::PolicyMaps>,
    /// How denied execs are stopped on this kernel.
    pub enforcement: causeway_probes::Enforcement,
}

pub use causeway_probes::{Enforcement, Mode, PolicyMaps};

/// Load the probes and run until `stop` is set; then drain, flush and return.
/// `ready` is called once the probes are attached (tests and `up` wait for it).
pub fn run(
    cfg: &AgentConfig,
    stop: &AtomicBool,
    stats: &Stats,
    sink: &mut dyn Sink,
    ready: &mut dyn FnMut(Ready),
) -> Result<(), ProbeError> {
    stats.set_state("loading");
    let probes = causeway_probes::Probes::load(&causeway_probes::Config {
        agent_tgid: std::process::id(),
        file_writes: cfg.file_writes,
        ringbuf_bytes: cfg.ringbuf_bytes,
        bulk_ringbuf_bytes: cfg.bulk_ringbuf_bytes,
    })
    .inspect_err(|e| stats.set_state(&format!("failed: {e}")))?;
    let host = host::HostInfo::detect();
    let mut conv = convert::Converter::new(host);
    let resolve_sensitive = |probes: &causeway_probes::Probes| {
        for (dev, ino, path) in sensitive::resolve(&cfg.sensitive) {
            if let Err(e) = probes.add_sensitive(dev, ino) {
                tracing::warn!("sensitive path {}: {e}", path.display());
            }
        }
    };
    resolve_sensitive(&probes);

    // Attach first, then read /proc: a process that starts in between is seen by both, and
    // the table simply gets the same facts twice; the other order would miss it.
    if cfg.snapshot {
        for p in procfs::snapshot() {
            if p.pid == std::process::id() {
                continue;
            }
            let ev = conv.snapshot_event(&p);
            let kind = ev.kind;
            stats.seen(kind);
            if !sink.send(ev) {
                stats.sink_dropped(kind);
            }
        }
    }
    stats.set_state("running");
    let policy = probes
        .policy_maps()
        .inspect_err(|e| tracing::warn!("enforcement maps unavailable: {e}"))
        .ok();
    let enforcement = probes.enforcement().clone();
    stats.set_enforcement(enforcement.name());
    ready(Ready {
        policy,
        enforcement,
    });
    let mut ticks = 0u64;
    // Both callbacks run on this thread, one at a time; the RefCell only satisfies the
    // borrow checker that they never overlap.
    let state = std::cell::RefCell::new((conv, sink));
    probes.run(
        stop,
        Duration::from_millis(100),
        |bytes| {
            let Ok(mut st) = state.try_borrow_mut() else {
                return;
            };
            let (conv, sink) = &mut *st;
            match causeway_abi::decode(bytes) {
                Ok(rec) => match conv.convert(&rec) {
                    Some(ev) => {
                        let kind = ev.kind;
                        stats.seen(kind);
                        if !sink.send(ev) {
                            stats.sink_dropped(kind);
                        }
                    }
                    None => stats.decode_error(),
                },
                Err(e) => {
                    stats.decode_error();
                    tracing::debug!("undecodable record: {e}");
                }
            }
        },
        |p| {
            ticks += 1;
            match p.counters() {
                Ok(c) => stats.set_kernel(&c),
                Err(e) => tracing::warn!("reading counters: {e}"),
            }
            let Ok(mut st) = state.try_borrow_mut() else {
                return;
            };
            let (conv, sink) = &mut *st;
            stats.set_repeat_unjoined(conv.folds.unjoined);
            sink.flush();
            // Every 10 s: forget exited processes, re-resolve replaced sensitive files.
            if ticks.is_multiple_of(100) {
                conv.table.purge(host::boot_ns() as u64);
                conv.folds.purge(host::boot_ns() as u64);
                resolve_sensitive(p);
            }
        },
    )?;
    stats.set_state("stopped");
    Ok(())
}

/// Convenience for tests and tools: has the stop flag been raised?
pub fn stopped(stop: &AtomicBool) -> bool {
    stop.load(Ordering::Relaxed)
}
