//! How the SQLite store encodes an event's parts: the kind-specific detail (every optional
//! object of the model's `Event`, borrowed for writing and owned for reading), the lower-cased
//! search text of a detail and of a process, and the hash that interns process snapshots.

use causeway_model::{
    Bpf, Cred, Enforcement, Event, Exec, Exit, File, Memfd, Module, Mount, Network, Process, Target,
};
use serde::Deserialize;
use std::hash::{Hash, Hasher};

/// The kind-specific part of an event, borrowed for writing.
#[derive(serde::Serialize)]
pub(crate) struct DetailRef<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exec: Option<&'a Exec>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exit: Option<&'a Exit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) network: Option<&'a Network>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<&'a File>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cred: Option<&'a Cred>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<&'a Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mount: Option<&'a Mount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) module: Option<&'a Module>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bpf: Option<&'a Bpf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) memfd: Option<&'a Memfd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) enforcement: Option<&'a Enforcement>,
}

/// The kind-specific part of an event, owned for reading.
#[derive(Deserialize, Default, Clone)]
pub(crate) struct Detail {
    pub(crate) exec: Option<Exec>,
    pub(crate) exit: Option<Exit>,
    pub(crate) network: Option<Network>,
    pub(crate) file: Option<File>,
    pub(crate) cred: Option<Cred>,
    pub(crate) target: Option<Target>,
    pub(crate) mount: Option<Mount>,
    pub(crate) module: Option<Module>,
    pub(crate) bpf: Option<Bpf>,
    pub(crate) memfd: Option<Memfd>,
    pub(crate) enforcement: Option<Enforcement>,
}

pub(crate) fn detail_ref(e: &Event) -> DetailRef<'_> {
    DetailRef {
        exec: e.exec.as_ref(),
        exit: e.exit.as_ref(),
        network: e.network.as_ref(),
        file: e.file.as_ref(),
        cred: e.cred.as_ref(),
        target: e.target.as_ref(),
        mount: e.mount.as_ref(),
        module: e.module.as_ref(),
        bpf: e.bpf.as_ref(),
        memfd: e.memfd.as_ref(),
        enforcement: e.enforcement.as_ref(),
    }
}

/// Lower-cased searchable paths of a detail.
pub(crate) fn detail_text(e: &Event) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if let Some(f) = &e.file {
        parts.push(&f.path);
        if let Some(n) = &f.new_path {
            parts.push(n);
        }
    }
    if let Some(x) = &e.exec {
        parts.push(&x.filename);
    }
    if let Some(m) = &e.module {
        if let Some(p) = &m.path {
            parts.push(p);
        }
    }
    if let Some(m) = &e.mount {
        parts.push(&m.source);
        parts.push(&m.target);
    }
    if let Some(m) = &e.memfd {
        parts.push(&m.name);
    }
    parts.join("\n").to_lowercase()
}

pub(crate) fn proc_text(p: &Process) -> String {
    format!("{}\n{}", p.exe, p.argv.join(" ")).to_lowercase()
}

/// Hash every field of a process snapshot (the model type does not derive `Hash`).
pub(crate) fn hash_process(p: &Process) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    (
        &p.id,
        p.pid,
        p.ppid,
        &p.parent_id,
        &p.exe,
        &p.argv,
        p.argv_truncated,
    )
        .hash(&mut h);
    (
        &p.cwd, &p.comm, p.uid, p.euid, p.gid, p.egid, p.auid, p.session,
    )
        .hash(&mut h);
    (&p.tty, p.start_time, &p.container, &p.service).hash(&mut h);
    h.finish()
}
