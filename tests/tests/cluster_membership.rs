//! Membership of a cluster of `girder start` processes: static seeds, ctl
//! join, leave (and staying out), force-leave, and a node killed with SIGKILL
//! that rejoins by itself when it is started again.

use std::time::Duration;

use girder_tests::cluster::{sorted, specs, Node};

/// `ClusterOptions::discovery_interval` (not configurable): a left node must
/// stay out for longer than one round of discovery on every other node.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);

fn names(nodes: &[&Node]) -> Vec<String> {
    sorted(nodes.iter().map(|n| n.spec.name.as_str()))
}

/// Starts the nodes and waits until each sees all of them running.
fn all_running(specs: Vec<girder_tests::cluster::Spec>) -> anyhow::Result<Vec<Node>> {
    let nodes = Node::start_all(specs)?;
    let all = sorted(nodes.iter().map(|n| n.spec.name.as_str()));
    for n in &nodes {
        n.wait_for("all running", |m| m.running == all && m.stopped.is_empty())?;
    }
    Ok(nodes)
}

#[test]
fn static_seeds_form_a_cluster_and_a_left_node_is_not_pulled_back() -> anyhow::Result<()> {
    let nodes = Node::start_all(specs(61, 3, true)?)?;
    let [n1, n2, n3] = &nodes[..] else {
        unreachable!("three specs")
    };
    let all = names(&[n1, n2, n3]);
    for n in &nodes {
        n.wait_for("all three running", |m| {
            m.running == all && m.stopped.is_empty()
        })?;
    }

    let left = n3.ctl(&["cluster", "leave"]);
    assert!(left.is_ok(), "leave: {left:?}");
    let rest = names(&[n1, n2]);
    for n in [n1, n2] {
        n.wait_for("n3 gone, not stopped", |m| {
            m.running == rest && m.stopped.is_empty()
        })?;
    }
    n3.wait_for("n3 alone", |m| m.running.is_empty())?;
    // n3 is still a static seed of n1 and n2, and n1 and n2 are n3's: a round
    // of discovery on each side must not bring it back.
    let period = DISCOVERY_INTERVAL + Duration::from_secs(1);
    n1.holds_for("n3 stays out", period, |m| !m.knows(&n3.spec.name))?;
    n2.holds_for("n3 stays out", Duration::ZERO, |m| !m.knows(&n3.spec.name))?;
    assert!(n3.members()?.running.is_empty(), "a left node stays alone");

    // A left node comes back by an explicit join.
    n3.ctl(&["cluster", "join", &n1.spec.target()])?;
    for n in &nodes {
        n.wait_for("n3 back", |m| m.running == all && m.stopped.is_empty())?;
    }
    Ok(())
}

#[test]
fn ctl_join_builds_a_cluster_and_force_leave_removes_dead_and_live_members() -> anyhow::Result<()> {
    let mut nodes = Node::start_all(specs(62, 4, false)?)?;
    // Manual discovery: each node is alone until told to join.
    for n in &nodes {
        n.wait_for("alone", |m| m.running == [n.spec.name.clone()])?;
    }
    let n1 = nodes[0].spec.target();
    let n3 = nodes[2].spec.target();
    nodes[1].ctl(&["cluster", "join", &n1])?;
    nodes[2].ctl(&["cluster", "join", &n1])?;
    // Joining any member is joining the whole cluster.
    nodes[3].ctl(&["cluster", "join", &n3])?;
    let all = sorted(nodes.iter().map(|n| n.spec.name.as_str()));
    for n in &nodes {
        n.wait_for("all four running", |m| {
            m.running == all && m.stopped.is_empty()
        })?;
    }

    // force-leave of a dead node: it leaves the stopped list everywhere.
    nodes[3].kill();
    let n4 = nodes[3].spec.name.clone();
    nodes[0].wait_for("n4 stopped", |m| m.stopped == [n4.clone()])?;
    nodes[0].ctl(&["cluster", "force-leave", &n4])?;
    let three = sorted(nodes[..3].iter().map(|n| n.spec.name.as_str()));
    for n in &nodes[..3] {
        n.wait_for("n4 removed", |m| m.running == three && m.stopped.is_empty())?;
    }

    // force-leave of a live node, from another member: the node is told.
    let n3_name = nodes[2].spec.name.clone();
    nodes[1].ctl(&["cluster", "force-leave", &n3_name])?;
    let two = sorted(nodes[..2].iter().map(|n| n.spec.name.as_str()));
    for n in &nodes[..2] {
        n.wait_for("n3 removed", |m| m.running == two && m.stopped.is_empty())?;
    }
    nodes[2].wait_for("n3 told", |m| m.running.is_empty())?;
    Ok(())
}

#[test]
fn a_node_killed_with_sigkill_rejoins_by_itself_when_restarted() -> anyhow::Result<()> {
    let mut nodes = all_running(specs(63, 3, true)?)?;
    let all = sorted(nodes.iter().map(|n| n.spec.name.as_str()));

    nodes[1].kill();
    let n2 = nodes[1].spec.name.clone();
    let survivors = sorted([nodes[0].spec.name.as_str(), nodes[2].spec.name.as_str()]);
    for i in [0, 2] {
        nodes[i].wait_for("n2 stopped", |m| {
            m.running == survivors && m.stopped == [n2.clone()]
        })?;
    }

    // Same config and data dir, new process: nobody runs `cluster join`.
    nodes[1].restart()?;
    for n in &nodes {
        n.wait_for("n2 back", |m| m.running == all && m.stopped.is_empty())?;
    }
    Ok(())
}

#[test]
fn autoclean_removes_a_member_that_stays_down() -> anyhow::Result<()> {
    let specs = specs(67, 3, true)?
        .into_iter()
        .map(|s| girder_tests::cluster::Spec {
            extra: "cluster.autoclean = 2s\n".into(),
            ..s
        })
        .collect();
    let mut nodes = all_running(specs)?;
    nodes[1].kill();
    let n2 = nodes[1].spec.name.clone();
    let survivors = sorted([nodes[0].spec.name.as_str(), nodes[2].spec.name.as_str()]);
    // First listed as stopped (as without autoclean, see the test above),
    // then removed from the cluster.
    nodes[0].wait_for("n2 stopped", |m| m.stopped == [n2.clone()])?;
    for i in [0, 2] {
        nodes[i].wait_for("n2 removed", |m| {
            m.running == survivors && m.stopped.is_empty()
        })?;
    }
    Ok(())
}

#[test]
fn a_singleton_node_never_joins_nor_is_joined() -> anyhow::Result<()> {
    let [lone, other] = <[girder_tests::cluster::Spec; 2]>::try_from(specs(68, 2, false)?)
        .map_err(|_| anyhow::anyhow!("two specs"))?;
    let lone = girder_tests::cluster::Spec {
        extra: "cluster.discovery_strategy = singleton\n".into(),
        ..lone
    };
    let (lone_target, other_target) = (lone.target(), other.target());
    let nodes = Node::start_all(vec![lone, other])?;
    let [lone, other] = &nodes[..] else {
        unreachable!("two nodes")
    };
    let refused = lone.ctl_fails(&["cluster", "join", &other_target])?;
    assert!(refused.contains("singleton"), "{refused}");
    let refused = other.ctl_fails(&["cluster", "join", &lone_target])?;
    assert!(refused.contains("failed"), "{refused}");
    let alone = sorted([lone.spec.name.as_str()]);
    lone.wait_for("alone", |m| m.running == alone && m.stopped.is_empty())?;
    Ok(())
}
