//! `causeway up`: one node — the eBPF agent, the graph and store, detection, and the HTTP API
//! with the web UI, on the embedded store. Also `causeway server`: the same backend and API
//! over an existing data directory, without the agent.

use causeway_agent::enforce::ExecPolicy;
use causeway_agent::{AgentConfig, Ready, Stats};
use causeway_node::{Node, NodeConfig};
use causeway_server::ServerConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where a node keeps its store unless told otherwise.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/causeway";

#[derive(clap::Args)]
pub struct Args {
    /// Store directory (SQLite database, generated API token).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// HTTP listen address. Loopback needs no token; any other address requires one.
    #[arg(long, default_value = "127.0.0.1:7400")]
    listen: SocketAddr,
    /// Rule files or directories (default: the shipped ruleset).
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// API bearer token (default: generated into the data directory when needed).
    #[arg(long, env = "CAUSEWAY_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Require the token on loopback too.
    #[arg(long)]
    require_token: bool,
    /// Workload policy files to put in force, besides those stored in the data directory by
    /// `causeway policy apply` (see docs/policy.md); any error in any of them loads none.
    #[arg(long = "policy", value_name = "FILE")]
    policies: Vec<PathBuf>,
    /// Extra sensitive paths for the agent (reads reported).
    #[arg(long = "sensitive", value_name = "PATH")]
    sensitive: Vec<String>,
    #[command(flatten)]
    exports: ExportArgs,
}

/// Where incidents and flags are exported (each sink has its own bounded queue and retries;
/// a sink that is down never slows detection, and what it loses is counted in health).
#[derive(clap::Args)]
pub struct ExportArgs {
    /// POST each incident, when it opens and when it grows, to this URL, signed as Standard
    /// Webhooks do (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
    #[arg(long, value_name = "URL", requires = "webhook_secret_file")]
    webhook: Option<String>,
    /// The webhook signing secret (`whsec_<base64>`, or raw bytes).
    #[arg(long, value_name = "FILE")]
    webhook_secret_file: Option<PathBuf>,
    /// RFC 5424 syslog of incidents and flags: `udp://HOST:PORT` or `tcp://HOST:PORT`.
    #[arg(long, value_name = "URL")]
    syslog: Option<String>,
    /// OTLP logs over HTTP/protobuf, e.g. `http://127.0.0.1:4318`.
    #[arg(long, value_name = "URL")]
    otlp: Option<String>,
    /// Incidents and flags as JSON lines to this file, rotated by size.
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
    /// Rotate the JSON-lines file at this size (MiB).
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    jsonl_max_mib: u64,
    /// Rotated JSON-lines files kept.
    #[arg(long, value_name = "N", default_value_t = 5)]
    jsonl_keep: usize,
}

impl ExportArgs {
    fn config(&self) -> causeway_export::ExportConfig {
        use causeway_export::*;
        ExportConfig {
            webhook: match (&self.webhook, &self.webhook_secret_file) {
                (Some(u), Some(f)) => Some(WebhookConfig::new(u.clone(), f.clone())),
                _ => None,
            },
            syslog: self.syslog.clone().map(SyslogConfig::new),
            otlp: self.otlp.clone().map(OtlpConfig::new),
            jsonl: self.jsonl.clone().map(|p| {
                let mut c = JsonlConfig::new(p);
                c.max_bytes = self.jsonl_max_mib.max(1) << 20;
                c.keep = self.jsonl_keep;
                c
            }),
        }
    }
}

fn server_config(a: &Args) -> ServerConfig {
    let mut cfg = ServerConfig::new(a.listen);
    cfg.token = a.token.clone();
    cfg.data_dir = Some(a.data_dir.clone());
    cfg.require_token_on_loopback = a.require_token;
    cfg
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Resolves when `stop` is raised (by SIGINT/SIGTERM through signal-hook).
async fn until(stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The kernel's view of policy files: what selects the workload, what it may execute.
fn exec_policies(files: &[PathBuf]) -> anyhow::Result<Vec<(causeway_policy::Policy, ExecPolicy)>> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let p = causeway_policy::load(f).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mode = match p.mode {
            causeway_policy::Mode::Audit => causeway_agent::Mode::Audit,
            causeway_policy::Mode::Enforce => causeway_agent::Mode::Enforce,
        };
        let mut ep = ExecPolicy {
            id: i as u32 + 1,
            mode,
            root_executables: Vec::new(),
            cgroups: Vec::new(),
            allowed: p.allowed_executables(),
        };
        match p.selector() {
            causeway_policy::Selector::Exe(e) => ep.root_executables.push(e.clone()),
            causeway_policy::Selector::Service(name) => {
                let unit = if name.ends_with(".service") {
                    name.clone()
                } else {
                    format!("{name}.service")
                };
                ep.cgroups.push(cgroup_id(|n| n == unit).ok_or_else(|| {
                    anyhow::anyhow!("{}: no cgroup for service {unit}", f.display())
                })?);
            }
            causeway_policy::Selector::Container(id) => {
                ep.cgroups
                    .push(cgroup_id(|n| n.contains(id.as_str())).ok_or_else(|| {
                        anyhow::anyhow!("{}: no running container {id}", f.display())
                    })?);
            }
        }
        out.push((p, ep));
    }
    Ok(out)
}

/// The cgroup v2 id (directory inode) of the first cgroup whose name matches.
fn cgroup_id(matches: impl Fn(&str) -> bool) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let cgroups = causeway_agent::cgroups::Cgroups::new();
    let mut stack = vec![(cgroups.root()?.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        for e in std::fs::read_dir(&dir).ok()?.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if matches(&e.file_name().to_string_lossy()) {
                return e.metadata().ok().map(|m| m.ino());
            }
            if depth < 8 {
                stack.push((e.path(), depth + 1));
            }
        }
    }
    None
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let stop = super::agent::stop_flag()?;
    // Policies stored with `causeway policy apply`, then those named on the command line.
    let mut files = super::policy::stored_policies(&args.data_dir)?;
    files.extend(args.policies.iter().cloned());
    let policies = exec_policies(&files)?;
    let node = Arc::new(Node::open(&NodeConfig {
        data_dir: args.data_dir.clone(),
        rules: args.rules.clone(),
        policies: policies
            .iter()
            .map(|(doc, p)| (p.id, doc.clone()))
            .collect(),
        exports: args.exports.config(),
        ..Default::default()
    })?);
    let stats = Arc::new(Stats::default());

    // The agent runs on its own thread (it owns the probes) and hands events to the node.
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let agent = {
        let (node, stats, stop) = (Arc::clone(&node), Arc::clone(&stats), Arc::clone(&stop));
        let mut cfg = AgentConfig::default();
        cfg.sensitive.extend(args.sensitive.iter().cloned());
        std::thread::Builder::new()
            .name("causeway-agent".into())
            .spawn(move || {
                // The node counts what its lanes refuse, by lane and kind; reporting it to
                // the agent too would count the same loss twice.
                let mut sink = |e| {
                    node.submit(e);
                    true
                };
                let tx = ready_tx.clone();
                let stop2 = Arc::clone(&stop);
                let mut ready = move |r: Ready| {
                    // Fail closed: a policy asked for and not in force must stop `up`.
                    for (doc, p) in &policies {
                        let name = &doc.name;
                        let res = match &r.policy {
                            Some(maps) => causeway_agent::enforce::apply(maps, p)
                                .map_err(|e| e.to_string()),
                            None => Err("the kernel's enforcement maps are unavailable".into()),
                        };
                        match res {
                            Ok(a) => tracing::info!(
                                "policy {name}: {:?} mode, {} allowed files, unresolved {:?}, by {}",
                                p.mode,
                                a.allowed_files,
                                a.unresolved,
                                r.enforcement.name()
                            ),
                            Err(e) => {
                                let _ = tx.send(Err(format!("policy {name}: {e}")));
                                stop2.store(true, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                    tracing::info!("agent running; enforcement by {}", r.enforcement.name());
                    let _ = tx.send(Ok(()));
                };
                if let Err(e) = causeway_agent::run(&cfg, &stop, &stats, &mut sink, &mut ready) {
                    let _ = ready_tx.send(Err(e.to_string()));
                }
            })?
    };
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => anyhow::bail!("the agent could not start: {e}"),
        Err(_) => anyhow::bail!("the agent thread ended before it was ready"),
    }
    eprintln!(
        "causeway: agent running, store at {}",
        args.data_dir.display()
    );
    let reloader = reload_on_sighup(Arc::clone(&node), Arc::clone(&stop))?;
    let backend = Arc::new(node.backend(Some(Arc::clone(&stats))));
    let served = runtime()?.block_on(causeway_server::serve_with_shutdown(
        server_config(&args),
        backend,
        until(Arc::clone(&stop)),
    ));
    stop.store(true, Ordering::Relaxed);
    if agent.join().is_err() {
        tracing::error!("the agent thread panicked");
    }
    if reloader.join().is_err() {
        tracing::error!("the reload thread panicked");
    }
    if let Ok(node) = Arc::try_unwrap(node) {
        node.shutdown();
    }
    eprintln!("{}", serde_json::to_string(&stats.snapshot())?);
    served?;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP reloads the rules (all or nothing; on any error the rules in force stay, and the
/// error is logged and shown in health). The signal only raises a flag; the reload runs on
/// this thread, outside the signal handler.
fn reload_on_sighup(
    node: Arc<Node>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
    Ok(std::thread::Builder::new()
        .name("causeway-reload".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if hup.swap(false, Ordering::Relaxed) {
                    match node.reload_rules() {
                        Ok(n) => eprintln!("causeway: reloaded {n} rules"),
                        Err(e) => eprintln!("causeway: reload failed, previous rules kept: {e}"),
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })?)
}

/// `causeway server`: the API over a data directory, no agent.
pub fn run_server(args: Args) -> anyhow::Result<ExitCode> {
    let stop = super::agent::stop_flag()?;
    let node = Arc::new(Node::open(&NodeConfig {
        data_dir: args.data_dir.clone(),
        rules: args.rules.clone(),
        exports: args.exports.config(),
        ..Default::default()
    })?);
    let reloader = reload_on_sighup(Arc::clone(&node), Arc::clone(&stop))?;
    let backend = Arc::new(node.backend(None));
    let served = runtime()?.block_on(causeway_server::serve_with_shutdown(
        server_config(&args),
        backend,
        until(Arc::clone(&stop)),
    ));
    stop.store(true, Ordering::Relaxed);
    if reloader.join().is_err() {
        tracing::error!("the reload thread panicked");
    }
    if let Ok(node) = Arc::try_unwrap(node) {
        node.shutdown();
    }
    served?;
    Ok(ExitCode::SUCCESS)
}
