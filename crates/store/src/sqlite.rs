//! The embedded SQLite store (the encoding of event parts is in `codec`). Schema (version 2):
//!
//! - `hosts(id, hid, name)`: each distinct event host.
//! - `procs(id, pid, text, json)`: each distinct process snapshot (the model `Process` as
//!   JSON); `pid` is the model process id, `text` the lower-cased exe and argv for `q`.
//! - `details(id, text, json)`: each distinct kind-specific part of an event (`file`,
//!   `network`, `exec`, ...), `text` the lower-cased paths for `q`.
//! - `events(id, time, kind, host, proc, detail, last, n)`: one row per event, or per run
//!   of identical events folded by the graph (`n` > 1, `last` = last occurrence).
//! - `incidents(id, json, score, first_seen, last_seen)`: documents of the detection engine.
//!
//! All SQL is static text with bound parameters; nothing from an event is ever spliced in.

use crate::codec::{detail_ref, detail_text, hash_process, proc_text, Detail};
use crate::*;
use causeway_model::{Host, Process};
use rusqlite::{params, Connection, OptionalExtension, ToSql};
use rustc_hash::FxHashMap;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Version 2: the `kind` column holds the kind's stable number ([`Kind::code`]); version 1
/// held its position in a list (0-based), which is migrated on open.
const SCHEMA_VERSION: i64 = 2;
/// Folding slots kept for runs; beyond this the map is reset (only costs some folding).
const MAX_FOLD_SLOTS: usize = 4_000_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS hosts(id INTEGER PRIMARY KEY, hid TEXT NOT NULL, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS procs(id INTEGER PRIMARY KEY, pid TEXT NOT NULL, text TEXT NOT NULL, json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS procs_pid ON procs(pid);
CREATE TABLE IF NOT EXISTS details(id INTEGER PRIMARY KEY, text TEXT NOT NULL, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    kind INTEGER NOT NULL,
    host INTEGER NOT NULL,
    proc INTEGER NOT NULL,
    detail INTEGER,
    last INTEGER,
    n INTEGER
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_proc ON events(proc);
CREATE INDEX IF NOT EXISTS events_detail ON events(detail) WHERE detail IS NOT NULL;
CREATE TABLE IF NOT EXISTS incidents(
    id TEXT PRIMARY KEY,
    json TEXT NOT NULL,
    score REAL NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_last ON incidents(last_seen);
";

/// Options of [`SqliteStore::open`].
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    /// `synchronous=FULL`: committed batches also survive power loss (slower).
    pub durable: bool,
}

fn kind_code(k: Kind) -> i64 {
    i64::from(k.code())
}

fn kind_of(code: i64, row: i64) -> Result<Kind, StoreError> {
    u16::try_from(code)
        .ok()
        .and_then(Kind::from_code)
        .ok_or_else(|| corrupt("event kind", row, format!("unknown kind number {code}")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Slot {
    row: i64,
    kind: i64,
    host: i64,
    proc: i64,
    detail: Option<i64>,
}

struct Row {
    slot: Slot,
    time: i64,
    last: i64,
    n: i64,
}

/// SQLite implementation of [`Store`].
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    hosts: FxHashMap<(String, String), i64>,
    procs: FxHashMap<u64, Vec<(i64, Arc<Process>)>>,
    details: FxHashMap<String, i64>,
    next_host: i64,
    next_proc: i64,
    next_detail: i64,
    next_row: i64,
    fold: FxHashMap<u32, Slot>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

fn corrupt(what: &'static str, id: i64, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        id,
        msg: e.to_string(),
    }
}

impl SqliteStore {
    /// Open (creating if needed) the store at `DIR/causeway.db`.
    pub fn open(dir: &Path, opts: &SqliteOptions) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("causeway.db");
        let conn = Connection::open(&path)?;
        // auto_vacuum only takes effect before the first table exists; harmless afterwards.
        conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            if opts.durable { "FULL" } else { "NORMAL" },
        )?;
        conn.pragma_update(None, "cache_size", -65536)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(corrupt("schema version", version, "newer than this build"));
        }
        conn.execute_batch(SCHEMA)?;
        if version == 1 {
            // Version 1 wrote the kind's 0-based position in the list of kinds, which was
            // the stable number minus one for every kind it knew.
            conn.execute_batch("BEGIN; UPDATE events SET kind = kind + 1; COMMIT;")?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let mut s = SqliteStore {
            conn,
            path,
            hosts: FxHashMap::default(),
            procs: FxHashMap::default(),
            details: FxHashMap::default(),
            next_host: 1,
            next_proc: 1,
            next_detail: 1,
            next_row: 1,
            fold: FxHashMap::default(),
        };
        s.load_caches()?;
        Ok(s)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PRAGMA integrity_check` and `foreign key`-like consistency: every event row refers
    /// to an existing host, snapshot and detail. Returns the problems found.
    pub fn check(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let ic: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if ic != "ok" {
            out.push(ic);
        }
        let dangling: i64 = self.conn.query_row(
            "SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM procs p WHERE p.id = e.proc)
               OR NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = e.host)
               OR (e.detail IS NOT NULL AND NOT EXISTS (SELECT 1 FROM details d WHERE d.id = e.detail))",
            [],
            |r| r.get(0),
        )?;
        if dangling > 0 {
            out.push(format!("{dangling} event rows with dangling references"));
        }
        Ok(out)
    }

    fn load_caches(&mut self) -> Result<(), StoreError> {
        self.hosts.clear();
        self.procs.clear();
        self.details.clear();
        self.fold.clear();
        let mut st = self.conn.prepare("SELECT id, hid, name FROM hosts")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)))?;
        for row in rows {
            let (id, hid, name) = row?;
            self.hosts.insert((hid, name), id);
        }
        let mut st = self.conn.prepare("SELECT id, json FROM procs")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, json) = row?;
            let p: Process = serde_json::from_str(&json).map_err(|e| corrupt("process", id, e))?;
            self.procs
                .entry(hash_process(&p))
                .or_default()
                .push((id, Arc::new(p)));
        }
        let mut st = self.conn.prepare("SELECT id, json FROM details")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, json) = row?;
            self.details.insert(json, id);
        }
        let max = |t: &str| -> Result<i64, StoreError> {
            let sql = match t {
                "hosts" => "SELECT coalesce(max(id), 0) FROM hosts",
                "procs" => "SELECT coalesce(max(id), 0) FROM procs",
                "details" => "SELECT coalesce(max(id), 0) FROM details",
                _ => "SELECT coalesce(max(id), 0) FROM events",
            };
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? + 1)
        };
        self.next_host = max("hosts")?;
        self.next_proc = max("procs")?;
        self.next_detail = max("details")?;
        self.next_row = max("events")?;
        Ok(())
    }

    fn append_tx(&mut self, batch: &[(Event, Verdict)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let first_new = self.next_row;
        let mut rows: Vec<Row> = Vec::with_capacity(batch.len());
        {
            let mut ins_host =
                tx.prepare_cached("INSERT INTO hosts(id, hid, name) VALUES (?1, ?2, ?3)")?;
            let mut ins_proc = tx
                .prepare_cached("INSERT INTO procs(id, pid, text, json) VALUES (?1, ?2, ?3, ?4)")?;
            let mut ins_detail =
                tx.prepare_cached("INSERT INTO details(id, text, json) VALUES (?1, ?2, ?3)")?;
            let mut bump = tx.prepare_cached(
                "UPDATE events SET n = coalesce(n, 1) + ?3, last = max(coalesce(last, time), ?1) WHERE id = ?2",
            )?;
            for (ev, verdict) in batch {
                let hk = (ev.host.id.clone(), ev.host.name.clone());
                let host = match self.hosts.get(&hk) {
                    Some(&h) => h,
                    None => {
                        let h = self.next_host;
                        ins_host.execute(params![h, hk.0, hk.1])?;
                        self.next_host += 1;
                        self.hosts.insert(hk, h);
                        h
                    }
                };
                let ph = hash_process(&ev.process);
                let bucket = self.procs.entry(ph).or_default();
                let proc = match bucket
                    .iter()
                    .find(|(_, p)| Arc::ptr_eq(p, &ev.process) || **p == *ev.process)
                {
                    Some((id, _)) => *id,
                    None => {
                        let id = self.next_proc;
                        let json = serde_json::to_string(&ev.process)?;
                        ins_proc.execute(params![
                            id,
                            ev.process.id,
                            proc_text(&ev.process),
                            json
                        ])?;
                        self.next_proc += 1;
                        bucket.push((id, ev.process.clone()));
                        id
                    }
                };
                let dj = serde_json::to_string(&detail_ref(ev))?;
                let detail = if dj == "{}" {
                    None
                } else if let Some(&d) = self.details.get(&dj) {
                    Some(d)
                } else {
                    let id = self.next_detail;
                    ins_detail.execute(params![id, detail_text(ev), dj])?;
                    self.next_detail += 1;
                    self.details.insert(dj, id);
                    Some(id)
                };
                let t = ev.time.0;
                // An event the kernel folded stands for `occ` occurrences up to `last_t`.
                let occ = i64::try_from(ev.occurrences()).unwrap_or(i64::MAX);
                let last_t = ev.repeat.map_or(t, |r| r.last_time.0.max(t));
                let mut slot = Slot {
                    row: 0,
                    kind: kind_code(ev.kind),
                    host,
                    proc,
                    detail,
                };
                if let (true, Some(run)) = (verdict.merged, verdict.run) {
                    if let Some(s) = self
                        .fold
                        .get(&run)
                        .filter(|s| Slot { row: s.row, ..slot } == **s)
                    {
                        if s.row >= first_new {
                            if let Some(r) = rows.get_mut((s.row - first_new) as usize) {
                                r.n = r.n.saturating_add(occ);
                                r.last = r.last.max(last_t);
                            }
                        } else {
                            bump.execute(params![last_t, s.row, occ])?;
                        }
                        continue;
                    }
                }
                slot.row = self.next_row;
                self.next_row += 1;
                if let Some(run) = verdict.run {
                    if self.fold.len() >= MAX_FOLD_SLOTS {
                        self.fold.clear();
                    }
                    self.fold.insert(run, slot);
                }
                rows.push(Row {
                    slot,
                    time: t,
                    last: last_t,
                    n: occ,
                });
            }
            let mut ins = tx.prepare_cached(
                "INSERT INTO events(id, time, kind, host, proc, detail, last, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for r in &rows {
                let (last, n) = if r.n > 1 {
                    (Some(r.last), Some(r.n))
                } else {
                    (None, None)
                };
                ins.execute(params![
                    r.slot.row,
                    r.time,
                    r.slot.kind,
                    r.slot.host,
                    r.slot.proc,
                    r.slot.detail,
                    last,
                    n
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn load_process(&self, id: i64) -> Result<Arc<Process>, StoreError> {
        let json: String = self
            .conn
            .prepare_cached("SELECT json FROM procs WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        serde_json::from_str(&json)
            .map(Arc::new)
            .map_err(|e| corrupt("process", id, e))
    }

    fn load_detail(&self, id: i64) -> Result<Detail, StoreError> {
        let json: String = self
            .conn
            .prepare_cached("SELECT json FROM details WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        serde_json::from_str(&json).map_err(|e| corrupt("detail", id, e))
    }

    fn host_of(&self, id: i64) -> Host {
        self.hosts
            .iter()
            .find(|(_, &v)| v == id)
            .map(|((hid, name), _)| Host {
                name: name.clone(),
                id: hid.clone(),
            })
            .unwrap_or_default()
    }

    fn build_event(
        row: i64,
        time: i64,
        kind: i64,
        host: Host,
        process: Arc<Process>,
        d: Option<Detail>,
    ) -> Result<Event, StoreError> {
        let kind = kind_of(kind, row)?;
        let mut e = Event::new(Timestamp(time), kind, host, process);
        if let Some(d) = d {
            e.exec = d.exec;
            e.exit = d.exit;
            e.network = d.network;
            e.file = d.file;
            e.cred = d.cred;
            e.target = d.target;
            e.mount = d.mount;
            e.module = d.module;
            e.bpf = d.bpf;
            e.memfd = d.memfd;
            e.enforcement = d.enforcement;
        }
        Ok(e)
    }

    fn gc(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch(
            "DELETE FROM procs WHERE id NOT IN (SELECT proc FROM events);
             DELETE FROM details WHERE id NOT IN (SELECT detail FROM events WHERE detail IS NOT NULL);
             PRAGMA incremental_vacuum;",
        )?;
        self.load_caches()
    }

    fn used_bytes(&self) -> Result<u64, StoreError> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let free: i64 = self
            .conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok(((pages - free).max(0) * size) as u64)
    }
}

impl Store for SqliteStore {
    fn append(&mut self, batch: &[(Event, Verdict)]) -> Result<(), StoreError> {
        let r = self.append_tx(batch);
        if r.is_err() {
            // The transaction rolled back: forget ids handed out in memory.
            self.load_caches()?;
        }
        r
    }

    fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let mut sql = String::from(
            "SELECT id, time, kind, host, proc, detail, last, n FROM events WHERE 1=1",
        );
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        if let Some(k) = q.kind {
            sql.push_str(" AND kind = ?");
            args.push(Box::new(kind_code(k)));
        }
        if let Some(s) = q.since {
            sql.push_str(" AND coalesce(last, time) >= ?");
            args.push(Box::new(s));
        }
        if let Some(u) = q.until {
            sql.push_str(" AND time <= ?");
            args.push(Box::new(u));
        }
        if let Some(h) = &q.host {
            sql.push_str(" AND host IN (SELECT id FROM hosts WHERE hid = ? OR name = ?)");
            args.push(Box::new(h.clone()));
            args.push(Box::new(h.clone()));
        }
        if let Some(p) = &q.process {
            sql.push_str(" AND proc IN (SELECT id FROM procs WHERE pid = ?)");
            args.push(Box::new(p.clone()));
        }
        if let Some(text) = q.q.as_ref().filter(|t| !t.is_empty()) {
            let t = text.to_lowercase();
            sql.push_str(
                " AND (proc IN (SELECT id FROM procs WHERE instr(text, ?) > 0)
                   OR detail IN (SELECT id FROM details WHERE instr(text, ?) > 0))",
            );
            args.push(Box::new(t.clone()));
            args.push(Box::new(t));
        }
        sql.push_str(" ORDER BY time DESC, id DESC LIMIT ?");
        args.push(Box::new(if q.limit == 0 { 100 } else { q.limit as i64 }));
        let mut st = self.conn.prepare(&sql)?;
        let refs: Vec<&dyn ToSql> = args.iter().map(|b| b.as_ref()).collect();
        let rows = st.query_map(refs.as_slice(), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<i64>>(7)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, time, kind, host, proc, detail, last, n) = row?;
            let process = self.load_process(proc)?;
            let d = detail.map(|d| self.load_detail(d)).transpose()?;
            out.push(StoredEvent {
                id,
                event: Self::build_event(id, time, kind, self.host_of(host), process, d)?,
                count: n.unwrap_or(1).max(1) as u64,
                last_time: Timestamp(last.unwrap_or(time)),
            });
        }
        Ok(out)
    }

    fn replay(&self, sink: &mut dyn FnMut(Event)) -> Result<u64, StoreError> {
        let procs: FxHashMap<i64, Arc<Process>> = self
            .procs
            .values()
            .flat_map(|b| b.iter().map(|(id, p)| (*id, p.clone())))
            .collect();
        let mut details: FxHashMap<i64, Detail> = FxHashMap::default();
        for (json, &id) in &self.details {
            details.insert(
                id,
                serde_json::from_str(json).map_err(|e| corrupt("detail", id, e))?,
            );
        }
        let hosts: FxHashMap<i64, Host> = self
            .hosts
            .iter()
            .map(|((hid, name), &id)| {
                (
                    id,
                    Host {
                        name: name.clone(),
                        id: hid.clone(),
                    },
                )
            })
            .collect();
        let mut st = self.conn.prepare(
            "SELECT id, time, kind, host, proc, detail, last, n FROM events ORDER BY time, id",
        )?;
        let mut rows = st.query([])?;
        // Last occurrences of folded rows, emitted at their own time.
        let mut later: BinaryHeap<std::cmp::Reverse<(i64, i64)>> = BinaryHeap::new();
        let mut later_ev: FxHashMap<i64, Event> = FxHashMap::default();
        let mut count = 0u64;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let time: i64 = r.get(1)?;
            while let Some(std::cmp::Reverse((t, rid))) = later.peek().copied() {
                if t > time {
                    break;
                }
                later.pop();
                if let Some(e) = later_ev.remove(&rid) {
                    sink(e);
                    count += 1;
                }
            }
            let kind: i64 = r.get(2)?;
            let host = hosts.get(&r.get::<_, i64>(3)?).cloned().unwrap_or_default();
            let pid: i64 = r.get(4)?;
            let process = procs
                .get(&pid)
                .cloned()
                .ok_or_else(|| corrupt("process", pid, "missing"))?;
            let detail = match r.get::<_, Option<i64>>(5)? {
                Some(d) => Some(
                    details
                        .get(&d)
                        .cloned()
                        .ok_or_else(|| corrupt("detail", d, "missing"))?,
                ),
                None => None,
            };
            let last: Option<i64> = r.get(6)?;
            let n: Option<i64> = r.get(7)?;
            let ev = Self::build_event(id, time, kind, host, process, detail)?;
            if let (Some(last), Some(n)) = (last, n) {
                if n > 1 {
                    let mut e2 = ev.clone();
                    e2.time = Timestamp(last);
                    later.push(std::cmp::Reverse((last, id)));
                    later_ev.insert(id, e2);
                }
            }
            sink(ev);
            count += 1;
        }
        while let Some(std::cmp::Reverse((_, rid))) = later.pop() {
            if let Some(e) = later_ev.remove(&rid) {
                sink(e);
                count += 1;
            }
        }
        Ok(count)
    }

    fn put_incident(
        &mut self,
        id: &str,
        json: &serde_json::Value,
        score: f64,
        first_seen: Timestamp,
        last_seen: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO incidents(id, json, score, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET json = excluded.json, score = excluded.score,
               first_seen = excluded.first_seen, last_seen = excluded.last_seen",
            params![id, serde_json::to_string(json)?, score, first_seen.0, last_seen.0],
        )?;
        Ok(())
    }

    fn get_incident(&self, id: &str) -> Result<Option<IncidentDoc>, StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT id, json, score, first_seen, last_seen FROM incidents WHERE id = ?1",
                [id],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                    ))
                },
            )
            .optional()?;
        row.map(incident_doc).transpose()
    }

    fn list_incidents(&self, limit: usize) -> Result<Vec<IncidentDoc>, StoreError> {
        let mut st = self.conn.prepare(
            "SELECT id, json, score, first_seen, last_seen FROM incidents ORDER BY last_seen DESC, id LIMIT ?1",
        )?;
        let rows = st.query_map([limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for r in rows {
            out.push(incident_doc(r?)?);
        }
        Ok(out)
    }

    fn retain(&mut self, policy: &Retention, now: i64) -> Result<RetentionReport, StoreError> {
        let mut rep = RetentionReport::default();
        if let Some(age) = policy.max_age_ns {
            let cutoff = now.saturating_sub(age);
            rep.deleted_by_age = self.conn.execute(
                "DELETE FROM events WHERE coalesce(last, time) < ?1",
                [cutoff],
            )? as u64;
        }
        if let Some(max) = policy.max_bytes {
            loop {
                if self.used_bytes()? <= max {
                    break;
                }
                let rows: i64 = self
                    .conn
                    .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                if rows == 0 {
                    break;
                }
                let chunk = (rows / 10).max(1000);
                rep.deleted_by_size += self.conn.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY time LIMIT ?1)",
                    [chunk],
                )? as u64;
                self.gc()?;
            }
        }
        self.gc()?;
        rep.bytes_after = self.used_bytes()?;
        Ok(rep)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let one = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(StoreStats {
            rows: one("SELECT count(*) FROM events")?,
            events: one("SELECT coalesce(sum(coalesce(n, 1)), 0) FROM events")?,
            process_snapshots: one("SELECT count(*) FROM procs")?,
            details: one("SELECT count(*) FROM details")?,
            incidents: one("SELECT count(*) FROM incidents")?,
            bytes: self.used_bytes()?,
        })
    }
}

fn incident_doc(r: (String, String, f64, i64, i64)) -> Result<IncidentDoc, StoreError> {
    Ok(IncidentDoc {
        json: serde_json::from_str(&r.1).map_err(|e| corrupt("incident", 0, e))?,
        id: r.0,
        score: r.2,
        first_seen: Timestamp(r.3),
        last_seen: Timestamp(r.4),
    })
}
