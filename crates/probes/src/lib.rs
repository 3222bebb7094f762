//! Loads Causeway's eBPF probes (C, CO-RE, built by `build.rs` into a libbpf-rs skeleton),
//! attaches them, and drains their two ring buffers (critical first, then the bulk lane of
//! file activity) into a callback as raw records; it also runs the kernel's fold-table sweep.
//!
//! Key design choice: the core probes use only tp_btf and raw_tp programs, which every kernel
//! Causeway targets accepts (no kprobes, no tracefs, no BPF trampolines), so the core is one
//! all-or-nothing libbpf object. Optional program types (BPF-LSM) belong in their own objects,
//! tried separately so a kernel that refuses them keeps the core running. A load failure is
//! reported with the program's name and the verifier's log, captured from libbpf's printer.

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, RingBufferBuilder};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/causeway.skel.rs"));
}

mod lsm_skel {
    #![allow(clippy::all, clippy::unwrap_used, missing_docs, unsafe_op_in_unsafe_fn)]
    include!(concat!(env!("OUT_DIR"), "/causeway_lsm.skel.rs"));
}

pub use causeway_abi::raw::cw_counters;
use causeway_abi::{bytes_of, raw};

/// How denied execs are stopped on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// BPF-LSM `bprm_check_security` refuses the exec with EPERM.
    LsmDeny,
    /// BPF-LSM is not available (the reason is kept): the exec tracepoint kills the process
    /// with SIGKILL before its first instruction.
    KillAtExec { lsm_error: String },
}

impl Enforcement {
    /// Short name for health and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Enforcement::LsmDeny => "bpf_lsm",
            Enforcement::KillAtExec { .. } => "bpf_send_signal",
        }
    }
}

/// Errors from loading or running the probes.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("eBPF needs root (CAP_BPF and CAP_PERFMON or CAP_SYS_ADMIN); running as uid {0}")]
    NotRoot(u32),
    #[error(
        "kernel BTF not found at /sys/kernel/btf/vmlinux: the kernel needs CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf,
    #[error("opening the BPF object: {0}")]
    Open(String),
    #[error("loading the BPF programs failed: {error}\n{log}")]
    Load { error: String, log: String },
    #[error("attaching program {program}: {error}")]
    Attach { program: String, error: String },
    #[error("ring buffer: {0}")]
    RingBuffer(String),
    #[error("process {0} is PID 1 or the agent: it can never be put under a policy")]
    Protected(u32),
    #[error("map {map}: {error}")]
    Map { map: &'static str, error: String },
}

/// What the loader sets before load.
#[derive(Debug, Clone)]
pub struct Config {
    /// Events of this process (the agent) are dropped in the kernel.
    pub agent_tgid: u32,
    /// Report opens for writing (reads of sensitive files are always reported).
    pub file_writes: bool,
    /// Critical ring buffer size in bytes (a power of two, at least one page).
    pub ringbuf_bytes: u32,
    /// Bulk ring buffer (file activity) size in bytes (a power of two, at least one page).
    pub bulk_ringbuf_bytes: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            agent_tgid: std::process::id(),
            file_writes: true,
            ringbuf_bytes: 8 << 20,
            bulk_ringbuf_bytes: 16 << 20,
        }
    }
}

/// Counters summed over CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Indexed by the kernel's kind number (`enum cw_kind`, equal to `Kind::code`).
    pub emitted: [u64; raw::cw_kind_CW_KIND_MAX as usize],
    /// Lost for want of room in the critical ring.
    pub lost: [u64; raw::cw_kind_CW_KIND_MAX as usize],
    /// Lost for want of room in the bulk ring (file activity).
    pub bulk_lost: [u64; raw::cw_kind_CW_KIND_MAX as usize],
    pub truncated: u64,
    pub inflight_lost: u64,
    /// Occurrences folded into a later repeat record (not lost), by kind number.
    pub folded: [u64; raw::cw_kind_CW_KIND_MAX as usize],
    /// Occurrences sent in full because the fold table was full.
    pub agg_full: u64,
    /// Idle fold-table entries the sweep removed.
    pub agg_deleted: u64,
}

impl Counters {
    pub fn total_emitted(&self) -> u64 {
        self.emitted.iter().sum()
    }
    pub fn total_lost(&self) -> u64 {
        self.lost.iter().sum::<u64>() + self.bulk_lost.iter().sum::<u64>() + self.inflight_lost
    }
}

/// Last lines libbpf printed, so a load failure can show the verifier's log.
static LIBBPF_LOG: Mutex<String> = Mutex::new(String::new());

fn libbpf_print(level: libbpf_rs::PrintLevel, msg: String) {
    if let Ok(mut log) = LIBBPF_LOG.lock() {
        // Keep the tail: the verifier's verdict is at the end of its log.
        if log.len() > 64 * 1024 {
            let cut = log.len() - 32 * 1024;
            let cut = (cut..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(0);
            log.drain(..cut);
        }
        log.push_str(&msg);
    }
    if level == libbpf_rs::PrintLevel::Warn {
        tracing::debug!(target: "libbpf", "{}", msg.trim_end());
    }
}

fn take_log() -> String {
    LIBBPF_LOG
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default()
}

/// Check that this process can load BPF at all, with a clear message when it cannot.
pub fn preflight() -> Result<(), ProbeError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Err(ProbeError::NotRoot(euid));
    }
    if !std::path::Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Err(ProbeError::NoBtf);
    }
    Ok(())
}

/// The loaded and attached core probes.
pub struct Probes {
    agent_tgid: u32,
    skel: skel::CausewaySkel<'static>,
    _links: Vec<libbpf_rs::Link>,
    enforcement: Enforcement,
    _lsm: Option<(lsm_skel::CausewayLsmSkel<'static>, libbpf_rs::Link)>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probes")
    }
}

impl Probes {
    /// Open, configure, load and attach the core probes.
    pub fn load(cfg: &Config) -> Result<Probes, ProbeError> {
        preflight()?;
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Info, libbpf_print)));
        take_log();
        // The skeleton borrows its open object for its whole life; the agent loads the probes
        // once per process, so leaking this small holder is the simple, sound choice.
        let holder: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let builder = skel::CausewaySkelBuilder::default();
        let mut open = builder
            .open(holder)
            .map_err(|e| ProbeError::Open(format!("{e:#}")))?;
        if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
            ro.agent_tgid = cfg.agent_tgid;
            ro.capture_file_writes = u32::from(cfg.file_writes);
            ro.ringbuf_wakeup_bytes = u64::from(cfg.ringbuf_bytes / 8);
            ro.bulk_wakeup_bytes = u64::from(cfg.bulk_ringbuf_bytes / 8);
        }
        open.maps
            .events
            .set_max_entries(cfg.ringbuf_bytes)
            .map_err(|e| ProbeError::Map {
                map: "events",
                error: format!("{e:#}"),
            })?;
        open.maps
            .bulk
            .set_max_entries(cfg.bulk_ringbuf_bytes)
            .map_err(|e| ProbeError::Map {
                map: "bulk",
                error: format!("{e:#}"),
            })?;
        let cpus = libbpf_rs::num_possible_cpus().map_err(|e| ProbeError::Map {
            map: "scratch",
            error: format!("{e:#}"),
        })?;
        open.maps
            .scratch
            .set_max_entries(cpus.max(1) as u32)
            .map_err(|e| ProbeError::Map {
                map: "scratch",
                error: format!("{e:#}"),
            })?;
        let skel = open.load().map_err(|e| ProbeError::Load {
            error: format!("{e:#}"),
            log: verifier_summary(&take_log()),
        })?;
        let mut links = Vec::new();
        macro_rules! attach {
            ($($p:ident),*) => {$(
                links.push(skel.progs.$p.attach().map_err(|e| ProbeError::Attach {
                    program: stringify!($p).to_string(),
                    error: format!("{e:#}"),
                })?);
            )*};
        }
        attach!(cw_fork, cw_exec, cw_exit, cw_sys_enter, cw_sys_exit);
        // The optional LSM object: tried, reported, never fatal.
        let (lsm, enforcement) = match load_lsm(&skel, cfg.agent_tgid) {
            Ok(l) => (Some(l), Enforcement::LsmDeny),
            Err(lsm_error) => {
                tracing::info!(
                    "BPF-LSM unavailable ({lsm_error}); denied execs are killed at exec instead"
                );
                (None, Enforcement::KillAtExec { lsm_error })
            }
        };
        Ok(Probes {
            agent_tgid: cfg.agent_tgid,
            skel,
            _links: links,
            enforcement,
            _lsm: lsm,
        })
    }

    /// How this kernel lets the agent stop a denied exec.
    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    /// Mark a file (or a directory, covering its direct children) as sensitive: reads of it
    /// are reported. `dev` is the kernel's encoding `(major << 20) | minor`.
    pub fn add_sensitive(&self, dev: u32, ino: u64) -> Result<(), ProbeError> {
        self.skel
            .maps
            .sensitive
            .update(bytes_of(&file_key(dev, ino)), &[1u8], MapFlags::ANY)
            .map_err(|e| ProbeError::Map {
                map: "sensitive",
                error: format!("{e:#}"),
            })
    }

    /// Handles to the enforcement maps, usable from any thread while the probes run.
    pub fn policy_maps(&self) -> Result<PolicyMaps, ProbeError> {
        let h = |m: &libbpf_rs::MapMut<'_>, name: &'static str| {
            libbpf_rs::MapHandle::try_from(m).map_err(|e| ProbeError::Map {
                map: name,
                error: format!("{e:#}"),
            })
        };
        Ok(PolicyMaps {
            agent_tgid: self.agent_tgid,
            by_cgroup: h(&self.skel.maps.scope_by_cgroup, "scope_by_cgroup")?,
            by_tgid: h(&self.skel.maps.scope_by_tgid, "scope_by_tgid")?,
            allowed: h(&self.skel.maps.allowed_exec, "allowed_exec")?,
            by_exe: h(&self.skel.maps.scope_by_exe, "scope_by_exe")?,
        })
    }

    /// Read the per-CPU counters and sum them.
    pub fn counters(&self) -> Result<Counters, ProbeError> {
        let zero = 0u32.to_ne_bytes();
        let per_cpu = self
            .skel
            .maps
            .counters
            .lookup_percpu(&zero, MapFlags::ANY)
            .map_err(|e| ProbeError::Map {
                map: "counters",
                error: format!("{e:#}"),
            })?
            .unwrap_or_default();
        let mut c = Counters::default();
        for bytes in per_cpu {
            let Ok(v) = causeway_abi::decode::read_counters(&bytes) else {
                continue;
            };
            for i in 0..c.emitted.len() {
                c.emitted[i] += v.emitted[i];
                c.lost[i] += v.lost[i];
                c.bulk_lost[i] += v.bulk_lost[i];
                c.folded[i] += v.folded[i];
            }
            c.truncated += v.truncated;
            c.inflight_lost += v.inflight_lost;
            c.agg_full += v.agg_full;
            c.agg_deleted += v.agg_deleted;
        }
        Ok(c)
    }

    /// Run the fold-table sweep: report the windows that closed (or, with `force`, every
    /// window, for shutdown) and remove idle entries. Its records arrive in the bulk ring.
    pub fn sweep(&self, force: bool) -> Result<(), ProbeError> {
        let mut args = u64::from(force).to_ne_bytes();
        let input = libbpf_rs::ProgramInput {
            context_in: Some(&mut args),
            ..Default::default()
        };
        self.skel
            .progs
            .cw_agg_sweep
            .test_run(input)
            .map(|_| ())
            .map_err(|e| ProbeError::Map {
                map: "agg",
                error: format!("sweep: {e:#}"),
            })
    }

    /// Drain both ring buffers into `on_record` until `stop` is set, then drain what is left.
    /// `on_tick` runs about every `tick` (for counters, flushing).
    ///
    /// On every wake-up the critical ring is drained first, and the bulk ring is read in
    /// batches with the critical ring drained again between batches, so a backlog of file
    /// activity never delays an exec or a connect by more than one batch.
    pub fn run(
        &self,
        stop: &AtomicBool,
        tick: Duration,
        mut on_record: impl FnMut(&[u8]),
        mut on_tick: impl FnMut(&Probes),
    ) -> Result<(), ProbeError> {
        /// Bulk records read before the critical ring is looked at again.
        const BULK_BATCH: usize = 1024;
        let rec_cell = std::cell::RefCell::new(&mut on_record);
        let ring = |map: &dyn MapCore| -> Result<libbpf_rs::RingBuffer<'_>, ProbeError> {
            let mut builder = RingBufferBuilder::new();
            builder
                .add(map, |data: &[u8]| {
                    if let Ok(mut f) = rec_cell.try_borrow_mut() {
                        (*f)(data);
                    }
                    0
                })
                .map_err(|e| ProbeError::RingBuffer(format!("{e:#}")))?;
            builder
                .build()
                .map_err(|e| ProbeError::RingBuffer(format!("{e:#}")))
        };
        let critical = ring(&self.skel.maps.events)?;
        let bulk = ring(&self.skel.maps.bulk)?;
        let drain = || {
            loop {
                let c = critical.consume_raw();
                if c < 0 {
                    tracing::debug!("critical ring consume: {c}");
                }
                let n = bulk.consume_raw_n(BULK_BATCH);
                if n < 0 {
                    tracing::debug!("bulk ring consume: {n}");
                }
                if n < BULK_BATCH as i32 {
                    break;
                }
            }
            // What arrived in the critical ring during the last bulk batch.
            let _ = critical.consume_raw();
        };
        let mut last_tick = Instant::now();
        // The probes wake us only once a batch is waiting (see `wakeup_flag` in the C), and
        // epoll reports nothing for records written without a wake-up, so after every poll
        // we also consume whatever is there: no record waits longer than the poll timeout.
        let poll_ms = 20;
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [
                libc::pollfd {
                    fd: critical.epoll_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: bulk.epoll_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfd for the duration of the call. EINTR
            // on a signal and timeouts are normal; either way we drain next.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, poll_ms) };
            drain();
            if last_tick.elapsed() >= tick {
                if let Err(e) = self.sweep(false) {
                    tracing::warn!("{e}");
                }
                on_tick(self);
                last_tick = Instant::now();
            }
        }
        // Report every folded occurrence before the last drain: nothing stays counted only
        // in the kernel when the agent stops.
        drain();
        if let Err(e) = self.sweep(true) {
            tracing::warn!("{e}");
        }
        drain();
        on_tick(self);
        Ok(())
    }
}

/// Whether a policy only reports deviations or also kills them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Audit,
    Enforce,
}

/// The kernel's enforcement tables: which processes are under which policy, and which
/// executables (by device and inode) each policy allows. Updates take effect at the next exec.
#[derive(Debug)]
pub struct PolicyMaps {
    agent_tgid: u32,
    by_cgroup: libbpf_rs::MapHandle,
    by_tgid: libbpf_rs::MapHandle,
    allowed: libbpf_rs::MapHandle,
    by_exe: libbpf_rs::MapHandle,
}

fn scope(policy_id: u32, mode: Mode) -> raw::cw_scope {
    raw::cw_scope {
        policy_id,
        mode: match mode {
            Mode::Audit => raw::CW_MODE_AUDIT,
            Mode::Enforce => raw::CW_MODE_ENFORCE,
        },
    }
}

fn allow_key(policy_id: u32, dev: u32, ino: u64) -> raw::cw_allow_key {
    raw::cw_allow_key {
        ino,
        dev,
        policy_id,
    }
}

fn file_key(dev: u32, ino: u64) -> raw::cw_file_key {
    raw::cw_file_key { ino, dev, pad: 0 }
}

impl PolicyMaps {
    fn err(map: &'static str) -> impl Fn(libbpf_rs::Error) -> ProbeError {
        move |e| ProbeError::Map {
            map,
            error: format!("{e:#}"),
        }
    }

    /// Put every process of a cgroup (v2 id) under a policy.
    pub fn scope_cgroup(
        &self,
        cgroup_id: u64,
        policy_id: u32,
        mode: Mode,
    ) -> Result<(), ProbeError> {
        self.by_cgroup
            .update(
                &cgroup_id.to_ne_bytes(),
                bytes_of(&scope(policy_id, mode)),
                MapFlags::ANY,
            )
            .map_err(Self::err("scope_by_cgroup"))
    }

    /// Put a process and every process it forks from now on under a policy. PID 1 and the
    /// agent itself can never be put under a policy (the probes refuse to kill them too).
    pub fn scope_process(&self, tgid: u32, policy_id: u32, mode: Mode) -> Result<(), ProbeError> {
        if tgid == 1 || tgid == self.agent_tgid {
            return Err(ProbeError::Protected(tgid));
        }
        self.by_tgid
            .update(
                &tgid.to_ne_bytes(),
                bytes_of(&scope(policy_id, mode)),
                MapFlags::ANY,
            )
            .map_err(Self::err("scope_by_tgid"))
    }

    /// Put every process that executes this file (kernel dev_t, inode), and all it forks
    /// afterwards, under a policy: the workload is selected by the executable its root runs.
    pub fn scope_executable(
        &self,
        dev: u32,
        ino: u64,
        policy_id: u32,
        mode: Mode,
    ) -> Result<(), ProbeError> {
        self.by_exe
            .update(
                bytes_of(&file_key(dev, ino)),
                bytes_of(&scope(policy_id, mode)),
                MapFlags::ANY,
            )
            .map_err(Self::err("scope_by_exe"))
    }

    /// Allow an executable (kernel dev_t, inode) under a policy.
    pub fn allow(&self, policy_id: u32, dev: u32, ino: u64) -> Result<(), ProbeError> {
        self.allowed
            .update(
                bytes_of(&allow_key(policy_id, dev, ino)),
                &[1u8],
                MapFlags::ANY,
            )
            .map_err(Self::err("allowed_exec"))
    }

    /// Withdraw an executable from a policy.
    pub fn disallow(&self, policy_id: u32, dev: u32, ino: u64) -> Result<(), ProbeError> {
        match self
            .allowed
            .delete(bytes_of(&allow_key(policy_id, dev, ino)))
        {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Self::err("allowed_exec")(e)),
        }
    }
}

/// Load and attach the LSM object, sharing the core object's maps.
fn load_lsm(
    core: &skel::CausewaySkel<'static>,
    agent_tgid: u32,
) -> Result<(lsm_skel::CausewayLsmSkel<'static>, libbpf_rs::Link), String> {
    use std::os::fd::AsFd;
    let holder: &'static mut MaybeUninit<libbpf_rs::OpenObject> =
        Box::leak(Box::new(MaybeUninit::uninit()));
    let mut open = lsm_skel::CausewayLsmSkelBuilder::default()
        .open(holder)
        .map_err(|e| format!("open: {e:#}"))?;
    if let Some(ro) = open.maps.rodata_data.as_deref_mut() {
        ro.agent_tgid = agent_tgid;
    }
    let reuse = |m: &mut libbpf_rs::OpenMapMut<'_>, fd: std::os::fd::BorrowedFd<'_>| {
        m.reuse_fd(fd).map_err(|e| format!("sharing map: {e:#}"))
    };
    reuse(&mut open.maps.events, core.maps.events.as_fd())?;
    reuse(&mut open.maps.bulk, core.maps.bulk.as_fd())?;
    reuse(&mut open.maps.counters, core.maps.counters.as_fd())?;
    reuse(
        &mut open.maps.scope_by_cgroup,
        core.maps.scope_by_cgroup.as_fd(),
    )?;
    reuse(
        &mut open.maps.scope_by_tgid,
        core.maps.scope_by_tgid.as_fd(),
    )?;
    reuse(&mut open.maps.allowed_exec, core.maps.allowed_exec.as_fd())?;
    reuse(&mut open.maps.scope_by_exe, core.maps.scope_by_exe.as_fd())?;
    take_log();
    let skel = open.load().map_err(|e| {
        let log = verifier_summary(&take_log());
        format!(
            "load of lsm/bprm_check_security: {e:#} {}",
            log.lines().last().unwrap_or("")
        )
    })?;
    let link = skel
        .progs
        .cw_lsm_bprm
        .attach_lsm()
        .map_err(|e| format!("attach: {e:#}"))?;
    Ok((skel, link))
}

/// The last lines of a libbpf/verifier log: where the verdict is.
fn verifier_summary(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.len().saturating_sub(40);
    lines[start..].join("\n")
}
