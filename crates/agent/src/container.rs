//! Container and service attribution from a cgroup v2 path, without talking to any runtime
//! socket: runtimes name the cgroups they create after the container id, in a few well-known
//! shapes (systemd driver `docker-<id>.scope`, cgroupfs driver `/docker/<id>`, CRI
//! `cri-containerd-<id>.scope` / `crio-<id>.scope` under `kubepods…pod<uid>…`, podman
//! `libpod-<id>`), and plain OCI runtimes (runc) default to `/<id>`.

use causeway_model::Container;

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// (runtime, id) from one path segment, if it names a container.
fn segment(seg: &str, parent: Option<&str>) -> Option<(&'static str, String)> {
    let base = seg.strip_suffix(".scope").unwrap_or(seg);
    const PREFIXES: [(&str, &str); 5] = [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
        ("containerd-", "containerd"),
    ];
    for (prefix, runtime) in PREFIXES {
        if let Some(id) = base.strip_prefix(prefix) {
            if is_hex_id(id) {
                return Some((runtime, id.to_string()));
            }
        }
    }
    if is_hex_id(base) {
        let runtime = match parent {
            Some("docker") => "docker",
            Some(p) if p.starts_with("libpod") => "podman",
            Some(p) if p.starts_with("pod") || p.starts_with("kubepods") => "cri",
            _ => "oci",
        };
        return Some((runtime, base.to_string()));
    }
    None
}

/// Kubernetes pod UID from a segment like `kubepods-burstable-pod<uid>.slice` or `pod<uid>`.
fn pod_uid(seg: &str) -> Option<String> {
    let base = seg.strip_suffix(".slice").unwrap_or(seg);
    let idx = base.rfind("pod")?;
    let uid = &base[idx + 3..];
    let ok = uid.len() == 36
        && uid
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-' || b == b'_');
    ok.then(|| uid.replace('_', "-"))
}

/// The container a cgroup path belongs to; `None` for host processes.
pub fn container_of(path: &str) -> Option<Container> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut pod = None;
    let mut found = None;
    for (i, seg) in segs.iter().enumerate() {
        if let Some(uid) = pod_uid(seg) {
            pod = Some(uid);
        }
        let parent = if i > 0 { Some(segs[i - 1]) } else { None };
        if let Some(hit) = segment(seg, parent) {
            found = Some(hit);
        }
    }
    let (runtime, id) = found?;
    Some(Container {
        id,
        runtime: runtime.to_string(),
        pod_uid: pod,
        cgroup: Some(path.to_string()),
    })
}

/// The systemd service unit of a host process, e.g. `ssh.service`.
pub fn service_of(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .find(|s| s.ends_with(".service"))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn shapes() {
        let c = container_of(&format!("/system.slice/docker-{ID}.scope")).unwrap();
        assert_eq!((c.runtime.as_str(), c.id.as_str()), ("docker", ID));
        let c = container_of(&format!("/docker/{ID}")).unwrap();
        assert_eq!(c.runtime, "docker");
        let c = container_of(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7181_92a3_b4c5d6e7f809.slice/cri-containerd-{ID}.scope"
        ))
        .unwrap();
        assert_eq!(c.runtime, "containerd");
        assert_eq!(
            c.pod_uid.as_deref(),
            Some("1b2c3d4e-5f60-7181-92a3-b4c5d6e7f809")
        );
        assert_eq!(
            container_of(&format!("/libpod_parent/libpod-{ID}"))
                .unwrap()
                .runtime,
            "podman"
        );
        assert_eq!(container_of(&format!("/{ID}")).unwrap().runtime, "oci");
        assert_eq!(
            container_of("/user.slice/user-0.slice/session-1.scope"),
            None
        );
        assert_eq!(container_of("/system.slice/ssh.service"), None);
        assert_eq!(
            service_of("/system.slice/ssh.service").as_deref(),
            Some("ssh.service")
        );
    }
}
