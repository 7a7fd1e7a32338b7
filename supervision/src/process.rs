//! Running an actix actor as a process: [`spawn`], the task wrapper that turns panics
//! and kills into exits, and the [`ProcessContext`] extension on `Context`.

use std::any::Any;
use std::cell::RefCell;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context as TaskContext, Poll};

use actix::dev::channel;
use actix::prelude::*;
use actix_rt::ArbiterHandle;

use crate::error::SupervisionError;
use crate::exit::{Down, Exit, ExitReason, MonitorRef, ShutdownReason};
use crate::pid::{Pid, Signal};
use crate::registry::Registry;

thread_local! {
    static CURRENT: RefCell<Option<Pid>> = const { RefCell::new(None) };
}

pub(crate) fn current() -> Option<Pid> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Sets the current pid for the duration of a poll or drop, restoring the previous one.
struct Enter(Option<Pid>);

impl Enter {
    fn new(pid: &Pid) -> Self {
        Enter(CURRENT.with(|c| c.replace(Some(pid.clone()))))
    }
}

impl Drop for Enter {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = prev);
    }
}

/// The default mailbox capacity of a process (actix's default).
pub const DEFAULT_MAILBOX: usize = 16;

/// Where and how to start a process.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    arbiter: Option<ArbiterHandle>,
    link: Option<Pid>,
    mailbox: Option<usize>,
}

impl SpawnOptions {
    /// Start on the current arbiter, unlinked, with the default mailbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start on this arbiter instead of the current one.
    pub fn arbiter(mut self, arbiter: ArbiterHandle) -> Self {
        self.arbiter = Some(arbiter);
        self
    }

    /// Link the new process to `pid` before it runs (so no exit can be missed).
    pub fn link(mut self, pid: Pid) -> Self {
        self.link = Some(pid);
        self
    }

    /// Bounded mailbox capacity (`send` waits, `try_send` fails when it is full).
    pub fn mailbox(mut self, capacity: usize) -> Self {
        self.mailbox = Some(capacity);
        self
    }
}

/// A started process: its pid and its actor's address.
#[derive(Debug)]
pub struct Spawned<A: Actor> {
    /// The process identity.
    pub pid: Pid,
    /// The actor's address.
    pub addr: Addr<A>,
}

/// Starts an actor as a process on the current arbiter. `f` builds the actor on its
/// arbiter's thread (the actor need not be `Send`).
///
/// Unlike a plain actix actor, a process does not stop when its last `Addr` is dropped:
/// like an Erlang process it lives until it stops itself, gets an exit signal, or is
/// shut down by its supervisor.
pub fn spawn<A, F>(f: F) -> Result<Spawned<A>, SupervisionError>
where
    A: Actor<Context = Context<A>>,
    F: FnOnce(&mut Context<A>) -> A + Send + 'static,
{
    spawn_with(SpawnOptions::new(), f)
}

/// Starts an actor as a process with [`SpawnOptions`].
pub fn spawn_with<A, F>(opts: SpawnOptions, f: F) -> Result<Spawned<A>, SupervisionError>
where
    A: Actor<Context = Context<A>>,
    F: FnOnce(&mut Context<A>) -> A + Send + 'static,
{
    let arbiter = match opts.arbiter {
        Some(a) => a,
        None => actix_rt::Arbiter::try_current().ok_or(SupervisionError::NoArbiter)?,
    };
    let pid = Pid::new();
    let (tx, rx) = channel::channel::<A>(opts.mailbox.unwrap_or(DEFAULT_MAILBOX));
    let addr = Addr::new(tx);
    pid.set_addr(addr.downgrade());
    if let Some(parent) = &opts.link {
        pid.link(parent);
    }
    let guard = Unstarted(Some(pid.clone()));
    let accepted = arbiter.spawn_fn(move || {
        let mut guard = guard;
        let Some(pid) = guard.0.take() else { return };
        let mut ctx = Context::with_receiver(rx);
        ctx.spawn(SignalListener);
        let act = {
            let _enter = Enter::new(&pid);
            catch_unwind(AssertUnwindSafe(|| f(&mut ctx)))
        };
        match act {
            Ok(act) => {
                let fut = ctx.into_future(act);
                actix_rt::spawn(ProcessTask {
                    fut: Some(fut),
                    pid,
                });
            }
            Err(payload) => pid.terminate(ExitReason::Panic(panic_message(&*payload))),
        }
    });
    if !accepted {
        pid.terminate(ExitReason::Shutdown(ShutdownReason::ArbiterStopped));
        return Err(SupervisionError::ArbiterStopped);
    }
    Ok(Spawned { pid, addr })
}

/// Ends the pid if the spawn closure is dropped without running (arbiter stopped).
struct Unstarted(Option<Pid>);

impl Drop for Unstarted {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            pid.terminate(ExitReason::Shutdown(ShutdownReason::ArbiterStopped));
        }
    }
}

/// Extracts the message of a panic payload (`&str` or `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Wraps an actor's `ContextFut`: every poll runs inside `catch_unwind` with the
/// current pid set, so a panic in any handler becomes `ExitReason::Panic` for this
/// process alone; a kill flag drops the actor at its next poll. (Whether
/// the start was acknowledged is a flag in the pid's cell: this wrapper is in
/// every process's task, so it holds nothing else.)
struct ProcessTask<F> {
    fut: Option<F>,
    pid: Pid,
}

impl<F> ProcessTask<F> {
    /// Drops the actor (actix's drop glue may run `stopping`/`stopped`), containing any
    /// panic there, then runs the exit.
    fn finish(&mut self, reason: ExitReason) {
        if let Some(fut) = self.fut.take() {
            let _enter = Enter::new(&self.pid);
            // A panic in `stopped` during teardown must not escape; the first reason wins.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(fut)));
        }
        self.pid.terminate(reason);
    }
}

impl<F: Future<Output = ()> + Unpin> Future for ProcessTask<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = &mut *self;
        this.pid.cell().waker.register(cx.waker());
        if this.pid.cell().kill.load(Ordering::Acquire) {
            this.finish(ExitReason::Killed);
            return Poll::Ready(());
        }
        let Some(fut) = this.fut.as_mut() else {
            return Poll::Ready(());
        };
        let res = {
            let _enter = Enter::new(&this.pid);
            catch_unwind(AssertUnwindSafe(|| Pin::new(fut).poll(cx)))
        };
        match res {
            Ok(Poll::Pending) => {
                let cell = this.pid.cell();
                if !cell.polled.load(Ordering::Relaxed) {
                    cell.polled.store(true, Ordering::Relaxed);
                    if !this.pid.manual_ack() {
                        this.pid.ack_started();
                    }
                }
                Poll::Pending
            }
            Ok(Poll::Ready(())) => {
                let reason = this.pid.requested_exit().unwrap_or(ExitReason::Normal);
                this.finish(reason);
                Poll::Ready(())
            }
            Err(payload) => {
                let msg = panic_message(&*payload);
                tracing::debug!(name: "process_panicked", pid = %this.pid, panic = %msg);
                this.finish(ExitReason::Panic(msg));
                Poll::Ready(())
            }
        }
    }
}

impl<F> Drop for ProcessTask<F> {
    fn drop(&mut self) {
        // Dropped before finishing: the arbiter's event loop went away under us.
        if self.fut.is_some() {
            self.finish(ExitReason::Shutdown(ShutdownReason::ArbiterStopped));
        }
    }
}

/// Lives in the actor's context and applies exit signals to it. It is polled with the
/// process task's waker, which [`Pid`] wakes for every queued signal. It never
/// finishes, which is what keeps a process alive without any `Addr`. It holds nothing
/// (so its box allocates nothing): it is polled inside its process task, whose pid is
/// the thread's current one.
struct SignalListener;

impl<A> ActorFuture<A> for SignalListener
where
    A: Actor<Context = Context<A>>,
{
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        _act: &mut A,
        ctx: &mut Context<A>,
        _task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let pid = CURRENT.with(|c| c.borrow().as_ref().filter(|p| p.has_signals()).cloned());
        let Some(pid) = pid else {
            return Poll::Pending;
        };
        while let Some(sig) = pid.next_signal() {
            match sig {
                Signal::Shutdown(reason) => {
                    pid.request_exit(reason);
                    ctx.stop();
                }
                Signal::Exit(exit) => {
                    if let Some(exit) = pid.deliver_trapped(exit) {
                        if exit.reason != ExitReason::Normal {
                            pid.request_exit(exit.reason);
                            ctx.stop();
                        }
                    }
                }
            }
        }
        Poll::Pending
    }
}

/// Process operations on an actor's own context: the few lines that make an actix actor
/// an OTP process. Methods return [`SupervisionError::NotAProcess`] when the actor was
/// not started with [`spawn`] or a [`ChildSpec`](crate::ChildSpec).
///
/// ```
/// use actix::prelude::*;
/// use girder_supervision::{ExitReason, Exit, ProcessContext};
///
/// struct Session;
/// impl Actor for Session {
///     type Context = Context<Self>;
///     fn started(&mut self, ctx: &mut Context<Self>) {
///         ctx.trap_exit(); // linked exits arrive as `Exit` messages
///         let _ = ctx.register("session:42");
///     }
/// }
/// impl Handler<Exit> for Session {
///     type Result = ();
///     fn handle(&mut self, exit: Exit, ctx: &mut Context<Self>) {
///         // stop with the linked process's reason
///         ctx.exit_with(exit.reason);
///     }
/// }
/// ```
pub trait ProcessContext<A: Actor> {
    /// This actor's pid, if it runs as a process.
    fn pid(&self) -> Option<Pid>;
    /// Stops the actor, reporting `reason` to links, monitors and the supervisor
    /// (`ctx.stop()` reports `Normal`).
    fn exit_with(&mut self, reason: ExitReason);
    /// Turns incoming exit signals (except `Kill` and supervisor shutdown) into [`Exit`]
    /// messages for this actor.
    fn trap_exit(&mut self)
    where
        A: Handler<Exit>;
    /// Links this process to `other`.
    fn link(&self, other: &Pid) -> Result<(), SupervisionError>;
    /// Monitors `other`: this actor gets a [`Down`] when it ends.
    fn monitor(&self, other: &Pid) -> MonitorRef
    where
        A: Handler<Down>;
    /// Registers this process under `name` in the global [`Registry`].
    fn register(&self, name: &str) -> Result<(), SupervisionError>;
}

impl<A> ProcessContext<A> for Context<A>
where
    A: Actor<Context = Context<A>>,
{
    fn pid(&self) -> Option<Pid> {
        current()
    }

    fn exit_with(&mut self, reason: ExitReason) {
        if let Some(pid) = current() {
            pid.request_exit(reason);
        }
        self.stop();
    }

    fn trap_exit(&mut self)
    where
        A: Handler<Exit>,
    {
        if let Some(pid) = current() {
            let addr = self.address();
            pid.set_trap(Some(Box::new(move |exit| addr.do_send(exit))));
        }
    }

    fn link(&self, other: &Pid) -> Result<(), SupervisionError> {
        let pid = current().ok_or(SupervisionError::NotAProcess)?;
        pid.link(other);
        Ok(())
    }

    fn monitor(&self, other: &Pid) -> MonitorRef
    where
        A: Handler<Down>,
    {
        other.monitor(self.address().recipient())
    }

    fn register(&self, name: &str) -> Result<(), SupervisionError> {
        let pid = current().ok_or(SupervisionError::NotAProcess)?;
        Registry::global().register(name, &pid)
    }
}
