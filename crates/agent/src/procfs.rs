//! Reading `/proc` for the start-up snapshot and for processes first met mid-life: the
//! kernel probes only see what happens after they attach, so everything already running is
//! read here once, with the same identity the probes will use later.

use causeway_model::escape_bytes;
use causeway_model::id::TICKS_PER_SEC;
use std::path::Path;

/// What `/proc/PID` tells about one process.
#[derive(Debug, Clone, Default)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub start_ticks: u64,
    pub comm: String,
    pub exe: String,
    pub argv: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub auid: Option<u32>,
    pub session: Option<u32>,
    /// Kernel encoding (major << 20) | minor; 0 for none.
    pub tty: u32,
    /// cgroup v2 path (`0::` line).
    pub cgroup: String,
}

/// Start time in clock ticks since boot, from `/proc/PID/stat` (field 22).
pub fn stat_fields(pid: u32) -> Option<(u32, u64, String, u32)> {
    let s = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let open = s.iter().position(|&b| b == b'(')?;
    let close = s.iter().rposition(|&b| b == b')')?;
    let comm = escape_bytes(s.get(open + 1..close)?);
    let rest = std::str::from_utf8(s.get(close + 2..)?).ok()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ppid = f.get(1)?.parse().ok()?;
    let tty_nr: u32 = f.get(4)?.parse::<i64>().ok()? as u32;
    let start = f.get(19)?.parse().ok()?;
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    let tty = if tty_nr == 0 {
        0
    } else {
        (major << 20) | minor
    };
    Some((ppid, start, comm, tty))
}

fn ids(status: &str, key: &str) -> (u32, u32) {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| {
            let n: Vec<u32> = v
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            (
                n.first().copied().unwrap_or(0),
                n.get(1).copied().unwrap_or(0),
            )
        })
        .unwrap_or((0, 0))
}

fn unset_as_none(v: Option<u32>) -> Option<u32> {
    v.filter(|&x| x != u32::MAX)
}

fn link(path: &Path) -> String {
    std::fs::read_link(path)
        .map(|p| escape_bytes(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str())))
        .unwrap_or_default()
}

/// Read one process; `None` if it is gone or is a kernel thread we cannot read.
pub fn read_proc(pid: u32) -> Option<ProcInfo> {
    let (ppid, start_ticks, comm, tty) = stat_fields(pid)?;
    let dir = Path::new("/proc").join(pid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    let (uid, euid) = ids(&status, "Uid:");
    let (gid, egid) = ids(&status, "Gid:");
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let argv = split_argv(&cmdline);
    let num = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
    };
    let cgroup = std::fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        })
        .unwrap_or_default();
    Some(ProcInfo {
        pid,
        ppid,
        start_ticks,
        comm,
        exe: link(&dir.join("exe")),
        argv,
        cwd: link(&dir.join("cwd")),
        uid,
        euid,
        gid,
        egid,
        auid: unset_as_none(num("loginuid")),
        session: unset_as_none(num("sessionid")),
        tty,
        cgroup,
    })
}

/// argv from NUL-separated bytes, escaped.
pub fn split_argv(bytes: &[u8]) -> Vec<String> {
    let trimmed = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed.split(|&b| b == 0).map(escape_bytes).collect()
}

/// Every process now in `/proc`, parents before children where possible (sorted by start).
pub fn snapshot() -> Vec<ProcInfo> {
    let mut out: Vec<ProcInfo> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(read_proc)
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|p| (p.start_ticks, p.pid));
    out
}

/// Seconds → ticks, for tests and callers converting boot-clock ns.
pub const NS_PER_TICK: u64 = 1_000_000_000 / TICKS_PER_SEC;

/// Render a kernel tty number the way `ps` does (`pts/3`, `tty1`, `ttyS0`).
pub fn tty_name(tty: u32) -> Option<String> {
    if tty == 0 {
        return None;
    }
    let major = tty >> 20;
    let minor = tty & 0xfffff;
    Some(match major {
        136..=143 => format!("pts/{}", minor + (major - 136) * 256),
        4 if minor < 64 => format!("tty{minor}"),
        4 => format!("ttyS{}", minor - 64),
        5 if minor == 0 => "tty".to_string(),
        5 if minor == 1 => "console".to_string(),
        _ => format!("tty({major}:{minor})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_self() {
        let me = read_proc(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start_ticks > 0);
        assert!(!me.exe.is_empty());
        assert!(!me.argv.is_empty());
    }

    #[test]
    fn tty_names() {
        assert_eq!(tty_name(0), None);
        assert_eq!(tty_name((136 << 20) | 3).as_deref(), Some("pts/3"));
        assert_eq!(tty_name((4 << 20) | 65).as_deref(), Some("ttyS1"));
        assert_eq!(
            split_argv(b"a\0b\xff\0"),
            vec!["a".to_string(), "b\\xff".to_string()]
        );
    }
}
