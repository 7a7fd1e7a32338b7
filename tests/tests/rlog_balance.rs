//! Replicants spread their consensus shards over the cores: 3 cores and
//! 2 replicants with 6 consensus shards (`auth` and `s1`..`s5`). Each
//! replicant follows 2 shards on every core; when a core dies its shards
//! move to the others with no copy, and when it comes back shards move back
//! to it, with the rows correct everywhere.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use girder_tests::rlog::{shard_field as field, RlogCluster};

const CORES: usize = 3;
const EXTRA: usize = 5;
const SECS: Duration = Duration::from_secs(30);

fn shards() -> Vec<String> {
    std::iter::once("auth".to_owned())
        .chain((1..=EXTRA).map(|i| format!("s{i}")))
        .collect()
}

/// A replicant's view: per shard, the core index followed and the full
/// copies received.
#[derive(Debug)]
struct View {
    core: BTreeMap<String, Option<usize>>,
    copies: u64,
}

fn view(c: &mut RlogCluster, r: usize) -> Result<View> {
    let s = c.node(r)?.cmd("status")?;
    let mut core = BTreeMap::new();
    let mut copies = 0;
    for sh in shards() {
        let f = field(&s, &sh, "following").context("no following")?;
        let i = (0..CORES).find(|i| f.contains(&format!("\"c{}@", i + 1)));
        core.insert(sh.clone(), i);
        copies += field(&s, &sh, "copies")
            .context("no copies")?
            .parse::<u64>()?;
    }
    Ok(View { core, copies })
}

/// Shards per core index (only the cores in `live`).
fn per_core(v: &View, live: &[usize]) -> BTreeMap<usize, usize> {
    let mut n: BTreeMap<usize, usize> = live.iter().map(|i| (*i, 0)).collect();
    for i in v.core.values().flatten() {
        *n.entry(*i).or_default() += 1;
    }
    n
}

/// Waits until every replicant follows every shard on a core of `live`,
/// with at most one shard of difference between two live cores.
fn wait_balanced(c: &mut RlogCluster, live: &[usize]) -> Result<Vec<View>> {
    let deadline = std::time::Instant::now() + SECS;
    loop {
        let views = (CORES..CORES + 2)
            .map(|r| view(c, r))
            .collect::<Result<Vec<_>>>()?;
        let ok = views.iter().all(|v| {
            let n = per_core(v, live);
            let on_live = v
                .core
                .values()
                .all(|i| i.is_some_and(|i| live.contains(&i)));
            let (hi, lo) = (n.values().max(), n.values().min());
            on_live && n.len() == live.len() && hi.zip(lo).is_some_and(|(h, l)| h - l <= 1)
        });
        if ok {
            return Ok(views);
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "replicants not spread over cores {live:?}: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Writes `n` rows with prefix `p` to every shard, from node `from`.
fn write_all(c: &mut RlogCluster, from: usize, p: &str, n: usize) -> Result<()> {
    for t in std::iter::once("users".to_owned()).chain((1..=EXTRA).map(|i| format!("t{i}"))) {
        let a = c.node(from)?.cmd(&format!("bulk {t} {p} {n} 5 4"))?;
        ensure!(a.starts_with("ok "), "bulk {t} on node {from}: {a}");
    }
    Ok(())
}

/// Every running node has the same `rows` rows in every shard's table.
fn converged(c: &mut RlogCluster, rows: usize) -> Result<()> {
    for t in std::iter::once("users".to_owned()).chain((1..=EXTRA).map(|i| format!("t{i}"))) {
        c.converge(&format!("digest {t}"), SECS, |a| {
            a.starts_with(&format!("digest {rows} "))
        })?;
    }
    Ok(())
}

#[test]
fn t80_replicants_spread_shards_over_cores_and_move_without_copies() -> Result<()> {
    let extra = EXTRA.to_string();
    let mut c = RlogCluster::start(CORES, 2, &["--extra-shards", &extra])?;
    let all: Vec<usize> = (0..CORES).collect();
    // 6 shards over 3 cores: each replicant follows 2 on every core.
    let before = wait_balanced(&mut c, &all)?;
    eprintln!("placement: {before:?}");
    write_all(&mut c, 0, "a", 40)?;
    converged(&mut c, 40)?;

    // A core dies: its shards move to the two others, resumed, no copy.
    let dead = 1;
    c.kill(dead);
    let survivors: Vec<usize> = all.iter().copied().filter(|i| *i != dead).collect();
    write_all(&mut c, 3, "b", 40)?;
    let moved = wait_balanced(&mut c, &survivors)?;
    eprintln!("after the kill of c{}: {moved:?}", dead + 1);
    converged(&mut c, 80)?;
    for (b, m) in before.iter().zip(&moved) {
        ensure!(m.copies == b.copies, "a copy was made: {b:?} -> {m:?}");
    }

    // It comes back: shards move back to it until every core is followed.
    c.restart(dead)?;
    let back = wait_balanced(&mut c, &all)?;
    eprintln!("after the restart: {back:?}");
    write_all(&mut c, 4, "c", 40)?;
    converged(&mut c, 120)?;
    let last = (CORES..CORES + 2)
        .map(|r| view(&mut c, r))
        .collect::<Result<Vec<_>>>()?;
    for (b, l) in before.iter().zip(&last) {
        ensure!(l.copies == b.copies, "a copy was made: {b:?} -> {l:?}");
        ensure!(
            per_core(l, &all).values().all(|n| *n >= 1),
            "a core is not followed: {l:?}"
        );
    }
    Ok(())
}
