//! The top of a node: run a root supervision tree until SIGTERM/SIGINT, then shut it
//! down gracefully.

use crate::error::SupervisionError;
use crate::exit::ExitReason;
use crate::supervisor::SupervisorRef;

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C elsewhere).
pub async fn shutdown_signal() -> Result<(), SupervisionError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| SupervisionError::Signal(e.to_string()))?;
        tokio::select! {
            _ = term.recv() => Ok(()),
            res = tokio::signal::ctrl_c() => res.map_err(|e| SupervisionError::Signal(e.to_string())),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| SupervisionError::Signal(e.to_string()))
    }
}

/// Runs the tree until `stop` resolves (e.g. [`shutdown_signal`]) or the root exits by
/// itself; on `stop`, shuts the whole tree down in reverse start order. Returns the
/// root's exit reason.
///
/// ```no_run
/// # use girder_supervision::*;
/// # async fn node(root: SupervisorRef) {
/// let reason = run_until(&root, async { let _ = shutdown_signal().await; }).await;
/// tracing::info!(%reason, "node stopped");
/// # }
/// ```
pub async fn run_until(
    root: &SupervisorRef,
    stop: impl std::future::Future<Output = ()>,
) -> ExitReason {
    tokio::select! {
        reason = root.wait() => reason,
        () = stop => root.shutdown().await,
    }
}
