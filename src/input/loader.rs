//! The state `bindery explain` and `bindery dry-run` work on: a watch log's end or the
//! current state of live servers (a [`snapshot`](crate::input::snapshot)), loaded into the
//! [`Oracle`] (the plain recomputation of the semantics). No dataflow: a question about
//! one policy reads only what it needs.

use std::path::Path;

use anyhow::{Context, Result};
use bindery_engine::Oracle;
use bindery_ingest::{LogReader, RelistTracker, WatchEvent, to_change};

use crate::input::pipeline::PipelineError;
use crate::input::snapshot::{self, LiveSource, StateSource};
use crate::observe::progress::Progress;

/// Applies watch events (relists included, through a [`RelistTracker`]) to an
/// [`Oracle`]: how a watch log and a live snapshot both become the state explain and
/// dry-run work on.
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
    pub fn oracle(&self) -> &Oracle {
        &self.oracle
    }

    /// The oracle holding the state so far, taken out.
    pub fn into_oracle(self) -> Oracle {
        self.oracle
    }
}

/// Replays `log` (relists included) into an [`OracleLoader`] holding its final state.
/// Fails on the first malformed line, naming the file and line.
pub fn load_log(log: &Path) -> Result<OracleLoader> {
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
    if !loader.tracker.complete() {
        tracing::warn!(
            "{name}: the log ends before every resource synced ({}); working on a partial view",
            loader.unsynced().join(", ")
        );
    } else if !loader.synced() {
        tracing::warn!(
            "{name}: the log ends during a relist of {}: its held-back changes are not applied; working on those resources as they were at their last SYNCED",
            loader.unsynced().join(", ")
        );
    }
    Ok(loader)
}

/// Reads the current state of a live WDS and ITS ([`snapshot::read_until_synced`]) into
/// an [`OracleLoader`]. An event that cannot be applied (an object without a name,
/// say) is logged and skipped, as `bindery run` does.
pub async fn load_live(source: &LiveSource) -> Result<OracleLoader> {
    let mut loader = OracleLoader::new();
    snapshot::read_until_synced(source, |event| {
        let what = format!("{} {}", event.resource, event.event_type.as_str());
        if let Err(e) = loader.push(event) {
            tracing::warn!("ignoring {what}: {e}");
        }
        Ok(())
    })
    .await?;
    Ok(loader)
}

/// Loads the state of `source` into an [`OracleLoader`]: [`load_log`] for a log,
/// [`load_live`] (on a Tokio runtime of its own) for live servers.
pub fn load(source: &StateSource) -> Result<OracleLoader> {
    match source {
        StateSource::Log(log) => load_log(log),
        StateSource::Live(live) => tokio::runtime::Runtime::new()
            .context("starting the Tokio runtime")?
            .block_on(load_live(live)),
    }
}
