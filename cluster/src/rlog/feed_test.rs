use super::*;

fn n(s: &str) -> NodeName {
    NodeName::parse(s).expect("valid name")
}

fn put(k: &str) -> Vec<pb::Op> {
    ops_to_pb(&[Op::put("t", k.to_owned(), "v")])
}

fn rows() -> Vec<Op> {
    vec![Op::put("t", "a", "1"), Op::put("t", "b", "2")]
}

/// Runs pushes through a follower, returning the applied keys.
fn deliver(f: &mut Follow, server: &NodeName, pushes: Vec<(NodeName, pb::Push)>) -> Vec<Step> {
    pushes
        .into_iter()
        .flat_map(|(_, p)| f.on_push(server, p).0)
        .collect()
}

#[test]
fn resumes_from_a_retained_position_without_a_copy() {
    let core = n("core1@h");
    let me = n("rep@h");
    let mut feed = Feed::new("shard:s", 0, 0, 10, 100);
    for i in 1..=5 {
        feed.append(i, put(&i.to_string()), 0);
    }
    let mut f = Follow::new();
    f.pos = 3;
    let req = f.subscribe("shard:s", core.clone(), 7);
    feed.subscribe(&me, &req);
    let steps = deliver(&mut f, &core, feed.pump(&mut rows));
    assert!(!steps.contains(&Step::Clear), "no full copy: {steps:?}");
    assert_eq!(f.pos, 5);
    assert_eq!(f.copies, 0);
    assert_eq!(steps.last(), Some(&Step::Ack(5)));
}

#[test]
fn a_compacted_position_gets_a_copy_then_entries() {
    let core = n("core1@h");
    let me = n("rep@h");
    let mut feed = Feed::new("shard:s", 0, 0, 2, 100);
    for i in 1..=5 {
        feed.append(i, put(&i.to_string()), 0);
    }
    let mut f = Follow::new();
    f.pos = 1;
    feed.subscribe(&me, &f.subscribe("shard:s", core.clone(), 1));
    let steps = deliver(&mut f, &core, feed.pump(&mut rows));
    assert_eq!(steps[0], Step::Clear);
    assert_eq!(f.pos, 5);
    assert_eq!(f.copies, 1);
    feed.append(6, put("6"), 0);
    deliver(&mut f, &core, feed.pump(&mut rows));
    assert_eq!(f.pos, 6);
}

#[test]
fn the_window_bounds_what_is_in_flight_until_acked() {
    let core = n("core1@h");
    let me = n("rep@h");
    let mut feed = Feed::new("owned", 9, 0, 100, 3);
    for i in 1..=10 {
        feed.append(i, put(&i.to_string()), 0);
    }
    let mut f = Follow::new();
    f.epoch = 9;
    let req = f.subscribe("owned", core.clone(), 5);
    feed.subscribe(&me, &req);
    let pushes = feed.pump(&mut rows);
    let sent: usize = pushes.iter().map(|(_, p)| p.entries.len()).sum();
    assert_eq!(sent, 3);
    deliver(&mut f, &core, pushes);
    assert!(
        feed.pump(&mut rows).is_empty(),
        "nothing more before an ack"
    );
    feed.subscribe(&me, &pb::Subscribe { from: f.pos, ..req });
    deliver(&mut f, &core, feed.pump(&mut rows));
    assert_eq!(f.pos, 6);
}

#[test]
fn a_new_epoch_replaces_the_rows_and_a_gap_resubscribes() {
    let core = n("core1@h");
    let me = n("rep@h");
    let mut f = Follow::new();
    f.epoch = 1;
    f.pos = 40;
    let mut feed = Feed::new("owned", 2, 0, 100, 100);
    feed.append(1, put("x"), 0);
    feed.subscribe(&me, &f.subscribe("owned", core.clone(), 3));
    let steps = deliver(&mut f, &core, feed.pump(&mut rows));
    assert_eq!(steps[0], Step::Clear);
    assert_eq!((f.epoch, f.pos), (2, 1));
    let gap = pb::Push {
        feed: "owned".into(),
        epoch: 2,
        session: 3,
        head: 9,
        entries: vec![pb::Entry {
            pos: 5,
            ops: put("y"),
            at_ms: 0,
        }],
        ..Default::default()
    };
    assert_eq!(f.on_push(&core, gap).0, vec![Step::Resubscribe]);
    let stale = pb::Push {
        session: 99,
        ..Default::default()
    };
    assert!(
        f.on_push(&core, stale).0.is_empty(),
        "old sessions are ignored"
    );
}

#[test]
fn large_entries_are_cut_into_bounded_pushes_and_rounds() {
    let core = n("core1@h");
    let me = n("rep@h");
    let mut feed = Feed::new("shard:s", 0, 0, 1000, 1000);
    let big: Vec<pb::Op> = (0..4_000).flat_map(|i| put(&i.to_string())).collect();
    for i in 1..=20 {
        feed.append(i, big.clone(), 0);
    }
    let mut f = Follow::new();
    feed.subscribe(&me, &f.subscribe("shard:s", core.clone(), 1));
    let pushes = feed.pump(&mut rows);
    assert!(pushes
        .iter()
        .all(|(_, p)| p.entries.iter().map(|e| e.ops.len()).sum::<usize>() <= 10_000));
    let sent: usize = pushes.iter().map(|(_, p)| p.entries.len()).sum();
    assert!(
        sent < 20,
        "one round sends a bounded number of ops, sent {sent} entries"
    );
    deliver(&mut f, &core, pushes);
    while f.pos < 20 {
        let more = feed.pump(&mut rows);
        assert!(!more.is_empty(), "the next round sends the rest");
        deliver(&mut f, &core, more);
    }
}

#[test]
fn an_idle_feed_greets_a_new_subscription_once() {
    let core = n("core1@h");
    let me = n("rep@h");
    let mut feed = Feed::new("shard:s", 0, 0, 10, 100);
    feed.append(1, put("1"), 0);
    let mut f = Follow::new();
    f.pos = 4; // ahead of this core (it restarted and is catching up)
    feed.subscribe(&me, &f.subscribe("shard:s", core.clone(), 3));
    let steps = deliver(&mut f, &core, feed.pump(&mut rows));
    assert_eq!(steps, vec![Step::Ack(4)]);
    assert!(f.live, "the follower knows it is served");
    assert!(feed.pump(&mut rows).is_empty(), "greeted once");
    for i in 2..=5 {
        feed.append(i, put(&i.to_string()), 0);
    }
    deliver(&mut f, &core, feed.pump(&mut rows));
    assert_eq!(f.pos, 5);
    assert_eq!(f.copies, 0);
}
