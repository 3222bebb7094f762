//! Facts about this host: names, ids, and the offset from the kernel's boot clock to wall time.

use causeway_model::{id::boot_prefix, Host};

/// Host identity and clock facts, read once at start.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub host: Host,
    /// First 64 bits of the boot id: the boot part of every process id.
    pub boot: u64,
    /// Wall-clock ns minus boot-clock ns, so `wall = boot + offset`.
    pub boot_to_wall_ns: i64,
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// The boot clock now, in ns (the clock the probes stamp records with).
pub fn boot_ns() -> i64 {
    clock_ns(libc::CLOCK_BOOTTIME)
}

fn read_trim(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

impl HostInfo {
    /// Read from `/proc` and `/etc`.
    pub fn detect() -> HostInfo {
        let boot_id = read_trim("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let machine_id = read_trim("/etc/machine-id").unwrap_or_else(|| boot_id.replace('-', ""));
        let name = read_trim("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into());
        // Sample the two clocks back to back; the error is the few ns between the calls.
        let wall = clock_ns(libc::CLOCK_REALTIME);
        let boot = boot_ns();
        HostInfo {
            host: Host {
                name,
                id: machine_id,
            },
            boot: boot_prefix(&boot_id),
            boot_to_wall_ns: wall - boot,
        }
    }

    /// Wall time of a boot-clock instant.
    pub fn wall(&self, boot_ns: u64) -> causeway_model::timefmt::Timestamp {
        causeway_model::timefmt::Timestamp(boot_ns as i64 + self.boot_to_wall_ns)
    }
}
