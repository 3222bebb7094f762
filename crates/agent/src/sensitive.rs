//! The sensitive-file set: paths whose *reads* are reported (writes always are). The kernel
//! matches by (device, inode), not by path, so the check costs one hash lookup per open and
//! cannot be dodged with `..`, symlinks or hard links. A directory in the set covers its direct
//! children, including files created later (new `~/.ssh/id_ed25519`). Files that are replaced
//! by rename (as `passwd` does to `/etc/shadow`) get a new inode, so the set is re-resolved
//! periodically by the agent.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Paths watched by default. `*` matches one path component.
pub const DEFAULT_SENSITIVE: &[&str] = &[
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/security/opasswd",
    "/etc/ssh/ssh_host_*_key",
    "/root/.ssh",
    "/home/*/.ssh",
    "/root/.aws",
    "/home/*/.aws",
    "/root/.config/gcloud",
    "/home/*/.config/gcloud",
    "/root/.azure",
    "/home/*/.azure",
    "/root/.kube",
    "/home/*/.kube",
    "/root/.docker/config.json",
    "/home/*/.docker/config.json",
    "/root/.gnupg",
    "/home/*/.gnupg",
    "/root/.bash_history",
    "/home/*/.bash_history",
    "/var/run/secrets/kubernetes.io/serviceaccount",
    "/run/secrets/kubernetes.io/serviceaccount",
];

/// Expand `*` components (one level each) into existing paths.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let mut acc = vec![PathBuf::from("/")];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in &acc {
            if comp.contains('*') {
                let Ok(rd) = std::fs::read_dir(base) else {
                    continue;
                };
                for e in rd.flatten() {
                    let name = e.file_name();
                    if glob_match(comp, &name.to_string_lossy()) {
                        next.push(base.join(name));
                    }
                }
            } else {
                next.push(base.join(comp));
            }
        }
        acc = next;
    }
    acc.into_iter().filter(|p| p.exists()).collect()
}

/// `*` matches any run of characters within one component.
fn glob_match(pat: &str, s: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// Kernel dev_t `(major << 20) | minor` from a userspace `st_dev`.
pub fn kernel_dev(st_dev: u64) -> u32 {
    let major = libc::major(st_dev);
    let minor = libc::minor(st_dev);
    (major << 20) | (minor & 0xfffff)
}

/// (dev, ino) of every existing path the patterns name.
pub fn resolve(patterns: &[String]) -> Vec<(u32, u64, PathBuf)> {
    patterns
        .iter()
        .flat_map(|p| expand(p))
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((kernel_dev(m.dev()), m.ino(), p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globbing() {
        assert!(glob_match("ssh_host_*_key", "ssh_host_rsa_key"));
        assert!(!glob_match("ssh_host_*_key", "ssh_host_rsa_key.pub"));
        assert!(glob_match("*", "anything"));
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("u1/.ssh")).unwrap();
        std::fs::create_dir_all(d.path().join("u2")).unwrap();
        let pat = format!("{}/*/.ssh", d.path().display());
        assert_eq!(expand(&pat), vec![d.path().join("u1/.ssh")]);
    }
}
