//! The supervisor: an actix actor, itself a process, that starts its children in order,
//! watches them through links (it traps exits), restarts them by its strategy within its
//! restart intensity, and stops them in reverse order.

mod child;
mod intensity;
mod ops;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;
use actix_rt::ArbiterHandle;

use self::child::{Child, ChildMeta};
use self::intensity::RestartIntensity;
use self::ops::{start_in_order, stop_in_order, ToStart, ToStop};
use crate::error::SupervisionError;
use crate::event::{EventObserver, SupervisionEvent};
use crate::exit::{Exit, ExitReason, ShutdownReason};
use crate::pid::Pid;
use crate::pool::ArbiterPool;
use crate::process::{spawn_with, ProcessContext, SpawnOptions};
use crate::spec::{
    ChildKind, ChildSpec, Placement, Restart, Shutdown, StartArgs, Strategy, SupFlags,
};

/// Everything needed to start a supervisor: flags, children (in start order), an optional
/// arbiter pool for placement and an optional event observer. Cheap to clone; a parent
/// keeps it to restart the supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    flags: SupFlags,
    children: Vec<ChildSpec>,
    pool: Option<ArbiterPool>,
    observer: Option<EventObserver>,
}

impl SupervisorSpec {
    /// A supervisor with these flags and no children yet.
    pub fn new(flags: SupFlags) -> Self {
        SupervisorSpec {
            flags,
            children: Vec::new(),
            pool: None,
            observer: None,
        }
    }

    /// Adds a child (children start in the order they are added).
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Places children with [`Placement::RoundRobin`]/[`Placement::Pool`] on this pool;
    /// nested supervisors without a pool inherit it.
    pub fn pool(mut self, pool: ArbiterPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Calls `observer` with every [`SupervisionEvent`] of this supervisor.
    pub fn observer(mut self, observer: EventObserver) -> Self {
        self.observer = Some(observer);
        self
    }

    /// This supervisor as a child of another: kind `Supervisor`, shutdown `Infinity`.
    pub fn into_child_spec(self, id: impl Into<Cow<'static, str>>) -> ChildSpec {
        let start = std::sync::Arc::new(move |args: StartArgs| {
            let mut spec = self.clone();
            if spec.pool.is_none() {
                spec.pool = args.pool.clone();
            }
            let parent = args.parent.clone();
            spawn_with(args.spawn_options(), move |_| {
                Supervisor::new(spec, Some(parent))
            })
            .map(|s| s.pid)
        });
        ChildSpec::new(id, start)
            .kind(ChildKind::Supervisor)
            .shutdown(Shutdown::Infinity)
    }

    /// Starts this supervisor as the root of a tree on the current arbiter and waits until
    /// all its children have started.
    pub async fn start_root(self) -> Result<SupervisorRef, SupervisionError> {
        self.start_root_with(SpawnOptions::new()).await
    }

    /// Like [`start_root`](Self::start_root), with explicit spawn options.
    pub async fn start_root_with(
        self,
        opts: SpawnOptions,
    ) -> Result<SupervisorRef, SupervisionError> {
        let spawned = spawn_with(opts, move |_| Supervisor::new(self, None))?;
        match spawned.pid.started().await {
            Ok(()) => Ok(SupervisorRef {
                pid: spawned.pid,
                addr: spawned.addr,
            }),
            Err(reason) => Err(SupervisionError::StartFailed {
                id: "root".to_owned(),
                reason,
            }),
        }
    }
}

/// Which child a request is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildRef {
    /// By id (the first match, for dynamic supervisors).
    Id(String),
    /// By pid.
    Pid(Pid),
}

impl From<&str> for ChildRef {
    fn from(id: &str) -> Self {
        ChildRef::Id(id.to_owned())
    }
}

impl From<Pid> for ChildRef {
    fn from(pid: Pid) -> Self {
        ChildRef::Pid(pid)
    }
}

/// One child as reported by [`WhichChildren`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildInfo {
    /// Child id.
    pub id: String,
    /// Its pid, if running.
    pub pid: Option<Pid>,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Its restart type.
    pub restart: Restart,
}

/// Starts a child at run time (OTP's `supervisor:start_child/2`).
#[derive(Debug, Message)]
#[rtype(result = "Result<Pid, SupervisionError>")]
pub struct StartChild(pub ChildSpec);

/// Stops a child; it is not restarted (OTP's `terminate_child/2`). A dynamic or temporary
/// child is also forgotten.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), SupervisionError>")]
pub struct TerminateChild(pub ChildRef);

/// Lists the children in start order (OTP's `which_children/1`).
#[derive(Debug, Message)]
#[rtype(result = "Vec<ChildInfo>")]
pub struct WhichChildren;

/// A handle to a running supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorRef {
    pid: Pid,
    addr: Addr<Supervisor>,
}

impl SupervisorRef {
    /// The handle of a supervisor process (e.g. a nested one found by `which_children`).
    pub fn from_pid(pid: &Pid) -> Option<Self> {
        Some(SupervisorRef {
            addr: pid.addr::<Supervisor>()?,
            pid: pid.clone(),
        })
    }

    /// The supervisor's pid.
    pub fn pid(&self) -> &Pid {
        &self.pid
    }

    /// The supervisor's address.
    pub fn addr(&self) -> &Addr<Supervisor> {
        &self.addr
    }

    /// Starts a child and waits until it has started.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<Pid, SupervisionError> {
        self.addr
            .send(StartChild(spec))
            .await
            .map_err(|_| SupervisionError::SupervisorUnavailable)?
    }

    /// Stops a child within its shutdown.
    pub async fn terminate_child(
        &self,
        child: impl Into<ChildRef>,
    ) -> Result<(), SupervisionError> {
        self.addr
            .send(TerminateChild(child.into()))
            .await
            .map_err(|_| SupervisionError::SupervisorUnavailable)?
    }

    /// The children in start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisionError> {
        self.addr
            .send(WhichChildren)
            .await
            .map_err(|_| SupervisionError::SupervisorUnavailable)
    }

    /// Shuts the whole tree down gracefully (children in reverse start order, each within
    /// its shutdown, recursively) and returns the supervisor's exit reason.
    pub async fn shutdown(&self) -> ExitReason {
        self.pid.shutdown(ShutdownReason::Requested);
        self.pid.wait().await
    }

    /// Waits until the supervisor has ended.
    pub async fn wait(&self) -> ExitReason {
        self.pid.wait().await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Starting,
    Running,
    Terminating,
    Done,
}

/// The supervisor actor. Start it through [`SupervisorSpec`].
#[derive(Debug)]
pub struct Supervisor {
    flags: SupFlags,
    intensity: RestartIntensity,
    /// Children by slot; slots grow with start order, so iteration order is start order.
    children: BTreeMap<u64, Child>,
    /// Running child pid id → slot.
    by_pid: HashMap<u64, u64>,
    next_slot: u64,
    /// The metadata of the child inserted last, shared by the next one if equal.
    last_meta: Option<Arc<ChildMeta>>,
    parent: Option<Pid>,
    pool: Option<ArbiterPool>,
    observer: Option<EventObserver>,
    me: Option<Pid>,
    phase: Phase,
}

impl Supervisor {
    fn new(spec: SupervisorSpec, parent: Option<Pid>) -> Self {
        let mut sup = Supervisor {
            intensity: RestartIntensity::new(spec.flags.intensity, spec.flags.period),
            flags: spec.flags,
            children: BTreeMap::new(),
            by_pid: HashMap::new(),
            next_slot: 0,
            last_meta: None,
            parent,
            pool: spec.pool,
            observer: spec.observer,
            me: None,
            phase: Phase::Starting,
        };
        for child in spec.children {
            sup.insert(child);
        }
        sup
    }

    fn insert(&mut self, spec: ChildSpec) -> u64 {
        let slot = self.next_slot;
        self.next_slot += 1;
        let child = Child::new(spec, self.last_meta.as_ref());
        self.last_meta = Some(Arc::clone(&child.meta));
        self.children.insert(slot, child);
        slot
    }

    fn emit(&self, ev: SupervisionEvent) {
        ev.trace(self.me.as_ref());
        if let Some(obs) = &self.observer {
            obs.notify(&ev);
        }
    }

    fn arbiter_for(&self, placement: &Placement) -> ArbiterHandle {
        match (placement, &self.pool) {
            (Placement::Arbiter(a), _) => a.clone(),
            (Placement::RoundRobin, Some(pool)) => pool.next_arbiter(),
            (Placement::Pool(i), Some(pool)) => pool.get(*i),
            _ => actix_rt::Arbiter::current(),
        }
    }

    fn plan_start(&self, slots: impl IntoIterator<Item = u64>) -> Vec<ToStart> {
        let Some(me) = &self.me else {
            return Vec::new();
        };
        slots
            .into_iter()
            .filter_map(|slot| {
                let child = self.children.get(&slot)?;
                let start = child.start.clone()?;
                let args = StartArgs {
                    parent: me.clone(),
                    arbiter: self.arbiter_for(&child.meta.placement),
                    pool: self.pool.clone(),
                };
                Some((slot, start, args))
            })
            .collect()
    }

    /// Takes the running children among `slots` out of the pid index, in the given order.
    fn detach(&mut self, slots: impl IntoIterator<Item = u64>) -> Vec<ToStop> {
        let mut out = Vec::new();
        for slot in slots {
            if let Some(child) = self.children.get_mut(&slot) {
                if let Some(pid) = child.pid.take() {
                    self.by_pid.remove(&pid.id());
                    out.push((slot, pid, child.meta.shutdown));
                }
            }
        }
        out
    }

    fn record_terminated(&mut self, stopped: Vec<(u64, Pid, ExitReason)>) {
        for (slot, pid, reason) in stopped {
            let Some(child) = self.children.get(&slot) else {
                continue;
            };
            let id = child.meta.id.to_string();
            if child.meta.restart == Restart::Temporary || self.flags.strategy == Strategy::Dynamic
            {
                self.children.remove(&slot);
            }
            self.emit(SupervisionEvent::ChildTerminated { id, pid, reason });
        }
    }

    fn record_started(&mut self, started: Vec<(u64, Pid)>, restarted: bool) {
        for (slot, pid) in started {
            let Some(child) = self.children.get_mut(&slot) else {
                continue;
            };
            child.pid = Some(pid.clone());
            if child.meta.restart == Restart::Temporary {
                child.start = None;
            }
            self.by_pid.insert(pid.id(), slot);
            let id = child.meta.id.to_string();
            self.emit(if restarted {
                SupervisionEvent::ChildRestarted { id, pid }
            } else {
                SupervisionEvent::ChildStarted { id, pid }
            });
        }
    }

    fn give_up(&mut self, reason: ExitReason, ctx: &mut Context<Self>) {
        if let Some(me) = &self.me {
            me.request_exit(reason);
        }
        ctx.stop();
    }

    /// A child ended (by itself or failing to restart): apply restart type and strategy.
    fn child_down(&mut self, slot: u64, reason: ExitReason, ctx: &mut Context<Self>) {
        let Some(child) = self.children.get(&slot) else {
            return;
        };
        let restart = match child.meta.restart {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_clean(),
            Restart::Temporary => false,
        };
        if !restart {
            if child.meta.restart == Restart::Temporary || self.flags.strategy == Strategy::Dynamic
            {
                self.children.remove(&slot);
            }
            return;
        }
        if !self.intensity.add_restart(Instant::now()) {
            self.emit(SupervisionEvent::MaxRestartIntensityReached {
                intensity: self.flags.intensity,
            });
            self.give_up(
                ExitReason::Shutdown(ShutdownReason::ReachedMaxRestartIntensity),
                ctx,
            );
            return;
        }
        let (stop, start): (Vec<u64>, Vec<u64>) = match self.flags.strategy {
            Strategy::OneForOne | Strategy::Dynamic => (Vec::new(), vec![slot]),
            Strategy::OneForAll => (
                self.children.keys().rev().copied().collect(),
                self.restartable(self.children.keys().copied(), slot),
            ),
            Strategy::RestForOne => (
                self.children.range(slot..).rev().map(|(s, _)| *s).collect(),
                self.restartable(self.children.range(slot..).map(|(s, _)| *s), slot),
            ),
        };
        let to_stop = self.detach(stop);
        let to_start = self.plan_start(start);
        let me = self.me.clone();
        let work = async move {
            let stopped = match me {
                Some(me) => stop_in_order(me, to_stop).await,
                None => Vec::new(),
            };
            (stopped, start_in_order(to_start).await)
        };
        ctx.wait(work.into_actor(self).map(|(stopped, started), act, ctx| {
            act.record_terminated(stopped);
            act.record_started(started.ok, true);
            if let Some((slot, reason)) = started.failed {
                act.start_failed(slot, reason.clone());
                act.child_down(slot, reason, ctx);
            }
        }));
    }

    /// Children among `slots` that a group restart starts again: all but temporary ones
    /// (the child that exited is always included).
    fn restartable(&self, slots: impl Iterator<Item = u64>, exited: u64) -> Vec<u64> {
        slots
            .filter(|s| {
                *s == exited
                    || self
                        .children
                        .get(s)
                        .is_some_and(|c| c.meta.restart != Restart::Temporary)
            })
            .collect()
    }

    fn start_failed(&self, slot: u64, reason: ExitReason) {
        if let Some(child) = self.children.get(&slot) {
            self.emit(SupervisionEvent::ChildStartFailed {
                id: child.meta.id.to_string(),
                reason,
            });
        }
    }

    fn find(&self, child: &ChildRef) -> Option<u64> {
        self.children
            .iter()
            .find(|(_, c)| match child {
                ChildRef::Id(id) => c.meta.id == id.as_str(),
                ChildRef::Pid(pid) => c.pid.as_ref() == Some(pid),
            })
            .map(|(s, _)| *s)
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.me = ctx.pid();
        let Some(me) = self.me.clone() else {
            tracing::error!("a supervisor must be started through SupervisorSpec");
            ctx.stop();
            return;
        };
        ctx.trap_exit();
        me.set_manual_ack();
        let batch = self.plan_start(self.children.keys().copied().collect::<Vec<_>>());
        ctx.wait(
            start_in_order(batch)
                .into_actor(self)
                .map(move |started, act, ctx| {
                    act.record_started(started.ok, false);
                    match started.failed {
                        None => {
                            act.phase = Phase::Running;
                            me.ack_started();
                        }
                        Some((slot, reason)) => {
                            act.start_failed(slot, reason.clone());
                            let id = act
                                .children
                                .get(&slot)
                                .map(|c| c.meta.id.to_string())
                                .unwrap_or_default();
                            let reason = ShutdownReason::FailedToStartChild {
                                id,
                                reason: Box::new(reason),
                            };
                            act.give_up(ExitReason::Shutdown(reason), ctx);
                        }
                    }
                }),
        );
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        match self.phase {
            Phase::Done => Running::Stop,
            Phase::Terminating => Running::Continue,
            Phase::Starting | Phase::Running => {
                let slots: Vec<u64> = self.children.keys().rev().copied().collect();
                let to_stop = self.detach(slots);
                let Some(me) = self.me.clone() else {
                    return Running::Stop;
                };
                if to_stop.is_empty() {
                    self.phase = Phase::Done;
                    return Running::Stop;
                }
                self.phase = Phase::Terminating;
                ctx.wait(
                    stop_in_order(me, to_stop)
                        .into_actor(self)
                        .map(|stopped, act, ctx| {
                            act.record_terminated(stopped);
                            act.phase = Phase::Done;
                            ctx.stop();
                        }),
                );
                Running::Continue
            }
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        let reason = self
            .me
            .as_ref()
            .and_then(Pid::requested_exit)
            .unwrap_or(ExitReason::Normal);
        self.emit(SupervisionEvent::SupervisorShutdown { reason });
    }
}

impl Handler<Exit> for Supervisor {
    type Result = ();

    fn handle(&mut self, exit: Exit, ctx: &mut Context<Self>) {
        let Some(from) = exit.from else { return };
        if self.parent.as_ref() == Some(&from) {
            // OTP: an exit from the parent ends the supervisor with the same reason.
            self.give_up(exit.reason, ctx);
            return;
        }
        let Some(slot) = self.by_pid.remove(&from.id()) else {
            tracing::debug!(pid = %from, reason = %exit.reason, "exit from a non-child ignored");
            return;
        };
        if let Some(child) = self.children.get_mut(&slot) {
            child.pid = None;
            let id = child.meta.id.to_string();
            self.emit(SupervisionEvent::ChildExited {
                id,
                pid: from,
                reason: exit.reason.clone(),
            });
        }
        if self.phase == Phase::Running {
            self.child_down(slot, exit.reason, ctx);
        }
    }
}

impl Handler<StartChild> for Supervisor {
    type Result = AtomicResponse<Self, Result<Pid, SupervisionError>>;

    fn handle(&mut self, msg: StartChild, _ctx: &mut Context<Self>) -> Self::Result {
        let spec = msg.0;
        if self.flags.strategy != Strategy::Dynamic
            && self.children.values().any(|c| c.meta.id == spec.id)
        {
            return AtomicResponse::new(Box::pin(fut::ready(Err(
                SupervisionError::DuplicateChildId(spec.id.into_owned()),
            ))));
        }
        let id = spec.id.clone();
        let slot = self.insert(spec);
        let batch = self.plan_start([slot]);
        AtomicResponse::new(Box::pin(start_in_order(batch).into_actor(self).map(
            move |started, act, _ctx| {
                if let Some((_, reason)) = started.failed {
                    act.start_failed(slot, reason.clone());
                    act.children.remove(&slot);
                    return Err(SupervisionError::StartFailed {
                        id: id.into_owned(),
                        reason,
                    });
                }
                let pid = started.ok.first().map(|(_, p)| p.clone());
                act.record_started(started.ok, false);
                pid.ok_or(SupervisionError::NoProc)
            },
        )))
    }
}

impl Handler<TerminateChild> for Supervisor {
    type Result = AtomicResponse<Self, Result<(), SupervisionError>>;

    fn handle(&mut self, msg: TerminateChild, _ctx: &mut Context<Self>) -> Self::Result {
        let Some(slot) = self.find(&msg.0) else {
            let what = match msg.0 {
                ChildRef::Id(id) => id,
                ChildRef::Pid(pid) => pid.to_string(),
            };
            return AtomicResponse::new(Box::pin(fut::ready(Err(SupervisionError::NoSuchChild(
                what,
            )))));
        };
        let to_stop = self.detach([slot]);
        let Some(me) = self.me.clone() else {
            return AtomicResponse::new(Box::pin(fut::ready(Err(SupervisionError::NoProc))));
        };
        AtomicResponse::new(Box::pin(stop_in_order(me, to_stop).into_actor(self).map(
            move |stopped, act, _ctx| {
                act.record_terminated(stopped);
                Ok(())
            },
        )))
    }
}

impl Handler<WhichChildren> for Supervisor {
    type Result = MessageResult<WhichChildren>;

    fn handle(&mut self, _: WhichChildren, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(
            self.children
                .values()
                .map(|c| ChildInfo {
                    id: c.meta.id.to_string(),
                    pid: c.pid.clone(),
                    kind: c.meta.kind,
                    restart: c.meta.restart,
                })
                .collect(),
        )
    }
}
