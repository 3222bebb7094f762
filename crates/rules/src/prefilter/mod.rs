//! Prefilter: a necessary condition of each rule, evaluated in plain Rust before any CEL.
//!
//! Each condition (with the macros it names) is translated into a small guard tree over
//! cheap derived values of the event (process name, exe, command line, file path, ...).
//! Evaluating a guard yields the *set* of outcomes CEL could produce ([`Mask`]: true,
//! false, error): an atom the translator understands is computed exactly as CEL would,
//! anything else is "any outcome". `&&`, `||`, `!`, `?:` and `exists` combine the sets
//! with CEL's own semantics (errors absorbed by a deciding operand), so a guard without
//! `true` in its set proves the condition cannot be true for the event: the rule is
//! skipped without running CEL, and the flags are exactly those of running every rule.
//!
//! On top of the guards, rules of a kind are indexed by literal keys their guard requires
//! (`event.process.name in shells`, `event.process.name == "nsenter"`): an event looks up
//! its derived values in hash maps and only the rules found there, plus the rules without
//! such a key, are considered at all.

mod build;
mod run;
mod spec;

use causeway_model::Kind;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(crate) use build::Builder;
pub(crate) use run::GuardCtx;

/// Longest list turned into one pattern of a set (longer lists on a field without a
/// literal index stay unkeyed).
const MAX_ALTERNATION: usize = 256;

/// Set of possible outcomes of a boolean CEL expression.
pub(crate) type Mask = u8;
pub(crate) const T: Mask = 1;
pub(crate) const F: Mask = 2;
pub(crate) const E: Mask = 4;
pub(crate) const ANY: Mask = T | F | E;

/// A field of the event as the lazy CEL view ([`crate::lazy`]) exposes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Fld {
    Kind,
    /// The process object itself (non-null for the event's; `parent` may be null).
    ProcSelf,
    HostName,
    HostId,
    ProcId,
    ProcPid,
    ProcPpid,
    ProcParentId,
    ProcExe,
    ProcName,
    ProcCmdline,
    ProcArgvTruncated,
    ProcCwd,
    ProcComm,
    ProcUid,
    ProcEuid,
    ProcGid,
    ProcEgid,
    ProcAuid,
    ProcSession,
    ProcTty,
    ProcService,
    ProcContainer,
    ContainerId,
    ContainerRuntime,
    Exec,
    ExecFilename,
    ExecMemfd,
    ExecDeleted,
    ExecSetid,
    ExecSnapshot,
    Network,
    NetProtocol,
    NetFamily,
    NetInProgress,
    NetLocalIp,
    NetLocalPort,
    NetRemoteIp,
    NetRemotePort,
    File,
    FilePath,
    FileName,
    FileNewPath,
    FileFlags,
    FileWrite,
    FileSensitive,
    FileMode,
    FileTruncated,
    FileSetuid,
    FileSetgid,
    FileExecutable,
    Cred,
    CredSyscall,
    /// `(new, field)`: a field of `event.cred.old` (false) or `event.cred.new` (true).
    Creds(bool, CredsFld),
    Target,
    TargetPid,
    TargetId,
    TargetRequest,
    Mount,
    MountSource,
    MountTarget,
    MountFstype,
    MountResult,
    Module,
    ModuleSyscall,
    ModulePath,
    ModuleResult,
    Bpf,
    BpfProgType,
    BpfProgName,
    BpfResult,
    Memfd,
    MemfdName,
    MemfdFlags,
    MemfdResult,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CredsFld {
    Uid,
    Euid,
    Suid,
    Fsuid,
    Gid,
    Egid,
    Sgid,
    Fsgid,
    CapCount,
}

/// Whose field: the event's (its process for `Proc*` fields), `parent`'s, or the ancestor
/// bound by the enclosing loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PRef {
    Event,
    Parent,
    Var,
}

/// What a runtime loop iterates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loop {
    /// `event.process.argv` (the variable is a string).
    Argv,
    /// `ancestors` (the variable is a process).
    Ancestors,
}

/// A string-valued expression.
#[derive(Debug, Clone)]
pub(crate) enum S {
    Unknown,
    Lit(String),
    Field(PRef, Fld),
    /// `string(int)`.
    IntStr(Box<I>),
    Lower(Box<S>),
    Basename(Box<S>),
    /// `event.process.argv[i]`.
    Arg(usize),
    /// The element of `event.process.argv` bound by the enclosing [`B::Loop`].
    Var,
    Cond(Box<B>, Box<S>, Box<S>),
}

/// An int-valued expression.
#[derive(Debug, Clone)]
pub(crate) enum I {
    Unknown,
    Field(PRef, Fld),
    ArgvLen,
    /// `size()` of a string (code points).
    StrLen(Box<S>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrOp {
    Starts,
    Ends,
    Contains,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A boolean expression: evaluates to the [`Mask`] of outcomes CEL could produce.
#[derive(Debug, Clone)]
pub(crate) enum B {
    Const(Mask),
    And(Box<B>, Box<B>),
    Or(Box<B>, Box<B>),
    Not(Box<B>),
    Cond(Box<B>, Box<B>, Box<B>),
    /// A boolean macro, memoised per event.
    Macro(usize),
    Field(PRef, Fld),
    /// `x == y` (or `!=` when the flag is set) over strings.
    Eq(Box<S>, Box<S>, bool),
    /// `x == null` (or `!=`) for a field that may be null.
    IsNull(PRef, Fld, bool),
    In(Box<S>, Arc<HashSet<String>>),
    Str(Box<S>, StrOp, Box<S>),
    /// `x.matches(literal)`; the index is the per-event memo slot (None inside loops).
    Regex(Box<S>, Arc<regex::Regex>, Option<usize>),
    Int(I, Cmp, i64),
    /// `range.exists(v, ...)` (true flag) or `range.all(v, ...)`.
    Loop(Loop, bool, Box<B>),
}

/// A literal key a rule's guard requires: the derived value must be one of the literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Subject {
    pub fld: Fld,
    pub lower: bool,
}

/// Rules of one kind, by key.
#[derive(Debug, Default)]
pub(crate) struct KindIndex {
    /// Every rule's guard and every macro's, specialised to the kind (see [`spec`]); the
    /// guards of rules of other kinds are never read.
    pub guards: Vec<B>,
    pub macros: Vec<B>,
    /// For each subject, literal -> positions in `Ruleset::rules` (ascending).
    pub keyed: Vec<(Subject, HashMap<String, Vec<usize>>)>,
    /// For each string expression, the patterns rules require of it, as one set.
    pub rx: Vec<RxGroup>,
    /// Rules with no key: considered for every event of the kind (ascending).
    pub rest: Vec<usize>,
}

/// Rules keyed by patterns over one string expression: one pass of a [`regex::RegexSet`]
/// finds the patterns that match, and so the only rules of the group that may.
#[derive(Debug)]
pub(crate) struct RxGroup {
    pub subject: S,
    pub set: regex::RegexSet,
    /// Rules by pattern index.
    pub rules: Vec<Vec<usize>>,
    /// Every rule of the group, for a subject that is null or not known.
    pub all: Vec<usize>,
}

/// One way a guard can hold: a literal key or a pattern over a string expression.
#[derive(Debug, Clone)]
enum KeyAtom {
    Lit(Subject, HashSet<String>),
    Rx(S, String),
}

/// Guards and the index, built once per ruleset.
#[derive(Debug, Default)]
pub struct Prefilter {
    /// One guard per rule (same order as `Ruleset::rules`); `Const(ANY)` when nothing is known.
    pub(crate) guards: Vec<B>,
    pub(crate) macros: Vec<B>,
    pub(crate) regex_slots: usize,
    pub(crate) by_kind: HashMap<Kind, KindIndex>,
}

/// What the prefilter covers, for reports and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coverage {
    pub rules: usize,
    /// Rules whose guard can rule the condition out for some events.
    pub guarded: usize,
    /// Rules indexed by literal keys or patterns (a subset of `guarded`): considered only
    /// for events whose derived values hit one of their keys.
    pub keyed: usize,
}

impl Prefilter {
    pub fn coverage(&self) -> Coverage {
        let guarded = self
            .guards
            .iter()
            .filter(|g| !matches!(g, B::Const(m) if *m & T != 0))
            .count();
        let mut keyed: HashSet<usize> = HashSet::new();
        let mut unkeyed: HashSet<usize> = HashSet::new();
        for ki in self.by_kind.values() {
            for (_, m) in &ki.keyed {
                keyed.extend(m.values().flatten());
            }
            for g in &ki.rx {
                keyed.extend(&g.all);
            }
            unkeyed.extend(&ki.rest);
        }
        // A rule is indexed when no kind of it has to consider it on every event.
        let keyed: HashSet<usize> = keyed.difference(&unkeyed).copied().collect();
        Coverage {
            rules: self.guards.len(),
            guarded,
            keyed: keyed.len(),
        }
    }

    /// Index the rules (each with its kinds) once all guards are built.
    pub(crate) fn index(&mut self, kinds: &[Vec<Kind>]) {
        // Pattern groups under construction, per kind: (subject key, subject, patterns, rules).
        type Building = Vec<(String, S, Vec<String>, Vec<Vec<usize>>)>;
        let mut rx: HashMap<Kind, Building> = HashMap::new();
        for k in kinds.iter().flatten() {
            if self.by_kind.contains_key(k) {
                continue;
            }
            let name = k.as_str();
            let macros = self.macros.iter().map(|m| spec::b(m, name)).collect();
            let guards = self.guards.iter().map(|g| spec::b(g, name)).collect();
            self.by_kind.insert(
                *k,
                KindIndex {
                    guards,
                    macros,
                    ..KindIndex::default()
                },
            );
        }
        for (ri, ks) in kinds.iter().enumerate() {
            for k in ks {
                let Some(ki) = self.by_kind.get_mut(k) else {
                    continue;
                };
                let key = ki.guards.get(ri).and_then(|g| key_of(g, &ki.macros));
                let Some(atoms) = &key else {
                    ki.rest.push(ri);
                    continue;
                };
                for atom in atoms {
                    match atom {
                        KeyAtom::Lit(subj, lits) => {
                            let pos = match ki.keyed.iter().position(|(s, _)| s == subj) {
                                Some(p) => p,
                                None => {
                                    ki.keyed.push((*subj, HashMap::new()));
                                    ki.keyed.len() - 1
                                }
                            };
                            if let Some((_, m)) = ki.keyed.get_mut(pos) {
                                for l in lits {
                                    let v = m.entry(l.clone()).or_default();
                                    if v.last() != Some(&ri) {
                                        v.push(ri);
                                    }
                                }
                            }
                        }
                        KeyAtom::Rx(subj, pat) => {
                            let groups = rx.entry(*k).or_default();
                            let skey = format!("{subj:?}");
                            let gi = match groups.iter().position(|g| g.0 == skey) {
                                Some(i) => i,
                                None => {
                                    groups.push((skey, subj.clone(), Vec::new(), Vec::new()));
                                    groups.len() - 1
                                }
                            };
                            if let Some(g) = groups.get_mut(gi) {
                                let pi = match g.2.iter().position(|p| p == pat) {
                                    Some(i) => i,
                                    None => {
                                        g.2.push(pat.clone());
                                        g.3.push(Vec::new());
                                        g.2.len() - 1
                                    }
                                };
                                if let Some(v) = g.3.get_mut(pi) {
                                    if v.last() != Some(&ri) {
                                        v.push(ri);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for (k, groups) in rx {
            let ki = self.by_kind.entry(k).or_default();
            for (_, subject, patterns, rules) in groups {
                let mut all: Vec<usize> = rules.iter().flatten().copied().collect();
                all.sort_unstable();
                all.dedup();
                match regex::RegexSet::new(&patterns) {
                    Ok(set) => ki.rx.push(RxGroup {
                        subject,
                        set,
                        rules,
                        all,
                    }),
                    // Too big for one set: those rules are simply considered every time.
                    Err(_) => ki.rest.extend(all),
                }
            }
            ki.rest.sort_unstable();
            ki.rest.dedup();
        }
    }
}

/// Keys of a guard: when the guard can be true, at least one of the atoms holds (a
/// literal key: the subject's value is one of the literals; a pattern: the expression's
/// value matches it). `None`: no such set of atoms is known.
fn key_of(g: &B, macros: &[B]) -> Option<Vec<KeyAtom>> {
    fn subject(s: &S) -> Option<Subject> {
        match s {
            S::Field(PRef::Event, f) if f.never_null_str() => Some(Subject {
                fld: *f,
                lower: false,
            }),
            S::Lower(inner) => match inner.as_ref() {
                S::Field(PRef::Event, f) if f.never_null_str() => Some(Subject {
                    fld: *f,
                    lower: true,
                }),
                _ => None,
            },
            _ => None,
        }
    }
    fn lits(s: &S, set: HashSet<String>) -> Option<Vec<KeyAtom>> {
        // Rules are already indexed by kind: a kind test discriminates nothing here.
        if matches!(s, S::Field(PRef::Event, Fld::Kind)) {
            return None;
        }
        // A huge list as one alternation would make a slow pattern set: leave it unkeyed.
        if set.len() > MAX_ALTERNATION && subject(s).is_none() {
            return None;
        }
        Some(match subject(s) {
            Some(sub) => vec![KeyAtom::Lit(sub, set)],
            None => {
                let mut v: Vec<String> = set.iter().map(|l| regex::escape(l)).collect();
                v.sort();
                vec![KeyAtom::Rx(s.clone(), format!("^(?:{})$", v.join("|")))]
            }
        })
    }
    // Reads `parent` (a lineage lookup per event to compute the key).
    fn lineage(s: &S) -> bool {
        match s {
            S::Field(PRef::Parent, _) => true,
            S::Lower(x) | S::Basename(x) => lineage(x),
            _ => false,
        }
    }
    // Cheaper keys first: literal lookups, then few patterns, then keys needing the lineage.
    fn cost(k: &[KeyAtom]) -> usize {
        k.iter()
            .map(|a| match a {
                KeyAtom::Lit(..) => 1,
                KeyAtom::Rx(s, _) if lineage(s) => 16,
                KeyAtom::Rx(..) => 4,
            })
            .sum()
    }
    match g {
        // Never true: no atom is needed.
        B::Const(m) if m & T == 0 => Some(Vec::new()),
        B::In(s, set) => lits(s, set.as_ref().clone()),
        B::Eq(a, b, false) => match (a.as_ref(), b.as_ref()) {
            (x, S::Lit(l)) | (S::Lit(l), x) if !matches!(x, S::Lit(_)) => {
                lits(x, HashSet::from([l.clone()]))
            }
            _ => None,
        },
        B::Str(x, op, lit) => match (x.as_ref(), lit.as_ref()) {
            (S::Lit(_), _) => None,
            (x, S::Lit(l)) => {
                let e = regex::escape(l);
                let pat = match op {
                    StrOp::Starts => format!("^{e}"),
                    StrOp::Ends => format!("{e}$"),
                    StrOp::Contains => e,
                };
                Some(vec![KeyAtom::Rx(x.clone(), pat)])
            }
            _ => None,
        },
        B::Regex(s, re, _) if !matches!(s.as_ref(), S::Lit(_)) => Some(vec![KeyAtom::Rx(
            s.as_ref().clone(),
            re.as_str().to_string(),
        )]),
        B::And(a, b) => match (key_of(a, macros), key_of(b, macros)) {
            (Some(x), Some(y)) => Some(if cost(&y) < cost(&x) { y } else { x }),
            (x, y) => x.or(y),
        },
        B::Or(a, b) => match (key_of(a, macros), key_of(b, macros)) {
            (Some(mut x), Some(y)) => {
                x.extend(y);
                Some(x)
            }
            _ => None,
        },
        B::Macro(i) => macros.get(*i).and_then(|m| key_of(m, macros)),
        _ => None,
    }
}
