//! `bindery replay`: a recorded watch log through the engine at full speed.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use bindery_ingest::LogReader;
use bindery_sink::{DeltaWriter, write_binding_list};

use crate::pipeline::Pipeline;
use crate::progress::Progress;

/// Options of `bindery replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The watch log (`.jsonl` or `.jsonl.zst`).
    pub log: PathBuf,
    /// Where to write the final Bindings (`-` for stdout).
    pub dump_bindings: Option<PathBuf>,
    /// Print each epoch's Binding changes as JSON lines on stdout.
    pub emit_deltas: bool,
    /// Events whose timestamps lie within this many ms of an epoch's first event share
    /// the epoch (0: events with the same timestamp).
    pub window_ms: i64,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplaySummary {
    /// Events read.
    pub events: u64,
    /// Epochs closed.
    pub epochs: u64,
    /// Bindings at the end.
    pub bindings: usize,
    /// Seconds elapsed.
    pub elapsed_secs: f64,
}

/// Replays `opts.log`; returns the summary, or the first error (naming file and line).
pub fn replay(opts: &ReplayOptions) -> Result<ReplaySummary> {
    let started = Instant::now();
    let mut reader = LogReader::open(&opts.log)?;
    let name = reader.name().to_string();
    let mut progress = Progress::new(&format!("replaying {name}"), reader.total_bytes());
    let mut deltas = opts.emit_deltas.then(|| DeltaWriter::new(BufWriter::new(std::io::stdout().lock())));
    let mut pipeline = Pipeline::new();
    let mut summary = ReplaySummary::default();
    let mut epoch_start: Option<i64> = None;

    let mut close = |pipeline: &mut Pipeline, summary: &mut ReplaySummary| -> Result<()> {
        let out = pipeline.close_epoch();
        summary.epochs += 1;
        if let Some(d) = deltas.as_mut() {
            d.write_epoch(&out).context("writing deltas")?;
        }
        Ok(())
    };

    while let Some(line) = reader.next() {
        let line = line?;
        let ts = line.event.ts;
        // Close the open epoch before an event outside its window, if publishable.
        if let Some(start) = epoch_start
            && ts > start + opts.window_ms
            && pipeline.synced()
            && pipeline.pending() > 0
        {
            close(&mut pipeline, &mut summary)?;
            epoch_start = None;
        }
        epoch_start.get_or_insert(ts);
        pipeline.push(line.event).with_context(|| format!("{name}:{}", line.line))?;
        summary.events += 1;
        let bytes = reader.bytes_read();
        progress.update(bytes, || format!("{} events, {} epochs", summary.events, summary.epochs));
    }
    if !pipeline.synced() {
        tracing::warn!(
            "{name}: the log ends before every resource synced ({}); the Bindings are computed from a partial view",
            pipeline.unsynced().join(", ")
        );
    }
    if pipeline.pending() > 0 || summary.epochs == 0 {
        close(&mut pipeline, &mut summary)?;
    }
    progress.finish();
    drop(close);
    if let Some(d) = deltas.as_mut() {
        d.flush()?;
    }
    let bindings = pipeline.engine().bindings();
    summary.bindings = bindings.len();
    if let Some(path) = &opts.dump_bindings {
        dump(path, &bindings)?;
    }
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

fn dump(path: &Path, bindings: &[bindery_engine::Binding]) -> Result<()> {
    if path == Path::new("-") {
        let mut out = std::io::stdout().lock();
        write_binding_list(&mut out, bindings)?;
        return Ok(());
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    write_binding_list(&mut out, bindings).with_context(|| format!("writing {}", path.display()))?;
    out.flush().with_context(|| format!("writing {}", path.display()))
}
