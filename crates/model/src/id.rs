//! Stable identities. A pid alone is never an identity (pids are reused); a process is
//! (host boot id, pid, start time). The start time is kept in clock ticks since boot
//! (USER_HZ, 100/s): that is the precision `/proc/PID/stat` offers, and the agent must give
//! a process seen first in the `/proc` snapshot the same id as the kernel probes later do.
//! Two processes with the same pid starting within the same 10 ms on the same boot would
//! need the pid space to wrap in that time, which the kernel's pid allocator makes impossible
//! in practice.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A host's boot: the kernel's random boot id (`/proc/sys/kernel/random/boot_id`), dashes
/// removed. Process ids embed its first 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostId(pub String);

/// The parts of a process identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessKey {
    /// First 64 bits of the boot id.
    pub boot: u64,
    /// Thread-group id (the "pid" users see).
    pub pid: u32,
    /// Start time of the thread-group leader, in clock ticks since boot.
    pub start_ticks: u64,
}

/// Clock ticks per second used for start times (Linux USER_HZ, fixed at 100 on every arch
/// Causeway supports).
pub const TICKS_PER_SEC: u64 = 100;

impl ProcessKey {
    /// Build from a boot-clock start time in nanoseconds (what the kernel probes report).
    pub fn from_boot_ns(boot: u64, pid: u32, start_boottime_ns: u64) -> Self {
        ProcessKey {
            boot,
            pid,
            start_ticks: start_boottime_ns / (1_000_000_000 / TICKS_PER_SEC),
        }
    }

    /// Parse the rendered form `p-<16 hex>-<pid>-<ticks>`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.strip_prefix("p-")?.split('-');
        let boot = u64::from_str_radix(it.next()?, 16).ok()?;
        let pid = it.next()?.parse().ok()?;
        let start_ticks = it.next()?.parse().ok()?;
        if it.next().is_some() {
            return None;
        }
        Some(ProcessKey {
            boot,
            pid,
            start_ticks,
        })
    }
}

impl fmt::Display for ProcessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p-{:016x}-{}-{}", self.boot, self.pid, self.start_ticks)
    }
}

/// Parse the first 64 bits of a boot id such as `4f1c2a...-...`.
pub fn boot_prefix(boot_id: &str) -> u64 {
    let hex: String = boot_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(16)
        .collect();
    u64::from_str_radix(&hex, 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parse() {
        let k = ProcessKey::from_boot_ns(0xdead_beef, 42, 1_234_567_890_123);
        assert_eq!(k.start_ticks, 123_456);
        let s = k.to_string();
        assert_eq!(s, "p-00000000deadbeef-42-123456");
        assert_eq!(ProcessKey::parse(&s), Some(k));
        assert_eq!(ProcessKey::parse("p-zz-1-2"), None);
    }

    #[test]
    fn boot_prefix_ignores_dashes() {
        assert_eq!(
            boot_prefix("01234567-89ab-cdef-0123-456789abcdef"),
            0x0123_4567_89ab_cdef
        );
    }
}
