//! Lifecycle events a supervisor emits (as `tracing` events and to an observer).

use std::fmt;
use std::sync::Arc;

use crate::exit::ExitReason;
use crate::pid::Pid;

/// What happened to a supervisor or one of its children. Each variant is also emitted
/// as a `tracing` event whose name is given by [`SupervisionEvent::name`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisionEvent {
    /// A child started for the first time (`child_started`).
    ChildStarted {
        /// Child id.
        id: String,
        /// Its pid.
        pid: Pid,
    },
    /// A child exited by itself or by an exit signal (`child_exited`).
    ChildExited {
        /// Child id.
        id: String,
        /// The pid that exited.
        pid: Pid,
        /// Why.
        reason: ExitReason,
    },
    /// A child was restarted after an exit (`child_restarted`).
    ChildRestarted {
        /// Child id.
        id: String,
        /// The new pid.
        pid: Pid,
    },
    /// The supervisor stopped a child (strategy, `terminate_child`, or shutdown)
    /// (`child_terminated`).
    ChildTerminated {
        /// Child id.
        id: String,
        /// The pid that was stopped.
        pid: Pid,
        /// The reason it ended with.
        reason: ExitReason,
    },
    /// A child failed to start (`child_start_failed`).
    ChildStartFailed {
        /// Child id.
        id: String,
        /// How it failed.
        reason: ExitReason,
    },
    /// Too many restarts: the supervisor gives up (`max_restart_intensity_reached`).
    MaxRestartIntensityReached {
        /// The configured intensity.
        intensity: u32,
    },
    /// The supervisor itself stopped (`supervisor_shutdown`).
    SupervisorShutdown {
        /// Its exit reason.
        reason: ExitReason,
    },
}

impl SupervisionEvent {
    /// The stable snake_case name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            SupervisionEvent::ChildStarted { .. } => "child_started",
            SupervisionEvent::ChildExited { .. } => "child_exited",
            SupervisionEvent::ChildRestarted { .. } => "child_restarted",
            SupervisionEvent::ChildTerminated { .. } => "child_terminated",
            SupervisionEvent::ChildStartFailed { .. } => "child_start_failed",
            SupervisionEvent::MaxRestartIntensityReached { .. } => "max_restart_intensity_reached",
            SupervisionEvent::SupervisorShutdown { .. } => "supervisor_shutdown",
        }
    }

    /// Emits the event through `tracing`, with the supervisor's pid as a field.
    ///
    /// Starts and clean exits are `debug` (a node starts one child per
    /// connection), and so is a child that ends cleanly before its start
    /// is recorded; restarts, failures and shutdowns are `info` or above.
    pub(crate) fn trace(&self, sup: Option<&Pid>) {
        let sup = sup.map(|p| p.to_string()).unwrap_or_default();
        match self {
            SupervisionEvent::ChildStarted { id, pid } => {
                tracing::debug!(name: "child_started", %sup, child_id = %id, %pid, "child_started");
            }
            SupervisionEvent::ChildExited { id, pid, reason } => {
                if reason.is_clean() {
                    tracing::debug!(name: "child_exited", %sup, child_id = %id, %pid, %reason, "child_exited");
                } else {
                    tracing::warn!(name: "child_exited", %sup, child_id = %id, %pid, %reason, "child_exited");
                }
            }
            SupervisionEvent::ChildRestarted { id, pid } => {
                tracing::info!(name: "child_restarted", %sup, child_id = %id, %pid, "child_restarted");
            }
            SupervisionEvent::ChildTerminated { id, pid, reason } => {
                tracing::info!(name: "child_terminated", %sup, child_id = %id, %pid, %reason, "child_terminated");
            }
            SupervisionEvent::ChildStartFailed { id, reason } => {
                if reason.is_clean() {
                    // It ended normally before its start was recorded: a
                    // short life (a connection closed at once), not a
                    // failure. The supervisor's reaction, if any (a
                    // restart, its own shutdown), is logged by itself.
                    tracing::debug!(name: "child_start_failed", %sup, child_id = %id, %reason, "child ended before its start was recorded");
                } else {
                    tracing::error!(name: "child_start_failed", %sup, child_id = %id, %reason, "child_start_failed");
                }
            }
            SupervisionEvent::MaxRestartIntensityReached { intensity } => {
                tracing::error!(name: "max_restart_intensity_reached", %sup, intensity, "max_restart_intensity_reached");
            }
            SupervisionEvent::SupervisorShutdown { reason } => {
                tracing::info!(name: "supervisor_shutdown", %sup, %reason, "supervisor_shutdown");
            }
        }
    }
}

/// A callback that sees every event of a supervisor (tests, metrics).
#[derive(Clone)]
pub struct EventObserver(Arc<dyn Fn(&SupervisionEvent) + Send + Sync>);

impl EventObserver {
    /// Wraps a callback. It runs on the supervisor's thread: keep it short.
    pub fn new(f: impl Fn(&SupervisionEvent) + Send + Sync + 'static) -> Self {
        EventObserver(Arc::new(f))
    }

    pub(crate) fn notify(&self, ev: &SupervisionEvent) {
        (self.0)(ev)
    }
}

impl fmt::Debug for EventObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventObserver")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::Layer;

    use super::*;
    use crate::exit::ShutdownReason;

    /// Records the level of every event.
    #[derive(Clone, Default)]
    struct Levels(Arc<Mutex<Vec<tracing::Level>>>);

    impl<S: tracing::Subscriber> Layer<S> for Levels {
        fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
            if let Ok(mut levels) = self.0.lock() {
                levels.push(*event.metadata().level());
            }
        }
    }

    fn level_of(event: SupervisionEvent) -> Vec<tracing::Level> {
        let levels = Levels::default();
        let subscriber = tracing_subscriber::registry().with(levels.clone());
        tracing::subscriber::with_default(subscriber, || event.trace(None));
        let seen = levels.0.lock().map(|l| l.clone()).unwrap_or_default();
        seen
    }

    #[test]
    fn a_child_that_ends_cleanly_while_starting_is_no_error() {
        let ended = |reason| SupervisionEvent::ChildStartFailed {
            id: "channel".to_owned(),
            reason,
        };
        assert_eq!(level_of(ended(ExitReason::Normal)), [tracing::Level::DEBUG]);
        assert_eq!(
            level_of(ended(ExitReason::Shutdown(ShutdownReason::Requested))),
            [tracing::Level::DEBUG]
        );
        assert_eq!(
            level_of(ended(ExitReason::error("boom"))),
            [tracing::Level::ERROR]
        );
    }
}
