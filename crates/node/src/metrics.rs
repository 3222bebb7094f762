//! The node's counters in Prometheus text exposition, with the conventional names
//! (`causeway_events_received_total{kind}`, `causeway_events_lost_total{stage,cause,kind}`,
//! `causeway_index_*`, `causeway_rules_*`). Appended to the server's `/metrics`.

use crate::Core;
use causeway_model::Kind;
use std::fmt::Write;

fn family(s: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(s, "# HELP {name} {help}");
    let _ = writeln!(s, "# TYPE {name} {kind}");
}

/// Render the node's own counters.
pub(crate) fn render(core: &Core) -> String {
    let mut s = String::new();
    family(
        &mut s,
        "causeway_events_received_total",
        "counter",
        "Events received by the node's pipeline, per kind.",
    );
    for k in Kind::ALL {
        let n = core.counters.received[usize::from(k.code())];
        let _ = writeln!(
            s,
            "causeway_events_received_total{{kind=\"{}\"}} {n}",
            k.as_str()
        );
    }
    family(
        &mut s,
        "causeway_events_lost_total",
        "counter",
        "Events lost inside the node, per stage, cause and (where known) kind.",
    );
    for l in core.losses.snapshot() {
        let kind = l.kind.map(|k| k.as_str()).unwrap_or("");
        let _ = writeln!(
            s,
            "causeway_events_lost_total{{stage=\"{}\",cause=\"{}\",kind=\"{kind}\"}} {}",
            l.stage.as_str(),
            l.cause.as_str(),
            l.count
        );
    }
    let ix = core.index.stats();
    for (name, kind, help, v) in [
        (
            "causeway_index_processes",
            "gauge",
            "Processes in the process index.",
            ix.processes as u64,
        ),
        (
            "causeway_index_capacity",
            "gauge",
            "Bound of the process index.",
            ix.capacity as u64,
        ),
        (
            "causeway_index_evictions_total",
            "counter",
            "Exited processes evicted from the index to stay in bounds.",
            ix.evicted,
        ),
        (
            "causeway_index_stale_evictions_total",
            "counter",
            "Live processes evicted after long silence while the index was full.",
            ix.evicted_stale,
        ),
        (
            "causeway_index_misses_total",
            "counter",
            "Lookups of processes the index did not know.",
            ix.misses,
        ),
        (
            "causeway_flows_paired_total",
            "counter",
            "Connects and accepts paired into one flow.",
            ix.flows_paired,
        ),
        (
            "causeway_flags_total",
            "counter",
            "Flags raised by the judging stages.",
            core.counters.flags,
        ),
        (
            "causeway_rules_loaded",
            "gauge",
            "Rules in force.",
            core.reload.rules as u64,
        ),
        (
            "causeway_rules_reloads_total",
            "counter",
            "Rule reloads attempted.",
            core.reload.reloads,
        ),
        (
            "causeway_rules_reload_failed",
            "gauge",
            "1 when the latest reload failed (the previous rules stay in force).",
            u64::from(core.reload.error.is_some()),
        ),
    ] {
        family(&mut s, name, kind, help);
        let _ = writeln!(s, "{name} {v}");
    }
    let sinks = core.exports.stats();
    if !sinks.is_empty() {
        family(
            &mut s,
            "causeway_sink_deliveries_total",
            "counter",
            "Outputs (incidents, flags) each export sink delivered, or attempts that failed.",
        );
        for st in &sinks {
            let _ = writeln!(
                s,
                "causeway_sink_deliveries_total{{sink=\"{}\",status=\"delivered\"}} {}",
                st.sink, st.delivered
            );
            let _ = writeln!(
                s,
                "causeway_sink_deliveries_total{{sink=\"{}\",status=\"failed\"}} {}",
                st.sink, st.failed_attempts
            );
        }
        family(
            &mut s,
            "causeway_sink_lost_total",
            "counter",
            "Outputs each export sink lost, per cause.",
        );
        for st in &sinks {
            for (cause, n) in [
                ("queue_full", st.lost.queue_full),
                ("dead_letter", st.lost.dead_letter),
                ("encode_error", st.lost.encode_error),
                ("shutdown", st.lost.shutdown),
            ] {
                let _ = writeln!(
                    s,
                    "causeway_sink_lost_total{{sink=\"{}\",cause=\"{cause}\"}} {n}",
                    st.sink
                );
            }
        }
    }
    s
}
