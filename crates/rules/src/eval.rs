//! Evaluation: one event + its lineage -> flags.
//!
//! Cheap by construction: rules are looked up by the event's kind first, then the
//! [`crate::prefilter`] index and guards rule out, in plain Rust, the rules whose condition
//! cannot be true for the event; an event no rule can match costs a few hash lookups and
//! one pattern-set pass per derived value, and no CEL. Otherwise the event is viewed as CEL
//! values once, and ancestry/session/peer are fetched only when a rule of that kind reads
//! them (once, shared by the guards and CEL).

use crate::compile::Needs;
use crate::lazy::{Obj, ProcCtx};
use crate::lineage::Lineage;
use crate::prefilter::{GuardCtx, KindIndex};
use crate::ruleset::{Rule, Ruleset};
use crate::schema::Severity;
use crate::values;
use crate::values::Session;
use causeway_model::timefmt::Timestamp;
use causeway_model::Process;
use causeway_model::{Event, Kind};
use cel::common::types::{CelList, CelNull};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Value};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// How many ancestors rules see (parent first).
pub const MAX_ANCESTORS: usize = 32;

/// A rule match ("flag").
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Flag {
    pub rule_id: String,
    pub title: String,
    pub severity: Severity,
    pub techniques: Vec<String>,
    pub tactic: String,
    pub time: Timestamp,
    pub kind: Kind,
    pub host: String,
    pub process_id: String,
    pub pid: u32,
    pub exe: String,
    /// What the event acted on (a path, an endpoint, a target process, the command line).
    pub object: String,
    pub message: String,
    /// Set when an exception or a suppression matched: the flag is kept, marked, and does
    /// not count toward incidents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed_by: Option<String>,
}

/// Context fetched from the lineage for one event (owned: the lineage hands out copies).
struct Fetched {
    ancestors: Vec<Arc<Process>>,
    peer: Option<Arc<Process>>,
    session: Option<Session>,
}

/// Per-event variables handed to CEL by reference; nothing is copied out of the event.
struct Vars<'a> {
    event: Obj<'a>,
    ancestors: CelList<'a>,
    parent: Box<dyn Val + 'a>,
    session: Box<dyn Val + 'a>,
    container: Box<dyn Val + 'a>,
    peer: Box<dyn Val + 'a>,
    lists: &'a HashMap<String, Box<dyn Val>>,
    rules: &'a Ruleset,
    /// Each macro's value for this event, computed on first use.
    memo: Vec<OnceLock<Option<Box<dyn Val>>>>,
}

impl Vars<'_> {
    fn macro_value(&self, name: &str) -> Option<&dyn Val> {
        let i = *self.rules.macro_index.get(name)?;
        let slot = self.memo.get(i)?;
        let v = slot.get_or_init(|| {
            let program = self.rules.macros.get(i)?;
            let mut ctx = Context::with_env(self.rules.env.clone());
            ctx.set_variable_resolver(self);
            program
                .execute(&ctx)
                .ok()
                .and_then(|v| Box::<dyn Val>::try_from(v).ok())
        });
        v.as_deref()
    }
}

impl VariableResolver for Vars<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        let v: &dyn Val = match name {
            "event" => &self.event,
            "ancestors" => &self.ancestors,
            "parent" => self.parent.as_ref(),
            "session" => self.session.as_ref(),
            "container" => self.container.as_ref(),
            "peer" => self.peer.as_ref(),
            other => match self.lists.get(other) {
                Some(l) => l.as_ref(),
                // A macro that failed (e.g. read a field of null) is an error where it is
                // used, as the inlined expression would have been.
                None => self.macro_value(other)?,
            },
        };
        Some(CowVal::Borrowed(v))
    }
}

/// Counters of evaluation problems, so a rule that errors on some events is visible.
#[derive(Debug, Default)]
pub struct EvalStats {
    pub events: AtomicU64,
    /// Conditions run through CEL.
    pub evaluations: AtomicU64,
    pub errors: AtomicU64,
    /// Rules of the event's kind the prefilter proved could not match (no CEL run, so an
    /// error such a rule would have raised on the event is not counted either).
    pub prefiltered: AtomicU64,
}

/// Process views built once per event.
struct Prepared<'a> {
    me: ProcCtx<'a>,
    anc: Vec<ProcCtx<'a>>,
    peer: Option<ProcCtx<'a>>,
}

impl<'a> Prepared<'a> {
    fn new(e: &'a Event, f: &'a Fetched) -> Self {
        Prepared {
            me: ProcCtx::new(&e.process),
            anc: f.ancestors.iter().map(|p| ProcCtx::new(p)).collect(),
            peer: f.peer.as_deref().map(ProcCtx::new),
        }
    }
}

impl Ruleset {
    fn vars<'a>(&'a self, e: &'a Event, prep: &'a Prepared<'a>, fetched: &'a Fetched) -> Vars<'a> {
        let null = || Box::new(CelNull) as Box<dyn Val>;
        Vars {
            event: Obj::Event(e, &prep.me),
            ancestors: CelList::from(
                prep.anc
                    .iter()
                    .map(|p| Box::new(Obj::Process(p)) as Box<dyn Val>)
                    .collect::<Vec<_>>(),
            ),
            parent: prep
                .anc
                .first()
                .map_or_else(null, |p| Box::new(Obj::Process(p))),
            session: fetched
                .session
                .as_ref()
                .map_or_else(null, |x| Box::new(Obj::Session(x))),
            container: e
                .process
                .container
                .as_ref()
                .map_or_else(null, |c| Box::new(Obj::Container(c))),
            peer: prep
                .peer
                .as_ref()
                .map_or_else(null, |p| Box::new(Obj::Process(p))),
            lists: &self.lists,
            rules: self,
            memo: (0..self.macros.len()).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Cost of each rule over `events` (seconds, summed), each measured with a fresh
    /// per-event context so the macros it uses are charged to it: for finding slow rules.
    pub fn profile(&self, events: &[Event], lineage: &dyn Lineage) -> Vec<(String, f64)> {
        let mut cost: HashMap<&str, f64> = HashMap::new();
        for e in events {
            let Some(idx) = self.by_kind.get(&e.kind) else {
                continue;
            };
            let needs = self.needs_by_kind.get(&e.kind).copied().unwrap_or_default();
            let fetched = self.fetch(e, needs, lineage, None);
            let prep = Prepared::new(e, &fetched);
            for &i in idx {
                let Some(rule) = self.rules.get(i) else {
                    continue;
                };
                let vars = self.vars(e, &prep, &fetched);
                let mut ctx = Context::with_env(self.env.clone());
                ctx.set_variable_resolver(&vars);
                let t = std::time::Instant::now();
                let _ = run(&rule.program, &ctx);
                *cost.entry(&rule.id).or_default() += t.elapsed().as_secs_f64();
            }
        }
        let mut v: Vec<(String, f64)> = cost.into_iter().map(|(k, c)| (k.to_string(), c)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    }

    fn fetch(
        &self,
        e: &Event,
        needs: Needs,
        lineage: &dyn Lineage,
        prefetched: Option<Vec<Arc<Process>>>,
    ) -> Fetched {
        let mut f = Fetched {
            ancestors: Vec::new(),
            peer: None,
            session: None,
        };
        if needs.ancestors {
            f.ancestors = prefetched.unwrap_or_else(|| ancestors_of(e, lineage));
            if needs.session {
                f.session = Some(values::session(&e.process, &f.ancestors));
            }
        }
        if needs.peer {
            f.peer = lineage.peer(e);
        }
        f
    }

    /// Evaluate every rule of the event's kind. Suppressed matches are returned too, marked.
    pub fn evaluate(&self, e: &Event, lineage: &dyn Lineage) -> Vec<Flag> {
        self.evaluate_with_stats(e, lineage, None)
    }

    /// [`Ruleset::evaluate`], counting into `stats`. Only the rules whose prefilter guard
    /// may hold run CEL (see [`crate::prefilter`]); the flags are the same as running all.
    pub fn evaluate_with_stats(
        &self,
        e: &Event,
        lineage: &dyn Lineage,
        stats: Option<&EvalStats>,
    ) -> Vec<Flag> {
        let Some(ki) = self.prefilter.by_kind.get(&e.kind) else {
            return Vec::new();
        };
        let guards = GuardCtx::new(e, &self.prefilter, lineage);
        let mut cand = candidates(ki, &guards);
        cand.retain(|&i| guards.may_match(i));
        let total = self.by_kind.get(&e.kind).map_or(0, Vec::len);
        if let Some(st) = stats {
            st.prefiltered
                .fetch_add((total - cand.len()) as u64, Ordering::Relaxed);
        }
        let ancestors = guards.take_ancestors();
        self.run_rules(e, lineage, stats, &cand, ancestors)
    }

    /// Rules of the event's kind whose prefilter guard may hold, i.e. that run CEL.
    pub fn prefilter_passes(&self, e: &Event, lineage: &dyn Lineage) -> Vec<&Rule> {
        let Some(ki) = self.prefilter.by_kind.get(&e.kind) else {
            return Vec::new();
        };
        let guards = GuardCtx::new(e, &self.prefilter, lineage);
        candidates(ki, &guards)
            .into_iter()
            .filter(|&i| guards.may_match(i))
            .filter_map(|i| self.rules.get(i))
            .collect()
    }

    /// Every rule of the event's kind through CEL, without the prefilter: the reference
    /// the prefilter is tested against, and the "before" of the benchmark.
    pub fn evaluate_unfiltered(&self, e: &Event, lineage: &dyn Lineage) -> Vec<Flag> {
        match self.by_kind.get(&e.kind) {
            Some(idx) => self.run_rules(e, lineage, None, idx, None),
            None => Vec::new(),
        }
    }

    fn run_rules(
        &self,
        e: &Event,
        lineage: &dyn Lineage,
        stats: Option<&EvalStats>,
        idx: &[usize],
        ancestors: Option<Vec<Arc<Process>>>,
    ) -> Vec<Flag> {
        if let Some(st) = stats {
            st.events.fetch_add(1, Ordering::Relaxed);
        }
        if idx.is_empty() {
            return Vec::new();
        }
        let needs = self.needs_by_kind.get(&e.kind).copied().unwrap_or_default();
        let fetched = self.fetch(e, needs, lineage, ancestors);
        let prep = Prepared::new(e, &fetched);
        let vars = self.vars(e, &prep, &fetched);
        let mut ctx = Context::with_env(self.env.clone());
        ctx.set_variable_resolver(&vars);
        let mut out = Vec::new();
        let mut errors = 0;
        for &i in idx {
            let Some(rule) = self.rules.get(i) else {
                continue;
            };
            match run(&rule.program, &ctx) {
                Some(true) => {}
                Some(false) => continue,
                None => {
                    errors += 1;
                    continue;
                }
            }
            let mut flag = make_flag(rule, e);
            for (name, p) in &rule.exceptions {
                if run(p, &ctx) == Some(true) {
                    flag.suppressed_by = Some(format!("exception:{name}"));
                    break;
                }
            }
            if flag.suppressed_by.is_none() {
                for s in self.suppressions.iter().filter(|s| s.applies_to(&rule.id)) {
                    // `needs_by_kind` includes every suppression's needs, so the context
                    // built above has what the suppression reads.
                    let ok = run(&s.program, &ctx);
                    if ok == Some(true) {
                        flag.suppressed_by = Some(format!("suppression:{}", s.id));
                        break;
                    }
                }
            }
            out.push(flag);
        }
        if let Some(st) = stats {
            st.evaluations
                .fetch_add(idx.len() as u64, Ordering::Relaxed);
            st.errors.fetch_add(errors, Ordering::Relaxed);
        }
        out
    }
}

/// Rules of the kind the index cannot rule out for the event, in rule order (flags come
/// out in rule order, as without the prefilter).
fn candidates(ki: &KindIndex, guards: &GuardCtx<'_>) -> Vec<usize> {
    let mut cand: Vec<usize> = Vec::with_capacity(ki.rest.len() + 8);
    for (sub, map) in &ki.keyed {
        if let Some(hit) = guards.subject(*sub).and_then(|v| map.get(v.as_ref())) {
            cand.extend_from_slice(hit);
        }
    }
    for g in &ki.rx {
        guards.rx_candidates(g, &mut cand);
    }
    cand.extend_from_slice(&ki.rest);
    cand.sort_unstable();
    cand.dedup();
    cand
}

/// The ancestors rules see (parent first). The lineage may not know the process yet (its
/// exec is being evaluated): walk from its parent then. Shared by the CEL context and the
/// prefilter, which must see the same ancestors.
pub(crate) fn ancestors_of(e: &Event, lineage: &dyn Lineage) -> Vec<Arc<Process>> {
    let mut out = lineage.ancestors(&e.process.id, MAX_ANCESTORS);
    if out.is_empty() && !e.process.parent_id.is_empty() {
        if let Some(p) = lineage.process(&e.process.parent_id) {
            let pid = p.id.clone();
            out.push(p);
            out.extend(lineage.ancestors(&pid, MAX_ANCESTORS - 1));
        }
    }
    out
}

/// Run a program: `Some(bool)`, or `None` when it errored (e.g. a field of `null`) or did
/// not yield a boolean. A panic inside the interpreter is contained: an attacker-shaped
/// event must not take detection down.
fn run(p: &cel::Program, ctx: &Context<'_, '_>) -> Option<bool> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| p.execute(ctx))) {
        Ok(Ok(Value::Bool(b))) => Some(b),
        _ => None,
    }
}

/// What the event acted on, for messages and deduplication.
pub fn object_of(e: &Event) -> String {
    if let Some(f) = &e.file {
        return match &f.new_path {
            Some(n) => format!("{} -> {n}", f.path),
            None => f.path.clone(),
        };
    }
    if let Some(n) = &e.network {
        return format!("{} {}:{}", n.protocol, n.remote.ip, n.remote.port);
    }
    if let Some(t) = &e.target {
        return if t.id.is_empty() {
            format!("pid {}", t.pid)
        } else {
            t.id.clone()
        };
    }
    if let Some(m) = &e.mount {
        return format!("{} on {}", m.source, m.target);
    }
    if let Some(m) = &e.module {
        return m.path.clone().unwrap_or_else(|| m.syscall.clone());
    }
    if let Some(b) = &e.bpf {
        return b.prog_name.clone();
    }
    if let Some(c) = &e.cred {
        return format!(
            "uid {}->{} euid {}->{}",
            c.old.uid, c.new.uid, c.old.euid, c.new.euid
        );
    }
    if let Some(m) = &e.memfd {
        return m.name.clone();
    }
    // Exec and the rest: the command line, bounded so a huge argv cannot bloat incidents.
    let mut s = e.process.argv.join(" ");
    if s.len() > 512 {
        let mut cut = 512;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn make_flag(rule: &Rule, e: &Event) -> Flag {
    let object = object_of(e);
    let exe = if e.process.exe.is_empty() {
        e.process.comm.clone()
    } else {
        e.process.exe.clone()
    };
    Flag {
        rule_id: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        techniques: rule.techniques.clone(),
        tactic: rule.tactic.clone(),
        time: e.time,
        kind: e.kind,
        // Shown to people: the name (the root process's id already pins the host's boot).
        host: if e.host.name.is_empty() {
            e.host.id.clone()
        } else {
            e.host.name.clone()
        },
        process_id: e.process.id.clone(),
        pid: e.process.pid,
        message: format!(
            "{}: {} (pid {}) {}: {}",
            rule.title, exe, e.process.pid, e.kind, object
        ),
        exe,
        object,
        suppressed_by: None,
    }
}
