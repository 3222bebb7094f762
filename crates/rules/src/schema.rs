//! The rule-file schema: YAML tree -> typed definitions, with strict field checking.
//!
//! Every unknown field, wrong type or bad value is an error at the node's position; all
//! errors of a file are collected (not just the first) so `rules validate` shows them all.

use crate::diag::{Diagnostic, Pos};
use crate::yaml::{Node, Value};
use causeway_model::Kind;

/// How serious a detection is.
pub use causeway_model::Severity;

/// The ATT&CK enterprise tactics, in their short-name spelling.
pub const TACTICS: [&str; 14] = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// A CEL condition as written, with where its first character sits in the file so that
/// positions inside it map back to file line:col.
#[derive(Debug, Clone)]
pub struct Cond {
    pub text: String,
    /// Position of the condition's first character.
    pub pos: Pos,
}

impl Cond {
    /// Map a 1-based (line, col) inside the condition to the file. Literal block scalars
    /// (`|`) keep lines, so line n of the condition is line n of the block; plain and
    /// quoted scalars are usually one line.
    pub fn map(&self, line: usize, col: usize) -> Pos {
        let line = line.max(1);
        let col = col.max(1);
        if line == 1 {
            Pos {
                line: self.pos.line,
                col: self.pos.col + col - 1,
            }
        } else {
            // Block content lines share the block's indentation, which is the column of
            // the first character.
            Pos {
                line: self.pos.line + line - 1,
                col: self.pos.col + col - 1,
            }
        }
    }

    /// Map a 0-based char offset inside the condition to the file.
    pub fn map_offset(&self, offset: usize) -> Pos {
        let mut line = 1;
        let mut col = 1;
        for c in self.text.chars().take(offset) {
            if c == '\n' {
                line += 1;
                col = 1;
            } else {
                col += 1;
            }
        }
        self.map(line, col)
    }
}

#[derive(Debug, Clone)]
pub struct ListDef {
    pub name: String,
    pub pos: Pos,
    pub items: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct MacroDef {
    pub name: String,
    pub pos: Pos,
    pub cond: Cond,
}

/// An exception: a named condition, or a field expression whose value is in a list.
#[derive(Debug, Clone)]
pub struct ExceptionDef {
    pub name: String,
    pub pos: Pos,
    pub cond: Option<Cond>,
    pub field: Option<Cond>,
    pub values: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RuleDef {
    pub id: String,
    pub pos: Pos,
    pub title: String,
    pub description: String,
    pub cond: Cond,
    pub kinds: Option<Vec<Kind>>,
    pub severity: Severity,
    pub techniques: Vec<String>,
    pub tactic: String,
    pub enabled: bool,
    pub exceptions: Vec<ExceptionDef>,
    pub tags: Vec<String>,
}

/// Suppression as code: matching flags of the named rules are kept but marked suppressed.
#[derive(Debug, Clone)]
pub struct SuppressionDef {
    pub id: String,
    pub pos: Pos,
    /// Rule ids; a trailing `*` matches a prefix.
    pub rules: Vec<String>,
    pub cond: Cond,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct FileDef {
    pub lists: Vec<ListDef>,
    pub macros: Vec<MacroDef>,
    pub rules: Vec<RuleDef>,
    pub suppressions: Vec<SuppressionDef>,
}

fn err(pos: Pos, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        pos,
        message: message.into(),
    }
}

/// Validate an identifier usable as a CEL variable name.
pub fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// `T1059` or `T1059.004`.
pub fn is_technique(s: &str) -> bool {
    let b = s.as_bytes();
    let base = b.len() >= 5 && b[0] == b'T' && b[1..5].iter().all(u8::is_ascii_digit);
    base && (b.len() == 5
        || (b.len() == 9 && b[5] == b'.' && b[6..].iter().all(u8::is_ascii_digit)))
}

fn is_rule_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

struct Ctx {
    errors: Vec<Diagnostic>,
}

impl Ctx {
    fn push(&mut self, pos: Pos, m: impl Into<String>) {
        self.errors.push(err(pos, m));
    }

    fn map<'a>(&mut self, n: &'a Node, what: &str) -> Option<&'a [(Node, Node)]> {
        match &n.value {
            Value::Map(m) => Some(m),
            _ => {
                self.push(
                    n.pos,
                    format!("{what} must be a mapping, found {}", n.type_name()),
                );
                None
            }
        }
    }

    fn seq<'a>(&mut self, n: &'a Node, what: &str) -> Option<&'a [Node]> {
        match &n.value {
            Value::Seq(s) => Some(s),
            _ => {
                self.push(
                    n.pos,
                    format!("`{what}` must be a list, found {}", n.type_name()),
                );
                None
            }
        }
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match &n.value {
            Value::Str(s, _) => Some(s.clone()),
            // Lists of names may hold numbers (ports): accept them as their text.
            Value::Int(i) if what == "list item" => Some(i.to_string()),
            _ => {
                self.push(
                    n.pos,
                    format!("`{what}` must be a string, found {}", n.type_name()),
                );
                None
            }
        }
    }

    fn strings(&mut self, n: &Node, what: &str) -> Vec<String> {
        let Some(items) = self.seq(n, what) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|i| self.string(i, "list item"))
            .collect()
    }

    fn cond(&mut self, n: &Node, what: &str) -> Option<Cond> {
        match &n.value {
            Value::Str(s, off) => {
                if s.trim().is_empty() {
                    self.push(n.pos, format!("`{what}` is empty"));
                    return None;
                }
                Some(Cond {
                    text: s.clone(),
                    pos: Pos {
                        line: n.pos.line,
                        col: n.pos.col + off,
                    },
                })
            }
            // `condition: true` is a valid CEL expression written as a YAML boolean.
            Value::Bool(b) => Some(Cond {
                text: b.to_string(),
                pos: n.pos,
            }),
            _ => {
                self.push(
                    n.pos,
                    format!("`{what}` must be a CEL string, found {}", n.type_name()),
                );
                None
            }
        }
    }

    /// Walk a mapping's fields: the callback returns false for an unknown field.
    fn fields(
        &mut self,
        m: &[(Node, Node)],
        what: &str,
        mut f: impl FnMut(&mut Ctx, &str, &Node) -> bool,
    ) {
        for (k, v) in m {
            let Some(key) = k.as_str() else {
                self.push(k.pos, format!("{what} keys must be strings"));
                continue;
            };
            if !f(self, key, v) {
                self.push(k.pos, format!("unknown field `{key}` in {what}"));
            }
        }
    }
}

/// Parse a whole file. Returns every problem found.
pub fn parse_file(root: &Node) -> Result<FileDef, Vec<Diagnostic>> {
    let mut cx = Ctx { errors: Vec::new() };
    let mut out = FileDef::default();
    if let Some(m) = cx.map(root, "a rule file") {
        cx.fields(m, "the rule file", |cx, key, v| {
            match key {
                "lists" => parse_lists(cx, v, &mut out.lists),
                "macros" => parse_macros(cx, v, &mut out.macros),
                "rules" => {
                    if let Some(items) = cx.seq(v, "rules") {
                        for item in items {
                            if let Some(r) = parse_rule(cx, item) {
                                out.rules.push(r);
                            }
                        }
                    }
                }
                "suppressions" => {
                    if let Some(items) = cx.seq(v, "suppressions") {
                        for item in items {
                            if let Some(s) = parse_suppression(cx, item) {
                                out.suppressions.push(s);
                            }
                        }
                    }
                }
                _ => return false,
            }
            true
        });
    }
    if cx.errors.is_empty() {
        Ok(out)
    } else {
        Err(cx.errors)
    }
}

fn parse_lists(cx: &mut Ctx, v: &Node, out: &mut Vec<ListDef>) {
    let Some(m) = cx.map(v, "`lists`") else {
        return;
    };
    for (k, v) in m {
        let Some(name) = k.as_str() else {
            cx.push(k.pos, "list names must be strings");
            continue;
        };
        if !is_ident(name) {
            cx.push(k.pos, format!("list name `{name}` is not an identifier"));
            continue;
        }
        let items = cx.strings(v, name);
        out.push(ListDef {
            name: name.to_string(),
            pos: k.pos,
            items,
        });
    }
}

fn parse_macros(cx: &mut Ctx, v: &Node, out: &mut Vec<MacroDef>) {
    let Some(m) = cx.map(v, "`macros`") else {
        return;
    };
    for (k, v) in m {
        let Some(name) = k.as_str() else {
            cx.push(k.pos, "macro names must be strings");
            continue;
        };
        if !is_ident(name) {
            cx.push(k.pos, format!("macro name `{name}` is not an identifier"));
            continue;
        }
        if let Some(cond) = cx.cond(v, name) {
            out.push(MacroDef {
                name: name.to_string(),
                pos: k.pos,
                cond,
            });
        }
    }
}

fn parse_rule(cx: &mut Ctx, n: &Node) -> Option<RuleDef> {
    let m = cx.map(n, "a rule")?;
    let before = cx.errors.len();
    let (mut id, mut title, mut description, mut cond) = (None, None, String::new(), None);
    let (mut kinds, mut severity, mut techniques, mut tactic) = (None, None, Vec::new(), None);
    let (mut enabled, mut exceptions, mut tags) = (true, Vec::new(), Vec::new());
    cx.fields(m, "a rule", |cx, key, v| {
        match key {
            "id" => {
                id = cx.string(v, "id");
                if let Some(i) = &id {
                    if !is_rule_id(i) {
                        cx.push(
                            v.pos,
                            format!("rule id `{i}` must be letters, digits, `-`, `_` or `.`"),
                        );
                    }
                }
            }
            "title" => title = cx.string(v, "title"),
            "description" => description = cx.string(v, "description").unwrap_or_default(),
            "condition" => cond = cx.cond(v, "condition"),
            "kinds" => {
                let mut ks = Vec::new();
                for item in cx.seq(v, "kinds").unwrap_or(&[]) {
                    match item.as_str().map(|s| (s, Kind::parse(s))) {
                        Some((_, Some(k))) => ks.push(k),
                        Some((s, None)) => cx.push(item.pos, format!("unknown event kind `{s}`")),
                        None => cx.push(item.pos, "event kinds must be strings"),
                    }
                }
                kinds = Some(ks);
            }
            "severity" => match v.as_str() {
                Some(s) => match Severity::parse(s) {
                    Some(sv) => severity = Some(sv),
                    None => cx.push(
                        v.pos,
                        format!("bad severity `{s}`: use info, low, medium, high or critical"),
                    ),
                },
                None => cx.push(v.pos, "`severity` must be a string"),
            },
            "techniques" => {
                for item in cx.seq(v, "techniques").unwrap_or(&[]) {
                    match item.as_str() {
                        Some(t) if is_technique(t) => techniques.push(t.to_string()),
                        Some(t) => cx.push(
                            item.pos,
                            format!("bad ATT&CK technique id `{t}`: expected T1234 or T1234.567"),
                        ),
                        None => cx.push(item.pos, "technique ids must be strings"),
                    }
                }
            }
            "tactic" => {
                if let Some(t) = cx.string(v, "tactic") {
                    if !TACTICS.contains(&t.as_str()) {
                        cx.push(
                            v.pos,
                            format!("unknown ATT&CK tactic `{t}` (e.g. execution, persistence)"),
                        );
                    }
                    tactic = Some(t);
                }
            }
            "enabled" => match v.value {
                Value::Bool(b) => enabled = b,
                _ => cx.push(
                    v.pos,
                    format!("`enabled` must be true or false, found {}", v.type_name()),
                ),
            },
            "exceptions" => {
                for item in cx.seq(v, "exceptions").unwrap_or(&[]) {
                    if let Some(e) = parse_exception(cx, item) {
                        exceptions.push(e);
                    }
                }
            }
            "tags" => tags = cx.strings(v, "tags"),
            _ => return false,
        }
        true
    });
    let missing = |cx: &mut Ctx, f: &str| cx.push(n.pos, format!("rule is missing `{f}`"));
    if id.is_none() {
        missing(cx, "id");
    }
    if title.is_none() {
        missing(cx, "title");
    }
    if cond.is_none()
        && !cx.errors[before..]
            .iter()
            .any(|e| e.message.contains("condition"))
    {
        missing(cx, "condition");
    }
    if severity.is_none()
        && !cx.errors[before..]
            .iter()
            .any(|e| e.message.contains("severity"))
    {
        missing(cx, "severity");
    }
    if techniques.is_empty()
        && !cx.errors[before..]
            .iter()
            .any(|e| e.message.contains("technique"))
    {
        missing(cx, "techniques");
    }
    if tactic.is_none() {
        missing(cx, "tactic");
    }
    if cx.errors.len() != before {
        return None;
    }
    Some(RuleDef {
        id: id?,
        pos: n.pos,
        title: title?,
        description,
        cond: cond?,
        kinds,
        severity: severity?,
        techniques,
        tactic: tactic?,
        enabled,
        exceptions,
        tags,
    })
}

fn parse_exception(cx: &mut Ctx, n: &Node) -> Option<ExceptionDef> {
    let m = cx.map(n, "an exception")?;
    let before = cx.errors.len();
    let mut e = ExceptionDef {
        name: String::new(),
        pos: n.pos,
        cond: None,
        field: None,
        values: Vec::new(),
    };
    let mut has_values = false;
    cx.fields(m, "an exception", |cx, key, v| {
        match key {
            "name" => e.name = cx.string(v, "name").unwrap_or_default(),
            "condition" => e.cond = cx.cond(v, "condition"),
            "field" => e.field = cx.cond(v, "field"),
            "values" => {
                has_values = true;
                e.values = cx.strings(v, "values");
            }
            _ => return false,
        }
        true
    });
    if e.name.is_empty() {
        cx.push(n.pos, "exception is missing `name`");
    }
    match (&e.cond, &e.field) {
        (Some(_), None) if !has_values => {}
        (None, Some(_)) if has_values => {}
        _ if cx.errors.len() == before => cx.push(
            n.pos,
            "an exception needs either `condition`, or `field` with `values`",
        ),
        _ => {}
    }
    (cx.errors.len() == before).then_some(e)
}

fn parse_suppression(cx: &mut Ctx, n: &Node) -> Option<SuppressionDef> {
    let m = cx.map(n, "a suppression")?;
    let before = cx.errors.len();
    let (mut id, mut rules, mut cond, mut reason) = (None, Vec::new(), None, String::new());
    cx.fields(m, "a suppression", |cx, key, v| {
        match key {
            "id" => id = cx.string(v, "id"),
            "rules" => rules = cx.strings(v, "rules"),
            "condition" => cond = cx.cond(v, "condition"),
            "reason" => reason = cx.string(v, "reason").unwrap_or_default(),
            _ => return false,
        }
        true
    });
    if id.is_none() {
        cx.push(n.pos, "suppression is missing `id`");
    }
    if rules.is_empty() {
        cx.push(
            n.pos,
            "suppression needs a non-empty `rules` list (rule ids, `prefix*` allowed)",
        );
    }
    if cond.is_none() && cx.errors.len() == before {
        cx.push(n.pos, "suppression is missing `condition`");
    }
    if cx.errors.len() != before {
        return None;
    }
    Some(SuppressionDef {
        id: id?,
        pos: n.pos,
        rules,
        cond: cond?,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_format() {
        assert!(is_technique("T1059"));
        assert!(is_technique("T1059.004"));
        assert!(!is_technique("T105"));
        assert!(!is_technique("t1059"));
        assert!(!is_technique("T1059.04"));
        assert!(!is_technique("T1059.0040"));
    }

    #[test]
    fn offsets_map_to_block_lines() {
        let c = Cond {
            text: "a &&\n  b".into(),
            pos: Pos { line: 4, col: 7 },
        };
        assert_eq!(c.map_offset(0), Pos { line: 4, col: 7 });
        assert_eq!(c.map_offset(7), Pos { line: 5, col: 9 });
    }
}
