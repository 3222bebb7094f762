//! The live process table: what the agent knows about each running process (image, argv,
//! cwd, container), so every event, not only exec, carries the full picture. Fed by the
//! `/proc` snapshot, fork (the child inherits the parent's image) and exec (a new image);
//! an exited process stays a short while for late events, then goes.

use crate::cgroups::Cgroups;
use crate::procfs::{self, ProcInfo};
use causeway_model::{Container, Process, ProcessKey};
use std::collections::HashMap;
use std::sync::Arc;

/// How long an exited process stays for late events, in boot-clock ns.
const EXIT_GRACE_NS: u64 = 30_000_000_000;
/// A hard bound on the table, whatever the churn.
const MAX_ENTRIES: usize = 262_144;

/// What the agent knows of one process.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub start_ticks: u64,
    /// The rendered process id, made once per process rather than once per event.
    pub id: Arc<str>,
    pub exe: String,
    pub argv: Arc<Vec<String>>,
    pub argv_truncated: bool,
    pub cwd: String,
    pub container: Option<Container>,
    pub service: Option<String>,
    pub exited_at: Option<u64>,
    /// The process object every event of this image hands out, with the task facts it was
    /// made from: rebuilt only when those change (credentials, comm, parent, cgroup), so
    /// events share one `Arc` instead of copying argv each.
    pub shared: Option<(TaskFacts, Arc<Process>)>,
}

/// What the kernel's task header says that the process object shows, besides the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFacts {
    pub ppid: u32,
    pub parent_start: u64,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub auid: u32,
    pub sessionid: u32,
    pub tty: u32,
    pub cgroup_id: u64,
    /// Whether the cgroup was known when the object was made (it may be learned later).
    pub cgroup_known: bool,
    pub comm: [std::ffi::c_char; 16],
}

/// Processes by pid; an entry only answers for the (pid, start) it was made for.
#[derive(Debug, Default)]
pub struct Table {
    by_pid: HashMap<u32, Entry>,
    pub cgroups: Cgroups,
}

impl Table {
    pub fn new() -> Self {
        Table {
            by_pid: HashMap::new(),
            cgroups: Cgroups::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_pid.is_empty()
    }

    /// Insert what /proc said.
    pub fn insert_proc(&mut self, p: &ProcInfo, cgroup_id: Option<u64>) -> &Entry {
        let cg = match cgroup_id {
            Some(id) => self.cgroups.learn(id, p.cgroup.clone()).clone(),
            None => crate::cgroups::CgroupInfo::from_path(p.cgroup.clone()),
        };
        let e = Entry {
            start_ticks: p.start_ticks,
            id: Arc::from(""),
            exe: p.exe.clone(),
            argv: Arc::new(p.argv.clone()),
            argv_truncated: false,
            cwd: p.cwd.clone(),
            container: cg.container,
            service: cg.service,
            exited_at: None,
            shared: None,
        };
        self.by_pid.insert(p.pid, e);
        &self.by_pid[&p.pid]
    }

    /// The entry for exactly this process, reading /proc once if we never met it.
    pub fn get(&mut self, key: &ProcessKey) -> Option<&mut Entry> {
        let known = self
            .by_pid
            .get(&key.pid)
            .is_some_and(|e| e.start_ticks == key.start_ticks);
        if !known {
            match procfs::read_proc(key.pid).filter(|p| p.start_ticks == key.start_ticks) {
                Some(p) => {
                    self.insert_proc(&p, None);
                }
                // Gone already: remember that, so its later events do not search /proc again.
                None => {
                    let placeholder = Entry {
                        start_ticks: key.start_ticks,
                        ..Default::default()
                    };
                    self.by_pid.insert(key.pid, placeholder);
                }
            }
        }
        let e = self.by_pid.get_mut(&key.pid)?;
        if e.id.is_empty() {
            e.id = Arc::from(key.to_string());
        }
        Some(e)
    }

    /// The rendered id of a process if the table knows it, without touching /proc.
    pub fn peek_id(&self, key: &ProcessKey) -> Option<Arc<str>> {
        self.by_pid
            .get(&key.pid)
            .filter(|e| e.start_ticks == key.start_ticks && !e.id.is_empty())
            .map(|e| Arc::clone(&e.id))
    }

    /// Start ticks of the process that has (or last had) this pid, from the table or /proc.
    pub fn start_of_pid(&self, pid: u32) -> Option<u64> {
        match self.by_pid.get(&pid) {
            Some(e) => Some(e.start_ticks),
            None => procfs::stat_fields(pid).map(|f| f.1),
        }
    }

    /// A new process from fork: it runs its parent's image.
    pub fn fork(&mut self, child: &ProcessKey, parent: &ProcessKey) {
        let mut e = self.get(parent).map(|e| e.clone()).unwrap_or_default();
        e.start_ticks = child.start_ticks;
        e.id = Arc::from("");
        e.exited_at = None;
        e.shared = None;
        self.by_pid.insert(child.pid, e);
    }

    /// A new image in an existing process.
    pub fn exec(&mut self, key: &ProcessKey, update: Entry) {
        self.by_pid.insert(
            key.pid,
            Entry {
                start_ticks: key.start_ticks,
                shared: None,
                ..update
            },
        );
    }

    /// Mark exited; purge what is past its grace.
    pub fn exit(&mut self, key: &ProcessKey, now_boot_ns: u64) {
        if let Some(e) = self.by_pid.get_mut(&key.pid) {
            if e.start_ticks == key.start_ticks {
                e.exited_at = Some(now_boot_ns);
            }
        }
    }

    /// Drop exited processes past their grace; returns how many went.
    pub fn purge(&mut self, now_boot_ns: u64) -> usize {
        let before = self.by_pid.len();
        let grace = if before > MAX_ENTRIES {
            0
        } else {
            EXIT_GRACE_NS
        };
        self.by_pid.retain(|_, e| match e.exited_at {
            Some(t) => now_boot_ns.saturating_sub(t) < grace,
            None => true,
        });
        before - self.by_pid.len()
    }
}
