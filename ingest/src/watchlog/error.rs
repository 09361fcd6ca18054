//! Errors reading or writing a watch log.

use std::io;

use super::SUPPORTED_VERSIONS;

/// An error reading or writing a watch log. Messages name the file (and the line,
/// where there is one), e.g. `case1.jsonl:17: invalid JSON: expected value at column 3`.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Reading or writing the file failed.
    #[error("{file}: {source}")]
    Io {
        /// The file (or stream name).
        file: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The first line is not a watch log header.
    #[error("{file}:1: not a watch log header: {reason}")]
    NotAHeader {
        /// The file (or stream name).
        file: String,
        /// What is wrong with the first line.
        reason: String,
    },
    /// The header names a format version this reader does not know.
    #[error(
        "{file}:1: unsupported watch log version {version} (this reader supports version{} {})",
        if SUPPORTED_VERSIONS.len() == 1 { "" } else { "s" },
        supported_list()
    )]
    UnsupportedVersion {
        /// The file (or stream name).
        file: String,
        /// The version found in the header.
        version: u64,
    },
    /// An event line is not valid JSON or not a valid event.
    #[error("{file}:{line}: {reason}")]
    BadLine {
        /// The file (or stream name).
        file: String,
        /// The 1-based line number.
        line: u64,
        /// What is wrong with the line.
        reason: String,
    },
    /// [`LogWriter::write_event`](super::LogWriter::write_event) was given an event
    /// that would not make a valid line (e.g. `ADDED` without an object).
    #[error("{file}: cannot write event: {reason}")]
    InvalidEvent {
        /// The file (or stream name).
        file: String,
        /// What is wrong with the event.
        reason: String,
    },
}

fn supported_list() -> String {
    SUPPORTED_VERSIONS
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl LogError {
    pub(crate) fn io(file: &str, source: io::Error) -> LogError {
        LogError::Io {
            file: file.to_owned(),
            source,
        }
    }
}
