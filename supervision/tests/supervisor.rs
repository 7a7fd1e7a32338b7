//! Supervisors with real actix actors: strategies, restart types, intensity, ordering,
//! shutdown protocol, dynamic children, placement on arbiters.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use actix::prelude::*;
use girder_supervision::*;

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn within<T>(fut: impl Future<Output = T>) -> T {
    actix_rt::time::timeout(Duration::from_secs(3), fut)
        .await
        .expect("timed out")
}

/// Shared record of what the workers did: a log of "start:x"/"stop:x" and start counts.
#[derive(Clone, Default)]
struct Journal {
    log: Arc<Mutex<Vec<String>>>,
    starts: Arc<Mutex<HashMap<String, usize>>>,
    events: Arc<Mutex<Vec<SupervisionEvent>>>,
}

impl Journal {
    fn starts(&self, id: &str) -> usize {
        self.starts.lock().unwrap().get(id).copied().unwrap_or(0)
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
    fn observer(&self) -> EventObserver {
        let events = self.events.clone();
        EventObserver::new(move |ev| events.lock().unwrap().push(ev.clone()))
    }
    fn count(&self, name: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.name() == name)
            .count()
    }
    fn spec(&self, id: &'static str) -> ChildSpec {
        let j = self.clone();
        ChildSpec::worker(id, move || Worker {
            id,
            j: j.clone(),
            refuse_stop: false,
        })
        .shutdown(Shutdown::Timeout(Duration::from_secs(1)))
    }
}

struct Worker {
    id: &'static str,
    j: Journal,
    refuse_stop: bool,
}

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        self.j
            .log
            .lock()
            .unwrap()
            .push(format!("start:{}", self.id));
        *self
            .j
            .starts
            .lock()
            .unwrap()
            .entry(self.id.to_owned())
            .or_default() += 1;
    }
    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        if self.refuse_stop {
            Running::Continue
        } else {
            Running::Stop
        }
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.j.log.lock().unwrap().push(format!("stop:{}", self.id));
    }
}

#[derive(Message)]
#[rtype(result = "ThreadId")]
struct Ping;

#[derive(Message)]
#[rtype(result = "()")]
enum Do {
    Panic,
    Fail,
    Quit,
}

impl Handler<Ping> for Worker {
    type Result = MessageResult<Ping>;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        MessageResult(std::thread::current().id())
    }
}

impl Handler<Do> for Worker {
    type Result = ();
    fn handle(&mut self, msg: Do, ctx: &mut Context<Self>) {
        match msg {
            Do::Panic => panic!("{} crashed", self.id),
            Do::Fail => ctx.exit_with(ExitReason::error("failed")),
            Do::Quit => ctx.stop(),
        }
    }
}

async fn pid_of(sup: &SupervisorRef, id: &str) -> Option<Pid> {
    sup.which_children()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.id == id)
        .and_then(|c| c.pid)
}

async fn addr_of(sup: &SupervisorRef, id: &str) -> Addr<Worker> {
    pid_of(sup, id)
        .await
        .and_then(|p| p.addr::<Worker>())
        .expect("running worker")
}

/// Waits until child `id` runs under a pid other than `old`.
async fn restarted(sup: &SupervisorRef, id: &str, old: &Pid) -> Pid {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(p) = pid_of(sup, id).await {
            if &p != old {
                return p;
            }
        }
        assert!(Instant::now() < deadline, "{id} was not restarted");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

fn flags(strategy: Strategy) -> SupFlags {
    SupFlags::new(strategy).intensity(10, Duration::from_secs(5))
}

async fn abc(j: &Journal, strategy: Strategy) -> SupervisorRef {
    SupervisorSpec::new(flags(strategy))
        .child(j.spec("a"))
        .child(j.spec("b"))
        .child(j.spec("c"))
        .observer(j.observer())
        .start_root()
        .await
        .unwrap()
}

#[actix_rt::test]
async fn one_for_one_restarts_only_the_crashed_child() {
    let j = Journal::default();
    let sup = abc(&j, Strategy::OneForOne).await;
    assert_eq!(j.log(), ["start:a", "start:b", "start:c"]);
    let (a, b, c) = (
        pid_of(&sup, "a").await.unwrap(),
        pid_of(&sup, "b").await.unwrap(),
        pid_of(&sup, "c").await.unwrap(),
    );
    addr_of(&sup, "b").await.do_send(Do::Panic);
    let b2 = restarted(&sup, "b", &b).await;
    assert_eq!(b.exit_reason(), Some(ExitReason::Panic("b crashed".into())));
    assert_ne!(b, b2);
    assert_eq!(pid_of(&sup, "a").await, Some(a));
    assert_eq!(pid_of(&sup, "c").await, Some(c));
    assert_eq!((j.starts("a"), j.starts("b"), j.starts("c")), (1, 2, 1));
    assert_eq!(j.count("child_exited"), 1);
    assert_eq!(j.count("child_restarted"), 1);
    within(sup.shutdown()).await;
}

#[actix_rt::test]
async fn one_for_all_stops_the_others_in_reverse_then_starts_all_in_order() {
    let j = Journal::default();
    let sup = abc(&j, Strategy::OneForAll).await;
    let b = pid_of(&sup, "b").await.unwrap();
    j.clear_log();
    addr_of(&sup, "b").await.do_send(Do::Fail);
    restarted(&sup, "b", &b).await;
    eventually("all restarted", || j.starts("c") == 2).await;
    assert_eq!(
        j.log(),
        ["stop:b", "stop:c", "stop:a", "start:a", "start:b", "start:c"]
    );
    assert_eq!((j.starts("a"), j.starts("b"), j.starts("c")), (2, 2, 2));
    within(sup.shutdown()).await;
}

#[actix_rt::test]
async fn rest_for_one_restarts_the_child_and_those_after_it() {
    let j = Journal::default();
    let sup = abc(&j, Strategy::RestForOne).await;
    let a = pid_of(&sup, "a").await.unwrap();
    let b = pid_of(&sup, "b").await.unwrap();
    j.clear_log();
    addr_of(&sup, "b").await.do_send(Do::Panic);
    restarted(&sup, "b", &b).await;
    eventually("c restarted", || j.starts("c") == 2).await;
    assert_eq!(j.log(), ["stop:b", "stop:c", "start:b", "start:c"]);
    assert_eq!(pid_of(&sup, "a").await, Some(a));
    assert_eq!(j.starts("a"), 1);
    within(sup.shutdown()).await;
}

#[actix_rt::test]
async fn restart_types_permanent_transient_temporary() {
    let j = Journal::default();
    let sup = SupervisorSpec::new(flags(Strategy::OneForOne))
        .child(j.spec("perm"))
        .child(j.spec("trans").restart(Restart::Transient))
        .child(j.spec("trans2").restart(Restart::Transient))
        .child(j.spec("temp").restart(Restart::Temporary))
        .start_root()
        .await
        .unwrap();

    // permanent: restarted even after a normal exit
    let perm = pid_of(&sup, "perm").await.unwrap();
    addr_of(&sup, "perm").await.do_send(Do::Quit);
    restarted(&sup, "perm", &perm).await;
    assert_eq!(perm.exit_reason(), Some(ExitReason::Normal));

    // transient: a normal exit is final, an error is restarted
    let trans = pid_of(&sup, "trans").await.unwrap();
    addr_of(&sup, "trans").await.do_send(Do::Quit);
    within(trans.wait()).await;
    let trans2 = pid_of(&sup, "trans2").await.unwrap();
    addr_of(&sup, "trans2").await.do_send(Do::Fail);
    restarted(&sup, "trans2", &trans2).await;
    assert_eq!(pid_of(&sup, "trans").await, None);
    assert_eq!(j.starts("trans"), 1);

    // temporary: never restarted, and forgotten
    let temp = pid_of(&sup, "temp").await.unwrap();
    addr_of(&sup, "temp").await.do_send(Do::Panic);
    within(temp.wait()).await;
    let ids: Vec<String> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, ["perm", "trans", "trans2"]);
    assert_eq!(j.starts("temp"), 1);
    assert_eq!((j.starts("perm"), j.starts("trans2")), (2, 2));
    within(sup.shutdown()).await;
}

#[actix_rt::test]
async fn reaching_max_intensity_ends_the_supervisor_and_its_parent_sees_it() {
    let j = Journal::default();
    let inner_events = Journal::default();
    let inner = SupervisorSpec::new(
        SupFlags::new(Strategy::OneForOne).intensity(2, Duration::from_secs(10)),
    )
    .child(j.spec("w"))
    .observer(inner_events.observer())
    .into_child_spec("inner");
    let root = SupervisorSpec::new(flags(Strategy::OneForOne))
        .child(inner)
        .observer(j.observer())
        .start_root()
        .await
        .unwrap();
    let inner_pid = pid_of(&root, "inner").await.unwrap();
    let inner_ref = SupervisorRef::from_pid(&inner_pid).unwrap();

    for round in 1..=3 {
        let w = pid_of(&inner_ref, "w").await.unwrap();
        w.exit(ExitReason::error("crash"));
        within(w.wait()).await;
        if round < 3 {
            restarted(&inner_ref, "w", &w).await;
        }
    }
    assert_eq!(
        within(inner_pid.wait()).await,
        ExitReason::Shutdown(ShutdownReason::ReachedMaxRestartIntensity)
    );
    assert_eq!(inner_events.count("max_restart_intensity_reached"), 1);
    // the parent saw the exit with that reason and restarted the (permanent) supervisor
    let new_inner = restarted(&root, "inner", &inner_pid).await;
    let exited: Vec<ExitReason> = j
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SupervisionEvent::ChildExited { id, reason, .. } if id == "inner" => {
                Some(reason.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        exited,
        [ExitReason::Shutdown(
            ShutdownReason::ReachedMaxRestartIntensity
        )]
    );
    // 1 first start + 2 restarts, then the new inner supervisor started it again
    eventually("w under new inner", || j.starts("w") == 4).await;
    assert!(new_inner.is_alive());
    within(root.shutdown()).await;
}

#[actix_rt::test]
async fn nested_tree_starts_in_order_and_shuts_down_in_reverse() {
    let j = Journal::default();
    let sub = SupervisorSpec::new(flags(Strategy::OneForAll))
        .child(j.spec("b"))
        .child(j.spec("c"))
        .into_child_spec("sub");
    let root = SupervisorSpec::new(flags(Strategy::OneForOne))
        .child(j.spec("a"))
        .child(sub)
        .child(j.spec("d"))
        .observer(j.observer())
        .start_root()
        .await
        .unwrap();
    assert_eq!(j.log(), ["start:a", "start:b", "start:c", "start:d"]);
    j.clear_log();
    let reason = within(run_until(&root, async {})).await;
    assert_eq!(reason, ExitReason::Shutdown(ShutdownReason::Requested));
    assert_eq!(j.log(), ["stop:d", "stop:c", "stop:b", "stop:a"]);
    assert_eq!(j.count("supervisor_shutdown"), 1);
    assert_eq!(j.count("child_terminated"), 3);
}

#[actix_rt::test]
async fn shutdown_timeout_then_kill_and_brutal_kill() {
    let j = Journal::default();
    let stubborn = {
        let j = j.clone();
        ChildSpec::worker("stubborn", move || Worker {
            id: "stubborn",
            j: j.clone(),
            refuse_stop: true,
        })
        .shutdown(Shutdown::Timeout(Duration::from_millis(50)))
    };
    let sup = SupervisorSpec::new(flags(Strategy::OneForOne))
        .child(stubborn)
        .child(j.spec("brutal").shutdown(Shutdown::BrutalKill))
        .child(j.spec("polite"))
        .observer(j.observer())
        .start_root()
        .await
        .unwrap();
    let started = Instant::now();
    within(sup.shutdown()).await;
    assert!(started.elapsed() >= Duration::from_millis(50));
    let reasons: HashMap<String, ExitReason> = j
        .events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SupervisionEvent::ChildTerminated { id, reason, .. } => {
                Some((id.clone(), reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons["polite"],
        ExitReason::Shutdown(ShutdownReason::Requested)
    );
    assert_eq!(reasons["brutal"], ExitReason::Killed);
    assert_eq!(reasons["stubborn"], ExitReason::Killed);
}

#[actix_rt::test]
async fn dynamic_children_start_and_stop_at_run_time() {
    let j = Journal::default();
    let sup = SupervisorSpec::new(flags(Strategy::Dynamic))
        .observer(j.observer())
        .start_root()
        .await
        .unwrap();
    assert!(sup.which_children().await.unwrap().is_empty());
    let s1 = sup
        .start_child(j.spec("session").restart(Restart::Transient))
        .await
        .unwrap();
    let s2 = sup
        .start_child(j.spec("session").restart(Restart::Transient))
        .await
        .unwrap();
    let conn = sup
        .start_child(j.spec("conn").restart(Restart::Temporary))
        .await
        .unwrap();
    assert_eq!(sup.which_children().await.unwrap().len(), 3);
    assert_eq!(j.starts("session"), 2);

    // stop one by pid: gone, not restarted
    sup.terminate_child(s1.clone()).await.unwrap();
    assert!(!s1.is_alive());
    // a crashed transient child is restarted in place
    s2.addr::<Worker>().unwrap().do_send(Do::Panic);
    within(s2.wait()).await;
    eventually("session restarted", || j.starts("session") == 3).await;
    // a temporary child is forgotten when it ends
    conn.kill();
    within(conn.wait()).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let kids = sup.which_children().await.unwrap();
        if kids.len() == 1 {
            assert_eq!(kids[0].id, "session");
            assert!(kids[0].pid.as_ref().is_some_and(|p| p != &s2));
            break;
        }
        assert!(Instant::now() < deadline, "children: {kids:?}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        sup.terminate_child("nope").await,
        Err(SupervisionError::NoSuchChild("nope".into()))
    );
    within(sup.shutdown()).await;
}

/// A dynamic supervisor keeps a temporary child's spec for `which_children`, but never
/// starts it again, so it drops the start closure (and what it captured) once started;
/// a transient child keeps its closure for restarts.
#[actix_rt::test]
async fn temporary_child_start_closure_is_freed_once_started() {
    let j = Journal::default();
    let sup = SupervisorSpec::new(flags(Strategy::Dynamic))
        .start_root()
        .await
        .unwrap();
    let spec = |token: &Arc<()>, restart: Restart| {
        let token = Arc::clone(token);
        let worker = j.spec("w");
        let start: StartFn = Arc::new(move |args| {
            let _held = &token;
            (worker.start)(args)
        });
        ChildSpec::new("w", start).restart(restart)
    };
    let temporary = Arc::new(());
    sup.start_child(spec(&temporary, Restart::Temporary))
        .await
        .unwrap();
    assert_eq!(Arc::strong_count(&temporary), 1, "closure dropped");
    let transient = Arc::new(());
    sup.start_child(spec(&transient, Restart::Transient))
        .await
        .unwrap();
    assert_eq!(
        Arc::strong_count(&transient),
        2,
        "closure kept for restarts"
    );
    let ids: Vec<_> = sup.which_children().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|c| c.id == "w" && c.pid.is_some()));
    within(sup.shutdown()).await;
    assert_eq!(
        Arc::strong_count(&transient),
        1,
        "dropped with the supervisor"
    );
}

#[actix_rt::test]
async fn static_supervisor_refuses_duplicate_ids() {
    let j = Journal::default();
    let sup = abc(&j, Strategy::OneForOne).await;
    assert_eq!(
        sup.start_child(j.spec("a")).await,
        Err(SupervisionError::DuplicateChildId("a".into()))
    );
    let d = sup.start_child(j.spec("d")).await.unwrap();
    assert_eq!(pid_of(&sup, "d").await, Some(d));
    within(sup.shutdown()).await;
}

#[actix_rt::test]
async fn children_run_on_chosen_arbiters() {
    let j = Journal::default();
    let pool = ArbiterPool::new(2).unwrap();
    let sup = SupervisorSpec::new(flags(Strategy::OneForOne))
        .pool(pool.clone())
        .child(j.spec("p0").placement(Placement::Pool(0)))
        .child(j.spec("p1").placement(Placement::Pool(1)))
        .child(j.spec("rr1").placement(Placement::RoundRobin))
        .child(j.spec("rr2").placement(Placement::RoundRobin))
        .child(j.spec("here"))
        .start_root()
        .await
        .unwrap();
    let mut threads = HashMap::new();
    for id in ["p0", "p1", "rr1", "rr2", "here"] {
        threads.insert(id, addr_of(&sup, id).await.send(Ping).await.unwrap());
    }
    let me = std::thread::current().id();
    assert_eq!(threads["here"], me);
    assert_ne!(threads["p0"], me);
    assert_ne!(threads["p1"], me);
    assert_ne!(threads["p0"], threads["p1"]);
    assert_ne!(threads["rr1"], threads["rr2"]);

    // a panic on a pool arbiter is contained there too
    let p0 = pid_of(&sup, "p0").await.unwrap();
    addr_of(&sup, "p0").await.do_send(Do::Panic);
    restarted(&sup, "p0", &p0).await;
    assert_eq!(
        addr_of(&sup, "p0").await.send(Ping).await.unwrap(),
        threads["p0"]
    );
    within(sup.shutdown()).await;
    pool.stop();
}

#[actix_rt::test]
async fn panicking_child_on_the_supervisors_arbiter_is_restarted_and_sibling_answers() {
    let j = Journal::default();
    let sup = SupervisorSpec::new(flags(Strategy::OneForOne))
        .child(j.spec("crasher"))
        .child(j.spec("steady"))
        .observer(j.observer())
        .start_root()
        .await
        .unwrap();
    let me = std::thread::current().id();
    let steady = addr_of(&sup, "steady").await;
    assert_eq!(steady.send(Ping).await.unwrap(), me);
    let crasher = pid_of(&sup, "crasher").await.unwrap();
    addr_of(&sup, "crasher").await.do_send(Do::Panic);
    let again = restarted(&sup, "crasher", &crasher).await;
    assert_eq!(steady.send(Ping).await.unwrap(), me);
    assert_eq!(
        again.addr::<Worker>().unwrap().send(Ping).await.unwrap(),
        me
    );
    assert!(j.events.lock().unwrap().iter().any(|e| matches!(
        e,
        SupervisionEvent::ChildExited { id, reason: ExitReason::Panic(m), .. }
            if id == "crasher" && m == "crasher crashed"
    )));
    assert_eq!(j.starts("steady"), 1);
    within(sup.shutdown()).await;
}

#[actix_rt::test]
async fn a_child_failing_to_start_fails_the_supervisor_start() {
    struct Bad;
    impl Actor for Bad {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.exit_with(ExitReason::error("no config"));
        }
    }
    let j = Journal::default();
    let res = SupervisorSpec::new(flags(Strategy::OneForOne))
        .child(j.spec("ok"))
        .child(ChildSpec::worker("bad", || Bad))
        .child(j.spec("never"))
        .start_root()
        .await;
    let Err(SupervisionError::StartFailed { reason, .. }) = res else {
        panic!("expected a start failure, got {res:?}");
    };
    assert_eq!(
        reason,
        ExitReason::Shutdown(ShutdownReason::FailedToStartChild {
            id: "bad".into(),
            reason: Box::new(ExitReason::error("no config")),
        })
    );
    // the child started before it was stopped again; the one after never started
    eventually("ok stopped", || j.log() == ["start:ok", "stop:ok"]).await;
    assert_eq!(j.starts("never"), 0);
}

#[actix_rt::test]
async fn killing_a_supervisor_takes_its_linked_children_down() {
    let j = Journal::default();
    let sup = abc(&j, Strategy::OneForOne).await;
    let a = pid_of(&sup, "a").await.unwrap();
    sup.pid().kill();
    assert_eq!(within(sup.wait()).await, ExitReason::Killed);
    assert_eq!(within(a.wait()).await, ExitReason::Killed);
}
