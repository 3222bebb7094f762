//! Syslog sink: RFC 5424 messages for incidents and flags, over UDP (one message per
//! datagram, RFC 5426) or TCP with octet-counting framing (RFC 6587 §3.4.1).
//!
//! `<PRI>1 TIMESTAMP HOSTNAME causeway PROCID MSGID [causeway@32473 k="v" ...] MSG`
//!
//! - PRI = facility × 8 + severity: critical → 2 (crit), high → 3 (err), medium → 4
//!   (warning), low → 5 (notice), info → 6 (informational).
//! - TIMESTAMP: when it happened (a flag's time, an incident's last activity), UTC,
//!   microseconds (RFC 5424 allows at most six fraction digits).
//! - HOSTNAME: the host of the flag or incident; the sender's host name if none.
//! - MSGID: `incident` or `flag`; structured data carries our fields, values escaped per
//!   §6.3.3 (`"`, `\` and `]` get a backslash) and each bounded to [`MAX_VALUE`] bytes.
//! - MSG: one line of human text; control characters become `\xNN`.
//!
//! A message longer than the configured bound is rebuilt with shorter values, and if still
//! too long dropped as `encode_error`. TCP reconnects on the next attempt after any
//! failure, and before writing checks that the receiver has not closed the connection
//! (a write into a closed connection would succeed once and be lost); a batch is written
//! in one go, so a failure may resend some messages. UDP
//! cannot know about loss in the network: only local send errors (including the refusal
//! reported by ICMP) are seen and retried.

use crate::config::{parse_url, ExportError, SyslogConfig, SyslogTransport};
use crate::output::{rule_ids, Accepts, Event, Flag, Incident, Output, Severity};
use crate::runner::{DeliveryError, EncodeError, Sink};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// SD-ID of our structured data. 32473 is the private enterprise number RFC 5612 reserves
/// for documentation; Causeway has none of its own yet.
pub const SD_ID: &str = "causeway@32473";
/// Bound on one structured-data value, in bytes.
pub const MAX_VALUE: usize = 256;
/// Values are cut to this on the second try when a message is over the size bound.
const SHORT_VALUE: usize = 48;

enum Conn {
    None,
    Udp(UdpSocket),
    Tcp(TcpStream),
}

pub struct SyslogSink {
    transport: SyslogTransport,
    authority: String,
    hostname: String,
    facility: u8,
    max_message: usize,
    timeout: Duration,
    procid: String,
    conn: Conn,
}

impl SyslogSink {
    pub fn new(cfg: &SyslogConfig) -> Result<SyslogSink, ExportError> {
        let u = parse_url("syslog", &cfg.url, &["udp", "tcp"])?;
        if !(u.path.is_empty() || u.path == "/") {
            return Err(ExportError::Url {
                sink: "syslog",
                url: cfg.url.clone(),
                reason: "a syslog URL has no path".into(),
            });
        }
        if cfg.max_message < 480 {
            // RFC 5424 §6.1: every receiver must accept 480 octets; less cannot hold ours.
            return Err(ExportError::Config(format!(
                "syslog: max_message {} is below 480 bytes",
                cfg.max_message
            )));
        }
        let hostname = match &cfg.hostname {
            Some(h) => h.clone(),
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .map_err(|e| ExportError::Config(format!("syslog: no host name: {e}")))?,
        };
        Ok(SyslogSink {
            transport: if u.scheme == "udp" {
                SyslogTransport::Udp
            } else {
                SyslogTransport::Tcp
            },
            authority: u.authority,
            hostname,
            facility: cfg.facility.code(),
            max_message: cfg.max_message,
            timeout: cfg.timeout,
            procid: std::process::id().to_string(),
            conn: Conn::None,
        })
    }

    fn connect(&mut self) -> Result<(), DeliveryError> {
        let fail = |what: &str, e: std::io::Error| {
            DeliveryError::retryable(format!("syslog {what} {}", e)).with_source(e)
        };
        let addrs: Vec<_> = self
            .authority
            .to_socket_addrs()
            .map_err(|e| fail("cannot resolve:", e))?
            .collect();
        let mut last = None;
        for addr in addrs {
            let r = match self.transport {
                SyslogTransport::Udp => {
                    let local = if addr.is_ipv4() {
                        "0.0.0.0:0"
                    } else {
                        "[::]:0"
                    };
                    UdpSocket::bind(local)
                        .and_then(|s| s.connect(addr).map(|_| s))
                        .map(Conn::Udp)
                }
                SyslogTransport::Tcp => TcpStream::connect_timeout(&addr, self.timeout)
                    .and_then(|s| {
                        s.set_write_timeout(Some(self.timeout))?;
                        s.set_nodelay(true)?;
                        Ok(s)
                    })
                    .map(Conn::Tcp),
            };
            match r {
                Ok(c) => {
                    self.conn = c;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => fail("cannot connect:", e),
            None => DeliveryError::retryable(format!("syslog: {} has no address", self.authority)),
        })
    }

    /// Build a message with values bounded to `max_value` bytes.
    fn build(&self, output: &Output, max_value: usize) -> Result<String, EncodeError> {
        let (severity, time, host, msgid, params, text) = match output {
            Output::Incident { change, incident } => {
                let (p, t) = incident_fields(incident, change.as_str());
                (
                    incident.severity,
                    incident.last_seen,
                    incident.hosts.first().map(String::as_str),
                    "incident",
                    p,
                    t,
                )
            }
            Output::Flag(f) => {
                let (p, t) = flag_fields(f);
                (f.severity, f.time, Some(f.host.as_str()), "flag", p, t)
            }
            Output::Event(e) => {
                let (p, t) = event_fields(e);
                (
                    Severity::Info,
                    e.time,
                    Some(e.host.name.as_str()),
                    "event",
                    p,
                    t,
                )
            }
        };
        let host = host.filter(|h| !h.is_empty()).unwrap_or(&self.hostname);
        let pri = u16::from(self.facility) * 8 + u16::from(severity_code(severity));
        let mut m = String::with_capacity(512);
        // Writing to a String cannot fail.
        let _ = write!(
            m,
            "<{pri}>1 {} {} causeway {} {msgid} [{SD_ID}",
            timestamp(time.to_rfc3339()),
            header_field(host, 255),
            self.procid
        );
        for (k, v) in &params {
            let _ = write!(m, " {k}=\"");
            sd_escape_into(&mut m, v, max_value);
            m.push('"');
        }
        m.push_str("] ");
        let room = self.max_message.saturating_sub(m.len());
        if room < 16 {
            return Err(EncodeError::TooLarge {
                size: m.len(),
                max: self.max_message,
            });
        }
        push_text(&mut m, &text, room);
        Ok(m)
    }
}

fn severity_code(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// RFC 3339 with nanoseconds -> with microseconds (`...:05.123456Z`).
fn timestamp(rfc3339: String) -> String {
    match rfc3339.find('.') {
        Some(dot) if rfc3339.len() >= dot + 7 => format!("{}Z", &rfc3339[..dot + 7]),
        _ => rfc3339,
    }
}

/// A header field: printable ASCII without spaces, at most `max` bytes, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let out: String = s
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(max)
        .collect();
    if out.is_empty() {
        "-".into()
    } else {
        out
    }
}

/// Escape a PARAM-VALUE (§6.3.3) and bound it to `max` bytes of the unescaped text, cut at
/// a character boundary. A control character becomes the text `\xNN` (its backslash
/// escaped in turn), so a receiver that unescapes reads `\xNN`, the form Causeway uses for
/// bytes it cannot show.
fn sd_escape_into(out: &mut String, v: &str, max: usize) {
    let mut used = 0;
    for c in v.chars() {
        used += c.len_utf8();
        if used > max {
            break;
        }
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Append MSG text, control characters as `\xNN`, bounded to `room` bytes.
fn push_text(out: &mut String, text: &str, room: usize) {
    let limit = out.len() + room;
    for c in text.chars() {
        let mut buf = [0u8; 4];
        let piece: std::borrow::Cow<str> = if c.is_control() {
            format!("\\x{:02x}", u32::from(c)).into()
        } else {
            (&*c.encode_utf8(&mut buf)).into()
        };
        if out.len() + piece.len() > limit {
            break;
        }
        out.push_str(&piece);
    }
}

type Fields = Vec<(&'static str, String)>;

fn incident_fields(i: &Incident, change: &str) -> (Fields, String) {
    let p = vec![
        ("kind", "incident".to_string()),
        ("change", change.to_string()),
        ("incident_id", i.id.clone()),
        ("score", i.score.to_string()),
        ("severity", i.severity.as_str().to_string()),
        ("rules", rule_ids(i).join(",")),
        ("techniques", i.techniques.join(",")),
        ("tactics", i.tactics.join(",")),
        ("root_pid", i.root.pid.to_string()),
        ("root_exe", i.root.exe.clone()),
        ("flags", i.flags.len().to_string()),
        ("first_seen", i.first_seen.to_rfc3339()),
    ];
    let t = format!(
        "incident {} {change}: {} (score {}, {}, {} flags)",
        i.id,
        i.title,
        i.score,
        i.severity.as_str(),
        i.flags.len()
    );
    (p, t)
}

fn flag_fields(f: &Flag) -> (Fields, String) {
    let mut p = vec![
        ("kind", "flag".to_string()),
        ("rule_id", f.rule_id.clone()),
        ("severity", f.severity.as_str().to_string()),
        ("techniques", f.techniques.join(",")),
        ("tactic", f.tactic.clone()),
        ("event_kind", f.kind.as_str().to_string()),
        ("pid", f.pid.to_string()),
        ("exe", f.exe.clone()),
        ("process_id", f.process_id.clone()),
        ("object", f.object.clone()),
    ];
    if let Some(s) = &f.suppressed_by {
        p.push(("suppressed_by", s.clone()));
    }
    (p, format!("{}: {}", f.title, f.message))
}

fn event_fields(e: &Event) -> (Fields, String) {
    let kind = e.kind.as_str().to_string();
    let p = vec![
        ("kind", "event".to_string()),
        ("event_kind", kind.clone()),
        ("pid", e.process.pid.to_string()),
        ("exe", e.process.exe.clone()),
    ];
    (
        p,
        format!("{kind} by {} ({})", e.process.exe, e.process.pid),
    )
}

impl Sink for SyslogSink {
    type Message = String;

    fn name(&self) -> &'static str {
        "syslog"
    }

    fn accepts(&self) -> Accepts {
        Accepts {
            incidents: true,
            flags: true,
            events: false,
        }
    }

    fn encode(&mut self, output: &Output) -> Result<String, EncodeError> {
        if let Ok(m) = self.build(output, MAX_VALUE) {
            if m.len() <= self.max_message {
                return Ok(m);
            }
        }
        // Too long: keep every field, shorter; the text shrinks to what is left.
        let m = self.build(output, SHORT_VALUE)?;
        if m.len() <= self.max_message {
            Ok(m)
        } else {
            Err(EncodeError::TooLarge {
                size: m.len(),
                max: self.max_message,
            })
        }
    }

    fn deliver(&mut self, batch: &[String]) -> Result<(), DeliveryError> {
        if let Conn::Tcp(s) = &self.conn {
            if peer_closed(s) {
                // A write to a connection the receiver closed would still succeed once
                // (the kernel buffers it before the reset comes back) and be lost.
                self.conn = Conn::None;
            }
        }
        if matches!(self.conn, Conn::None) {
            self.connect()?;
        }
        let r = match &mut self.conn {
            Conn::Udp(s) => {
                for (done, m) in batch.iter().enumerate() {
                    if let Err(e) = s.send(m.as_bytes()) {
                        self.conn = Conn::None;
                        return Err(DeliveryError::retryable(format!("syslog send failed: {e}"))
                            .at_message(done)
                            .with_source(e));
                    }
                }
                Ok(())
            }
            Conn::Tcp(s) => {
                let mut buf = Vec::with_capacity(batch.iter().map(|m| m.len() + 8).sum());
                for m in batch {
                    // Octet counting: "MSG-LEN SP SYSLOG-MSG".
                    let _ = write!(buf, "{} ", m.len());
                    buf.extend_from_slice(m.as_bytes());
                }
                s.write_all(&buf).and_then(|_| s.flush())
            }
            Conn::None => Ok(()),
        };
        r.map_err(|e| {
            // Start over with a fresh socket on the next attempt.
            self.conn = Conn::None;
            DeliveryError::retryable(format!("syslog send failed: {e}")).with_source(e)
        })
    }
}

/// Whether the receiver closed (or reset) the connection. Syslog receivers never send,
/// so any readable state is an end of stream or an error.
fn peer_closed(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let closed = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    closed || s.set_nonblocking(false).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_bounds() {
        let mut s = String::new();
        sd_escape_into(&mut s, "a\"b\\c]d\ne", 100);
        assert_eq!(s, r#"a\"b\\c\]d\\x0ae"#);
        let mut s = String::new();
        sd_escape_into(&mut s, "ééé", 5);
        assert_eq!(s, "éé");
        assert_eq!(header_field("a b\u{1}", 10), "a_b_");
        assert_eq!(header_field("", 10), "-");
        assert_eq!(
            timestamp("2026-12-01T11:00:05.123456789Z".into()),
            "2026-12-01T11:00:05.123456Z"
        );
        let mut t = String::new();
        push_text(&mut t, "x\ny", 100);
        assert_eq!(t, "x\\x0ay");
    }

    #[test]
    fn long_fields_are_shortened_to_fit() {
        let mut cfg = SyslogConfig::new("udp://127.0.0.1:514");
        cfg.hostname = Some("h".into());
        let mut sink = SyslogSink::new(&cfg).unwrap();
        let long = "é".repeat(5_000);
        let flag = Flag {
            rule_id: long.clone(),
            title: long.clone(),
            severity: Severity::Low,
            techniques: vec![long.clone(); 3],
            tactic: long.clone(),
            time: causeway_model::timefmt::Timestamp(0),
            kind: causeway_model::Kind::FileOpen,
            host: long.clone(),
            process_id: long.clone(),
            pid: 1,
            exe: long.clone(),
            object: long.clone(),
            message: long.clone(),
            suppressed_by: Some(long.clone()),
        };
        let m = sink
            .encode(&Output::Flag(std::sync::Arc::new(flag)))
            .unwrap();
        assert!(m.len() <= 2048, "{}", m.len());
        assert!(m.starts_with("<133>1 1970-01-01T00:00:00.000000Z "), "{m}");
        let sd_end = m.rfind("\"] ").unwrap();
        assert!(m[sd_end..].len() > 3, "some text is left");
        // Every value was cut to the short bound, at a character boundary.
        assert!(m.contains(&format!("exe=\"{}\"", "é".repeat(SHORT_VALUE / 2))));
    }
}
