//! Shared pieces of the export tests: outputs to send (built from the real types) and a
//! real HTTP receiver (axum/hyper) that records what it got and answers as told.
#![allow(dead_code)]

pub mod rsyslog;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use causeway_export::Output;
use causeway_model::timefmt::Timestamp;
use causeway_model::{Container, Endpoint, Event, Host, Kind, Network, Process};
use causeway_rules::{Flag, Incident, IncidentFlag, ProcessRef, Severity};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const T0: i64 = 1_780_000_000_123_456_789;

pub fn flag(n: u32, object: &str) -> Flag {
    Flag {
        rule_id: "CW-EXEC-001".into(),
        title: "Reverse shell".into(),
        severity: Severity::High,
        techniques: vec!["T1059.004".into(), "T1071".into()],
        tactic: "execution".into(),
        time: Timestamp(T0 + i64::from(n)),
        kind: Kind::ProcessExec,
        host: "web-1".into(),
        process_id: format!("p-{n}"),
        pid: 4000 + n,
        exe: "/usr/bin/bash".into(),
        object: object.into(),
        message: format!("bash -i connected its stdin to a socket (#{n})"),
        suppressed_by: None,
    }
}

pub fn incident(n: u32) -> Incident {
    let f = flag(n, "tcp 10.0.0.9:4444");
    Incident {
        id: format!("inc-{n}"),
        title: "Reverse shell from nginx".into(),
        score: 80,
        severity: Severity::Critical,
        techniques: f.techniques.clone(),
        tactics: vec!["execution".into(), "command-and-control".into()],
        root: ProcessRef {
            id: "p-root".into(),
            pid: 812,
            exe: "/usr/sbin/nginx".into(),
        },
        processes: vec![],
        hosts: vec!["web-1".into()],
        first_seen: Timestamp(T0),
        last_seen: Timestamp(T0 + 5_000_000_000),
        flags: vec![IncidentFlag {
            rule_id: f.rule_id.clone(),
            time: f.time,
            process_id: f.process_id.clone(),
            technique: f.techniques[0].clone(),
            techniques: f.techniques.clone(),
            tactic: f.tactic.clone(),
            severity: f.severity,
            message: f.message.clone(),
            object: f.object.clone(),
            count: 1,
            suppressed_by: None,
        }],
        suppressed: vec![],
    }
}

pub fn connect_event() -> Event {
    let process = Process {
        id: "p-77".into(),
        pid: 77,
        ppid: 1,
        exe: "/usr/bin/curl".into(),
        argv: vec!["curl".into(), "http://10.0.0.9/x".into()],
        cwd: "/tmp".into(),
        uid: 1000,
        container: Some(Container {
            id: "ab".repeat(32),
            runtime: "containerd".into(),
            pod_uid: None,
            cgroup: None,
        }),
        ..Default::default()
    };
    let mut e = Event::new(
        Timestamp(T0),
        Kind::NetConnect,
        Host {
            name: "web-1".into(),
            id: "0123456789abcdef".into(),
        },
        process,
    );
    e.network = Some(Network {
        protocol: "tcp".into(),
        family: "ipv4".into(),
        local: Endpoint {
            ip: "10.0.0.2".into(),
            port: 40000,
        },
        remote: Endpoint {
            ip: "10.0.0.9".into(),
            port: 80,
        },
        in_progress: false,
    });
    e
}

pub fn out_incident(n: u32, opened: bool) -> Output {
    Output::Incident {
        change: if opened {
            causeway_export::Change::Opened
        } else {
            causeway_export::Change::Updated
        },
        incident: Arc::new(incident(n)),
    }
}

pub fn out_flag(n: u32, object: &str) -> Output {
    Output::Flag(Arc::new(flag(n, object)))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

type Answer = dyn Fn(usize, &Request) -> u16 + Send + Sync;

/// A real HTTP server on its own thread and tokio runtime.
pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Request>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    /// Serve on `port` (0: any); `answer(n, request)` gives the status of the n-th request
    /// (0-based).
    pub fn start(
        port: u16,
        answer: impl Fn(usize, &Request) -> u16 + Send + Sync + 'static,
    ) -> Receiver {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answer: Arc<Answer> = Arc::new(answer);
        let std_listener = TcpListener::bind(("127.0.0.1", port)).expect("bind receiver");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("addr");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let reqs = requests.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                let app = axum::Router::new().fallback(
                    move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                        let reqs = reqs.clone();
                        let answer = answer.clone();
                        async move {
                            let r = Request {
                                path: uri.path().to_string(),
                                headers,
                                body,
                                at: Instant::now(),
                            };
                            let status = {
                                let mut v = reqs.lock().expect("lock");
                                let s = answer(v.len(), &r);
                                v.push(r);
                                s
                            };
                            StatusCode::from_u16(status).expect("status")
                        }
                    },
                );
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        Receiver {
            addr,
            requests,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("lock").clone()
    }

    /// Wait until `n` requests arrived (or panic after `within`).
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        let t0 = Instant::now();
        loop {
            let r = self.requests();
            if r.len() >= n {
                return r;
            }
            assert!(
                t0.elapsed() < within,
                "only {} of {n} requests arrived",
                r.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Percentiles of durations, in microseconds.
pub fn percentiles(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99), at(1.0))
}
