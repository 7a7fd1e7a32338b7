//! The error type of this layer.

use thiserror::Error;

use crate::exit::ExitReason;

/// Everything that can go wrong when starting, naming or managing processes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SupervisionError {
    /// A name is already registered to another live process.
    #[error("name {0:?} is already registered")]
    NameTaken(String),
    /// The process already has a name in this registry.
    #[error("process {pid} is already registered as {name:?}")]
    AlreadyRegistered {
        /// The process.
        pid: String,
        /// Its current name.
        name: String,
    },
    /// The target process is not alive.
    #[error("no such process")]
    NoProc,
    /// The calling actor was not started as a process (see [`spawn`](crate::spawn)).
    #[error("the actor is not a supervised process")]
    NotAProcess,
    /// There is no actix system or arbiter to start on.
    #[error("no running actix system or arbiter")]
    NoArbiter,
    /// The arbiter chosen for a process has stopped.
    #[error("the arbiter has stopped")]
    ArbiterStopped,
    /// A child could not start: it exited (or panicked) before its `started` returned.
    #[error("child {id:?} failed to start: {reason}")]
    StartFailed {
        /// The child id.
        id: String,
        /// Its exit reason.
        reason: ExitReason,
    },
    /// A static supervisor already has a child with this id.
    #[error("duplicate child id {0:?}")]
    DuplicateChildId(String),
    /// No child with this id or pid.
    #[error("no child {0:?}")]
    NoSuchChild(String),
    /// The supervisor did not answer (it is gone or its mailbox is closed).
    #[error("supervisor unavailable")]
    SupervisorUnavailable,
    /// The arbiter pool was asked for zero arbiters.
    #[error("an arbiter pool needs at least one arbiter")]
    EmptyPool,
    /// An operating-system signal handler could not be installed.
    #[error("cannot install signal handler: {0}")]
    Signal(String),
}
