//! The core loop shared by replay and (later) live mode: watch events through the relist
//! tracker and the feed into the engine, with epochs closed only when every watched
//! resource has synced, so nothing is ever published from a partial view.

use bindery_engine::{Engine, EpochOutput};
use bindery_ingest::{FeedError, RelistError, RelistTracker, WatchEvent, to_change};

/// An event the pipeline could not apply.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The event breaks the relist rules or lacks object identity.
    #[error(transparent)]
    Relist(#[from] RelistError),
    /// The object's metadata cannot be read.
    #[error(transparent)]
    Feed(#[from] FeedError),
}

/// Watch events in, Binding changes out.
pub struct Pipeline {
    tracker: RelistTracker,
    engine: Engine,
    pending: u64,
}

impl Default for Pipeline {
    fn default() -> Self {
        Pipeline::new()
    }
}

impl Pipeline {
    /// A pipeline with an empty engine.
    pub fn new() -> Pipeline {
        Pipeline {
            tracker: RelistTracker::new(),
            engine: Engine::new(),
            pending: 0,
        }
    }

    /// Applies one watch event to the open epoch.
    pub fn push(&mut self, event: WatchEvent) -> Result<(), PipelineError> {
        for state_change in self.tracker.apply_owned(event)? {
            if let Some(change) = to_change(&state_change)? {
                self.engine.apply(&change);
            }
        }
        self.pending += 1;
        Ok(())
    }

    /// True when every watched resource has synced: an epoch closed now is publishable.
    pub fn synced(&self) -> bool {
        self.tracker.all_synced()
    }

    /// Events applied since the last closed epoch.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// The watched resources that have not synced.
    pub fn unsynced(&self) -> Vec<String> {
        self.tracker.unsynced_names()
    }

    /// How many watched resources have synced, of how many.
    pub fn synced_of(&self) -> (usize, usize) {
        (self.tracker.synced_count(), self.tracker.resource_count())
    }

    /// Closes the open epoch and returns its Binding changes.
    pub fn close_epoch(&mut self) -> EpochOutput {
        self.pending = 0;
        self.engine.advance()
    }

    /// The engine, for reading Bindings and sizes.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}
