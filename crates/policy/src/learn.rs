//! Learning: a policy that allows exactly what the workload was seen doing.

use crate::diff::{fresh_id, normalise, Walker};
use crate::{NetRule, Policy, ProcessNode, Selector};
use causeway_model::timefmt::Timestamp;
use causeway_model::Event;
use std::collections::{HashMap, HashSet};

/// How a workload is chosen (see [`Selector`]).
pub type Selection = Selector;

/// Learn the policy of the workload `selection` picks from `events` in `[since, until]`.
/// Output is deterministic: nodes sorted by executable, ids derived from names in that order.
pub fn learn(
    events: &[Event],
    selection: &Selection,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Policy {
    let name = default_name(selection);
    let mut w = Walker::new(Policy::new(name, selection.clone()), false);
    w.run(events, since, until);
    let mut p = w.policy;
    if let (Some(f), Some(l)) = (w.first, w.last) {
        p.description = format!(
            "Learned from {} events between {} and {}.",
            w.events_seen,
            f.to_rfc3339(),
            l.to_rfc3339()
        );
    }
    let mut remap = HashMap::new();
    glob_siblings(&mut p.process_policy, &mut remap);
    rename(&mut p, &mut remap);
    normalise(&mut p);
    p
}

fn default_name(s: &Selector) -> String {
    let raw = match s {
        Selector::Exe(e) => crate::track::basename(e).to_string(),
        Selector::Container(c) => format!("container-{}", c.chars().take(12).collect::<String>()),
        Selector::Service(u) => u.trim_end_matches(".service").to_string(),
    };
    fresh_id(&HashSet::new(), &raw)
}

/// Siblings whose executables differ in exactly one directory component become one node
/// with `*` there (`/usr/lib/jvm/*/bin/java`). The file name and the top-level directory are
/// never globbed: `/usr/bin/*` or `/*/bin/sh`
/// would allow everything. Merged nodes' ids are recorded in `remap`.
fn glob_siblings(ns: &mut Vec<ProcessNode>, remap: &mut HashMap<String, String>) {
    let mut i = 0;
    while i < ns.len() {
        let mut j = i + 1;
        while j < ns.len() {
            let glob = match (ns[i].exe.as_slice(), ns[j].exe.as_slice()) {
                ([a], [b]) => pair_glob(a, b),
                _ => None,
            };
            if let Some(g) = glob {
                let b = ns.remove(j);
                ns[i].exe = vec![g];
                absorb(&mut ns[i], b, remap);
                // The wider glob may now cover siblings seen before `j`.
                j = i + 1;
                continue;
            }
            let covers = ns[i].exe.iter().any(|g| g.contains('*'))
                && ns[j].exe.len() == 1
                && ns[i]
                    .exe
                    .iter()
                    .any(|g| crate::track::glob_match(g, &ns[j].exe[0]));
            if covers {
                let b = ns.remove(j);
                absorb(&mut ns[i], b, remap);
                continue;
            }
            j += 1;
        }
        i += 1;
    }
    for n in ns.iter_mut() {
        glob_siblings(&mut n.children, remap);
    }
}

/// `a` and `b` as one glob, when they differ in one directory component (not the name).
fn pair_glob(a: &str, b: &str) -> Option<String> {
    if a == b {
        return None;
    }
    let ac: Vec<&str> = a.split('/').collect();
    let bc: Vec<&str> = b.split('/').collect();
    if ac.len() != bc.len() || ac.len() < 3 || ac.last() != bc.last() {
        return None;
    }
    let diff: Vec<usize> = (0..ac.len()).filter(|&k| ac[k] != bc[k]).collect();
    match diff.as_slice() {
        // Never the top-level directory (`/*/bin/x`) nor the file name.
        [k] if *k >= 2 && *k < ac.len() - 1 => {
            let mut out = ac.clone();
            out[*k] = "*";
            Some(out.join("/"))
        }
        // Already a glob covering `b`.
        _ => None,
    }
}

/// Merge node `b` into `a`: users, ports, and children (same executable = same child).
fn absorb(a: &mut ProcessNode, b: ProcessNode, remap: &mut HashMap<String, String>) {
    remap.insert(b.id.clone(), a.id.clone());
    a.euser.extend(b.euser);
    a.euser.sort();
    a.euser.dedup();
    a.listen.extend(b.listen);
    a.listen.sort();
    a.listen.dedup();
    for c in b.children {
        match a.children.iter_mut().find(|x| x.exe == c.exe) {
            Some(x) => absorb(x, c, remap),
            None => a.children.push(c),
        }
    }
}

/// Sort, then give every node the id its position and name call for, and point the network
/// rules at the new ids.
fn rename(p: &mut Policy, remap: &mut HashMap<String, String>) {
    normalise(p);
    let mut used = HashSet::new();
    let mut new_ids: HashMap<String, String> = HashMap::new();
    fn walk(ns: &mut [ProcessNode], used: &mut HashSet<String>, ids: &mut HashMap<String, String>) {
        for n in ns {
            let base = if n.name.is_empty() {
                "p"
            } else {
                n.name.as_str()
            };
            let id = fresh_id(used, base);
            used.insert(id.clone());
            ids.insert(n.id.clone(), id.clone());
            n.id = id;
            walk(&mut n.children, used, ids);
        }
    }
    walk(&mut p.process_policy, &mut used, &mut new_ids);
    let resolve = |old: &str| -> String {
        // Follow merges first (a merged node's id points at its survivor), bounded.
        let mut cur = old.to_string();
        for _ in 0..64 {
            match remap.get(&cur) {
                Some(n) if *n != cur => cur = n.clone(),
                _ => break,
            }
        }
        new_ids.get(&cur).cloned().unwrap_or(cur)
    };
    for rules in [&mut p.network_policy.ingress, &mut p.network_policy.egress] {
        for r in rules.iter_mut() {
            r.processes = r.processes.iter().map(|x| resolve(x)).collect();
        }
        // Rules that became identical in process and port after merging become one.
        let mut merged: Vec<NetRule> = Vec::new();
        for r in rules.drain(..) {
            match merged
                .iter_mut()
                .find(|m| m.processes == r.processes && m.ports == r.ports)
            {
                Some(m) => m.peers.extend(r.peers),
                None => merged.push(r),
            }
        }
        *rules = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use causeway_model::{Event, Host, Kind, Process};

    fn exec(t: i64, id: &str, parent: &str, exe: &str) -> Event {
        let p = Process {
            id: id.into(),
            parent_id: parent.into(),
            exe: exe.into(),
            euid: 0,
            ..Default::default()
        };
        Event::new(Timestamp(t), Kind::ProcessExec, Host::default(), p)
    }

    #[test]
    fn pair_globs_only_directories() {
        assert_eq!(
            pair_glob(
                "/usr/lib/jvm/java-17/bin/java",
                "/usr/lib/jvm/java-21/bin/java"
            )
            .as_deref(),
            Some("/usr/lib/jvm/*/bin/java")
        );
        assert_eq!(pair_glob("/usr/bin/ls", "/usr/bin/cat"), None);
        assert_eq!(pair_glob("/a/x/b/c", "/a/y/z/c"), None);
        assert_eq!(pair_glob("/opt/a", "/srv/a"), None);
    }

    #[test]
    fn sibling_versions_become_one_glob_node() {
        let ev = vec![
            exec(1, "root", "", "/usr/bin/launcher"),
            exec(2, "a", "root", "/usr/lib/jvm/java-17/bin/java"),
            exec(3, "b", "root", "/usr/lib/jvm/java-21/bin/java"),
            exec(4, "c", "root", "/usr/lib/jvm/java-8/bin/java"),
            exec(5, "d", "c", "/usr/bin/sh"),
        ];
        let p = learn(&ev, &Selector::Exe("/usr/bin/launcher".into()), None, None);
        let kids = &p.process_policy[0].children;
        assert_eq!(kids.len(), 1, "{}", p.to_yaml());
        assert_eq!(kids[0].exe, ["/usr/lib/jvm/*/bin/java"]);
        assert_eq!(kids[0].children[0].exe, ["/usr/bin/sh"]);
        assert!(crate::diff(&p, &ev, None, None).is_empty());
    }
}
