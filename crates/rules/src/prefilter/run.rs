//! Guard evaluation over one event: plain Rust, no allocation beyond the memo slots and
//! the command line (joined once, on first use).

use super::{
    Cmp, CredsFld, Fld, Loop, Mask, PRef, Prefilter, RxGroup, StrOp, Subject, ANY, B, E, F, I, S, T,
};
use crate::eval::ancestors_of;
use crate::lineage::Lineage;
use crate::values::basename;
use causeway_model::{Event, Process};
use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::sync::Arc;

/// A field's value as the lazy CEL view would produce it.
enum FV<'s> {
    Str(Cow<'s, str>),
    Int(i64),
    Bool(bool),
    Null,
    /// A non-null object (`event.file`, `event.process.container`...).
    Present,
    /// CEL errors (a field of `null`).
    Err,
    Unknown,
}

/// The variable bound by the enclosing runtime loop.
#[derive(Clone, Copy)]
enum Var<'x> {
    None,
    Arg(&'x str),
    Proc(&'x Process),
}

/// A string expression's value.
enum SV<'s> {
    Str(Cow<'s, str>),
    Null,
    Err,
    Unknown,
}

enum IV {
    Int(i64),
    Err,
    Unknown,
}

fn tf(b: bool) -> Mask {
    if b {
        T
    } else {
        F
    }
}

/// CEL `a && b` over outcome sets (`b` is evaluated only when `a` can be non-false).
fn and_mask(a: Mask, b: Mask) -> Mask {
    let mut r = 0;
    if a & F != 0 {
        r |= F;
    }
    if a & T != 0 {
        r |= b;
    }
    if a & E != 0 {
        if b & F != 0 {
            r |= F;
        }
        if b & (T | E) != 0 {
            r |= E;
        }
    }
    r
}

/// CEL `a || b` over outcome sets.
fn or_mask(a: Mask, b: Mask) -> Mask {
    let mut r = 0;
    if a & T != 0 {
        r |= T;
    }
    if a & F != 0 {
        r |= b;
    }
    if a & E != 0 {
        if b & T != 0 {
            r |= T;
        }
        if b & (F | E) != 0 {
            r |= E;
        }
    }
    r
}

fn not_mask(a: Mask) -> Mask {
    let mut r = a & E;
    if a & T != 0 {
        r |= F;
    }
    if a & F != 0 {
        r |= T;
    }
    r
}

fn os(x: Option<&str>) -> FV<'_> {
    x.map_or(FV::Null, |v| FV::Str(Cow::Borrowed(v)))
}

fn st(x: &str) -> FV<'_> {
    FV::Str(Cow::Borrowed(x))
}

fn oi<X: Into<i64>>(x: Option<X>) -> FV<'static> {
    x.map_or(FV::Null, |v| FV::Int(v.into()))
}

fn obj<X>(x: Option<&X>) -> FV<'static> {
    if x.is_some() {
        FV::Present
    } else {
        FV::Null
    }
}

/// A field of an optional object: an error when the object is null.
fn sub<'x, X>(x: Option<&'x X>, f: impl FnOnce(&'x X) -> FV<'x>) -> FV<'x> {
    x.map_or(FV::Err, f)
}

/// A field of a process as [`crate::lazy`] shows it (`cmdline` when already joined).
fn proc_field<'x>(p: &'x Process, f: Fld, cmdline: Option<&'x str>) -> FV<'x> {
    use Fld::*;
    match f {
        ProcSelf => FV::Present,
        ProcId => st(&p.id),
        ProcPid => FV::Int(p.pid.into()),
        ProcPpid => FV::Int(p.ppid.into()),
        ProcParentId => st(&p.parent_id),
        ProcExe => st(&p.exe),
        ProcName => st(basename(&p.exe)),
        ProcCmdline => match cmdline {
            Some(c) => st(c),
            None => FV::Str(Cow::Owned(p.argv.join(" "))),
        },
        ProcArgvTruncated => FV::Bool(p.argv_truncated),
        ProcCwd => st(&p.cwd),
        ProcComm => st(&p.comm),
        ProcUid => FV::Int(p.uid.into()),
        ProcEuid => FV::Int(p.euid.into()),
        ProcGid => FV::Int(p.gid.into()),
        ProcEgid => FV::Int(p.egid.into()),
        ProcAuid => oi(p.auid),
        ProcSession => oi(p.session),
        ProcTty => os(p.tty.as_deref()),
        ProcService => os(p.service.as_deref()),
        ProcContainer => obj(p.container.as_ref()),
        ContainerId => sub(p.container.as_ref(), |c| st(&c.id)),
        ContainerRuntime => sub(p.container.as_ref(), |c| st(&c.runtime)),
        _ => FV::Unknown,
    }
}

/// Per-event guard state: memoised macros and regexes, derived values.
pub(crate) struct GuardCtx<'s> {
    e: &'s Event,
    /// The guards and macros specialised to the event's kind.
    guards: &'s [B],
    macro_guards: &'s [B],
    lineage: &'s dyn Lineage,
    /// Fetched on first use, exactly as the CEL context fetches them (and handed over to
    /// it, so they are fetched once).
    ancestors: OnceCell<Vec<Arc<Process>>>,
    cmdline: OnceCell<String>,
    macros: Vec<Cell<Mask>>,
    regexes: Vec<Cell<Mask>>,
}

impl<'s> GuardCtx<'s> {
    pub(crate) fn new(e: &'s Event, pf: &'s Prefilter, lineage: &'s dyn Lineage) -> Self {
        let (guards, macro_guards) = pf
            .by_kind
            .get(&e.kind)
            .map_or((&[][..], &[][..]), |ki| (&ki.guards[..], &ki.macros[..]));
        GuardCtx {
            e,
            guards,
            macro_guards,
            lineage,
            ancestors: OnceCell::new(),
            cmdline: OnceCell::new(),
            macros: (0..macro_guards.len()).map(|_| Cell::new(0)).collect(),
            regexes: (0..pf.regex_slots).map(|_| Cell::new(0)).collect(),
        }
    }

    /// Can rule `i`'s condition be true for this event?
    pub(crate) fn may_match(&self, i: usize) -> bool {
        self.guards
            .get(i)
            .is_none_or(|g| self.b(g, Var::None) & T != 0)
    }

    /// The ancestors if a guard fetched them.
    pub(crate) fn take_ancestors(self) -> Option<Vec<Arc<Process>>> {
        self.ancestors.into_inner()
    }

    fn ancestors(&self) -> &[Arc<Process>] {
        self.ancestors
            .get_or_init(|| ancestors_of(self.e, self.lineage))
    }

    /// The value a literal key is looked up with; `None` when it is not a string (the
    /// condition then errors wherever it reads it, so no keyed rule can match).
    pub(crate) fn subject(&self, sub: Subject) -> Option<Cow<'_, str>> {
        match self.field(PRef::Event, sub.fld, Var::None) {
            FV::Str(x) if sub.lower => Some(Cow::Owned(x.to_ascii_lowercase())),
            FV::Str(x) => Some(x),
            _ => None,
        }
    }

    /// Candidates of a pattern group: the rules of the patterns the expression's value
    /// matches; none when it errors (no rule of the group can be true then); all when it
    /// is null or not known.
    pub(crate) fn rx_candidates(&self, g: &RxGroup, out: &mut Vec<usize>) {
        match self.s(&g.subject, Var::None) {
            SV::Str(v) => {
                let n = g.set.len();
                let mut stack = [false; 128];
                let mut heap = Vec::new();
                let hits: &mut [bool] = if n <= stack.len() {
                    &mut stack[..n]
                } else {
                    heap.resize(n, false);
                    &mut heap
                };
                if g.set.matches_read_at(hits, &v, 0) {
                    for (i, hit) in hits.iter().enumerate() {
                        if *hit {
                            if let Some(r) = g.rules.get(i) {
                                out.extend_from_slice(r);
                            }
                        }
                    }
                }
            }
            SV::Err => {}
            SV::Null | SV::Unknown => out.extend_from_slice(&g.all),
        }
    }

    fn cmdline(&self) -> &str {
        self.cmdline.get_or_init(|| self.e.process.argv.join(" "))
    }

    fn field<'x>(&'x self, r: PRef, f: Fld, var: Var<'x>) -> FV<'x> {
        match r {
            PRef::Event => self.event_field(f),
            PRef::Parent => match self.ancestors().first() {
                Some(p) => proc_field(p, f, None),
                // `parent` is null: comparing it works, reading a field of it errors.
                None if f == Fld::ProcSelf => FV::Null,
                None => FV::Err,
            },
            PRef::Var => match var {
                Var::Proc(p) => proc_field(p, f, None),
                Var::None | Var::Arg(_) => FV::Unknown,
            },
        }
    }

    fn event_field(&self, f: Fld) -> FV<'_> {
        use Fld::*;
        let e = self.e;
        if f.is_process() {
            return proc_field(&e.process, f, Some(self.cmdline()));
        }
        match f {
            Kind => st(e.kind.as_str()),
            HostName => st(&e.host.name),
            HostId => st(&e.host.id),
            Exec => obj(e.exec.as_ref()),
            ExecFilename => sub(e.exec.as_ref(), |x| st(&x.filename)),
            ExecMemfd => sub(e.exec.as_ref(), |x| FV::Bool(x.memfd)),
            ExecDeleted => sub(e.exec.as_ref(), |x| FV::Bool(x.deleted)),
            ExecSetid => sub(e.exec.as_ref(), |x| FV::Bool(x.setid)),
            ExecSnapshot => sub(e.exec.as_ref(), |x| FV::Bool(x.snapshot)),
            Network => obj(e.network.as_ref()),
            NetProtocol => sub(e.network.as_ref(), |n| st(&n.protocol)),
            NetFamily => sub(e.network.as_ref(), |n| st(&n.family)),
            NetInProgress => sub(e.network.as_ref(), |n| FV::Bool(n.in_progress)),
            NetLocalIp => sub(e.network.as_ref(), |n| st(&n.local.ip)),
            NetLocalPort => sub(e.network.as_ref(), |n| FV::Int(n.local.port.into())),
            NetRemoteIp => sub(e.network.as_ref(), |n| st(&n.remote.ip)),
            NetRemotePort => sub(e.network.as_ref(), |n| FV::Int(n.remote.port.into())),
            File => obj(e.file.as_ref()),
            FilePath => sub(e.file.as_ref(), |x| st(&x.path)),
            FileName => sub(e.file.as_ref(), |x| st(basename(&x.path))),
            FileNewPath => sub(e.file.as_ref(), |x| os(x.new_path.as_deref())),
            FileFlags => sub(e.file.as_ref(), |x| oi(x.flags)),
            FileWrite => sub(e.file.as_ref(), |x| FV::Bool(x.write)),
            FileSensitive => sub(e.file.as_ref(), |x| FV::Bool(x.sensitive)),
            FileMode => sub(e.file.as_ref(), |x| oi(x.mode)),
            FileTruncated => sub(e.file.as_ref(), |x| FV::Bool(x.truncated)),
            FileSetuid => sub(e.file.as_ref(), |x| {
                FV::Bool(x.mode.unwrap_or(0) & 0o4000 != 0)
            }),
            FileSetgid => sub(e.file.as_ref(), |x| {
                FV::Bool(x.mode.unwrap_or(0) & 0o2000 != 0)
            }),
            FileExecutable => sub(e.file.as_ref(), |x| {
                FV::Bool(x.mode.unwrap_or(0) & 0o111 != 0)
            }),
            Cred => obj(e.cred.as_ref()),
            CredSyscall => sub(e.cred.as_ref(), |c| st(&c.syscall)),
            Creds(new, cf) => sub(e.cred.as_ref(), |c| {
                let x = if new { &c.new } else { &c.old };
                FV::Int(match cf {
                    CredsFld::Uid => x.uid.into(),
                    CredsFld::Euid => x.euid.into(),
                    CredsFld::Suid => x.suid.into(),
                    CredsFld::Fsuid => x.fsuid.into(),
                    CredsFld::Gid => x.gid.into(),
                    CredsFld::Egid => x.egid.into(),
                    CredsFld::Sgid => x.sgid.into(),
                    CredsFld::Fsgid => x.fsgid.into(),
                    CredsFld::CapCount => x.cap_effective.count_ones().into(),
                })
            }),
            Target => obj(e.target.as_ref()),
            TargetPid => sub(e.target.as_ref(), |t| FV::Int(t.pid.into())),
            TargetId => sub(e.target.as_ref(), |t| st(&t.id)),
            TargetRequest => sub(e.target.as_ref(), |t| st(&t.request)),
            Mount => obj(e.mount.as_ref()),
            MountSource => sub(e.mount.as_ref(), |m| st(&m.source)),
            MountTarget => sub(e.mount.as_ref(), |m| st(&m.target)),
            MountFstype => sub(e.mount.as_ref(), |m| st(&m.fstype)),
            MountResult => sub(e.mount.as_ref(), |m| FV::Int(m.result)),
            Module => obj(e.module.as_ref()),
            ModuleSyscall => sub(e.module.as_ref(), |m| st(&m.syscall)),
            ModulePath => sub(e.module.as_ref(), |m| os(m.path.as_deref())),
            ModuleResult => sub(e.module.as_ref(), |m| FV::Int(m.result)),
            Bpf => obj(e.bpf.as_ref()),
            BpfProgType => sub(e.bpf.as_ref(), |b| FV::Int(b.prog_type.into())),
            BpfProgName => sub(e.bpf.as_ref(), |b| st(&b.prog_name)),
            BpfResult => sub(e.bpf.as_ref(), |b| FV::Int(b.result)),
            Memfd => obj(e.memfd.as_ref()),
            MemfdName => sub(e.memfd.as_ref(), |m| st(&m.name)),
            MemfdFlags => sub(e.memfd.as_ref(), |m| FV::Int(m.flags.into())),
            MemfdResult => sub(e.memfd.as_ref(), |m| FV::Int(m.result)),
            // Process fields are answered above.
            _ => FV::Unknown,
        }
    }

    fn s<'x>(&'x self, s: &'x S, var: Var<'x>) -> SV<'x> {
        match s {
            S::Unknown => SV::Unknown,
            S::Lit(x) => SV::Str(Cow::Borrowed(x)),
            S::Field(r, f) => match self.field(*r, *f, var) {
                FV::Str(x) => SV::Str(x),
                FV::Null => SV::Null,
                FV::Err => SV::Err,
                FV::Int(_) | FV::Bool(_) | FV::Present | FV::Unknown => SV::Unknown,
            },
            S::IntStr(i) => match self.i(i, var) {
                IV::Int(v) => SV::Str(Cow::Owned(v.to_string())),
                IV::Err => SV::Err,
                IV::Unknown => SV::Unknown,
            },
            S::Lower(x) => match self.s(x, var) {
                SV::Str(v) => SV::Str(Cow::Owned(v.to_ascii_lowercase())),
                SV::Err => SV::Err,
                SV::Null | SV::Unknown => SV::Unknown,
            },
            S::Basename(x) => match self.s(x, var) {
                SV::Str(Cow::Borrowed(v)) => SV::Str(Cow::Borrowed(basename(v))),
                SV::Str(Cow::Owned(v)) => SV::Str(Cow::Owned(basename(&v).to_string())),
                SV::Err => SV::Err,
                SV::Null | SV::Unknown => SV::Unknown,
            },
            // Out of range is an error in CEL too.
            S::Arg(i) => self
                .e
                .process
                .argv
                .get(*i)
                .map_or(SV::Err, |a| SV::Str(Cow::Borrowed(a))),
            S::Var => match var {
                Var::Arg(v) => SV::Str(Cow::Borrowed(v)),
                Var::None | Var::Proc(_) => SV::Unknown,
            },
            S::Cond(c, t, f) => match self.b(c, var) {
                T => self.s(t, var),
                F => self.s(f, var),
                E => SV::Err,
                _ => SV::Unknown,
            },
        }
    }

    fn i<'x>(&'x self, i: &'x I, var: Var<'x>) -> IV {
        match i {
            I::Unknown => IV::Unknown,
            I::Field(r, f) => match self.field(*r, *f, var) {
                FV::Int(v) => IV::Int(v),
                FV::Err => IV::Err,
                _ => IV::Unknown,
            },
            I::ArgvLen => IV::Int(i64::try_from(self.e.process.argv.len()).unwrap_or(i64::MAX)),
            I::StrLen(s) => match self.s(s, var) {
                SV::Str(v) => IV::Int(i64::try_from(v.chars().count()).unwrap_or(i64::MAX)),
                SV::Err => IV::Err,
                SV::Null | SV::Unknown => IV::Unknown,
            },
        }
    }

    fn b<'x>(&'x self, g: &'x B, var: Var<'x>) -> Mask {
        match g {
            B::Const(m) => *m,
            B::And(a, b) => {
                let x = self.b(a, var);
                if x == F {
                    return F;
                }
                and_mask(x, self.b(b, var))
            }
            B::Or(a, b) => {
                let x = self.b(a, var);
                if x == T {
                    return T;
                }
                or_mask(x, self.b(b, var))
            }
            B::Not(a) => not_mask(self.b(a, var)),
            B::Cond(c, t, f) => {
                let m = self.b(c, var);
                let mut r = m & E;
                if m & T != 0 {
                    r |= self.b(t, var);
                }
                if m & F != 0 {
                    r |= self.b(f, var);
                }
                r
            }
            B::Macro(i) => {
                let Some(slot) = self.macros.get(*i) else {
                    return ANY;
                };
                if slot.get() == 0 {
                    let m = self
                        .macro_guards
                        .get(*i)
                        .map_or(ANY, |g| self.b(g, Var::None));
                    slot.set(m);
                }
                slot.get()
            }
            B::Field(r, f) => match self.field(*r, *f, var) {
                FV::Bool(b) => tf(b),
                FV::Err => E,
                _ => ANY,
            },
            B::Eq(a, b, ne) => match (self.s(a, var), self.s(b, var)) {
                (SV::Err, _) | (_, SV::Err) => E,
                (SV::Str(x), SV::Str(y)) => tf((x == y) != *ne),
                _ => ANY,
            },
            B::IsNull(r, f, ne) => match self.field(*r, *f, var) {
                FV::Err => E,
                FV::Unknown => ANY,
                FV::Null => tf(!*ne),
                FV::Str(_) | FV::Int(_) | FV::Bool(_) | FV::Present => tf(*ne),
            },
            B::In(s, set) => match self.s(s, var) {
                SV::Str(x) => tf(set.contains(x.as_ref())),
                SV::Err => E,
                SV::Null | SV::Unknown => ANY,
            },
            B::Str(t, op, a) => match (self.s(t, var), self.s(a, var)) {
                (SV::Err, _) | (_, SV::Err) => E,
                (SV::Str(x), SV::Str(y)) => tf(match op {
                    StrOp::Starts => x.starts_with(y.as_ref()),
                    StrOp::Ends => x.ends_with(y.as_ref()),
                    StrOp::Contains => x.contains(y.as_ref()),
                }),
                _ => ANY,
            },
            B::Regex(s, re, slot) => {
                let memo = slot.and_then(|i| self.regexes.get(i));
                if let Some(m) = memo.map(Cell::get).filter(|m| *m != 0) {
                    return m;
                }
                let m = match self.s(s, var) {
                    SV::Str(x) => tf(re.is_match(&x)),
                    SV::Err => E,
                    SV::Null | SV::Unknown => ANY,
                };
                if let Some(c) = memo {
                    c.set(m);
                }
                m
            }
            B::Int(i, cmp, n) => match self.i(i, var) {
                IV::Int(v) => tf(match cmp {
                    Cmp::Eq => v == *n,
                    Cmp::Ne => v != *n,
                    Cmp::Lt => v < *n,
                    Cmp::Le => v <= *n,
                    Cmp::Gt => v > *n,
                    Cmp::Ge => v >= *n,
                }),
                IV::Err => E,
                IV::Unknown => ANY,
            },
            B::Loop(l, exists, p) => {
                // exists: false || p(x1) || ...; all: true && p(x1) && ... (CEL stops
                // once the result is decided, and so do we).
                let (mut acc, done) = if *exists { (F, T) } else { (T, F) };
                let step = |acc: Mask, m: Mask| {
                    if *exists {
                        or_mask(acc, m)
                    } else {
                        and_mask(acc, m)
                    }
                };
                match l {
                    Loop::Argv => {
                        for a in &self.e.process.argv {
                            acc = step(acc, self.b(p, Var::Arg(a)));
                            if acc == done {
                                break;
                            }
                        }
                    }
                    Loop::Ancestors => {
                        for a in self.ancestors() {
                            acc = step(acc, self.b(p, Var::Proc(a)));
                            if acc == done {
                                break;
                            }
                        }
                    }
                }
                acc
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Mask; 7] = [1, 2, 3, 4, 5, 6, 7];

    /// The set operators agree with CEL's three-valued `&&`/`||`/`!` on every pair of
    /// single outcomes, and are the union over the members of a set.
    #[test]
    fn masks_follow_cel_logic() {
        // CEL on single outcomes (commutative, errors absorbed by a deciding operand).
        let and1 = |a: Mask, b: Mask| match (a, b) {
            (F, _) | (_, F) => F,
            (T, T) => T,
            _ => E,
        };
        let or1 = |a: Mask, b: Mask| match (a, b) {
            (T, _) | (_, T) => T,
            (F, F) => F,
            _ => E,
        };
        let bits = |m: Mask| [T, F, E].into_iter().filter(move |b| m & b != 0);
        for a in ALL {
            for b in ALL {
                let want_and = bits(a)
                    .flat_map(|x| bits(b).map(move |y| (x, y)))
                    .fold(0, |r, (x, y)| r | and1(x, y));
                let want_or = bits(a)
                    .flat_map(|x| bits(b).map(move |y| (x, y)))
                    .fold(0, |r, (x, y)| r | or1(x, y));
                assert_eq!(and_mask(a, b), want_and, "{a} && {b}");
                assert_eq!(or_mask(a, b), want_or, "{a} || {b}");
            }
            let want_not = bits(a).fold(0, |r, x| {
                r | match x {
                    T => F,
                    F => T,
                    _ => E,
                }
            });
            assert_eq!(not_mask(a), want_not);
        }
    }
}
