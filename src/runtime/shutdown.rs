//! Shutdown on signals: the first SIGTERM or SIGINT starts a graceful shutdown (the
//! commands drain what they hold), a second one exits at once.

use bindery_ingest::live::CancellationToken;
use tokio::signal::unix::{SignalKind, signal};

/// Installs the SIGTERM and SIGINT handlers now (inside a Tokio runtime), and spawns the
/// task that cancels `shutdown` on the first signal and exits the process at once on a
/// second one (an operator who asks twice does not want to wait for the drain).
///
/// Installing before spawning matters: a signal that arrives between the spawn and the
/// task's first poll would otherwise kill the process with the default disposition.
pub fn cancel_on_signal(shutdown: CancellationToken) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            _ = shutdown.cancelled() => {}
        }
        shutdown.cancel();
        let code = tokio::select! {
            _ = term.recv() => 143,
            _ = int.recv() => 130,
        };
        tracing::warn!("second signal: exiting at once, without waiting for the drain");
        std::process::exit(code);
    });
}
