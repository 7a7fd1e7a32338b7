//! Faults between `girder start` processes: a link cut and healed through
//! fault injection, a peer gone silent declared down by heartbeats, and nodes
//! with a wrong cookie or a wrong cluster name refused.

use std::time::Duration;

use girder_tests::cluster::{sorted, specs, Node, Spec, QUICK_HEARTBEAT_TIMEOUT, QUICK_NODEDOWN};

#[test]
fn a_cut_link_is_down_on_both_sides_until_restored() -> anyhow::Result<()> {
    let nodes = Node::start_all(specs(64, 3, true)?)?;
    let [n1, n2, n3] = &nodes[..] else {
        unreachable!("three specs")
    };
    let all = sorted(nodes.iter().map(|n| n.spec.name.as_str()));
    for n in &nodes {
        n.wait_for("all three running", |m| {
            m.running == all && m.stopped.is_empty()
        })?;
    }

    n1.ctl(&["cluster", "debug", &n2.spec.name, "cut"])?;
    let name1 = n1.spec.name.clone();
    let name2 = n2.spec.name.clone();
    n1.wait_for("n2 cut off", |m| m.stopped == [name2.clone()])?;
    n2.wait_for("n1 cut off", |m| m.stopped == [name1.clone()])?;
    // Only the n1-n2 link is cut: n3 still reaches both.
    assert_eq!(n3.members()?.running, all);
    // Reconnects and discovery do not get through a cut.
    n1.holds_for("the cut", Duration::from_secs(2), |m| {
        m.stopped == [name2.clone()]
    })?;

    n1.ctl(&["cluster", "debug", &n2.spec.name, "restore"])?;
    for n in &nodes {
        n.wait_for("healed", |m| m.running == all && m.stopped.is_empty())?;
    }
    Ok(())
}

#[test]
fn a_silent_peer_is_declared_down_after_the_heartbeat_timeout() -> anyhow::Result<()> {
    let mut quick = specs(66, 3, true)?;
    for s in &mut quick {
        s.extra.push_str(QUICK_NODEDOWN);
    }
    let nodes = Node::start_all(quick)?;
    let [n1, n2, n3] = &nodes[..] else {
        unreachable!("three specs")
    };
    let all = sorted(nodes.iter().map(|n| n.spec.name.as_str()));
    for n in &nodes {
        n.wait_for("all three running", |m| {
            m.running == all && m.stopped.is_empty()
        })?;
    }

    // n1 keeps its link to n2 open but writes nothing on it: only the
    // heartbeat timeout can tell n2 that n1 is gone.
    n1.ctl(&["cluster", "debug", &n2.spec.name, "drop"])?;
    let name1 = n1.spec.name.clone();
    let took = n2.wait_for("n1 down", |m| m.stopped == [name1.clone()])?;
    // cluster.dist.heartbeat_timeout is 1.2 s here (10 s by default).
    assert!(
        took < QUICK_HEARTBEAT_TIMEOUT + Duration::from_secs(3),
        "nodedown took {took:?}"
    );
    assert_eq!(n3.members()?.running, all);

    n1.ctl(&["cluster", "debug", &n2.spec.name, "restore"])?;
    for n in &nodes {
        n.wait_for("healed", |m| m.running == all && m.stopped.is_empty())?;
    }
    Ok(())
}

#[test]
fn a_wrong_cookie_or_cluster_name_is_refused() -> anyhow::Result<()> {
    let [good, stranger, other_cluster, late] =
        <[Spec; 4]>::try_from(specs(65, 4, false)?).map_err(|_| anyhow::anyhow!("four specs"))?;
    let seed = vec![good.target()];
    let stranger = Spec {
        cookie: "not-the-cookie".into(),
        seeds: seed.clone(),
        ..stranger
    };
    let other_cluster = Spec {
        cluster: "othercl".into(),
        seeds: seed.clone(),
        ..other_cluster
    };
    // The control: same cookie, same cluster, same seed.
    let late = Spec {
        seeds: seed,
        ..late
    };
    let nodes = Node::start_all(vec![good, stranger, other_cluster, late])?;
    let [n1, wrong_cookie, wrong_cluster, n4] = &nodes[..] else {
        unreachable!("four nodes")
    };
    let members = sorted([n1.spec.name.as_str(), n4.spec.name.as_str()]);
    for n in [n1, n4] {
        n.wait_for("n1 and n4 running", |m| m.running == members)?;
    }

    for n in [wrong_cookie, wrong_cluster] {
        let err = n.ctl_fails(&["cluster", "join", &n1.spec.target()])?;
        assert!(err.contains("handshake"), "{}: {err}", n.spec.name);
    }
    // Their seeds keep dialing n1; none of it gets in.
    for n in [n1, n4] {
        n.holds_for("only n1 and n4", Duration::from_secs(1), |m| {
            m.running == members && m.stopped.is_empty()
        })?;
    }
    for n in [wrong_cookie, wrong_cluster] {
        let m = n.members()?;
        assert_eq!(
            m.running,
            std::slice::from_ref(&n.spec.name),
            "{} is alone",
            n.spec.name
        );
        assert!(m.stopped.is_empty(), "{m:?}");
    }
    // n1 says why, without learning anything from the cookie itself.
    let log = n1.log();
    assert!(
        log.contains("the peer's proof does not match the cookie"),
        "{log}"
    );
    assert!(
        log.contains("peer is in cluster \"othercl\", this node in \"girdercl\""),
        "{log}"
    );
    Ok(())
}
