//! The lease lock across processes: one holder per key among racing nodes,
//! the lock is free again when the lease runs out, and a holder that lost it
//! cannot renew.

use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use girder_tests::rlog::RlogCluster;

#[test]
fn t80_lease_lock_has_one_holder_and_expires() -> Result<()> {
    let mut c = RlogCluster::start(3, 1, &[])?;
    // r1 and c2 race for the same key, at the same time from two threads.
    let mut a = c.nodes[3].take().ok_or_else(|| anyhow!("r1 stopped"))?;
    let mut b = c.nodes[1].take().ok_or_else(|| anyhow!("c2 stopped"))?;
    let ta = std::thread::spawn(move || a.cmd("lock client-1 1500").map(|r| (a, r)));
    let tb = std::thread::spawn(move || b.cmd("lock client-1 1500").map(|r| (b, r)));
    let (a, ra) = ta.join().map_err(|_| anyhow!("thread panicked"))??;
    let (b, rb) = tb.join().map_err(|_| anyhow!("thread panicked"))??;
    c.nodes[3] = Some(a);
    c.nodes[1] = Some(b);
    let winners = [&ra, &rb].iter().filter(|r| **r == "ok").count();
    ensure!(winners == 1, "expected one holder: r1 {ra:?}, c2 {rb:?}");
    let (holder, other) = if ra == "ok" { (3, 1) } else { (1, 3) };
    // The holder renews; the other is refused while the lease runs.
    ensure!(c.node(holder)?.cmd("renew client-1")? == "ok");
    ensure!(c
        .node(other)?
        .cmd("lock client-1 1500")?
        .starts_with("err "));
    // The holder stops renewing: once the lease is over the other takes it,
    // and the old holder's renewal fails.
    std::thread::sleep(Duration::from_millis(1700));
    ensure!(c.node(other)?.cmd("lock client-1 5000")? == "ok");
    ensure!(c.node(holder)?.cmd("renew client-1")?.starts_with("err "));
    // Released, it can be taken at once.
    ensure!(c.node(other)?.cmd("unlock client-1")? == "ok");
    ensure!(c.node(holder)?.cmd("lock client-1 5000")? == "ok");
    Ok(())
}
