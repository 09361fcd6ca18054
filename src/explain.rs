//! `bindery explain`: loads the state of a watch log's end or of live servers (a
//! [`snapshot`](crate::snapshot)) into the oracle (the plain recomputation of the
//! semantics) and explains, on it, why a BindingPolicy binds what it binds: overall,
//! for one WEC, and/or for one workload object.

use std::path::Path;

use anyhow::{Context, Result};
use bindery_engine::{ObjectKey, Oracle, Query};
use bindery_ingest::{LogReader, RelistTracker, WatchEvent, to_change};

use crate::pipeline::PipelineError;
use crate::progress::Progress;
use crate::snapshot::{self, LiveSource, StateSource};

/// How `bindery explain` prints its explanation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Indented text, one line per test, ✓ held / ✗ failed.
    #[default]
    Text,
    /// The explanation as pretty JSON, for scripts.
    Json,
}

/// Options of `bindery explain`.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// Where the state comes from: a watch log's end or live servers.
    pub source: StateSource,
    /// The BindingPolicy to explain.
    pub policy: String,
    /// `GROUP/RESOURCE/[NAMESPACE/]NAME` of a workload object.
    pub object: Option<String>,
    /// Cluster id of a WEC.
    pub cluster: Option<String>,
    /// Output format.
    pub output: OutputFormat,
}

/// Applies watch events (relists included, through a [`RelistTracker`]) to an
/// [`Oracle`]: how a watch log and a live snapshot both become the state explain works
/// on.
#[derive(Debug, Default)]
pub struct OracleLoader {
    tracker: RelistTracker,
    oracle: Oracle,
}

impl OracleLoader {
    /// A loader with an empty oracle.
    pub fn new() -> OracleLoader {
        OracleLoader::default()
    }

    /// Applies one watch event. On an error (an event that breaks the relist rules, an
    /// object whose metadata cannot be read) the oracle is left as it was.
    pub fn push(&mut self, event: WatchEvent) -> Result<(), PipelineError> {
        let changes = self.tracker.apply_owned(event)?;
        let changes = changes
            .iter()
            .filter_map(|c| to_change(c).transpose())
            .collect::<Result<Vec<_>, _>>()?;
        for change in &changes {
            self.oracle.apply(change);
        }
        Ok(())
    }

    /// True when every resource seen has synced (and at least one was seen).
    pub fn synced(&self) -> bool {
        self.tracker.all_synced()
    }

    /// The resources seen that have not synced.
    pub fn unsynced(&self) -> Vec<String> {
        self.tracker.unsynced_names()
    }

    /// The oracle holding the state so far.
    pub fn into_oracle(self) -> Oracle {
        self.oracle
    }
}

/// Replays `log` (relists included) into an [`Oracle`] holding its final state. Fails
/// on the first malformed line, naming the file and line.
pub fn load_state(log: &Path) -> Result<Oracle> {
    let mut reader = LogReader::open(log)?;
    let name = reader.name().to_string();
    let mut loader = OracleLoader::new();
    let mut progress = Progress::new(&format!("reading {name}"), reader.total_bytes());
    let mut events = 0u64;
    while let Some(line) = reader.next() {
        let line = line?;
        let number = line.line;
        loader
            .push(line.event)
            .with_context(|| format!("{name}:{number}"))?;
        events += 1;
        progress.update(reader.bytes_read(), || format!("{events} events"));
    }
    progress.finish();
    if !loader.synced() {
        tracing::warn!(
            "{name}: the log ends before every resource synced ({}); explaining a partial view",
            loader.unsynced().join(", ")
        );
    }
    Ok(loader.into_oracle())
}

/// Reads the current state of a live WDS and ITS ([`snapshot::read_until_synced`]) into
/// an [`Oracle`]. An event that cannot be applied (an object without a name, say) is
/// logged and skipped, as `bindery run` does.
pub async fn load_live_state(source: &LiveSource) -> Result<Oracle> {
    let mut loader = OracleLoader::new();
    snapshot::read_until_synced(source, |event| {
        let what = format!("{} {}", event.resource, event.event_type.as_str());
        if let Err(e) = loader.push(event) {
            tracing::warn!("ignoring {what}: {e}");
        }
        Ok(())
    })
    .await?;
    Ok(loader.into_oracle())
}

/// Loads the state of `source` into an [`Oracle`]: [`load_state`] for a log,
/// [`load_live_state`] (on a Tokio runtime of its own) for live servers.
pub fn load(source: &StateSource) -> Result<Oracle> {
    match source {
        StateSource::Log(log) => load_state(log),
        StateSource::Live(live) => tokio::runtime::Runtime::new()
            .context("starting the Tokio runtime")?
            .block_on(load_live_state(live)),
    }
}

/// Runs `bindery explain`: returns the rendered explanation (text or JSON), or an error
/// naming what is malformed or was not found.
pub fn explain(opts: &ExplainOptions) -> Result<String> {
    let object: Option<ObjectKey> = opts.object.as_deref().map(str::parse).transpose()?;
    let oracle = load(&opts.source)?;
    let explanation = oracle
        .explain(&Query {
            policy: opts.policy.clone(),
            object,
            cluster: opts.cluster.clone(),
        })
        .with_context(|| format!("explaining on {}", opts.source.describe()))?;
    Ok(match opts.output {
        OutputFormat::Text => explanation.to_text(),
        OutputFormat::Json => {
            let mut json = serde_json::to_string_pretty(&explanation)?;
            json.push('\n');
            json
        }
    })
}
