//! Metrics, the dashboard, the HTTP server and progress.

pub mod dashboard;
pub mod metrics;
pub mod progress;
pub mod server;
