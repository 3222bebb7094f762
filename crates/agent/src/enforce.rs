//! From an executable policy (which workload, which executables it may run, audit or enforce)
//! to the kernel's tables. Paths and globs are resolved to (device, inode) here, once; the
//! probes compare inodes, so a renamed or hard-linked binary keeps its verdict and a copy of
//! an allowed binary elsewhere does not inherit it.

use crate::sensitive::{expand, kernel_dev};
use causeway_probes::{Mode, PolicyMaps, ProbeError};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// What to enforce for one policy.
#[derive(Debug, Clone)]
pub struct ExecPolicy {
    /// Kernel-side id (non-zero), also reported in enforcement events.
    pub id: u32,
    pub mode: Mode,
    /// Executables whose running puts a process (and its descendants) under the policy.
    pub root_executables: Vec<String>,
    /// cgroup v2 ids whose processes are under the policy (containers).
    pub cgroups: Vec<u64>,
    /// Executables the workload may run (paths; `*` matches one path component).
    pub allowed: Vec<String>,
}

/// What was loaded, for the operator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    pub allowed_files: usize,
    pub roots: usize,
    /// Patterns that matched no file (reported, not fatal: a package may not be installed).
    pub unresolved: Vec<String>,
}

fn files(pattern: &str) -> Vec<(u32, u64, PathBuf)> {
    expand(pattern)
        .into_iter()
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            m.is_file().then(|| (kernel_dev(m.dev()), m.ino(), p))
        })
        .collect()
}

/// Load one policy into the kernel's tables.
pub fn apply(maps: &PolicyMaps, p: &ExecPolicy) -> Result<Applied, ProbeError> {
    let mut out = Applied::default();
    for pat in &p.allowed {
        let found = files(pat);
        if found.is_empty() {
            out.unresolved.push(pat.clone());
        }
        for (dev, ino, _) in found {
            maps.allow(p.id, dev, ino)?;
            out.allowed_files += 1;
        }
    }
    // Roots are allowed too: the root runs its own executable.
    for pat in &p.root_executables {
        let found = files(pat);
        if found.is_empty() {
            out.unresolved.push(pat.clone());
        }
        for (dev, ino, _) in found {
            maps.allow(p.id, dev, ino)?;
            maps.scope_executable(dev, ino, p.id, p.mode)?;
            out.roots += 1;
        }
    }
    for cg in &p.cgroups {
        maps.scope_cgroup(*cg, p.id, p.mode)?;
        out.roots += 1;
    }
    Ok(out)
}
