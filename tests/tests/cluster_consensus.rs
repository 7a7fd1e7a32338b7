//! One consensus group per cluster, as `girder start` processes: the
//! README's cluster (static seeds, no `cluster.core_nodes`) forms one Raft
//! group for the `auth` shard; cores join it under writes, a dead core is
//! force-left and replaced, a node whose `cluster.core_nodes` contradicts
//! the running group is refused, a full restart keeps the group, and
//! manual joins add each core to the first one's group.
//!
//! Rows are written and read with `girder ctl cluster debug-table` (a
//! fault-injection-only admin call) in the `users` table of the `auth`
//! shard.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use girder_tests::cluster::{ctl_at, sorted, specs, Node, Spec};

const SHARD: &str = "auth";
const TABLE: &str = "users";
/// How long a group may take to form or change on a loaded machine.
const FORM: Duration = Duration::from_secs(30);

fn names(nodes: &[&Spec]) -> Vec<String> {
    sorted(nodes.iter().map(|s| s.name.as_str()))
}

/// Waits until `node` reports `want` as the voters and a leader among them.
fn wait_voters(node: &Node, want: &[String]) -> Result<()> {
    node.wait_until(&format!("voters {want:?} and a leader"), FORM, |n| {
        let g = n.consensus(SHARD)?;
        let leader = g["leader"].as_str().unwrap_or_default().to_owned();
        Ok(n.voters(SHARD)? == want && want.contains(&leader))
    })?;
    Ok(())
}

fn wait_row(node: &Node, key: &str, value: &str) -> Result<()> {
    node.wait_until(&format!("row {key} = {value}"), FORM, |n| {
        Ok(n.get_row(TABLE, key)?.as_deref() == Some(value))
    })?;
    Ok(())
}

/// Writes rows `prefix-0..` on `spec`'s node from a thread until `stop`,
/// counting the acknowledged ones in `count`; returns their keys.
fn writer(
    spec: Spec,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut i = 0u32;
        while !stop.load(Ordering::Relaxed) && i < 10_000 {
            let key = format!("{prefix}-{i}");
            if ctl_at(&spec, &["cluster", "debug-table", "put", TABLE, &key, "v"]).is_ok() {
                acked.push(key);
                count.fetch_add(1, Ordering::Relaxed);
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(20));
        }
        acked
    })
}

#[test]
fn the_readme_cluster_forms_one_group_written_on_one_node_read_on_the_others() -> Result<()> {
    let specs = specs(74, 3, true)?;
    let all = names(&specs.iter().collect::<Vec<_>>());
    let nodes = Node::start_all(specs)?;
    for n in &nodes {
        wait_voters(n, &all)?;
    }
    // One leader, the same on every node.
    let leaders: Vec<String> = nodes
        .iter()
        .map(|n| Ok(n.consensus(SHARD)?["leader"].to_string()))
        .collect::<Result<_>>()?;
    assert!(leaders.windows(2).all(|w| w[0] == w[1]), "{leaders:?}");

    nodes[0].put_row(TABLE, "alice", "hash-1")?;
    wait_row(&nodes[1], "alice", "hash-1")?;
    wait_row(&nodes[2], "alice", "hash-1")?;
    nodes[2].put_row(TABLE, "bob", "hash-2")?;
    wait_row(&nodes[0], "bob", "hash-2")?;
    wait_row(&nodes[1], "bob", "hash-2")?;
    Ok(())
}

#[test]
fn a_fourth_core_joins_under_writes_and_becomes_a_voter() -> Result<()> {
    let mut specs = specs(75, 4, false)?;
    let first: Vec<String> = specs[..3].iter().map(Spec::target).collect();
    for s in &mut specs {
        s.seeds.clone_from(&first);
    }
    let fourth = specs.pop().expect("four specs");
    let three = names(&specs.iter().collect::<Vec<_>>());
    let mut four = three.clone();
    four.push(fourth.name.clone());
    four.sort();
    let nodes = Node::start_all(specs)?;
    for n in &nodes {
        wait_voters(n, &three)?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let writes = writer(nodes[0].spec.clone(), "w", stop.clone(), count.clone());
    // Writes run before the fourth core comes, while it joins and after.
    let writes_reach = |n: usize| {
        nodes[0].wait_until("writes acknowledged", Duration::from_secs(20), |_| {
            Ok(count.load(Ordering::Relaxed) >= n)
        })
    };
    writes_reach(3)?;

    // Its seeds are the first three, whose own sets differ from its: it
    // starts no group, and is added to the running one.
    let new = Node::start(fourth)?;
    let added = wait_voters(&nodes[0], &four);
    let after = count.load(Ordering::Relaxed) + 3;
    let reached = writes_reach(after);
    stop.store(true, Ordering::Relaxed);
    let acked = writes
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))?;
    added?;
    reached?;
    wait_voters(&new, &four)?;
    assert!(!acked.is_empty(), "no write was acknowledged");
    // Every acknowledged write is on the new core.
    let last = acked.last().cloned().unwrap_or_default();
    wait_row(&new, &last, "v")?;
    for key in &acked {
        if new.get_row(TABLE, key)?.as_deref() != Some("v") {
            bail!("{key} was acknowledged but is not on the new core");
        }
    }
    Ok(())
}

#[test]
fn a_dead_core_is_force_left_and_replaced() -> Result<()> {
    let mut specs = specs(76, 4, false)?;
    let first: Vec<String> = specs[..3].iter().map(Spec::target).collect();
    for s in &mut specs {
        s.seeds.clone_from(&first);
    }
    let replacement = specs.pop().expect("four specs");
    let three = names(&specs.iter().collect::<Vec<_>>());
    let mut nodes = Node::start_all(specs)?;
    for n in &nodes {
        wait_voters(n, &three)?;
    }
    nodes[0].put_row(TABLE, "before", "1")?;

    let dead = nodes[2].spec.name.clone();
    nodes[2].kill();
    nodes[0].ctl(&["cluster", "force-leave", &dead])?;
    let two = names(&[&nodes[0].spec, &nodes[1].spec]);
    wait_voters(&nodes[0], &two)?;

    let new = Node::start(replacement)?;
    let mut replaced = two.clone();
    replaced.push(new.spec.name.clone());
    replaced.sort();
    wait_voters(&nodes[0], &replaced)?;
    wait_voters(&new, &replaced)?;
    wait_row(&new, "before", "1")?;
    new.put_row(TABLE, "after", "2")?;
    wait_row(&nodes[1], "after", "2")?;
    Ok(())
}

#[test]
fn a_core_whose_core_nodes_contradict_the_running_group_is_refused() -> Result<()> {
    let mut specs = specs(77, 4, false)?;
    let first: Vec<String> = specs[..3].iter().map(Spec::target).collect();
    let listed = specs[..3]
        .iter()
        .map(|s| format!("{:?}", s.name))
        .collect::<Vec<_>>()
        .join(", ");
    for s in &mut specs {
        s.seeds.clone_from(&first);
    }
    let mut stranger = specs.pop().expect("four specs");
    for s in &mut specs {
        s.extra = format!("cluster.core_nodes = [{listed}]\n");
    }
    let three = names(&specs.iter().collect::<Vec<_>>());
    let nodes = Node::start_all(specs)?;
    for n in &nodes {
        wait_voters(n, &three)?;
    }
    stranger.extra = format!(
        "cluster.core_nodes = [{:?}, {:?}]\n",
        nodes[0].spec.name, stranger.name
    );
    let refused = Node::start(stranger).expect_err("a contradicting core_nodes is refused");
    let text = format!("{refused:#}");
    assert!(
        text.contains("contradicts the running group"),
        "not refused with the reason: {text}"
    );
    // The group is unchanged.
    for n in &nodes {
        assert_eq!(n.voters(SHARD)?, three);
    }
    Ok(())
}

#[test]
fn after_a_full_restart_the_group_is_the_same() -> Result<()> {
    let specs = specs(78, 3, true)?;
    let all = names(&specs.iter().collect::<Vec<_>>());
    let mut nodes = Node::start_all(specs)?;
    for n in &nodes {
        wait_voters(n, &all)?;
    }
    nodes[1].put_row(TABLE, "kept", "yes")?;
    wait_row(&nodes[2], "kept", "yes")?;
    for n in &mut nodes {
        n.kill();
    }
    for n in &mut nodes {
        n.restart()?;
    }
    for n in &nodes {
        wait_voters(n, &all)?;
        wait_row(n, "kept", "yes")?;
    }
    nodes[2].put_row(TABLE, "later", "too")?;
    wait_row(&nodes[0], "later", "too")?;
    Ok(())
}

#[test]
fn with_manual_discovery_each_joined_core_is_added_to_the_first_ones_group() -> Result<()> {
    let specs = specs(79, 3, false)?;
    let all = names(&specs.iter().collect::<Vec<_>>());
    let nodes = Node::start_all(specs)?;
    // Each starts alone.
    for n in &nodes {
        wait_voters(n, std::slice::from_ref(&n.spec.name))?;
    }
    for n in &nodes {
        n.put_row(TABLE, &format!("own-{}", n.spec.name), "x")?;
    }
    nodes[0].put_row(TABLE, "from-n1", "1")?;
    let target = nodes[0].spec.target();
    nodes[1].ctl(&["cluster", "join", &target])?;
    nodes[2].ctl(&["cluster", "join", &target])?;
    for n in &nodes {
        wait_voters(n, &all)?;
    }
    // The joiners' own rows were replaced by the first node's.
    for n in &nodes[1..] {
        wait_row(n, "from-n1", "1")?;
        assert_eq!(n.get_row(TABLE, &format!("own-{}", n.spec.name))?, None);
    }
    nodes[2].put_row(TABLE, "carol", "h")?;
    wait_row(&nodes[0], "carol", "h")?;
    wait_row(&nodes[1], "carol", "h")?;
    Ok(())
}

#[test]
fn a_core_that_leaves_is_removed_from_the_voters_and_is_added_again_when_it_joins() -> Result<()> {
    let specs = specs(80, 3, true)?;
    let all = names(&specs.iter().collect::<Vec<_>>());
    let nodes = Node::start_all(specs)?;
    for n in &nodes {
        wait_voters(n, &all)?;
    }
    nodes[2].ctl(&["cluster", "leave"])?;
    let two = names(&[&nodes[0].spec, &nodes[1].spec]);
    wait_voters(&nodes[0], &two)?;
    wait_voters(&nodes[1], &two)?;
    nodes[0].put_row(TABLE, "while-away", "x")?;

    nodes[2].ctl(&["cluster", "join", &nodes[0].spec.target()])?;
    for n in &nodes {
        wait_voters(n, &all)?;
    }
    wait_row(&nodes[2], "while-away", "x")?;
    nodes[2].put_row(TABLE, "back", "y")?;
    wait_row(&nodes[1], "back", "y")?;
    Ok(())
}

#[test]
fn cluster_status_shows_each_group_and_each_replicants_core_and_lag() -> Result<()> {
    let [core, replicant] =
        <[Spec; 2]>::try_from(specs(81, 2, false)?).map_err(|_| anyhow::anyhow!("two specs"))?;
    let listed = format!("cluster.core_nodes = [{:?}]\n", core.name);
    let core = Spec {
        extra: listed.clone(),
        ..core
    };
    let replicant = Spec {
        seeds: vec![core.target()],
        extra: format!("{listed}node.role = replicant\n"),
        ..replicant
    };
    let nodes = Node::start_all(vec![core, replicant])?;
    let (core, replicant) = (&nodes[0], &nodes[1]);
    wait_voters(core, std::slice::from_ref(&core.spec.name))?;
    let index = core.put_row(TABLE, "dave", "h")?;
    wait_row(replicant, "dave", "h")?;

    let g = core.consensus(SHARD)?;
    assert_eq!(g["leader"], core.spec.name.as_str(), "{g}");
    assert!(g["term"].as_u64() >= Some(1), "{g}");
    assert!(g["commit_index"].as_u64() >= Some(index), "{g}");
    assert_eq!(g["learners"], serde_json::json!([]), "{g}");
    // Both nodes list the replicant, following the core, caught up (one
    // entry per consensus shard; this one's is checked).
    for n in &nodes {
        n.wait_until("the replicant listed, caught up", FORM, |n| {
            let v = n.ctl(&["cluster", "status"])?;
            let of_shard: Vec<&serde_json::Value> = v["replicants"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["shard"] == SHARD)
                .collect();
            Ok(of_shard
                == [&serde_json::json!({
                    "node": replicant.spec.name, "shard": SHARD,
                    "core": core.spec.name, "lag": 0
                })])
        })?;
    }
    // A replicant reports the group as the core it reaches knows it.
    assert_eq!(replicant.voters(SHARD)?, vec![core.spec.name.clone()]);

    // The text form says the same.
    let out = std::process::Command::new(girder_tests::node::girder_bin())
        .args(["ctl", "--node", &core.spec.admin().to_string()])
        .args(["cluster", "status"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let want_group = format!(
        "Consensus shard auth: #{{voters => ['{0}'], learners => [], leader => '{0}'",
        core.spec.name
    );
    let want_replicant = format!(
        "Replicant '{}' shard auth: #{{core => '{}', lag => 0}}",
        replicant.spec.name, core.spec.name
    );
    assert!(text.contains(&want_group), "{text}");
    assert!(text.contains(&want_replicant), "{text}");
    Ok(())
}

#[test]
fn cores_that_each_list_the_others_as_seeds_form_one_group() -> Result<()> {
    let mut specs = specs(83, 3, false)?;
    let targets: Vec<String> = specs.iter().map(Spec::target).collect();
    for s in &mut specs {
        let me = s.target();
        s.seeds = targets.iter().filter(|t| **t != me).cloned().collect();
    }
    let all = names(&specs.iter().collect::<Vec<_>>());
    let nodes = Node::start_all(specs)?;
    for n in &nodes {
        wait_voters(n, &all)?;
    }
    nodes[1].put_row(TABLE, "erin", "h")?;
    wait_row(&nodes[0], "erin", "h")?;
    wait_row(&nodes[2], "erin", "h")?;
    Ok(())
}
