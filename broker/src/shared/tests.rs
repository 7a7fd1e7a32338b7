//! Strategy distribution, stability and redelivery tests.

use std::collections::HashMap;

use super::*;

const ALL: [Strategy; 5] = [
    Strategy::Random,
    Strategy::RoundRobin,
    Strategy::Sticky,
    Strategy::HashClientId,
    Strategy::HashTopic,
];

fn input<'a>(publisher: &'a str, topic: &'a str) -> PickInput<'a> {
    PickInput { publisher, topic }
}

fn group(strategy: Strategy, members: &[&'static str], seed: u64) -> SharedGroup<&'static str> {
    let mut group = SharedGroup::with_seed(strategy, seed);
    for m in members {
        assert!(group.join(*m));
    }
    group
}

fn counts(
    group: &SharedGroup<&'static str>,
    picks: usize,
    input: &PickInput<'_>,
) -> HashMap<&'static str, usize> {
    let mut counts = HashMap::new();
    for _ in 0..picks {
        let member = group.pick(input).copied();
        *counts.entry(member.unwrap_or("<none>")).or_insert(0) += 1;
    }
    counts
}

#[test]
fn strategy_names_are_emqx_names() {
    for strategy in ALL {
        assert_eq!(strategy.as_str().parse::<Strategy>(), Ok(strategy));
        assert_eq!(strategy.to_string(), strategy.as_str());
    }
    assert_eq!("hash_clientid".parse(), Ok(Strategy::HashClientId));
    assert_eq!(Strategy::default(), Strategy::RoundRobin);
    assert_eq!(
        "local".parse::<Strategy>(),
        Err(SharedError::UnknownStrategy("local".to_owned()))
    );
}

#[test]
fn empty_group_picks_nobody() {
    for strategy in ALL {
        let group = SharedGroup::<u8>::with_seed(strategy, 1);
        assert_eq!(group.pick(&input("p", "t")), None, "{strategy}");
    }
}

#[test]
fn round_robin_cycles_in_join_order_and_is_exactly_even() {
    let group = group(Strategy::RoundRobin, &["a", "b", "c", "d"], 0);
    let order: Vec<_> = (0..8)
        .filter_map(|_| group.pick(&input("p", "t")).copied())
        .collect();
    assert_eq!(order, ["a", "b", "c", "d", "a", "b", "c", "d"]);
    let counts = counts(&group, 400, &input("p", "t"));
    assert_eq!(
        counts,
        HashMap::from([("a", 100), ("b", 100), ("c", 100), ("d", 100)])
    );
}

#[test]
fn round_robin_keeps_its_place_when_members_leave() {
    let mut group = group(Strategy::RoundRobin, &["a", "b", "c", "d"], 0);
    let i = input("p", "t");
    assert_eq!(group.pick(&i), Some(&"a"));
    assert_eq!(group.pick(&i), Some(&"b"));
    assert!(group.leave(&"a"));
    assert_eq!(
        group.pick(&i),
        Some(&"c"),
        "an earlier member left: c is still next"
    );
    assert!(group.leave(&"d"));
    assert_eq!(
        group.pick(&i),
        Some(&"b"),
        "the next member left: wrap around"
    );
    assert!(!group.leave(&"d"));
    assert!(group.join("e"));
    let order: Vec<_> = (0..3).filter_map(|_| group.pick(&i).copied()).collect();
    assert_eq!(order, ["c", "e", "b"]);
}

#[test]
fn round_robin_is_exactly_even_across_threads() {
    let group = group(Strategy::RoundRobin, &["a", "b", "c", "d"], 0);
    let per_thread: Vec<HashMap<&str, usize>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| counts(&group, 1000, &input("p", "t"))))
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    assert_eq!(per_thread.len(), 4);
    let mut total: HashMap<&str, usize> = HashMap::new();
    for counts in per_thread {
        for (member, n) in counts {
            *total.entry(member).or_insert(0) += n;
        }
    }
    assert_eq!(
        total,
        HashMap::from([("a", 1000), ("b", 1000), ("c", 1000), ("d", 1000)])
    );
}

#[test]
fn random_covers_every_member() {
    let group = group(Strategy::Random, &["a", "b", "c", "d", "e"], 42);
    let counts = counts(&group, 2000, &input("p", "t"));
    assert_eq!(counts.len(), 5, "{counts:?}");
    for (member, n) in &counts {
        assert!(
            (250..=550).contains(n),
            "{member} picked {n} times of 2000: {counts:?}"
        );
    }
}

#[test]
fn hash_strategies_are_stable_per_input_and_across_instances() {
    let members = ["a", "b", "c", "d", "e"];
    for (strategy, vary) in [(Strategy::HashClientId, 0), (Strategy::HashTopic, 1)] {
        let one = group(strategy, &members, 1);
        let other = group(strategy, &members, 2);
        let mut chosen = std::collections::HashSet::new();
        for n in 0..100 {
            let key = format!("key-{n}");
            let i = if vary == 0 {
                input(&key, "t")
            } else {
                input("p", &key)
            };
            let first = one.pick(&i).copied();
            for _ in 0..5 {
                assert_eq!(
                    one.pick(&i).copied(),
                    first,
                    "{strategy}: same input, same member"
                );
            }
            assert_eq!(
                other.pick(&i).copied(),
                first,
                "{strategy}: same on another instance"
            );
            // The hashed field alone decides: the other field does not matter.
            let j = if vary == 0 {
                input(&key, "other")
            } else {
                input("other", &key)
            };
            assert_eq!(
                one.pick(&j).copied(),
                first,
                "{strategy}: other field ignored"
            );
            chosen.extend(first);
        }
        assert_eq!(chosen.len(), 5, "{strategy}: 100 inputs reach every member");
    }
}

#[test]
fn sticky_keeps_its_member_until_it_leaves() {
    let mut group = group(Strategy::Sticky, &["a", "b", "c"], 7);
    let first = group.pick(&input("p1", "t1")).copied();
    assert!(first.is_some());
    for n in 0..50 {
        let (p, t) = (format!("p{n}"), format!("t{n}"));
        assert_eq!(group.pick(&input(&p, &t)).copied(), first);
    }
    // Another member leaving changes nothing.
    let bystander = ["a", "b", "c"]
        .into_iter()
        .find(|m| Some(*m) != first)
        .unwrap_or("a");
    assert!(group.leave(&bystander));
    assert_eq!(group.pick(&input("p", "t")).copied(), first);
    // The sticky member leaving moves the choice to a member that stays.
    let gone = first.unwrap_or("a");
    assert!(group.leave(&gone));
    let second = group.pick(&input("p", "t")).copied();
    assert!(second.is_some() && second != first);
    for _ in 0..20 {
        assert_eq!(group.pick(&input("p", "t")).copied(), second);
    }
}

#[test]
fn redelivery_never_picks_an_excluded_member() {
    let members = ["a", "b", "c", "d"];
    for strategy in ALL {
        let group = group(strategy, &members, 3);
        for n in 0..50 {
            let (p, t) = (format!("p{n}"), format!("t{n}"));
            let i = input(&p, &t);
            let failed = group.pick(&i).copied();
            let retry = group.pick_excluding(&i, |m| Some(*m) == failed).copied();
            assert!(
                retry.is_some() && retry != failed,
                "{strategy}: {failed:?} then {retry:?}"
            );
            let tried = [failed, retry];
            let third = group
                .pick_excluding(&i, |m| tried.contains(&Some(*m)))
                .copied();
            assert!(third.is_some() && !tried.contains(&third), "{strategy}");
            assert_eq!(
                group.pick_excluding(&i, |_| true),
                None,
                "{strategy}: all excluded"
            );
        }
    }
}

#[test]
fn hash_redelivery_is_deterministic() {
    let group = group(Strategy::HashClientId, &["a", "b", "c", "d"], 0);
    let i = input("publisher-9", "t");
    let failed = group.pick(&i).copied();
    let retry = group.pick_excluding(&i, |m| Some(*m) == failed).copied();
    for _ in 0..10 {
        assert_eq!(
            group.pick_excluding(&i, |m| Some(*m) == failed).copied(),
            retry
        );
    }
}

#[test]
fn registry_reports_group_lifecycle() {
    let mut shared = SharedSubscriptions::new(Strategy::RoundRobin);
    assert!(shared.join("g1", "a/+", 1));
    assert!(!shared.join("g1", "a/+", 2));
    assert!(
        !shared.join("g1", "a/+", 2),
        "joining twice is one membership"
    );
    assert!(shared.join("g2", "a/+", 1));
    assert!(shared.join("g1", "b", 3));
    assert_eq!((shared.group_count(), shared.member_count()), (3, 4));

    let mut groups: Vec<_> = shared
        .groups_of("a/+")
        .map(|(name, g)| (name, g.len()))
        .collect();
    groups.sort();
    assert_eq!(groups, [("g1", 2), ("g2", 1)]);
    assert_eq!(
        shared.group("g1", "a/+").map(SharedGroup::members),
        Some(&[1, 2][..])
    );
    assert_eq!(
        shared.group("g1", "a/+").map(SharedGroup::strategy),
        Some(Strategy::RoundRobin)
    );
    let i = input("p", "a/x");
    assert_eq!(shared.pick("g1", "a/+", &i), Some(&1));
    assert_eq!(
        shared.pick_excluding("g1", "a/+", &i, |m| *m == 1),
        Some(&2)
    );
    assert_eq!(shared.pick("g9", "a/+", &i), None);

    assert!(!shared.leave("g1", "a/+", &9), "not a member");
    assert!(!shared.leave("g1", "zz", &1), "no such filter");
    assert!(!shared.leave("g1", "a/+", &1), "g1 still has member 2");
    assert!(shared.leave("g1", "a/+", &2), "g1 is gone");
    assert!(shared.group("g1", "a/+").is_none());
    assert!(shared.leave("g2", "a/+", &1));
    assert_eq!(shared.groups_of("a/+").count(), 0);
    assert!(shared.leave("g1", "b", &3));
    assert_eq!((shared.group_count(), shared.member_count()), (0, 0));
}
