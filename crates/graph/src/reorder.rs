//! Reorder buffer: events are held until the stream's newest time has moved `horizon` past
//! them, then released in a total, content-based order (time, then kind, host, process, then
//! the full JSON). Any delivery whose disorder is within the horizon is therefore released in
//! exactly the same order, which is what makes the graph independent of delivery order.

use causeway_model::Event;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

struct Pending(Event);

impl Pending {
    fn cmp_key(&self, o: &Self) -> Ordering {
        let (a, b) = (&self.0, &o.0);
        a.time
            .cmp(&b.time)
            .then_with(|| a.kind.cmp(&b.kind))
            .then_with(|| a.host.id.cmp(&b.host.id))
            .then_with(|| a.process.id.cmp(&b.process.id))
            // Full ties are rare (same ns, same process, same kind); only then pay for JSON.
            .then_with(|| a.to_json().cmp(&b.to_json()))
    }
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        self.cmp_key(o) == Ordering::Equal
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> Ordering {
        self.cmp_key(o)
    }
}

/// A min-heap of pending events with a lateness horizon in nanoseconds.
pub struct Reorder {
    horizon: i64,
    heap: BinaryHeap<Reverse<Pending>>,
    max_seen: i64,
}

impl Default for Reorder {
    fn default() -> Self {
        Reorder::new(0)
    }
}

impl std::fmt::Debug for Reorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reorder")
            .field("horizon", &self.horizon)
            .field("pending", &self.heap.len())
            .finish()
    }
}

impl Reorder {
    pub fn new(horizon_ns: i64) -> Self {
        Reorder {
            horizon: horizon_ns.max(0),
            heap: BinaryHeap::new(),
            max_seen: i64::MIN,
        }
    }

    /// Add an event; release every event that can no longer be overtaken.
    pub fn push(&mut self, ev: Event, out: &mut dyn FnMut(Event)) {
        self.max_seen = self.max_seen.max(ev.time.0);
        self.heap.push(Reverse(Pending(ev)));
        // Strictly older than the watermark: an event at the watermark itself could still be
        // tied by one arriving later, and ties must be ordered by content, not arrival.
        let watermark = self.max_seen.saturating_sub(self.horizon);
        while let Some(Reverse(p)) = self.heap.peek() {
            if p.0.time.0 >= watermark {
                break;
            }
            if let Some(Reverse(p)) = self.heap.pop() {
                out(p.0);
            }
        }
    }

    /// Release everything, in order.
    pub fn drain(&mut self, out: &mut dyn FnMut(Event)) {
        while let Some(Reverse(p)) = self.heap.pop() {
            out(p.0);
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
