//! `bindery explain`: replays a watch log into the oracle (the plain recomputation of the
//! semantics) and explains, on the final state, why a BindingPolicy binds what it binds:
//! overall, for one WEC, and/or for one workload object.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bindery_engine::{ObjectKey, Oracle, Query};
use bindery_ingest::{LogReader, RelistTracker, to_change};

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
    /// The watch log to replay.
    pub log: PathBuf,
    /// The BindingPolicy to explain.
    pub policy: String,
    /// `GROUP/RESOURCE/[NAMESPACE/]NAME` of a workload object.
    pub object: Option<String>,
    /// Cluster id of a WEC.
    pub cluster: Option<String>,
    /// Output format.
    pub output: OutputFormat,
}

/// Replays `log` (relists included) into an [`Oracle`] holding its final state.
pub fn load_state(log: &Path) -> Result<Oracle> {
    let mut reader = LogReader::open(log)?;
    let name = reader.name().to_string();
    let mut tracker = RelistTracker::new();
    let mut oracle = Oracle::default();
    for line in reader.by_ref() {
        let line = line?;
        let number = line.line;
        let changes = tracker
            .apply_owned(line.event)
            .with_context(|| format!("{name}:{number}"))?;
        for state_change in changes {
            if let Some(change) =
                to_change(&state_change).with_context(|| format!("{name}:{number}"))?
            {
                oracle.apply(&change);
            }
        }
    }
    if !tracker.all_synced() {
        let unsynced: Vec<String> = tracker.unsynced().iter().map(ToString::to_string).collect();
        tracing::warn!(
            "{name}: the log ends before every resource synced ({}); explaining a partial view",
            unsynced.join(", ")
        );
    }
    Ok(oracle)
}

/// Runs `bindery explain`: returns the rendered explanation (text or JSON), or an error
/// naming what is malformed or was not found.
pub fn explain(opts: &ExplainOptions) -> Result<String> {
    let object: Option<ObjectKey> = opts.object.as_deref().map(str::parse).transpose()?;
    let oracle = load_state(&opts.log)?;
    let explanation = oracle.explain(&Query {
        policy: opts.policy.clone(),
        object,
        cluster: opts.cluster.clone(),
    })?;
    Ok(match opts.output {
        OutputFormat::Text => explanation.to_text(),
        OutputFormat::Json => {
            let mut json = serde_json::to_string_pretty(&explanation)?;
            json.push('\n');
            json
        }
    })
}
