//! The model derived from the synthetic three-tier topology (tests/common).

mod common;

use causeway_threatmodel::builder::INTERNET;
use causeway_threatmodel::*;
use common::*;
use std::collections::BTreeSet;

fn by_name<'a>(m: &'a ThreatModel, name: &str) -> &'a Workload {
    m.workloads
        .values()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no workload {name:?} in {:?}", m.workloads.keys()))
}

#[test]
fn three_tier_model_has_exactly_the_topology() {
    let m = build(&events(&Topo::default()));
    let names: BTreeSet<&str> = m.workloads.values().map(|w| w.name.as_str()).collect();
    let short = &REDIS_CONTAINER[..12];
    let cname = format!("container {short}");
    assert_eq!(
        names,
        BTreeSet::from(["python3 http.server", "api.service", cname.as_str()]),
        "init is idle and dropped; the worker collapses into the frontend"
    );
    let fe = by_name(&m, "python3 http.server");
    let api = by_name(&m, "api.service");
    let db = by_name(&m, &cname);
    assert_eq!(fe.kind, WorkloadKind::HostExecutable);
    assert_eq!(fe.processes, 2, "parent and worker collapsed");
    assert_eq!(api.kind, WorkloadKind::Service);
    assert_eq!(db.kind, WorkloadKind::Container);
    assert_eq!(db.container.as_deref(), Some(REDIS_CONTAINER));
    assert!(db.datastore && !api.datastore && !fe.datastore);

    // Entry points: exactly three listeners, one exposed, with who reached them.
    assert_eq!(m.entry_points.len(), 3);
    let ep = |w: &Workload, port: u16| {
        m.entry_points
            .values()
            .find(|e| e.workload == w.id && e.port == port)
            .unwrap_or_else(|| panic!("no entry point {port} on {}", w.name))
    };
    let e8080 = ep(fe, 8080);
    assert!(e8080.exposed);
    assert_eq!(e8080.reached.external, 1);
    assert_eq!(
        e8080.reached.external_addresses,
        BTreeSet::from(["203.0.113.7".to_string()])
    );
    assert!(e8080.reached.workloads.is_empty());
    let e9000 = ep(api, 9000);
    assert!(!e9000.exposed);
    assert_eq!(e9000.reached.workloads.get(&fe.id), Some(&2));
    let e6379 = ep(db, 6379);
    assert!(!e6379.exposed);
    assert_eq!(e6379.reached.workloads.get(&api.id), Some(&1));

    // Flows: three, by server port, never the ephemeral ones.
    let flows: BTreeSet<(String, String, u16, u64)> = m
        .flows
        .values()
        .map(|f| {
            (
                f.source.id().to_string(),
                f.target.id().to_string(),
                f.port,
                f.connections,
            )
        })
        .collect();
    assert_eq!(
        flows,
        BTreeSet::from([
            (INTERNET.to_string(), fe.id.clone(), 8080, 1),
            (fe.id.clone(), api.id.clone(), 9000, 2),
            (api.id.clone(), db.id.clone(), 6379, 1),
        ])
    );
    for f in m.flows.values() {
        assert_eq!(f.bytes, None, "no byte counts are recorded");
        assert!(!f.provenance.evidence.is_empty());
        assert_eq!(f.provenance.hosts, BTreeSet::from(["node-a".to_string()]));
    }
    let f6379 = m.flows.values().find(|f| f.port == 6379).unwrap();
    assert_eq!(f6379.protocol, "nosql-access-protocol");
    assert_eq!(m.stats.connects_paired, 3);

    // Boundaries: internet, host (frontend, api), container (datastore) inside the host.
    assert_eq!(m.boundaries.len(), 3);
    let inet = &m.boundaries["internet"];
    assert_eq!(inet.members, BTreeSet::from([INTERNET.to_string()]));
    let host = m
        .boundaries
        .values()
        .find(|b| b.kind == BoundaryKind::Host)
        .unwrap();
    assert_eq!(
        host.members,
        BTreeSet::from([fe.id.clone(), api.id.clone()])
    );
    let cb = m
        .boundaries
        .values()
        .find(|b| b.kind == BoundaryKind::Container)
        .unwrap();
    assert_eq!(cb.parent.as_deref(), Some(host.id.as_str()));
    assert_eq!(cb.members, BTreeSet::from([db.id.clone()]));

    // The credential asset and its reader.
    assert_eq!(m.data_assets.len(), 1);
    let cred = &m.data_assets["cloud-credentials"];
    assert_eq!(
        cred.paths,
        BTreeSet::from(["/root/.aws/credentials".to_string()])
    );
    assert_eq!(cred.readers.keys().collect::<Vec<_>>(), vec![&api.id]);
    assert_eq!(
        cred.provenance.evidence[0].process,
        api.provenance.evidence[0].process
    );
}

#[test]
fn ids_are_stable_across_regeneration() {
    let a = build(&events(&Topo::default()));
    let b = build(&events(&Topo::default()));
    assert_eq!(a, b, "same events, same model");
    // A week later, after a reboot: new process ids, new times, same identities.
    let later = Topo {
        boot: "00000000000000bb",
        t0: Topo::default().t0 + 7 * 86_400 * 1_000_000_000,
        ..Topo::default()
    };
    let c = build(&events(&later));
    let ids = |m: &ThreatModel| {
        let mut v: Vec<String> = m.workloads.keys().cloned().collect();
        v.extend(m.flows.keys().cloned());
        v.extend(m.entry_points.keys().cloned());
        v.extend(m.boundaries.keys().cloned());
        v.extend(m.data_assets.keys().cloned());
        v
    };
    assert_eq!(ids(&a), ids(&c));
    assert!(ids(&a)
        .iter()
        .all(|id| id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')));
    assert_ne!(
        a.flows.values().next().unwrap().provenance.first_seen,
        c.flows.values().next().unwrap().provenance.first_seen
    );
}
