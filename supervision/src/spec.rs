//! Child specifications and supervisor flags, mirroring OTP's `child_spec()` and
//! `sup_flags()` (as used by `mria_rlog_sup.erl`).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_rt::ArbiterHandle;

use crate::error::SupervisionError;
use crate::pid::Pid;
use crate::pool::ArbiterPool;
use crate::process::{spawn_with, SpawnOptions};

/// How a supervisor restarts its children after one of them exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Restart only the child that exited.
    OneForOne,
    /// Terminate all other children (in reverse start order), then restart all of them.
    OneForAll,
    /// Terminate the children started after the one that exited, then restart it and them.
    RestForOne,
    /// Children are added at run time with `start_child` (one per session, one per
    /// connection), ids need not be unique, restarts are one-for-one, and a child that
    /// is not restarted is forgotten (Elixir's `DynamicSupervisor`, OTP's
    /// `simple_one_for_one`).
    Dynamic,
}

/// Supervisor flags: the strategy and the restart intensity (at most `intensity`
/// restarts within `period`, else the supervisor gives up and exits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupFlags {
    /// The restart strategy.
    pub strategy: Strategy,
    /// The most restarts allowed within `period`.
    pub intensity: u32,
    /// The sliding window for `intensity`.
    pub period: Duration,
}

impl SupFlags {
    /// Flags with OTP's defaults: intensity 1 within 5 seconds.
    pub fn new(strategy: Strategy) -> Self {
        SupFlags {
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
        }
    }

    /// Sets the restart intensity: at most `intensity` restarts within `period`.
    pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
        self.intensity = intensity;
        self.period = period;
        self
    }
}

/// When a child is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// Always restarted.
    Permanent,
    /// Restarted only after an abnormal exit (anything but `Normal` or `Shutdown(_)`).
    Transient,
    /// Never restarted.
    Temporary,
}

/// How a child is stopped by its supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Ask it to stop, wait this long, then kill it.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes (the norm for supervisors).
    Infinity,
    /// Kill it at once.
    BrutalKill,
}

/// Whether a child is a worker or a supervisor (informational, as in OTP; it sets the
/// default shutdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    /// An ordinary actor.
    Worker,
    /// A nested supervisor.
    Supervisor,
}

/// Which arbiter a child runs on.
#[derive(Debug, Clone, Default)]
pub enum Placement {
    /// The supervisor's own arbiter.
    #[default]
    Inherit,
    /// The next arbiter of the supervisor's pool, round-robin (its own arbiter if none).
    RoundRobin,
    /// The pool arbiter with this index (modulo the pool size).
    Pool(usize),
    /// This arbiter.
    Arbiter(ArbiterHandle),
}

/// What a start function is given.
#[derive(Debug, Clone)]
pub struct StartArgs {
    /// The supervisor: the child must be linked to it before it runs.
    pub parent: Pid,
    /// The arbiter chosen for the child.
    pub arbiter: ArbiterHandle,
    /// The supervisor's arbiter pool, handed down to nested supervisors.
    pub pool: Option<ArbiterPool>,
}

impl StartArgs {
    /// Spawn options that place and link a child as its supervisor expects.
    pub fn spawn_options(&self) -> SpawnOptions {
        SpawnOptions::new()
            .arbiter(self.arbiter.clone())
            .link(self.parent.clone())
    }
}

/// Starts one child and returns its pid (before it has finished starting; the
/// supervisor then waits for [`Pid::started`]).
pub type StartFn = Arc<dyn Fn(StartArgs) -> Result<Pid, SupervisionError> + Send + Sync>;

/// A child specification (OTP's `#{id, start, restart, shutdown, type}`).
#[derive(Clone)]
pub struct ChildSpec {
    /// The child id, unique within a static supervisor. A `Cow` so that the common
    /// literal id (`"channel"`, one child per connection) costs no allocation per child.
    pub id: Cow<'static, str>,
    /// How to start it.
    pub start: StartFn,
    /// When to restart it.
    pub restart: Restart,
    /// How to stop it.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Where to run it.
    pub placement: Placement,
}

impl ChildSpec {
    /// A spec with a raw start function: permanent worker, 5 s shutdown.
    pub fn new(id: impl Into<Cow<'static, str>>, start: StartFn) -> Self {
        ChildSpec {
            id: id.into(),
            start,
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_secs(5)),
            kind: ChildKind::Worker,
            placement: Placement::Inherit,
        }
    }

    /// A permanent worker running the actor that `factory` builds (on the child's
    /// arbiter thread, once per start and restart).
    pub fn worker<A, F>(id: impl Into<Cow<'static, str>>, factory: F) -> Self
    where
        A: Actor<Context = Context<A>>,
        F: Fn() -> A + Send + Sync + 'static,
    {
        let factory = Arc::new(factory);
        Self::new(
            id,
            Arc::new(move |args: StartArgs| {
                let factory = Arc::clone(&factory);
                spawn_with(args.spawn_options(), move |_| factory()).map(|s| s.pid)
            }),
        )
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: ChildKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets where the child runs.
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("placement", &self.placement)
            .finish_non_exhaustive()
    }
}
