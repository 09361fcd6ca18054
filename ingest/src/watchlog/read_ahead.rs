//! Reading and parsing a log on a thread of its own, ahead of its consumer.
//!
//! JSON parsing is a large part of a replay's load; on a thread of its own it runs
//! beside the relist tracker, the feed and the engine instead of before them. The
//! thread sends the lines in batches over a bounded channel, so it runs at most
//! [`DEPTH`] batches ahead (back-pressure) and what it holds stays bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::{LogError, LogHeader, LogLine, LogReader};

/// Batches the reading thread may hold ready before it waits for the consumer.
pub const DEPTH: usize = 4;

/// A batch is sent when it holds this many lines...
const BATCH_LINES: usize = 1024;

/// ... or this many bytes of line text (one line may be larger: up to
/// [`MAX_LINE_BYTES`](super::MAX_LINE_BYTES)).
const BATCH_BYTES: usize = 256 * 1024;

type Item = Result<LogLine, LogError>;

/// A [`LogReader`] running on a thread of its own: the same lines, errors and end, in
/// the same order. Made by [`LogReader::read_ahead`].
pub struct ReadAhead {
    name: String,
    header: LogHeader,
    total_bytes: Option<u64>,
    consumed: Arc<AtomicU64>,
    batches: Receiver<Vec<Item>>,
    batch: std::vec::IntoIter<Item>,
    pub(super) thread: Option<JoinHandle<Option<u64>>>,
    torn: Option<u64>,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("name", &self.name)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl LogReader {
    /// This reader moved to a thread of its own that reads and parses ahead of the
    /// caller, at most four batches (of up to 1,024 lines or 256 KiB each) ahead.
    pub fn read_ahead(self) -> ReadAhead {
        let name = self.name().to_string();
        let header = self.header().clone();
        let total_bytes = self.total_bytes();
        let consumed = self.consumed_counter();
        let (sender, batches) = sync_channel(DEPTH);
        let thread = std::thread::Builder::new()
            .name("log-reader".into())
            .spawn(move || read_into(self, &sender))
            .expect("spawning the log reader thread");
        ReadAhead {
            name,
            header,
            total_bytes,
            consumed,
            batches,
            batch: Vec::new().into_iter(),
            thread: Some(thread),
            torn: None,
        }
    }
}

/// The reading thread: every item of `reader`, in batches, until its end or until the
/// consumer is gone. Returns the reader's torn last line.
fn read_into(mut reader: LogReader, sender: &SyncSender<Vec<Item>>) -> Option<u64> {
    let mut batch = Vec::with_capacity(BATCH_LINES);
    let mut bytes = 0;
    let mut from = reader.bytes_read();
    while let Some(item) = reader.next() {
        batch.push(item);
        let at = reader.bytes_read();
        bytes += (at - from) as usize;
        from = at;
        if batch.len() >= BATCH_LINES || bytes >= BATCH_BYTES {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_LINES));
            bytes = 0;
            if sender.send(full).is_err() {
                // The consumer stopped reading.
                return reader.torn_last_line();
            }
        }
    }
    if !batch.is_empty() {
        let _ = sender.send(batch);
    }
    reader.torn_last_line()
}

impl ReadAhead {
    /// The log's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log's header.
    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// Bytes of the file read so far by the reading thread (compressed, for a
    /// compressed log): it may be up to four batches ahead of what was consumed.
    pub fn bytes_read(&self) -> u64 {
        self.consumed.load(Ordering::Relaxed)
    }

    /// The file's size, when known (for progress).
    pub fn total_bytes(&self) -> Option<u64> {
        self.total_bytes
    }

    /// The line number of an incomplete last line that was ignored, once the iteration
    /// has ended.
    pub fn torn_last_line(&self) -> Option<u64> {
        self.torn
    }

    /// The reading thread has ended: its answer, or its panic resumed here.
    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            match thread.join() {
                Ok(torn) => self.torn = torn,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    }
}

impl Iterator for ReadAhead {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            match self.batches.recv() {
                Ok(batch) => self.batch = batch.into_iter(),
                Err(_) => {
                    self.join();
                    return None;
                }
            }
        }
    }
}

impl std::iter::FusedIterator for ReadAhead {}
