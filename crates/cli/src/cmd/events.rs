//! `causeway events`: search stored events; `--json` prints them in the agent's JSON form,
//! one per line, newest first.

use anyhow::Context;
use causeway_model::timefmt::Timestamp;
use causeway_model::Kind;
use causeway_store::{EventQuery, SqliteOptions, SqliteStore, Store};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Directory of the store.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Only this kind, e.g. `process.exec`.
    #[arg(long)]
    pub kind: Option<String>,
    /// Case-insensitive text in argv, exe or a path.
    #[arg(long)]
    pub q: Option<String>,
    /// From this time: RFC 3339, or a duration ago such as `90s`, `15m`, `2h`, `7d`.
    #[arg(long)]
    pub since: Option<String>,
    /// Up to this time (same forms as --since).
    #[arg(long)]
    pub until: Option<String>,
    /// Host name or id.
    #[arg(long)]
    pub host: Option<String>,
    /// Process id (`p-...`).
    #[arg(long)]
    pub process: Option<String>,
    /// At most this many events.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON lines in the agent's form.
    #[arg(long)]
    pub json: bool,
}

/// Parse `--since`/`--until`: RFC 3339 or `<n><s|m|h|d>` before now.
pub(crate) fn parse_time(s: &str) -> anyhow::Result<i64> {
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t.0);
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: i64 = num
        .parse()
        .with_context(|| format!("time {s:?}: expected RFC 3339 or a duration like 15m"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => anyhow::bail!("time {s:?}: unit must be s, m, h or d"),
    };
    Ok(Timestamp::now().0 - n.saturating_mul(secs).saturating_mul(1_000_000_000))
}

pub(crate) fn open_existing(dir: &std::path::Path) -> anyhow::Result<SqliteStore> {
    anyhow::ensure!(
        dir.join("causeway.db").is_file(),
        "no store in {} (run `causeway ingest --data-dir {}` first)",
        dir.display(),
        dir.display()
    );
    SqliteStore::open(dir, &SqliteOptions::default())
        .with_context(|| format!("opening store in {}", dir.display()))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let kind = match &args.kind {
        Some(k) => Some(Kind::parse(k).with_context(|| {
            let all: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown kind {k:?}; one of {}", all.join(", "))
        })?),
        None => None,
    };
    let q = EventQuery {
        kind,
        q: args.q.clone(),
        since: args.since.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
        host: args.host.clone(),
        process: args.process.clone(),
        limit: args.limit.max(1),
    };
    let store = open_existing(&args.data_dir)?;
    let evs = store.events(&q).context("querying events")?;
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for e in &evs {
        if args.json {
            writeln!(out, "{}", e.to_json())?;
        } else {
            let ev = &e.event;
            let what = ev
                .file
                .as_ref()
                .map(|f| match &f.new_path {
                    Some(n) => format!("{} -> {n}", f.path),
                    None => f.path.clone(),
                })
                .or_else(|| {
                    ev.network.as_ref().map(|n| {
                        format!(
                            "{} {}:{} -> {}:{}",
                            n.protocol, n.local.ip, n.local.port, n.remote.ip, n.remote.port
                        )
                    })
                })
                .unwrap_or_else(|| ev.process.argv.join(" "));
            let repeat = if e.count > 1 {
                format!(" (x{} until {})", e.count, e.last_time.to_rfc3339())
            } else {
                String::new()
            };
            writeln!(
                out,
                "{} {:<20} {:<10} {:>7} {} {}{}",
                ev.time.to_rfc3339(),
                ev.kind.as_str(),
                super::trace::safe(&ev.host.name),
                ev.process.pid,
                super::trace::safe(&ev.process.exe),
                super::trace::safe(&what),
                repeat
            )?;
        }
    }
    out.flush()?;
    if !args.json {
        eprintln!("{} event(s)", evs.len());
    }
    Ok(ExitCode::SUCCESS)
}
