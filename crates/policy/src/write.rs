//! A small YAML writer for policies: block style for structure, flow style for short lists,
//! and every string either plain (when it cannot be misread) or double-quoted with escapes,
//! so workload strings (paths with spaces, quotes or control bytes) stay data.

use crate::{Action, NetRule, Peer, Policy, PortSpec, ProcessNode, Selector};

/// Append one line to the output (writing to a `String` cannot fail).
macro_rules! put {
    ($o:expr, $($arg:tt)*) => {{
        $o.push_str(&format!($($arg)*));
        $o.push('\n');
    }};
}

/// Render a policy. [`crate::load_str`] reads the result back to an equal policy.
pub fn to_yaml(p: &Policy) -> String {
    let mut o = String::new();
    o.push_str("apiVersion: causeway/v1\nkind: Policy\nmetadata:\n");
    put!(o, "  name: {}", scalar(&p.name));
    if !p.description.is_empty() {
        put!(o, "  description: {}", scalar(&p.description));
    }
    if !p.labels.is_empty() {
        o.push_str("  labels:\n");
        for (k, v) in &p.labels {
            put!(o, "    {}: {}", scalar(k), scalar(v));
        }
    }
    o.push_str("spec:\n  selector:\n");
    let (k, v) = match &p.selector {
        Selector::Exe(v) => ("exe", v),
        Selector::Container(v) => ("container", v),
        Selector::Service(v) => ("service", v),
    };
    put!(o, "    {k}: {}", scalar(v));
    put!(o, "  mode: {}", p.mode.as_str());
    if p.process_policy.is_empty() {
        o.push_str("  processPolicy: []\n");
    } else {
        o.push_str("  processPolicy:\n");
        for n in &p.process_policy {
            node(&mut o, n, 4);
        }
    }
    o.push_str("  networkPolicy:\n");
    rules(&mut o, "ingress", "from", &p.network_policy.ingress);
    rules(&mut o, "egress", "to", &p.network_policy.egress);
    o.push_str("  response:\n");
    actions(&mut o, "default", &p.response.default);
    actions(&mut o, "actions", &p.response.actions);
    o
}

fn node(o: &mut String, n: &ProcessNode, ind: usize) {
    let pad = " ".repeat(ind);
    put!(o, "{pad}- id: {}", scalar(&n.id));
    put!(o, "{pad}  name: {}", scalar(&n.name));
    put!(o, "{pad}  exe: {}", list(&n.exe));
    put!(o, "{pad}  euser: {}", list(&n.euser));
    if !n.listen.is_empty() {
        put!(o, "{pad}  listen: {}", ports(&n.listen));
    }
    if !n.children.is_empty() {
        put!(o, "{pad}  children:");
        for c in &n.children {
            node(o, c, ind + 4);
        }
    }
}

fn rules(o: &mut String, key: &str, peer_key: &str, rs: &[NetRule]) {
    if rs.is_empty() {
        put!(o, "    {key}: []");
        return;
    }
    put!(o, "    {key}:");
    for r in rs {
        let peers: Vec<String> = r
            .peers
            .iter()
            .map(|p| match p {
                Peer::IpBlock(c) => format!("{{ipBlock: {{cidr: {}}}}}", scalar(&c.to_string())),
                Peer::DnsSelector(names) => format!("{{dnsSelector: {}}}", list(names)),
            })
            .collect();
        put!(o, "      - {peer_key}: [{}]", peers.join(", "));
        put!(o, "        ports: {}", ports(&r.ports));
        put!(o, "        processes: {}", list(&r.processes));
    }
}

fn actions(o: &mut String, key: &str, acts: &[Action]) {
    if acts.is_empty() {
        put!(o, "    {key}: []");
        return;
    }
    put!(o, "    {key}:");
    for a in acts {
        match a {
            Action::MakeRedFlag { severity } => {
                put!(o, "      - makeRedFlag: {{severity: {}}}", scalar(severity));
            }
            Action::AgentKillProcess { exe } if exe.is_empty() => {
                put!(o, "      - agentKillProcess: {{}}");
            }
            Action::AgentKillProcess { exe } => {
                put!(
                    o,
                    "      - agentKillProcess: {{processSelector: {{exe: {}}}}}",
                    list(exe)
                );
            }
        }
    }
}

fn ports(ps: &[PortSpec]) -> String {
    let items: Vec<String> = ps
        .iter()
        .map(|p| format!("{{protocol: {}, port: {}}}", scalar(&p.protocol), p.port))
        .collect();
    format!("[{}]", items.join(", "))
}

fn list(items: &[String]) -> String {
    let items: Vec<String> = items.iter().map(|s| scalar(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A string as a YAML scalar: plain when it is an unmistakable path or word, else quoted.
pub fn scalar(s: &str) -> String {
    if is_plain(s) {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            '\r' => q.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                q.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // A leading `/` or letter cannot start a number, alias, tag, anchor or flow collection.
    // A leading digit is safe when a `/` follows (a CIDR block): no YAML number has one.
    let safe_start =
        first == '/' || first.is_ascii_alphabetic() || (first.is_ascii_digit() && s.contains('/'));
    let safe_rest = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '*' | '+' | '@'));
    let keyword = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "nan" | "inf"
    );
    safe_start && safe_rest && !keyword
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(scalar("/usr/bin/python3"), "/usr/bin/python3");
        assert_eq!(scalar("/usr/lib/jvm/*/bin/java"), "/usr/lib/jvm/*/bin/java");
        assert_eq!(scalar("1000"), "\"1000\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("*x"), "\"*x\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("x\u{7f}\"\\"), "\"x\\u007f\\\"\\\\\"");
        assert_eq!(scalar(""), "\"\"");
    }
}
