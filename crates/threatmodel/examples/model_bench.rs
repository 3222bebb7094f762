//! Model build and export over synthetic 10k workloads and 100k flow aggregates (issue 11's
//! benchmark): `cargo run --release -p causeway-threatmodel --example model_bench`.
//! Prints build time (index + builder, as the CLI replays a store), export times and sizes,
//! and peak RSS (VmHWM).

use causeway_index::{IndexConfig, ProcessIndex};
use causeway_model::timefmt::Timestamp;
use causeway_model::*;
use causeway_threatmodel::export::{Annotated, Meta};
use causeway_threatmodel::{export, Annotations, Format, ModelBuilder};
use std::sync::Arc;
use std::time::Instant;

const WORKLOADS: u32 = 10_000;
const FLOWS: u32 = 100_000;

fn ip(i: u32) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

fn peak_rss_kb() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "VmHWM: unavailable".into())
}

fn main() {
    let host = Host {
        name: "bench".into(),
        id: "b".into(),
    };
    let procs: Vec<Arc<Process>> = (0..WORKLOADS)
        .map(|i| {
            Arc::new(Process {
                id: format!("p-00000000000000aa-{}-1", i + 2),
                pid: i + 2,
                ppid: 1,
                exe: format!("/usr/bin/svc{i}"),
                service: Some(format!("svc{i}.service")),
                ..Default::default()
            })
        })
        .collect();
    let mut t = 1_795_000_000_000_000_000i64;
    let mut evs = Vec::with_capacity((2 * WORKLOADS + 2 * FLOWS) as usize);
    let net = |kind, t: i64, p: &Arc<Process>, l: (String, u16), r: (String, u16)| {
        let mut e = Event::new(Timestamp(t), kind, host.clone(), Arc::clone(p));
        e.network = Some(Network {
            protocol: "tcp".into(),
            family: "ipv4".into(),
            local: Endpoint { ip: l.0, port: l.1 },
            remote: Endpoint { ip: r.0, port: r.1 },
            in_progress: false,
        });
        e
    };
    let port = |i: u32| 10_000 + (i % 50_000) as u16;
    for (i, p) in procs.iter().enumerate() {
        t += 1_000;
        evs.push(net(
            Kind::NetListen,
            t,
            p,
            ("0.0.0.0".into(), port(i as u32)),
            ("0.0.0.0".into(), 0),
        ));
    }
    for k in 0..FLOWS {
        let src = k % WORKLOADS;
        let dst = (src + 1 + k / WORKLOADS) % WORKLOADS;
        let eph = 30_000 + (k % 30_000) as u16;
        t += 1_000;
        evs.push(net(
            Kind::NetConnect,
            t,
            &procs[src as usize],
            (ip(src), eph),
            (ip(dst), port(dst)),
        ));
        t += 1_000;
        evs.push(net(
            Kind::NetAccept,
            t,
            &procs[dst as usize],
            (ip(dst), port(dst)),
            (ip(src), eph),
        ));
    }
    println!("events: {}", evs.len());
    let t0 = Instant::now();
    let mut index = ProcessIndex::with_config(IndexConfig::default());
    let mut b = ModelBuilder::default();
    for e in &evs {
        index.observe(e);
        b.observe(&index, e);
    }
    let m = b.finish(&index);
    let build = t0.elapsed();
    println!(
        "build: {:.2} s ({:.0} events/s): {} workloads, {} entry points, {} flows",
        build.as_secs_f64(),
        evs.len() as f64 / build.as_secs_f64(),
        m.workloads.len(),
        m.entry_points.len(),
        m.flows.len()
    );
    println!("after build: {}", peak_rss_kb());
    let notes = Annotations::default();
    let meta = Meta {
        title: "bench".into(),
        date: "2026-12-01".into(),
    };
    let a = Annotated {
        model: &m,
        notes: &notes,
        meta: &meta,
    };
    for f in [
        Format::Threagile,
        Format::Pytm,
        Format::ThreatDragon,
        Format::Otm,
    ] {
        let t0 = Instant::now();
        let s = export(&a, f);
        println!(
            "export {f:?}: {:.2} s, {:.1} MB",
            t0.elapsed().as_secs_f64(),
            s.len() as f64 / 1e6
        );
    }
    println!("{}", peak_rss_kb());
}
