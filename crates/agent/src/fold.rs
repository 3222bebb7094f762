//! Joins the kernel's repeat records to what they repeat. The kernel folds identical file
//! occurrences of one process (same file, kind and write bit) into a `CW_REPEAT` record that
//! carries only the key, a count and the first/last time, since it may be sent by the sweep,
//! outside the process. The agent remembers the last full event of each key (its shared
//! process and its file object) and gives the repeat the same picture, with `repeat` set.
//!
//! Bounded like the kernel's table: entries idle for longer than the kernel keeps its own
//! (two windows) plus a margin go on the 10 s purge, and a full table takes no new key (its
//! repeats are then reported with the process and inode only, counted as unjoined).

use causeway_abi::raw;
use causeway_model::{File, Process};
use std::collections::HashMap;
use std::sync::Arc;

/// Twice the kernel's table: room for every live kernel key plus ones it just deleted.
const MAX_TEMPLATES: usize = 2 * raw::CW_AGG_ENTRIES as usize;
/// A template idle this long (boot-clock ns) can have no more repeats in the kernel.
const IDLE_NS: u64 = 10_000_000_000;

/// The kernel's fold key (`struct cw_agg_key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FoldKey {
    pub tgid: u32,
    pub dev: u32,
    pub ino: u64,
    pub kind: u16,
    pub write: bool,
    /// Which image of the process (low bits of its exec count).
    pub exec_gen: u32,
}

impl FoldKey {
    pub fn of_repeat(r: &raw::cw_repeat) -> FoldKey {
        FoldKey {
            tgid: r.key.tgid,
            dev: r.key.dev,
            ino: r.key.ino,
            kind: r.key.kind,
            write: r.key.write != 0,
            exec_gen: r.key.exec_gen,
        }
    }
}

#[derive(Debug)]
struct Template {
    process: Arc<Process>,
    file: File,
    seen_ns: u64,
}

/// The last full event of every key the kernel may fold.
#[derive(Debug, Default)]
pub struct Folds {
    templates: HashMap<FoldKey, Template>,
    /// Repeats whose full event the agent never saw (lost in a full ring, or the table full).
    pub unjoined: u64,
}

impl Folds {
    /// Remember a full event that later repeats of `key` stand for.
    pub fn remember(&mut self, key: FoldKey, process: &Arc<Process>, file: &File, now_ns: u64) {
        if self.templates.len() >= MAX_TEMPLATES && !self.templates.contains_key(&key) {
            return;
        }
        self.templates.insert(
            key,
            Template {
                process: Arc::clone(process),
                file: file.clone(),
                seen_ns: now_ns,
            },
        );
    }

    /// The process and file a repeat stands for, if its full event was seen.
    pub fn join(&mut self, key: &FoldKey, now_ns: u64) -> Option<(Arc<Process>, File)> {
        match self.templates.get_mut(key) {
            Some(t) => {
                t.seen_ns = now_ns;
                Some((Arc::clone(&t.process), t.file.clone()))
            }
            None => {
                self.unjoined += 1;
                None
            }
        }
    }

    /// Forget keys idle past any repeat the kernel could still send.
    pub fn purge(&mut self, now_ns: u64) {
        self.templates
            .retain(|_, t| now_ns.saturating_sub(t.seen_ns) < IDLE_NS);
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}
