//! The broker's replicated tables on a single node (this node as the only
//! core): a filter gets this node's row in `routes` while the node has a
//! subscriber to it, and a client id a row in `clients` while its session
//! lives. Read back through `girder ctl status --json`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use girder_tests::mqtt::{unique, Connect, RawClient};
use girder_tests::node::{girder_bin, NodeProcess};

fn table_rows(node: &NodeProcess) -> Result<(u64, u64)> {
    let out = Command::new(girder_bin())
        .args(["ctl", "--json", "--node", &node.admin.to_string(), "status"])
        .stdin(Stdio::null())
        .output()
        .context("running girder ctl")?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("ctl status: {}", String::from_utf8_lossy(&out.stderr)))?;
    let rows = |t: &str| v["tables"][t].as_u64().unwrap_or(u64::MAX);
    Ok((rows("routes"), rows("clients")))
}

fn wait_rows(node: &NodeProcess, want: (u64, u64)) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = table_rows(node)?;
    while seen != want {
        if Instant::now() > deadline {
            bail!("(routes, clients) = {seen:?}, expected {want:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
        seen = table_rows(node)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_and_client_ids_are_rows_of_the_replicated_tables() -> Result<()> {
    let node = NodeProcess::start()?;
    wait_rows(&node, (0, 0))?;

    let (a, b) = (unique("tab/a"), unique("tab/b"));
    let mut first =
        RawClient::connected(node.mqtt, &Connect::v311(&unique("t1")).clean(true)).await?;
    first.subscribe(1, &[(&a, 1), (&b, 0)]).await?;
    wait_rows(&node, (2, 1))?;

    // A second subscriber to a filter the node already routes adds a client
    // row, not a route row: routes say which nodes, not which clients.
    let mut second =
        RawClient::connected(node.mqtt, &Connect::v311(&unique("t2")).clean(true)).await?;
    second.subscribe(1, &[(&a, 0)]).await?;
    wait_rows(&node, (2, 2))?;

    first.disconnect().await?;
    wait_rows(&node, (1, 1))?;
    second.disconnect().await?;
    wait_rows(&node, (0, 0))?;
    Ok(())
}
