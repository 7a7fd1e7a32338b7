//! Table tests from the MQTT specification's examples, and property tests of
//! the indexes against a naive matcher.

use proptest::prelude::*;

use super::*;

const LIMITS: TopicLimits = TopicLimits { max_levels: 128 };

#[test]
fn topic_names() {
    let long = "a".repeat(MAX_TOPIC_LEN + 1);
    let cases: &[(&str, Result<(), TopicError>)] = &[
        ("sport/tennis/player1", Ok(())),
        ("/", Ok(())),
        ("/finance", Ok(())),
        ("$SYS/monitor/Clients", Ok(())),
        ("sport tennis", Ok(())),
        ("", Err(TopicError::Empty)),
        ("sport/+", Err(TopicError::WildcardInName)),
        ("sport/#", Err(TopicError::WildcardInName)),
        ("sport#", Err(TopicError::WildcardInName)),
        ("a\0b", Err(TopicError::NullCharacter)),
        (
            &long,
            Err(TopicError::TooLong {
                len: MAX_TOPIC_LEN + 1,
            }),
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(validate_name(name, &LIMITS), *expected, "name {name:?}");
    }
    assert_eq!(validate_name(&"a".repeat(MAX_TOPIC_LEN), &LIMITS), Ok(()));
}

#[test]
fn topic_filters() {
    let cases: &[(&str, Result<(), TopicError>)] = &[
        ("sport/tennis/player1/#", Ok(())),
        ("sport/#", Ok(())),
        ("#", Ok(())),
        ("+", Ok(())),
        ("+/tennis/#", Ok(())),
        ("sport/+/player1", Ok(())),
        ("/+", Ok(())),
        ("+/+", Ok(())),
        ("$SYS/#", Ok(())),
        ("", Err(TopicError::Empty)),
        ("sport/tennis#", Err(TopicError::InvalidMultiLevelWildcard)),
        (
            "sport/tennis/#/ranking",
            Err(TopicError::InvalidMultiLevelWildcard),
        ),
        ("#/", Err(TopicError::InvalidMultiLevelWildcard)),
        ("##", Err(TopicError::InvalidMultiLevelWildcard)),
        ("sport+", Err(TopicError::InvalidSingleLevelWildcard)),
        ("sport/+tennis", Err(TopicError::InvalidSingleLevelWildcard)),
        ("++", Err(TopicError::InvalidSingleLevelWildcard)),
        ("a/\0", Err(TopicError::NullCharacter)),
    ];
    for (filter, expected) in cases {
        assert_eq!(
            validate_filter(filter, &LIMITS),
            *expected,
            "filter {filter:?}"
        );
    }
}

#[test]
fn level_limit_applies_to_names_filters_and_shares() {
    let limits = TopicLimits { max_levels: 3 };
    assert_eq!(validate_name("a/b/c", &limits), Ok(()));
    let too_many = Err(TopicError::TooManyLevels { levels: 4, max: 3 });
    assert_eq!(validate_name("a/b/c/d", &limits), too_many);
    assert_eq!(validate_filter("a/+/c/#", &limits), too_many);
    assert_eq!(validate_filter("///", &limits), too_many);
    assert_eq!(
        parse_filter("$share/g/a/b", &limits).map(|p| p.filter),
        Err(TopicError::TooManyLevels { levels: 4, max: 3 })
    );
}

/// (filter, name, matches): MQTT 3.1.1 §4.7.1 and §4.7.2, MQTT 5.0 §4.7.
const MATCH_CASES: &[(&str, &str, bool)] = &[
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking",
        true,
    ),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("sport/tennis/player1/#", "sport/tennis/player2", false),
    ("sport/#", "sport", true),
    ("sport/#", "sports", false),
    ("#", "sport/tennis", true),
    ("#", "/", true),
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player2", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    ("+", "finance", true),
    ("+/tennis/#", "sport/tennis/player1", true),
    ("+/tennis/#", "sport/tennis", true),
    ("sport/tennis", "sport/tennis", true),
    ("sport/tennis", "sport/Tennis", false),
    ("sport/tennis", "sport/tennis/", false),
    // MQTT-4.7.2-1: no first-level wildcard match on '$' topics.
    ("#", "$SYS/monitor/Clients", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("+", "$SYS", false),
    ("$SYS/#", "$SYS/monitor/Clients", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    ("$SYS/#", "$SYS", true),
    ("a/+", "a/$b", true),
    ("a/#", "a/$b", true),
];

#[test]
fn matches_spec_examples() {
    for (filter, name, expected) in MATCH_CASES {
        assert_eq!(matches(filter, name), *expected, "{filter:?} vs {name:?}");
    }
}

#[test]
fn index_matches_spec_examples() {
    let mut index = SubscriptionIndex::new();
    for (i, (filter, _, _)) in MATCH_CASES.iter().enumerate() {
        index.insert(filter, i, ());
    }
    for (i, (filter, name, expected)) in MATCH_CASES.iter().enumerate() {
        let mut hit = false;
        index.match_topic(name, &mut |k: &usize, _: &()| hit |= *k == i);
        assert_eq!(hit, *expected, "index: {filter:?} vs {name:?}");
    }
}

#[test]
fn shared_subscription_forms() {
    type Case = (
        &'static str,
        Result<(Option<&'static str>, &'static str), TopicError>,
    );
    let cases: &[Case] = &[
        (
            "$share/g1/sport/tennis/+",
            Ok((Some("g1"), "sport/tennis/+")),
        ),
        ("$share/g1/#", Ok((Some("g1"), "#"))),
        ("$share/$g/a", Ok((Some("$g"), "a"))),
        ("$share/g/$SYS/#", Ok((Some("g"), "$SYS/#"))),
        ("$queue/jobs/+", Ok((Some(QUEUE_GROUP), "jobs/+"))),
        ("$queue/#", Ok((Some(QUEUE_GROUP), "#"))),
        ("sport/#", Ok((None, "sport/#"))),
        ("$SYS/#", Ok((None, "$SYS/#"))),
        ("$share", Ok((None, "$share"))),
        ("$sharefoo/a", Ok((None, "$sharefoo/a"))),
        ("$queue", Ok((None, "$queue"))),
        ("$share/", Err(TopicError::EmptyShareName)),
        ("$share//a", Err(TopicError::EmptyShareName)),
        ("$share/g", Err(TopicError::InvalidShareName)),
        ("$share/g+/a", Err(TopicError::InvalidShareName)),
        ("$share/#/a", Err(TopicError::InvalidShareName)),
        ("$share/g/", Err(TopicError::Empty)),
        ("$share/g/a#", Err(TopicError::InvalidMultiLevelWildcard)),
        ("$share/g/a/+b", Err(TopicError::InvalidSingleLevelWildcard)),
        ("$queue/", Err(TopicError::Empty)),
        ("$queue/a/#/b", Err(TopicError::InvalidMultiLevelWildcard)),
        ("$share/g/\0", Err(TopicError::NullCharacter)),
    ];
    for (raw, expected) in cases {
        let got = parse_filter(raw, &LIMITS).map(|p| (p.group, p.filter));
        assert_eq!(got, *expected, "parse {raw:?}");
    }
    assert!(parse_filter("$share/g/a", &LIMITS).is_ok_and(|p| p.is_shared()));
    assert!(parse_filter("a", &LIMITS).is_ok_and(|p| !p.is_shared()));
}

#[test]
fn insert_and_remove_report_filter_lifecycle() {
    let mut index = SubscriptionIndex::new();
    for filter in ["a/b", "a/+", "a/#", "#"] {
        let first = index.insert(filter, "c1", 1);
        assert_eq!(
            first,
            InsertOutcome {
                new_filter: true,
                previous: None
            },
            "{filter}"
        );
        let second = index.insert(filter, "c2", 2);
        assert_eq!(
            second,
            InsertOutcome {
                new_filter: false,
                previous: None
            },
            "{filter}"
        );
        let replaced = index.insert(filter, "c1", 3);
        assert_eq!(
            replaced,
            InsertOutcome {
                new_filter: false,
                previous: Some(1)
            },
            "{filter}"
        );
    }
    assert_eq!((index.filter_count(), index.subscription_count()), (4, 8));
    assert_eq!(index.get("a/+", &"c1"), Some(&3));
    assert!(index.contains_filter("a/#"));
    assert!(!index.contains_filter("a/c"));

    for filter in ["a/b", "a/+", "a/#", "#"] {
        let missing = index.remove(filter, &"nobody");
        assert_eq!(
            missing,
            RemoveOutcome {
                removed: None,
                filter_gone: false
            },
            "{filter}"
        );
        let first = index.remove(filter, &"c1");
        assert_eq!(
            first,
            RemoveOutcome {
                removed: Some(3),
                filter_gone: false
            },
            "{filter}"
        );
        let last = index.remove(filter, &"c2");
        assert_eq!(
            last,
            RemoveOutcome {
                removed: Some(2),
                filter_gone: true
            },
            "{filter}"
        );
        assert!(!index.contains_filter(filter));
    }
    assert!(index.is_empty());
    assert_eq!((index.filter_count(), index.subscription_count()), (0, 0));
    assert_eq!(index.remove("x/+/y", &"c1").removed, None);
}

#[test]
fn overlapping_filters_visit_a_subscriber_once_per_filter() {
    let mut index = SubscriptionIndex::new();
    index.insert("a/b", "c1", "exact");
    index.insert("a/+", "c1", "plus");
    index.insert("#", "c1", "hash");
    index.insert("a/c", "c2", "other");
    let mut hits = Vec::new();
    index.match_topic("a/b", &mut |k: &&str, v: &&str| hits.push((*k, *v)));
    hits.sort();
    assert_eq!(hits, [("c1", "exact"), ("c1", "hash"), ("c1", "plus")]);
}

#[test]
fn for_each_rebuilds_every_filter() {
    let filters = ["a/b", "/a/+", "+", "#", "/#", "+/+/#", "a//+", "/", "a/b/#"];
    let mut index = SubscriptionIndex::new();
    for f in filters {
        index.insert(f, 7u8, ());
    }
    let mut seen = Vec::new();
    index.for_each(|f, k, _| seen.push((f.to_owned(), *k)));
    seen.sort();
    let mut expected: Vec<_> = filters.iter().map(|f| (f.to_string(), 7u8)).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[test]
fn sharded_index_routes_dollar_topics_past_the_wildcard_shard() {
    let index = ShardedIndex::new(4);
    assert!(index.insert("#", 1, ()).new_filter);
    assert!(index.insert("$SYS/#", 2, ()).new_filter);
    assert!(index.insert("$SYS/+/x", 3, ()).new_filter);
    let mut hits = Vec::new();
    index.match_topic("$SYS/a/x", &mut |k: &i32, _: &()| hits.push(*k));
    hits.sort();
    assert_eq!(hits, [2, 3]);
    assert_eq!((index.filter_count(), index.subscription_count()), (3, 3));
    assert_eq!(index.get("$SYS/#", &2), Some(()));
    assert!(index.remove("#", &1).filter_gone);
    assert!(index.remove("$SYS/#", &2).filter_gone);
    assert!(index.remove("$SYS/+/x", &3).filter_gone);
    assert!(index.is_empty());
}

#[test]
fn sharded_index_serves_concurrent_readers_and_writers() {
    let index = ShardedIndex::new(4);
    index.insert("t/+", u32::MAX, ());
    std::thread::scope(|s| {
        for w in 0..2u32 {
            let index = &index;
            s.spawn(move || {
                for i in 0..500 {
                    let filter = format!("t/{}", i % 7);
                    index.insert(&filter, w * 1000 + i, ());
                    index.remove(&filter, &(w * 1000 + i));
                }
            });
        }
        for _ in 0..2 {
            let index = &index;
            s.spawn(move || {
                for i in 0..500 {
                    let mut wildcard_seen = false;
                    let name = format!("t/{}", i % 7);
                    index.match_topic(&name, &mut |k: &u32, _: &()| {
                        wildcard_seen |= *k == u32::MAX
                    });
                    assert!(wildcard_seen, "the stable subscription is always visible");
                }
            });
        }
    });
    assert_eq!(index.subscription_count(), 1);
}

/// The reference matcher: a direct reading of §4.7, on split levels.
fn naive_matches(filter: &str, name: &str) -> bool {
    fn levels(filter: &[&str], name: &[&str]) -> bool {
        match (filter.split_first(), name.split_first()) {
            (Some((&"#", _)), _) => true,
            (Some((f, frest)), Some((n, nrest))) if *f == "+" || f == n => levels(frest, nrest),
            (None, None) => true,
            _ => false,
        }
    }
    let first_is_wildcard = matches!(filter.split('/').next(), Some("+" | "#"));
    if name.starts_with('$') && first_is_wildcard {
        return false;
    }
    let f: Vec<&str> = filter.split('/').collect();
    let n: Vec<&str> = name.split('/').collect();
    levels(&f, &n)
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just(""), Just("$s"), Just("$SYS")].prop_map(str::to_owned)
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..5)
        .prop_map(|l| l.join("/"))
        .prop_filter("a topic is never empty", |n| !n.is_empty())
}

fn filter() -> impl Strategy<Value = String> {
    let filter_level = prop_oneof![3 => level(), 1 => Just("+".to_owned())];
    (prop::collection::vec(filter_level, 0..5), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash || levels.is_empty() {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
        .prop_filter("a filter is never empty", |f| !f.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    })]

    #[test]
    fn matches_agrees_with_naive(f in filter(), n in name()) {
        prop_assert!(validate_filter(&f, &LIMITS).is_ok());
        prop_assert!(validate_name(&n, &LIMITS).is_ok());
        prop_assert_eq!(matches(&f, &n), naive_matches(&f, &n));
    }

    #[test]
    fn indexes_agree_with_naive(
        filters in prop::collection::vec(filter(), 0..24),
        removed in prop::collection::vec(any::<bool>(), 24),
        names in prop::collection::vec(name(), 1..12),
    ) {
        let mut index = SubscriptionIndex::new();
        let sharded = ShardedIndex::new(3);
        for (id, f) in filters.iter().enumerate() {
            index.insert(f, id, ());
            sharded.insert(f, id, ());
        }
        let mut live: Vec<usize> = Vec::new();
        for (id, f) in filters.iter().enumerate() {
            if removed[id] {
                prop_assert_eq!(index.remove(f, &id).removed, Some(()));
                prop_assert_eq!(sharded.remove(f, &id).removed, Some(()));
            } else {
                live.push(id);
            }
        }
        let distinct: std::collections::HashSet<&str> = live.iter().map(|&id| filters[id].as_str()).collect();
        prop_assert_eq!(index.filter_count(), distinct.len());
        prop_assert_eq!(sharded.filter_count(), distinct.len());
        prop_assert_eq!(index.subscription_count(), live.len());
        for n in &names {
            let expected: Vec<usize> = live.iter().copied().filter(|&id| naive_matches(&filters[id], n)).collect();
            let mut got = Vec::new();
            index.match_topic(n, &mut |id: &usize, _: &()| got.push(*id));
            got.sort_unstable();
            prop_assert_eq!(&got, &expected, "index, name {:?}", n);
            let mut got = Vec::new();
            sharded.match_topic(n, &mut |id: &usize, _: &()| got.push(*id));
            got.sort_unstable();
            prop_assert_eq!(&got, &expected, "sharded, name {:?}", n);
        }
    }
}
