//! The cluster side under the node's supervision tree, with `girder start`
//! processes: a replication task that panics (made to, through the admin
//! API's `TaskDebug`, with `cluster.dist.fault_injection = true`) is started
//! again by its supervisor, and replication goes on: a replicant catches up
//! with the writes made after the panic.

use std::time::Duration;

use anyhow::{Context, Result};
use girder_tests::cluster::{specs, Node, Spec};

const WAIT: Duration = Duration::from_secs(15);

/// `name`'s entry of `ctl cluster debug-task` on `node`: (starts, running).
fn task(node: &Node, name: &str) -> Result<(u64, bool)> {
    let v = node.ctl(&["cluster", "debug-task"])?;
    let t = v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["name"] == name)
        .with_context(|| format!("{}: no task {name} in {v}", node.spec.name))?;
    Ok((
        t["starts"].as_u64().unwrap_or(0),
        t["running"].as_bool().unwrap_or(false),
    ))
}

/// Makes `name` panic on `node` and waits until it runs again, started
/// once more than before.
fn panic_and_wait_restarted(node: &Node, name: &str) -> Result<()> {
    let (before, running) = task(node, name)?;
    assert!(running, "{name} runs before the panic");
    let asked = node.ctl(&["cluster", "debug-task", "--panic", name]);
    // The admin endpoint may go down before its answer is out.
    if name != "admin" {
        asked?;
    }
    node.wait_until(&format!("{name} restarted"), WAIT, |n| {
        let (starts, running) = task(n, name)?;
        Ok(starts > before && running)
    })?;
    Ok(())
}

/// Waits until `node` holds `users/key = value`.
fn wait_row(node: &Node, key: &str, value: &str) -> Result<()> {
    node.wait_until(&format!("users/{key} = {value}"), WAIT, |n| {
        Ok(n.get_row("users", key)?.as_deref() == Some(value))
    })?;
    Ok(())
}

#[test]
fn a_replication_task_that_panics_is_restarted_and_a_replicant_catches_up() -> Result<()> {
    let [core, replicant] =
        <[Spec; 2]>::try_from(specs(105, 2, false)?).map_err(|_| anyhow::anyhow!("two specs"))?;
    let replicant = Spec {
        seeds: vec![core.target()],
        extra: format!(
            "node.role = replicant\ncluster.core_nodes = [\"{}\"]\n",
            core.name
        ),
        ..replicant
    };
    let nodes = Node::start_all(vec![core, replicant])?;
    let (core, replicant) = (&nodes[0], &nodes[1]);
    core.put_row("users", "before", "1")?;
    wait_row(replicant, "before", "1")?;

    // The core's pump sends its feeds to the replicant: panicked and not
    // restarted, the replicant would never see another write.
    panic_and_wait_restarted(core, "rlog.pump")?;
    core.put_row("users", "after-pump", "2")?;
    wait_row(replicant, "after-pump", "2")?;

    // The core's write batcher of the `auth` shard: every write of the
    // shard goes through it.
    panic_and_wait_restarted(core, "rlog.batcher.auth")?;
    core.put_row("users", "after-batcher", "3")?;
    wait_row(replicant, "after-batcher", "3")?;

    // The replicant's dispatcher takes the pushes in.
    panic_and_wait_restarted(replicant, "rlog.dispatch")?;
    core.put_row("users", "after-dispatch", "4")?;
    wait_row(replicant, "after-dispatch", "4")?;

    // The admin endpoint itself: it answers again once restarted.
    panic_and_wait_restarted(core, "admin")?;

    for (node, name) in [(core, "rlog.pump"), (replicant, "rlog.dispatch")] {
        let log = node.log();
        assert!(
            log.contains("cluster_task_panicked") && log.contains("cluster_task_restarted"),
            "{}: {name}'s panic and restart are logged",
            node.spec.name
        );
    }
    Ok(())
}

#[test]
fn a_task_panic_needs_fault_injection() -> Result<()> {
    let [lone] =
        <[Spec; 1]>::try_from(specs(106, 1, false)?).map_err(|_| anyhow::anyhow!("one"))?;
    let lone = Spec {
        extra: "cluster.dist.fault_injection = false\n".into(),
        ..lone
    };
    let node = Node::start(lone)?;
    let (starts, running) = task(&node, "rlog.ticker")?;
    assert_eq!((starts, running), (1, true));
    let err = node.ctl_fails(&["cluster", "debug-task", "--panic", "rlog.ticker"])?;
    assert!(err.contains("fault injection is off"), "{err}");
    assert_eq!(task(&node, "rlog.ticker")?, (1, true));
    Ok(())
}
