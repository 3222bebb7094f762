//! Specialisation of guards to one event kind: `event.kind` is known inside a kind's
//! index, so kind tests fold to constants, and what they guard folds with them (the
//! `written_path` of a `file.open` is simply `event.file.path`). Every fold keeps the
//! outcome set exactly (see the identities next to each).

use super::{Fld, PRef, ANY, B, F, I, S, T};

fn is_kind(s: &S) -> bool {
    matches!(s, S::Field(PRef::Event, Fld::Kind))
}

fn tf(b: bool) -> B {
    B::Const(if b { T } else { F })
}

/// `b` with `event.kind == kind`.
pub(super) fn b(g: &B, kind: &str) -> B {
    match g {
        B::Eq(x, y, ne) => match (x.as_ref(), y.as_ref()) {
            (k, S::Lit(l)) | (S::Lit(l), k) if is_kind(k) => tf((l == kind) != *ne),
            _ => B::Eq(Box::new(s(x, kind)), Box::new(s(y, kind)), *ne),
        },
        B::In(x, set) if is_kind(x) => tf(set.contains(kind)),
        B::In(x, set) => B::In(Box::new(s(x, kind)), set.clone()),
        B::And(x, y) => match (b(x, kind), b(y, kind)) {
            // false && y = false; true && y = y; x && true = x; x && false = false
            // (an error && false is false in CEL).
            (B::Const(F), _) | (_, B::Const(F)) => B::Const(F),
            (B::Const(T), y) => y,
            (x, B::Const(T)) => x,
            (x, y) => B::And(Box::new(x), Box::new(y)),
        },
        B::Or(x, y) => match (b(x, kind), b(y, kind)) {
            // true || y = true; x || true = true (error || true is true); false || y = y;
            // x || false = x.
            (B::Const(T), _) | (_, B::Const(T)) => B::Const(T),
            (B::Const(F), y) => y,
            (x, B::Const(F)) => x,
            (B::Const(ANY), _) | (_, B::Const(ANY)) => B::Const(ANY),
            (x, y) => B::Or(Box::new(x), Box::new(y)),
        },
        B::Not(x) => match b(x, kind) {
            B::Const(T) => B::Const(F),
            B::Const(F) => B::Const(T),
            B::Const(ANY) => B::Const(ANY),
            x => B::Not(Box::new(x)),
        },
        B::Cond(c, t, f) => match b(c, kind) {
            B::Const(T) => b(t, kind),
            B::Const(F) => b(f, kind),
            c => B::Cond(Box::new(c), Box::new(b(t, kind)), Box::new(b(f, kind))),
        },
        B::Str(x, op, y) => B::Str(Box::new(s(x, kind)), *op, Box::new(s(y, kind))),
        B::Regex(x, re, slot) => B::Regex(Box::new(s(x, kind)), re.clone(), *slot),
        B::Int(x, c, n) => B::Int(i(x, kind), *c, *n),
        B::Loop(l, ex, p) => B::Loop(*l, *ex, Box::new(b(p, kind))),
        B::Const(_) | B::Macro(_) | B::Field(..) | B::IsNull(..) => g.clone(),
    }
}

fn s(x: &S, kind: &str) -> S {
    match x {
        S::Cond(c, t, f) => match b(c, kind) {
            B::Const(T) => s(t, kind),
            B::Const(F) => s(f, kind),
            c => S::Cond(Box::new(c), Box::new(s(t, kind)), Box::new(s(f, kind))),
        },
        S::Lower(v) => S::Lower(Box::new(s(v, kind))),
        S::Basename(v) => S::Basename(Box::new(s(v, kind))),
        S::IntStr(v) => S::IntStr(Box::new(i(v, kind))),
        S::Unknown | S::Lit(_) | S::Field(..) | S::Arg(_) | S::Var => x.clone(),
    }
}

fn i(x: &I, kind: &str) -> I {
    match x {
        I::StrLen(v) => I::StrLen(Box::new(s(v, kind))),
        I::Unknown | I::Field(..) | I::ArgvLen => x.clone(),
    }
}
