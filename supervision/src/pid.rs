//! Process identity: [`Pid`] and the shared record behind it.
//!
//! A `Pid` is an `Arc` to a [`Cell`] holding everything other processes may touch
//! (links, monitors, registered names, the exit-signal queue, the lifecycle state).
//! The actor itself lives on its arbiter; only the cell is shared between threads.
//!
//! A broker runs one process per connection, so the cell is kept to what every
//! process uses (112 bytes with its `Arc` counts): its id, kill flag and waker, the
//! usual single link (to the supervisor, inline: [`links::Links`]), its address and
//! where it is in its life. What only some processes need (monitors, names, an exit
//! trap, queued signals, lifecycle waiters, the exit reason) lives in a [`Rare`] part
//! allocated the first time one of them is used.

mod links;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use actix::{Actor, Addr, Recipient, WeakAddr};
use futures::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::sync::Notify;

use self::links::Links;
use crate::exit::{Down, Exit, ExitReason, MonitorRef, ShutdownReason};
use crate::registry::Registry;

/// A signal queued for a process; handled inside the actor's own context.
#[derive(Debug)]
pub(crate) enum Signal {
    /// An exit signal (from a link or [`Pid::exit`]); trappable.
    Exit(Exit),
    /// A request to stop gracefully with this reason; not trappable (OTP: the
    /// parent's `shutdown` always ends a child).
    Shutdown(ExitReason),
}

/// Where a process is in its life (the exit reason is in [`Rare::reason`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Phase {
    /// Spawned, `started` not yet returned (or the process delays its start ack).
    #[default]
    Starting,
    /// Started and running.
    Running,
    /// Ended.
    Exited,
}

/// Where a process is in its life, with the reason once it ended.
enum Lifecycle<'a> {
    Starting,
    Running,
    Exited(&'a ExitReason),
}

type TrapFn = Box<dyn Fn(Exit) + Send + Sync>;

/// The state every process uses.
#[derive(Default)]
struct State {
    links: Links,
    /// A `WeakAddr<A>`: an `Addr` clone would allocate a sender record of its own, and
    /// the actor's context keeps the mailbox alive anyway.
    addr: Option<Box<dyn Any + Send + Sync>>,
    /// Allocated at the first use of anything in it.
    rare: Option<Box<Rare>>,
    phase: Phase,
    /// The end has run (names freed, links signalled); set before `phase` becomes
    /// `Exited`, which also waits for the names to be freed. Signals sent from then
    /// on are dropped (they would otherwise pile up, and `Exit { from }` pids could
    /// keep dead processes alive in a cycle).
    exited: bool,
    manual_ack: bool,
}

/// The state only some processes use.
#[derive(Default)]
struct Rare {
    monitors: HashMap<MonitorRef, Recipient<Down>>,
    names: Vec<(Registry, String)>,
    trap: Option<TrapFn>,
    /// The reason the process asked to exit with, or was told to exit with.
    requested: Option<ExitReason>,
    /// The reason it ended with (set with `Phase::Exited`).
    reason: Option<ExitReason>,
    /// Exit signals not yet handled by the process.
    signals: VecDeque<Signal>,
    /// Notified whenever the phase changes; created by the first waiter.
    lifecycle_changed: Option<Arc<Notify>>,
}

impl Rare {
    fn is_unused(&self) -> bool {
        self.monitors.is_empty()
            && self.names.is_empty()
            && self.trap.is_none()
            && self.requested.is_none()
            && self.reason.is_none()
            && self.signals.is_empty()
            && self.lifecycle_changed.is_none()
    }
}

impl State {
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Box::default)
    }

    fn lifecycle(&self) -> Lifecycle<'_> {
        match self.phase {
            Phase::Starting => Lifecycle::Starting,
            Phase::Running => Lifecycle::Running,
            Phase::Exited => {
                static NORMAL: ExitReason = ExitReason::Normal;
                let reason = self.rare.as_ref().and_then(|r| r.reason.as_ref());
                Lifecycle::Exited(reason.unwrap_or(&NORMAL))
            }
        }
    }

    /// Changes the phase; returns the waiters to notify (outside the lock). Waiters
    /// that want a later phase register again, so a process whose only rare state
    /// was its waiters (a supervisor awaiting its start) goes back to none.
    fn set_phase(&mut self, phase: Phase) -> Option<Arc<Notify>> {
        self.phase = phase;
        let rare = self.rare.as_mut()?;
        let waiters = rare.lifecycle_changed.take();
        if rare.is_unused() {
            self.rare = None;
        }
        waiters
    }
}

/// The shared record of one process.
pub(crate) struct Cell {
    id: u64,
    pub(crate) kill: AtomicBool,
    /// Set by the process task after its first poll (which acknowledges the
    /// start unless the process does so itself).
    pub(crate) polled: AtomicBool,
    /// The process task's waker: woken by a kill and by every queued signal.
    pub(crate) waker: AtomicWaker,
    state: Mutex<State>,
}

/// A cheap, cloneable handle to a process: a unique id plus the ability to send it exit
/// signals, link to it, monitor it, and wait for its end. Works with any actix actor
/// started through [`spawn`](crate::spawn) or a [`ChildSpec`](crate::ChildSpec).
///
/// Two `Pid`s are equal when they name the same process.
#[derive(Clone)]
pub struct Pid(Arc<Cell>);

impl Pid {
    /// A fresh process record (one allocation: the cell).
    pub(crate) fn new() -> Pid {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let cell = Cell {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            kill: AtomicBool::new(false),
            polled: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            state: Mutex::new(State::default()),
        };
        Pid(Arc::new(cell))
    }

    pub(crate) fn cell(&self) -> &Cell {
        &self.0
    }

    /// The process's unique id (unique within this OS process).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The process currently running on this thread: set while its actor is polled, so
    /// it is the caller's own pid inside handlers, `started`, `stopping` and `stopped`
    /// (Erlang's `self()`).
    pub fn current() -> Option<Pid> {
        crate::process::current()
    }

    /// True until the process has ended.
    pub fn is_alive(&self) -> bool {
        self.0.state.lock().phase != Phase::Exited
    }

    /// The exit reason, once the process has ended.
    pub fn exit_reason(&self) -> Option<ExitReason> {
        match self.0.state.lock().lifecycle() {
            Lifecycle::Exited(r) => Some(r.clone()),
            _ => None,
        }
    }

    /// The actor's address, if the process runs an actor of type `A` and is alive.
    pub fn addr<A: Actor>(&self) -> Option<Addr<A>> {
        let weak = {
            let st = self.0.state.lock();
            st.addr.as_ref()?.downcast_ref::<WeakAddr<A>>()?.clone()
        };
        weak.upgrade()
    }

    pub(crate) fn set_addr<A: Actor>(&self, addr: WeakAddr<A>) {
        self.0.state.lock().addr = Some(Box::new(addr));
    }

    /// Waits until `f` accepts the lifecycle state and returns what it mapped it to.
    async fn wait_for<T>(&self, f: impl Fn(Lifecycle<'_>) -> Option<T>) -> T {
        loop {
            let notify = {
                let mut st = self.0.state.lock();
                if let Some(out) = f(st.lifecycle()) {
                    return out;
                }
                Arc::clone(st.rare().lifecycle_changed.get_or_insert_default())
            };
            let notified = notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                // Registered before the state is read again, so a change from now on
                // wakes us, provided the change has not already taken these waiters.
                let st = self.0.state.lock();
                if let Some(out) = f(st.lifecycle()) {
                    return out;
                }
                let current = st.rare.as_ref().and_then(|r| r.lifecycle_changed.as_ref());
                if !current.is_some_and(|c| Arc::ptr_eq(c, &notify)) {
                    continue;
                }
            }
            notified.await;
        }
    }

    /// Waits until the process has ended and returns its reason.
    pub async fn wait(&self) -> ExitReason {
        self.wait_for(|l| match l {
            Lifecycle::Exited(r) => Some(r.clone()),
            _ => None,
        })
        .await
    }

    /// Waits until the process has started (its `started` returned, or for a supervisor,
    /// all its children started). Returns the exit reason if it ended first.
    pub async fn started(&self) -> Result<(), ExitReason> {
        self.wait_for(|l| match l {
            Lifecycle::Starting => None,
            Lifecycle::Running => Some(Ok(())),
            Lifecycle::Exited(r) => Some(Err(r.clone())),
        })
        .await
    }

    /// Sends an exit signal, like Erlang's `exit(Pid, Reason)`:
    /// - `Kill` ends the process at once, untrappable, with reason `Killed`;
    /// - a process that traps exits gets an [`Exit`] message instead;
    /// - otherwise `Normal` is ignored and any other reason stops it with that reason.
    pub fn exit(&self, reason: ExitReason) {
        if reason == ExitReason::Kill {
            self.kill();
        } else {
            let from = Pid::current();
            self.signal(Signal::Exit(Exit { from, reason }));
        }
    }

    /// Asks the process to stop gracefully (its `stopping`/`stopped` run) with
    /// `Shutdown(reason)`. Not trappable. Use [`Pid::wait`] to await the end.
    pub fn shutdown(&self, reason: ShutdownReason) {
        self.signal(Signal::Shutdown(ExitReason::Shutdown(reason)));
    }

    /// Ends the process at once with `Killed`: its task is dropped at its next poll, even
    /// if it is blocked in `ctx.wait`. (A handler that never yields cannot be killed.)
    pub fn kill(&self) {
        self.0.kill.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    pub(crate) fn signal(&self, sig: Signal) {
        {
            let mut st = self.0.state.lock();
            if st.exited {
                // The process is already gone: nothing to do (`sig` drops unlocked).
                drop(st);
                return;
            }
            st.rare().signals.push_back(sig);
        }
        self.0.waker.wake();
    }

    /// Whether signals wait in the queue.
    pub(crate) fn has_signals(&self) -> bool {
        let st = self.0.state.lock();
        st.rare.as_ref().is_some_and(|r| !r.signals.is_empty())
    }

    /// The next queued signal, if any (the process's listener drains the queue whenever
    /// the task is woken).
    pub(crate) fn next_signal(&self) -> Option<Signal> {
        self.0.state.lock().rare.as_mut()?.signals.pop_front()
    }

    /// Links two processes both ways: when one ends with a reason other than `Normal`,
    /// the other gets an exit signal with that reason. Linking to a dead process sends
    /// `NoProc` to `self`.
    pub fn link(&self, other: &Pid) {
        if self == other {
            return;
        }
        {
            let mut st = self.0.state.lock();
            if st.exited {
                return;
            }
            st.links.insert(other.clone());
        }
        let other_dead = {
            let mut st = other.0.state.lock();
            if st.exited {
                true
            } else {
                st.links.insert(self.clone());
                false
            }
        };
        if other_dead {
            self.0.state.lock().links.remove(other.id());
            self.signal(Signal::Exit(Exit {
                from: Some(other.clone()),
                reason: ExitReason::NoProc,
            }));
        }
    }

    /// Removes a link in both directions (no signal is sent).
    pub fn unlink(&self, other: &Pid) {
        self.0.state.lock().links.remove(other.id());
        other.0.state.lock().links.remove(self.id());
    }

    /// True if `self` is linked to `other`.
    pub fn is_linked(&self, other: &Pid) -> bool {
        self.0.state.lock().links.contains(other.id())
    }

    /// Monitors the process: `to` receives exactly one [`Down`] when it ends (at once,
    /// with `NoProc`, if it is already gone). Any actor can monitor, process or not.
    pub fn monitor(&self, to: Recipient<Down>) -> MonitorRef {
        let mref = MonitorRef::next();
        let mut st = self.0.state.lock();
        if st.exited {
            drop(st);
            let reason = self.exit_reason().unwrap_or(ExitReason::NoProc);
            to.do_send(Down {
                mref,
                pid: self.clone(),
                reason,
            });
        } else {
            st.rare().monitors.insert(mref, to);
        }
        mref
    }

    /// Removes a monitor; returns false if it had already fired or never existed.
    pub fn demonitor(&self, mref: MonitorRef) -> bool {
        let mut st = self.0.state.lock();
        st.rare
            .as_mut()
            .is_some_and(|rare| rare.monitors.remove(&mref).is_some())
    }

    pub(crate) fn add_name(&self, registry: &Registry, name: &str) -> Result<(), NameError> {
        let mut st = self.0.state.lock();
        if st.exited {
            return Err(NameError::Dead);
        }
        let names = &mut st.rare().names;
        if let Some((_, n)) = names.iter().find(|(r, _)| r.same(registry)) {
            return Err(NameError::HasName(n.clone()));
        }
        names.push((registry.clone(), name.to_owned()));
        Ok(())
    }

    pub(crate) fn remove_name(&self, registry: &Registry) {
        if let Some(rare) = self.0.state.lock().rare.as_mut() {
            rare.names.retain(|(r, _)| !r.same(registry));
        }
    }

    pub(crate) fn set_trap(&self, trap: Option<TrapFn>) {
        let mut st = self.0.state.lock();
        if trap.is_some() || st.rare.is_some() {
            st.rare().trap = trap;
        }
    }

    /// True if the process turns exit signals into [`Exit`] messages.
    pub fn traps_exits(&self) -> bool {
        let st = self.0.state.lock();
        st.rare.as_ref().is_some_and(|r| r.trap.is_some())
    }

    /// Delivers an exit to the trap handler; returns it back if exits are not trapped.
    pub(crate) fn deliver_trapped(&self, exit: Exit) -> Option<Exit> {
        let st = self.0.state.lock();
        match st.rare.as_ref().and_then(|r| r.trap.as_ref()) {
            Some(trap) => {
                trap(exit);
                None
            }
            None => Some(exit),
        }
    }

    /// Records the reason to report when the actor stops (first one wins).
    pub(crate) fn request_exit(&self, reason: ExitReason) {
        let mut st = self.0.state.lock();
        let requested = &mut st.rare().requested;
        if requested.is_none() {
            *requested = Some(reason);
        }
    }

    pub(crate) fn requested_exit(&self) -> Option<ExitReason> {
        self.0.state.lock().rare.as_ref()?.requested.clone()
    }

    pub(crate) fn set_manual_ack(&self) {
        self.0.state.lock().manual_ack = true;
    }

    pub(crate) fn manual_ack(&self) -> bool {
        self.0.state.lock().manual_ack
    }

    /// Marks the process as started (wakes [`Pid::started`] waiters).
    pub(crate) fn ack_started(&self) {
        let waiters = {
            let mut st = self.0.state.lock();
            if st.phase != Phase::Starting {
                return;
            }
            st.set_phase(Phase::Running)
        };
        if let Some(waiters) = waiters {
            waiters.notify_waiters();
        }
    }

    /// Runs the end of a process exactly once: frees its names, signals its links,
    /// notifies its monitors, then publishes the reason to [`Pid::wait`]ers.
    pub(crate) fn terminate(&self, reason: ExitReason) {
        let (links, rare) = {
            let mut st = self.0.state.lock();
            if st.exited {
                return;
            }
            st.exited = true;
            st.addr = None;
            let rare = st.rare.as_mut().map(|r| {
                (
                    std::mem::take(&mut r.monitors),
                    std::mem::take(&mut r.names),
                    r.trap.take(),
                    std::mem::take(&mut r.signals),
                )
            });
            (std::mem::take(&mut st.links), rare)
        };
        // The trap and the signals nobody will handle are dropped unlocked.
        let (monitors, names, _trap, _pending) = rare.unwrap_or_default();
        for (registry, name) in names {
            registry.remove_if(&name, self);
        }
        let waiters = {
            let mut st = self.0.state.lock();
            // A normal end of a process that never needed its rare part keeps it
            // unallocated (`Lifecycle::Exited` reads a missing reason as `Normal`).
            if reason != ExitReason::Normal || st.rare.is_some() {
                st.rare().reason = Some(reason.clone());
            }
            st.set_phase(Phase::Exited)
        };
        if let Some(waiters) = waiters {
            waiters.notify_waiters();
        }
        for other in links.into_pids() {
            other.0.state.lock().links.remove(self.id());
            other.signal(Signal::Exit(Exit {
                from: Some(self.clone()),
                reason: reason.clone(),
            }));
        }
        for (mref, to) in monitors {
            to.do_send(Down {
                mref,
                pid: self.clone(),
                reason: reason.clone(),
            });
        }
    }
}

/// Why a name could not be attached to a pid.
pub(crate) enum NameError {
    Dead,
    HasName(String),
}

impl PartialEq for Pid {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for Pid {}

impl Hash for Pid {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl fmt::Debug for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<0.{}.0>", self.id())
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<0.{}.0>", self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit_signal() -> Signal {
        Signal::Exit(Exit {
            from: None,
            reason: ExitReason::error("test"),
        })
    }

    /// One cell per process, so one per connection in a broker: with its `Arc`
    /// counts it must fit jemalloc's 112-byte class.
    #[test]
    fn the_cell_stays_small() {
        let size = std::mem::size_of::<Cell>() + 2 * std::mem::size_of::<usize>();
        assert!(size <= 112, "a pid cell takes {size} bytes");
    }

    #[tokio::test]
    async fn awaiting_the_start_leaves_no_rare_state_behind() {
        let pid = Pid::new();
        let started = tokio::spawn({
            let pid = pid.clone();
            async move { pid.started().await }
        });
        tokio::task::yield_now().await;
        assert!(pid.0.state.lock().rare.is_some(), "the waiter registered");
        pid.ack_started();
        assert_eq!(started.await.ok(), Some(Ok(())));
        assert!(pid.0.state.lock().rare.is_none());
        // A waiter for the end that was woken by the start registers again.
        let ended = tokio::spawn({
            let pid = pid.clone();
            async move { pid.wait().await }
        });
        tokio::task::yield_now().await;
        pid.terminate(ExitReason::Normal);
        assert_eq!(ended.await.ok(), Some(ExitReason::Normal));
    }

    #[test]
    fn signals_queue_until_the_process_ends_then_are_dropped() {
        let pid = Pid::new();
        pid.signal(exit_signal());
        pid.signal(Signal::Shutdown(ExitReason::Normal));
        assert!(matches!(pid.next_signal(), Some(Signal::Exit(_))));
        pid.signal(exit_signal());
        pid.terminate(ExitReason::Normal);
        assert!(pid.next_signal().is_none(), "queue emptied at the end");
        pid.signal(exit_signal());
        assert!(pid.next_signal().is_none(), "queue closed after the end");
    }

    #[tokio::test]
    async fn lifecycle_waiters_wake_on_start_and_on_exit() {
        let pid = Pid::new();
        let started = tokio::spawn({
            let pid = pid.clone();
            async move { pid.started().await }
        });
        let ended = tokio::spawn({
            let pid = pid.clone();
            async move { pid.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(pid.is_alive());
        pid.ack_started();
        assert_eq!(started.await.ok(), Some(Ok(())));
        assert!(!ended.is_finished());
        pid.terminate(ExitReason::Killed);
        assert_eq!(ended.await.ok(), Some(ExitReason::Killed));
        assert!(!pid.is_alive());
        assert_eq!(pid.exit_reason(), Some(ExitReason::Killed));
        // Waiting after the end returns at once; `started` reports the exit.
        assert_eq!(pid.wait().await, ExitReason::Killed);
        assert_eq!(pid.started().await, Err(ExitReason::Killed));
    }
}
