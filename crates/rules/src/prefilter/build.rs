//! Translation of checked CEL ASTs (conditions and the macros they name) into guards.
//!
//! Every translation is conservative: a construct not recognised here becomes "any
//! outcome" (`Const(ANY)` / `S::Unknown`), never a guess.

use super::{Cmp, CredsFld, Fld, Loop, PRef, Prefilter, StrOp, ANY, B, F, I, S, T};
use crate::compile;
use cel::common::ast::{Expr, IdedExpr, LiteralValue};
use cel::Program;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Bounds the expansion of `list.exists(...)` over a constant list.
const MAX_EXPANSION: usize = 256;

/// What a comprehension variable stands for.
#[derive(Clone)]
enum Bind {
    /// An item of a constant list.
    Lit(String),
    /// The element of `event.process.argv` being iterated.
    Arg,
    /// The ancestor being iterated.
    Proc,
}

pub(crate) struct Builder<'a> {
    macro_programs: &'a [Program],
    macro_index: &'a HashMap<String, usize>,
    lists: &'a HashMap<String, Arc<HashSet<String>>>,
    macros: Vec<Option<B>>,
    building: HashSet<usize>,
    regex_slots: HashMap<String, usize>,
    /// Macro depth while inlining string macros (bounded: macros cannot be cyclic, this
    /// only guards against a bug turning into a stack overflow).
    depth: usize,
}

fn lit_str(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

fn lit_int(e: &IdedExpr) -> Option<i64> {
    match &e.expr {
        Expr::Literal(LiteralValue::Int(i)) => Some(*i.inner()),
        _ => None,
    }
}

fn is_null(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::Literal(LiteralValue::Null))
}

/// `a.b.c` rooted at the identifier `event` -> ["a", "b", "c"].
fn event_path<'e>(e: &'e IdedExpr, out: &mut Vec<&'e str>) -> bool {
    matches!(select_path(e, out), Some("event"))
}

/// `x.b.c` -> (x, ["b", "c"]) for a chain of plain selections from an identifier.
fn select_path<'e>(e: &'e IdedExpr, out: &mut Vec<&'e str>) -> Option<&'e str> {
    match &e.expr {
        Expr::Ident(n) => Some(n.as_str()),
        Expr::Select(s) if !s.test => {
            let root = select_path(&s.operand, out)?;
            out.push(s.field.as_str());
            Some(root)
        }
        _ => None,
    }
}

fn creds_fld(f: &str) -> Option<CredsFld> {
    Some(match f {
        "uid" => CredsFld::Uid,
        "euid" => CredsFld::Euid,
        "suid" => CredsFld::Suid,
        "fsuid" => CredsFld::Fsuid,
        "gid" => CredsFld::Gid,
        "egid" => CredsFld::Egid,
        "sgid" => CredsFld::Sgid,
        "fsgid" => CredsFld::Fsgid,
        "cap_count" => CredsFld::CapCount,
        _ => return None,
    })
}

/// The field an `event....` path names (as [`crate::lazy`] exposes it).
fn field_of(path: &[&str]) -> Option<Fld> {
    use Fld::*;
    Some(match path {
        ["kind"] => Kind,
        ["host", "name"] => HostName,
        ["host", "id"] => HostId,
        ["process"] => ProcSelf,
        ["process", "id"] => ProcId,
        ["process", "pid"] => ProcPid,
        ["process", "ppid"] => ProcPpid,
        ["process", "parent_id"] => ProcParentId,
        ["process", "exe"] => ProcExe,
        ["process", "name"] => ProcName,
        ["process", "cmdline"] => ProcCmdline,
        ["process", "argv_truncated"] => ProcArgvTruncated,
        ["process", "cwd"] => ProcCwd,
        ["process", "comm"] => ProcComm,
        ["process", "uid"] => ProcUid,
        ["process", "euid"] => ProcEuid,
        ["process", "gid"] => ProcGid,
        ["process", "egid"] => ProcEgid,
        ["process", "auid"] => ProcAuid,
        ["process", "session"] => ProcSession,
        ["process", "tty"] => ProcTty,
        ["process", "service"] => ProcService,
        ["process", "container"] => ProcContainer,
        ["process", "container", "id"] => ContainerId,
        ["process", "container", "runtime"] => ContainerRuntime,
        ["exec"] => Exec,
        ["exec", "filename"] => ExecFilename,
        ["exec", "memfd"] => ExecMemfd,
        ["exec", "deleted"] => ExecDeleted,
        ["exec", "setid"] => ExecSetid,
        ["exec", "snapshot"] => ExecSnapshot,
        ["network"] => Network,
        ["network", "protocol"] => NetProtocol,
        ["network", "family"] => NetFamily,
        ["network", "in_progress"] => NetInProgress,
        ["network", "local", "ip"] => NetLocalIp,
        ["network", "local", "port"] => NetLocalPort,
        ["network", "remote", "ip"] => NetRemoteIp,
        ["network", "remote", "port"] => NetRemotePort,
        ["file"] => File,
        ["file", "path"] => FilePath,
        ["file", "name"] => FileName,
        ["file", "new_path"] => FileNewPath,
        ["file", "flags"] => FileFlags,
        ["file", "write"] => FileWrite,
        ["file", "sensitive"] => FileSensitive,
        ["file", "mode"] => FileMode,
        ["file", "truncated"] => FileTruncated,
        ["file", "setuid"] => FileSetuid,
        ["file", "setgid"] => FileSetgid,
        ["file", "executable"] => FileExecutable,
        ["cred"] => Cred,
        ["cred", "syscall"] => CredSyscall,
        ["cred", "old", f] => Creds(false, creds_fld(f)?),
        ["cred", "new", f] => Creds(true, creds_fld(f)?),
        ["target"] => Target,
        ["target", "pid"] => TargetPid,
        ["target", "id"] => TargetId,
        ["target", "request"] => TargetRequest,
        ["mount"] => Mount,
        ["mount", "source"] => MountSource,
        ["mount", "target"] => MountTarget,
        ["mount", "fstype"] => MountFstype,
        ["mount", "result"] => MountResult,
        ["module"] => Module,
        ["module", "syscall"] => ModuleSyscall,
        ["module", "path"] => ModulePath,
        ["module", "result"] => ModuleResult,
        ["bpf"] => Bpf,
        ["bpf", "prog_type"] => BpfProgType,
        ["bpf", "prog_name"] => BpfProgName,
        ["bpf", "result"] => BpfResult,
        ["memfd"] => Memfd,
        ["memfd", "name"] => MemfdName,
        ["memfd", "flags"] => MemfdFlags,
        ["memfd", "result"] => MemfdResult,
        _ => return None,
    })
}

fn is_argv(e: &IdedExpr) -> bool {
    let mut p = Vec::new();
    event_path(e, &mut p) && p == ["process", "argv"]
}

fn has_var(s: &S) -> bool {
    match s {
        S::Var | S::Cond(..) | S::Field(PRef::Var, _) | S::IntStr(_) => true,
        S::Lower(x) | S::Basename(x) => has_var(x),
        S::Unknown | S::Lit(_) | S::Field(..) | S::Arg(_) => false,
    }
}

fn and(a: B, b: B) -> B {
    match (&a, &b) {
        (B::Const(ANY), B::Const(ANY)) => B::Const(ANY),
        // `true && x` has exactly the outcomes of `x`.
        (B::Const(T), _) => b,
        _ => B::And(Box::new(a), Box::new(b)),
    }
}

fn or(a: B, b: B) -> B {
    // `x || <anything>` with x possibly true and the other side unknown stays unknown;
    // folding here keeps guards small.
    match (&a, &b) {
        (B::Const(ANY), _) | (_, B::Const(ANY)) => B::Const(ANY),
        // `false || x` has exactly the outcomes of `x`.
        (B::Const(F), _) => b,
        _ => B::Or(Box::new(a), Box::new(b)),
    }
}

impl<'a> Builder<'a> {
    pub(crate) fn new(
        macro_programs: &'a [Program],
        macro_index: &'a HashMap<String, usize>,
        lists: &'a HashMap<String, Arc<HashSet<String>>>,
    ) -> Self {
        Builder {
            macro_programs,
            macro_index,
            lists,
            macros: (0..macro_programs.len()).map(|_| None).collect(),
            building: HashSet::new(),
            regex_slots: HashMap::new(),
            depth: 0,
        }
    }

    /// The guard of a condition.
    pub(crate) fn condition(&mut self, program: &Program) -> B {
        self.b(program.expression(), &[])
    }

    pub(crate) fn finish(self, guards: Vec<B>) -> Prefilter {
        Prefilter {
            guards,
            macros: self
                .macros
                .into_iter()
                .map(|m| m.unwrap_or(B::Const(ANY)))
                .collect(),
            regex_slots: self.regex_slots.len(),
            by_kind: HashMap::new(),
        }
    }

    /// The field a selection chain names, from the event, `parent` or an ancestor variable.
    fn field_ref(e: &IdedExpr, scope: &[(String, Bind)]) -> Option<(PRef, Fld)> {
        let mut p = Vec::new();
        let root = select_path(e, &mut p)?;
        let r = match (root, Self::bound(scope, root)) {
            ("event", None) => PRef::Event,
            ("parent", None) => PRef::Parent,
            (_, Some(Bind::Proc)) => PRef::Var,
            _ => return None,
        };
        if r == PRef::Event {
            return field_of(&p).map(|f| (r, f));
        }
        if p.is_empty() {
            return Some((r, Fld::ProcSelf));
        }
        let mut full = vec!["process"];
        full.extend(p);
        field_of(&full).filter(|f| f.is_process()).map(|f| (r, f))
    }

    fn bound<'s>(scope: &'s [(String, Bind)], name: &str) -> Option<&'s Bind> {
        scope.iter().rev().find(|(n, _)| n == name).map(|(_, b)| b)
    }

    fn macro_b(&mut self, i: usize) -> B {
        if self.macros.get(i).is_some_and(Option::is_some) {
            return B::Macro(i);
        }
        if !self.building.insert(i) {
            return B::Const(ANY);
        }
        let Some(p) = self.macro_programs.get(i) else {
            return B::Const(ANY);
        };
        let g = self.b(p.expression(), &[]);
        self.building.remove(&i);
        if let Some(slot) = self.macros.get_mut(i) {
            *slot = Some(g);
        }
        B::Macro(i)
    }

    fn b(&mut self, e: &IdedExpr, scope: &[(String, Bind)]) -> B {
        match &e.expr {
            Expr::Literal(LiteralValue::Boolean(v)) => B::Const(if *v.inner() { T } else { F }),
            Expr::Ident(n) => {
                if Self::bound(scope, n).is_some() {
                    return B::Const(ANY);
                }
                match self.macro_index.get(n) {
                    Some(&i) => self.macro_b(i),
                    None => B::Const(ANY),
                }
            }
            Expr::Select(_) => match Self::field_ref(e, scope) {
                Some((r, f)) => B::Field(r, f),
                None => B::Const(ANY),
            },
            Expr::Call(c) => self.call(&c.func_name, c.target.as_deref(), &c.args, scope),
            Expr::Comprehension(c) => {
                let exists = matches!(&c.accu_init.expr,
                    Expr::Literal(LiteralValue::Boolean(v)) if !*v.inner());
                let all = matches!(&c.accu_init.expr,
                    Expr::Literal(LiteralValue::Boolean(v)) if *v.inner());
                let Expr::Call(step) = &c.loop_step.expr else {
                    return B::Const(ANY);
                };
                let op = step.func_name.as_str();
                let accu_first = matches!(step.args.first().map(|a| &a.expr),
                    Some(Expr::Ident(n)) if *n == c.accu_var);
                let result_is_accu = matches!(&c.result.expr, Expr::Ident(n) if *n == c.accu_var);
                let pred = match step.args.as_slice() {
                    [_, p] => p,
                    _ => return B::Const(ANY),
                };
                let is_or = exists && op == "_||_";
                let is_and = all && op == "_&&_";
                if !(is_or || is_and) || !accu_first || !result_is_accu || c.iter_var2.is_some() {
                    return B::Const(ANY);
                }
                self.loop_over(&c.iter_range, &c.iter_var, pred, is_or, scope)
            }
            _ => B::Const(ANY),
        }
    }

    /// `range.exists(v, pred)` (or `all` when `!is_or`).
    fn loop_over(
        &mut self,
        range: &IdedExpr,
        var: &str,
        pred: &IdedExpr,
        is_or: bool,
        scope: &[(String, Bind)],
    ) -> B {
        let items: Option<Vec<String>> = match &range.expr {
            Expr::Ident(n) if Self::bound(scope, n).is_none() => self.lists.get(n).map(|set| {
                let mut v: Vec<String> = set.iter().cloned().collect();
                v.sort();
                v
            }),
            Expr::List(l) if l.optional_indices.is_empty() => l
                .elements
                .iter()
                .map(|x| lit_str(x).map(str::to_string))
                .collect(),
            _ => None,
        };
        let mut inner: Vec<(String, Bind)> = scope.to_vec();
        if let Some(items) = items {
            if items.len() > MAX_EXPANSION {
                return B::Const(ANY);
            }
            let mut acc = B::Const(if is_or { F } else { T });
            for it in items {
                inner.push((var.to_string(), Bind::Lit(it)));
                let g = self.b(pred, &inner);
                inner.pop();
                acc = if is_or { or(acc, g) } else { and(acc, g) };
            }
            return acc;
        }
        // One runtime loop at a time: the evaluator binds a single variable.
        let free = !scope
            .iter()
            .any(|(_, b)| matches!(b, Bind::Arg | Bind::Proc));
        let over_argv = is_argv(range) && Self::bound(scope, "event").is_none();
        let over_ancestors = matches!(&range.expr, Expr::Ident(n) if n == "ancestors" && Self::bound(scope, n).is_none());
        if !free || !(over_argv || over_ancestors) {
            return B::Const(ANY);
        }
        let bind = if over_argv { Bind::Arg } else { Bind::Proc };
        inner.push((var.to_string(), bind));
        let g = self.b(pred, &inner);
        if matches!(g, B::Const(ANY)) {
            return g;
        }
        let l = if over_argv {
            Loop::Argv
        } else {
            Loop::Ancestors
        };
        B::Loop(l, is_or, Box::new(g))
    }

    fn call(
        &mut self,
        f: &str,
        target: Option<&IdedExpr>,
        args: &[IdedExpr],
        scope: &[(String, Bind)],
    ) -> B {
        match (f, target, args) {
            ("_&&_", None, [a, b]) => {
                let (a, b) = (self.b(a, scope), self.b(b, scope));
                and(a, b)
            }
            ("_||_", None, [a, b]) => {
                let (a, b) = (self.b(a, scope), self.b(b, scope));
                or(a, b)
            }
            ("!_", None, [a]) => match self.b(a, scope) {
                B::Const(ANY) => B::Const(ANY),
                g => B::Not(Box::new(g)),
            },
            ("_?_:_", None, [c, t, e]) => {
                let c = self.b(c, scope);
                let (t, e) = (self.b(t, scope), self.b(e, scope));
                B::Cond(Box::new(c), Box::new(t), Box::new(e))
            }
            ("_==_" | "_!=_", None, [a, b]) => self.equality(f == "_!=_", a, b, scope),
            ("_<_" | "_<=_" | "_>_" | "_>=_", None, [a, b]) => {
                let cmp = match f {
                    "_<_" => Cmp::Lt,
                    "_<=_" => Cmp::Le,
                    "_>_" => Cmp::Gt,
                    _ => Cmp::Ge,
                };
                match (lit_int(b), lit_int(a)) {
                    (Some(n), _) => self.int_cmp(a, cmp, n, scope),
                    (None, Some(n)) => self.int_cmp(b, flip(cmp), n, scope),
                    _ => B::Const(ANY),
                }
            }
            ("@in", None, [x, container]) => {
                let set = match &container.expr {
                    Expr::Ident(n) if Self::bound(scope, n).is_none() => self.lists.get(n).cloned(),
                    Expr::List(l) if l.optional_indices.is_empty() => l
                        .elements
                        .iter()
                        .map(|x| lit_str(x).map(str::to_string))
                        .collect::<Option<HashSet<String>>>()
                        .map(Arc::new),
                    _ => None,
                };
                match (set, self.s(x, scope)) {
                    (_, S::Unknown) | (None, _) => B::Const(ANY),
                    (Some(set), s) => B::In(Box::new(s), set),
                }
            }
            ("startsWith" | "endsWith" | "contains", Some(t), [a]) => {
                let op = match f {
                    "startsWith" => StrOp::Starts,
                    "endsWith" => StrOp::Ends,
                    _ => StrOp::Contains,
                };
                match (self.s(t, scope), self.s(a, scope)) {
                    (S::Unknown, _) | (_, S::Unknown) => B::Const(ANY),
                    (t, a) => B::Str(Box::new(t), op, Box::new(a)),
                }
            }
            ("rxMatch" | "matches", Some(t), [p]) => {
                let Some(pat) = lit_str(p) else {
                    return B::Const(ANY);
                };
                let Ok(re) = compile::cached_regex(pat) else {
                    return B::Const(ANY);
                };
                let s = self.s(t, scope);
                if matches!(s, S::Unknown) {
                    return B::Const(ANY);
                }
                let slot = if has_var(&s) {
                    None
                } else {
                    let key = format!("{s:?}\u{0}{pat}");
                    let n = self.regex_slots.len();
                    Some(*self.regex_slots.entry(key).or_insert(n))
                };
                B::Regex(Box::new(s), re, slot)
            }
            _ => B::Const(ANY),
        }
    }

    fn equality(&mut self, ne: bool, a: &IdedExpr, b: &IdedExpr, scope: &[(String, Bind)]) -> B {
        // x == null
        if is_null(a) || is_null(b) {
            let other = if is_null(a) { b } else { a };
            return match Self::field_ref(other, scope) {
                Some((r, f)) => B::IsNull(r, f, ne),
                None => B::Const(ANY),
            };
        }
        // x == 1
        if let Some(n) = lit_int(b) {
            return self.int_cmp(a, if ne { Cmp::Ne } else { Cmp::Eq }, n, scope);
        }
        if let Some(n) = lit_int(a) {
            return self.int_cmp(b, if ne { Cmp::Ne } else { Cmp::Eq }, n, scope);
        }
        // Strings: at least one side must be known to be a string (a literal or a string
        // field), or `==` between e.g. two ints would be misread.
        let (sa, sb) = (self.s(a, scope), self.s(b, scope));
        match (&sa, &sb) {
            (S::Unknown, _) | (_, S::Unknown) => B::Const(ANY),
            _ => B::Eq(Box::new(sa), Box::new(sb), ne),
        }
    }

    fn int_cmp(&mut self, x: &IdedExpr, cmp: Cmp, n: i64, scope: &[(String, Bind)]) -> B {
        match self.i(x, scope) {
            I::Unknown => B::Const(ANY),
            i => B::Int(i, cmp, n),
        }
    }

    fn i(&mut self, e: &IdedExpr, scope: &[(String, Bind)]) -> I {
        match &e.expr {
            Expr::Select(_) => match Self::field_ref(e, scope) {
                Some((r, f)) if f.is_int() => I::Field(r, f),
                _ => I::Unknown,
            },
            Expr::Call(c) if c.func_name == "size" => {
                let x = match (c.target.as_deref(), c.args.as_slice()) {
                    (Some(t), []) => t,
                    (None, [a]) => a,
                    _ => return I::Unknown,
                };
                if is_argv(x) && Self::bound(scope, "event").is_none() {
                    return I::ArgvLen;
                }
                match self.s(x, scope) {
                    S::Unknown => I::Unknown,
                    s => I::StrLen(Box::new(s)),
                }
            }
            _ => I::Unknown,
        }
    }

    /// A string-valued expression.
    fn s(&mut self, e: &IdedExpr, scope: &[(String, Bind)]) -> S {
        match &e.expr {
            Expr::Literal(LiteralValue::String(v)) => S::Lit(v.inner().to_string()),
            Expr::Ident(n) => match Self::bound(scope, n) {
                Some(Bind::Lit(v)) => S::Lit(v.clone()),
                Some(Bind::Arg) => S::Var,
                Some(Bind::Proc) => S::Unknown,
                None => {
                    // A string macro (`pname`, `written_path`): inline it.
                    let Some(p) = self
                        .macro_index
                        .get(n)
                        .and_then(|&i| self.macro_programs.get(i))
                    else {
                        return S::Unknown;
                    };
                    if self.depth > 16 {
                        return S::Unknown;
                    }
                    self.depth += 1;
                    let s = self.s(p.expression(), &[]);
                    self.depth -= 1;
                    s
                }
            },
            Expr::Select(_) => match Self::field_ref(e, scope) {
                Some((r, f)) if f.is_str() => S::Field(r, f),
                _ => S::Unknown,
            },
            Expr::Call(c) => match (c.func_name.as_str(), c.target.as_deref(), c.args.as_slice()) {
                ("lowerAscii", Some(t), []) => match self.s(t, scope) {
                    S::Unknown => S::Unknown,
                    s => S::Lower(Box::new(s)),
                },
                ("string", None, [a]) => match self.i(a, scope) {
                    I::Unknown => S::Unknown,
                    i => S::IntStr(Box::new(i)),
                },
                ("basename", None, [a]) => match self.s(a, scope) {
                    S::Unknown => S::Unknown,
                    s => S::Basename(Box::new(s)),
                },
                ("_[_]", None, [l, i]) if is_argv(l) && Self::bound(scope, "event").is_none() => {
                    match lit_int(i).and_then(|i| usize::try_from(i).ok()) {
                        Some(i) => S::Arg(i),
                        None => S::Unknown,
                    }
                }
                ("_?_:_", None, [c, t, f]) => {
                    let c = self.b(c, scope);
                    match (self.s(t, scope), self.s(f, scope)) {
                        (S::Unknown, _) | (_, S::Unknown) => S::Unknown,
                        (t, f) => S::Cond(Box::new(c), Box::new(t), Box::new(f)),
                    }
                }
                _ => S::Unknown,
            },
            _ => S::Unknown,
        }
    }
}

fn flip(c: Cmp) -> Cmp {
    match c {
        Cmp::Lt => Cmp::Gt,
        Cmp::Le => Cmp::Ge,
        Cmp::Gt => Cmp::Lt,
        Cmp::Ge => Cmp::Le,
        x => x,
    }
}

impl Fld {
    /// Fields of a process object (`event.process.*`, `parent.*`, an ancestor's).
    pub(crate) fn is_process(self) -> bool {
        use Fld::*;
        matches!(
            self,
            ProcSelf
                | ProcId
                | ProcPid
                | ProcPpid
                | ProcParentId
                | ProcExe
                | ProcName
                | ProcCmdline
                | ProcArgvTruncated
                | ProcCwd
                | ProcComm
                | ProcUid
                | ProcEuid
                | ProcGid
                | ProcEgid
                | ProcAuid
                | ProcSession
                | ProcTty
                | ProcService
                | ProcContainer
                | ContainerId
                | ContainerRuntime
        )
    }

    /// Fields the view exposes as ints (possibly null).
    pub(crate) fn is_int(self) -> bool {
        use Fld::*;
        matches!(
            self,
            ProcPid
                | ProcPpid
                | ProcUid
                | ProcEuid
                | ProcGid
                | ProcEgid
                | ProcAuid
                | ProcSession
                | NetLocalPort
                | NetRemotePort
                | FileFlags
                | FileMode
                | Creds(..)
                | TargetPid
                | MountResult
                | ModuleResult
                | BpfProgType
                | BpfResult
                | MemfdFlags
                | MemfdResult
        )
    }

    /// Fields the view exposes as strings (possibly null).
    pub(crate) fn is_str(self) -> bool {
        use Fld::*;
        matches!(
            self,
            Kind | HostName
                | HostId
                | ProcId
                | ProcParentId
                | ProcExe
                | ProcName
                | ProcCmdline
                | ProcCwd
                | ProcComm
                | ProcTty
                | ProcService
                | ContainerId
                | ContainerRuntime
                | ExecFilename
                | NetProtocol
                | NetFamily
                | NetLocalIp
                | NetRemoteIp
                | FilePath
                | FileName
                | FileNewPath
                | CredSyscall
                | TargetId
                | TargetRequest
                | MountSource
                | MountTarget
                | MountFstype
                | ModuleSyscall
                | ModulePath
                | BpfProgName
                | MemfdName
        )
    }

    /// String fields that are never null (a value or an error when the object is absent):
    /// the only ones a literal key may index.
    pub(crate) fn never_null_str(self) -> bool {
        use Fld::*;
        self.is_str() && !matches!(self, ProcTty | ProcService | FileNewPath | ModulePath)
    }
}
