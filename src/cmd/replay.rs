//! `bindery replay`: a recorded watch log through the engine, as fast as it goes or
//! paced by its timestamps (`--speed`), and its dry-run (`--with-policy`): one more
//! BindingPolicy applied after the log.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use bindery_ingest::LogReader;
use bindery_sink::{DeltaWriter, Statuses, write_binding_list_of, write_statuses};

use crate::input::pipeline::Pipeline;
use crate::input::topology::{Topology, TopologyArgs};
use crate::observe::dashboard::{Dashboard, Mode};
use crate::observe::metrics::{Metrics, MetricsOptions};
use crate::observe::progress::Progress;
use crate::observe::server::{self, ServeArgs, ServeOptions, ServerState};

use crate::cmd::dry_run::DryRunPolicy;

/// The flags of `bindery replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The watch log (JSON Lines, or the same compressed with zstd).
    log: PathBuf,
    /// Write the final Bindings as a Kubernetes List sorted by name (`-` for stdout).
    #[arg(long, value_name = "OUT.json")]
    dump_bindings: Option<PathBuf>,
    /// Write the final returned statuses (what Bindery writes into each workload
    /// object's `.status`, or clears) as `{"objectStatuses": [...]}` (`-` for stdout).
    #[arg(long, value_name = "OUT.json")]
    dump_statuses: Option<PathBuf>,
    /// Print each epoch's Binding changes as JSON lines on stdout.
    #[arg(long)]
    emit_deltas: bool,
    /// Stop before the log's first event later than T (RFC 3339, or Unix ms): the
    /// Bindings and statuses as they were at T.
    #[arg(long, value_name = "T", value_parser = crate::cmd::log_time::parse)]
    until: Option<i64>,
    /// Events within this many milliseconds of an epoch's first event share its epoch.
    #[arg(long, default_value_t = 0, value_name = "MS", value_parser = clap::value_parser!(i64).range(0..))]
    window_ms: i64,
    /// Dry-run: after the log, apply this BindingPolicy (one object, YAML or JSON) as
    /// added or edited, and print its Binding on stdout and its problems on stderr.
    /// Nothing is written anywhere else; a `--dump-bindings` file includes it.
    #[arg(long, value_name = "FILE.yaml", conflicts_with = "emit_deltas")]
    with_policy: Option<PathBuf>,
    /// Serve the live dashboard and /metrics during the replay (see --listen), and
    /// after it until SIGINT/SIGTERM.
    #[arg(long)]
    dashboard: bool,
    /// Pace the replay by the log's timestamps, X times faster than recorded
    /// (default: as fast as possible).
    #[arg(long, value_name = "X", value_parser = parse_speed)]
    speed: Option<f64>,
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

impl Args {
    /// The options these flags give, checked, and where to serve the dashboard (if
    /// `--dashboard`).
    pub fn options(self) -> Result<(ReplayOptions, Option<ServeOptions>)> {
        if let (false, Some(flag)) = (self.dashboard, self.serve.given()) {
            bail!("{flag} applies to the dashboard's server: add --dashboard");
        }
        let serve = self.dashboard.then(|| self.serve.options());
        let opts = ReplayOptions {
            log: self.log,
            dump_bindings: self.dump_bindings,
            dump_statuses: self.dump_statuses,
            emit_deltas: self.emit_deltas,
            window_ms: self.window_ms,
            until: self.until,
            with_policy: self.with_policy,
            speed: self.speed,
            topology: self.topology.topology()?,
            metrics: None,
        };
        Ok((opts, serve))
    }
}

/// A replay speed: a finite number above 0.
fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "{s:?} is not a speed (a number above 0, e.g. 10 or 0.5)"
        )),
    }
}

/// `bindery replay`: a process of a timely cluster other than 0 serves process 0's
/// dataflow; process 0 (or the only process) replays the log and logs a summary.
pub fn execute(args: Args) -> Result<()> {
    let (opts, serve) = args.options()?;
    // Only process 0 reads the log and writes the output.
    if opts.topology.serve_if_peer()? {
        return Ok(());
    }
    let s = match serve {
        Some(serve) => replay_with_dashboard(&opts, serve)?,
        None => replay(&opts)?,
    };
    tracing::info!(
        events = s.events,
        epochs = s.epochs,
        workers = s.workers,
        processes = s.processes,
        bindings = s.bindings,
        seconds = format_args!("{:.3}", s.elapsed_secs),
        events_per_second = format_args!("{:.0}", s.events as f64 / s.elapsed_secs.max(1e-9)),
        "replayed the log"
    );
    Ok(())
}

/// Options of `bindery replay`.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// The watch log (`.jsonl` or `.jsonl.zst`).
    pub log: PathBuf,
    /// Where to write the final Bindings (`-` for stdout).
    pub dump_bindings: Option<PathBuf>,
    /// Where to write the final returned statuses (`-` for stdout).
    pub dump_statuses: Option<PathBuf>,
    /// Print each epoch's Binding changes as JSON lines on stdout.
    pub emit_deltas: bool,
    /// Events whose timestamps lie within this many ms of an epoch's first event share
    /// the epoch (0: events with the same timestamp).
    pub window_ms: i64,
    /// Stop before the first event later than this (Unix ms): the state at that time.
    pub until: Option<i64>,
    /// Dry-run: a BindingPolicy file (one object, YAML or JSON) applied as an added or
    /// edited policy after the log, in one more epoch; its Binding is printed on stdout
    /// and its problems on stderr.
    pub with_policy: Option<PathBuf>,
    /// Pace the replay by the log's timestamps, this many times faster than recorded
    /// (`None`: as fast as possible).
    pub speed: Option<f64>,
    /// Where the engine's timely workers run: threads here, and other processes of a
    /// cluster (the output does not depend on how many).
    pub topology: Topology,
    /// Count events, epochs and Binding changes here (for `/metrics` and the dashboard).
    pub metrics: Option<Arc<Metrics>>,
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
    /// Timely workers the engine ran on, over every process.
    pub workers: usize,
    /// Processes the engine ran in.
    pub processes: usize,
}

/// The pipeline with the replay's epoch bookkeeping and delta output.
struct Replayer {
    pipeline: Pipeline,
    deltas: Option<DeltaWriter<BufWriter<crate::cmd::stdout::Stdout>>>,
    epoch_start: Option<i64>,
    /// When the open epoch's first event was read.
    epoch_read: Option<SystemTime>,
    metrics: Option<Arc<Metrics>>,
    summary: ReplaySummary,
}

impl Replayer {
    /// Closes the open epoch, counts it and writes its deltas.
    fn close_epoch(&mut self) -> Result<()> {
        let started = Instant::now();
        let out = self.pipeline.close_epoch();
        let duration = started.elapsed();
        if let Some(m) = &self.metrics {
            // Each change was emitted at most this long after the event that caused it.
            let age = self
                .epoch_read
                .and_then(|t| t.elapsed().ok())
                .unwrap_or_default();
            m.epoch(&out, duration, age, &self.pipeline.engine().sizes());
            for _ in &out.changes {
                m.event_to_binding(age);
            }
        }
        self.summary.epochs += 1;
        self.epoch_start = None;
        self.epoch_read = None;
        if let Some(d) = self.deltas.as_mut() {
            d.write_epoch(&out).context("writing deltas")?;
        }
        Ok(())
    }

    /// True when an event at `ts` must start a new epoch, and the open one can close.
    fn epoch_ends_before(&self, ts: i64, window_ms: i64) -> bool {
        self.pipeline.closes_before(self.epoch_start, ts, window_ms)
    }
}

/// Replays `opts.log` with the metrics and dashboard served on `serve.listen` meanwhile,
/// and after it until SIGINT/SIGTERM, so the figures can be read at leisure.
pub fn replay_with_dashboard(opts: &ReplayOptions, serve: ServeOptions) -> Result<ReplaySummary> {
    let runtime = tokio::runtime::Runtime::new()?;
    let metrics = Arc::new(Metrics::new(MetricsOptions {
        per_policy: serve.per_policy_metrics,
    }));
    let dashboard = Dashboard::new(metrics.clone(), Mode::Replay);
    let shutdown = bindery_ingest::live::CancellationToken::new();
    let state = ServerState {
        metrics: metrics.clone(),
        dashboard: dashboard.clone(),
        engine: None,
        health: Arc::new(crate::runtime::health::Health::serving()),
        shutdown: shutdown.clone(),
    };
    let (listener, addr) = runtime.block_on(server::bind(serve.listen))?;
    let serving = runtime.spawn(server::serve(listener, state));
    {
        let _entered = runtime.enter();
        crate::runtime::shutdown::cancel_on_signal(shutdown.clone());
    }
    tracing::info!(
        dashboard = %format_args!("{}/dashboard", server::url(addr)),
        metrics = %format_args!("{}/metrics", server::url(addr)),
        "serving"
    );
    let opts = ReplayOptions {
        metrics: Some(metrics),
        ..opts.clone()
    };
    let summary = replay(&opts);
    dashboard.set_done();
    dashboard.sample();
    if summary.is_ok() && !shutdown.is_cancelled() {
        tracing::info!(
            dashboard = %format_args!("{}/dashboard", server::url(addr)),
            "replay finished; the dashboard stays up until SIGINT/SIGTERM"
        );
    }
    runtime.block_on(async {
        if summary.is_ok() {
            shutdown.cancelled().await;
        }
        shutdown.cancel();
        serving.await
    })??;
    summary
}

/// Replays `opts.log`; returns the summary, or the first error (naming file and line).
pub fn replay(opts: &ReplayOptions) -> Result<ReplaySummary> {
    let started = Instant::now();
    let dry_run = opts
        .with_policy
        .as_deref()
        .map(DryRunPolicy::read)
        .transpose()?;
    if dry_run.is_some() && opts.dump_bindings.as_deref() == Some(Path::new("-")) {
        bail!(
            "--with-policy prints the dry-run Binding on stdout: give --dump-bindings a file, not -"
        );
    }
    let stdout = Some(Path::new("-"));
    if opts.emit_deltas && opts.dump_bindings.as_deref() == stdout {
        bail!("--emit-deltas prints the deltas on stdout: give --dump-bindings a file, not -");
    }
    if opts.dump_statuses.as_deref() == stdout
        && (opts.emit_deltas || dry_run.is_some() || opts.dump_bindings.as_deref() == stdout)
    {
        bail!(
            "only one output can go to stdout: give --dump-statuses a file, not -, with --emit-deltas, --with-policy or --dump-bindings -"
        );
    }
    if opts.window_ms < 0 {
        bail!("--window-ms must not be negative (got {})", opts.window_ms);
    }
    let mut reader = LogReader::open(&opts.log)?.read_ahead();
    let name = reader.name().to_string();
    let mut progress = Progress::new(&format!("replaying {name}"), reader.total_bytes());
    let pipeline = opts.topology.pipeline()?;
    let mut r = Replayer {
        pipeline,
        deltas: opts
            .emit_deltas
            .then(|| DeltaWriter::new(BufWriter::new(crate::cmd::stdout::stdout()))),
        epoch_start: None,
        epoch_read: None,
        metrics: opts.metrics.clone(),
        summary: ReplaySummary::default(),
    };
    r.summary.workers = r.pipeline.engine().workers();
    r.summary.processes = opts.topology.process_count();
    if let Some(m) = &r.metrics {
        m.engine_workers(r.summary.workers);
    }
    let mut pace = opts.speed.map(Pace::new);
    let mut last_ts = 0;
    while let Some(line) = reader.next() {
        let line = line?;
        if let Some(until) = opts.until
            && line.event.ts > until
        {
            tracing::info!(
                until = %crate::cmd::log_time::display(until),
                line = line.line,
                "stopped before the first event after --until"
            );
            break;
        }
        last_ts = line.event.ts;
        if r.epoch_ends_before(line.event.ts, opts.window_ms) {
            r.close_epoch()?;
        }
        if let Some(pace) = pace.as_mut() {
            pace.wait_for(line.event.ts);
        }
        r.epoch_start.get_or_insert(line.event.ts);
        r.epoch_read.get_or_insert_with(SystemTime::now);
        if let Some(m) = &r.metrics {
            m.event(&line.event);
        }
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
    r.pipeline.view().judge(&name)?;
    if r.pipeline.pending() > 0 || r.summary.epochs == 0 {
        r.close_epoch()?;
    }
    if let Some(policy) = &dry_run {
        policy.apply_to(r.pipeline.loader_mut(), last_ts)?;
        r.close_epoch()?;
    }
    if let Some(d) = r.deltas.as_mut() {
        d.flush().context("writing deltas")?;
    }
    r.summary.bindings = r.pipeline.engine().binding_count();
    if let Some(path) = &opts.dump_bindings {
        // Rendered one at a time as they are written.
        let engine = r.pipeline.engine();
        let bindings = engine
            .binding_names()
            .into_iter()
            .filter_map(|name| engine.binding(&name));
        dump(path, |out| write_binding_list_of(out, bindings))?;
    }
    if let Some(path) = &opts.dump_statuses {
        let statuses = Statuses::of(r.pipeline.engine());
        dump(path, |out| write_statuses(out, &statuses))?;
    }
    if let Some(policy) = &dry_run {
        policy.report(r.pipeline.engine())?;
    }
    r.summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(r.summary)
}

/// Writes to `path` (`-`: stdout) with `write`.
fn dump(path: &Path, write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    if path == Path::new("-") {
        return Ok(write(&mut crate::cmd::stdout::stdout())?);
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    write(&mut out).with_context(|| format!("writing {}", path.display()))
}

/// Paces a replay by the log's timestamps: event times are replayed `speed` times
/// faster than they were recorded.
#[derive(Debug)]
struct Pace {
    speed: f64,
    /// The first event's timestamp and when it was replayed.
    start: Option<(i64, Instant)>,
}

impl Pace {
    fn new(speed: f64) -> Pace {
        Pace { speed, start: None }
    }

    /// Sleeps until the event recorded at `ts` is due.
    fn wait_for(&mut self, ts: i64) {
        let (first, at) = *self.start.get_or_insert((ts, Instant::now()));
        let delay = self.delay(first, ts);
        // Due later than an `Instant` can say (a tiny speed, a huge gap): not in this life.
        let due = at.checked_add(delay);
        let now = Instant::now();
        match due {
            Some(due) if due > now => std::thread::sleep(due - now),
            Some(_) => {}
            None => std::thread::sleep(delay),
        }
    }

    /// How long after the first event (recorded at `first`) the event recorded at `ts`
    /// is due: saturating at [`Duration::MAX`], never a panic whatever the speed or gap.
    fn delay(&self, first: i64, ts: i64) -> Duration {
        let offset_ms = ts.saturating_sub(first).max(0) as f64 / self.speed;
        Duration::try_from_secs_f64(offset_ms / 1000.0).unwrap_or(Duration::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_delays_saturate_instead_of_panicking() {
        let pace = Pace::new(2.0);
        assert_eq!(pace.delay(1000, 3000), Duration::from_secs(1));
        assert_eq!(pace.delay(3000, 1000), Duration::ZERO);
        assert_eq!(
            pace.delay(i64::MIN, i64::MAX),
            Duration::from_secs_f64(i64::MAX as f64 / 2000.0)
        );
        let tiny = Pace::new(1e-300);
        assert_eq!(tiny.delay(0, 0), Duration::ZERO);
        assert_eq!(tiny.delay(0, 1), Duration::MAX);
        let mut pace = Pace::new(1e-300);
        pace.wait_for(5);
        // The first event is due at once; later ones "never" (not tested: it sleeps).
        assert_eq!(pace.start.map(|(first, _)| first), Some(5));
    }
}
