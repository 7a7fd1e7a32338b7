//! Exit reasons and the messages that carry them ([`Exit`], [`Down`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use actix::Message;

use crate::pid::Pid;

/// Why a process ended, mirroring Erlang exit reasons.
///
/// `Normal` and `Shutdown(_)` are the *clean* reasons: a [`Transient`](crate::Restart::Transient)
/// child is not restarted after them, and a link does not propagate `Normal`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// The actor stopped by itself (`ctx.stop()`), with nothing to report.
    Normal,
    /// The process was asked to stop (by its supervisor, the tree, or an arbiter shutdown).
    Shutdown(ShutdownReason),
    /// An untrappable kill signal. Sent with [`Pid::exit`]; the victim then exits with
    /// [`ExitReason::Killed`], as in Erlang (`kill` in, `killed` out).
    Kill,
    /// The process was killed (brutal kill, or a shutdown timeout ran out).
    Killed,
    /// A handler, `started`, `stopping` or `stopped` panicked; holds the panic message.
    Panic(String),
    /// The actor stopped itself with an error (see [`ProcessContext::exit_with`](crate::ProcessContext::exit_with)).
    Error(String),
    /// The process was already gone when it was linked or monitored (Erlang's `noproc`).
    NoProc,
    /// The connection to the process's node was lost (for remote monitors and links).
    NoConnection,
}

impl ExitReason {
    /// True for the reasons after which a transient child is not restarted:
    /// `Normal` and any `Shutdown(_)` (OTP: `normal`, `shutdown`, `{shutdown, _}`).
    pub fn is_clean(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown(_))
    }

    /// Shorthand for `ExitReason::Error(msg.into())`.
    pub fn error(msg: impl Into<String>) -> Self {
        ExitReason::Error(msg.into())
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown(r) => write!(f, "shutdown({r})"),
            ExitReason::Kill => f.write_str("kill"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Panic(m) => write!(f, "panic({m})"),
            ExitReason::Error(m) => write!(f, "error({m})"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::NoConnection => f.write_str("noconnection"),
        }
    }
}

/// Why a process was shut down.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ShutdownReason {
    /// Its supervisor (or the owner of the tree) asked it to stop.
    Requested,
    /// A supervisor saw more than `intensity` restarts within `period` and gave up.
    ReachedMaxRestartIntensity,
    /// A supervisor could not start one of its children when it started.
    FailedToStartChild {
        /// The id of the child that failed.
        id: String,
        /// How it failed.
        reason: Box<ExitReason>,
    },
    /// The arbiter the process ran on stopped before the process did.
    ArbiterStopped,
    /// Any other reason given by the caller.
    Other(String),
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownReason::Requested => f.write_str("requested"),
            ShutdownReason::ReachedMaxRestartIntensity => {
                f.write_str("reached_max_restart_intensity")
            }
            ShutdownReason::FailedToStartChild { id, reason } => {
                write!(f, "failed_to_start_child({id}: {reason})")
            }
            ShutdownReason::ArbiterStopped => f.write_str("arbiter_stopped"),
            ShutdownReason::Other(m) => f.write_str(m),
        }
    }
}

/// An exit signal turned into a message, delivered to a process that traps exits
/// (see [`ProcessContext::trap_exit`](crate::ProcessContext::trap_exit)).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Exit {
    /// The process the signal came from: a linked process that died, or the caller of
    /// [`Pid::exit`] (`None` when called from outside any process).
    pub from: Option<Pid>,
    /// The reason it carries.
    pub reason: ExitReason,
}

/// Identifies one monitor, returned by [`Pid::monitor`] and repeated in its [`Down`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorRef(u64);

impl MonitorRef {
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        MonitorRef(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

impl fmt::Display for MonitorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}>", self.0)
    }
}

/// Sent once to a monitoring actor when the monitored process ends.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Down {
    /// The monitor this notice answers.
    pub mref: MonitorRef,
    /// The process that ended.
    pub pid: Pid,
    /// Why it ended (`NoProc` if it was already gone when the monitor was set).
    pub reason: ExitReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_reasons_are_normal_and_shutdown() {
        assert!(ExitReason::Normal.is_clean());
        assert!(ExitReason::Shutdown(ShutdownReason::Requested).is_clean());
        assert!(!ExitReason::Killed.is_clean());
        assert!(!ExitReason::Panic("x".into()).is_clean());
        assert!(!ExitReason::error("boom").is_clean());
    }

    #[test]
    fn reasons_display_in_erlang_vocabulary() {
        assert_eq!(ExitReason::Killed.to_string(), "killed");
        assert_eq!(
            ExitReason::Shutdown(ShutdownReason::ReachedMaxRestartIntensity).to_string(),
            "shutdown(reached_max_restart_intensity)"
        );
    }
}
