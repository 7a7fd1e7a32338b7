//! Replicated tables under churn: a replicant bootstrapping while writes go
//! on and catching up from far behind, and a seeded, reproducible schedule of
//! writes, kills, restarts, partitions and heals after which every invariant
//! is checked. `RLOG_SEED=<n>` replays one schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use girder_tests::rlog::RlogCluster;

const SECS: Duration = Duration::from_secs(25);

fn field<'a>(status: &'a str, shard: &str, name: &str) -> Option<&'a str> {
    let at = status.find(&format!("shard: \"{shard}\""))?;
    let rest = &status[at..];
    let f = rest.find(&format!("{name}: "))?;
    rest[f + name.len() + 2..].split([',', ' ', '}']).next()
}

#[test]
fn t60_replicant_bootstraps_during_writes_and_catches_up_from_far_behind() -> Result<()> {
    // A core retains only 50 entries: a replicant further behind needs a copy.
    let mut c = RlogCluster::start(3, 1, &["--retain", "50"])?;
    let a = c.node(0)?.cmd("bulk users a 400 4 8")?;
    ensure!(a.starts_with("ok "), "{a}");
    c.converge("digest users", SECS, |a| a.starts_with("digest 400 "))?;
    c.kill(3);
    let a = c.node(1)?.cmd("bulk users b 400 2 8")?;
    ensure!(a.starts_with("ok "), "{a}");
    // The replicant starts from nothing while the next writes are going on.
    c.restart(3)?;
    let a = c.node(2)?.cmd("bulk users c 400 1 8")?;
    ensure!(a.starts_with("ok "), "{a}");
    c.converge("digest users", SECS, |a| a.starts_with("digest 1200 "))?;
    c.converge("pos", SECS, |a| a.starts_with("pos "))?;
    let s = c.node(3)?.cmd("status")?;
    ensure!(
        field(&s, "auth", "copies") == Some("1"),
        "expected one full copy: {s}"
    );
    Ok(())
}

/// splitmix64: a small, seeded generator for the schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Down {
    Killed(usize),
    Isolated(usize),
}

#[test]
fn t70_seeded_schedule_keeps_every_invariant() -> Result<()> {
    let seed: u64 = std::env::var("RLOG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    eprintln!("RLOG_SEED={seed}");
    let mut rng = Rng(seed);
    let mut c = RlogCluster::start(3, 2, &["--grace-ms", "1500"])?;
    let names: Vec<String> = (1..=3)
        .map(|i| format!("c{i}@127.0.0.1"))
        .chain((1..=2).map(|i| format!("r{i}@127.0.0.1")))
        .collect();
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut owned: Vec<BTreeSet<String>> = vec![BTreeSet::new(); 5];
    // At most one node is down (killed or isolated) at a time, and only
    // cores are isolated: the majority side always exists.
    let mut down: Option<Down> = None;
    let live = |down: Option<Down>, i: usize| down != Some(Down::Killed(i));
    for step in 0..40 {
        match rng.below(10) {
            0..=3 => {
                let i = rng.below(5);
                if !live(down, i) {
                    continue;
                }
                let (k, v) = (format!("k{step}"), format!("v{}", rng.below(1000)));
                let a = c.node(i)?.cmd(&format!("put users {k} {v}"))?;
                if a.starts_with("ok ") {
                    acked.insert(k, v);
                } else {
                    ensure!(
                        down == Some(Down::Isolated(i)),
                        "step {step}: write on {} failed outside a split: {a}",
                        names[i]
                    );
                }
            }
            4..=6 => {
                let i = rng.below(5);
                if !live(down, i) {
                    continue;
                }
                let k = format!("o{step}");
                c.node(i)?.cmd(&format!("oput routes {k} x"))?;
                owned[i].insert(k);
            }
            7 => {
                if down.is_none() {
                    let i = rng.below(5);
                    eprintln!("step {step}: kill {}", names[i]);
                    c.kill(i);
                    down = Some(Down::Killed(i));
                }
            }
            8 => {
                if down.is_none() {
                    let i = rng.below(3);
                    eprintln!("step {step}: isolate {}", names[i]);
                    c.isolate(i)?;
                    down = Some(Down::Isolated(i));
                }
            }
            _ => match down.take() {
                Some(Down::Killed(i)) => {
                    eprintln!("step {step}: restart {}", names[i]);
                    c.restart(i)?;
                    // A restarted node's old owned rows are replaced.
                    owned[i].clear();
                }
                Some(Down::Isolated(i)) => {
                    eprintln!("step {step}: heal {}", names[i]);
                    c.heal(i)?;
                }
                None => {}
            },
        }
    }
    match down {
        Some(Down::Killed(i)) => {
            c.restart(i)?;
            owned[i].clear();
        }
        Some(Down::Isolated(i)) => c.heal(i)?,
        None => {}
    }
    eprintln!(
        "acked {} consensus writes, owned rows {:?}",
        acked.len(),
        owned.iter().map(BTreeSet::len).collect::<Vec<_>>()
    );
    // 1. Every node converges on the same consensus rows and log index.
    let digest = c.converge("digest users", SECS, |a| a.starts_with("digest "))?;
    let pos = c.converge("pos", SECS, |a| a.starts_with("pos "))?;
    // 2. Every acknowledged consensus write is there, with its value.
    for (k, v) in &acked {
        let a = c.node(rng.below(5))?.cmd(&format!("get users {k}"))?;
        ensure!(
            a == format!("val {v}"),
            "acknowledged {k}={v} lost: {a} ({digest}, {pos})"
        );
    }
    // 3. Owned rows: exactly the rows each node wrote since its last start.
    let total: usize = owned.iter().map(BTreeSet::len).sum();
    c.converge("count routes", SECS, |a| a == format!("count {total}"))?;
    for (i, keys) in owned.iter().enumerate() {
        for k in keys {
            let a = c.node((i + 1) % 5)?.cmd(&format!("oget routes {k}"))?;
            ensure!(
                a == format!("val {}=x", names[i]),
                "{k} of {}: {a}",
                names[i]
            );
        }
    }
    // 4. A replicant never holds more of the log than the core it follows.
    for r in 3..5 {
        let s = c.node(r)?.cmd("status")?;
        let rpos: u64 = field(&s, "auth", "position")
            .context("no position")?
            .parse()?;
        let core = field(&s, "auth", "following")
            .context("no core")?
            .to_owned();
        let ci = names
            .iter()
            .position(|n| core.contains(n.as_str()))
            .context("unknown core")?;
        let cpos: u64 = c.node(ci)?.cmd("pos")?.trim_start_matches("pos ").parse()?;
        ensure!(
            rpos <= cpos,
            "{} at {rpos} is ahead of {core} at {cpos}",
            names[r]
        );
    }
    Ok(())
}
