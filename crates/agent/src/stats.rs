//! Counters of events seen and lost per cause, shared between the consumer thread (writer)
//! and whoever reports health (readers). Lock-free on the hot path.

use causeway_model::Kind;
use causeway_probes::Counters;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Tables are indexed by the kind's stable number (`Kind::code`, equal to the kernel's
/// `enum cw_kind`), so the kernel's counters and the agent's line up without a mapping.
const N: usize = Kind::MAX_CODE as usize + 1;

/// Live counters.
#[derive(Debug, Default)]
pub struct Stats {
    seen: [AtomicU64; N],
    kernel_emitted: [AtomicU64; N],
    kernel_lost: [AtomicU64; N],
    kernel_bulk_lost: [AtomicU64; N],
    kernel_truncated: AtomicU64,
    kernel_folded: [AtomicU64; N],
    fold_table_full: AtomicU64,
    repeat_unjoined: AtomicU64,
    syscall_table_full: AtomicU64,
    decode_errors: AtomicU64,
    sink_dropped: [AtomicU64; N],
    state: Mutex<String>,
    enforcement: Mutex<String>,
}

/// A point-in-time copy for reports.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub state: String,
    /// How denied execs are stopped: `bpf_lsm` or `bpf_send_signal`.
    pub enforcement: String,
    pub seen: BTreeMap<String, u64>,
    pub seen_total: u64,
    /// Lost, by cause: `ringbuf_full:<kind>` (critical ring), `bulk_ringbuf_full:<kind>` (bulk
    /// ring), `sink_full:<kind>` (the sink refused it), `syscall_table_full`, `decode_error`.
    pub lost: BTreeMap<String, u64>,
    pub lost_total: u64,
    /// Records with a truncated field (argv or path over its bound): not lost, but flagged.
    pub truncated: u64,
    /// Occurrences the kernel folded into repeat events (not lost: each is counted in the
    /// `repeat.count` of one event), by kind.
    pub folded: BTreeMap<String, u64>,
    /// Occurrences sent in full, unfolded, because the kernel's fold table was full.
    pub fold_table_full: u64,
    /// Repeat events whose first full event was lost (they carry the process id and inode
    /// only).
    pub repeat_unjoined: u64,
}

fn kind_index(k: Kind) -> usize {
    usize::from(k.code())
}

impl Stats {
    pub fn seen(&self, k: Kind) {
        self.seen[kind_index(k)].fetch_add(1, Relaxed);
    }
    pub fn decode_error(&self) {
        self.decode_errors.fetch_add(1, Relaxed);
    }
    /// The sink refused an event of this kind (e.g. the node's queue was full).
    pub fn sink_dropped(&self, k: Kind) {
        self.sink_dropped[kind_index(k)].fetch_add(1, Relaxed);
    }
    pub fn set_repeat_unjoined(&self, n: u64) {
        self.repeat_unjoined.store(n, Relaxed);
    }
    pub fn set_enforcement(&self, s: &str) {
        if let Ok(mut st) = self.enforcement.lock() {
            *st = s.to_string();
        }
    }
    pub fn set_state(&self, s: &str) {
        if let Ok(mut st) = self.state.lock() {
            *st = s.to_string();
        }
    }

    /// Store the kernel's counters (they are cumulative, so this overwrites).
    pub fn set_kernel(&self, c: &Counters) {
        for (code, ((&em, &lo), &bl)) in c
            .emitted
            .iter()
            .zip(c.lost.iter())
            .zip(c.bulk_lost.iter())
            .enumerate()
        {
            // Slot 0 and anything past the model's kinds are unused by the kernel.
            let Some(k) = u16::try_from(code).ok().and_then(Kind::from_code) else {
                continue;
            };
            self.kernel_emitted[kind_index(k)].store(em, Relaxed);
            self.kernel_lost[kind_index(k)].store(lo, Relaxed);
            self.kernel_bulk_lost[kind_index(k)].store(bl, Relaxed);
            self.kernel_folded[kind_index(k)].store(c.folded[code], Relaxed);
        }
        self.fold_table_full.store(c.agg_full, Relaxed);
        self.kernel_truncated.store(c.truncated, Relaxed);
        self.syscall_table_full.store(c.inflight_lost, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let mut s = StatsSnapshot {
            state: self.state.lock().map(|s| s.clone()).unwrap_or_default(),
            enforcement: self
                .enforcement
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default(),
            ..Default::default()
        };
        for k in Kind::ALL {
            let i = kind_index(k);
            let seen = self.seen[i].load(Relaxed);
            if seen > 0 {
                s.seen.insert(k.as_str().to_string(), seen);
            }
            let lost = self.kernel_lost[i].load(Relaxed);
            if lost > 0 {
                s.lost.insert(format!("ringbuf_full:{}", k.as_str()), lost);
            }
            let lost = self.sink_dropped[i].load(Relaxed);
            if lost > 0 {
                s.lost.insert(format!("sink_full:{}", k.as_str()), lost);
            }
            let folded = self.kernel_folded[i].load(Relaxed);
            if folded > 0 {
                s.folded.insert(k.as_str().to_string(), folded);
            }
            let lost = self.kernel_bulk_lost[i].load(Relaxed);
            if lost > 0 {
                s.lost
                    .insert(format!("bulk_ringbuf_full:{}", k.as_str()), lost);
            }
        }
        for (cause, v) in [
            ("syscall_table_full", self.syscall_table_full.load(Relaxed)),
            ("decode_error", self.decode_errors.load(Relaxed)),
        ] {
            if v > 0 {
                s.lost.insert(cause.to_string(), v);
            }
        }
        s.seen_total = s.seen.values().sum();
        s.lost_total = s.lost.values().sum();
        s.truncated = self.kernel_truncated.load(Relaxed);
        s.fold_table_full = self.fold_table_full.load(Relaxed);
        s.repeat_unjoined = self.repeat_unjoined.load(Relaxed);
        s
    }
}
