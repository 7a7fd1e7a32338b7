//! Retained store tests: lookups by filter, expiry, limits, and a property
//! test against a naive scan.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::topic::matches;

const UNLIMITED: RetainedLimits = RetainedLimits {
    max_messages: None,
    max_payload_size: None,
};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn found(store: &RetainedStore<String>, filter: &str, now: Instant) -> Vec<String> {
    let mut topics = Vec::new();
    store.matching(filter, now, |topic, message| {
        assert_eq!(
            message,
            &format!("m:{topic}"),
            "the message stored on that topic"
        );
        topics.push(topic.to_owned());
    });
    topics.sort();
    topics
}

fn store_with(topics: &[&str]) -> RetainedStore<String> {
    let mut store = RetainedStore::new(UNLIMITED);
    for t in topics {
        assert_eq!(store.set(t, format!("m:{t}"), None), Ok(None));
    }
    store
}

#[test]
fn set_replace_remove_and_accounting() {
    let now = Instant::now();
    let mut store = RetainedStore::new(UNLIMITED);
    assert_eq!(store.set("a/b", "12345".to_owned(), None), Ok(None));
    assert_eq!(store.set("a", "1".to_owned(), None), Ok(None));
    assert_eq!((store.len(), store.total_bytes()), (2, 6));
    assert_eq!(
        store.set("a/b", "xy".to_owned(), None),
        Ok(Some("12345".to_owned()))
    );
    assert_eq!((store.len(), store.total_bytes()), (2, 3));
    assert_eq!(store.get("a/b", now).map(String::as_str), Some("xy"));
    assert_eq!(store.get("a/c", now), None);
    assert_eq!(store.remove("a/b"), Some("xy".to_owned()));
    assert_eq!(store.remove("a/b"), None);
    assert_eq!(store.remove("a/b/c"), None);
    assert_eq!((store.len(), store.total_bytes()), (1, 1));
    assert_eq!(store.get("a", now).map(String::as_str), Some("1"));
    assert_eq!(store.remove("a"), Some("1".to_owned()));
    assert!(store.is_empty());
    assert!(store.root.is_empty(), "removal prunes the trie");
}

#[test]
fn lookups_by_filter_follow_the_matching_rules() {
    let now = Instant::now();
    let topics = [
        "sport",
        "sport/tennis",
        "sport/tennis/player1",
        "sport/tennis/player1/ranking",
        "sport/golf",
        "sports",
        "/finance",
        "$SYS/broker/uptime",
        "$SYS",
        "a/$b",
    ];
    let store = store_with(&topics);
    let cases: &[(&str, &[&str])] = &[
        (
            "sport/tennis/player1/#",
            &["sport/tennis/player1", "sport/tennis/player1/ranking"],
        ),
        (
            "sport/#",
            &[
                "sport",
                "sport/golf",
                "sport/tennis",
                "sport/tennis/player1",
                "sport/tennis/player1/ranking",
            ],
        ),
        ("sport/+", &["sport/golf", "sport/tennis"]),
        ("sport/tennis/+", &["sport/tennis/player1"]),
        ("+", &["sports", "sport"]),
        ("+/+", &["/finance", "a/$b", "sport/golf", "sport/tennis"]),
        ("/+", &["/finance"]),
        ("sport", &["sport"]),
        ("sport/none", &[]),
        // MQTT-4.7.2-1
        ("$SYS/#", &["$SYS", "$SYS/broker/uptime"]),
        ("$SYS/+/uptime", &["$SYS/broker/uptime"]),
        ("+/broker/uptime", &[]),
        ("a/+", &["a/$b"]),
    ];
    for (filter, expected) in cases {
        let mut expected: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
        expected.sort();
        assert_eq!(found(&store, filter, now), expected, "filter {filter:?}");
    }
    let everything = found(&store, "#", now);
    assert_eq!(
        everything.len(),
        topics.len() - 2,
        "# skips the two $SYS topics"
    );
    assert!(everything.iter().all(|t| !t.starts_with('$')));
}

#[test]
fn expired_messages_are_hidden_then_purged() {
    let t0 = Instant::now();
    let mut store = RetainedStore::new(UNLIMITED);
    store
        .set("a/1", "m:a/1".to_owned(), Some(t0 + secs(10)))
        .ok();
    store
        .set("a/2", "m:a/2".to_owned(), Some(t0 + secs(20)))
        .ok();
    store.set("a/3", "m:a/3".to_owned(), None).ok();
    assert_eq!(store.next_expiry(), Some(t0 + secs(10)));
    assert_eq!(found(&store, "a/+", t0 + secs(9)), ["a/1", "a/2", "a/3"]);
    assert_eq!(
        found(&store, "a/+", t0 + secs(10)),
        ["a/2", "a/3"],
        "expired at its instant"
    );
    assert_eq!(found(&store, "a/1", t0 + secs(10)), Vec::<String>::new());
    assert!(store.get("a/1", t0 + secs(10)).is_none());
    assert_eq!(store.len(), 3, "hidden, not yet purged");

    assert_eq!(store.purge_expired(t0 + secs(15)), 1);
    assert_eq!((store.len(), store.total_bytes()), (2, 10));
    assert_eq!(store.next_expiry(), Some(t0 + secs(20)));
    assert_eq!(store.purge_expired(t0 + secs(100)), 1);
    assert_eq!(store.next_expiry(), None);
    assert_eq!(found(&store, "#", t0 + secs(1000)), ["a/3"]);
}

#[test]
fn replacing_a_message_replaces_its_expiry() {
    let t0 = Instant::now();
    let mut store = RetainedStore::new(UNLIMITED);
    store.set("t", "old".to_owned(), Some(t0 + secs(5))).ok();
    store.set("t", "new".to_owned(), Some(t0 + secs(50))).ok();
    assert_eq!(
        store.purge_expired(t0 + secs(10)),
        0,
        "the old expiry is gone"
    );
    assert_eq!(
        store.get("t", t0 + secs(10)).map(String::as_str),
        Some("new")
    );
    store.set("t", "forever".to_owned(), None).ok();
    assert_eq!(store.next_expiry(), None);
    assert_eq!(store.purge_expired(t0 + secs(100)), 0);
    assert_eq!(store.len(), 1);
    store.set("t", "same".to_owned(), Some(t0 + secs(7))).ok();
    store.set("t", "again".to_owned(), Some(t0 + secs(7))).ok();
    assert_eq!(
        store.next_expiry(),
        Some(t0 + secs(7)),
        "same expiry kept once"
    );
    assert_eq!(store.purge_expired(t0 + secs(7)), 1);
    assert!(store.is_empty());
}

#[test]
fn the_broker_s_own_sys_messages_take_no_room() {
    let limits = RetainedLimits {
        max_messages: Some(1),
        max_payload_size: None,
    };
    let mut store = RetainedStore::new(limits);
    assert_eq!(store.set("$SYS/brokers", b"n1".to_vec(), None), Ok(None));
    assert_eq!(
        store.set("$SYS/brokers/n1/version", b"1".to_vec(), None),
        Ok(None)
    );
    assert_eq!(store.set("a", b"1".to_vec(), None), Ok(None));
    assert_eq!(
        store.set("b", b"1".to_vec(), None),
        Err(RetainError::StoreFull { max: 1 })
    );
    // A system topic is stored past the limit.
    assert_eq!(
        store.set("$SYS/brokers/n1/sysdescr", b"G".to_vec(), None),
        Ok(None)
    );
    assert_eq!(store.len(), 4);
    store.remove("$SYS/brokers");
    store.remove("a");
    assert_eq!(store.set("b", b"1".to_vec(), None), Ok(None));
}

#[test]
fn limits_refuse_with_typed_errors() {
    let t0 = Instant::now();
    let limits = RetainedLimits {
        max_messages: Some(2),
        max_payload_size: Some(4),
    };
    let mut store = RetainedStore::new(limits);
    assert_eq!(
        store.set("big", b"12345".to_vec(), None),
        Err(RetainError::PayloadTooLarge { size: 5, max: 4 })
    );
    assert_eq!(store.set("a", b"1234".to_vec(), None), Ok(None));
    assert_eq!(store.set("b", b"1".to_vec(), Some(t0 + secs(1))), Ok(None));
    assert_eq!(
        store.set("c", b"1".to_vec(), None),
        Err(RetainError::StoreFull { max: 2 })
    );
    assert_eq!(store.get("c", t0), None, "a refused message is not stored");
    assert_eq!(
        store.set("a", b"9".to_vec(), None),
        Ok(Some(b"1234".to_vec())),
        "replacing needs no room"
    );
    // An expired message keeps its place until it is purged.
    assert_eq!(
        store.set("c", b"1".to_vec(), None),
        Err(RetainError::StoreFull { max: 2 })
    );
    assert_eq!(store.purge_expired(t0 + secs(1)), 1);
    assert_eq!(store.set("c", b"1".to_vec(), None), Ok(None));
    assert_eq!((store.len(), store.total_bytes()), (2, 2));
    assert_eq!(store.get("b", t0), None);
    assert_eq!(store.limits(), limits);
    store.set_limits(UNLIMITED);
    assert_eq!(store.set("d", vec![0; 100], None), Ok(None));
}

#[test]
fn works_with_shared_payloads() {
    let t0 = Instant::now();
    let mut store: RetainedStore<Arc<bytes::Bytes>> = RetainedStore::new(UNLIMITED);
    let payload = Arc::new(bytes::Bytes::from_static(b"hello"));
    store.set("x", Arc::clone(&payload), None).ok();
    assert_eq!(store.total_bytes(), 5);
    assert!(store.get("x", t0).is_some_and(|m| Arc::ptr_eq(m, &payload)));
}

#[test]
fn put_ignores_the_limits_that_set_applies() {
    let mut store = RetainedStore::new(RetainedLimits {
        max_messages: Some(1),
        max_payload_size: Some(3),
    });
    assert_eq!(store.set("a", "m:a".to_owned(), None), Ok(None));
    assert!(store.set("b", "m:b".to_owned(), None).is_err());
    assert_eq!(store.put("b", "too long".to_owned(), None), None);
    assert_eq!(
        store.put("b", "m:b".to_owned(), None),
        Some("too long".to_owned())
    );
    assert_eq!((store.len(), store.total_bytes()), (2, 6));
}

#[test]
fn take_expired_names_what_it_removed_and_topics_lists_everything() {
    let now = Instant::now();
    let mut store = store_with(&["$SYS/x", "a/b", "c"]);
    store
        .set("a/b", "m:a/b".to_owned(), Some(now + secs(2)))
        .unwrap();
    store
        .set("c", "m:c".to_owned(), Some(now + secs(1)))
        .unwrap();
    let mut topics: Vec<String> = store.topics().iter().map(|t| t.to_string()).collect();
    topics.sort();
    assert_eq!(topics, ["$SYS/x", "a/b", "c"]);
    let expired: Vec<String> = store
        .take_expired(now + secs(5))
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(expired, ["c", "a/b"], "in expiry order");
    assert_eq!(store.len(), 1);
    assert!(store.take_expired(now + secs(9)).is_empty());
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just(""), Just("$s")].prop_map(str::to_owned)
}

fn name() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..4)
        .prop_map(|l| l.join("/"))
        .prop_filter("a topic is never empty", |n| !n.is_empty())
}

fn filter() -> impl Strategy<Value = String> {
    let filter_level = prop_oneof![3 => level(), 1 => Just("+".to_owned())];
    (prop::collection::vec(filter_level, 0..4), any::<bool>())
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
    fn lookup_agrees_with_a_naive_scan(
        entries in prop::collection::vec((name(), prop::option::of(0u64..4)), 0..20),
        removed in prop::collection::vec(name(), 0..4),
        filters in prop::collection::vec(filter(), 1..8),
        at in 0u64..5,
    ) {
        let t0 = Instant::now();
        let mut store = RetainedStore::new(UNLIMITED);
        let mut model: BTreeMap<String, Option<Instant>> = BTreeMap::new();
        for (topic, ttl) in &entries {
            let expires = ttl.map(|s| t0 + secs(s));
            store.set(topic, format!("m:{topic}"), expires).ok();
            model.insert(topic.clone(), expires);
        }
        for topic in &removed {
            prop_assert_eq!(store.remove(topic).is_some(), model.remove(topic).is_some());
        }
        prop_assert_eq!(store.len(), model.len());
        let bytes: usize = model.keys().map(|t| t.len() + 2).sum();
        prop_assert_eq!(store.total_bytes(), bytes);

        let now = t0 + secs(at);
        let live = |e: &Option<Instant>| e.is_none_or(|x| x > now);
        for f in &filters {
            let expected: Vec<String> = model
                .iter()
                .filter(|(t, e)| live(e) && matches(f, t))
                .map(|(t, _)| t.clone())
                .collect();
            prop_assert_eq!(found(&store, f, now), expected, "filter {:?}", f);
        }
        let expired = model.values().filter(|e| !live(e)).count();
        prop_assert_eq!(store.purge_expired(now), expired);
        prop_assert_eq!(store.len(), model.len() - expired);
    }
}
