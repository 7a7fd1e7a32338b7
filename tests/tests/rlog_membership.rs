//! A seeded schedule of joins, leaves, force-leaves, kills and partitions on
//! a four-core cluster of `girder start` processes (static seeds, no
//! `cluster.core_nodes`) while writes go on: every term has at most one
//! leader as the nodes report it, and every acknowledged write is on every
//! node at the end. `CONSENSUS_SEED=<n>` replays one schedule.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Result};
use girder_tests::cluster::{ctl_at, sorted, specs, Node, Spec};

const SHARD: &str = "auth";
const TABLE: &str = "users";
const STEPS: usize = 6;
const SETTLE: Duration = Duration::from_secs(40);

/// xorshift64*: enough to pick steps reproducibly.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// SIGKILL, then restart with the same data.
    KillRestart,
    /// `cluster leave`, then `cluster join` again.
    LeaveJoin,
    /// SIGKILL, `force-leave` from another node, then restart.
    ForceLeaveRestart,
    /// Cut the links of one node to the others, then restore them.
    Partition,
}

/// Writes `k-N` rows through every node in turn until `stop`; the keys of
/// acknowledged writes.
fn writer(specs: Vec<Spec>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) && i < 100_000 {
            let key = format!("k-{i}");
            let spec = &specs[i % specs.len()];
            if ctl_at(spec, &["cluster", "debug-table", "put", TABLE, &key, "v"]).is_ok() {
                acked.push(key);
            }
            i += 1;
            std::thread::sleep(Duration::from_millis(30));
        }
        acked
    })
}

/// Reads every node's (term, leader) every 100 ms until `stop`; the leaders
/// seen per term.
type Terms = Arc<Mutex<BTreeMap<u64, BTreeSet<String>>>>;

fn observer(specs: Vec<Spec>, stop: Arc<AtomicBool>, terms: Terms) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            for spec in &specs {
                let Ok(v) = ctl_at(spec, &["cluster", "status"]) else {
                    continue;
                };
                let Some(g) = v["consensus"]
                    .as_array()
                    .and_then(|a| a.iter().find(|g| g["shard"] == SHARD))
                else {
                    continue;
                };
                if let (Some(term), Some(leader)) = (g["term"].as_u64(), g["leader"].as_str()) {
                    if let Ok(mut t) = terms.lock() {
                        t.entry(term).or_default().insert(leader.to_owned());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
}

fn settled(nodes: &[Node], all: &[String]) -> Result<()> {
    for n in nodes {
        n.wait_until("all four voters and a leader", SETTLE, |n| {
            let g = n.consensus(SHARD)?;
            let leader = g["leader"].as_str().unwrap_or_default().to_owned();
            Ok(n.voters(SHARD)? == all && all.contains(&leader))
        })?;
    }
    Ok(())
}

fn apply(nodes: &mut [Node], step: Step, at: usize, other: usize) -> Result<()> {
    let hold = Duration::from_millis(1500);
    match step {
        Step::KillRestart => {
            nodes[at].kill();
            std::thread::sleep(hold);
            nodes[at].restart()?;
        }
        Step::LeaveJoin => {
            nodes[at].ctl(&["cluster", "leave"])?;
            std::thread::sleep(hold);
            let target = nodes[other].spec.target();
            nodes[at].ctl(&["cluster", "join", &target])?;
        }
        Step::ForceLeaveRestart => {
            nodes[at].kill();
            let name = nodes[at].spec.name.clone();
            nodes[other].ctl(&["cluster", "force-leave", &name])?;
            std::thread::sleep(hold);
            nodes[at].restart()?;
        }
        Step::Partition => {
            let peers: Vec<String> = nodes
                .iter()
                .filter(|n| n.spec.name != nodes[at].spec.name)
                .map(|n| n.spec.name.clone())
                .collect();
            for p in &peers {
                nodes[at].ctl(&["cluster", "debug", p, "cut"])?;
            }
            std::thread::sleep(hold);
            for p in &peers {
                nodes[at].ctl(&["cluster", "debug", p, "restore"])?;
            }
        }
    }
    Ok(())
}

#[test]
fn a_seeded_schedule_keeps_one_leader_per_term_and_every_acknowledged_write() -> Result<()> {
    let seed: u64 = std::env::var("CONSENSUS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    eprintln!("CONSENSUS_SEED={seed}");
    let mut rng = Rng(seed);
    let specs = specs(82, 4, true)?;
    let all = sorted(specs.iter().map(|s| s.name.as_str()));
    let mut nodes = Node::start_all(specs)?;
    // The specs as started: with the ports the nodes bound.
    let specs: Vec<Spec> = nodes.iter().map(|n| n.spec.clone()).collect();
    settled(&nodes, &all)?;

    let stop = Arc::new(AtomicBool::new(false));
    let terms: Terms = Arc::default();
    let writes = writer(specs.clone(), stop.clone());
    let watch = observer(specs, stop.clone(), terms.clone());
    let steps = [
        Step::KillRestart,
        Step::LeaveJoin,
        Step::ForceLeaveRestart,
        Step::Partition,
    ];
    let mut result = Ok(());
    for i in 0..STEPS {
        let step = steps[rng.below(steps.len())];
        let at = rng.below(nodes.len());
        let other = (at + 1 + rng.below(nodes.len() - 1)) % nodes.len();
        eprintln!(
            "step {i}: {step:?} on {} (via {})",
            nodes[at].spec.name, nodes[other].spec.name
        );
        result = apply(&mut nodes, step, at, other).and_then(|()| settled(&nodes, &all));
        if result.is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let acked = writes
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))?;
    watch
        .join()
        .map_err(|_| anyhow::anyhow!("observer panicked"))?;
    result?;

    let terms = terms
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    for (term, leaders) in &terms {
        if leaders.len() > 1 {
            bail!("seed {seed}: term {term} had leaders {leaders:?}");
        }
    }
    assert!(!acked.is_empty(), "seed {seed}: no write was acknowledged");
    let want: BTreeSet<String> = acked.iter().cloned().collect();
    for n in &nodes {
        n.wait_until("every acknowledged write", SETTLE, |n| {
            let have: BTreeSet<String> = n.row_keys(TABLE)?.into_iter().collect();
            Ok(want.is_subset(&have))
        })?;
    }
    eprintln!(
        "seed {seed}: {} acknowledged writes, {} terms seen",
        acked.len(),
        terms.len()
    );
    Ok(())
}
