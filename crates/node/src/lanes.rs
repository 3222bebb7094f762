//! The intake: two bounded lanes between the agent and detection. Critical events
//! (lifecycle, network, credentials, ptrace, kernel loads, mounts, memfds, sensitive reads,
//! policy decisions) and bulk file activity each have their own queue, and the ingest thread
//! always empties the critical lane before it takes bulk events. A flood of file writes can
//! therefore fill only the bulk lane: it is shed there, counted per kind, and the exec that
//! matters still reaches the rules at once.

use crate::losses::Losses;
use causeway_model::{Event, Lane};
use crossbeam_channel::{bounded, select_biased, Receiver, Sender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// Capacities of the two lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IntakeConfig {
    /// Critical events waiting, at most. An event takes about 800 bytes in a queue slot (its
    /// process is shared), so a full critical lane is ~50 MB.
    pub critical: usize,
    /// Bulk events waiting, at most: about half a second of a heavy flood (~25 MB).
    pub bulk: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            critical: 65_536,
            bulk: 32_768,
        }
    }
}

/// The sending side (the agent's thread, or a replay).
pub(crate) struct Intake {
    critical: Sender<Event>,
    bulk: Sender<Event>,
    losses: Arc<Losses>,
}

/// The receiving side (the ingest thread).
pub(crate) struct Lanes {
    critical: Receiver<Event>,
    bulk: Receiver<Event>,
}

pub(crate) fn intake(cfg: IntakeConfig, losses: Arc<Losses>) -> (Intake, Lanes) {
    let (ct, cr) = bounded(cfg.critical.max(1));
    let (bt, br) = bounded(cfg.bulk.max(1));
    (
        Intake {
            critical: ct,
            bulk: bt,
            losses,
        },
        Lanes {
            critical: cr,
            bulk: br,
        },
    )
}

impl Intake {
    fn lane(&self, ev: &Event) -> &Sender<Event> {
        match ev.lane() {
            Lane::Critical => &self.critical,
            Lane::Bulk => &self.bulk,
        }
    }

    /// Never blocks; a full lane refuses the event and counts it by kind.
    pub(crate) fn offer(&self, ev: Event) -> bool {
        match self.lane(&ev).try_send(ev) {
            Ok(()) => true,
            Err(TrySendError::Full(ev) | TrySendError::Disconnected(ev)) => {
                self.losses.intake_full(ev.kind);
                false
            }
        }
    }

    /// Waits for room (replays must not lose anything); `false` once the node stopped.
    pub(crate) fn send(&self, ev: Event) -> bool {
        self.lane(&ev).send(ev).is_ok()
    }
}

impl Lanes {
    /// The next event, critical first, waiting at most `timeout`.
    pub(crate) fn next(&self, timeout: Duration) -> Next {
        if let Ok(e) = self.critical.try_recv() {
            return Next::Event(e);
        }
        let got = select_biased! {
            recv(self.critical) -> e => e,
            recv(self.bulk) -> e => e,
            default(timeout) => return Next::Idle,
        };
        match got {
            Ok(e) => Next::Event(e),
            // One lane's senders are gone: the node is being dropped.
            Err(_) => Next::Closed,
        }
    }

    /// Up to `max` more events without waiting: all waiting critical events first.
    pub(crate) fn batch(&self, max: usize) -> impl Iterator<Item = Event> + '_ {
        let mut taken = 0;
        std::iter::from_fn(move || {
            if taken >= max {
                return None;
            }
            taken += 1;
            self.critical
                .try_recv()
                .or_else(|_| self.bulk.try_recv())
                .ok()
        })
    }
}

/// What waiting on the lanes gave.
// An event is moved once, straight into the ingest call: boxing it would cost an allocation
// per event for nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Next {
    Event(Event),
    Idle,
    Closed,
}
