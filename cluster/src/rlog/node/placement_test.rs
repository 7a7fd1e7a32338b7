//! The replicant's placement decisions, without a runtime: shards and
//! cores in, moves out.

use super::{Move, Placement, ShardState};
use crate::options::NodeName;

fn cores(n: usize) -> Vec<NodeName> {
    (1..=n)
        .map(|i| NodeName::parse(&format!("c{i}@127.0.0.1")).expect("name"))
        .collect()
}

fn on(core: &NodeName) -> ShardState {
    ShardState {
        server: Some(core.clone()),
        live: true,
        ..ShardState::default()
    }
}

fn targets(moves: &[Move]) -> Vec<(usize, String)> {
    moves.iter().map(|m| (m.shard, m.to.to_string())).collect()
}

#[test]
fn fresh_shards_spread_over_the_live_cores_in_each_shards_rotation() {
    let c = cores(3);
    let p = Placement {
        cores: &c,
        offset: 0,
        live: &c,
    };
    let moves = p.place(&vec![ShardState::default(); 4]);
    assert_eq!(
        targets(&moves),
        vec![
            (0, "c1@127.0.0.1".into()),
            (1, "c2@127.0.0.1".into()),
            (2, "c3@127.0.0.1".into()),
            (3, "c1@127.0.0.1".into()),
        ]
    );
    // Another replicant's rotation starts elsewhere.
    let p = Placement { offset: 1, ..p };
    assert_eq!(p.place(&vec![ShardState::default(); 1])[0].to, c[1]);
}

#[test]
fn shards_on_a_gone_core_move_to_the_emptiest_live_ones() {
    let c = cores(3);
    let live = vec![c[0].clone(), c[2].clone()];
    let p = Placement {
        cores: &c,
        offset: 0,
        live: &live,
    };
    let shards = vec![on(&c[0]), on(&c[1]), on(&c[1]), on(&c[2])];
    let moves = p.place(&shards);
    assert_eq!(moves.len(), 2);
    assert!(moves.iter().all(|m| m.from.as_ref() == Some(&c[1])));
    // One each: c1 and c3 each held one already.
    let mut to: Vec<_> = moves.iter().map(|m| m.to.clone()).collect();
    to.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(to, vec![c[0].clone(), c[2].clone()]);
    // Nothing to place while every shard's core is up and flowing.
    assert!(p.place(&[on(&c[0]), on(&c[2])]).is_empty());
}

#[test]
fn a_stale_shard_is_placed_again_and_may_stay_on_its_core() {
    let c = cores(2);
    let p = Placement {
        cores: &c,
        offset: 0,
        live: &c,
    };
    let stale = ShardState {
        live: false,
        stale: true,
        ..on(&c[0])
    };
    let moves = p.place(&[stale, on(&c[1])]);
    assert_eq!(
        moves,
        vec![Move {
            shard: 0,
            from: Some(c[0].clone()),
            to: c[0].clone(),
        }]
    );
}

#[test]
fn no_live_core_means_no_move() {
    let c = cores(2);
    let p = Placement {
        cores: &c,
        offset: 0,
        live: &[],
    };
    assert!(p.place(&[ShardState::default(), on(&c[0])]).is_empty());
    assert_eq!(p.rebalance(&[on(&c[0])]), None);
}

#[test]
fn a_lagging_shard_moves_to_another_core_and_stays_if_there_is_none() {
    let c = cores(3);
    let p = Placement {
        cores: &c,
        offset: 0,
        live: &c,
    };
    let lagging = ShardState {
        lagging: true,
        ..on(&c[0])
    };
    let moves = p.off_lagging(&[lagging.clone(), on(&c[1]), on(&c[1])]);
    assert_eq!(
        moves,
        vec![Move {
            shard: 0,
            from: Some(c[0].clone()),
            to: c[2].clone(),
        }]
    );
    let alone = &c[..1];
    let p = Placement { live: alone, ..p };
    assert!(p.off_lagging(&[lagging]).is_empty());
}

#[test]
fn rebalancing_moves_one_shard_from_the_busiest_to_the_emptiest_core() {
    let c = cores(2);
    let p = Placement {
        cores: &c,
        offset: 0,
        live: &c,
    };
    // c2 came back: every shard is on c1.
    let shards = vec![on(&c[0]); 4];
    let m = p.rebalance(&shards).expect("a move");
    assert_eq!((m.from.as_ref(), &m.to), (Some(&c[0]), &c[1]));
    // The shard that prefers c2 most: shard 1 (its rotation starts there).
    assert_eq!(m.shard, 1);
    // Within one of each other: balanced.
    assert_eq!(p.rebalance(&[on(&c[0]), on(&c[0]), on(&c[1])]), None);
    // Not while a shard is not flowing.
    let mut unsettled = shards;
    unsettled[3].live = false;
    assert_eq!(p.rebalance(&unsettled), None);
}

#[test]
fn counts_ignore_cores_that_are_not_live() {
    let c = cores(3);
    let live = vec![c[0].clone()];
    let p = Placement {
        cores: &c,
        offset: 0,
        live: &live,
    };
    let counts = p.counts(&[on(&c[0]), on(&c[1]), ShardState::default()]);
    assert_eq!(counts.len(), 1);
    assert_eq!(counts[&c[0]], 1);
}
