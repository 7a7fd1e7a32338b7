//! A core and a replicant as `girder start` processes: `node.role`,
//! `cluster.core_nodes` and `cluster.owned_rows_grace_period` in a running
//! cluster.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use girder_tests::cluster::{specs, Node, Spec};
use girder_tests::mqtt::{unique, Connect, RawClient};

/// The `clients` table's row count on `node`.
fn clients(node: &Node) -> Result<u64> {
    let v = node.ctl(&["status"])?;
    Ok(v["tables"]["clients"].as_u64().unwrap_or(u64::MAX))
}

fn wait_clients(node: &Node, want: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = clients(node)?;
        if seen == want {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{}: {seen} client rows, expected {want}", node.spec.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replicant_follows_its_core_and_a_gone_nodes_rows_go_after_the_grace_period() -> Result<()>
{
    let [core, replicant] =
        <[Spec; 2]>::try_from(specs(69, 2, false)?).map_err(|_| anyhow::anyhow!("two specs"))?;
    let grace = "cluster.owned_rows_grace_period = 2s\n";
    let core = Spec {
        extra: grace.into(),
        ..core
    };
    let replicant = Spec {
        seeds: vec![core.target()],
        extra: format!(
            "{grace}node.role = replicant\ncluster.core_nodes = [\"{}\"]\n",
            core.name
        ),
        ..replicant
    };
    let mut nodes = Node::start_all(vec![core, replicant])?;
    let (core_mqtt, replicant_mqtt) = (
        std::net::SocketAddr::from((nodes[0].spec.ip, nodes[0].spec.mqtt_port)),
        std::net::SocketAddr::from((nodes[1].spec.ip, nodes[1].spec.mqtt_port)),
    );

    // Only the core keeps the consensus tables on disk.
    assert!(nodes[0].data_dir().join("rlog.redb").exists());
    assert!(!nodes[1].data_dir().join("rlog.redb").exists());

    // Each node's client rows reach the other.
    let on_core = RawClient::connected(core_mqtt, &Connect::v311(&unique("c"))).await?;
    let on_replicant = RawClient::connected(replicant_mqtt, &Connect::v311(&unique("r"))).await?;
    wait_clients(&nodes[0], 2)?;
    wait_clients(&nodes[1], 2)?;

    // The replicant dies: its client's row stays for the grace period (a
    // restart within it would take its rows back), then goes.
    nodes[1].kill();
    drop(on_replicant);
    wait_clients(&nodes[0], 1)?;
    drop(on_core);
    Ok(())
}

#[test]
fn a_replicant_without_core_nodes_does_not_start() -> Result<()> {
    let [lone] = <[Spec; 1]>::try_from(specs(70, 1, false)?).map_err(|_| anyhow::anyhow!("one"))?;
    let lone = Spec {
        extra: "node.role = replicant\n".into(),
        ..lone
    };
    let refused = Node::start(lone).expect_err("a replicant needs cores");
    assert!(
        format!("{refused:#}").contains("cluster.core_nodes"),
        "{refused:#}"
    );
    Ok(())
}
