//! The event record: the JSON-lines contract of `shared/design/brief.md`.
//!
//! Strings that the observed workload controls (argv, paths, names) are stored in the
//! escaped form of [`crate::escape`]: valid UTF-8 is kept as is (with `\` doubled) and other
//! bytes become `\xNN`, so nothing is lost and nothing is invalid JSON.

use crate::timefmt::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// What happened, as `family.verb`.
///
/// Each kind has one stable number, equal to the kernel header's `enum cw_kind`
/// (`bpf/include/causeway_events.h`; the agent asserts the equality at compile time). That
/// number is what the store writes to disk and what counters are indexed by: reordering the
/// variants changes nothing, and a number is never reused for another kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u16)]
pub enum Kind {
    #[serde(rename = "process.fork")]
    ProcessFork = 1,
    #[serde(rename = "process.exec")]
    ProcessExec = 2,
    #[serde(rename = "process.exit")]
    ProcessExit = 3,
    #[serde(rename = "net.connect")]
    NetConnect = 4,
    #[serde(rename = "net.accept")]
    NetAccept = 5,
    #[serde(rename = "net.listen")]
    NetListen = 6,
    #[serde(rename = "file.open")]
    FileOpen = 7,
    #[serde(rename = "file.rename")]
    FileRename = 8,
    #[serde(rename = "file.unlink")]
    FileUnlink = 9,
    #[serde(rename = "file.chmod")]
    FileChmod = 10,
    #[serde(rename = "cred.change")]
    CredChange = 11,
    #[serde(rename = "process.ptrace")]
    ProcessPtrace = 12,
    #[serde(rename = "fs.mount")]
    FsMount = 13,
    #[serde(rename = "kernel.module_load")]
    KernelModuleLoad = 14,
    #[serde(rename = "kernel.bpf_load")]
    KernelBpfLoad = 15,
    #[serde(rename = "process.memfd_create")]
    ProcessMemfdCreate = 16,
}

impl Kind {
    /// Every kind, in a stable order.
    pub const ALL: [Kind; 16] = [
        Kind::ProcessFork,
        Kind::ProcessExec,
        Kind::ProcessExit,
        Kind::NetConnect,
        Kind::NetAccept,
        Kind::NetListen,
        Kind::FileOpen,
        Kind::FileRename,
        Kind::FileUnlink,
        Kind::FileChmod,
        Kind::CredChange,
        Kind::ProcessPtrace,
        Kind::FsMount,
        Kind::KernelModuleLoad,
        Kind::KernelBpfLoad,
        Kind::ProcessMemfdCreate,
    ];

    /// The contract's spelling, e.g. `process.exec`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ProcessFork => "process.fork",
            Kind::ProcessExec => "process.exec",
            Kind::ProcessExit => "process.exit",
            Kind::NetConnect => "net.connect",
            Kind::NetAccept => "net.accept",
            Kind::NetListen => "net.listen",
            Kind::FileOpen => "file.open",
            Kind::FileRename => "file.rename",
            Kind::FileUnlink => "file.unlink",
            Kind::FileChmod => "file.chmod",
            Kind::CredChange => "cred.change",
            Kind::ProcessPtrace => "process.ptrace",
            Kind::FsMount => "fs.mount",
            Kind::KernelModuleLoad => "kernel.module_load",
            Kind::KernelBpfLoad => "kernel.bpf_load",
            Kind::ProcessMemfdCreate => "process.memfd_create",
        }
    }

    /// Parse the contract's spelling.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The stable number (equal to the kernel's `enum cw_kind`).
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The kind with this stable number.
    pub fn from_code(code: u16) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.code() == code)
    }

    /// Highest stable number in use (for tables indexed by [`Kind::code`]).
    pub const MAX_CODE: u16 = Kind::ProcessMemfdCreate as u16;

    /// Which lane the kind travels in under overload: high-volume file activity is bulk;
    /// everything detection cannot afford to lose (lifecycle, network, credentials, ptrace,
    /// kernel loads, mounts, memfds) is critical and has reserved capacity end to end.
    pub const fn lane(self) -> Lane {
        match self {
            Kind::FileOpen | Kind::FileRename | Kind::FileUnlink | Kind::FileChmod => Lane::Bulk,
            _ => Lane::Critical,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Priority class of an event on its way from the kernel to detection (see [`Kind::lane`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// Never dropped to make room for bulk events.
    Critical,
    /// High-volume file activity: aggregated in the kernel, shed first under overload.
    Bulk,
}

/// The host an event comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Host {
    pub name: String,
    /// Machine id (`/etc/machine-id`), or the boot id where there is none.
    pub id: String,
}

/// The container a process runs in, derived from its cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Container {
    /// Runtime id (64 hex digits for docker/containerd/cri-o/podman).
    pub id: String,
    /// `docker`, `containerd`, `cri-o`, `podman`, `runc` or `unknown`.
    pub runtime: String,
    /// Kubernetes pod UID when the cgroup path names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// The cgroup v2 path the attribution came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
}

/// The process that caused the event, as known when it happened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Opaque stable id, see [`crate::id::ProcessKey`].
    pub id: String,
    pub pid: u32,
    pub ppid: u32,
    /// Id of the parent process; empty when unknown.
    #[serde(default)]
    pub parent_id: String,
    /// Absolute path of the executable image (escaped form).
    #[serde(default)]
    pub exe: String,
    /// Arguments (escaped form), at most the documented bound (see `argv_truncated`).
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub argv_truncated: bool,
    #[serde(default)]
    pub cwd: String,
    /// Kernel command name (16 bytes at most).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comm: String,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub euid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub egid: u32,
    /// Login uid; `null` when unset (4294967295 in the kernel).
    #[serde(default)]
    pub auid: Option<u32>,
    /// Audit session id; `null` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<u32>,
    /// Controlling terminal such as `pts/0`; `null` when none.
    #[serde(default)]
    pub tty: Option<String>,
    /// When the process started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    #[serde(default)]
    pub container: Option<Container>,
    /// The systemd unit the process runs in, for host services (e.g. `ssh.service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Exec details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exec {
    /// The path as passed to execve (may be relative).
    pub filename: String,
    /// The image is a memfd (fileless exec).
    #[serde(default)]
    pub memfd: bool,
    /// The image file had no links left (deleted) when it was executed.
    #[serde(default)]
    pub deleted: bool,
    /// Set-user-ID or set-group-ID image that changed credentials.
    #[serde(default, skip_serializing_if = "is_false")]
    pub setid: bool,
    /// Not a live exec: the process was already running when the agent started and was
    /// found in `/proc`; the event's time is the process's start time.
    #[serde(default, skip_serializing_if = "is_false")]
    pub snapshot: bool,
}

/// How a process ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// Exit status when it exited normally.
    pub code: Option<i32>,
    /// Signal number when a signal killed it.
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub core_dumped: bool,
}

/// One end of a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub ip: String,
    pub port: u16,
}

/// A network flow as seen by the process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    pub local: Endpoint,
    pub remote: Endpoint,
    /// Non-blocking connect still in progress when the syscall returned.
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_progress: bool,
}

/// A file the event touched.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    /// Absolute path (escaped form).
    pub path: String,
    /// Destination for `file.rename`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_path: Option<String>,
    /// open(2) flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<u32>,
    /// Opened for writing (or created/truncated).
    #[serde(default, skip_serializing_if = "is_false")]
    pub write: bool,
    /// The path is in the configured sensitive set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sensitive: bool,
    /// New mode for `file.chmod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inode: Option<u64>,
    /// The path was longer than the kernel-side bound and was cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
}

/// A set of credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Effective capability mask.
    pub cap_effective: u64,
}

/// A credential change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cred {
    /// The syscall, e.g. `setresuid`.
    pub syscall: String,
    pub old: Creds,
    pub new: Creds,
}

/// The process a ptrace acted on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    /// Process id of the target when known.
    #[serde(default)]
    pub id: String,
    /// Request name, e.g. `PTRACE_ATTACH`.
    pub request: String,
}

/// A mount.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub flags: u64,
    /// Syscall result: 0 or a negative errno.
    pub result: i64,
}

/// A kernel module load attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// `init_module` or `finit_module`.
    pub syscall: String,
    /// Path of the module file for `finit_module`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub result: i64,
}

/// A BPF program load.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bpf {
    pub prog_type: u32,
    pub prog_name: String,
    pub result: i64,
}

/// A memfd creation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memfd {
    pub name: String,
    pub flags: u32,
    /// The new file descriptor, or a negative errno.
    pub result: i64,
}

/// An enforcement decision taken in the kernel on this event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enforcement {
    /// Numeric id of the policy in force (as loaded into the kernel).
    pub policy_id: u32,
    /// The policy's name, when the agent knows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub policy: String,
    /// `killed` (SIGKILL at exec, before the first instruction), `blocked` (the exec was
    /// refused with EPERM and never happened) or `audited` (audit mode: reported only).
    pub action: String,
    /// How: `bpf_send_signal` (SIGKILL at exec, before the first instruction) or `bpf_lsm`.
    pub mechanism: String,
}

/// Identical occurrences folded into one event: the event stands for `count` occurrences
/// from its `time` to `last_time` (the kernel aggregates repetitive file activity per
/// process; the store folds repeats the graph proved interchangeable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    pub count: u64,
    pub last_time: Timestamp,
}

/// One event: the contract's JSON object.
///
/// The process is shared (`Arc`): the agent's process table hands the same snapshot to
/// every event of that process image, so argv and the rest are never copied per event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub time: Timestamp,
    pub kind: Kind,
    pub host: Host,
    pub process: Arc<Process>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Exec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<Exit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<File>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cred: Option<Cred>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount: Option<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<Module>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bpf: Option<Bpf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memfd: Option<Memfd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<Enforcement>,
    /// Set when this event stands for several identical occurrences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<Repeat>,
}

impl Event {
    /// A new event with only the common part filled.
    pub fn new(time: Timestamp, kind: Kind, host: Host, process: impl Into<Arc<Process>>) -> Self {
        Event {
            time,
            kind,
            host,
            process: process.into(),
            exec: None,
            exit: None,
            network: None,
            file: None,
            cred: None,
            target: None,
            mount: None,
            module: None,
            bpf: None,
            memfd: None,
            enforcement: None,
            repeat: None,
        }
    }

    /// The lane this event travels in: by kind, except that a read of a sensitive file is
    /// critical (credential access must never be shed with the bulk).
    pub fn lane(&self) -> Lane {
        match self.kind.lane() {
            Lane::Bulk if self.file.as_ref().is_some_and(|f| f.sensitive) => Lane::Critical,
            l => l,
        }
    }

    /// Occurrences this event stands for (1 unless folded).
    pub fn occurrences(&self) -> u64 {
        self.repeat.map_or(1, |r| r.count.max(1))
    }

    /// The process, to change it (copies it only when another event shares it).
    pub fn process_mut(&mut self) -> &mut Process {
        Arc::make_mut(&mut self.process)
    }

    /// Parse one JSON line.
    pub fn from_json(line: &str) -> Result<Event, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// Render as one JSON line (no trailing newline).
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail: no maps with non-string keys.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_contract_shape() {
        let mut p = Process {
            id: "p-1-2-3".into(),
            pid: 2,
            ppid: 1,
            ..Default::default()
        };
        p.argv = vec!["python3".into(), "-c".into()];
        let mut e = Event::new(Timestamp(0), Kind::NetConnect, Host::default(), p);
        e.network = Some(Network {
            protocol: "tcp".into(),
            family: "ipv4".into(),
            local: Endpoint {
                ip: "127.0.0.1".into(),
                port: 40000,
            },
            remote: Endpoint {
                ip: "127.0.0.1".into(),
                port: 8080,
            },
            in_progress: false,
        });
        let j = e.to_json();
        assert!(j.contains("\"kind\":\"net.connect\""), "{j}");
        assert!(
            j.contains("\"time\":\"1970-01-01T00:00:00.000000000Z\""),
            "{j}"
        );
        assert!(j.contains("\"container\":null"), "{j}");
        assert!(!j.contains("\"file\""), "{j}");
        assert_eq!(Event::from_json(&j).unwrap(), e);
    }

    #[test]
    fn kind_codes_are_stable() {
        // The on-disk and kernel numbering: never change an existing number.
        assert_eq!(Kind::ProcessFork.code(), 1);
        assert_eq!(Kind::FileOpen.code(), 7);
        assert_eq!(Kind::ProcessMemfdCreate.code(), 16);
        for k in Kind::ALL {
            assert_eq!(Kind::from_code(k.code()), Some(k));
        }
        assert_eq!(Kind::from_code(0), None);
        assert_eq!(Kind::from_code(Kind::MAX_CODE + 1), None);
    }

    #[test]
    fn kind_spellings_roundtrip() {
        for k in Kind::ALL {
            let j = serde_json::to_string(&k).unwrap();
            assert_eq!(j, format!("\"{}\"", k.as_str()));
            assert_eq!(Kind::parse(k.as_str()), Some(k));
        }
    }
}
