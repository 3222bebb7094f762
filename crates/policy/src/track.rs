//! The process-image tracker shared by learning and diffing, plus the small matchers
//! (globs, users, selectors) both use.
//!
//! An *instance* is one image of one process: an exec starts a new instance whose parent is
//! the image that ran before it in the same process (after a fork, that is the parent's
//! image). A process first seen without an exec and with its parent's executable is a fork
//! that never exec'd: it shares its parent's instance, so worker forks of a server are the
//! server's node, not children of it.

use crate::Selector;
use causeway_model::{Event, Kind};
use std::collections::HashMap;
use std::sync::LazyLock;

/// One image of one process.
#[derive(Debug, Clone)]
pub struct Instance {
    pub exe: String,
    pub euid: u32,
    pub parent: Option<usize>,
    /// The process belongs to the selected workload.
    pub in_workload: bool,
}

/// Replays events into instances.
#[derive(Debug, Default)]
pub struct Tracker {
    pub instances: Vec<Instance>,
    current: HashMap<String, usize>,
}

impl Tracker {
    /// Feed one event (in time order). Returns the instance the event belongs to and whether
    /// this event created it; `None` for events without a process id.
    pub fn step(&mut self, e: &Event, sel: &Selector) -> Option<(usize, bool)> {
        let p = &e.process;
        if p.id.is_empty() {
            return None;
        }
        let known = self.current.get(&p.id).copied();
        let parent_inst = self.current.get(&p.parent_id).copied();
        if e.kind != Kind::ProcessExec {
            if let Some(i) = known {
                return Some((i, false));
            }
            // First sight without an exec: a fork still running the parent's image shares
            // the parent's instance.
            if let Some(pi) = parent_inst {
                if self
                    .instances
                    .get(pi)
                    .is_some_and(|x| x.exe == p.exe || (p.exe.is_empty() && x.exe == "[unknown]"))
                {
                    self.current.insert(p.id.clone(), pi);
                    return Some((pi, false));
                }
            }
        }
        // A new image: after an exec, the previous image of this process is its parent;
        // otherwise (first exec, or a process found without one) the parent process's.
        let parent = if e.kind == Kind::ProcessExec {
            known.or(parent_inst)
        } else {
            parent_inst
        };
        let parent_in = parent
            .and_then(|i| self.instances.get(i))
            .is_some_and(|x| x.in_workload);
        let in_workload = parent_in || selects(sel, e);
        // An image without a path (kernel threads, unresolved) still needs a node name that
        // a policy file can spell.
        let exe = if p.exe.is_empty() {
            "[unknown]".to_string()
        } else {
            p.exe.clone()
        };
        self.instances.push(Instance {
            exe,
            euid: p.euid,
            parent,
            in_workload,
        });
        let idx = self.instances.len() - 1;
        self.current.insert(p.id.clone(), idx);
        Some((idx, true))
    }

    /// The parent instance if it is in the workload (else this instance is a root).
    pub fn workload_parent(&self, i: usize) -> Option<usize> {
        let p = self.instances.get(i)?.parent?;
        self.instances.get(p).filter(|x| x.in_workload).map(|_| p)
    }
}

/// Does this event's process start the selected workload (when its parent is outside it)?
pub fn selects(sel: &Selector, e: &Event) -> bool {
    let p = &e.process;
    match sel {
        Selector::Exe(g) => glob_match(g, &p.exe),
        Selector::Container(c) => p.container.as_ref().is_some_and(|k| {
            // Docker's short ids are 12-digit prefixes of the runtime id.
            !c.is_empty() && (k.id == *c || (c.len() >= 12 && k.id.starts_with(c.as_str())))
        }),
        Selector::Service(s) => p
            .service
            .as_deref()
            .is_some_and(|u| u == s || u.strip_suffix(".service") == Some(s.as_str())),
    }
}

/// `*` matches any run of characters within one path component; nothing else is special.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    if !pattern.contains('*') {
        return pattern == path;
    }
    let pc: Vec<&str> = pattern.split('/').collect();
    let xc: Vec<&str> = path.split('/').collect();
    pc.len() == xc.len() && pc.iter().zip(&xc).all(|(p, x)| component_match(p, x))
}

fn component_match(p: &str, x: &str) -> bool {
    // Classic two-pointer wildcard match with backtracking to the last star: linear-ish,
    // no recursion, so hostile patterns cannot blow the stack.
    let (p, x): (Vec<char>, Vec<char>) = (p.chars().collect(), x.chars().collect());
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < x.len() {
        if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == x[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Users from this machine's `/etc/passwd`, for policies that name users other than root.
static PASSWD: LazyLock<HashMap<String, u32>> = LazyLock::new(|| {
    let text = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), uid))
        })
        .collect()
});

/// Does a policy's user entry (`root`, a decimal uid, or a name) mean this uid?
pub fn user_matches(spec: &str, uid: u32) -> bool {
    if spec == "root" {
        return uid == 0;
    }
    if let Ok(n) = spec.parse::<u32>() {
        return n == uid;
    }
    PASSWD.get(spec) == Some(&uid)
}

/// How learning writes a uid: `root` for 0 (the same everywhere), else the number, which
/// unlike a name means the same on the host that learned and the host that enforces.
pub fn user_name(uid: u32) -> String {
    if uid == 0 {
        "root".into()
    } else {
        uid.to_string()
    }
}

/// The last path component.
pub fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "/usr/lib/jvm/*/bin/java",
            "/usr/lib/jvm/java-17/bin/java"
        ));
        assert!(!glob_match(
            "/usr/lib/jvm/*/bin/java",
            "/usr/lib/jvm/a/b/bin/java"
        ));
        assert!(glob_match("/usr/bin/python3.*", "/usr/bin/python3.12"));
        assert!(!glob_match("/usr/bin/python3.*", "/usr/bin/python2.7"));
        assert!(glob_match("/a/*x*y", "/a/xxyy"));
        assert!(!glob_match("/a/b", "/a/c"));
        assert!(glob_match("/a/**", "/a/"));
    }

    #[test]
    fn users() {
        assert!(user_matches("root", 0));
        assert!(user_matches("1000", 1000));
        assert!(!user_matches("1000", 1001));
        assert_eq!(user_name(0), "root");
    }
}
