//! The prefilter is exact: with the shipped ruleset, the flags with it are identical to the
//! flags of running every rule of the kind through CEL, over generated events (names and
//! paths drawn from the rules' own literals and regexes, plus random and hostile strings)
//! and over every recorded fixture of the repository.

use causeway_model::timefmt::Timestamp;
use causeway_model::*;
use causeway_rules::testcase::read_events;
use causeway_rules::{Lineage, ProcessIndex, Ruleset};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shipped() -> Ruleset {
    Ruleset::load(&[root().join("rules")]).expect("shipped rules load")
}

/// Literals of the shipped rule files: quoted strings, list items, and strings generated
/// from the rules' regexes, so generated events hit the conditions' edges.
struct Pools {
    names: Vec<String>,
    paths: Vec<String>,
    words: Vec<String>,
}

fn cel_unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            if let Some(n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn pools() -> Pools {
    let mut names = Vec::new();
    let mut paths = Vec::new();
    let mut words = Vec::new();
    let mut regexes = Vec::new();
    let quoted = regex::Regex::new(r#""((?:[^"\\]|\\.)*)""#).expect("test setup");
    let matches = regex::Regex::new(r#"matches\("((?:[^"\\]|\\.)*)"\)"#).expect("test setup");
    let token = regex::Regex::new(r"[A-Za-z0-9_.+/-]+").expect("test setup");
    let dir = root().join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("test setup")
        .map(|d| d.expect("test setup").path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("test setup");
        for c in matches.captures_iter(&text) {
            regexes.push(cel_unescape(&c[1]));
        }
        for c in quoted.captures_iter(&text) {
            let s = cel_unescape(&c[1]);
            if s.starts_with('/') {
                paths.push(s);
            } else if s.len() < 40 {
                names.push(s.clone());
                words.push(s);
            }
        }
        // List items (flow sequences in `lists:`) are plain tokens.
        if let (Some(a), Some(b)) = (text.find("lists:"), text.find("macros:")) {
            for t in token.find_iter(&text[a..b]) {
                let t = t.as_str();
                if t.starts_with('/') {
                    paths.push(t.to_string());
                } else {
                    names.push(t.to_string());
                }
            }
        }
    }
    // Strings matching each regex (anchors and case flags stripped when the generator
    // cannot handle them).
    let mut runner = TestRunner::deterministic();
    for r in &regexes {
        let cands = [
            r.clone(),
            r.replace("(?i)", "")
                .replace(['^', '$'], "")
                .replace("\\b", ""),
        ];
        for pat in cands {
            let Ok(strat) = proptest::string::string_regex(&pat) else {
                continue;
            };
            for _ in 0..6 {
                let v = strat.new_tree(&mut runner).expect("test setup").current();
                if v.len() > 200 {
                    continue;
                }
                if v.starts_with('/') {
                    paths.push(v);
                } else {
                    words.push(v.clone());
                    if !v.contains(' ') && v.len() < 40 {
                        names.push(v);
                    }
                }
            }
            break;
        }
    }
    names.sort();
    names.dedup();
    paths.sort();
    paths.dedup();
    words.sort();
    words.dedup();
    Pools {
        names,
        paths,
        words,
    }
}

/// Strings a workload could put anywhere: escapes, regex metacharacters, NULs.
fn odd() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\\\\x00\\\\u{zz}\\\\".to_string()),
        Just("(.*)+[".to_string()),
        Just("/dev/tcp/\u{0}/../../etc/shadow".to_string()),
        Just("\u{202e}ĥöst\u{fffd}".to_string()),
        "[\\PC]{0,40}",
    ]
}

/// [`odd`] strings and huge ones.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\\\\x00\\\\u{zz}\\\\".to_string()),
        Just("(.*)+[".to_string()),
        Just("^$|\\\\b(?i)".to_string()),
        Just("/dev/tcp/\u{0}/../../etc/shadow".to_string()),
        Just("\u{202e}ĥöst\u{fffd}".to_string()),
        Just("/".repeat(5000)),
        Just("a".repeat(100_000)),
        "[\\PC]{0,40}",
        ".{0,20}",
    ]
}

struct Gen {
    names: Vec<String>,
    paths: Vec<String>,
    words: Vec<String>,
}

fn pick(v: &[String]) -> impl Strategy<Value = String> {
    proptest::sample::select(v.to_vec())
}

impl Gen {
    fn name(&self) -> BoxedStrategy<String> {
        prop_oneof![
            6 => pick(&self.names),
            1 => "[a-z0-9._-]{1,12}",
            1 => odd(),
        ]
        .boxed()
    }

    fn path(&self) -> BoxedStrategy<String> {
        let dirs = vec![
            "/tmp/".to_string(),
            "/dev/shm/".to_string(),
            "/var/tmp/".to_string(),
            "/usr/bin/".to_string(),
            "/etc/".to_string(),
            "/home/alice/".to_string(),
            "/home/alice/.ssh/".to_string(),
            "/proc/1/".to_string(),
            "/proc/4242/".to_string(),
            "/var/log/".to_string(),
            "/root/".to_string(),
            "".to_string(),
        ];
        prop_oneof![
            5 => pick(&self.paths),
            3 => (pick(&dirs), self.name()).prop_map(|(d, n)| format!("{d}{n}")),
            2 => (pick(&self.paths), self.name()).prop_map(|(d, n)| format!("{d}{n}")),
            1 => odd(),
        ]
        .boxed()
    }

    fn arg(&self) -> BoxedStrategy<String> {
        let flags: Vec<String> = [
            "-c",
            "-e",
            "-i",
            "-r",
            "-R",
            "-l",
            "-t",
            "-d",
            "-D",
            "-F",
            "-U",
            "-z",
            "-a",
            "-nlvp",
            "--server",
            "--exec",
            "-rf",
            "--date=1999",
            "/",
            "-9",
            "stop",
            "0",
            "--print",
            "-perm",
            "-4000",
            "passwd",
            "-",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        prop_oneof![
            3 => pick(&flags),
            2 => pick(&self.words),
            2 => self.path(),
            2 => self.name(),
            1 => odd(),
        ]
        .boxed()
    }

    fn process(&self, pid: u32, parent: Option<&Process>) -> BoxedStrategy<Process> {
        let parent_id = parent.map(|p| p.id.clone()).unwrap_or_default();
        let ppid = parent.map_or(0, |p| p.pid);
        let exe_dirs: Vec<String> = [
            "/usr/bin/",
            "/usr/sbin/",
            "/bin/",
            "/tmp/",
            "/tmp/.x/",
            "/dev/shm/",
            "/memfd:",
            "/home/alice/",
            "/opt/app/",
            "/var/tmp/",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        (
            (pick(&exe_dirs), self.name()),
            proptest::collection::vec(self.arg(), 0..6),
            proptest::option::of(Just("pts/0".to_string())),
            prop_oneof![Just(0u32), Just(1000u32)],
            proptest::option::of(prop_oneof![Just(0u32), Just(1000u32)]),
            proptest::option::of(Just(Container {
                id: "c0ffee".into(),
                runtime: "docker".into(),
                pod_uid: None,
                cgroup: None,
            })),
            proptest::option::of(Just("x.service".to_string())),
            any::<bool>(),
        )
            .prop_map(
                move |((d, n), mut argv, tty, euid, auid, container, service, argv0)| {
                    let exe = format!("{d}{n}");
                    if argv0 {
                        argv.insert(0, n.clone());
                    }
                    Process {
                        id: format!("p-h-{pid}-1"),
                        pid,
                        ppid,
                        parent_id: parent_id.clone(),
                        exe,
                        argv,
                        uid: euid,
                        euid,
                        auid,
                        tty,
                        container,
                        service,
                        comm: n,
                        ..Default::default()
                    }
                },
            )
            .boxed()
    }

    /// One event of any kind; its objects are usually those of its kind, sometimes absent
    /// or of another kind (so conditions reading null fields error as they would).
    fn event(&self, process: Process) -> BoxedStrategy<Event> {
        let file = (
            self.path(),
            proptest::option::of(self.path()),
            any::<bool>(),
            proptest::option::of(prop_oneof![Just(0u32), Just(512u32), Just(577u32)]),
            proptest::option::of(prop_oneof![
                Just(0o644u32),
                Just(0o755),
                Just(0o4755),
                Just(0o2775)
            ]),
        )
            .prop_map(|(path, new_path, write, flags, mode)| File {
                path,
                new_path,
                write,
                flags,
                mode,
                ..Default::default()
            });
        let exec = (self.path(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
            |(filename, memfd, deleted, setid)| Exec {
                filename,
                memfd,
                deleted,
                setid,
                snapshot: false,
            },
        );
        let ips: Vec<String> = ["169.254.169.254", "10.0.0.1", "93.184.216.34", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let network = (
            prop_oneof![Just("tcp".to_string()), Just("udp".to_string())],
            pick(&ips),
            prop_oneof![Just(53u16), Just(443), Just(3333), Just(4444), any::<u16>()],
        )
            .prop_map(|(protocol, ip, port)| Network {
                protocol,
                family: "ipv4".into(),
                local: Endpoint {
                    ip: "10.0.0.5".into(),
                    port: 40000,
                },
                remote: Endpoint { ip, port },
                in_progress: false,
            });
        let creds = || {
            (
                prop_oneof![Just(0u32), Just(1000)],
                prop_oneof![Just(0u32), Just(1000)],
                prop_oneof![Just(0u64), Just(1 << 21), Just(u64::MAX)],
            )
                .prop_map(|(uid, euid, cap)| Creds {
                    uid,
                    euid,
                    fsuid: euid,
                    cap_effective: cap,
                    ..Default::default()
                })
        };
        let cred = (creds(), creds()).prop_map(|(old, new)| Cred {
            syscall: "setuid".into(),
            old,
            new,
        });
        let reqs: Vec<String> = ["PTRACE_ATTACH", "PTRACE_POKETEXT", "PTRACE_PEEKDATA"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pid = process.pid;
        let target =
            (pick(&reqs), prop_oneof![Just(pid), Just(1u32)]).prop_map(move |(request, pid)| {
                Target {
                    pid,
                    id: String::new(),
                    request,
                }
            });
        let mount = (self.path(), self.path(), pick(&self.names), -1i64..=0).prop_map(
            |(source, target, fstype, result)| Mount {
                source,
                target,
                fstype,
                flags: 0,
                result,
            },
        );
        let module =
            (proptest::option::of(self.path()), -1i64..=0).prop_map(|(path, result)| Module {
                syscall: "finit_module".into(),
                path,
                result,
            });
        let bpf = (self.name(), -1i64..=0).prop_map(|(prog_name, result)| Bpf {
            prog_type: 1,
            prog_name,
            result,
        });
        let memfd = (self.name(), -1i64..=0).prop_map(|(name, result)| Memfd {
            name,
            flags: 0,
            result,
        });
        let p = Arc::new(process);
        (
            // Most rules are for execs and file opens: weight them.
            prop_oneof![
                4 => Just(Kind::ProcessExec),
                2 => Just(Kind::FileOpen),
                1 => Just(Kind::FileRename),
                3 => proptest::sample::select(Kind::ALL.to_vec()),
            ],
            any::<u8>(),
            (
                file,
                exec,
                network,
                cred,
                target,
                (mount, module, bpf, memfd),
            ),
        )
            .prop_map(
                move |(kind, coin, (file, exec, net, cred, target, (mnt, m, b, mf)))| {
                    let mut e = Event::new(
                        Timestamp(1_795_714_204_000_000_000),
                        kind,
                        Host {
                            name: "h".into(),
                            id: "h1".into(),
                        },
                        p.clone(),
                    );
                    // Mostly the kind's own object; 1 in 16 without it, 1 in 16 with another.
                    let own = coin % 16 != 0;
                    let stray = coin % 16 == 1;
                    let name = kind.as_str();
                    let want = |prefix: &str| (name.starts_with(prefix) && own) || stray;
                    if want("file.") {
                        e.file = Some(file);
                    }
                    if (kind == Kind::ProcessExec && own) || stray {
                        e.exec = Some(exec);
                    }
                    if want("net.") {
                        e.network = Some(net);
                    }
                    if want("cred.") {
                        e.cred = Some(cred);
                    }
                    if want("process.ptrace") {
                        e.target = Some(target);
                    }
                    if want("fs.mount") {
                        e.mount = Some(mnt);
                    }
                    if want("kernel.module") {
                        e.module = Some(m);
                    }
                    if want("kernel.bpf") {
                        e.bpf = Some(b);
                    }
                    if want("process.memfd") {
                        e.memfd = Some(mf);
                    }
                    e
                },
            )
            .boxed()
    }

    /// A grandparent, a parent and an event of their child: ancestry is what many
    /// conditions read, and what guards must not get wrong.
    fn case(&self) -> BoxedStrategy<(Process, Process, Event)> {
        let g = self.clone_pools();
        self.process(10, None)
            .prop_flat_map(move |gp| {
                let g2 = g.clone_pools();
                let gp2 = gp.clone();
                g.process(11, Some(&gp)).prop_flat_map(move |parent| {
                    let g3 = g2.clone_pools();
                    let (gp3, parent2) = (gp2.clone(), parent.clone());
                    g2.process(12, Some(&parent)).prop_flat_map(move |child| {
                        let (gp4, parent3) = (gp3.clone(), parent2.clone());
                        g3.event(child)
                            .prop_map(move |e| (gp4.clone(), parent3.clone(), e))
                    })
                })
            })
            .boxed()
    }

    fn clone_pools(&self) -> Gen {
        Gen {
            names: self.names.clone(),
            paths: self.paths.clone(),
            words: self.words.clone(),
        }
    }
}

fn exec_of(p: &Process) -> Event {
    let mut e = Event::new(
        Timestamp(1_795_714_200_000_000_000),
        Kind::ProcessExec,
        Host {
            name: "h".into(),
            id: "h1".into(),
        },
        p.clone(),
    );
    e.exec = Some(Exec {
        filename: p.exe.clone(),
        ..Default::default()
    });
    e
}

fn same_flags(rules: &Ruleset, e: &Event, lineage: &dyn Lineage) -> Result<usize, String> {
    let with = rules.evaluate(e, lineage);
    let without = rules.evaluate_unfiltered(e, lineage);
    if with != without {
        return Err(format!(
            "prefilter changed the flags of {}:\n with:    {:?}\n without: {:?}\n event: {}",
            e.kind,
            with.iter().map(|f| &f.rule_id).collect::<Vec<_>>(),
            without.iter().map(|f| &f.rule_id).collect::<Vec<_>>(),
            e.to_json()
        ));
    }
    Ok(with.len())
}

/// The shipped rules plus the edge-case conditions of tests/fixtures/prefilter.
fn with_edge_rules() -> Ruleset {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("rules"))
        .expect("rules dir")
        .map(|d| d.expect("entry").path())
        .collect();
    files.sort();
    files.push(root().join("crates/rules/tests/fixtures/prefilter/edge-rules.yaml"));
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let t = std::fs::read_to_string(&f).expect("read rules");
            (f, t)
        })
        .collect();
    let refs: Vec<(&Path, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    let loaded = Ruleset::from_sources(&refs);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.ruleset
}

#[test]
fn prefilter_is_exact_on_generated_events() {
    let rules = with_edge_rules();
    assert!(rules.rules().iter().any(|r| r.id == "EDGE-015"));
    let p = pools();
    assert!(p.names.len() > 300 && p.paths.len() > 50, "pools too small");
    let g = Gen {
        names: p.names,
        paths: p.paths,
        words: p.words,
    };
    let cases: u32 = std::env::var("PREFILTER_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let flags = std::cell::Cell::new(0usize);
    let skipped = std::cell::Cell::new(0usize);
    runner
        .run(&g.case(), |(gp, parent, e)| {
            let mut lineage = ProcessIndex::new();
            lineage.observe(&exec_of(&gp));
            lineage.observe(&exec_of(&parent));
            let n = same_flags(&rules, &e, &lineage).map_err(TestCaseError::fail)?;
            flags.set(flags.get() + n);
            let all = rules.rules_for(e.kind).count();
            skipped.set(skipped.get() + all - rules.prefilter_passes(&e, &lineage).len());
            Ok(())
        })
        .expect("test setup");
    // The generator must reach both sides: rules that fire, and rules the guards skip.
    assert!(
        flags.get() > 50,
        "only {} flags over the cases",
        flags.get()
    );
    assert!(
        skipped.get() > 1000,
        "guards skipped {} rules",
        skipped.get()
    );
}

fn jsonl_fixtures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for d in rd.flatten() {
        let p = d.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() && !matches!(name, "target" | "node_modules" | ".git") {
            jsonl_fixtures(&p, out);
        } else if name.ends_with(".jsonl") {
            out.push(p);
        }
    }
}

#[test]
fn prefilter_is_exact_on_recorded_fixtures() {
    let rules = shipped();
    let mut files = Vec::new();
    jsonl_fixtures(&root().join("crates"), &mut files);
    // The recordings of the real agent (tests/fixtures/README.md).
    jsonl_fixtures(&root().join("tests"), &mut files);
    files.sort();
    assert!(
        files.iter().any(|f| f.ends_with("revshell.jsonl")),
        "{files:?}"
    );
    let mut flags = 0;
    let mut events = 0;
    for f in &files {
        let mut lineage = ProcessIndex::new();
        for e in read_events(f).expect("test setup") {
            lineage.observe(&e);
            flags += same_flags(&rules, &e, &lineage).unwrap_or_else(|m| panic!("{f:?}: {m}"));
            events += 1;
        }
    }
    assert!(events > 200 && flags > 20, "{events} events, {flags} flags");
}

#[test]
fn hostile_strings_do_not_panic_and_stay_exact() {
    let rules = shipped();
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let strat = (
        proptest::sample::select(Kind::ALL.to_vec()),
        hostile(),
        proptest::collection::vec(hostile(), 0..4),
        hostile(),
    );
    runner
        .run(&strat, |(kind, exe, argv, path)| {
            let p = Process {
                id: "p-h-1-1".into(),
                pid: 1,
                exe: exe.clone(),
                comm: exe,
                argv,
                ..Default::default()
            };
            let mut e = Event::new(Timestamp(0), kind, Host::default(), p);
            e.file = Some(File {
                new_path: Some(path.clone()),
                path: path.clone(),
                write: true,
                ..Default::default()
            });
            e.exec = Some(Exec {
                filename: path.clone(),
                ..Default::default()
            });
            e.memfd = Some(Memfd {
                name: path,
                ..Default::default()
            });
            let lineage = ProcessIndex::new();
            same_flags(&rules, &e, &lineage).map_err(TestCaseError::fail)?;
            Ok(())
        })
        .expect("test setup");
}

#[test]
fn most_rules_have_a_guard() {
    let c = shipped().prefilter_coverage();
    assert_eq!(c.rules, shipped().rules().len());
    assert!(c.guarded * 10 >= c.rules * 9, "{c:?}");
    assert!(c.keyed * 3 >= c.rules, "{c:?}");
}
