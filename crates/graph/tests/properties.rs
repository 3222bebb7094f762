//! Property tests: (1) the reduction preserves every backward and forward trace exactly;
//! (2) any delivery order whose disorder fits the reorder horizon gives the identical graph.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use causeway_graph::{Direction, Graph, GraphConfig, TraceQuery};
use causeway_model::{Event, Kind};
use common::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Op {
    Fork(usize),
    Exec(usize, usize),
    Write(usize, usize),
    Read(usize, usize),
    Rename(usize, usize, usize),
    Connect(usize, u16),
    Accept(usize, u16),
    Cred(usize),
    Ptrace(usize, usize),
}

const PROCS: usize = 6;
const FILES: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PROCS;
    let f = 0..FILES;
    prop_oneof![
        1 => p.clone().prop_map(Op::Fork),
        1 => (p.clone(), 0..3usize).prop_map(|(a, b)| Op::Exec(a, b)),
        4 => (p.clone(), f.clone()).prop_map(|(a, b)| Op::Write(a, b)),
        4 => (p.clone(), f.clone()).prop_map(|(a, b)| Op::Read(a, b)),
        1 => (p.clone(), f.clone(), f.clone()).prop_map(|(a, b, c)| Op::Rename(a, b, c)),
        2 => (p.clone(), 0..2u16).prop_map(|(a, b)| Op::Connect(a, b)),
        2 => (p.clone(), 0..2u16).prop_map(|(a, b)| Op::Accept(a, b)),
        1 => p.clone().prop_map(Op::Cred),
        1 => (p.clone(), p).prop_map(|(a, b)| Op::Ptrace(a, b)),
    ]
}

/// Turn ops into events: time steps of 0..3 ns (so ties happen), two hosts, fixed parents.
fn events(ops: &[(u8, Op)]) -> Vec<Event> {
    let hosts = [host("a"), host("b")];
    let mut t = 1_000i64;
    let procs: Vec<_> = (0..PROCS)
        .map(|i| {
            let parent = if i == 0 {
                String::new()
            } else {
                format!("p-{}", i / 2)
            };
            proc_(&format!("p-{i}"), 100 + i as u32, &parent, "/bin/sh")
        })
        .collect();
    let h = |i: usize| &hosts[i % 2];
    let mut out = Vec::new();
    for (dt, op) in ops {
        t += i64::from(*dt);
        let e = match op {
            Op::Fork(i) => ev(t, Kind::ProcessFork, h(*i), &procs[*i]),
            Op::Exec(i, x) => {
                let mut p = procs[*i].clone();
                p.exe = format!("/f/{x}");
                exec(t, h(*i), &p)
            }
            Op::Write(i, f) => file(t, h(*i), &procs[*i], &format!("/f/{f}"), true),
            Op::Read(i, f) => file(t, h(*i), &procs[*i], &format!("/f/{f}"), false),
            Op::Rename(i, f, g) => {
                rename(t, h(*i), &procs[*i], &format!("/f/{f}"), &format!("/f/{g}"))
            }
            // Client port = 40000 + port id; processes connect to / accept on 10.0.0.9:80.
            Op::Connect(i, port) => net(
                t,
                Kind::NetConnect,
                h(*i),
                &procs[*i],
                ("10.0.0.1", 40000 + port),
                ("10.0.0.9", 80),
            ),
            Op::Accept(i, port) => net(
                t,
                Kind::NetAccept,
                h(*i),
                &procs[*i],
                ("10.0.0.9", 80),
                ("10.0.0.1", 40000 + port),
            ),
            Op::Cred(i) => ev(t, Kind::CredChange, h(*i), &procs[*i]),
            Op::Ptrace(i, j) => ptrace(t, h(*i), &procs[*i], &procs[*j]),
        };
        out.push(e);
    }
    out
}

fn build(evs: &[Event], reduce: bool, horizon: i64) -> Graph {
    let mut g = Graph::new(GraphConfig {
        reduce,
        flow: causeway_index::FlowConfig {
            window_ns: 4,
            ..Default::default()
        },
        reorder_ns: horizon,
    });
    for e in evs {
        g.ingest_event(e.clone());
    }
    g.flush();
    g
}

type Keys = (BTreeSet<String>, BTreeSet<(String, String, String)>);

fn trace_keys(g: &Graph, start: &str, q: &TraceQuery) -> Keys {
    let n = g.find_key(start).expect("node exists in both graphs");
    let t = g.trace(n, q);
    let nodes = t.nodes.into_iter().map(|n| n.id).collect();
    let edges = t
        .edges
        .into_iter()
        .map(|e| (format!("{:?}", e.kind), e.from, e.to))
        .collect();
    (nodes, edges)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every backward trace (any start node, any end bound, any depth) and every forward trace
    /// (any start bound) on the reduced graph equals the one on the unreduced graph.
    #[test]
    fn reduction_preserves_traces(ops in proptest::collection::vec((0u8..3, op()), 1..60)) {
        let evs = events(&ops);
        let full = build(&evs, false, 10);
        let red = build(&evs, true, 10);
        let (nf, _) = full.canonical();
        let (nr, _) = red.canonical();
        prop_assert_eq!(&nf, &nr);
        prop_assert!(red.run_count() <= full.run_count());
        let mut times: Vec<Option<i64>> = evs.iter().map(|e| Some(e.time.0)).collect();
        times.dedup();
        times.push(None);
        for key in &nf {
            for &bound in &times {
                for depth in [Some(1), Some(2), None] {
                    let mut b = TraceQuery::backward();
                    b.until = bound;
                    b.depth = depth;
                    prop_assert_eq!(trace_keys(&full, key, &b), trace_keys(&red, key, &b),
                        "backward from {} until {:?} depth {:?}", key, bound, depth);
                    let mut f = TraceQuery::forward();
                    f.since = bound;
                    f.depth = depth;
                    prop_assert_eq!(f.direction, Direction::Forward);
                    prop_assert_eq!(trace_keys(&full, key, &f), trace_keys(&red, key, &f),
                        "forward from {} since {:?} depth {:?}", key, bound, depth);
                }
            }
        }
    }

    /// Delivering the stream in any order whose lateness is within the horizon yields the
    /// identical (canonical) graph as in-order delivery, reduced or not.
    #[test]
    fn any_order_within_horizon_same_graph(
        ops in proptest::collection::vec((0u8..3, op()), 1..60),
        delays in proptest::collection::vec(0i64..=20, 60),
        reduce in any::<bool>(),
    ) {
        let evs = events(&ops);
        let horizon = 20;
        let mut shuffled: Vec<(i64, usize, Event)> = evs
            .iter()
            .enumerate()
            .map(|(i, e)| (e.time.0 + delays[i % delays.len()], i, e.clone()))
            .collect();
        shuffled.sort_by_key(|x| (x.0, x.1));
        let shuffled: Vec<Event> = shuffled.into_iter().map(|x| x.2).collect();
        let a = build(&evs, reduce, horizon);
        let b = build(&shuffled, reduce, horizon);
        prop_assert_eq!(a.canonical(), b.canonical());
    }
}
