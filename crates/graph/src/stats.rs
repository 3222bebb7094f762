//! Counters and the approximate memory footprint of a graph.

use crate::build::{Graph, GraphStats};
use crate::types::*;

impl Graph {
    /// Counters and approximate memory.
    pub fn stats(&self) -> GraphStats {
        let mut s = GraphStats {
            events: self.events,
            late_events: self.late_events,
            nodes: self.nodes.len(),
            runs: self.runs.len(),
            ..Default::default()
        };
        let mut heap = self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.runs.capacity() * std::mem::size_of::<Run>()
            + self.strings.heap_bytes();
        for n in &self.nodes {
            heap += (n.ins.capacity() + n.outs.capacity()) * 4;
            match &n.data {
                NodeData::Process(im) => {
                    s.processes += 1;
                    let p = &im.process;
                    heap += std::mem::size_of::<Image>()
                        + p.id.len()
                        + p.parent_id.len()
                        + p.exe.len()
                        + p.cwd.len()
                        + p.argv.iter().map(|a| a.len() + 24).sum::<usize>();
                }
                NodeData::File { .. } => s.files += 1,
                NodeData::Flow { .. } => s.flows += 1,
                NodeData::Session { .. } => s.sessions += 1,
                _ => {}
            }
        }
        // Hash tables: roughly (key + value + control byte) per slot.
        heap += self.latest_run.capacity() * 17
            + self.files.capacity() * 17
            + self.procs.capacity() * 24
            + self
                .procs
                .values()
                .map(|e| e.timeline.capacity() * 16)
                .sum::<usize>()
            + self.flows.capacity() * 68
            + self
                .flows
                .values()
                .map(|f| (f.connects.capacity() + f.accepts.capacity()) * 16)
                .sum::<usize>();
        s.heap_bytes = heap;
        s.occurrences = self.runs.iter().map(|r| u64::from(r.count)).sum();
        s
    }
}
