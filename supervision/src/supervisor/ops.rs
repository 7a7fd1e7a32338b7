//! The asynchronous steps of a supervisor: starting children in order and stopping
//! them in reverse order, each within its shutdown.

use crate::exit::{ExitReason, ShutdownReason};
use crate::pid::Pid;
use crate::spec::{Shutdown, StartArgs, StartFn};

/// A child to start: its slot, start function and start arguments.
pub(super) type ToStart = (u64, StartFn, StartArgs);

/// A running child to stop: its slot and pid.
pub(super) type ToStop = (u64, Pid, Shutdown);

/// The outcome of a start batch: the children that started, and the first failure.
#[derive(Debug, Default)]
pub(super) struct Started {
    pub(super) ok: Vec<(u64, Pid)>,
    pub(super) failed: Option<(u64, ExitReason)>,
}

/// Starts children one after another, each waiting for the previous one's `started`;
/// stops at the first failure.
pub(super) async fn start_in_order(batch: Vec<ToStart>) -> Started {
    let mut out = Started::default();
    for (slot, start, args) in batch {
        let pid = match start(args) {
            Ok(pid) => pid,
            Err(e) => {
                out.failed = Some((slot, ExitReason::Error(e.to_string())));
                return out;
            }
        };
        match pid.started().await {
            Ok(()) => out.ok.push((slot, pid)),
            Err(reason) => {
                out.failed = Some((slot, reason));
                return out;
            }
        }
    }
    out
}

/// Stops children one after another in the given order (callers pass reverse start
/// order), each unlinked from the supervisor first so its exit is not seen twice.
pub(super) async fn stop_in_order(me: Pid, batch: Vec<ToStop>) -> Vec<(u64, Pid, ExitReason)> {
    let mut out = Vec::with_capacity(batch.len());
    for (slot, pid, shutdown) in batch {
        pid.unlink(&me);
        let reason = stop_child(&pid, shutdown).await;
        out.push((slot, pid, reason));
    }
    out
}

/// OTP's shutdown protocol for one child.
pub(crate) async fn stop_child(pid: &Pid, shutdown: Shutdown) -> ExitReason {
    match shutdown {
        Shutdown::BrutalKill => pid.kill(),
        Shutdown::Infinity => pid.shutdown(ShutdownReason::Requested),
        Shutdown::Timeout(t) => {
            pid.shutdown(ShutdownReason::Requested);
            if let Ok(reason) = tokio::time::timeout(t, pid.wait()).await {
                return reason;
            }
            tracing::warn!(name: "child_shutdown_timeout", %pid, timeout_ms = t.as_millis() as u64, "child_shutdown_timeout");
            pid.kill();
        }
    }
    pid.wait().await
}
