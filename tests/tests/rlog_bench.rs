//! The replication benchmark, on 3 cores + 2 replicants as processes:
//! consensus writes/s with the replicants' replication delay p99, owned-row
//! writes/s, a replicant bootstrapping N rows (`RLOG_BENCH_ROWS`, default
//! 200,000; the target is stated for 1,000,000), and a replicant resuming on
//! another core after its core is killed. Prints the figures next to the
//! targets; asserts that every phase completes and that the resume made no
//! copy. Run it on a release build for the figures that count.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use girder_tests::rlog::RlogCluster;

fn secs(answer: &str) -> Result<f64> {
    answer
        .strip_prefix("ok ")
        .with_context(|| format!("not ok: {answer}"))?
        .parse()
        .context("not a duration")
}

fn field(status: &str, shard: &str, name: &str) -> Option<String> {
    let at = status.find(&format!("shard: \"{shard}\""))?;
    let rest = &status[at..];
    let f = rest.find(&format!("{name}: "))?;
    rest[f + name.len() + 2..]
        .split([',', ' ', '}'])
        .next()
        .map(str::to_owned)
}

#[test]
fn t90_replication_benchmark() -> Result<()> {
    let rows: usize = std::env::var("RLOG_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let mut c = RlogCluster::start(3, 2, &[])?;
    let within = Duration::from_secs(60);

    // 1. Consensus writes: 20,000 single-row writes from 256 concurrent writers.
    let n = 20_000;
    let t = secs(&c.node(0)?.cmd(&format!("bulk users w {n} 1 256"))?)?;
    c.converge("count users", within, |a| a == format!("count {n}"))?;
    let p99: Vec<String> = (3..5)
        .map(|r| {
            let s = c.node(r)?.cmd("status")?;
            let at = s.find("lag_p99_ms: ").context("no lag")?;
            Ok(s[at + 12..].trim_end_matches(" }").to_owned())
        })
        .collect::<Result<_>>()?;
    eprintln!(
        "consensus: {:.0} writes/s (target >= 5000); replicant lag p99 {p99:?} ms (target < 100)",
        n as f64 / t
    );

    // 2. Owned rows: 100,000 local writes, then until every node has them.
    let n = 100_000;
    let started = Instant::now();
    let t = secs(&c.node(1)?.cmd(&format!("obulk routes o {n}"))?)?;
    c.converge("count routes", within, |a| a == format!("count {n}"))?;
    eprintln!(
        "owned: {:.0} writes/s (target >= 50000); on every node after {:.2} s",
        n as f64 / t,
        started.elapsed().as_secs_f64()
    );

    // 3. A replicant bootstrapping `rows` rows (entries of 1,000 rows).
    let load = format!("bulk acl b {rows} 1000 8");
    let t = secs(&c.node(0)?.cmd_within(&load, Duration::from_secs(600))?)?;
    eprintln!("loaded {rows} rows in {t:.2} s");
    c.kill(4);
    let started = Instant::now();
    c.restart(4)?;
    c.node(4)?
        .wait_for("count acl", within, |a| a == format!("count {rows}"))?;
    eprintln!(
        "bootstrap: {rows} rows in {:.2} s (target: 1,000,000 in < 10 s)",
        started.elapsed().as_secs_f64()
    );

    // 4. Resume after a core switch, with no copy.
    let s = c.node(3)?.cmd("status")?;
    let followed = field(&s, "auth", "following").unwrap_or_default();
    let copies_before = field(&s, "auth", "copies").unwrap_or_default();
    let core = (0..3)
        .find(|i| followed.contains(&format!("c{}@", i + 1)))
        .context("r1 follows no core")?;
    let writer = (core + 1) % 3;
    let started = Instant::now();
    c.kill(core);
    let a = c.node(writer)?.cmd("put users after-switch 1")?;
    ensure!(a.starts_with("ok "), "{a}");
    c.node(3)?
        .wait_for("get users after-switch", within, |a| a == "val 1")?;
    let s = c.node(3)?.cmd("status")?;
    eprintln!(
        "resume after core switch: {:.2} s (target < 1 s, no copy), copies {copies_before} -> {:?}",
        started.elapsed().as_secs_f64(),
        field(&s, "auth", "copies")
    );
    ensure!(
        field(&s, "auth", "copies") == Some(copies_before),
        "a copy was made: {s}"
    );
    Ok(())
}
