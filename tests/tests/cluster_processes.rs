//! Clusters of separate node processes on 127.0.K.N.

use girder_tests::cluster::{name, Node, Spec};

fn names(subnet: u8, ns: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = ns.iter().map(|n| name(subnet, *n)).collect();
    v.sort();
    v
}

#[test]
fn seeds_form_a_cluster_that_survives_kill_restart_and_leave() -> anyhow::Result<()> {
    const K: u8 = 61;
    let n1 = Node::start(Spec::new(K, 1))?;
    let mut n2 = Node::start(Spec {
        seeds: vec![1],
        ..Spec::new(K, 2)
    })?;
    let n3 = Node::start(Spec {
        seeds: vec![1],
        ..Spec::new(K, 3)
    })?;
    let all = names(K, &[1, 2, 3]);
    for n in [&n1, &n2, &n3] {
        n.wait_for("three running", |n| {
            n.members().is_ok_and(|(r, s)| r == all && s.is_empty())
        })?;
    }

    n2.kill();
    n1.wait_for("n2 stopped", |n| {
        n.members()
            .is_ok_and(|(r, s)| r == names(K, &[1, 3]) && s == names(K, &[2]))
    })?;
    let spec = n2.spec.clone();
    drop(n2);
    let n2 = Node::start(spec)?;
    n1.wait_for("n2 back", |n| n.members().is_ok_and(|(r, _)| r == all))?;
    n2.wait_for("n2 sees all", |n| n.members().is_ok_and(|(r, _)| r == all))?;

    n3.ctl(&["cluster", "leave"])?;
    n1.wait_for("n3 gone", |n| {
        n.members()
            .is_ok_and(|(r, s)| r == names(K, &[1, 2]) && s.is_empty())
    })?;
    // Discovery does not pull it back.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(n1.members()?.0, names(K, &[1, 2]));
    assert!(n3.members()?.0.is_empty());
    Ok(())
}

#[test]
fn ctl_join_force_leave_and_a_wrong_cookie() -> anyhow::Result<()> {
    const K: u8 = 62;
    let n1 = Node::start(Spec::new(K, 1))?;
    let n2 = Node::start(Spec::new(K, 2))?;
    let intruder = Node::start(Spec {
        cookie: "guess".into(),
        ..Spec::new(K, 3)
    })?;
    n2.ctl(&["cluster", "join", &name(K, 1)])?;
    n1.wait_for("joined", |n| {
        n.members().is_ok_and(|(r, _)| r == names(K, &[1, 2]))
    })?;
    assert!(
        intruder.ctl(&["cluster", "join", &name(K, 1)]).is_err(),
        "a wrong cookie is refused"
    );
    assert_eq!(n1.members()?.0, names(K, &[1, 2]));

    // Cut and heal through the fault-injection hook.
    n1.ctl(&["cluster", "debug", &name(K, 2), "cut"])?;
    n2.wait_for("cut", |n| {
        n.members().is_ok_and(|(_, s)| s == names(K, &[1]))
    })?;
    n1.ctl(&["cluster", "debug", &name(K, 2), "restore"])?;
    n2.wait_for("healed", |n| {
        n.members().is_ok_and(|(r, _)| r == names(K, &[1, 2]))
    })?;

    n1.ctl(&["cluster", "force-leave", &name(K, 2)])?;
    n1.wait_for("n2 removed", |n| {
        n.members()
            .is_ok_and(|(r, s)| r == names(K, &[1]) && s.is_empty())
    })?;
    n2.wait_for("n2 told", |n| n.members().is_ok_and(|(r, _)| r.is_empty()))?;
    Ok(())
}
