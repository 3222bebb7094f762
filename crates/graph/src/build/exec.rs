//! Exec events: a new image node, its lineage, the image file, and dropper chains (whoever
//! wrote the executed file, including a script run through its interpreter).

use super::*;

impl Graph {
    pub(super) fn exec(&mut self, ev: &Event, host: NodeId, t: i64) -> Verdict {
        let p = &ev.process;
        let key = Self::proc_key(p, host);
        let prev = self.procs.get(&key).and_then(|e| {
            let i = e.timeline.partition_point(|&(s, _)| s <= t);
            i.checked_sub(1).map(|i| e.timeline[i].1)
        });
        let img = self.new_image(p, key.clone(), host, t);
        match prev {
            Some(prev) => {
                self.edge(prev, img, EdgeKind::Executed, t);
                if let Some(s) = self.image(prev).and_then(|i| i.session) {
                    if self.image(img).is_some_and(|i| i.session.is_none()) {
                        self.join_session(img, s);
                    }
                }
            }
            None => {
                self.link_first(img, &key, &p.parent_id, t);
            }
        }
        let path = if p.exe.is_empty() {
            ev.exec.as_ref().map(|x| x.filename.as_str()).unwrap_or("")
        } else {
            p.exe.as_str()
        };
        if path.is_empty() {
            return Verdict::default();
        }
        let f = self.file_node(host, p.container.as_ref(), path);
        let v = self.edge(f, img, EdgeKind::ExecutedFile, t);
        self.link_writers(f, img, t);
        // A script runs as its interpreter (`exe` is /usr/bin/dash), but the file that was
        // executed is the script: link it too when some process wrote it, so a dropped script
        // is a dropper chain like a dropped binary. Only known files, to add no node per exec.
        if let Some(script) = ev.exec.as_ref().map(|x| resolve(&p.cwd, &x.filename)) {
            if script != path {
                let container = p
                    .container
                    .as_ref()
                    .map(|c| self.strings.intern(&c.id))
                    .unwrap_or(NONE);
                let known = self
                    .strings
                    .get(&script)
                    .and_then(|s| self.files.get(&(host, container, s)).copied());
                if let Some(sf) = known {
                    self.edge(sf, img, EdgeKind::ExecutedFile, t);
                    self.link_writers(sf, img, t);
                }
            }
        }
        Verdict {
            run: v.run,
            merged: false,
        }
    }

    /// Dropper chains: whoever wrote (or renamed into place) file `f` before `t` caused `img`.
    fn link_writers(&mut self, f: NodeId, img: NodeId, t: i64) {
        let writers: Vec<NodeId> = self.nodes[f as usize]
            .ins
            .iter()
            .filter_map(|&r| self.runs.get(r as usize))
            .filter(|r| matches!(r.kind, EdgeKind::Wrote | EdgeKind::Renamed) && r.first <= t)
            .map(|r| r.src)
            .filter(|&w| w != img)
            .collect();
        let mut seen = rustc_hash::FxHashSet::default();
        for w in writers {
            if seen.insert(w) {
                self.edge(w, img, EdgeKind::ExecutedFileWrittenBy, t);
            }
        }
    }
}

/// An exec's filename made absolute against the process's cwd (lexically; `..` is kept).
fn resolve(cwd: &str, filename: &str) -> String {
    if filename.starts_with('/') || cwd.is_empty() {
        filename.to_string()
    } else {
        format!(
            "{}/{}",
            cwd.trim_end_matches('/'),
            filename.trim_start_matches("./")
        )
    }
}
