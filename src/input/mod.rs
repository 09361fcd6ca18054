//! What feeds the engine.

pub mod loader;
pub mod pipeline;
pub mod snapshot;
pub mod synthetic;
pub mod topology;
