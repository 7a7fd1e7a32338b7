//! Replicated tables across processes: 3 cores and 2 replicants on loopback
//! (the `rlog_node` example), driven by its line protocol.

use std::time::Duration;

use anyhow::{ensure, Result};
use girder_tests::rlog::{shard_field as status_field, RlogCluster};

const CORES: usize = 3;
const SECS: Duration = Duration::from_secs(20);

fn count_is(n: usize) -> impl Fn(&str) -> bool {
    move |a: &str| a == format!("count {n}")
}

#[test]
fn t10_owned_rows_converge_and_a_gone_node_is_removed_after_grace() -> Result<()> {
    let mut c = RlogCluster::start(CORES, 2, &["--grace-ms", "2000"])?;
    // Every node writes its own rows at the same time (no round trip).
    for i in 0..5 {
        let a = c.node(i)?.cmd(&format!("obulk routes n{i}/ 200"))?;
        ensure!(a.starts_with("ok "), "{a}");
    }
    c.converge("count routes", SECS, count_is(1000))?;
    c.converge("digest routes", SECS, |a| a.starts_with("digest 1000 "))?;
    // Same key from two owners: two rows, one per owner.
    c.node(0)?.cmd("oput registry client-a v0")?;
    c.node(4)?.cmd("oput registry client-a v4")?;
    let (c1, r2) = (c.name(0).to_owned(), c.name(4).to_owned());
    let both = format!("val {c1}=v0,{r2}=v4");
    c.converge("oget registry client-a", SECS, |a| a == both)?;
    // r2 dies: after the grace period its rows are gone on every node.
    c.kill(4);
    c.converge("count routes", SECS, count_is(800))?;
    let one = format!("val {c1}=v0");
    c.converge("oget registry client-a", SECS, |a| a == one)?;
    // r2 restarts: a new incarnation, its new rows replace the old ones.
    c.restart(4)?;
    c.node(4)?.cmd("oput routes fresh x")?;
    c.converge("count routes", SECS, count_is(801))?;
    Ok(())
}

#[test]
fn t20_consensus_writes_from_every_node_converge_and_replicants_follow() -> Result<()> {
    let mut c = RlogCluster::start(CORES, 2, &[])?;
    let mut last = 0u64;
    for round in 0..20 {
        for i in 0..5 {
            let a = c.node(i)?.cmd(&format!("put users u{i}-{round} {round}"))?;
            let idx: u64 = a.strip_prefix("ok ").unwrap_or("0").parse()?;
            ensure!(idx > 0, "node {i}: {a}");
            last = last.max(idx);
        }
    }
    for i in 0..5 {
        ensure!(
            c.node(i)?.cmd(&format!("wait {last} 15000"))? == "ok",
            "node {i} behind"
        );
    }
    c.converge("count users", SECS, count_is(100))?;
    c.converge("digest users", SECS, |a| a.starts_with("digest 100 "))?;
    let s = c.node(3)?.cmd("status")?;
    ensure!(
        status_field(&s, "auth", "following").is_some_and(|f| f.contains("Some")),
        "{s}"
    );
    Ok(())
}

#[test]
fn t30_replicant_resumes_on_another_core_without_a_copy() -> Result<()> {
    let mut c = RlogCluster::start(CORES, 1, &[])?;
    for i in 0..50 {
        c.node(0)?.cmd(&format!("put users k{i} v"))?;
    }
    c.converge("count users", SECS, count_is(50))?;
    let s = c.node(3)?.cmd("status")?;
    let followed = status_field(&s, "auth", "following").unwrap_or_default();
    let core = (0..CORES)
        .find(|i| followed.contains(&format!("c{}@", i + 1)))
        .ok_or_else(|| anyhow::anyhow!("replicant follows no core: {s}"))?;
    // Writes continue while the followed core is killed.
    c.kill(core);
    let writer = (0..CORES).find(|i| *i != core).unwrap_or(0);
    for i in 50..100 {
        let a = c.node(writer)?.cmd(&format!("put users k{i} v"))?;
        ensure!(a.starts_with("ok "), "{a}");
    }
    c.node(3)?.wait_for("count users", SECS, count_is(100))?;
    let s = c.node(3)?.cmd("status")?;
    let now = status_field(&s, "auth", "following").unwrap_or_default();
    ensure!(
        !now.contains(&format!("c{}@", core + 1)),
        "still on the dead core: {s}"
    );
    ensure!(
        status_field(&s, "auth", "copies").as_deref() == Some("0"),
        "a full copy was made: {s}"
    );
    Ok(())
}

#[test]
fn t40_a_partitioned_core_cannot_write_and_catches_up_after_heal() -> Result<()> {
    let mut c = RlogCluster::start(CORES, 0, &[])?;
    c.node(0)?.cmd("put users before 1")?;
    c.converge("count users", SECS, count_is(1))?;
    c.isolate(2)?;
    // The majority side has (or elects) a leader of its own.
    let majority = [c.name(0).to_owned(), c.name(1).to_owned()];
    c.node(0)?.wait_for("status", SECS, |s| {
        status_field(s, "auth", "leader").is_some_and(|l| majority.iter().any(|m| l.contains(m)))
    })?;
    let a = c.node(2)?.cmd("put users minority 1")?;
    ensure!(a.starts_with("err "), "the minority side wrote: {a}");
    let mut ok = false;
    for _ in 0..50 {
        if c.node(0)?.cmd("put users majority 1")?.starts_with("ok ") {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ensure!(ok, "the majority side could not write");
    c.heal(2)?;
    c.converge("digest users", SECS, |a| a.starts_with("digest 2 "))?;
    ensure!(
        c.node(2)?.cmd("get users minority")? == "none",
        "the refused write appeared"
    );
    Ok(())
}

#[test]
fn t50_cores_restart_with_their_durable_shards() -> Result<()> {
    let mut c = RlogCluster::start(CORES, 0, &[])?;
    for i in 0..30 {
        c.node(i % CORES)?.cmd(&format!("put acl rule{i} allow"))?;
    }
    c.converge("count acl", SECS, count_is(30))?;
    for i in 0..CORES {
        c.kill(i);
    }
    for i in 0..CORES {
        c.restart(i)?;
    }
    c.converge("count acl", SECS, count_is(30))?;
    let a = c.node(1)?.cmd("put acl after restart")?;
    ensure!(a.starts_with("ok "), "{a}");
    c.converge("count acl", SECS, count_is(31))?;
    Ok(())
}
