//! Watch events into a state: the one way every command applies them, whether to the
//! dataflow engine (`replay`, `run`, through the [`Pipeline`](super::pipeline::Pipeline))
//! or to the [`Oracle`] (`explain`, `dry-run`: the plain recomputation, no dataflow).
//!
//! ```text
//!  WatchEvent ──► skip resources no Binding depends on ──► RelistTracker ──► feed ──► Target::apply
//!                 (ITS resources but ManagedClusters,        (RESET/SYNCED,          (Engine or
//!                  excluded WDS resources)                     held relists)            Oracle)
//! ```
//!
//! [`Loader::view`] judges where the state stands, and [`View::judge`] is the one verdict
//! on a log's end shared by every command that reads a log: a resource that never
//! synced refuses it, a relist in progress is a warning.

use std::path::Path;

use anyhow::{Context, Result, bail};
use bindery_engine::{Change, Engine, Oracle, PolicyInput};
use bindery_ingest::{
    FeedError, LogReader, ObjectKind, RelistError, RelistTracker, ResourceRef, WatchEvent,
    classify, to_change,
};

use crate::input::snapshot::{self, LiveSource, StateSource};
use crate::observe::progress::Progress;

/// An event that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The event breaks the relist rules or lacks object identity.
    #[error(transparent)]
    Relist(#[from] RelistError),
    /// The object's metadata cannot be read.
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// What watch events are applied to: the engine's input, or the oracle's.
pub trait Target {
    /// Applies one change of a WEC, a policy or a workload object.
    fn apply(&mut self, change: &Change);
    /// The policy named `name`, as applied.
    fn policy(&self, name: &str) -> Option<&PolicyInput>;
}

impl Target for Engine {
    fn apply(&mut self, change: &Change) {
        Engine::apply(self, change);
    }
    fn policy(&self, name: &str) -> Option<&PolicyInput> {
        Engine::policy(self, name)
    }
}

impl Target for Oracle {
    fn apply(&mut self, change: &Change) {
        Oracle::apply(self, change);
    }
    fn policy(&self, name: &str) -> Option<&PolicyInput> {
        Oracle::policy(self, name)
    }
}

/// Where the applied state stands, from the resources' lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// No resource a Binding depends on was seen (a log with only its header).
    Empty,
    /// Some resource never synced (its initial list is incomplete), or the resources
    /// never were all synced at once: any answer would come from a partial view.
    Partial {
        /// The resources not synced, named for messages.
        unsynced: Vec<String>,
    },
    /// The view was complete, and some resources are relisting now: they stand as at
    /// their last `SYNCED`, their held-back changes not applied.
    Relisting {
        /// The relisting resources, named for messages.
        resources: Vec<String>,
        /// The changes held back.
        held: usize,
    },
    /// Every resource is synced.
    Complete,
}

impl View {
    /// The verdict on a log (`name`) that ends in this view, the same for every command:
    /// an error for a partial view (nothing is computed from it), a warning logged for a
    /// relist in progress or an empty log, nothing for a complete one.
    pub fn judge(&self, name: &str) -> Result<()> {
        match self {
            View::Complete => {}
            View::Empty => tracing::warn!(
                log = name,
                "the log holds no watch event of a resource Bindery reads: working on an empty state"
            ),
            View::Partial { unsynced } => bail!(
                "{name}: the log ends before every resource synced (not synced: {}); nothing is computed from a partial view",
                unsynced.join(", ")
            ),
            View::Relisting { resources, held } => tracing::warn!(
                log = name,
                relisting = resources.join(", "),
                held_changes = held,
                "the log ends during a relist: its held-back changes are not applied; those resources stand as at their last SYNCED"
            ),
        }
        Ok(())
    }
}

/// Applies watch events to a [`Target`] through a [`RelistTracker`]. Events of resources
/// no Binding depends on ([`ObjectKind::Ignored`]) are skipped, so that they never hold
/// a view back.
#[derive(Debug)]
pub struct Loader<T> {
    tracker: RelistTracker,
    target: T,
}

/// A loader into the oracle: how `explain` and `dry-run` read their state.
pub type OracleLoader = Loader<Oracle>;

impl Default for OracleLoader {
    fn default() -> Self {
        Loader::new(Oracle::default())
    }
}

impl OracleLoader {
    /// The oracle holding the state so far.
    pub fn oracle(&self) -> &Oracle {
        &self.target
    }

    /// The oracle holding the state so far, taken out.
    pub fn into_oracle(self) -> Oracle {
        self.target
    }
}

impl<T: Target> Loader<T> {
    /// A loader into `target` (nothing applied yet).
    pub fn new(target: T) -> Loader<T> {
        Loader {
            tracker: RelistTracker::new(),
            target,
        }
    }

    /// Applies one watch event. On an error (an event that breaks the relist rules, an
    /// object whose metadata cannot be read) the target is left as it was.
    pub fn push(&mut self, event: WatchEvent) -> Result<(), LoadError> {
        match classify(&event.resource) {
            ObjectKind::Ignored => return Ok(()),
            // Not a watched resource: each line is one change, applied as it comes.
            ObjectKind::StatusWrite => {
                if let Some(object) = &event.object {
                    let change = bindery_ingest::status_written(&event.resource, object)?;
                    self.target.apply(&change);
                }
                return Ok(());
            }
            ObjectKind::Content => {
                if let Some(object) = &event.object {
                    let change =
                        bindery_ingest::object_content(&event.resource, event.event_type, object)?;
                    self.target.apply(&change);
                }
                return Ok(());
            }
            _ => {}
        }
        // One change at a time: a relist's `SYNCED` may release a whole resource.
        // Only a `SYNCED` passes on several, and none of those fails to convert (the
        // objects it releases were checked when held back), so an error leaves the
        // target as it was.
        let target = &mut self.target;
        self.tracker.apply_each(event, |change| {
            if let Some(change) = to_change(&change)? {
                target.apply(&change);
            }
            Ok::<(), LoadError>(())
        })
    }

    /// Where the state stands ([`View`]).
    pub fn view(&self) -> View {
        let tracker = &self.tracker;
        if tracker.resource_count() == 0 {
            return View::Empty;
        }
        if !tracker.complete() || !tracker.never_synced().is_empty() {
            let mut unsynced = tracker.never_synced();
            if unsynced.is_empty() {
                // Each synced once, never all at once.
                unsynced = tracker.unsynced();
            }
            return View::Partial {
                unsynced: unsynced.iter().map(ToString::to_string).collect(),
            };
        }
        if !tracker.all_synced() {
            return View::Relisting {
                resources: tracker.unsynced_names(),
                held: tracker.held_count(),
            };
        }
        View::Complete
    }

    /// True once every resource has synced at once: the state applied is a complete
    /// view (each resource at its last synced state, or later).
    pub fn complete(&self) -> bool {
        self.tracker.complete()
    }

    /// The relist tracker (which resources are synced, held back, ...).
    pub fn tracker(&self) -> &RelistTracker {
        &self.tracker
    }

    /// What the events were applied to.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// What the events were applied to, to advance it (close an engine's epoch).
    pub fn target_mut(&mut self) -> &mut T {
        &mut self.target
    }

    /// Whether the changes of `resource`'s objects are held back now (a relist of it
    /// is in progress, or it is new, and the view was complete).
    pub fn holds(&self, resource: &ResourceRef) -> bool {
        self.tracker.holds(resource)
    }

    /// Whether `resource` was seen in at least one event.
    pub fn knows(&self, resource: &ResourceRef) -> bool {
        self.tracker.knows(resource)
    }
}

/// Replays `log` (relists included) into an [`OracleLoader`] holding its final state,
/// judged by [`View::judge`]. Fails on the first malformed line, naming the file and
/// line.
pub fn load_log(log: &Path) -> Result<OracleLoader> {
    load_log_until(log, None)
}

/// [`load_log`] up to the log's first event later than `until` (Unix ms; `None`: to
/// its end): the state at that time.
pub fn load_log_until(log: &Path, until: Option<i64>) -> Result<OracleLoader> {
    let mut reader = LogReader::open(log)?.read_ahead();
    let name = reader.name().to_string();
    let mut loader = OracleLoader::default();
    let mut progress = Progress::new(&format!("reading {name}"), reader.total_bytes());
    let mut events = 0u64;
    while let Some(line) = reader.next() {
        let line = line?;
        if until.is_some_and(|t| line.event.ts > t) {
            break;
        }
        let number = line.line;
        loader
            .push(line.event)
            .with_context(|| format!("{name}:{number}"))?;
        events += 1;
        progress.update(reader.bytes_read(), || format!("{events} events"));
    }
    progress.finish();
    loader.view().judge(&name)?;
    Ok(loader)
}

/// Reads the current state of a live WDS and ITS ([`snapshot::read_until_synced`]) into
/// an [`OracleLoader`]. An event that cannot be applied (an object without a name,
/// say) is logged and skipped, as `bindery run` does.
pub async fn load_live(source: &LiveSource) -> Result<OracleLoader> {
    let mut loader = OracleLoader::default();
    snapshot::read_until_synced(source, |event| {
        let (resource, event_type) = (event.resource.to_string(), event.event_type);
        if let Err(e) = loader.push(event) {
            tracing::warn!(%resource, event = event_type.as_str(), error = %e, "ignoring a watch event");
        }
        Ok(())
    })
    .await?;
    Ok(loader)
}

/// Loads the state of `source` into an [`OracleLoader`]: `load_log` for a log,
/// `load_live` (on a Tokio runtime of its own) for live servers.
pub fn load(source: &StateSource) -> Result<OracleLoader> {
    match source {
        StateSource::Log(log) => load_log(log),
        StateSource::Live(live) => tokio::runtime::Runtime::new()
            .context("starting the Tokio runtime")?
            .block_on(load_live(live)),
    }
}
