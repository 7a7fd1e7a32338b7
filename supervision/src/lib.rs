//! girder-supervision: an Erlang/OTP-style runtime on actix.
//!
//! actix gives actors, mailboxes and one event loop per [`Arbiter`](actix_rt::Arbiter)
//! thread; its own `Supervisor` restarts one actor in place. This crate adds the OTP
//! process model on top:
//!
//! - **Processes**: any `actix::Actor<Context = Context<Self>>` started with [`spawn`] or
//!   by a supervisor gets a [`Pid`]: a cheap cloneable identity through which others
//!   [link](Pid::link), [monitor](Pid::monitor), send [exit signals](Pid::exit),
//!   [shut down](Pid::shutdown), [kill](Pid::kill) or [wait](Pid::wait) for it.
//! - **Exit reasons** ([`ExitReason`]): `Normal`, `Shutdown(_)`, `Killed`, `Panic(msg)`,
//!   `Error(msg)`, `NoProc`, `NoConnection`. An actor stops with a reason through
//!   [`ProcessContext::exit_with`]; `ctx.stop()` means `Normal`.
//! - **Links** propagate non-normal exits both ways; a process that
//!   [traps exits](ProcessContext::trap_exit) gets [`Exit`] messages instead.
//!   **Monitors** deliver one [`Down`] to any actor.
//! - **Registry** ([`Registry`]): local names, freed when their process dies.
//! - **Supervisors** ([`SupervisorSpec`], [`ChildSpec`], [`SupFlags`]): `one_for_one`,
//!   `one_for_all`, `rest_for_one` and `dynamic` children; permanent / transient /
//!   temporary restarts; restart intensity; ordered start, reverse-ordered shutdown.
//! - **Arbiter pool** ([`ArbiterPool`]): one arbiter per core; children placed on a
//!   chosen arbiter or round-robin ([`Placement`]).
//! - **Node top**: [`SupervisorSpec::start_root`], then [`run_until`] +
//!   [`shutdown_signal`] to stop the tree gracefully on SIGTERM, or
//!   [`run_until_signal`] with [`ShutdownSignals`] caught before start-up.
//!
//! ```text
//!                 root (one_for_one)  ── SupervisorRef::shutdown / run_until(SIGTERM)
//!                 │  links + trap_exit: every child exit is an `Exit` message
//!      ┌──────────┼───────────────────────┐
//!   cluster     router                 sessions (dynamic)
//!  (rest_for_one) (one_for_one)          │ start_child(spec) at run time
//!   ├─ dist      ├─ shard 0 @arbiter 0    ├─ session "a"  (transient)
//!   └─ members   └─ shard 1 @arbiter 1    └─ session "b"
//!
//!   child dies ──Exit{from,reason}──▶ supervisor ──strategy──▶ stop (reverse) / start (in order)
//!   > intensity restarts in period ──▶ supervisor exits Shutdown(ReachedMaxRestartIntensity)
//!                                      ──▶ its parent applies *its* strategy
//! ```
//!
//! # Making an actor a supervised process
//!
//! Nothing to implement: an ordinary actor becomes a child with one line, and uses the
//! [`ProcessContext`] extension for the rest.
//!
//! ```
//! use std::time::Duration;
//! use actix::prelude::*;
//! use girder_supervision::*;
//!
//! struct Shard { n: u32 }
//! impl Actor for Shard {
//!     type Context = Context<Self>;
//!     fn started(&mut self, ctx: &mut Context<Self>) {
//!         let _ = ctx.register(&format!("shard:{}", self.n));
//!     }
//! }
//!
//! #[actix_rt::main]
//! async fn main() -> Result<(), SupervisionError> {
//!     let root = SupervisorSpec::new(SupFlags::new(Strategy::OneForOne).intensity(3, Duration::from_secs(5)))
//!         .child(ChildSpec::worker("shard-0", || Shard { n: 0 }))
//!         .child(ChildSpec::worker("shard-1", || Shard { n: 1 }).restart(Restart::Transient))
//!         .start_root()
//!         .await?;
//!     let shard0 = Registry::global().whereis("shard:0").expect("registered in started");
//!     shard0.exit(ExitReason::error("boom"));            // crash it...
//!     assert!(matches!(shard0.wait().await, ExitReason::Error(_)));
//!     // ...and the supervisor starts a new one under the same name
//!     let reason = root.shutdown().await;                // whole tree, reverse order
//!     assert_eq!(reason, ExitReason::Shutdown(ShutdownReason::Requested));
//!     Ok(())
//! }
//! ```
//!
//! # How panics become exits
//!
//! [`spawn`] builds the actix `Context` itself and runs its `ContextFut` inside a small
//! task wrapper instead of `actix_rt::spawn`ing it bare. Every poll of the actor runs in
//! `catch_unwind` with the process's pid set as "current", so a panic in `started`, a
//! handler, an `ActorFuture` in the context, `stopping` or `stopped` is caught *in that
//! task*: the actor is dropped (actix's drop glue runs `stopping`/`stopped`, again under
//! `catch_unwind`), the process ends with `ExitReason::Panic(message)`, and links,
//! monitors, names and the supervisor are told. Other actors on the same arbiter thread
//! never see the unwind, so a panic cannot take an arbiter down. (tokio would also catch
//! an escaped panic inside the arbiter's `LocalSet`, but it drops the actor *during*
//! unwinding, where a second panic aborts the OS process; catching first avoids that.)
//! If the task is dropped without finishing (its arbiter stopped), the wrapper's `Drop`
//! reports `Shutdown(ArbiterStopped)`. [`Pid::kill`] sets a flag and wakes the task,
//! which drops the actor at its next poll, even when it is blocked in `ctx.wait`.
//!
//! Exit signals are queued per process and applied by a listener future living in the
//! actor's context; that future also means a process, like an Erlang process, does not
//! stop when its last `Addr` is dropped.
//!
//! # Layout
//!
//! - `exit.rs`: [`ExitReason`], [`ShutdownReason`], [`Exit`], [`Down`], [`MonitorRef`].
//! - `pid.rs`: [`Pid`] and the shared per-process record (links, monitors, names,
//!   signal queue, lifecycle); `pid/links.rs` (the link set, inline for one link).
//! - `process.rs`: [`spawn`], the panic-catching task wrapper, the signal listener,
//!   [`ProcessContext`].
//! - `registry.rs`: [`Registry`].
//! - `spec.rs`: [`ChildSpec`], [`SupFlags`], [`Strategy`], [`Restart`], [`Shutdown`],
//!   [`ChildKind`], [`Placement`].
//! - `supervisor.rs`: the [`Supervisor`] actor, its messages and [`SupervisorRef`];
//!   `supervisor/child.rs` (the per-child record), `supervisor/intensity.rs` (restart
//!   intensity), `supervisor/ops.rs` (ordered start, reverse stop, the shutdown
//!   protocol).
//! - `event.rs`: [`SupervisionEvent`] (also emitted as `tracing` events named
//!   `child_started`, `child_exited`, `child_restarted`, `child_terminated`,
//!   `child_start_failed`, `max_restart_intensity_reached`, `supervisor_shutdown`).
//! - `pool.rs`: [`ArbiterPool`].
//! - `node.rs`: [`run_until`], [`shutdown_signal`], [`run_until_signal`],
//!   [`ShutdownSignals`].
//! - `error.rs`: [`SupervisionError`].

mod error;
mod event;
mod exit;
mod node;
mod pid;
mod pool;
mod process;
mod registry;
mod spec;
mod supervisor;

pub use error::SupervisionError;
pub use event::{EventObserver, SupervisionEvent};
pub use exit::{Down, Exit, ExitReason, MonitorRef, ShutdownReason};
pub use node::{run_until, run_until_signal, shutdown_signal, RunEnd, ShutdownSignals};
pub use pid::Pid;
pub use pool::ArbiterPool;
pub use process::{spawn, spawn_with, ProcessContext, SpawnOptions, Spawned, DEFAULT_MAILBOX};
pub use registry::Registry;
pub use spec::{
    ChildKind, ChildSpec, Placement, Restart, Shutdown, StartArgs, StartFn, Strategy, SupFlags,
};
pub use supervisor::{
    ChildInfo, ChildRef, StartChild, Supervisor, SupervisorRef, SupervisorSpec, TerminateChild,
    WhichChildren,
};
