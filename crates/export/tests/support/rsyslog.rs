//! A real rsyslogd with a configuration of the test's own: imudp and imtcp on free
//! loopback ports, mmpstrucdata to parse RFC 5424 structured data, omfile writing one JSON
//! object per message. No system logging (no imuxsock, no imklog).

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn rsyslogd() -> Option<PathBuf> {
    for p in ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"] {
        if Path::new(p).exists() {
            return Some(p.into());
        }
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("rsyslogd not found and CI=true forbids skipping (apt-get install rsyslog)");
    }
    eprintln!("SKIP: rsyslogd not found (apt-get install rsyslog)");
    None
}

pub struct Rsyslog {
    child: Option<Child>,
    bin: PathBuf,
    conf: PathBuf,
    pub out: PathBuf,
    pub udp: u16,
    pub tcp: u16,
    _dir: tempfile::TempDir,
}

impl Rsyslog {
    /// Write a configuration (nothing runs yet; `start` runs it).
    pub fn configure(bin: PathBuf) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.jsonl");
        let (udp, tcp) = (free_udp_port(), free_port());
        let conf = dir.path().join("rsyslog.conf");
        let q = |p: &str| format!("constant(value=\"\\\",\\\"{p}\\\":\\\"\")");
        let mut t = String::from("constant(value=\"{\\\"pri\\\":\\\"\") property(name=\"pri\")\n");
        for (k, prop) in [
            ("facility", "syslogfacility-text"),
            ("severity", "syslogseverity-text"),
            ("version", "protocol-version"),
            ("timestamp", "timereported"),
            ("hostname", "hostname"),
            ("app", "app-name"),
            ("procid", "procid"),
            ("msgid", "msgid"),
            ("sd", "structured-data"),
            ("msg", "msg"),
            ("input", "inputname"),
        ] {
            let fmt = if k == "timestamp" {
                " dateFormat=\"rfc3339\""
            } else {
                ""
            };
            t.push_str(&format!(
                "{} property(name=\"{prop}\" format=\"json\"{fmt})\n",
                q(k)
            ));
        }
        t.push_str("constant(value=\"\\\",\\\"parsed\\\":\") property(name=\"$!rfc5424-sd\")\n");
        t.push_str("constant(value=\"}\\n\")\n");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="mmpstrucdata")
template(name="asjson" type="list") {{
{t}}}
ruleset(name="test") {{
  action(type="mmpstrucdata")
  action(type="omfile" file="{out}" template="asjson")
}}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="test")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="test")
"#,
                dir = dir.path().display(),
                out = out.display(),
            ),
        )
        .unwrap();
        Rsyslog {
            child: None,
            bin,
            conf,
            out,
            udp,
            tcp,
            _dir: dir,
        }
    }

    /// Run rsyslogd in the foreground and wait until its TCP input accepts connections.
    pub fn start(&mut self) {
        let child = Command::new(&self.bin)
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(self._dir.path().join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn rsyslogd");
        self.child = Some(child);
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.tcp)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "rsyslogd did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop it the orderly way (SIGTERM: it writes out what it received) and wait.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let st = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status()
                .expect("kill");
            assert!(st.success());
            c.wait().expect("wait rsyslogd");
        }
    }

    /// Lines rsyslog wrote, parsed; waits for at least `n`.
    pub fn lines(&self, n: usize) -> Vec<serde_json::Value> {
        let t0 = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let v: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
            if v.len() >= n {
                return v;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "only {} of {n} lines arrived: {text}",
                v.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
