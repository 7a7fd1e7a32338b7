//! Processes without supervisors: panic containment, links, trap_exit, monitors,
//! registry, kill.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use actix::prelude::*;
use girder_supervision::*;

/// Polls `cond` every few milliseconds until it holds or two seconds pass.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn within<T>(fut: impl Future<Output = T>) -> T {
    actix_rt::time::timeout(Duration::from_secs(2), fut)
        .await
        .expect("timed out")
}

#[derive(Default)]
struct Worker {
    name: Option<&'static str>,
}

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(name) = self.name {
            ctx.register(name).expect("name free");
        }
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
            Do::Panic => panic!("worker blew up"),
            Do::Fail => ctx.exit_with(ExitReason::error("bad input")),
            Do::Quit => ctx.stop(),
        }
    }
}

/// Records the `Down` and `Exit` messages it receives.
#[derive(Default, Clone)]
struct Watcher {
    downs: Arc<Mutex<Vec<Down>>>,
    exits: Arc<Mutex<Vec<Exit>>>,
    trap: bool,
}

impl Actor for Watcher {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.trap {
            ctx.trap_exit();
        }
    }
}

impl Handler<Down> for Watcher {
    type Result = ();
    fn handle(&mut self, msg: Down, _: &mut Context<Self>) {
        self.downs.lock().unwrap().push(msg);
    }
}

impl Handler<Exit> for Watcher {
    type Result = ();
    fn handle(&mut self, msg: Exit, _: &mut Context<Self>) {
        self.exits.lock().unwrap().push(msg);
    }
}

fn worker() -> Spawned<Worker> {
    spawn(|_| Worker::default()).expect("spawn")
}

#[actix_rt::test]
async fn panic_ends_only_that_actor_on_the_same_arbiter() {
    let victim = worker();
    let bystander = worker();
    let here = std::thread::current().id();
    assert_eq!(victim.addr.send(Ping).await.unwrap(), here);
    assert_eq!(bystander.addr.send(Ping).await.unwrap(), here);

    victim.addr.do_send(Do::Panic);
    let reason = within(victim.pid.wait()).await;
    assert_eq!(reason, ExitReason::Panic("worker blew up".into()));
    assert!(!victim.pid.is_alive());
    // the arbiter (this very thread) and its other actor keep running
    assert_eq!(bystander.addr.send(Ping).await.unwrap(), here);
    assert!(bystander.pid.is_alive());
}

#[actix_rt::test]
async fn panic_in_started_is_a_start_failure() {
    struct Bad;
    impl Actor for Bad {
        type Context = Context<Self>;
        fn started(&mut self, _: &mut Context<Self>) {
            panic!("cannot init");
        }
    }
    let s = spawn(|_| Bad).unwrap();
    assert_eq!(
        within(s.pid.started()).await,
        Err(ExitReason::Panic("cannot init".into()))
    );
}

#[actix_rt::test]
async fn monitor_reports_normal_panic_killed_and_noproc() {
    let w = Watcher::default();
    let watcher = spawn({
        let w = w.clone();
        move |_| w
    })
    .unwrap();
    let rec = watcher.addr.clone().recipient::<Down>();

    let normal = worker();
    let panicky = worker();
    let killed = worker();
    let m1 = normal.pid.monitor(rec.clone());
    let m2 = panicky.pid.monitor(rec.clone());
    let m3 = killed.pid.monitor(rec.clone());
    normal.addr.do_send(Do::Quit);
    panicky.addr.do_send(Do::Panic);
    killed.pid.kill();
    eventually("three downs", || w.downs.lock().unwrap().len() == 3).await;
    // a monitor on a dead process fires at once with the recorded reason
    let m4 = killed.pid.monitor(rec.clone());
    eventually("fourth down", || w.downs.lock().unwrap().len() == 4).await;

    let downs = w.downs.lock().unwrap().clone();
    let reason_of = |m: MonitorRef| {
        downs
            .iter()
            .find(|d| d.mref == m)
            .map(|d| d.reason.clone())
            .expect("down for monitor")
    };
    assert_eq!(reason_of(m1), ExitReason::Normal);
    assert_eq!(reason_of(m2), ExitReason::Panic("worker blew up".into()));
    assert_eq!(reason_of(m3), ExitReason::Killed);
    assert_eq!(reason_of(m4), ExitReason::Killed);
    assert!(downs.iter().any(|d| d.mref == m2 && d.pid == panicky.pid));
}

#[actix_rt::test]
async fn demonitor_stops_the_down() {
    let w = Watcher::default();
    let watcher = spawn({
        let w = w.clone();
        move |_| w
    })
    .unwrap();
    let target = worker();
    let m = target.pid.monitor(watcher.addr.clone().recipient());
    assert!(target.pid.demonitor(m));
    target.addr.do_send(Do::Quit);
    within(target.pid.wait()).await;
    // a round trip through the watcher's mailbox: a Down would have arrived before it
    let probe = worker();
    let m2 = probe.pid.monitor(watcher.addr.clone().recipient());
    probe.pid.kill();
    eventually("probe down", || w.downs.lock().unwrap().len() == 1).await;
    assert_eq!(w.downs.lock().unwrap()[0].mref, m2);
}

#[actix_rt::test]
async fn links_propagate_abnormal_exits_both_ways_but_not_normal() {
    let a = worker();
    let b = worker();
    a.pid.link(&b.pid);
    assert!(a.pid.is_linked(&b.pid) && b.pid.is_linked(&a.pid));
    a.addr.do_send(Do::Fail);
    assert_eq!(within(b.pid.wait()).await, ExitReason::error("bad input"));

    let c = worker();
    let d = worker();
    d.pid.link(&c.pid);
    c.addr.do_send(Do::Quit);
    assert_eq!(within(c.pid.wait()).await, ExitReason::Normal);
    // the normal exit is not propagated: d still answers
    d.addr.send(Ping).await.unwrap();
    assert!(d.pid.is_alive());
    assert!(!d.pid.is_linked(&c.pid));
}

#[actix_rt::test]
async fn kill_propagates_as_killed_through_links() {
    let a = worker();
    let b = worker();
    b.pid.link(&a.pid);
    a.pid.exit(ExitReason::Kill);
    assert_eq!(within(a.pid.wait()).await, ExitReason::Killed);
    assert_eq!(within(b.pid.wait()).await, ExitReason::Killed);
}

#[actix_rt::test]
async fn trap_exit_turns_link_exits_into_messages() {
    let w = Watcher {
        trap: true,
        ..Watcher::default()
    };
    let trapper = spawn({
        let w = w.clone();
        move |_| w
    })
    .unwrap();
    let a = worker();
    within(trapper.pid.started()).await.unwrap();
    assert!(trapper.pid.traps_exits());
    trapper.pid.link(&a.pid);
    a.addr.do_send(Do::Panic);
    eventually("exit message", || w.exits.lock().unwrap().len() == 1).await;
    let exit = w.exits.lock().unwrap()[0].clone();
    assert_eq!(exit.from, Some(a.pid.clone()));
    assert_eq!(exit.reason, ExitReason::Panic("worker blew up".into()));
    assert!(trapper.pid.is_alive());

    // a kill is not trappable
    trapper.pid.exit(ExitReason::Kill);
    assert_eq!(within(trapper.pid.wait()).await, ExitReason::Killed);
}

#[actix_rt::test]
async fn linking_to_a_dead_process_signals_noproc() {
    let dead = worker();
    dead.pid.kill();
    within(dead.pid.wait()).await;
    let a = worker();
    a.pid.link(&dead.pid);
    assert_eq!(within(a.pid.wait()).await, ExitReason::NoProc);
}

#[actix_rt::test]
async fn registry_frees_names_on_death_and_refuses_taken_names() {
    let a = spawn(|_| Worker {
        name: Some("proc-test:a"),
    })
    .unwrap();
    within(a.pid.started()).await.unwrap();
    let reg = Registry::global();
    assert_eq!(reg.whereis("proc-test:a"), Some(a.pid.clone()));
    assert!(reg.whereis_addr::<Worker>("proc-test:a").is_some());

    let b = worker();
    assert_eq!(
        reg.register("proc-test:a", &b.pid),
        Err(SupervisionError::NameTaken("proc-test:a".into()))
    );
    reg.register("proc-test:b", &b.pid).unwrap();
    assert!(matches!(
        reg.register("proc-test:b2", &b.pid),
        Err(SupervisionError::AlreadyRegistered { .. })
    ));

    a.addr.do_send(Do::Panic);
    within(a.pid.wait()).await;
    assert_eq!(reg.whereis("proc-test:a"), None);
    assert!(!reg.registered().contains(&"proc-test:a".to_owned()));
    // the freed name can be taken again
    reg.register("proc-test:a", &b.pid).unwrap_err(); // b already has a name
    assert_eq!(reg.unregister("proc-test:b"), Some(b.pid.clone()));
    reg.register("proc-test:a", &b.pid).unwrap();
    assert_eq!(reg.whereis("proc-test:a"), Some(b.pid.clone()));
}

#[actix_rt::test]
async fn kill_ends_an_actor_blocked_in_ctx_wait() {
    struct Stuck;
    impl Actor for Stuck {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            ctx.wait(fut::wrap_future(std::future::pending::<()>()));
        }
    }
    let s = spawn(|_| Stuck).unwrap();
    within(s.pid.started()).await.unwrap();
    // a graceful shutdown cannot get through the wait...
    s.pid.shutdown(ShutdownReason::Requested);
    actix_rt::time::sleep(Duration::from_millis(30)).await;
    assert!(s.pid.is_alive());
    // ...a kill can
    s.pid.kill();
    assert_eq!(within(s.pid.wait()).await, ExitReason::Killed);
}

#[actix_rt::test]
async fn process_outlives_its_addresses_and_knows_its_pid() {
    struct Me(Arc<Mutex<Option<Pid>>>);
    impl Actor for Me {
        type Context = Context<Self>;
        fn started(&mut self, ctx: &mut Context<Self>) {
            *self.0.lock().unwrap() = ctx.pid();
        }
    }
    let seen = Arc::new(Mutex::new(None));
    let s = spawn({
        let seen = seen.clone();
        move |_| Me(seen)
    })
    .unwrap();
    let pid = s.pid.clone();
    drop(s);
    within(pid.started()).await.unwrap();
    assert_eq!(seen.lock().unwrap().clone(), Some(pid.clone()));
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    assert!(pid.is_alive());
    pid.shutdown(ShutdownReason::Requested);
    assert_eq!(
        within(pid.wait()).await,
        ExitReason::Shutdown(ShutdownReason::Requested)
    );
}

#[actix_rt::test]
async fn a_panic_in_stopped_after_a_panic_does_not_abort() {
    struct Twice;
    impl Actor for Twice {
        type Context = Context<Self>;
        fn stopped(&mut self, _: &mut Context<Self>) {
            panic!("second panic in stopped");
        }
    }
    impl Handler<Do> for Twice {
        type Result = ();
        fn handle(&mut self, _: Do, _: &mut Context<Self>) {
            panic!("first panic");
        }
    }
    let t = spawn(|_| Twice).unwrap();
    let bystander = worker();
    t.addr.do_send(Do::Panic);
    // the first reason wins; the second panic is contained during teardown
    assert_eq!(
        within(t.pid.wait()).await,
        ExitReason::Panic("first panic".into())
    );
    bystander.addr.send(Ping).await.unwrap();
}

/// A process outlives its last `Addr` (the pid holds only a weak address), `Pid::addr`
/// still reaches it, and after it ends `Pid::addr` is `None`.
#[actix_rt::test]
async fn a_process_outlives_its_last_addr_and_pid_addr_reaches_it() {
    let Spawned { pid, addr } = spawn(|_| Worker::default()).unwrap();
    within(pid.started()).await.unwrap();
    drop(addr);
    // Give the mailbox a chance to notice it has no senders left.
    for _ in 0..5 {
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(pid.is_alive());
    let addr = pid.addr::<Worker>().expect("alive process has an address");
    assert!(pid.addr::<Watcher>().is_none(), "wrong actor type");
    within(addr.send(Ping)).await.unwrap();
    drop(addr);
    pid.shutdown(ShutdownReason::Requested);
    assert_eq!(
        within(pid.wait()).await,
        ExitReason::Shutdown(ShutdownReason::Requested)
    );
    assert!(pid.addr::<Worker>().is_none());
}
