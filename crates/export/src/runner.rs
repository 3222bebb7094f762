//! The sink runner: one thread and one bounded queue per sink, batching, retries with
//! capped exponential backoff and jitter, dead letters, and the counters of all of it.

use crate::config::{ExportConfig, ExportError, QueueConfig, RetryPolicy};
use crate::output::{Accepts, Output};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A failed delivery. `retryable` says whether the rest of the batch may succeed later
/// (the receiver is down, overloaded or slow) or never will (it refused the content).
/// `done` is how many leading messages of the batch were delivered before the failure:
/// they are counted as delivered and not sent again. `one_message` says the failure is
/// about the message at `done` alone (one request per message): a permanent failure then
/// makes only that message a dead letter and the rest of the batch is still sent.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct DeliveryError {
    pub retryable: bool,
    pub reason: String,
    pub done: usize,
    pub one_message: bool,
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl DeliveryError {
    pub fn retryable(reason: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            reason: reason.into(),
            done: 0,
            one_message: false,
            source: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            reason: reason.into(),
            done: 0,
            one_message: false,
            source: None,
        }
    }

    /// Say that the first `done` messages of the batch were delivered and that this
    /// failure concerns message `done` alone.
    pub fn at_message(mut self, done: usize) -> Self {
        self.done = done;
        self.one_message = true;
        self
    }

    pub fn with_source(mut self, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(e));
        self
    }
}

/// An output a sink cannot put on the wire; it is dropped and counted (`encode_error`).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("JSON encoding failed: {0}")]
    Json(#[from] serde_json::Error),
    #[error("message of {size} bytes exceeds the bound of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("{0}")]
    Unsupported(&'static str),
}

/// One export destination. The runner calls everything on the sink's own thread.
pub trait Sink: Send + 'static {
    /// The encoded form of one output, kept across retries of its batch.
    type Message: Send;
    /// Short, stable name: the `sink` label of the metrics.
    fn name(&self) -> &'static str;
    fn accepts(&self) -> Accepts;
    /// Encode one output. Runs once per output, so ids chosen here stay the same on retry.
    fn encode(&mut self, output: &Output) -> Result<Self::Message, EncodeError>;
    /// Deliver a batch. On failure the runner retries the messages after
    /// [`DeliveryError::done`] (the whole batch when the sink cannot tell).
    fn deliver(&mut self, batch: &[Self::Message]) -> Result<(), DeliveryError>;
    /// Called once when the runner stops (flush files, close connections).
    fn close(&mut self) -> Result<(), DeliveryError> {
        Ok(())
    }
}

/// Why outputs were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossCause {
    /// The sink's queue was full when the output was offered.
    QueueFull,
    /// Retries exhausted, or the receiver refused the batch for good.
    DeadLetter,
    /// The output could not be encoded (too large, JSON failure).
    EncodeError,
    /// Still queued or in flight when `shutdown`'s timeout ran out.
    Shutdown,
}

impl LossCause {
    pub const ALL: [LossCause; 4] = [
        LossCause::QueueFull,
        LossCause::DeadLetter,
        LossCause::EncodeError,
        LossCause::Shutdown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LossCause::QueueFull => "queue_full",
            LossCause::DeadLetter => "dead_letter",
            LossCause::EncodeError => "encode_error",
            LossCause::Shutdown => "shutdown",
        }
    }
}

/// Outputs lost by one sink, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Losses {
    pub queue_full: u64,
    pub dead_letter: u64,
    pub encode_error: u64,
    pub shutdown: u64,
}

impl Losses {
    pub fn total(&self) -> u64 {
        self.queue_full + self.dead_letter + self.encode_error + self.shutdown
    }
}

/// A sink's counters at one moment, for health.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    pub sink: &'static str,
    pub capacity: usize,
    /// Outputs waiting in the queue now (not counting a batch being delivered).
    pub queued: usize,
    /// Outputs accepted into the queue.
    pub accepted: u64,
    /// Outputs delivered.
    pub delivered: u64,
    /// Delivery attempts that failed (each retry of a batch counts).
    pub failed_attempts: u64,
    pub lost: Losses,
    /// The latest failure, until a delivery succeeds again.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    lost: [AtomicU64; 4],
}

impl Counters {
    fn lose(&self, sink: &'static str, cause: LossCause, n: u64) {
        if n == 0 {
            return;
        }
        self.lost[cause as usize].fetch_add(n, Relaxed);
        metrics::counter!("causeway_events_lost_total",
            "stage" => "sink", "sink" => sink, "cause" => cause.as_str())
        .increment(n);
    }

    fn losses(&self) -> Losses {
        let l = |c: LossCause| self.lost[c as usize].load(Relaxed);
        Losses {
            queue_full: l(LossCause::QueueFull),
            dead_letter: l(LossCause::DeadLetter),
            encode_error: l(LossCause::EncodeError),
            shutdown: l(LossCause::Shutdown),
        }
    }
}

/// Help texts for the counters (shown by exporters such as Prometheus').
fn describe_metrics() {
    metrics::describe_counter!(
        "causeway_events_lost_total",
        "Outputs lost, by stage, sink and cause (queue_full, dead_letter, encode_error, shutdown)"
    );
    metrics::describe_counter!(
        "causeway_sink_deliveries_total",
        "Outputs per delivery outcome (delivered; failed counts each failed attempt)"
    );
}

fn deliveries(sink: &'static str, status: &'static str, n: u64) {
    metrics::counter!("causeway_sink_deliveries_total", "sink" => sink, "status" => status)
        .increment(n);
}

/// State shared between a sink's handle and its thread.
#[derive(Debug)]
struct Shared {
    counters: Counters,
    /// Set by `shutdown`: past it, the thread stops retrying and counts what is left.
    deadline: Mutex<Option<Instant>>,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    fn set_error(&self, e: Option<String>) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = e;
    }

    fn deadline(&self) -> Option<Instant> {
        // A poisoned lock only means another thread panicked while holding it; the value
        // (an Instant) is still valid.
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug)]
struct Handle {
    name: &'static str,
    accepts: Accepts,
    capacity: usize,
    tx: Option<Sender<Output>>,
    /// Dropped at shutdown to cut a backoff sleep short.
    wake: Option<Sender<()>>,
    /// A second end of the queue, never read: only for its length.
    probe: Receiver<Output>,
    done: Receiver<()>,
    thread: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Handle {
    fn stats(&self) -> SinkStats {
        let c = &self.shared.counters;
        SinkStats {
            sink: self.name,
            capacity: self.capacity,
            queued: self.probe.len(),
            accepted: c.accepted.load(Relaxed),
            delivered: c.delivered.load(Relaxed),
            failed_attempts: c.failed_attempts.load(Relaxed),
            lost: c.losses(),
            last_error: self
                .shared
                .last_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// What `shutdown` could and could not do.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// Final counters (losses include what was left behind, as `shutdown`).
    pub sinks: Vec<SinkStats>,
    /// Sinks whose thread was still busy (e.g. inside a slow request) at the timeout.
    pub unfinished: Vec<&'static str>,
}

/// The running sinks.
#[derive(Debug, Default)]
pub struct Exports {
    sinks: Vec<Handle>,
}

impl Exports {
    /// Start the configured sinks. Configuration errors (URLs, secret, file) are reported
    /// here; an unreachable receiver is not an error (the sink retries and counts).
    pub fn start(cfg: ExportConfig) -> Result<Exports, ExportError> {
        describe_metrics();
        let mut ex = Exports::default();
        if let Some(c) = cfg.webhook {
            ex.spawn(crate::webhook::WebhookSink::new(&c)?, &c.queue)?;
        }
        if let Some(c) = cfg.syslog {
            ex.spawn(crate::syslog::SyslogSink::new(&c)?, &c.queue)?;
        }
        if let Some(c) = cfg.otlp {
            ex.spawn(crate::otlp::OtlpSink::new(&c)?, &c.queue)?;
        }
        if let Some(c) = cfg.jsonl {
            ex.spawn(crate::jsonl::JsonlSink::new(&c)?, &c.queue)?;
        }
        Ok(ex)
    }

    /// Run one more sink (any [`Sink`], e.g. the node's own) under the same rules.
    pub fn spawn<S: Sink>(&mut self, sink: S, queue: &QueueConfig) -> Result<(), ExportError> {
        let name = sink.name();
        let accepts = sink.accepts();
        let capacity = queue.capacity.max(1);
        let (tx, rx) = bounded(capacity);
        let (wake_tx, wake_rx) = bounded::<()>(0);
        let (done_tx, done_rx) = bounded::<()>(1);
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            deadline: Mutex::new(None),
            last_error: Mutex::new(None),
        });
        let probe = rx.clone();
        let worker = Worker {
            sink,
            rx,
            wake: wake_rx,
            shared: shared.clone(),
            max_batch: queue.max_batch.max(1),
            retry: queue.retry,
            rng: Jitter::new(),
        };
        let thread = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                worker.run();
                // The receiver may be gone if shutdown gave up waiting; nothing to tell.
                let _ = done_tx.send(());
            })
            .map_err(|source| ExportError::Thread { sink: name, source })?;
        self.sinks.push(Handle {
            name,
            accepts,
            capacity,
            tx: Some(tx),
            wake: Some(wake_tx),
            probe,
            done: done_rx,
            thread: Some(thread),
            shared,
        });
        Ok(())
    }

    /// Hand an output to every sink that takes it. Never blocks: a full queue drops the
    /// output for that sink and counts it as `queue_full`.
    pub fn offer(&self, output: &Output) {
        for h in &self.sinks {
            if !h.accepts.takes(output) {
                continue;
            }
            let Some(tx) = &h.tx else { continue };
            match tx.try_send(output.clone()) {
                Ok(()) => {
                    h.shared.counters.accepted.fetch_add(1, Relaxed);
                }
                Err(TrySendError::Full(_)) => {
                    h.shared.counters.lose(h.name, LossCause::QueueFull, 1);
                }
                // Only after shutdown, which takes `self`; counted for completeness.
                Err(TrySendError::Disconnected(_)) => {
                    h.shared.counters.lose(h.name, LossCause::Shutdown, 1);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Counters of every sink, in start order.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks.iter().map(Handle::stats).collect()
    }

    /// Stop taking outputs, deliver what is queued until `timeout`, then count the rest as
    /// `shutdown` losses. Returns the final counters and the sinks that did not finish.
    pub fn shutdown(mut self, timeout: Duration) -> ShutdownReport {
        let deadline = Instant::now() + timeout;
        for h in &mut self.sinks {
            *h.shared.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
            h.tx = None;
            h.wake = None;
        }
        let mut unfinished = Vec::new();
        for h in &mut self.sinks {
            // Grace beyond the deadline for a request already on the wire to time out.
            let left = deadline.saturating_duration_since(Instant::now()) + GRACE;
            if h.done.recv_timeout(left).is_ok() {
                if let Some(t) = h.thread.take() {
                    if t.join().is_err() {
                        tracing::error!(sink = h.name, "sink thread panicked");
                    }
                }
            } else {
                tracing::warn!(
                    sink = h.name,
                    "sink did not finish before the shutdown timeout"
                );
                unfinished.push(h.name);
            }
        }
        ShutdownReport {
            sinks: self.stats(),
            unfinished,
        }
    }
}

impl Drop for Exports {
    /// Dropped without `shutdown` (e.g. on an error path): stop at once. Every sink counts
    /// what it still held as `shutdown` and its thread ends on its own; nothing waits here.
    fn drop(&mut self) {
        let now = Instant::now();
        for h in &mut self.sinks {
            if h.tx.is_some() {
                *h.shared.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(now);
                h.tx = None;
                h.wake = None;
            }
        }
    }
}

const GRACE: Duration = Duration::from_millis(200);

/// A small xorshift generator for backoff jitter, seeded from the process's random hasher
/// keys (no need for cryptographic randomness, only for de-synchronising retries).
struct Jitter(u64);

impl Jitter {
    fn new() -> Self {
        let seed = RandomState::new().hash_one(Instant::now());
        Jitter(seed | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The delay before the attempt after `attempt` (1-based) failed.
fn backoff(policy: &RetryPolicy, attempt: u32, rng: &mut Jitter) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let nominal = policy
        .base
        .saturating_mul(1u32 << exp)
        .min(policy.cap)
        .as_nanos() as u64;
    let half = nominal / 2;
    Duration::from_nanos(half + rng.next() % (half + 1))
}

struct Worker<S: Sink> {
    sink: S,
    rx: Receiver<Output>,
    wake: Receiver<()>,
    shared: Arc<Shared>,
    max_batch: usize,
    retry: RetryPolicy,
    rng: Jitter,
}

impl<S: Sink> Worker<S> {
    fn run(mut self) {
        let name = self.sink.name();
        let mut outputs = Vec::with_capacity(self.max_batch);
        let mut batch = Vec::with_capacity(self.max_batch);
        // `recv` fails only once shutdown dropped the sender and the queue is empty.
        while let Ok(first) = self.rx.recv() {
            outputs.push(first);
            while outputs.len() < self.max_batch {
                match self.rx.try_recv() {
                    Ok(o) => outputs.push(o),
                    Err(_) => break,
                }
            }
            if self.past_deadline() {
                // Shutting down and out of time: what is left is counted, not sent.
                let left = outputs.len() + self.rx.len();
                outputs.clear();
                while self.rx.try_recv().is_ok() {}
                self.shared
                    .counters
                    .lose(name, LossCause::Shutdown, left as u64);
                continue;
            }
            for o in outputs.drain(..) {
                match self.sink.encode(&o) {
                    Ok(m) => batch.push(m),
                    Err(e) => {
                        tracing::warn!(sink = name, error = %e, "output not exported");
                        self.shared.counters.lose(name, LossCause::EncodeError, 1);
                    }
                }
            }
            if !batch.is_empty() {
                self.deliver(&batch);
                batch.clear();
            }
        }
        if let Err(e) = self.sink.close() {
            tracing::warn!(sink = name, error = %e, "closing the sink failed");
        }
    }

    fn past_deadline(&self) -> bool {
        self.shared.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Deliver one batch with retries; count the outcome.
    fn deliver(&mut self, batch: &[S::Message]) {
        let name = self.sink.name();
        let c = &self.shared.counters;
        let mut rest = batch;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match self.sink.deliver(rest) {
                Ok(()) => {
                    c.delivered.fetch_add(rest.len() as u64, Relaxed);
                    deliveries(name, "delivered", rest.len() as u64);
                    self.shared.set_error(None);
                    return;
                }
                Err(e) => e,
            };
            self.shared.set_error(Some(err.to_string()));
            let done = err.done.min(rest.len());
            if done > 0 {
                c.delivered.fetch_add(done as u64, Relaxed);
                deliveries(name, "delivered", done as u64);
                rest = &rest[done..];
                // Progress shows the receiver works: the rest gets a full set of attempts.
                attempt = 1;
            }
            let n = rest.len() as u64;
            if n == 0 {
                return;
            }
            c.failed_attempts.fetch_add(1, Relaxed);
            if !err.retryable && err.one_message {
                deliveries(name, "failed", 1);
                tracing::warn!(sink = name, error = %err, "message refused (dead letter)");
                c.lose(name, LossCause::DeadLetter, 1);
                rest = &rest[1..];
                attempt = 0;
                if rest.is_empty() {
                    return;
                }
                continue;
            }
            deliveries(name, "failed", n);
            if !err.retryable || attempt >= self.retry.max_attempts.max(1) {
                tracing::warn!(sink = name, attempts = attempt, error = %err,
                    retryable = err.retryable, "batch given up (dead letter)");
                c.lose(name, LossCause::DeadLetter, n);
                return;
            }
            tracing::debug!(sink = name, attempt, error = %err, "delivery failed, retrying");
            let delay = backoff(&self.retry, attempt, &mut self.rng);
            match self.shared.deadline() {
                None => {
                    // Sleeps the full delay unless shutdown drops the waker.
                    if let Err(RecvTimeoutError::Disconnected) = self.wake.recv_timeout(delay) {
                        continue;
                    }
                }
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        c.lose(name, LossCause::Shutdown, n);
                        return;
                    }
                    std::thread::sleep(delay.min(left));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Exports>();
    }

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        let mut rng = Jitter::new();
        for attempt in 1..=20 {
            let nominal = Duration::from_millis(100 * (1u64 << (attempt - 1).min(20))).min(p.cap);
            for _ in 0..50 {
                let d = backoff(&p, attempt, &mut rng);
                assert!(d >= nominal / 2 && d <= nominal, "attempt {attempt}: {d:?}");
            }
        }
    }
}
