//! Kernel record → contract event. Fills the common process part from the record's task
//! header plus the process table, then the one kind-specific object.

use crate::fold::{FoldKey, Folds};
use crate::host::HostInfo;
use crate::procfs::{split_argv, tty_name, ProcInfo};
use crate::table::{Entry, Table, TaskFacts};
use causeway_abi::decode::{components_to_path, cstr, Record};
use causeway_abi::raw;
use causeway_model::*;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

/// The kernel's number of each kind, by an exhaustive match: a kind added to the model without
/// its `enum cw_kind` counterpart does not compile, and neither does a number that differs.
const fn kernel_code(k: Kind) -> u32 {
    match k {
        Kind::ProcessFork => raw::cw_kind_CW_FORK,
        Kind::ProcessExec => raw::cw_kind_CW_EXEC,
        Kind::ProcessExit => raw::cw_kind_CW_EXIT,
        Kind::NetConnect => raw::cw_kind_CW_CONNECT,
        Kind::NetAccept => raw::cw_kind_CW_ACCEPT,
        Kind::NetListen => raw::cw_kind_CW_LISTEN,
        Kind::FileOpen => raw::cw_kind_CW_OPEN,
        Kind::FileRename => raw::cw_kind_CW_RENAME,
        Kind::FileUnlink => raw::cw_kind_CW_UNLINK,
        Kind::FileChmod => raw::cw_kind_CW_CHMOD,
        Kind::CredChange => raw::cw_kind_CW_CRED,
        Kind::ProcessPtrace => raw::cw_kind_CW_PTRACE,
        Kind::FsMount => raw::cw_kind_CW_MOUNT,
        Kind::KernelModuleLoad => raw::cw_kind_CW_MODULE,
        Kind::KernelBpfLoad => raw::cw_kind_CW_BPF,
        Kind::ProcessMemfdCreate => raw::cw_kind_CW_MEMFD,
    }
}

const _: () = {
    let mut i = 0;
    while i < Kind::ALL.len() {
        let k = Kind::ALL[i];
        assert!(
            k.code() as u32 == kernel_code(k),
            "Kind::code differs from enum cw_kind"
        );
        i += 1;
    }
    // Every kernel kind has a model kind (the kernel's numbers are 1..CW_KIND_MAX).
    assert!(Kind::ALL.len() as u32 + 1 == raw::cw_kind_CW_KIND_MAX);
    assert!(Kind::MAX_CODE as u32 + 1 == raw::cw_kind_CW_KIND_MAX);
};

fn flag(h: &raw::cw_hdr, f: u32) -> bool {
    u32::from(h.flags) & f != 0
}

fn comm(t: &raw::cw_task) -> String {
    // comm is a C char array; reinterpret as bytes.
    let bytes: Vec<u8> = t.comm.iter().map(|&c| c as u8).collect();
    escape_bytes(cstr(&bytes))
}

fn none_if_unset(v: u32) -> Option<u32> {
    (v != u32::MAX).then_some(v)
}

/// Turns records into events; owns the process table.
#[derive(Debug)]
pub struct Converter {
    pub host: HostInfo,
    pub table: Table,
    /// What the kernel's repeat records stand for.
    pub folds: Folds,
}

impl Converter {
    pub fn new(host: HostInfo) -> Self {
        Converter {
            host,
            table: Table::new(),
            folds: Folds::default(),
        }
    }

    fn key(&self, pid: u32, start_ns: u64) -> ProcessKey {
        ProcessKey::from_boot_ns(self.host.boot, pid, start_ns)
    }

    /// The contract's process object for a record's task: the one the table shares for this
    /// image while the task's facts stay the same, built (argv copied) only when they change.
    fn process(&mut self, t: &raw::cw_task) -> Arc<Process> {
        let key = self.key(t.pid, t.start_boottime);
        let cg = self.table.cgroups.get(t.cgroup_id).cloned();
        let facts = TaskFacts {
            ppid: t.ppid,
            parent_start: t.parent_start_boottime,
            uid: t.uid,
            euid: t.euid,
            gid: t.gid,
            egid: t.egid,
            auid: t.auid,
            sessionid: t.sessionid,
            tty: t.tty,
            cgroup_id: t.cgroup_id,
            cgroup_known: cg.is_some(),
            comm: t.comm,
        };
        if let Some((f, p)) = self.table.get(&key).and_then(|e| e.shared.as_ref()) {
            if *f == facts {
                return Arc::clone(p);
            }
        }
        let parent = self.key(t.ppid, t.parent_start_boottime);
        let parent_id = if t.ppid == 0 {
            String::new()
        } else {
            match self.table.peek_id(&parent) {
                Some(id) => id.to_string(),
                None => parent.to_string(),
            }
        };
        let mut p = Process {
            id: key.to_string(),
            pid: t.pid,
            ppid: t.ppid,
            parent_id,
            comm: comm(t),
            uid: t.uid,
            euid: t.euid,
            gid: t.gid,
            egid: t.egid,
            auid: none_if_unset(t.auid),
            session: none_if_unset(t.sessionid),
            tty: tty_name(t.tty),
            start_time: Some(self.host.wall(t.start_boottime)),
            ..Default::default()
        };
        let entry = self.table.get(&key);
        if let Some(e) = &entry {
            p.id = e.id.to_string();
            p.exe = e.exe.clone();
            p.argv = (*e.argv).clone();
            p.argv_truncated = e.argv_truncated;
            p.cwd = e.cwd.clone();
            p.container = e.container.clone();
            p.service = e.service.clone();
        }
        if let Some(cg) = cg.filter(|c| !c.path.is_empty()) {
            p.container = cg.container;
            p.service = cg.service;
        }
        let p = Arc::new(p);
        if let Some(e) = entry {
            e.shared = Some((facts, Arc::clone(&p)));
        }
        p
    }

    fn event(&mut self, h: &raw::cw_hdr, kind: Kind) -> Event {
        let process = self.process(&h.task);
        Event::new(
            self.host.wall(h.ktime),
            kind,
            self.host.host.clone(),
            process,
        )
    }

    /// A synthetic `process.exec` for a process found in /proc at start.
    pub fn snapshot_event(&mut self, p: &ProcInfo) -> Event {
        let key = ProcessKey {
            boot: self.host.boot,
            pid: p.pid,
            start_ticks: p.start_ticks,
        };
        let entry = self.table.insert_proc(p, None).clone();
        let parent_ticks = crate::procfs::stat_fields(p.ppid).map(|f| f.1).unwrap_or(0);
        let start = causeway_model::timefmt::Timestamp(
            (p.start_ticks * crate::procfs::NS_PER_TICK) as i64 + self.host.boot_to_wall_ns,
        );
        let process = Process {
            id: key.to_string(),
            pid: p.pid,
            ppid: p.ppid,
            parent_id: if p.ppid == 0 {
                String::new()
            } else {
                ProcessKey {
                    boot: self.host.boot,
                    pid: p.ppid,
                    start_ticks: parent_ticks,
                }
                .to_string()
            },
            exe: entry.exe.clone(),
            argv: p.argv.clone(),
            cwd: p.cwd.clone(),
            comm: p.comm.clone(),
            uid: p.uid,
            euid: p.euid,
            gid: p.gid,
            egid: p.egid,
            auid: p.auid,
            session: p.session,
            tty: tty_name(p.tty),
            start_time: Some(start),
            container: entry.container,
            service: entry.service,
            ..Default::default()
        };
        let mut e = Event::new(start, Kind::ProcessExec, self.host.host.clone(), process);
        e.exec = Some(Exec {
            filename: entry.exe,
            snapshot: true,
            ..Default::default()
        });
        e
    }

    /// Convert one record. `None` when its kind number is not a model kind (the decoder
    /// refuses those already; the caller counts it as a decode error).
    pub fn convert(&mut self, rec: &Record<'_>) -> Option<Event> {
        if let Record::Repeat(r) = rec {
            return self.repeat(r);
        }
        let h = rec.hdr();
        let kind = Kind::from_code(h.kind)?;
        let key = self.key(h.task.pid, h.task.start_boottime);
        match rec {
            Record::Fork(r) => {
                let parent = self.key(r.hdr.task.ppid, r.hdr.task.parent_start_boottime);
                self.table.fork(&key, &parent);
                Some(self.event(h, kind))
            }
            Record::Exec {
                rec: r,
                argv,
                filename,
                exe,
                cwd,
                cgroup,
            } => {
                if flag(h, raw::CW_F_LSM) {
                    return Some(self.lsm_denial(h, r, filename));
                }
                let cg_path = String::from_utf8_lossy(&components_to_path(cgroup)).into_owned();
                let cg = if cgroup.is_empty() {
                    crate::cgroups::CgroupInfo::default()
                } else {
                    self.table
                        .cgroups
                        .learn(r.hdr.task.cgroup_id, cg_path)
                        .clone()
                };
                let entry = Entry {
                    start_ticks: key.start_ticks,
                    id: Arc::from(key.to_string()),
                    exe: escape_bytes(&components_to_path(exe)),
                    argv: Arc::new(split_argv(argv)),
                    argv_truncated: flag(h, raw::CW_F_ARGV_TRUNC),
                    cwd: escape_bytes(&components_to_path(cwd)),
                    container: cg.container,
                    service: cg.service,
                    exited_at: None,
                    shared: None,
                };
                self.table.exec(&key, entry);
                let mut e = self.event(h, kind);
                e.exec = Some(Exec {
                    filename: escape_bytes(cstr(filename)),
                    memfd: flag(h, raw::CW_F_MEMFD),
                    deleted: flag(h, raw::CW_F_DELETED),
                    setid: flag(h, raw::CW_F_SETID),
                    snapshot: false,
                });
                if r.policy_id != 0 && flag(h, raw::CW_F_DENIED) {
                    let killed = flag(h, raw::CW_F_KILLED);
                    e.enforcement = Some(Enforcement {
                        policy_id: r.policy_id,
                        policy: String::new(),
                        action: if killed { "killed" } else { "audited" }.to_string(),
                        mechanism: "bpf_send_signal".to_string(),
                    });
                }
                Some(e)
            }
            Record::Exit(r) => {
                let mut e = self.event(h, kind);
                let st = r.status;
                let sig = (st & 0x7f) as i32;
                e.exit = Some(if sig == 0 {
                    Exit {
                        code: Some(((st >> 8) & 0xff) as i32),
                        signal: None,
                        core_dumped: false,
                    }
                } else {
                    Exit {
                        code: None,
                        signal: Some(sig),
                        core_dumped: st & 0x80 != 0,
                    }
                });
                self.table.exit(&key, h.ktime);
                Some(e)
            }
            Record::Net(r) => {
                let mut e = self.event(h, kind);
                e.network = Some(network(r));
                Some(e)
            }
            Record::File {
                rec: r,
                path,
                path2,
                dir,
            } => Some(self.file(h, kind, r, path, path2, dir)),
            Record::Cred(r) => {
                let mut e = self.event(h, kind);
                e.cred = Some(Cred {
                    syscall: syscall_name(r.syscall).to_string(),
                    old: creds(&r.old),
                    new: creds(&r.new_),
                });
                Some(e)
            }
            Record::Ptrace(r) => {
                let mut e = self.event(h, kind);
                let boot = self.host.boot;
                let target_id = self
                    .table
                    .start_of_pid(r.target_pid)
                    .map(|t| {
                        ProcessKey {
                            boot,
                            pid: r.target_pid,
                            start_ticks: t,
                        }
                        .to_string()
                    })
                    .unwrap_or_default();
                e.target = Some(Target {
                    pid: r.target_pid,
                    id: target_id,
                    request: ptrace_request(r.request).to_string(),
                });
                Some(e)
            }
            Record::Mount {
                rec: r,
                source,
                target,
                fstype,
            } => {
                let mut e = self.event(h, kind);
                e.mount = Some(Mount {
                    source: escape_bytes(cstr(source)),
                    target: escape_bytes(cstr(target)),
                    fstype: escape_bytes(cstr(fstype)),
                    flags: r.flags,
                    result: i64::from(r.ret),
                });
                Some(e)
            }
            Record::Module { rec: r, path } => {
                let mut e = self.event(h, kind);
                e.module = Some(Module {
                    syscall: syscall_name(r.syscall).to_string(),
                    path: (!path.is_empty()).then(|| escape_bytes(&components_to_path(path))),
                    result: i64::from(r.ret),
                });
                Some(e)
            }
            Record::Bpf(r) => {
                let mut e = self.event(h, kind);
                let name: Vec<u8> = r.prog_name.iter().map(|&c| c as u8).collect();
                e.bpf = Some(Bpf {
                    prog_type: r.prog_type,
                    prog_name: escape_bytes(cstr(&name)),
                    result: i64::from(r.ret),
                });
                Some(e)
            }
            Record::Repeat(r) => self.repeat(r),
            Record::Memfd { rec: r, name } => {
                let mut e = self.event(h, kind);
                e.memfd = Some(Memfd {
                    name: escape_bytes(cstr(name)),
                    flags: r.flags,
                    result: i64::from(r.ret),
                });
                Some(e)
            }
        }
    }

    /// Occurrences the kernel folded: the last full event of the same key, standing for
    /// `count` occurrences from the first to the last folded one.
    fn repeat(&mut self, r: &raw::cw_repeat) -> Option<Event> {
        let kind = Kind::from_code(r.key.kind)?;
        let key = FoldKey::of_repeat(r);
        let (process, file) = match self.folds.join(&key, r.last_ktime) {
            Some(j) => j,
            None => {
                // The full event was lost (counted where it was): still report the count,
                // with what the kernel key says.
                let pid = r.key.tgid;
                let id = self
                    .table
                    .start_of_pid(pid)
                    .map(|t| {
                        ProcessKey {
                            boot: self.host.boot,
                            pid,
                            start_ticks: t,
                        }
                        .to_string()
                    })
                    .unwrap_or_default();
                let p = Process {
                    id,
                    pid,
                    ..Default::default()
                };
                let f = File {
                    write: key.write,
                    inode: Some(key.ino),
                    ..Default::default()
                };
                (Arc::new(p), f)
            }
        };
        let mut e = Event::new(
            self.host.wall(r.first_ktime),
            kind,
            self.host.host.clone(),
            process,
        );
        e.file = Some(file);
        e.repeat = Some(Repeat {
            count: r.count,
            last_time: self.host.wall(r.last_ktime),
        });
        Some(e)
    }

    /// An exec the BPF-LSM hook refused: it never happened, so the process keeps its image
    /// in the table; the event names the file that was refused.
    fn lsm_denial(&mut self, h: &raw::cw_hdr, r: &raw::cw_exec, filename: &[u8]) -> Event {
        let mut e = self.event(h, Kind::ProcessExec);
        let name = escape_bytes(cstr(filename));
        e.exec = Some(Exec {
            filename: name,
            ..Default::default()
        });
        e.enforcement = Some(Enforcement {
            policy_id: r.policy_id,
            policy: String::new(),
            action: "blocked".to_string(),
            mechanism: "bpf_lsm".to_string(),
        });
        e
    }

    fn file(
        &mut self,
        h: &raw::cw_hdr,
        kind: Kind,
        r: &raw::cw_file,
        path: &[u8],
        path2: &[u8],
        dir: &[u8],
    ) -> Event {
        let dir_path = (!dir.is_empty()).then(|| components_to_path(dir));
        let resolve = |p: &[u8]| -> Vec<u8> {
            let p = cstr(p);
            match (&dir_path, p.first()) {
                (Some(d), Some(c)) if *c != b'/' => {
                    let mut full = d.clone();
                    if !full.ends_with(b"/") {
                        full.push(b'/');
                    }
                    full.extend_from_slice(p);
                    full
                }
                _ => p.to_vec(),
            }
        };
        let main = if flag(h, raw::CW_F_PATH_RAW) {
            resolve(path)
        } else {
            components_to_path(path)
        };
        let mut e = self.event(h, kind);
        e.file = Some(File {
            path: escape_bytes(&main),
            new_path: (!path2.is_empty()).then(|| escape_bytes(&resolve(path2))),
            flags: (kind == Kind::FileOpen).then_some(r.open_flags),
            write: flag(h, raw::CW_F_WRITE),
            sensitive: flag(h, raw::CW_F_SENSITIVE),
            mode: (kind == Kind::FileChmod).then_some(r.mode),
            inode: (r.ino != 0).then_some(r.ino),
            truncated: flag(h, raw::CW_F_PATH_TRUNC) || flag(h, raw::CW_F_CWD_TRUNC),
        });
        // The kernel folds later identical opens into repeats of this one (cw_helpers.h).
        if kind == Kind::FileOpen && r.ino != 0 && e.lane() == Lane::Bulk {
            if let Some(f) = &e.file {
                let key = FoldKey {
                    tgid: h.task.pid,
                    dev: r.dev,
                    ino: r.ino,
                    kind: kind.code(),
                    write: f.write,
                    exec_gen: u32::from(r.exec_gen),
                };
                self.folds.remember(key, &e.process, f, h.ktime);
            }
        }
        e
    }
}

fn network(r: &raw::cw_net) -> Network {
    let v6 = r.family == 10;
    let ip = |a: &[u8; 16]| -> String {
        if v6 {
            let addr = Ipv6Addr::from(*a);
            // Dual-stack sockets carry IPv4 peers as ::ffff:a.b.c.d; show them as IPv4 so the
            // two ends of one flow compare equal.
            match addr.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => addr.to_string(),
            }
        } else {
            Ipv4Addr::new(a[0], a[1], a[2], a[3]).to_string()
        }
    };
    Network {
        protocol: match r.protocol {
            6 => "tcp".into(),
            17 => "udp".into(),
            p => format!("ip-proto-{p}"),
        },
        family: if v6 { "ipv6".into() } else { "ipv4".into() },
        local: Endpoint {
            ip: ip(&r.laddr),
            port: r.lport,
        },
        remote: Endpoint {
            ip: ip(&r.raddr),
            port: r.rport,
        },
        in_progress: u32::from(r.hdr.flags) & raw::CW_F_INPROGRESS != 0,
    }
}

fn creds(c: &raw::cw_creds) -> Creds {
    Creds {
        uid: c.uid,
        euid: c.euid,
        suid: c.suid,
        fsuid: c.fsuid,
        gid: c.gid,
        egid: c.egid,
        sgid: c.sgid,
        fsgid: c.fsgid,
        cap_effective: c.cap_effective,
    }
}

/// Names of the syscalls records carry, from the one per-architecture table
/// (`bpf/include/cw_syscall_nr.h`) the probes match on.
fn syscall_name(nr: u32) -> &'static str {
    match nr {
        raw::CW_NR_setuid => "setuid",
        raw::CW_NR_setgid => "setgid",
        raw::CW_NR_setreuid => "setreuid",
        raw::CW_NR_setregid => "setregid",
        raw::CW_NR_setresuid => "setresuid",
        raw::CW_NR_setresgid => "setresgid",
        raw::CW_NR_setfsuid => "setfsuid",
        raw::CW_NR_setfsgid => "setfsgid",
        raw::CW_NR_capset => "capset",
        raw::CW_NR_init_module => "init_module",
        raw::CW_NR_finit_module => "finit_module",
        _ => "unknown",
    }
}

/// Names of the ptrace requests the probes report (same table as the syscalls).
fn ptrace_request(req: i64) -> &'static str {
    let Ok(req) = u32::try_from(req) else {
        return "PTRACE_OTHER";
    };
    match req {
        raw::CW_PTRACE_TRACEME => "PTRACE_TRACEME",
        raw::CW_PTRACE_POKETEXT => "PTRACE_POKETEXT",
        raw::CW_PTRACE_POKEDATA => "PTRACE_POKEDATA",
        raw::CW_PTRACE_POKEUSER => "PTRACE_POKEUSER",
        raw::CW_PTRACE_SETREGS => "PTRACE_SETREGS",
        raw::CW_PTRACE_ATTACH => "PTRACE_ATTACH",
        raw::CW_PTRACE_SETREGSET => "PTRACE_SETREGSET",
        raw::CW_PTRACE_SEIZE => "PTRACE_SEIZE",
        _ => "PTRACE_OTHER",
    }
}
