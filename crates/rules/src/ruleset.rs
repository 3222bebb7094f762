//! Loading: files -> checked, compiled, kind-indexed [`Ruleset`].
//!
//! Lists and macros are shared by all files loaded together (a tactic file uses the
//! shells list of `common.yaml`); a file with any error contributes nothing, and every
//! error names file:line:col.

use crate::compile::{self, MacroMeta, Names, Needs};
use crate::diag::{Diagnostic, FileError, LoadError};
use crate::prefilter::{Builder, Coverage, Prefilter};
use crate::schema::{self, FileDef, RuleDef, Severity};
use crate::{values, yaml};
use causeway_model::Kind;
use cel::common::value::Val;
use cel::{Env, Program};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A rule ready to run.
#[derive(Debug)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: String,
    pub severity: Severity,
    pub techniques: Vec<String>,
    pub tactic: String,
    pub tags: Vec<String>,
    pub kinds: Vec<Kind>,
    /// Where it was defined, `file:line`.
    pub origin: String,
    pub(crate) program: Program,
    pub(crate) exceptions: Vec<(String, Program)>,
    pub(crate) needs: Needs,
}

/// A suppression ready to run.
#[derive(Debug)]
pub struct Suppression {
    pub id: String,
    pub rules: Vec<String>,
    pub reason: String,
    pub(crate) program: Program,
    pub(crate) needs: Needs,
}

impl Suppression {
    pub fn applies_to(&self, rule_id: &str) -> bool {
        self.rules.iter().any(|r| match r.strip_suffix('*') {
            Some(prefix) => rule_id.starts_with(prefix),
            None => r == rule_id,
        })
    }
}

/// Compiled rules, indexed by event kind.
pub struct Ruleset {
    pub(crate) env: Arc<Env>,
    pub(crate) rules: Vec<Rule>,
    pub(crate) by_kind: HashMap<Kind, Vec<usize>>,
    pub(crate) needs_by_kind: HashMap<Kind, Needs>,
    pub(crate) suppressions: Vec<Suppression>,
    pub(crate) lists: HashMap<String, Box<dyn Val>>,
    /// Macro programs, run at most once per event when a condition names them.
    pub(crate) macros: Vec<Program>,
    pub(crate) macro_index: HashMap<String, usize>,
    /// Disabled rules, by id: loaded and checked but never run.
    pub disabled: Vec<String>,
    /// Guards and literal index run before CEL.
    pub(crate) prefilter: Prefilter,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// Rule files found under the given paths: files as given, directories searched (not
/// recursively) for `*.yaml`/`*.yml`, in name order.
pub fn rule_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|e| io_err(p, &e))?;
            let mut found: Vec<PathBuf> = rd
                .filter_map(|d| d.ok().map(|d| d.path()))
                .filter(|f| matches!(f.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn io_err(p: &Path, e: &std::io::Error) -> LoadError {
    LoadError {
        errors: vec![FileError {
            file: p.to_path_buf(),
            line: 1,
            col: 1,
            message: format!("cannot read: {e}"),
        }],
    }
}

/// The result of loading: what loaded, and every error (files with errors loaded nothing).
#[derive(Debug)]
pub struct Loaded {
    pub ruleset: Ruleset,
    pub errors: Vec<FileError>,
}

impl Ruleset {
    /// Load files and directories; fail if any file has an error.
    pub fn load(paths: &[PathBuf]) -> Result<Ruleset, LoadError> {
        let l = Self::load_lenient(paths)?;
        if l.errors.is_empty() {
            Ok(l.ruleset)
        } else {
            Err(LoadError { errors: l.errors })
        }
    }

    /// Load what is valid, file by file, and report the rest.
    pub fn load_lenient(paths: &[PathBuf]) -> Result<Loaded, LoadError> {
        let mut sources = Vec::new();
        for f in rule_files(paths)? {
            let text = std::fs::read_to_string(&f).map_err(|e| io_err(&f, &e))?;
            sources.push((f, text));
        }
        let refs: Vec<(&Path, &str)> = sources
            .iter()
            .map(|(p, t)| (p.as_path(), t.as_str()))
            .collect();
        Ok(Self::from_sources(&refs))
    }

    /// Load from in-memory sources `(name, text)`.
    pub fn from_sources(sources: &[(&Path, &str)]) -> Loaded {
        let env = match compile::env() {
            Ok(e) => e,
            Err(e) => {
                return Loaded {
                    ruleset: Ruleset::empty(Arc::new(Env::stdlib())),
                    errors: vec![FileError {
                        file: PathBuf::new(),
                        line: 0,
                        col: 0,
                        message: format!("CEL environment: {e}"),
                    }],
                }
            }
        };
        let mut errors = Vec::new();
        // Pass 1: parse every file.
        let mut files: Vec<(PathBuf, FileDef)> = Vec::new();
        for (path, text) in sources {
            let parsed = yaml::parse(text)
                .map_err(|d| vec![d])
                .and_then(|n| schema::parse_file(&n));
            match parsed {
                Ok(def) => files.push((path.to_path_buf(), def)),
                Err(ds) => errors.extend(ds.into_iter().map(|d| FileError::new(*path, d))),
            }
        }
        // Pass 2: names. Lists first (they reference nothing), then macros in file order:
        // a macro may use lists and the macros defined before it, which also rules out cycles.
        let mut list_names: HashSet<String> = HashSet::new();
        let mut lists: HashMap<String, Box<dyn Val>> = HashMap::new();
        let mut list_sets: HashMap<String, Arc<HashSet<String>>> = HashMap::new();
        let mut macros: HashMap<String, MacroMeta> = HashMap::new();
        let mut macro_programs: HashMap<String, Program> = HashMap::new();
        let mut bad_files: HashSet<usize> = HashSet::new();
        let mut file_errors: Vec<Vec<Diagnostic>> = vec![Vec::new(); files.len()];
        let mut defined: HashMap<String, String> = HashMap::new();
        for (fi, (path, def)) in files.iter().enumerate() {
            for l in &def.lists {
                if let Some(prev) = defined.get(&l.name) {
                    file_errors[fi].push(Diagnostic {
                        pos: l.pos,
                        message: format!("`{}` is already defined at {prev}", l.name),
                    });
                    continue;
                }
                if compile::VARIABLES.contains(&l.name.as_str()) {
                    file_errors[fi].push(Diagnostic {
                        pos: l.pos,
                        message: format!("`{}` is a built-in variable", l.name),
                    });
                    continue;
                }
                defined.insert(l.name.clone(), format!("{}:{}", path.display(), l.pos.line));
                list_names.insert(l.name.clone());
                if let Ok(v) = Box::<dyn Val>::try_from(values::string_set(&l.items)) {
                    lists.insert(l.name.clone(), v);
                    list_sets.insert(l.name.clone(), Arc::new(l.items.iter().cloned().collect()));
                }
            }
        }
        for (fi, (path, def)) in files.iter().enumerate() {
            for m in &def.macros {
                if let Some(prev) = defined.get(&m.name) {
                    file_errors[fi].push(Diagnostic {
                        pos: m.pos,
                        message: format!("`{}` is already defined at {prev}", m.name),
                    });
                    continue;
                }
                if compile::VARIABLES.contains(&m.name.as_str()) {
                    file_errors[fi].push(Diagnostic {
                        pos: m.pos,
                        message: format!("`{}` is a built-in variable", m.name),
                    });
                    continue;
                }
                let names = Names {
                    lists: &list_names,
                    macros: &macros,
                };
                let what = format!("macro `{}`", m.name);
                match compile::expand(&env, &m.cond, &names, &what)
                    .and_then(|t| compile::compile_expanded(&env, &t, &m.cond))
                {
                    Ok(p) => {
                        defined
                            .insert(m.name.clone(), format!("{}:{}", path.display(), m.pos.line));
                        let meta = MacroMeta {
                            needs: compile::needs(&p, &macros),
                            kinds: compile::infer_kinds(&p, &macros),
                        };
                        macros.insert(m.name.clone(), meta);
                        macro_programs.insert(m.name.clone(), p);
                    }
                    Err(d) => file_errors[fi].push(d),
                }
            }
        }
        // Pass 3: rules and suppressions.
        let names = Names {
            lists: &list_names,
            macros: &macros,
        };
        let mut rules = Vec::new();
        let mut suppressions = Vec::new();
        let mut disabled = Vec::new();
        let mut ids: HashMap<String, String> = HashMap::new();
        for (fi, (path, def)) in files.iter().enumerate() {
            let mut file_rules = Vec::new();
            let mut file_disabled = Vec::new();
            for r in &def.rules {
                let origin = format!("{}:{}", path.display(), r.pos.line);
                if let Some(prev) = ids.get(&r.id) {
                    file_errors[fi].push(Diagnostic {
                        pos: r.pos,
                        message: format!("duplicate rule id `{}` (also at {prev})", r.id),
                    });
                    continue;
                }
                ids.insert(r.id.clone(), origin.clone());
                match compile_rule(&env, r, &names, origin) {
                    Ok(rule) if r.enabled => file_rules.push(rule),
                    Ok(rule) => file_disabled.push(rule.id),
                    Err(d) => file_errors[fi].push(d),
                }
            }
            let mut file_sups = Vec::new();
            for s in &def.suppressions {
                let what = format!("suppression `{}`", s.id);
                match compile::expand(&env, &s.cond, &names, &what)
                    .and_then(|t| compile::compile_expanded(&env, &t, &s.cond))
                {
                    Ok(p) => file_sups.push(Suppression {
                        id: s.id.clone(),
                        rules: s.rules.clone(),
                        reason: s.reason.clone(),
                        needs: compile::needs(&p, &macros),
                        program: p,
                    }),
                    Err(d) => file_errors[fi].push(d),
                }
            }
            if file_errors[fi].is_empty() {
                rules.extend(file_rules);
                suppressions.extend(file_sups);
                disabled.extend(file_disabled);
            } else {
                bad_files.insert(fi);
            }
        }
        // A bad file's lists and macros stay visible to the others so that one broken
        // file yields its own errors, not a cascade of "unknown name" in every file.
        for (fi, (path, _)) in files.iter().enumerate() {
            let mut ds = std::mem::take(&mut file_errors[fi]);
            ds.sort_by_key(|d| d.pos);
            errors.extend(ds.into_iter().map(|d| FileError::new(path.as_path(), d)));
        }
        let mut rs = Ruleset::empty(env);
        rs.lists = lists;
        for (name, p) in macro_programs {
            rs.macro_index.insert(name, rs.macros.len());
            rs.macros.push(p);
        }
        rs.suppressions = suppressions;
        rs.disabled = disabled;
        for r in rules {
            rs.add(r);
        }
        // Suppressions run in the context built for the rules: make sure it has what they read.
        let sup_needs = rs
            .suppressions
            .iter()
            .fold(Needs::default(), |a, s| a.union(s.needs));
        for n in rs.needs_by_kind.values_mut() {
            *n = n.union(sup_needs);
        }
        rs.prefilter = build_prefilter(&rs, &list_sets);
        Loaded {
            ruleset: rs,
            errors,
        }
    }

    fn empty(env: Arc<Env>) -> Ruleset {
        Ruleset {
            env,
            rules: Vec::new(),
            by_kind: HashMap::new(),
            needs_by_kind: HashMap::new(),
            suppressions: Vec::new(),
            lists: HashMap::new(),
            macros: Vec::new(),
            macro_index: HashMap::new(),
            disabled: Vec::new(),
            prefilter: Prefilter::default(),
        }
    }

    fn add(&mut self, r: Rule) {
        let idx = self.rules.len();
        for k in &r.kinds {
            self.by_kind.entry(*k).or_default().push(idx);
            let n = self.needs_by_kind.entry(*k).or_default();
            *n = n.union(r.needs);
        }
        self.rules.push(r);
    }

    /// Enabled rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn suppressions(&self) -> &[Suppression] {
        &self.suppressions
    }

    /// What the prefilter covers (rules with a guard, rules indexed by a literal key).
    pub fn prefilter_coverage(&self) -> Coverage {
        self.prefilter.coverage()
    }

    /// Rules that run on events of this kind.
    pub fn rules_for(&self, kind: Kind) -> impl Iterator<Item = &Rule> {
        self.by_kind
            .get(&kind)
            .into_iter()
            .flatten()
            .filter_map(|i| self.rules.get(*i))
    }
}

/// Guards for every rule, then the per-kind literal index.
fn build_prefilter(rs: &Ruleset, lists: &HashMap<String, Arc<HashSet<String>>>) -> Prefilter {
    let mut b = Builder::new(&rs.macros, &rs.macro_index, lists);
    let guards = rs.rules.iter().map(|r| b.condition(&r.program)).collect();
    let mut pf = b.finish(guards);
    let kinds: Vec<Vec<Kind>> = rs.rules.iter().map(|r| r.kinds.clone()).collect();
    pf.index(&kinds);
    pf
}

fn compile_rule(
    env: &Env,
    r: &RuleDef,
    names: &Names<'_>,
    origin: String,
) -> Result<Rule, Diagnostic> {
    let what = format!("rule `{}`", r.id);
    let text = compile::expand(env, &r.cond, names, &what)?;
    let program = compile::compile_expanded(env, &text, &r.cond)?;
    let mut needs = compile::needs(&program, names.macros);
    let kinds: BTreeSet<Kind> = match (&r.kinds, compile::infer_kinds(&program, names.macros)) {
        (Some(k), _) if k.is_empty() => {
            return Err(Diagnostic {
                pos: r.pos,
                message: format!("rule `{}`: `kinds` is empty", r.id),
            })
        }
        (Some(k), _) => k.iter().copied().collect(),
        (None, Some(k)) if k.is_empty() => {
            return Err(Diagnostic {
                pos: r.cond.pos,
                message: format!("rule `{}` can match no event kind", r.id),
            })
        }
        (None, Some(k)) => k,
        (None, None) => Kind::ALL.into_iter().collect(),
    };
    let mut exceptions = Vec::new();
    for e in &r.exceptions {
        let what = format!("exception `{}` of rule `{}`", e.name, r.id);
        let (text, at) = match (&e.cond, &e.field) {
            (Some(c), _) => (compile::expand(env, c, names, &what)?, c),
            (None, Some(f)) => {
                let field = compile::expand(env, f, names, &what)?;
                let vals: Vec<String> = e.values.iter().map(|v| cel_string(v)).collect();
                (format!("({field}) in [{}]", vals.join(", ")), f)
            }
            (None, None) => continue,
        };
        let p = compile::compile_expanded(env, &text, at)?;
        needs = needs.union(compile::needs(&p, names.macros));
        exceptions.push((e.name.clone(), p));
    }
    Ok(Rule {
        id: r.id.clone(),
        title: r.title.clone(),
        description: r.description.clone(),
        severity: r.severity,
        techniques: r.techniques.clone(),
        tactic: r.tactic.clone(),
        tags: r.tags.clone(),
        kinds: kinds.into_iter().collect(),
        origin,
        program,
        exceptions,
        needs,
    })
}

/// A CEL string literal for arbitrary text (JSON escapes are valid CEL escapes).
fn cel_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}
