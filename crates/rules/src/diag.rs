//! Diagnostics: every load or validation problem names file, line and column.

use std::fmt;
use std::path::PathBuf;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A problem at a position of the file being loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub message: String,
}

/// A problem in a named file, printed as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl FileError {
    pub fn new(file: impl Into<PathBuf>, d: Diagnostic) -> Self {
        FileError {
            file: file.into(),
            line: d.pos.line,
            col: d.pos.col,
            message: d.message,
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Loading failed: every error found, in file order.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.errors))]
pub struct LoadError {
    pub errors: Vec<FileError>,
}

fn render(errors: &[FileError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}
