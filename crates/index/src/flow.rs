//! The one flow-pairing rule. A client's connect and a server's accept are the same flow
//! when their tuples mirror each other (protocol, client ip:port, server ip:port, with
//! IPv4-mapped IPv6 addresses compared as IPv4) and their times are within
//! [`FlowConfig::window_ns`] of each other. The index pairs flows live with it; the causal
//! graph links client and server images with the same functions and the same window, so an
//! incident and a trace never disagree on who talked to whom.

use causeway_model::{Event, Kind, Network};
use rustc_hash::FxHashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// How flows are paired and how long unpaired halves are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowConfig {
    /// A connect and an accept of the mirrored tuple pair when this close in time (ns):
    /// accept latency plus modest clock skew between hosts.
    pub window_ns: i64,
    /// Halves older than this (event time, ns) are forgotten.
    pub ttl_ns: i64,
    /// Bound on remembered halves; the oldest are forgotten first (counted).
    pub max_halves: usize,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            window_ns: 5_000_000_000,
            ttl_ns: 60_000_000_000,
            max_halves: 200_000,
        }
    }
}

impl FlowConfig {
    /// Do two halves seen at these times belong to one flow (given mirrored tuples)?
    pub fn pairs(&self, a: i64, b: i64) -> bool {
        a.abs_diff(b) <= self.window_ns.max(0) as u64
    }
}

/// `::ffff:1.2.3.4` and `1.2.3.4` are the same peer; agents may report either.
pub fn norm_ip(ip: &str) -> &str {
    ip.strip_prefix("::ffff:").unwrap_or(ip)
}

/// Which half of a flow an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The connecting process (`net.connect`).
    Client,
    /// The accepting process (`net.accept`).
    Server,
}

impl Side {
    /// The half a `net.connect` / `net.accept` event is; `None` for other kinds.
    pub fn of(kind: Kind) -> Option<Side> {
        match kind {
            Kind::NetConnect => Some(Side::Client),
            Kind::NetAccept => Some(Side::Server),
            _ => None,
        }
    }
}

/// The flow's tuple as both sides compute it: (protocol, client ip, client port, server ip,
/// server port).
pub fn flow_key(n: &Network, side: Side) -> (&str, &str, u16, &str, u16) {
    let (l, r) = (norm_ip(&n.local.ip), norm_ip(&n.remote.ip));
    match side {
        Side::Client => (&n.protocol, l, n.local.port, r, n.remote.port),
        Side::Server => (&n.protocol, r, n.remote.port, l, n.local.port),
    }
}

type OwnedKey = (Box<str>, Box<str>, u16, Box<str>, u16);

fn owned(k: (&str, &str, u16, &str, u16)) -> OwnedKey {
    (k.0.into(), k.1.into(), k.2, k.3.into(), k.4)
}

#[derive(Debug, Default)]
struct Halves {
    clients: Vec<(i64, Arc<str>)>,
    servers: Vec<(i64, Arc<str>)>,
}

/// Flow halves seen recently, keyed by tuple; answers "who is on the other end".
#[derive(Debug, Default)]
pub struct FlowTable {
    cfg: FlowConfig,
    halves: FxHashMap<OwnedKey, Halves>,
    order: VecDeque<(i64, OwnedKey)>,
    newest: i64,
    pub(crate) paired: u64,
    pub(crate) forgotten: u64,
}

impl FlowTable {
    pub fn new(cfg: FlowConfig) -> Self {
        FlowTable {
            cfg,
            ..Default::default()
        }
    }

    pub fn config(&self) -> FlowConfig {
        self.cfg
    }

    /// Remember the half of a flow this event is (connect or accept).
    pub fn observe(&mut self, e: &Event, process: &Arc<str>) {
        let (Some(side), Some(n)) = (Side::of(e.kind), e.network.as_ref()) else {
            return;
        };
        let key = owned(flow_key(n, side));
        let t = e.time.0;
        self.newest = self.newest.max(t);
        let h = self.halves.entry(key.clone()).or_default();
        let (mine, theirs) = match side {
            Side::Client => (&mut h.clients, &h.servers),
            Side::Server => (&mut h.servers, &h.clients),
        };
        if theirs.iter().any(|(tp, _)| self.cfg.pairs(*tp, t)) {
            self.paired += 1;
        }
        mine.push((t, Arc::clone(process)));
        self.order.push_back((t, key));
        self.expire();
    }

    /// The process id at the other end of this event's flow, when seen within the window
    /// (the nearest in time if several).
    pub fn peer(&self, e: &Event) -> Option<&Arc<str>> {
        let (side, n) = (Side::of(e.kind)?, e.network.as_ref()?);
        let k = flow_key(n, side);
        let h = self.halves.get(&owned(k))?;
        let theirs = match side {
            Side::Client => &h.servers,
            Side::Server => &h.clients,
        };
        let t = e.time.0;
        theirs
            .iter()
            .filter(|(tp, id)| self.cfg.pairs(*tp, t) && **id != *e.process.id)
            .min_by_key(|(tp, _)| tp.abs_diff(t))
            .map(|(_, id)| id)
    }

    /// Halves remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn expire(&mut self) {
        let horizon = self.newest.saturating_sub(self.cfg.ttl_ns);
        while let Some((t, _)) = self.order.front() {
            let over = self.order.len() > self.cfg.max_halves;
            if *t >= horizon && !over {
                break;
            }
            let Some((t, key)) = self.order.pop_front() else {
                break;
            };
            if over && t >= horizon {
                self.forgotten += 1;
            }
            if let Some(h) = self.halves.get_mut(&key) {
                h.clients.retain(|(x, _)| *x != t);
                h.servers.retain(|(x, _)| *x != t);
                if h.clients.is_empty() && h.servers.is_empty() {
                    self.halves.remove(&key);
                }
            }
        }
    }
}
