//! JSON-lines file sink: one JSON object per output and line (`{"type": "incident",
//! "change": ..., "incident": {...}}`, `{"type": "flag", "flag": {...}}`, `{"type":
//! "event", "event": {...}}`), rotated by size.
//!
//! Rotation: before a line would take the file past `max_bytes`, the file is fsynced and
//! renamed `PATH.1` (older ones shift to `.2` .. `.keep`; the one beyond is deleted) and a
//! new `PATH` is started. A line larger than `max_bytes` gets a file of its own. With
//! `keep = 0` the full file is deleted instead. fsync: see [`FsyncPolicy`]; every batch is
//! written to the kernel before `deliver` returns. Write errors (disk full) are retried;
//! a retried batch may repeat lines that were written before the error.

use crate::config::{ExportError, FsyncPolicy, JsonlConfig};
use crate::output::{output_json, Accepts, Output};
use crate::runner::{DeliveryError, EncodeError, Sink};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct JsonlSink {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    fsync: FsyncPolicy,
    events: bool,
    file: Option<BufWriter<File>>,
    size: u64,
}

fn open(path: &Path) -> std::io::Result<(BufWriter<File>, u64)> {
    let f = OpenOptions::new().create(true).append(true).open(path)?;
    let size = f.metadata()?.len();
    Ok((BufWriter::with_capacity(64 * 1024, f), size))
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> DeliveryError {
    DeliveryError::retryable(format!("jsonl: {what} {}: {e}", path.display())).with_source(e)
}

impl JsonlSink {
    pub fn new(cfg: &JsonlConfig) -> Result<JsonlSink, ExportError> {
        if cfg.max_bytes == 0 {
            return Err(ExportError::Config(
                "jsonl: max_bytes must be above 0".into(),
            ));
        }
        let (file, size) = open(&cfg.path).map_err(|source| ExportError::File {
            path: cfg.path.clone(),
            source,
        })?;
        Ok(JsonlSink {
            path: cfg.path.clone(),
            max_bytes: cfg.max_bytes,
            keep: cfg.keep,
            fsync: cfg.fsync,
            events: cfg.events,
            file: Some(file),
            size,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(format!(".{n}"));
        PathBuf::from(p)
    }

    fn sync(&mut self) -> Result<(), DeliveryError> {
        if let Some(f) = &mut self.file {
            f.flush()
                .map_err(|e| io_err("cannot write", &self.path, e))?;
            f.get_ref()
                .sync_all()
                .map_err(|e| io_err("cannot fsync", &self.path, e))?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), DeliveryError> {
        self.sync()?;
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(&self.path).map_err(|e| io_err("cannot remove", &self.path, e))?;
        } else {
            let oldest = self.rotated(self.keep);
            match std::fs::remove_file(&oldest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("cannot remove", &oldest, e)),
            }
            for n in (1..self.keep).rev() {
                let from = self.rotated(n);
                match std::fs::rename(&from, self.rotated(n + 1)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("cannot rename", &from, e)),
                }
            }
            std::fs::rename(&self.path, self.rotated(1))
                .map_err(|e| io_err("cannot rename", &self.path, e))?;
        }
        let (f, size) = open(&self.path).map_err(|e| io_err("cannot open", &self.path, e))?;
        self.file = Some(f);
        self.size = size;
        Ok(())
    }
}

impl Sink for JsonlSink {
    type Message = Vec<u8>;

    fn name(&self) -> &'static str {
        "jsonl"
    }

    fn accepts(&self) -> Accepts {
        Accepts {
            incidents: true,
            flags: true,
            events: self.events,
        }
    }

    fn encode(&mut self, output: &Output) -> Result<Vec<u8>, EncodeError> {
        let mut line = serde_json::to_vec(&output_json(output)?)?;
        line.push(b'\n');
        Ok(line)
    }

    fn deliver(&mut self, batch: &[Vec<u8>]) -> Result<(), DeliveryError> {
        for line in batch {
            let len = line.len() as u64;
            if self.size > 0 && self.size + len > self.max_bytes {
                self.rotate()?;
            }
            if self.file.is_none() {
                // A failed rotation left no file open: try again from here.
                let (f, size) =
                    open(&self.path).map_err(|e| io_err("cannot open", &self.path, e))?;
                self.file = Some(f);
                self.size = size;
            }
            if let Some(f) = &mut self.file {
                f.write_all(line)
                    .map_err(|e| io_err("cannot write", &self.path, e))?;
                self.size += len;
            }
        }
        match self.fsync {
            FsyncPolicy::EveryBatch => self.sync(),
            FsyncPolicy::OnRotate => match &mut self.file {
                Some(f) => f.flush().map_err(|e| io_err("cannot write", &self.path, e)),
                None => Ok(()),
            },
        }
    }

    fn close(&mut self) -> Result<(), DeliveryError> {
        self.sync()
    }
}
