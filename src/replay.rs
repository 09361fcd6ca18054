//! `bindery replay`: a recorded watch log through the engine at full speed, and its
//! dry-run (`--with-policy`): one more BindingPolicy applied after the log.

use std::fs::File;
use std::io::{BufWriter, StdoutLock};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bindery_engine::{Binding, Engine};
use bindery_ingest::feed::{POLICY_GROUP, POLICY_RESOURCE};
use bindery_ingest::{EventType, LogReader, ResourceRef, Space, WatchEvent};
use bindery_sink::{DeltaWriter, write_binding_list};
use serde_json::Value;

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
    /// Dry-run: a BindingPolicy file (one object, YAML or JSON) applied as an added or
    /// edited policy after the log, in one more epoch; its Binding is printed on stdout
    /// and its problems on stderr.
    pub with_policy: Option<PathBuf>,
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
    let mut last_ts = 0;
    while let Some(line) = reader.next() {
        let line = line?;
        last_ts = line.event.ts;
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
    if let Some(policy) = &dry_run {
        let event = policy.event(r.pipeline.engine(), last_ts);
        r.pipeline
            .push(event)
            .with_context(|| policy.source.clone())?;
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
    if let Some(policy) = &dry_run {
        policy.report(r.pipeline.engine())?;
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

/// A BindingPolicy read from a file for a dry-run (`bindery replay --with-policy`).
#[derive(Clone, Debug)]
pub struct DryRunPolicy {
    /// `metadata.name`: the policy (and Binding) name.
    pub name: String,
    /// The whole object, as read.
    object: Value,
    /// The file it came from, for messages.
    source: String,
}

impl DryRunPolicy {
    /// Reads one BindingPolicy object from a YAML or JSON file.
    pub fn read(path: &Path) -> Result<DryRunPolicy> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {source}"))?;
        DryRunPolicy::parse(&text, &source)
    }

    /// Parses one BindingPolicy object (YAML or JSON); `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<DryRunPolicy> {
        let object: Value = serde_yaml_ng::from_str(text).with_context(|| {
            format!("{source}: expected one BindingPolicy object (YAML or JSON)")
        })?;
        let Value::Object(map) = &object else {
            bail!(
                "{source}: expected one BindingPolicy object, got {}",
                kind_of(&object)
            );
        };
        if let Some(kind) = map.get("kind").filter(|k| !k.is_null())
            && kind.as_str() != Some("BindingPolicy")
        {
            bail!("{source}: kind is {kind}, expected \"BindingPolicy\"");
        }
        if let Some(api_version) = map.get("apiVersion").filter(|v| !v.is_null())
            && !api_version
                .as_str()
                .is_some_and(|v| v.starts_with(&format!("{POLICY_GROUP}/")))
        {
            bail!("{source}: apiVersion is {api_version}, expected {POLICY_GROUP}/v1alpha1");
        }
        let meta = map.get("metadata");
        let name = match meta.and_then(|m| m.get("name")) {
            Some(Value::String(n)) if !n.is_empty() => n.clone(),
            _ => bail!("{source}: metadata.name is required (a non-empty string)"),
        };
        if meta
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|t| !t.is_null())
        {
            bail!(
                "{source}: metadata.deletionTimestamp is set: a policy being deleted has no Binding"
            );
        }
        Ok(DryRunPolicy {
            name,
            object,
            source: source.to_string(),
        })
    }

    /// The watch event that adds or edits the policy: the object, with `metadata.uid`
    /// (if absent: the edited policy's, or `dry-run` for a new one) and
    /// `metadata.generation` (if absent: 1) filled in.
    fn event(&self, engine: &Engine, ts: i64) -> WatchEvent {
        let mut object = self.object.clone();
        if let Some(Value::Object(meta)) = object.get_mut("metadata") {
            if meta.get("uid").is_none_or(Value::is_null) {
                let uid = engine
                    .binding(&self.name)
                    .map_or_else(|| "dry-run".to_string(), |b| b.policy_uid);
                meta.insert("uid".into(), Value::String(uid));
            }
            if meta.get("generation").is_none_or(Value::is_null) {
                meta.insert("generation".into(), Value::from(1));
            }
        }
        WatchEvent {
            ts,
            resource: ResourceRef::new(Space::Wds, POLICY_GROUP, "v1alpha1", POLICY_RESOURCE),
            event_type: EventType::Modified,
            object: Some(object),
        }
    }

    /// Prints the policy's Binding (pretty JSON) on stdout and its problems on stderr.
    fn report(&self, engine: &Engine) -> Result<()> {
        let Some(binding) = engine.binding(&self.name) else {
            bail!("dry-run BindingPolicy {:?} has no Binding", self.name);
        };
        let problems = engine
            .status(&self.name)
            .map(|s| s.problems)
            .unwrap_or_default();
        println!("{}", serde_json::to_string_pretty(&binding.to_json())?);
        if problems.is_empty() {
            eprintln!("dry-run BindingPolicy {:?}: no problems", self.name);
        } else {
            eprintln!(
                "dry-run BindingPolicy {:?}: {} problem(s):",
                self.name,
                problems.len()
            );
            for p in &problems {
                eprintln!("  {p}");
            }
        }
        Ok(())
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
