//! Remote calls, monitors and message order between `girder start`
//! processes, driven through `girder ctl cluster debug` probes (nodes with
//! fault injection): a call answered in time, a call that times out cleanly,
//! a call to a dead node, a monitor that fires with noconnection when its
//! node is killed, and numbered casts that all come back in order.

use std::thread;
use std::time::Duration;

use anyhow::{ensure, Result};
use girder_tests::cluster::{sorted, specs, Node};

fn probe(from: &Node, peer: &Node, action: &str) -> Result<serde_json::Value> {
    from.ctl(&["cluster", "debug", &peer.spec.name, action])
}

fn formed(nodes: &[Node]) -> Result<()> {
    let all = sorted(nodes.iter().map(|n| n.spec.name.as_str()));
    for n in nodes {
        n.wait_for("all running", |m| m.running == all && m.stopped.is_empty())?;
    }
    Ok(())
}

#[test]
fn remote_calls_answer_or_time_out_cleanly() -> Result<()> {
    let mut nodes = Node::start_all(specs(71, 3, true)?)?;
    formed(&nodes)?;
    let (n1, n2) = (&nodes[0], &nodes[1]);

    let answered = probe(n1, n2, "call=10/2000")?;
    ensure!(answered["result"] == "ok", "{answered}");

    let late = probe(n1, n2, "call=1500/200")?;
    ensure!(late["result"] == "timeout", "{late}");
    let waited = late["elapsed_ms"].as_u64().unwrap_or(u64::MAX);
    ensure!(waited >= 200, "timed out before its timeout: {late}");

    // The link is still usable after a timed-out call.
    let again = probe(n1, n2, "call=0/2000")?;
    ensure!(again["result"] == "ok", "{again}");

    // A call to a node that is gone fails as nodedown, not by hanging.
    nodes[2].kill();
    let n3_name = nodes[2].spec.name.clone();
    nodes[0].wait_for("n3 down", |m| m.stopped == [n3_name.clone()])?;
    let dead = probe(&nodes[0], &nodes[2], "call=0/2000")?;
    ensure!(dead["result"] == "nodedown", "{dead}");
    Ok(())
}

#[test]
fn a_remote_monitor_fires_noconnection_when_its_node_dies() -> Result<()> {
    let mut nodes = Node::start_all(specs(72, 2, true)?)?;
    formed(&nodes)?;
    // Nothing happens while the peer lives.
    let quiet = probe(&nodes[0], &nodes[1], "monitor=300")?;
    ensure!(quiet["result"] == "none", "{quiet}");

    let watcher = nodes[0].spec.clone();
    let peer = nodes[1].spec.name.clone();
    let waiting = thread::spawn(move || -> Result<serde_json::Value> {
        let args = ["cluster", "debug", peer.as_str(), "monitor=10000"];
        girder_tests::cluster::ctl_at(&watcher, &args)
    });
    // Kill the peer once the monitor is in place: before it, the monitor
    // would fire at once for a node already down, not for a link lost.
    let peer = nodes[1].spec.name.clone();
    nodes[0].wait_until("the monitor in place", Duration::from_secs(10), |n| {
        let v = n.ctl(&["cluster", "debug", &peer, "monitors"])?;
        Ok(v["received"].as_u64() == Some(1))
    })?;
    nodes[1].kill();
    let fired = waiting
        .join()
        .map_err(|_| anyhow::anyhow!("monitor thread panicked"))??;
    ensure!(fired["result"] == "noconnection", "{fired}");
    let took = fired["elapsed_ms"].as_u64().unwrap_or(u64::MAX);
    ensure!(took < 10_000, "the monitor did not fire: {fired}");
    Ok(())
}

#[test]
fn casts_between_two_processes_keep_their_order_under_load() -> Result<()> {
    let nodes = Node::start_all(specs(73, 2, true)?)?;
    formed(&nodes)?;
    let seq = probe(&nodes[0], &nodes[1], "sequence=20000")?;
    ensure!(seq["result"] == "ok", "{seq}");
    ensure!(seq["received"] == 20000, "{seq}");
    ensure!(seq["in_order"] == true, "{seq}");
    Ok(())
}
