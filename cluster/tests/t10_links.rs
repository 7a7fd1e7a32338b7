//! In-process nodes on loopback: links, calls, monitors, membership, faults.

use std::time::Duration;

use girder_cluster::{
    start, Backoff, ClusterError, ClusterHandle, ClusterOptions, DownReason, FaultAction,
    NodeEvent, NodeName, Payload, RemoteMessage, DEBUG_SLEEP, ECHO,
};
use tokio::sync::mpsc;

const SECOND: Duration = Duration::from_secs(1);

/// How long a test waits for what must happen soon: long enough for a
/// loaded machine, which can stall a process for a second or more.
const WAIT: Duration = Duration::from_secs(5);

/// Heartbeats every 250 ms, a peer down after 3 s of silence: a loaded
/// machine does not fake a silence. `quick` is for the test that measures
/// detection.
fn options(name: &str, cookie: &str, cluster: &str) -> ClusterOptions {
    let mut o = ClusterOptions::new(name, cookie, cluster).unwrap();
    o.dist_bind = "127.0.0.1:0".parse().unwrap();
    o.heartbeat_interval = Duration::from_millis(250);
    o.heartbeat_misses = 12;
    o.connect_timeout = SECOND;
    o.backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
    };
    o.fault_injection = true;
    o
}

async fn node(name: &str) -> ClusterHandle {
    start(options(name, "secret", "test")).await.unwrap()
}

/// A node that declares a silent peer down after 300 ms (100 ms heartbeats,
/// 3 missed).
async fn quick_node(name: &str) -> ClusterHandle {
    let mut o = options(name, "secret", "test");
    o.heartbeat_interval = Duration::from_millis(100);
    o.heartbeat_misses = 3;
    start(o).await.unwrap()
}

fn target(h: &ClusterHandle) -> String {
    format!("{}:{}", h.node(), h.local_addr().port())
}

/// Polls `check` every 20 ms until it holds, for at most [`WAIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn running(h: &ClusterHandle) -> Vec<String> {
    let mut v: Vec<String> = h.status().running.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

#[tokio::test]
async fn three_nodes_join_agree_on_members_and_call_each_other() {
    let (a, b, c) = (
        node("a@127.0.0.1").await,
        node("b@127.0.0.1").await,
        node("c@127.0.0.1").await,
    );
    let mut events = a.subscribe();
    b.join(&target(&a)).await.unwrap();
    assert_eq!(
        events.recv().await.unwrap(),
        NodeEvent::Up(b.node().clone())
    );
    c.join(&target(&b)).await.unwrap();
    let all = vec![
        "a@127.0.0.1".to_owned(),
        "b@127.0.0.1".into(),
        "c@127.0.0.1".into(),
    ];
    for h in [&a, &b, &c] {
        eventually("full mesh", || running(h) == all).await;
    }
    let pong = c
        .call(a.node(), ECHO, Payload::new("t", "hi"), WAIT)
        .await
        .unwrap();
    assert_eq!(&pong.data[..], b"hi");
    let own = a
        .call(a.node(), ECHO, Payload::new("t", "me"), WAIT)
        .await
        .unwrap();
    assert_eq!(&own.data[..], b"me");
    for h in [a, b, c] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn wrong_cookie_and_wrong_cluster_are_refused() {
    let a = node("a@127.0.0.1").await;
    let bad_cookie = start(options("x@127.0.0.1", "guess", "test"))
        .await
        .unwrap();
    let bad_cluster = start(options("y@127.0.0.1", "secret", "other"))
        .await
        .unwrap();
    let e = bad_cookie.join(&target(&a)).await.unwrap_err();
    assert!(matches!(e, ClusterError::Handshake { .. }), "{e}");
    let e = bad_cluster.join(&target(&a)).await.unwrap_err();
    assert!(matches!(e, ClusterError::Handshake { .. }), "{e}");
    assert!(a.connected().is_empty());
    assert_eq!(running(&a), vec!["a@127.0.0.1".to_owned()]);
    for h in [a, bad_cookie, bad_cluster] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn calls_time_out_fail_on_missing_names_and_on_nodedown() {
    let (a, b) = (node("a@127.0.0.1").await, node("b@127.0.0.1").await);
    b.join(&target(&a)).await.unwrap();
    let slow = Payload::new("ms", 2000u64.to_be_bytes().to_vec());
    let e = b
        .call(
            a.node(),
            DEBUG_SLEEP,
            slow.clone(),
            Duration::from_millis(100),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ClusterError::Timeout { .. }), "{e}");
    let e = b
        .call(a.node(), "nobody", Payload::new("t", ""), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(e, ClusterError::NoSuchName { .. }), "{e}");
    let pending = {
        let b = b.clone();
        let a_name = a.node().clone();
        tokio::spawn(async move { b.call(&a_name, DEBUG_SLEEP, slow, 10 * SECOND).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.shutdown().await;
    let e = pending.await.unwrap().unwrap_err();
    assert!(matches!(e, ClusterError::NodeDown(_)), "{e}");
    b.shutdown().await;
}

#[tokio::test]
async fn monitors_fire_on_unregister_on_noproc_and_on_nodedown() {
    let (a, b) = (node("a@127.0.0.1").await, node("b@127.0.0.1").await);
    b.join(&target(&a)).await.unwrap();
    let (tx, _rx) = mpsc::unbounded_channel::<RemoteMessage>();
    a.register("worker", tx).unwrap();
    assert_eq!(b.monitor(a.node(), "ghost").await, DownReason::NoProc);
    let m = b.monitor(a.node(), "worker");
    // The monitor is registered on `a` before the unregister below: a call behind it on the same link proves it.
    b.call(a.node(), ECHO, Payload::new("t", ""), WAIT)
        .await
        .unwrap();
    a.unregister("worker");
    assert_eq!(
        tokio::time::timeout(WAIT, m).await.unwrap(),
        DownReason::Unregistered
    );
    let m = b.monitor(a.node(), ECHO);
    a.shutdown().await;
    assert_eq!(
        tokio::time::timeout(WAIT, m).await.unwrap(),
        DownReason::NoConnection
    );
    assert_eq!(b.monitor(a.node(), ECHO).await, DownReason::NoConnection);
    b.shutdown().await;
}

#[tokio::test]
async fn casts_keep_their_order_under_load() {
    let (a, b) = (node("a@127.0.0.1").await, node("b@127.0.0.1").await);
    b.join(&target(&a)).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel::<RemoteMessage>();
    b.register("sink", tx).unwrap();
    const N: u32 = 20_000;
    for i in 0..N {
        b.send_from(
            a.node(),
            ECHO,
            Some("sink"),
            Payload::new("seq", i.to_be_bytes().to_vec()),
        )
        .unwrap();
    }
    for i in 0..N {
        let m = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.from, *a.node());
        assert_eq!(
            u32::from_be_bytes(m.payload.data[..].try_into().unwrap()),
            i
        );
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn leave_and_force_leave_update_every_member() {
    let (a, b, c) = (
        node("a@127.0.0.1").await,
        node("b@127.0.0.1").await,
        node("c@127.0.0.1").await,
    );
    b.join(&target(&a)).await.unwrap();
    c.join(&target(&a)).await.unwrap();
    for h in [&a, &b, &c] {
        eventually("full mesh", || running(h).len() == 3).await;
    }
    c.leave();
    for h in [&a, &b] {
        eventually("c gone", || {
            running(h).len() == 2 && h.status().stopped.is_empty()
        })
        .await;
    }
    eventually("c alone", || c.connected().is_empty()).await;
    assert!(
        c.status().running.is_empty(),
        "a node that left lists no running members"
    );
    // It stays out: nobody redials it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(c.connected().is_empty());

    a.force_leave(b.node()).unwrap();
    eventually("b removed", || {
        running(&a) == vec!["a@127.0.0.1".to_owned()]
    })
    .await;
    eventually("b told", || {
        b.connected().is_empty() && b.status().running.is_empty()
    })
    .await;
    // A removed node joins again explicitly.
    b.join(&target(&a)).await.unwrap();
    eventually("b back", || running(&a).len() == 2).await;
    for h in [a, b, c] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn cut_heal_and_drop_faults() {
    let (a, b) = (
        quick_node("a@127.0.0.1").await,
        quick_node("b@127.0.0.1").await,
    );
    b.join(&target(&a)).await.unwrap();
    let mut events = b.subscribe();
    a.inject_fault(b.node(), FaultAction::Cut).unwrap();
    let ev = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(ev, NodeEvent::Down(ref n, _) if n == a.node()),
        "{ev:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        a.connected().is_empty() && b.connected().is_empty(),
        "a cut link stays down"
    );
    assert_eq!(b.status().stopped, vec![a.node().clone()]);
    a.inject_fault(b.node(), FaultAction::Restore).unwrap();
    let ev = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev, NodeEvent::Up(a.node().clone()));

    a.inject_fault(b.node(), FaultAction::Drop).unwrap();
    let ev = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ev,
        NodeEvent::Down(
            a.node().clone(),
            girder_cluster::NodeDownReason::HeartbeatTimeout
        )
    );
    a.inject_fault(b.node(), FaultAction::Restore).unwrap();
    eventually("healed", || b.connected().len() == 1).await;

    a.inject_fault(b.node(), FaultAction::Delay(Duration::from_millis(150)))
        .unwrap();
    let t = std::time::Instant::now();
    b.call(a.node(), ECHO, Payload::new("t", ""), WAIT)
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    let plain = start(options("p@127.0.0.1", "secret", "test"))
        .await
        .map(|h| {
            let mut o = options("q@127.0.0.1", "secret", "test");
            o.fault_injection = false;
            (h, o)
        });
    let (p, q_opts) = plain.unwrap();
    let q = start(q_opts).await.unwrap();
    assert!(matches!(
        q.inject_fault(p.node(), FaultAction::Cut),
        Err(ClusterError::FaultInjectionDisabled)
    ));
    for h in [a, b, p, q] {
        h.shutdown().await;
    }
}

#[tokio::test]
async fn simultaneous_joins_leave_one_link() {
    for round in 0..5 {
        let a = node(&format!("a{round}@127.0.0.1")).await;
        let b = node(&format!("b{round}@127.0.0.1")).await;
        let (ta, tb) = (target(&a), target(&b));
        let (ra, rb) = tokio::join!(a.join(&tb), b.join(&ta));
        ra.unwrap();
        rb.unwrap();
        let mut events = a.subscribe();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(a.connected(), vec![b.node().clone()]);
        assert_eq!(b.connected(), vec![a.node().clone()]);
        assert!(
            events.try_recv().is_err(),
            "the link is stable: no nodedown after the tie-break"
        );
        let pong = a
            .call(b.node(), ECHO, Payload::new("t", "x"), WAIT)
            .await
            .unwrap();
        assert_eq!(&pong.data[..], b"x");
        a.shutdown().await;
        b.shutdown().await;
    }
}

#[test]
fn node_names_from_the_crate_root() {
    assert_eq!(
        NodeName::parse("emqx3@h").unwrap().default_dist_port(),
        4373
    );
}
