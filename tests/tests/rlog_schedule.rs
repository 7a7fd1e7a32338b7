//! Replicated tables under churn: a replicant bootstrapping while writes go
//! on and catching up from far behind, and seeded, reproducible schedules of
//! writes, kills, restarts, partitions and heals after which every invariant
//! is checked. CI runs three seeds (`t70`..`t72`), each with at least two
//! kills (the first of the Raft leader) and two isolations of a core with a
//! write sent to the isolated core. `RLOG_SEED=<n>` makes `t70` replay one
//! schedule; `scripts/rlog-soak.sh` runs hundreds.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use girder_tests::rlog::{RlogCluster, Rng};

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

/// A fault of one episode of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// SIGKILL a node (the Raft leader when `leader`), restart it later.
    Kill { leader: bool },
    /// Cut a core off from every node, send it a write, heal it later.
    Isolate,
}

/// What a schedule did, checked against its minimums.
#[derive(Debug, Default)]
struct Tally {
    kills: usize,
    leader_kills: usize,
    isolations: usize,
    isolated_writes: usize,
    consensus_writes: usize,
    owned_writes: usize,
}

/// Consensus writes collide on these keys.
const HOT_KEYS: usize = 4;

struct Run {
    c: RlogCluster,
    rng: Rng,
    names: Vec<String>,
    /// Per hot key: every acknowledged write as (index, value).
    acked: Vec<Vec<(u64, String)>>,
    /// The last index acknowledged: each write starts after the previous
    /// answered, so indexes grow.
    last_index: u64,
    /// Keys of writes refused on an isolated core: never written elsewhere.
    refused: Vec<String>,
    owned: Vec<BTreeSet<String>>,
    tally: Tally,
    log: String,
    step: usize,
}

impl Run {
    fn note(&mut self, what: String) {
        eprintln!("step {}: {what}", self.step);
        let _ = writeln!(self.log, "step {}: {what}", self.step);
        self.step += 1;
    }

    /// A consensus write to a hot key on node `i`, which must succeed.
    fn write(&mut self, i: usize) -> Result<()> {
        let key = self.rng.below(HOT_KEYS);
        let v = format!("v{}", self.step);
        let a = self.c.node(i)?.cmd(&format!("put users k{key} {v}"))?;
        self.note(format!("put k{key}={v} on {} -> {a}", self.names[i]));
        let index: u64 = a
            .strip_prefix("ok ")
            .and_then(|i| i.parse().ok())
            .with_context(|| format!("write on {} failed outside a split: {a}", self.names[i]))?;
        ensure!(
            index > self.last_index,
            "write acknowledged at {index}, not after the previous one at {}",
            self.last_index
        );
        self.last_index = index;
        self.acked[key].push((index, v));
        self.tally.consensus_writes += 1;
        Ok(())
    }

    fn owned_write(&mut self, i: usize) -> Result<()> {
        let k = format!("o{}", self.step);
        self.c.node(i)?.cmd(&format!("oput routes {k} x"))?;
        self.note(format!("oput {k} on {}", self.names[i]));
        self.owned[i].insert(k);
        self.tally.owned_writes += 1;
        Ok(())
    }

    /// A few writes of either kind on random nodes of `live`.
    fn some_writes(&mut self, live: &[usize]) -> Result<()> {
        for _ in 0..1 + self.rng.below(3) {
            let i = live[self.rng.below(live.len())];
            if self.rng.below(3) == 0 {
                self.owned_write(i)?;
            } else {
                self.write(i)?;
            }
        }
        Ok(())
    }

    /// Waits until node `i` has applied every acknowledged write. Faults
    /// then find the cores with equal logs: two surviving cores of which one
    /// has a shorter log have been seen to elect no leader for over 5 s (the
    /// one that cannot win keeps starting elections; see REPLICATION.md), so
    /// writes on the majority side failed, and a write refused on an
    /// isolated leader was committed after the heal.
    fn caught_up(&mut self, i: usize) -> Result<()> {
        let want = self.last_index;
        self.c.node(i)?.wait_for("pos", SECS, |a| {
            a.strip_prefix("pos ")
                .and_then(|p| p.parse::<u64>().ok())
                .is_some_and(|p| p >= want)
        })?;
        Ok(())
    }

    fn leader(&mut self) -> Result<usize> {
        let deadline = std::time::Instant::now() + SECS;
        loop {
            if let Some(l) = self.c.leader("auth")? {
                return Ok(l);
            }
            ensure!(std::time::Instant::now() < deadline, "no auth leader");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn episode(&mut self, fault: Fault) -> Result<()> {
        let all: Vec<usize> = (0..5).collect();
        self.some_writes(&all)?;
        // Every core holds every acknowledged write when the fault comes
        // (see `caught_up`).
        for i in 0..3 {
            self.caught_up(i)?;
        }
        match fault {
            Fault::Kill { leader } => {
                let i = if leader {
                    self.leader()?
                } else {
                    self.rng.below(5)
                };
                self.note(format!("kill {} (leader: {leader})", self.names[i]));
                self.c.kill(i);
                self.tally.kills += 1;
                self.tally.leader_kills += usize::from(leader);
                let live: Vec<usize> = all.iter().copied().filter(|&j| j != i).collect();
                self.some_writes(&live)?;
                self.note(format!("restart {}", self.names[i]));
                self.c.restart(i)?;
                // A restarted node's old owned rows are replaced.
                self.owned[i].clear();
                self.caught_up(i)?;
            }
            Fault::Isolate => {
                let i = if self.rng.below(2) == 0 {
                    self.leader()?
                } else {
                    self.rng.below(3)
                };
                self.note(format!("isolate {}", self.names[i]));
                self.c.isolate(i)?;
                self.tally.isolations += 1;
                let k = format!("iso{}", self.step);
                let a = self.c.node(i)?.cmd(&format!("put acl {k} x"))?;
                self.note(format!("put acl {k} on isolated {} -> {a}", self.names[i]));
                ensure!(
                    a.starts_with("err "),
                    "a write on isolated {} was acknowledged: {a}",
                    self.names[i]
                );
                self.refused.push(k);
                self.tally.isolated_writes += 1;
                let live: Vec<usize> = all.iter().copied().filter(|&j| j != i).collect();
                self.some_writes(&live)?;
                self.note(format!("heal {}", self.names[i]));
                self.c.heal(i)?;
                self.caught_up(i)?;
            }
        }
        Ok(())
    }

    /// Every invariant once the cluster is whole again.
    fn check(&mut self) -> Result<()> {
        self.c.wait_linked(SECS)?;
        // 1. Every node converges on the same rows and log index.
        let digest = self
            .c
            .converge("digest users", SECS, |a| a.starts_with("digest "))?;
        let pos = self.c.converge("pos", SECS, |a| a.starts_with("pos "))?;
        let pos_n: u64 = pos.trim_start_matches("pos ").parse()?;
        ensure!(
            pos_n >= self.last_index,
            "{pos} is before the last acknowledged index {}",
            self.last_index
        );
        // 2. Each hot key holds the write acknowledged at the highest index,
        // on every node.
        for (key, writes) in self.acked.clone().iter().enumerate() {
            let want = writes
                .iter()
                .max_by_key(|(i, _)| *i)
                .map_or("none".to_owned(), |(_, v)| format!("val {v}"));
            for n in 0..5 {
                let a = self.c.node(n)?.cmd(&format!("get users k{key}"))?;
                ensure!(
                    a == want,
                    "k{key} on {}: {a}, expected {want} ({digest}, {pos})",
                    self.names[n]
                );
            }
        }
        // 3. Writes refused on an isolated core are nowhere.
        for k in &self.refused {
            let a = self
                .c
                .node(self.rng.below(5))?
                .cmd(&format!("get acl {k}"))?;
            ensure!(a == "none", "refused write {k} is present: {a}");
        }
        // 4. Owned rows: exactly the rows each node wrote since its last
        // start.
        let total: usize = self.owned.iter().map(BTreeSet::len).sum();
        self.c
            .converge("count routes", SECS, |a| a == format!("count {total}"))?;
        for (i, keys) in self.owned.iter().enumerate() {
            for k in keys {
                let a = self.c.node((i + 1) % 5)?.cmd(&format!("oget routes {k}"))?;
                ensure!(
                    a == format!("val {}=x", self.names[i]),
                    "{k} of {}: {a}",
                    self.names[i]
                );
            }
        }
        // 5. A replicant never holds more of the log than the core it follows.
        for r in 3..5 {
            let s = self.c.node(r)?.cmd("status")?;
            let rpos: u64 = field(&s, "auth", "position")
                .context("no position")?
                .parse()?;
            let core = field(&s, "auth", "following")
                .context("no core")?
                .to_owned();
            let ci = self
                .names
                .iter()
                .position(|n| core.contains(n.as_str()))
                .context("unknown core")?;
            let cpos: u64 = self
                .c
                .node(ci)?
                .cmd("pos")?
                .trim_start_matches("pos ")
                .parse()?;
            ensure!(
                rpos <= cpos,
                "{} at {rpos} is ahead of {core} at {cpos}",
                self.names[r]
            );
        }
        Ok(())
    }
}

/// The episodes of a seed's schedule: two kills (the first of the leader)
/// and two isolations at least, plus up to two more, in a seeded order.
fn plan(rng: &mut Rng) -> Vec<Fault> {
    let mut faults = vec![
        Fault::Kill { leader: true },
        Fault::Kill { leader: false },
        Fault::Isolate,
        Fault::Isolate,
    ];
    for _ in 0..rng.below(3) {
        faults.push(if rng.below(2) == 0 {
            Fault::Kill {
                leader: rng.below(2) == 0,
            }
        } else {
            Fault::Isolate
        });
    }
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.below(i + 1));
    }
    faults
}

/// Runs one seed's schedule and checks it; a failure says how to replay.
fn schedule(seed: u64) -> Result<Tally> {
    eprintln!("RLOG_SEED={seed}");
    let mut rng = Rng(seed);
    let faults = plan(&mut rng);
    let c = RlogCluster::start(3, 2, &["--grace-ms", "1500"])?;
    let mut run = Run {
        names: c.names(),
        c,
        rng,
        acked: vec![Vec::new(); HOT_KEYS],
        last_index: 0,
        refused: Vec::new(),
        owned: vec![BTreeSet::new(); 5],
        tally: Tally::default(),
        log: String::new(),
        step: 0,
    };
    let result = (|| -> Result<()> {
        for f in faults {
            run.episode(f)?;
        }
        run.some_writes(&[0, 1, 2, 3, 4])?;
        run.check()
    })();
    if let Err(e) = result {
        anyhow::bail!(
            "seed {seed} failed: {e:#}\nreplay: RLOG_SEED={seed} cargo nextest run -p girder-tests \
             --test rlog_schedule t70\n{}",
            run.log
        );
    }
    let t = run.tally;
    eprintln!("seed {seed}: {t:?}");
    ensure!(t.kills >= 2 && t.leader_kills >= 1, "{t:?}");
    ensure!(t.isolations >= 2 && t.isolated_writes >= 2, "{t:?}");
    Ok(t)
}

#[test]
fn t70_seeded_schedule_keeps_every_invariant() -> Result<()> {
    let seed: u64 = std::env::var("RLOG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    schedule(seed).map(drop)
}

#[test]
fn t71_seeded_schedule_keeps_every_invariant() -> Result<()> {
    schedule(71).map(drop)
}

#[test]
fn t72_seeded_schedule_keeps_every_invariant() -> Result<()> {
    schedule(72).map(drop)
}
