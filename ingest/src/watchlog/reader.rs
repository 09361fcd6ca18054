//! Reading a watch log, plain or zstd-compressed.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::iter::FusedIterator;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bindery_engine::strict_json;
use serde_json::Value;

use super::counting::CountingReader;
use super::event::{event_from_map, kind};
use super::header::{HeaderProblem, parse_header};
use super::{LogError, LogHeader, LogLine, WatchEvent};
use crate::feed::{ObjectKind, classify};

/// The first four bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Buffer size for the file and the decompressed stream.
const BUF_SIZE: usize = 64 * 1024;

/// The longest line a watch log may have, newline excluded: 16 MiB (an API server
/// refuses objects over 1.5 MiB by default). A longer line that ends with a newline is
/// an error naming the file and line; a longer last line without one is a torn last
/// line (a warning). The reader never holds more than this of one line in memory.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Reads a watch log: the header on opening, then the events as an iterator.
///
/// The iterator yields `Ok(LogLine)` per event line. A bad line yields one
/// `Err(LogError::BadLine)` and ends the iteration (nothing after it is applied). An
/// incomplete last line (no trailing newline, as a crash mid-write leaves it) is not
/// an error: it is logged as a warning, ignored, and reported by
/// [`torn_last_line`](LogReader::torn_last_line).
pub struct LogReader {
    name: String,
    input: Box<dyn BufRead + Send>,
    compressed: bool,
    header: LogHeader,
    consumed: Arc<AtomicU64>,
    total_bytes: Option<u64>,
    buf: Vec<u8>,
    next_line: u64,
    done: bool,
    torn: Option<u64>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("name", &self.name)
            .field("compressed", &self.compressed)
            .field("header", &self.header)
            .field("next_line", &self.next_line)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// How reading one raw line ended.
enum RawLine {
    /// A line ending in `\n` (the newline is removed from the buffer).
    Complete,
    /// Bytes at the end of the input without a trailing newline.
    Partial,
    /// A line longer than [`MAX_LINE_BYTES`]: the buffer holds none of it, and the
    /// input is positioned after the first `MAX_LINE_BYTES + 1` bytes of it.
    TooLong,
    /// No more input.
    Eof,
}

impl LogReader {
    /// Opens the log at `path` (zstd-compressed or not, detected by its magic
    /// bytes) and reads and validates its header.
    pub fn open(path: &Path) -> Result<LogReader, LogError> {
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| LogError::io(&name, e))?;
        let total_bytes = file
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        let mut reader = LogReader::from_reader(name, file)?;
        reader.total_bytes = total_bytes;
        Ok(reader)
    }

    /// Reads a log from any byte stream (zstd detected by its magic bytes); `name`
    /// is used in messages. Reads and validates the header.
    pub fn from_reader(name: String, r: impl Read + Send + 'static) -> Result<LogReader, LogError> {
        let (mut counting, consumed) = CountingReader::new(r);
        let head = read_head(&mut counting).map_err(|e| LogError::io(&name, e))?;
        let compressed = head == ZSTD_MAGIC;
        let raw = BufReader::with_capacity(BUF_SIZE, io::Cursor::new(head).chain(counting));
        let input: Box<dyn BufRead + Send> = if compressed {
            let decoder = zstd::stream::read::Decoder::with_buffer(raw)
                .map_err(|e| LogError::io(&name, e))?;
            Box::new(BufReader::with_capacity(BUF_SIZE, decoder))
        } else {
            Box::new(raw)
        };
        let mut reader = LogReader {
            name,
            input,
            compressed,
            header: LogHeader::new(Default::default()),
            consumed,
            total_bytes: None,
            buf: Vec::new(),
            next_line: 1,
            done: false,
            torn: None,
        };
        reader.read_header()?;
        Ok(reader)
    }

    /// The file name (or stream name) used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log's header.
    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// Whether the log is zstd-compressed.
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Bytes of the underlying (possibly compressed) input consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// The size of the underlying file, when opened from a regular file.
    pub fn total_bytes(&self) -> Option<u64> {
        self.total_bytes
    }

    /// The line number of an incomplete last line that was ignored, if any (known
    /// once the iteration has ended).
    pub fn torn_last_line(&self) -> Option<u64> {
        self.torn
    }

    fn read_header(&mut self) -> Result<(), LogError> {
        let raw = self
            .read_raw_line()
            .map_err(|e| LogError::io(&self.name, e))?;
        let not_a_header = |reason: &str| LogError::NotAHeader {
            file: self.name.clone(),
            reason: reason.to_owned(),
        };
        match raw {
            RawLine::Eof => return Err(not_a_header("the log is empty")),
            // Not skipped: `/dev/zero` has no end.
            RawLine::TooLong => {
                return Err(not_a_header(&format!(
                    "the first line is longer than {} MiB",
                    MAX_LINE_BYTES >> 20
                )));
            }
            // A header without a newline is a log without events: accept it if it
            // parses (a torn header fails to parse anyway).
            RawLine::Partial => self.done = true,
            RawLine::Complete => {}
        }
        if is_blank(&self.buf) {
            return Err(not_a_header("the first line is empty"));
        }
        self.header = parse_header(&self.buf).map_err(|problem| match problem {
            HeaderProblem::NotAHeader(reason) => not_a_header(&reason),
            HeaderProblem::Unsupported(version) => LogError::UnsupportedVersion {
                file: self.name.clone(),
                version,
            },
        })?;
        self.next_line = 2;
        Ok(())
    }

    /// Reads the next line into `self.buf`, without its `\n`, holding at most
    /// [`MAX_LINE_BYTES`] (+ 1) bytes of it.
    fn read_raw_line(&mut self) -> io::Result<RawLine> {
        self.buf.clear();
        let limit = MAX_LINE_BYTES as u64 + 1;
        match (&mut self.input)
            .take(limit)
            .read_until(b'\n', &mut self.buf)
        {
            Ok(0) => Ok(RawLine::Eof),
            Ok(_) if self.buf.last() == Some(&b'\n') => {
                self.buf.pop();
                Ok(RawLine::Complete)
            }
            Ok(n) if n as u64 == limit => {
                self.buf.clear();
                self.buf.shrink_to(BUF_SIZE);
                Ok(RawLine::TooLong)
            }
            Ok(_) => Ok(RawLine::Partial),
            Err(e) if self.is_truncated_frame(&e) => {
                // `read_until` stops at a newline, so the buffer holds no newline.
                if self.buf.is_empty() {
                    Ok(RawLine::Eof)
                } else {
                    Ok(RawLine::Partial)
                }
            }
            Err(e) => Err(e),
        }
    }

    /// After [`RawLine::TooLong`]: skips the rest of the line, [`BUF_SIZE`] bytes at a
    /// time (none kept); true when it ends with a newline, false at the end of the input.
    fn skip_rest_of_line(&mut self) -> io::Result<bool> {
        let mut chunk = Vec::with_capacity(BUF_SIZE);
        loop {
            chunk.clear();
            match (&mut self.input)
                .take(BUF_SIZE as u64)
                .read_until(b'\n', &mut chunk)
            {
                Ok(0) => return Ok(false),
                Ok(_) if chunk.last() == Some(&b'\n') => return Ok(true),
                Ok(_) => {}
                Err(e) if self.is_truncated_frame(&e) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }

    /// A zstd frame cut short, as a crash mid-write leaves it: the data decoded so far
    /// is usable; what follows is lost (warned about here).
    fn is_truncated_frame(&self, e: &io::Error) -> bool {
        let truncated = self.compressed && e.kind() == io::ErrorKind::UnexpectedEof;
        if truncated {
            tracing::warn!(
                file = %self.name,
                "{}: the compressed stream ends in the middle of a zstd frame \
                 (truncated file?); reading stops there",
                self.name
            );
        }
        truncated
    }

    /// Warns about an incomplete last line (no trailing newline) and ends the iteration.
    fn torn(&mut self, line: u64, what: &str) {
        self.done = true;
        self.torn = Some(line);
        tracing::warn!(
            file = %self.name,
            line,
            "{}:{}: incomplete last line ({what}), ignored",
            self.name,
            line
        );
    }

    /// For a BindingPolicy event: reads the line again keeping track of duplicate keys,
    /// so that those in its `spec` become problems of the policy (the marks of
    /// [`strict_json`]); those elsewhere in the object are warned about (the last one
    /// is kept, as before). Other events are not re-read: duplicate keys there keep
    /// the last value, as serde_json does.
    fn mark_policy_duplicates(&self, line: u64, event: &mut WatchEvent) {
        if classify(&event.resource) != ObjectKind::Policy || event.object.is_none() {
            return;
        }
        // The same text parsed again: it is valid JSON within serde_json's depth limit.
        let Ok(Value::Object(mut strict)) = strict_json::from_slice(&self.buf, 128) else {
            return;
        };
        let Some(mut object @ Value::Object(_)) = strict.shift_remove("object") else {
            return;
        };
        let spec = object.get_mut("spec").map(Value::take);
        let elsewhere = strict_json::strip_duplicate_keys(&mut object);
        if let (Some(spec), Value::Object(map)) = (spec, &mut object) {
            map.insert("spec".to_string(), spec);
        }
        for place in elsewhere {
            tracing::warn!(
                file = %self.name,
                line,
                "{}:{}: object.{place} (the last one is used)",
                self.name,
                line
            );
        }
        event.object = Some(object);
    }

    /// The counter of bytes read from the file, shared (for a reader on another thread).
    pub(super) fn consumed_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.consumed)
    }

    /// The capacity of the line buffer (for tests of the memory bound).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    fn bad_line(&mut self, line: u64, reason: String) -> LogError {
        self.done = true;
        LogError::BadLine {
            file: self.name.clone(),
            line,
            reason,
        }
    }
}

impl Iterator for LogReader {
    type Item = Result<LogLine, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let line = self.next_line;
        match self.read_raw_line() {
            Err(e) => {
                self.done = true;
                Some(Err(LogError::io(&self.name, e)))
            }
            Ok(RawLine::Eof) => {
                self.done = true;
                None
            }
            Ok(RawLine::Partial) => {
                self.torn(line, "no trailing newline");
                None
            }
            Ok(RawLine::TooLong) => match self.skip_rest_of_line() {
                Err(e) => {
                    self.done = true;
                    Some(Err(LogError::io(&self.name, e)))
                }
                Ok(true) => {
                    let reason = format!(
                        "line longer than {} MiB (the longest a watch log line may be)",
                        MAX_LINE_BYTES >> 20
                    );
                    Some(Err(self.bad_line(line, reason)))
                }
                Ok(false) => {
                    let what = format!(
                        "no trailing newline, longer than {} MiB",
                        MAX_LINE_BYTES >> 20
                    );
                    self.torn(line, &what);
                    None
                }
            },
            Ok(RawLine::Complete) => {
                self.next_line += 1;
                match parse_event_line(&self.buf) {
                    Ok(mut event) => {
                        self.mark_policy_duplicates(line, &mut event);
                        Some(Ok(LogLine { line, event }))
                    }
                    Err(reason) => Some(Err(self.bad_line(line, reason))),
                }
            }
        }
    }
}

impl FusedIterator for LogReader {}

/// Reads the first bytes of the input (as many as the zstd magic number has, fewer
/// only at end of input), so that the format can be detected even on a pipe that
/// delivers them in pieces.
fn read_head(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(ZSTD_MAGIC.len());
    input
        .by_ref()
        .take(ZSTD_MAGIC.len() as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Parses one event line (without its newline).
fn parse_event_line(line: &[u8]) -> Result<WatchEvent, String> {
    if is_blank(line) {
        return Err("empty line".to_owned());
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(map)) => event_from_map(map),
        Ok(other) => Err(format!("expected a JSON object, found {}", kind(&other))),
        Err(e) => Err(json_error_reason(&e)),
    }
}

/// `invalid JSON: <what> at column <n>` (the line number is the caller's).
pub(crate) fn json_error_reason(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let what = message
        .rfind(" at line ")
        .map_or(message.as_str(), |i| &message[..i]);
    format!("invalid JSON: {what} at column {}", e.column())
}
