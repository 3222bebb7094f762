//! cgroup v2 id → path → container, cached. Exec records carry the path the kernel walked;
//! other records carry only the id, which is the inode number of the cgroup directory, so a
//! miss is resolved once by searching the cgroup2 mount for that inode.

use crate::container::{container_of, service_of};
use causeway_model::Container;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a cgroup tells about the processes in it.
#[derive(Debug, Clone, Default)]
pub struct CgroupInfo {
    pub path: String,
    pub container: Option<Container>,
    pub service: Option<String>,
}

impl CgroupInfo {
    pub fn from_path(path: String) -> Self {
        CgroupInfo {
            container: container_of(&path),
            service: service_of(&path),
            path,
        }
    }
}

/// Cache of cgroup ids.
#[derive(Debug)]
pub struct Cgroups {
    root: Option<PathBuf>,
    by_id: HashMap<u64, CgroupInfo>,
}

/// Where cgroup2 is mounted (`/sys/fs/cgroup` on unified hosts, `…/unified` on hybrid ones).
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f.get(1).copied().unwrap_or("")))
        })
        .next()
}

impl Default for Cgroups {
    fn default() -> Self {
        Self::new()
    }
}

impl Cgroups {
    pub fn new() -> Self {
        Cgroups {
            root: cgroup2_root(),
            by_id: HashMap::new(),
        }
    }

    /// The cgroup2 mount point, if any.
    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Remember what an exec record (or /proc) said about this id. The kernel's own walk is
    /// authoritative: it replaces an earlier miss (a short-lived cgroup may be gone before a
    /// filesystem search for it runs).
    pub fn learn(&mut self, id: u64, path: String) -> &CgroupInfo {
        let entry = self.by_id.entry(id).or_default();
        if entry.path != path {
            *entry = CgroupInfo::from_path(path);
        }
        entry
    }

    /// Look an id up, resolving a miss through the filesystem once.
    pub fn get(&mut self, id: u64) -> Option<&CgroupInfo> {
        if id == 0 {
            return None;
        }
        if !self.by_id.contains_key(&id) {
            let path = self
                .root
                .as_deref()
                .and_then(|r| find_inode(r, r, id, 0))
                .unwrap_or_default();
            // Remember misses too (empty path), so a vanished cgroup costs one search only.
            self.by_id.insert(id, CgroupInfo::from_path(path));
        }
        self.by_id.get(&id)
    }
}

fn find_inode(root: &Path, dir: &Path, ino: u64, depth: usize) -> Option<String> {
    if depth > 16 {
        return None;
    }
    let meta = std::fs::metadata(dir).ok()?;
    if meta.ino() == ino {
        let rel = dir.strip_prefix(root).ok()?;
        return Some(format!("/{}", rel.to_string_lossy()));
    }
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(p) = find_inode(root, &entry.path(), ino, depth + 1) {
                return Some(p);
            }
        }
    }
    None
}
