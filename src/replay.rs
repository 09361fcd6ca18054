//! `bindery replay`: a recorded watch log through the engine at full speed.

use std::fs::File;
use std::io::{BufWriter, StdoutLock};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use bindery_engine::Binding;
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

/// The pipeline with the replay's epoch bookkeeping and delta output.
struct Replayer {
    pipeline: Pipeline,
    deltas: Option<DeltaWriter<BufWriter<StdoutLock<'static>>>>,
    epoch_start: Option<i64>,
    summary: ReplaySummary,
}

impl Replayer {
    /// Closes the open epoch and writes its deltas.
    fn close_epoch(&mut self) -> Result<()> {
        let out = self.pipeline.close_epoch();
        self.summary.epochs += 1;
        self.epoch_start = None;
        if let Some(d) = self.deltas.as_mut() {
            d.write_epoch(&out).context("writing deltas")?;
        }
        Ok(())
    }

    /// True when an event at `ts` must start a new epoch, and the open one can close.
    fn epoch_ends_before(&self, ts: i64, window_ms: i64) -> bool {
        self.epoch_start
            .is_some_and(|start| ts > start.saturating_add(window_ms))
            && self.pipeline.synced()
            && self.pipeline.pending() > 0
    }
}

/// Replays `opts.log`; returns the summary, or the first error (naming file and line).
pub fn replay(opts: &ReplayOptions) -> Result<ReplaySummary> {
    let started = Instant::now();
    let mut reader = LogReader::open(&opts.log)?;
    let name = reader.name().to_string();
    let mut progress = Progress::new(&format!("replaying {name}"), reader.total_bytes());
    let mut r = Replayer {
        pipeline: Pipeline::new(),
        deltas: opts
            .emit_deltas
            .then(|| DeltaWriter::new(BufWriter::new(std::io::stdout().lock()))),
        epoch_start: None,
        summary: ReplaySummary::default(),
    };
    while let Some(line) = reader.next() {
        let line = line?;
        if r.epoch_ends_before(line.event.ts, opts.window_ms) {
            r.close_epoch()?;
        }
        r.epoch_start.get_or_insert(line.event.ts);
        r.pipeline
            .push(line.event)
            .with_context(|| format!("{name}:{}", line.line))?;
        r.summary.events += 1;
        let (events, epochs) = (r.summary.events, r.summary.epochs);
        progress.update(reader.bytes_read(), || {
            format!("{events} events, {epochs} epochs")
        });
    }
    progress.finish();
    if !r.pipeline.synced() {
        tracing::warn!(
            "{name}: the log ends before every resource synced ({}); the Bindings are computed from a partial view",
            r.pipeline.unsynced().join(", ")
        );
    }
    if r.pipeline.pending() > 0 || r.summary.epochs == 0 {
        r.close_epoch()?;
    }
    if let Some(d) = r.deltas.as_mut() {
        d.flush().context("writing deltas")?;
    }
    let bindings = r.pipeline.engine().bindings();
    r.summary.bindings = bindings.len();
    if let Some(path) = &opts.dump_bindings {
        dump(path, &bindings)?;
    }
    r.summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(r.summary)
}

fn dump(path: &Path, bindings: &[Binding]) -> Result<()> {
    if path == Path::new("-") {
        return Ok(write_binding_list(&mut std::io::stdout().lock(), bindings)?);
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    write_binding_list(&mut out, bindings).with_context(|| format!("writing {}", path.display()))
}
