//! CEL compilation: the environment (stdlib + strings extension + a few pure helpers),
//! reference checking, regex precompilation and kind inference.
//!
//! Macros are *not* inlined: a macro is compiled once to its own program and a condition
//! names it like a variable, which the evaluator resolves by running the macro at most
//! once per event (memoised). Macros such as "any ancestor is a package manager" are
//! shared by dozens of rules, so this is what keeps evaluation cheap. A macro may only use
//! lists and macros defined before it, so there are no cycles, and it can only name
//! global variables, so memoising it per event is exact.

use crate::diag::Diagnostic;
use crate::schema::Cond;
use causeway_model::Kind;
use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, SourceInfo};
use cel::common::types::{CelBool, CelInt, CelString};
use cel::{Env, Program};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock, RwLock};

/// Variables every condition may use.
pub const VARIABLES: [&str; 6] = [
    "event",
    "ancestors",
    "parent",
    "session",
    "container",
    "peer",
];

/// Which context variables a program needs, so the engine builds only those.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub ancestors: bool,
    pub session: bool,
    pub peer: bool,
}

impl Needs {
    pub fn union(self, o: Needs) -> Needs {
        Needs {
            ancestors: self.ancestors || o.ancestors,
            session: self.session || o.session,
            peer: self.peer || o.peer,
        }
    }
}

fn basename(this: &CelString<'_>) -> CelString<'static> {
    let s = this.inner();
    let s = s.trim_end_matches('/');
    s.rsplit('/').next().unwrap_or(s).to_string().into()
}

fn dirname(this: &CelString<'_>) -> CelString<'static> {
    let s = this.inner();
    match s.rfind('/') {
        Some(0) => "/".to_string().into(),
        Some(i) => s[..i].to_string().into(),
        None => ".".to_string().into(),
    }
}

/// Compiled patterns, shared by every ruleset of the process. Stock CEL `matches` compiles
/// its pattern on every call (~100 us); the loader rewrites `x.matches("literal")` into
/// `x.rxMatch("literal")`, which compiles once. Bounded so dynamic patterns cannot grow it
/// without limit.
static REGEX_CACHE: LazyLock<RwLock<HashMap<String, Arc<regex::Regex>>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));
const REGEX_CACHE_MAX: usize = 10_000;

pub(crate) fn cached_regex(pattern: &str) -> Result<Arc<regex::Regex>, regex::Error> {
    if let Ok(cache) = REGEX_CACHE.read() {
        if let Some(r) = cache.get(pattern) {
            return Ok(r.clone());
        }
    }
    let r = Arc::new(regex::Regex::new(pattern)?);
    if let Ok(mut cache) = REGEX_CACHE.write() {
        if cache.len() < REGEX_CACHE_MAX {
            cache.insert(pattern.to_string(), r.clone());
        }
    }
    Ok(r)
}

fn rx_match(this: &CelString<'_>, re: &CelString<'_>) -> Result<CelBool, cel::ExecutionError> {
    match cached_regex(re.inner()) {
        Ok(r) => Ok(CelBool::from(r.is_match(this.inner()))),
        Err(e) => Err(cel::ExecutionError::function_error("matches", e)),
    }
}

fn bit_and(a: &CelInt, b: &CelInt) -> CelInt {
    (*a.inner() & *b.inner()).into()
}

/// The environment rules run in: standard CEL, the strings extension, and `basename`,
/// `dirname`, `bitAnd`. No function does I/O.
pub fn env() -> Result<Arc<Env>, cel::DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    cel::add_overload!(env, fn basename: (CelString) -> CelString)?;
    cel::add_overload!(env, fn dirname: (CelString) -> CelString)?;
    cel::add_overload!(env, fn bit_and: (CelInt, CelInt) -> CelInt)?;
    cel::add_member_overload!(env, fn rx_match: (CelString, CelString) -> Result<CelBool>)?;
    Ok(Arc::new(env))
}

/// What the compiler knows about names while compiling one ruleset.
pub struct Names<'a> {
    pub lists: &'a HashSet<String>,
    /// Macros defined so far.
    pub macros: &'a HashMap<String, MacroMeta>,
}

/// What rules inherit from a macro they name.
#[derive(Debug, Clone, Default)]
pub struct MacroMeta {
    /// Context the macro reads (including through the macros it names).
    pub needs: Needs,
    /// Kinds the macro restricts to, when it is a kind test (see [`infer_kinds`]).
    pub kinds: Option<BTreeSet<Kind>>,
}

/// A free identifier of an expression, with its char offset.
struct FreeIdent {
    name: String,
    start: usize,
}

fn free_idents(e: &IdedExpr, si: &SourceInfo, bound: &mut Vec<String>, out: &mut Vec<FreeIdent>) {
    match &e.expr {
        Expr::Ident(n) => {
            if !bound.iter().any(|b| b == n) {
                let start = si.offset_for(e.id).map_or(0, |(a, _)| a as usize);
                out.push(FreeIdent {
                    name: n.clone(),
                    start,
                });
            }
        }
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                free_idents(t, si, bound, out);
            }
            for a in &c.args {
                free_idents(a, si, bound, out);
            }
        }
        Expr::Select(s) => free_idents(&s.operand, si, bound, out),
        Expr::List(l) => l
            .elements
            .iter()
            .for_each(|x| free_idents(x, si, bound, out)),
        Expr::Map(m) => {
            for ent in &m.entries {
                if let EntryExpr::MapEntry(me) = &ent.expr {
                    free_idents(&me.key, si, bound, out);
                    free_idents(&me.value, si, bound, out);
                }
            }
        }
        Expr::Struct(s) => {
            for ent in &s.entries {
                if let EntryExpr::StructField(f) = &ent.expr {
                    free_idents(&f.value, si, bound, out);
                }
            }
        }
        Expr::Comprehension(c) => {
            free_idents(&c.iter_range, si, bound, out);
            free_idents(&c.accu_init, si, bound, out);
            let n = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(v) = &c.iter_var2 {
                bound.push(v.clone());
            }
            bound.push(c.accu_var.clone());
            free_idents(&c.loop_cond, si, bound, out);
            free_idents(&c.loop_step, si, bound, out);
            free_idents(&c.result, si, bound, out);
            bound.truncate(n);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Parse `cond` as written; report syntax errors at their file position.
fn parse(env: &Env, cond: &Cond) -> Result<Program, Diagnostic> {
    env.compile(&cond.text).map_err(|errs| {
        let first = errs.errors.first();
        let (line, col) = first.map_or((1, 1), |e| {
            (e.pos.0.max(1) as usize, e.pos.1.max(1) as usize)
        });
        let msg = first.map_or_else(|| "syntax error".to_string(), |e| e.msg.clone());
        Diagnostic {
            pos: cond.map(line, col),
            message: format!("CEL: {msg}"),
        }
    })
}

/// Check references and regexes; rewrite literal `matches` to the cached-regex form.
/// Returns the text to compile, or the first error.
pub fn expand(env: &Env, cond: &Cond, names: &Names<'_>, what: &str) -> Result<String, Diagnostic> {
    let program = parse(env, cond)?;
    let mut idents = Vec::new();
    free_idents(
        program.expression(),
        program.source_info(),
        &mut Vec::new(),
        &mut idents,
    );
    let rx = check_regexes(program.expression(), program.source_info(), cond)?;
    let mut subst: Vec<(usize, usize, String)> = rx
        .into_iter()
        .map(|at| (at, at + 6, "rxMatch".to_string()))
        .collect();
    for id in &idents {
        if VARIABLES.contains(&id.name.as_str()) || names.lists.contains(&id.name) {
            continue;
        }
        if names.macros.contains_key(&id.name) {
            continue;
        }
        return Err(Diagnostic {
            pos: cond.map_offset(id.start),
            message: format!(
                "unknown name `{}` in {what}: not a variable ({}), list or macro defined before",
                id.name,
                VARIABLES.join(", ")
            ),
        });
    }
    if subst.is_empty() {
        return Ok(cond.text.clone());
    }
    subst.sort_by_key(|s| s.0);
    let chars: Vec<char> = cond.text.chars().collect();
    let mut out = String::with_capacity(cond.text.len() + 64);
    let mut at = 0;
    for (start, stop, body) in subst {
        if start < at || stop >= chars.len() || start > stop {
            return Err(Diagnostic {
                pos: cond.pos,
                message: "internal: bad rewrite offset".into(),
            });
        }
        out.extend(&chars[at..start]);
        out.push_str(&body);
        at = stop + 1;
    }
    out.extend(&chars[at..]);
    Ok(out)
}

/// `matches` with an invalid literal pattern would fail on every event at run time (and so
/// silently never match): reject it at load, at the pattern's position.
/// Returns the char offsets of the `matches` names to rewrite to `rxMatch`.
fn check_regexes(e: &IdedExpr, si: &SourceInfo, cond: &Cond) -> Result<Vec<usize>, Diagnostic> {
    let chars: Vec<char> = cond.text.chars().collect();
    let mut rewrite = Vec::new();
    let mut err = None;
    visit(e, &mut |x| {
        let Expr::Call(c) = &x.expr else { return };
        if c.func_name != "matches" || err.is_some() {
            return;
        }
        let pat = if c.target.is_some() {
            c.args.first()
        } else {
            c.args.get(1)
        };
        if let Some(IdedExpr {
            id,
            expr: Expr::Literal(LiteralValue::String(p)),
        }) = pat
        {
            let at = si.offset_for(*id).map_or(0, |(a, _)| a as usize);
            if c.target.is_some() {
                if let Some(name_at) = matches_name_before(&chars, at) {
                    rewrite.push(name_at);
                }
            }
            if let Err(r) = cached_regex(p.inner()) {
                let first = r
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("invalid")
                    .trim()
                    .to_string();
                err = Some(Diagnostic {
                    pos: cond.map_offset(at),
                    message: format!("invalid regex: {first}"),
                });
            }
        }
    });
    err.map_or(Ok(rewrite), Err)
}

/// Where `.matches(` ends right before the literal at `lit`: the offset of `matches`.
fn matches_name_before(chars: &[char], lit: usize) -> Option<usize> {
    let mut i = lit.min(chars.len());
    while i > 0 && chars[i - 1].is_whitespace() {
        i -= 1;
    }
    if i == 0 || chars[i - 1] != '(' {
        return None;
    }
    i -= 1;
    while i > 0 && chars[i - 1].is_whitespace() {
        i -= 1;
    }
    let start = i.checked_sub(7)?;
    let name: String = chars[start..i].iter().collect();
    (name == "matches"
        && start > 0
        && chars[..start].iter().rev().find(|c| !c.is_whitespace()) == Some(&'.'))
    .then_some(start)
}

/// Visit every node.
fn visit(e: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    f(e);
    match &e.expr {
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                visit(t, f);
            }
            c.args.iter().for_each(|a| visit(a, f));
        }
        Expr::Select(s) => visit(&s.operand, f),
        Expr::List(l) => l.elements.iter().for_each(|x| visit(x, f)),
        Expr::Map(m) => {
            for ent in &m.entries {
                if let EntryExpr::MapEntry(me) = &ent.expr {
                    visit(&me.key, f);
                    visit(&me.value, f);
                }
            }
        }
        Expr::Struct(s) => {
            for ent in &s.entries {
                if let EntryExpr::StructField(x) = &ent.expr {
                    visit(&x.value, f);
                }
            }
        }
        Expr::Comprehension(c) => {
            for x in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                visit(x, f);
            }
        }
        Expr::Literal(_) | Expr::Ident(_) | Expr::Unspecified => {}
    }
}

/// Compile already-expanded text (whose parts were each checked).
pub fn compile_expanded(env: &Env, text: &str, cond: &Cond) -> Result<Program, Diagnostic> {
    env.compile(text).map_err(|e| Diagnostic {
        pos: cond.pos,
        message: format!("CEL after rewriting: {e}"),
    })
}

/// Which context variables `program` reads, directly or through macros.
pub fn needs(program: &Program, macros: &HashMap<String, MacroMeta>) -> Needs {
    let r = program.references();
    let mut n = Needs {
        ancestors: r.has_variable("ancestors")
            || r.has_variable("parent")
            || r.has_variable("session"),
        session: r.has_variable("session"),
        peer: r.has_variable("peer"),
    };
    for (name, m) in macros {
        if r.has_variable(name) {
            n = n.union(m.needs);
        }
    }
    n
}

/// Infer the event kinds a condition can match from top-level conjuncts of the forms
/// `event.kind == "k"` and `event.kind in ["k", ...]`. `None`: no such test (all kinds).
/// A conjunct that names a macro takes that macro's kinds.
pub fn infer_kinds(
    program: &Program,
    macros: &HashMap<String, MacroMeta>,
) -> Option<BTreeSet<Kind>> {
    let mut found: Option<BTreeSet<Kind>> = None;
    conjuncts(program.expression(), &mut |e| {
        let ks = match &e.expr {
            Expr::Ident(n) => macros.get(n).and_then(|m| m.kinds.clone()),
            _ => kind_test(e),
        };
        if let Some(ks) = ks {
            found = Some(match found.take() {
                Some(prev) => prev.intersection(&ks).copied().collect(),
                None => ks,
            });
        }
    });
    found
}

fn conjuncts(e: &IdedExpr, f: &mut dyn FnMut(&IdedExpr)) {
    match &e.expr {
        Expr::Call(c) if c.func_name == "_&&_" && c.target.is_none() => {
            c.args.iter().for_each(|a| conjuncts(a, f));
        }
        _ => f(e),
    }
}

fn is_event_kind(e: &IdedExpr) -> bool {
    matches!(&e.expr, Expr::Select(s) if s.field == "kind" && !s.test
        && matches!(&s.operand.expr, Expr::Ident(n) if n == "event"))
}

fn lit_kind(e: &IdedExpr) -> Option<Kind> {
    match &e.expr {
        Expr::Literal(LiteralValue::String(s)) => Kind::parse(s.inner()),
        _ => None,
    }
}

fn kind_test(e: &IdedExpr) -> Option<BTreeSet<Kind>> {
    let Expr::Call(c) = &e.expr else { return None };
    match (c.func_name.as_str(), c.args.as_slice()) {
        ("_==_", [a, b]) if is_event_kind(a) => lit_kind(b).map(|k| BTreeSet::from([k])),
        ("_==_", [a, b]) if is_event_kind(b) => lit_kind(a).map(|k| BTreeSet::from([k])),
        ("@in", [a, b]) if is_event_kind(a) => match &b.expr {
            Expr::List(l) => l.elements.iter().map(lit_kind).collect(),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Pos;

    fn cond(t: &str) -> Cond {
        Cond {
            text: t.into(),
            pos: Pos { line: 10, col: 5 },
        }
    }

    #[test]
    fn macros_are_names_and_carry_kinds() {
        let env = env().unwrap();
        let lists = HashSet::from(["shells".to_string()]);
        let mp = env.compile("event.kind == 'process.exec'").unwrap();
        let meta = MacroMeta {
            needs: Needs {
                ancestors: true,
                ..Needs::default()
            },
            kinds: infer_kinds(&mp, &HashMap::new()),
        };
        let macros = HashMap::from([("m".to_string(), meta)]);
        let names = Names {
            lists: &lists,
            macros: &macros,
        };
        let text = "m && event.process.m == 'm' && basename(event.process.exe) in shells";
        let out = expand(&env, &cond(text), &names, "c").unwrap();
        assert_eq!(out, text);
        let p = env.compile(&out).unwrap();
        assert_eq!(
            infer_kinds(&p, &macros),
            Some(BTreeSet::from([Kind::ProcessExec]))
        );
        assert!(needs(&p, &macros).ancestors);
    }

    #[test]
    fn literal_matches_use_the_cached_regex() {
        let env = env().unwrap();
        let (l, m) = (HashSet::new(), HashMap::new());
        let names = Names {
            lists: &l,
            macros: &m,
        };
        let out = expand(
            &env,
            &cond("event.matches('x') && event . matches ( \"y\" ) && matches(event, 'z')"),
            &names,
            "c",
        );
        assert_eq!(
            out.unwrap(),
            "event.rxMatch('x') && event . rxMatch ( \"y\" ) && matches(event, 'z')"
        );
        let p = env.compile("'abc'.rxMatch('^a.c$')").unwrap();
        assert_eq!(
            p.execute(&cel::Context::with_env(env.clone())),
            Ok(cel::Value::Bool(true))
        );
    }

    #[test]
    fn comprehension_variables_are_bound() {
        let env = env().unwrap();
        let (l, m) = (HashSet::new(), HashMap::new());
        let names = Names {
            lists: &l,
            macros: &m,
        };
        assert!(expand(
            &env,
            &cond("ancestors.exists(a, a.exe == '/x')"),
            &names,
            "c"
        )
        .is_ok());
        let e = expand(
            &env,
            &cond("ancestors.exists(a, b.exe == '/x')"),
            &names,
            "c",
        )
        .unwrap_err();
        assert_eq!(e.pos, Pos { line: 10, col: 25 });
    }

    #[test]
    fn syntax_error_maps_into_file() {
        let env = env().unwrap();
        let (l, m) = (HashSet::new(), HashMap::new());
        let names = Names {
            lists: &l,
            macros: &m,
        };
        let e = expand(&env, &cond("a &&\n  b +* 2"), &names, "c").unwrap_err();
        assert_eq!(e.pos, Pos { line: 11, col: 10 });
    }
}
