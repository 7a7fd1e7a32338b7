//! DNS discovery on loopback.
//!
//! The strategy turns every A record of a name into a node `app@ip`, where
//! `app` is this node's name part, dialed on this node's own port: all nodes
//! share a name part and a port and differ by IP, as in a Kubernetes headless
//! service. On a machine with only loopback, `localhost` resolves to
//! 127.0.0.1; a second node on 127.0.0.2 (also loopback on Linux) with the
//! same port finds the first one through it.

use std::time::Duration;

use girder_cluster::{start, ClusterError, ClusterHandle, ClusterOptions, Discovery, ECHO};
use girder_cluster::{NodeName, Payload};

const SECOND: Duration = Duration::from_secs(1);

fn options(ip: &str, port: u16) -> ClusterOptions {
    let mut o = ClusterOptions::new(&format!("dns@{ip}"), "secret", "test").unwrap();
    o.dist_bind = format!("{ip}:{port}").parse().unwrap();
    // A peer down after 3 s of silence: a loaded machine does not fake one.
    o.heartbeat_interval = Duration::from_millis(250);
    o.heartbeat_misses = 12;
    o.connect_timeout = SECOND;
    o.discovery = Discovery::Dns {
        name: "localhost".to_owned(),
    };
    o.discovery_interval = Duration::from_millis(100);
    o
}

/// Starts `dns@127.0.0.1` and `dns@127.0.0.2` on one port that is free on
/// both addresses (another test may take a port between the probe and the
/// bind: a few tries).
async fn two_nodes() -> (ClusterHandle, ClusterHandle) {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let first = match start(options("127.0.0.1", port)).await {
            Ok(h) => h,
            Err(ClusterError::Bind { .. }) => continue,
            Err(e) => panic!("{e}"),
        };
        match start(options("127.0.0.2", port)).await {
            Ok(second) => return (first, second),
            Err(ClusterError::Bind { .. }) => first.shutdown().await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

fn running(h: &ClusterHandle) -> Vec<String> {
    let mut v: Vec<String> = h.status().running.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

#[tokio::test]
async fn nodes_find_each_other_through_the_a_records_of_a_name() {
    let (first, second) = two_nodes().await;
    let both = vec!["dns@127.0.0.1".to_owned(), "dns@127.0.0.2".to_owned()];
    let deadline = tokio::time::Instant::now() + 5 * SECOND;
    while running(&first) != both || running(&second) != both {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no join through dns: {:?} / {:?}",
            running(&first),
            running(&second)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The node whose own address is the record does not link to itself.
    assert_eq!(first.connected(), vec![second.node().clone()]);
    assert_eq!(second.connected(), vec![first.node().clone()]);
    let to = NodeName::parse("dns@127.0.0.1").unwrap();
    let pong = second
        .call(&to, ECHO, Payload::new("t", "found"), 5 * SECOND)
        .await
        .unwrap();
    assert_eq!(&pong.data[..], b"found");
    for h in [first, second] {
        h.shutdown().await;
    }
}
