//! Small derived values shared by the CEL view ([`crate::lazy`]) and the incident engine:
//! basenames, the session of a process, and `lists:` as CEL sets.

use causeway_model::Process;
use cel::objects::{Key, Map};
use cel::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The last path component.
pub fn basename(p: &str) -> &str {
    let t = p.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

/// The login or service session a process belongs to, derived from its ancestry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// Audit session id when set.
    pub id: Option<u32>,
    pub tty: Option<String>,
    /// Login uid (who logged in), when set.
    pub user: Option<u32>,
    /// The oldest process of the session: the login shell's parent chain entry (sshd child,
    /// login, terminal) or the service's main process.
    pub entry_id: String,
    pub entry_exe: String,
    /// A terminal is attached.
    pub interactive: bool,
    /// The session's process runs as root (uid 0) while a user logged in, or the user is root.
    pub privileged: bool,
}

/// Derive the session of `p` from its ancestors (parent first).
pub fn session<P: std::ops::Deref<Target = Process>>(p: &Process, ancestors: &[P]) -> Session {
    // The oldest ancestor that shares the audit session id (or, without one, the tty).
    let same = |a: &Process| match p.session {
        Some(s) => a.session == Some(s),
        None => p.tty.is_some() && a.tty == p.tty,
    };
    let mut entry = p;
    for a in ancestors {
        if same(a) {
            entry = a;
        } else {
            break;
        }
    }
    Session {
        id: p.session,
        tty: p.tty.clone(),
        user: p.auid,
        entry_id: entry.id.clone(),
        entry_exe: entry.exe.clone(),
        interactive: p.tty.is_some(),
        privileged: p.euid == 0 || p.auid == Some(0),
    }
}

/// A list from `lists:` as CEL sees it: a map from each item to `true`, so `x in list` is
/// a hash lookup rather than a scan, while `list.exists(d, ...)` still iterates the items.
pub fn string_set(items: &[String]) -> Value {
    let m: HashMap<Key, Value> = items
        .iter()
        .map(|x| (Key::String(Arc::new(x.clone())), Value::Bool(true)))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}
