//! Writing a watch log, plain or zstd-compressed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use serde_json::{Map, Value};

use super::event::check_writable;
use super::{LogError, LogHeader, WatchEvent};

/// The zstd compression level used for compressed logs.
const ZSTD_LEVEL: i32 = 3;

/// The name used in messages for logs written with [`LogWriter::to_writer`].
const STREAM_NAME: &str = "<output stream>";

type Output = BufWriter<Box<dyn Write + Send>>;

enum Sink {
    Plain(Output),
    Zstd(zstd::stream::write::Encoder<'static, Output>),
}

impl Sink {
    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Sink::Plain(w) => w,
            Sink::Zstd(w) => w,
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Sink::Plain(mut w) => w.flush(),
            Sink::Zstd(encoder) => encoder.finish()?.flush(),
        }
    }
}

/// Writes a watch log: the header when created, then one compact JSON event per
/// line. Call [`finish`](LogWriter::finish) at the end (a compressed log needs it to
/// end its zstd frame; dropping the writer finishes too, but only logs errors).
pub struct LogWriter {
    name: String,
    sink: Option<Sink>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("name", &self.name)
            .field("compressed", &matches!(self.sink, Some(Sink::Zstd(_))))
            .finish_non_exhaustive()
    }
}

impl LogWriter {
    /// Creates (or truncates) the log at `path`, zstd-compressed when the path ends
    /// in `.zst`, and writes the header (`"watchLog":1` then `header_extra`).
    pub fn create(path: &Path, header_extra: Map<String, Value>) -> Result<LogWriter, LogError> {
        let name = path.display().to_string();
        let compressed = path.extension().is_some_and(|ext| ext == "zst");
        let file = File::create(path).map_err(|e| LogError::io(&name, e))?;
        LogWriter::build(name, Box::new(file), compressed, header_extra)
    }

    /// Writes a log to any byte sink, zstd-compressed if `compressed`, starting with
    /// the header (`"watchLog":1` then `header_extra`).
    pub fn to_writer(
        w: impl Write + Send + 'static,
        compressed: bool,
        header_extra: Map<String, Value>,
    ) -> Result<LogWriter, LogError> {
        LogWriter::build(
            STREAM_NAME.to_owned(),
            Box::new(w),
            compressed,
            header_extra,
        )
    }

    fn build(
        name: String,
        w: Box<dyn Write + Send>,
        compressed: bool,
        header_extra: Map<String, Value>,
    ) -> Result<LogWriter, LogError> {
        let output = BufWriter::new(w);
        let sink = if compressed {
            let mut encoder = zstd::stream::write::Encoder::new(output, ZSTD_LEVEL)
                .map_err(|e| LogError::io(&name, e))?;
            encoder
                .include_checksum(true)
                .map_err(|e| LogError::io(&name, e))?;
            Sink::Zstd(encoder)
        } else {
            Sink::Plain(output)
        };
        let mut writer = LogWriter {
            name,
            sink: Some(sink),
        };
        writer.write_line(&LogHeader::new(header_extra))?;
        Ok(writer)
    }

    /// Appends one event line. Fails without writing anything if the event could
    /// not be read back (`ADDED`/`MODIFIED`/`DELETED` without a JSON object).
    pub fn write_event(&mut self, event: &WatchEvent) -> Result<(), LogError> {
        check_writable(event).map_err(|reason| LogError::InvalidEvent {
            file: self.name.clone(),
            reason,
        })?;
        self.write_line(event)
    }

    /// Flushes what was written so far to the underlying file (for a compressed
    /// log, as a complete zstd block, so that it can be decompressed even if the
    /// frame is never finished).
    pub fn flush(&mut self) -> Result<(), LogError> {
        let result = self.sink_mut().flush();
        result.map_err(|e| LogError::io(&self.name, e))
    }

    /// Ends the log: finishes the zstd frame (if compressed) and flushes.
    pub fn finish(mut self) -> Result<(), LogError> {
        let sink = self
            .sink
            .take()
            .expect("the sink is only taken here and in drop");
        sink.finish().map_err(|e| LogError::io(&self.name, e))
    }

    fn write_line(&mut self, value: &impl serde::Serialize) -> Result<(), LogError> {
        let out = self.sink_mut();
        let result = serde_json::to_writer(&mut *out, value)
            .map_err(io::Error::from)
            .and_then(|()| out.write_all(b"\n"));
        result.map_err(|e| LogError::io(&self.name, e))
    }

    fn sink_mut(&mut self) -> &mut dyn Write {
        self.sink
            .as_mut()
            .expect("the sink is only taken by finish and drop")
            .writer()
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        if let Some(sink) = self.sink.take()
            && let Err(e) = sink.finish()
        {
            tracing::warn!(file = %self.name, "{}: finishing the watch log failed: {e}", self.name);
        }
    }
}
