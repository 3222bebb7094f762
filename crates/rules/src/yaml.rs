//! A small owned YAML tree that keeps where every node was written.
//!
//! saphyr's `MarkedYaml` gives spans but its node API is generic and unstable across
//! releases; the loader only needs scalars, sequences and mappings with 1-based line and
//! column, so we copy into this tree once and keep the rest of the crate free of saphyr.

use crate::diag::{Diagnostic, Pos};
use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// A YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// The node's content. Scalars keep their YAML type so that `enabled: "yes"` can be told
/// apart from `enabled: true`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string and how its first content character sits relative to `pos` (1 for a quoted
    /// scalar, whose content starts after the quote).
    Str(String, usize),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(..) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s, _) => Some(s),
            _ => None,
        }
    }
}

/// Parse one YAML document. An empty file is an empty mapping.
pub fn parse(src: &str) -> Result<Node, Diagnostic> {
    let docs = MarkedYaml::load_from_str(src).map_err(|e| Diagnostic {
        pos: Pos {
            line: e.marker().line(),
            col: e.marker().col() + 1,
        },
        message: format!("YAML syntax error: {}", e.info()),
    })?;
    let mut docs = docs.into_iter();
    let Some(doc) = docs.next() else {
        return Ok(Node {
            pos: Pos { line: 1, col: 1 },
            value: Value::Map(Vec::new()),
        });
    };
    if let Some(extra) = docs.next() {
        return Err(Diagnostic {
            pos: pos_of(&extra),
            message: "only one YAML document per rule file is allowed".into(),
        });
    }
    let chars: Vec<char> = src.chars().collect();
    convert(&doc, &chars, 0)
}

fn pos_of(n: &MarkedYaml<'_>) -> Pos {
    Pos {
        line: n.span.start.line(),
        col: n.span.start.col() + 1,
    }
}

/// Nesting bound: rule files are shallow, and a bound keeps hostile input from exhausting
/// the stack.
const MAX_DEPTH: usize = 64;

fn convert(n: &MarkedYaml<'_>, chars: &[char], depth: usize) -> Result<Node, Diagnostic> {
    let pos = pos_of(n);
    if depth > MAX_DEPTH {
        return Err(Diagnostic {
            pos,
            message: "YAML nested too deeply".into(),
        });
    }
    let value = match &n.data {
        YamlData::Value(s) => match s {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Int(*i),
            Scalar::FloatingPoint(f) => Value::Float(f.into_inner()),
            Scalar::String(s) => {
                let quoted = matches!(chars.get(n.span.start.index()), Some('"' | '\''));
                Value::Str(s.to_string(), usize::from(quoted))
            }
        },
        YamlData::Representation(s, _, _) => Value::Str(s.to_string(), 0),
        YamlData::Sequence(items) => Value::Seq(
            items
                .iter()
                .map(|i| convert(i, chars, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Mapping(m) => {
            let mut out = Vec::with_capacity(m.len());
            for (k, v) in m.iter() {
                out.push((convert(k, chars, depth + 1)?, convert(v, chars, depth + 1)?));
            }
            Value::Map(out)
        }
        YamlData::Tagged(_, inner) => return convert(inner, chars, depth + 1),
        YamlData::Alias(_) => {
            return Err(Diagnostic {
                pos,
                message: "YAML aliases are not supported".into(),
            })
        }
        YamlData::BadValue => {
            return Err(Diagnostic {
                pos,
                message: "invalid YAML value".into(),
            })
        }
    };
    Ok(Node { pos, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a:\n  - 'x'\n  - 2\n").unwrap();
        let Value::Map(m) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(m[0].0.pos, Pos { line: 1, col: 1 });
        let Value::Seq(s) = &m[0].1.value else {
            panic!("not a seq")
        };
        assert_eq!(s[0].pos, Pos { line: 2, col: 5 });
        assert_eq!(s[0].value, Value::Str("x".into(), 1));
        assert_eq!(s[1].value, Value::Int(2));
    }

    #[test]
    fn syntax_error_has_position() {
        let e = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }
}
