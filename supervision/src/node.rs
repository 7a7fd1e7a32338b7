//! The top of a node: run a root supervision tree until SIGTERM/SIGINT, then shut it
//! down gracefully.

use crate::error::SupervisionError;
use crate::exit::ExitReason;
use crate::supervisor::SupervisorRef;

/// SIGTERM and SIGINT (Ctrl-C elsewhere), caught from the moment this is made: a
/// signal that arrives while the node is still starting waits here rather than killing
/// the process or being lost.
#[derive(Debug)]
pub struct ShutdownSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Installs the handlers (inside a tokio runtime).
    pub fn listen() -> Result<Self, SupervisionError> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let install = |kind| signal(kind).map_err(|e| SupervisionError::Signal(e.to_string()));
            Ok(Self {
                term: install(SignalKind::terminate())?,
                int: install(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Resolves at the next SIGTERM or SIGINT (at once for one that came since the
    /// last call).
    pub async fn recv(&mut self) -> Result<(), SupervisionError> {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => Ok(()),
                _ = self.int.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c()
                .await
                .map_err(|e| SupervisionError::Signal(e.to_string()))
        }
    }
}

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C elsewhere). The
/// handlers are installed when it is first polled; see [`ShutdownSignals`] to catch
/// signals from earlier on.
pub async fn shutdown_signal() -> Result<(), SupervisionError> {
    ShutdownSignals::listen()?.recv().await
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

/// Why [`run_until_signal`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// SIGTERM or SIGINT: the tree still runs, for the caller to stop with whatever
    /// else the node runs beside it, in the node's order.
    Signal,
    /// The root ended by itself (it gave up restarting), with this reason.
    Exited(ExitReason),
}

/// Runs the tree until a signal caught by `signals` or until the root ends by itself.
///
/// ```no_run
/// # use girder_supervision::*;
/// # async fn node(root: SupervisorRef) -> Result<(), SupervisionError> {
/// let mut signals = ShutdownSignals::listen()?; // before the tree starts
/// match run_until_signal(&root, &mut signals).await {
///     RunEnd::Signal => { root.shutdown().await; }
///     RunEnd::Exited(reason) => tracing::error!(%reason, "tree ended"),
/// }
/// # Ok(())
/// # }
/// ```
pub async fn run_until_signal(root: &SupervisorRef, signals: &mut ShutdownSignals) -> RunEnd {
    tokio::select! {
        reason = root.wait() => RunEnd::Exited(reason),
        // A failed `recv` (no signal support) ends the wait as a stop would.
        _ = signals.recv() => RunEnd::Signal,
    }
}
