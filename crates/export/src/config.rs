//! Plain configuration of the exports and the errors of starting them. Parsing of
//! endpoint URLs lives here so that every sink reports a bad URL the same clear way.

use std::path::PathBuf;
use std::time::Duration;

/// Which sinks to start. `None` leaves a sink off.
#[derive(Debug, Clone, Default)]
pub struct ExportConfig {
    pub webhook: Option<WebhookConfig>,
    pub syslog: Option<SyslogConfig>,
    pub otlp: Option<OtlpConfig>,
    pub jsonl: Option<JsonlConfig>,
}

/// How a sink's queue and retries behave.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Outputs waiting for the sink; beyond this `offer` drops (`queue_full`).
    pub capacity: usize,
    /// Most outputs handed to one `deliver` call.
    pub max_batch: usize,
    pub retry: RetryPolicy,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 4096,
            max_batch: 256,
            retry: RetryPolicy::default(),
        }
    }
}

/// Capped exponential backoff with jitter: before attempt `n + 1` the sink waits a random
/// time in `[d/2, d]` where `d = min(cap, base * 2^(n-1))` ("equal jitter": spread out, but
/// never much shorter than the nominal delay, so a struggling receiver is not hammered).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts per batch including the first; then the batch is a dead letter.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 8 attempts over about 40 s before a batch is given up.
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(15),
        }
    }
}

/// Webhook sink: incidents as Standard Webhooks messages.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the messages are POSTed to.
    pub url: String,
    /// File holding the signing secret: `whsec_<base64>` (Standard Webhooks form) or, for
    /// anything else, the file's raw bytes with one trailing newline removed.
    pub secret_file: PathBuf,
    /// Whole-request timeout (connect, send, answer).
    pub timeout: Duration,
    pub queue: QueueConfig,
}

impl WebhookConfig {
    pub fn new(url: impl Into<String>, secret_file: impl Into<PathBuf>) -> Self {
        WebhookConfig {
            url: url.into(),
            secret_file: secret_file.into(),
            timeout: Duration::from_secs(10),
            queue: QueueConfig::default(),
        }
    }
}

/// Syslog transport, from `udp://HOST:PORT` or `tcp://HOST:PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogTransport {
    /// One message per datagram (RFC 5426).
    Udp,
    /// Octet-counting framing (RFC 6587 §3.4.1), reconnecting after any failure.
    Tcp,
}

/// Syslog facility (RFC 5424 §6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facility {
    Auth,
    Daemon,
    User,
    Local(u8),
}

impl Facility {
    pub fn code(self) -> u8 {
        match self {
            Facility::User => 1,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            // local0..local7 are 16..23; `parse` keeps n in 0..=7.
            Facility::Local(n) => 16 + n.min(7),
        }
    }

    /// `auth`, `daemon`, `user`, `local0` .. `local7`.
    pub fn parse(s: &str) -> Result<Facility, ExportError> {
        let bad = || ExportError::Config(format!("unknown syslog facility {s:?}"));
        Ok(match s {
            "auth" => Facility::Auth,
            "daemon" => Facility::Daemon,
            "user" => Facility::User,
            _ => {
                let n: u8 = s
                    .strip_prefix("local")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?;
                if n > 7 {
                    return Err(bad());
                }
                Facility::Local(n)
            }
        })
    }
}

/// Syslog sink: RFC 5424 lines for incidents and flags.
#[derive(Debug, Clone)]
pub struct SyslogConfig {
    /// `udp://HOST:PORT` or `tcp://HOST:PORT` (IPv6 as `[::1]:514`).
    pub url: String,
    /// Default `local0`.
    pub facility: Facility,
    /// HOSTNAME used when an output names no host; default the kernel's host name.
    pub hostname: Option<String>,
    /// Bound on one message in bytes (header, structured data and text). Default 2048,
    /// the size RFC 5426 says every UDP receiver should accept.
    pub max_message: usize,
    /// Connect and write timeout for TCP.
    pub timeout: Duration,
    pub queue: QueueConfig,
}

impl SyslogConfig {
    pub fn new(url: impl Into<String>) -> Self {
        SyslogConfig {
            url: url.into(),
            facility: Facility::Local(0),
            hostname: None,
            max_message: 2048,
            timeout: Duration::from_secs(5),
            queue: QueueConfig::default(),
        }
    }
}

/// OTLP sink: incidents and flags as OTLP logs over HTTP/protobuf.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// `http(s)://HOST:PORT[/path]`. Without a path (or `/`), `/v1/logs` is appended as for
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; a path ending in `/v1/logs` is used as it is; any other
    /// path gets `/v1/logs` appended.
    pub url: String,
    pub timeout: Duration,
    /// Also export every event (not only incidents and flags).
    pub events: bool,
    pub queue: QueueConfig,
}

impl OtlpConfig {
    pub fn new(url: impl Into<String>) -> Self {
        OtlpConfig {
            url: url.into(),
            timeout: Duration::from_secs(10),
            events: false,
            queue: QueueConfig::default(),
        }
    }
}

/// When the JSON-lines sink calls `fsync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// After every delivered batch (durable across a crash of the machine; slowest).
    EveryBatch,
    /// Only before a rotation and at shutdown (default): a batch is written to the kernel
    /// at once, so a crash of Causeway loses nothing, a crash of the machine may lose the
    /// last seconds.
    OnRotate,
}

/// JSON-lines file sink with size-based rotation.
#[derive(Debug, Clone)]
pub struct JsonlConfig {
    pub path: PathBuf,
    /// Rotate when the file would grow past this many bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` newest .. `path.N`); older ones are deleted.
    pub keep: usize,
    pub fsync: FsyncPolicy,
    /// Also write every event (not only incidents and flags).
    pub events: bool,
    pub queue: QueueConfig,
}

impl JsonlConfig {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JsonlConfig {
            path: path.into(),
            max_bytes: 64 << 20,
            keep: 5,
            fsync: FsyncPolicy::OnRotate,
            events: false,
            queue: QueueConfig::default(),
        }
    }
}

/// Why the exports could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{sink}: invalid URL {url:?}: {reason}")]
    Url {
        sink: &'static str,
        url: String,
        reason: String,
    },
    #[error("webhook: cannot read the secret file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("webhook: bad secret in {path}: {reason}")]
    Secret { path: PathBuf, reason: String },
    #[error("jsonl: cannot open {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{sink}: cannot start its thread: {source}")]
    Thread {
        sink: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
}

/// A URL split into what the sinks need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedUrl {
    pub scheme: String,
    /// `host:port` as `ToSocketAddrs` takes it (IPv6 keeps its brackets).
    pub authority: String,
    pub path: String,
}

/// Parse `scheme://host:port[/path]`, accepting only `schemes`; a port is required unless
/// the scheme has a default (http 80, https 443).
pub(crate) fn parse_url(
    sink: &'static str,
    url: &str,
    schemes: &[&str],
) -> Result<ParsedUrl, ExportError> {
    let err = |reason: String| ExportError::Url {
        sink,
        url: url.to_string(),
        reason,
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| err(format!("expected {}://HOST:PORT", schemes.join("|"))))?;
    let scheme = scheme.to_ascii_lowercase();
    if !schemes.contains(&scheme.as_str()) {
        return Err(err(format!(
            "scheme {scheme:?} is not one of {}",
            schemes.join(", ")
        )));
    }
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(err("credentials in the URL are not supported".into()));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| err("unclosed '[' in IPv6 address".into()))?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(err("missing host".into()));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| err(format!("bad port {p:?}")))?,
        None => match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(err("missing port".into())),
        },
    };
    let host = if authority.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(ParsedUrl {
        scheme,
        authority: format!("{host}:{port}"),
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = parse_url("syslog", "udp://127.0.0.1:514", &["udp", "tcp"]).unwrap();
        assert_eq!(u.authority, "127.0.0.1:514");
        let u = parse_url("syslog", "TCP://[::1]:6514", &["udp", "tcp"]).unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.authority.as_str()),
            ("tcp", "[::1]:6514")
        );
        let u = parse_url("otlp", "http://collector/x/v1/logs", &["http", "https"]).unwrap();
        assert_eq!(
            (u.authority.as_str(), u.path.as_str()),
            ("collector:80", "/x/v1/logs")
        );
        for bad in [
            "localhost:514",
            "udp://:514",
            "udp://host",
            "udp://host:99999",
            "ftp://host:1",
            "tcp://[::1:5",
        ] {
            let e = parse_url("syslog", bad, &["udp", "tcp"]).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn facilities() {
        assert_eq!(Facility::parse("local0").unwrap().code(), 16);
        assert_eq!(Facility::parse("local7").unwrap().code(), 23);
        assert_eq!(Facility::parse("auth").unwrap().code(), 4);
        assert!(Facility::parse("local8").is_err());
    }
}
