//! The router without actors: subscribers are plain ids.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;
use crate::codec::{Publish, QoS};
use crate::retained::RetainedLimits;

/// A subscriber that is only its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Sub(u64);

impl Subscriber for Sub {
    fn id(&self) -> u64 {
        self.0
    }
}

fn router() -> Router<Sub> {
    Router::new(RoutingConfig::default())
}

fn router_with(config: RoutingConfig) -> Router<Sub> {
    Router::new(config)
}

fn opts(qos: QoS) -> SubOpts {
    SubOpts::with_qos(qos)
}

/// A message published by `from` on `topic` with `payload`, retained if
/// `retain`.
fn message_from(topic: &str, from: &str, payload: &'static [u8], retain: bool) -> Arc<Message> {
    let publish = Publish {
        topic: ByteStr::from(topic.to_owned()),
        qos: QoS::AtLeastOnce,
        packet_id: Some(1),
        retain,
        payload: Bytes::from_static(payload),
        ..Publish::default()
    };
    Arc::new(Message::from_publish(
        publish,
        ByteStr::from(from.to_owned()),
        Instant::now(),
    ))
}

fn message(topic: &str) -> Arc<Message> {
    message_from(topic, "publisher", b"hi", false)
}

/// Routes `message`; returns the outcome and the ids that got it, sorted,
/// with how many deliveries each got.
fn route(router: &Router<Sub>, message: &Arc<Message>) -> (RouteOutcome, Vec<(u64, usize)>) {
    let mut batch = DeliveryBatch::default();
    let outcome = router.route(message, &mut batch);
    let mut got: Vec<(u64, usize)> = batch.drain().map(|(s, d)| (s.0, d.len())).collect();
    got.sort_unstable();
    (outcome, got)
}

#[test]
fn exact_and_wildcard_filters_match() {
    let r = router();
    r.subscribe("a/b", &Sub(1), opts(QoS::AtMostOnce));
    r.subscribe("a/+", &Sub(2), opts(QoS::AtMostOnce));
    r.subscribe("#", &Sub(3), opts(QoS::AtMostOnce));
    r.subscribe("b/#", &Sub(4), opts(QoS::AtMostOnce));
    let (outcome, got) = route(&r, &message("a/b"));
    assert_eq!(outcome.local, 3);
    assert_eq!(outcome.remote, 0);
    assert_eq!(got, [(1, 1), (2, 1), (3, 1)]);
    let (outcome, got) = route(&r, &message("c"));
    assert_eq!(outcome.local, 1);
    assert_eq!(got, [(3, 1)]);
}

#[test]
fn wildcards_do_not_match_dollar_topics() {
    let r = router();
    r.subscribe("#", &Sub(1), opts(QoS::AtMostOnce));
    r.subscribe("+/uptime", &Sub(2), opts(QoS::AtMostOnce));
    r.subscribe("$SYS/#", &Sub(3), opts(QoS::AtMostOnce));
    let (outcome, got) = route(&r, &message("$SYS/uptime"));
    assert_eq!(outcome.local, 1);
    assert_eq!(got, [(3, 1)]);
}

#[test]
fn a_subscriber_matching_twice_gets_two_deliveries_in_one_entry() {
    let r = router();
    r.subscribe("a/b", &Sub(1), opts(QoS::AtMostOnce));
    r.subscribe("a/#", &Sub(1), opts(QoS::AtLeastOnce));
    let mut batch = DeliveryBatch::default();
    let outcome = r.route(&message("a/b"), &mut batch);
    assert_eq!(outcome.local, 2);
    assert_eq!(batch.subscribers(), 1);
    let mut qos: Vec<QoS> = batch
        .deliveries_for(1)
        .iter()
        .map(|d| d.opts.options.qos)
        .collect();
    qos.sort_by_key(|q| *q as u8);
    assert_eq!(qos, [QoS::AtMostOnce, QoS::AtLeastOnce]);
}

#[test]
fn resubscribing_replaces_the_options() {
    let r = router();
    r.subscribe("t", &Sub(1), opts(QoS::AtMostOnce));
    assert_eq!(r.subscribe("t", &Sub(1), opts(QoS::ExactlyOnce)), None);
    let mut batch = DeliveryBatch::default();
    r.route(&message("t"), &mut batch);
    assert_eq!(batch.deliveries_for(1).len(), 1);
    assert_eq!(
        batch.deliveries_for(1)[0].opts.options.qos,
        QoS::ExactlyOnce
    );
    assert_eq!(r.subscription_count(), 1);
}

#[test]
fn batches_accumulate_over_several_messages() {
    let r = router();
    r.subscribe("t/#", &Sub(1), opts(QoS::AtMostOnce));
    let mut batch = DeliveryBatch::default();
    for _ in 0..3 {
        r.route(&message("t/x"), &mut batch);
    }
    assert_eq!(batch.deliveries_for(1).len(), 3);
    assert_eq!(batch.drain().count(), 1);
    assert!(batch.is_empty());
}

#[test]
fn filters_become_used_and_unused_once_per_node() {
    let r = router();
    let used = Some(RouteChange::Used("a/+".into()));
    let unused = Some(RouteChange::Unused("a/+".into()));
    assert_eq!(r.subscribe("a/+", &Sub(1), opts(QoS::AtMostOnce)), used);
    assert_eq!(r.subscribe("a/+", &Sub(2), opts(QoS::AtMostOnce)), None);
    assert!(r.is_used("a/+"));
    assert_eq!(r.unsubscribe("a/+", &Sub(1)), None);
    assert_eq!(r.unsubscribe("a/+", &Sub(1)), None);
    assert_eq!(r.unsubscribe("a/+", &Sub(2)), unused);
    assert!(!r.is_used("a/+"));
    let (outcome, got) = route(&r, &message("a/b"));
    assert_eq!(outcome.local, 0);
    assert!(got.is_empty());
}

#[test]
fn a_shared_group_is_one_route_and_one_delivery() {
    let r = router();
    let used = Some(RouteChange::Used("$share/g/s/#".into()));
    assert_eq!(
        r.subscribe("$share/g/s/#", &Sub(1), opts(QoS::AtMostOnce)),
        used
    );
    assert_eq!(
        r.subscribe("$share/g/s/#", &Sub(2), opts(QoS::AtMostOnce)),
        None
    );
    // Another group on the same filter is a route of its own.
    assert_eq!(
        r.subscribe("$share/h/s/#", &Sub(3), opts(QoS::AtMostOnce)),
        Some(RouteChange::Used("$share/h/s/#".into()))
    );
    // A group does not make its filter a plain route.
    assert!(!r.is_used("s/#"));
    assert!(r.is_used("$share/g/s/#"));
    assert_eq!(r.subscription_count(), 2);
    let (outcome, got) = route(&r, &message("s/1"));
    // One member of g and the one member of h.
    assert_eq!(outcome.local, 2);
    assert_eq!(got.len(), 2);
    assert!(got.contains(&(3, 1)));
    assert!(got.iter().any(|&(id, _)| id == 1 || id == 2));
    assert_eq!(
        r.unsubscribe("$share/h/s/#", &Sub(3)),
        Some(RouteChange::Unused("$share/h/s/#".into()))
    );
    assert_eq!(r.unsubscribe("$share/g/s/#", &Sub(1)), None);
    assert_eq!(
        r.unsubscribe("$share/g/s/#", &Sub(2)),
        Some(RouteChange::Unused("$share/g/s/#".into()))
    );
    assert!(!r.is_used("$share/g/s/#"));
}

#[test]
fn plain_routes_and_groups_on_one_filter_are_separate_keys() {
    let r = router();
    r.subscribe("$share/g/a/#", &Sub(1), opts(QoS::AtMostOnce));
    assert_eq!(
        r.subscribe("a/#", &Sub(2), opts(QoS::AtMostOnce)),
        Some(RouteChange::Used("a/#".into()))
    );
    let shard = r.shard_of("a/#");
    assert_eq!(r.shard_of("$share/g/a/#"), shard);
    assert_eq!(
        r.used_keys(shard),
        ["$share/g/a/#".into(), "a/#".into()] as [Box<str>; 2]
    );
    assert_eq!(
        r.unsubscribe("a/#", &Sub(2)),
        Some(RouteChange::Unused("a/#".into()))
    );
    assert_eq!(r.used_keys(shard), ["$share/g/a/#".into()] as [Box<str>; 1]);
}

/// What one node is sent for a message: its name, whether plain
/// subscriptions get it, the groups (`group|filter`) it serves.
type NodeGets = (String, bool, Vec<String>);

/// Routes `message`; returns the local ids that got it and what each node
/// gets.
fn route_remote(
    router: &Router<Sub>,
    message: &Arc<Message>,
) -> (RouteOutcome, Vec<u64>, Vec<NodeGets>) {
    let mut batch = DeliveryBatch::default();
    let outcome = router.route(message, &mut batch);
    let mut remote: Vec<NodeGets> = batch
        .drain_remote()
        .flat_map(|(node, list)| {
            list.into_iter().map(move |d| {
                let groups = d.groups.iter().map(|(g, f)| format!("{g}|{f}")).collect();
                (node.to_string(), d.plain, groups)
            })
        })
        .collect();
    remote.sort();
    let mut local: Vec<u64> = batch.drain().map(|(s, _)| s.0).collect();
    local.sort_unstable();
    (outcome, local, remote)
}

#[test]
fn a_message_goes_once_to_each_node_with_a_matching_route() {
    let r = router();
    r.subscribe("a/b", &Sub(1), opts(QoS::AtMostOnce));
    r.add_remote_route("a/+", "n2");
    r.add_remote_route("a/#", "n2");
    r.add_remote_route("a/b", "n3");
    r.add_remote_route("x/#", "n4");
    let (outcome, local, remote) = route_remote(&r, &message("a/b"));
    assert_eq!(
        outcome,
        RouteOutcome {
            local: 1,
            remote: 2
        }
    );
    assert_eq!(local, [1]);
    assert_eq!(
        remote,
        [("n2".into(), true, vec![]), ("n3".into(), true, vec![])]
    );
    // A node that is down gets nothing; back up, it does again.
    r.set_node_down("n3", true);
    let (outcome, _, remote) = route_remote(&r, &message("a/b"));
    assert_eq!(outcome.remote, 1);
    assert_eq!(remote, [("n2".into(), true, vec![])]);
    r.set_node_down("n3", false);
    assert_eq!(route_remote(&r, &message("a/b")).0.remote, 2);
    assert!(r.remove_remote_route("a/+", "n2"));
    assert!(r.remove_remote_route("a/#", "n2"));
    assert!(r.remove_remote_route("a/b", "n3"));
    let (outcome, _, remote) = route_remote(&r, &message("a/b"));
    assert_eq!(outcome.remote, 0);
    assert!(remote.is_empty());
}

#[test]
fn a_shared_group_across_nodes_is_served_once_per_message() {
    let r = router();
    r.subscribe("$share/g/s/#", &Sub(1), opts(QoS::AtMostOnce));
    r.add_remote_route("$share/g/s/#", "n2");
    r.add_remote_route("$share/g/s/+", "n3");
    let mut here = 0;
    let mut n2 = 0;
    for _ in 0..40 {
        let (outcome, local, remote) = route_remote(&r, &message("s/1"));
        // g on s/# is served here or by n2; g on s/+ only by n3.
        assert_eq!(outcome.local + outcome.remote, 2, "{local:?} {remote:?}");
        assert!(remote.contains(&("n3".into(), false, vec!["g|s/+".into()])));
        if local == [1] {
            here += 1;
        } else {
            assert!(remote.contains(&("n2".into(), false, vec!["g|s/#".into()])));
            n2 += 1;
        }
    }
    // Round robin over the group's nodes.
    assert_eq!((here, n2), (20, 20));
}

#[test]
fn the_local_strategy_serves_a_group_here_when_it_has_a_member() {
    let r = router_with(RoutingConfig {
        shared_local_first: true,
        ..RoutingConfig::default()
    });
    r.add_remote_route("$share/g/t", "n2");
    r.add_remote_route("$share/g/t", "n3");
    // No member here: one of the other nodes, never both.
    for _ in 0..10 {
        let (outcome, local, remote) = route_remote(&r, &message("t"));
        assert_eq!((outcome.local, outcome.remote), (0, 1));
        assert!(local.is_empty());
        assert_eq!(remote.len(), 1);
    }
    r.subscribe("$share/g/t", &Sub(7), opts(QoS::AtMostOnce));
    for _ in 0..10 {
        let (outcome, local, remote) = route_remote(&r, &message("t"));
        assert_eq!(
            outcome,
            RouteOutcome {
                local: 1,
                remote: 0
            }
        );
        assert_eq!(local, [7]);
        assert!(remote.is_empty());
    }
}

#[test]
fn a_forwarded_message_is_routed_here_only() {
    let r = router();
    r.subscribe("f/#", &Sub(1), opts(QoS::AtMostOnce));
    r.subscribe("$share/g/f/#", &Sub(2), opts(QoS::AtMostOnce));
    r.subscribe("$share/h/f/#", &Sub(3), opts(QoS::AtMostOnce));
    r.add_remote_route("f/#", "n2");
    let m = message("f/1");
    let mut batch = DeliveryBatch::default();
    // Plain and the group it was picked for; not group h, not node n2.
    assert_eq!(r.route_forwarded(&m, true, &[("g", "f/#")], &mut batch), 2);
    assert!(!batch.has_remote());
    let mut got: Vec<u64> = batch.drain().map(|(s, _)| s.0).collect();
    got.sort_unstable();
    assert_eq!(got, [1, 2]);
    // Sent for a group only: plain subscriptions do not get it.
    assert_eq!(r.route_forwarded(&m, false, &[("h", "f/#")], &mut batch), 1);
    assert_eq!(batch.drain().map(|(s, _)| s.0).collect::<Vec<_>>(), [3]);
    // A group that left meanwhile: nobody.
    assert_eq!(
        r.route_forwarded(&m, false, &[("gone", "f/#")], &mut batch),
        0
    );
}

#[test]
fn round_robin_picks_each_member_in_turn() {
    let r = router();
    for id in 1..=3 {
        r.subscribe("$share/g/t", &Sub(id), opts(QoS::AtMostOnce));
    }
    let mut batch = DeliveryBatch::default();
    for _ in 0..6 {
        assert_eq!(r.route(&message("t"), &mut batch).local, 1);
    }
    for id in 1..=3 {
        assert_eq!(batch.deliveries_for(id).len(), 2, "member {id}");
    }
}

#[test]
fn hash_clientid_picks_the_same_member_for_one_publisher() {
    let r = router_with(RoutingConfig {
        shared_strategy: Strategy::HashClientId,
        ..RoutingConfig::default()
    });
    for id in 1..=4 {
        r.subscribe("$share/g/t", &Sub(id), opts(QoS::AtMostOnce));
    }
    let mut batch = DeliveryBatch::default();
    for _ in 0..8 {
        r.route(&message_from("t", "one", b"x", false), &mut batch);
    }
    assert_eq!(batch.subscribers(), 1);
}

#[test]
fn a_member_that_leaves_gets_nothing_more() {
    let r = router();
    r.subscribe("$share/g/t", &Sub(1), opts(QoS::AtMostOnce));
    r.subscribe("$share/g/t", &Sub(2), opts(QoS::AtMostOnce));
    r.unsubscribe("$share/g/t", &Sub(1));
    let mut batch = DeliveryBatch::default();
    for _ in 0..4 {
        r.route(&message("t"), &mut batch);
    }
    assert_eq!(batch.deliveries_for(2).len(), 4);
    assert!(batch.deliveries_for(1).is_empty());
}

#[test]
fn redispatch_skips_the_member_that_went_away() {
    let r = router();
    r.subscribe("$share/g/t/#", &Sub(1), opts(QoS::AtLeastOnce));
    r.subscribe("$share/g/t/#", &Sub(2), opts(QoS::AtLeastOnce));
    let groups = [ByteStr::from("$share/g/t/#")];
    let mut batch = DeliveryBatch::default();
    let undelivered = r.redispatch(
        &Sub(1),
        &groups,
        vec![message("t/1"), message("t/2"), message("other")],
        &mut batch,
    );
    // "other" matches no group filter.
    assert_eq!(undelivered, 1);
    assert_eq!(batch.deliveries_for(2).len(), 2);
    assert!(batch.deliveries_for(1).is_empty());
}

#[test]
fn exclusive_filters_route_as_their_plain_filter_when_enabled() {
    let on = router_with(RoutingConfig {
        exclusive_subscription: true,
        ..RoutingConfig::default()
    });
    assert_eq!(
        on.subscribe("$exclusive/x/#", &Sub(1), opts(QoS::AtMostOnce)),
        Some(RouteChange::Used("x/#".into()))
    );
    assert_eq!(route(&on, &message("x/1")).0.local, 1);
    let off = router();
    off.subscribe("$exclusive/x/#", &Sub(1), opts(QoS::AtMostOnce));
    assert_eq!(route(&off, &message("x/1")).0.local, 0);
}

#[test]
fn invalid_filters_change_nothing() {
    let r = router();
    assert_eq!(r.subscribe("a/#/b", &Sub(1), opts(QoS::AtMostOnce)), None);
    assert_eq!(
        r.subscribe("$share/g", &Sub(1), opts(QoS::AtMostOnce)),
        None
    );
    assert_eq!(r.subscription_count(), 0);
}

/// Whether the message's frame cache was turned on (its `Debug` says).
fn frames_shared(message: &Message) -> bool {
    format!("{:?}", message.frames).contains("enabled: true")
}

#[test]
fn several_subscribers_share_one_encoded_frame() {
    let r = router();
    r.subscribe("t", &Sub(1), opts(QoS::AtMostOnce));
    let single = message("t");
    route(&r, &single);
    assert!(!frames_shared(&single));
    r.subscribe("t", &Sub(2), opts(QoS::AtMostOnce));
    let many = message("t");
    route(&r, &many);
    assert!(frames_shared(&many));
}

#[test]
fn retained_messages_are_stored_matched_and_cleared() {
    let r = router();
    let now = Instant::now();
    assert_eq!(
        r.retain(&message_from("r/1", "p", b"one", true), now),
        RetainOutcome::Stored
    );
    r.retain(&message_from("r/2", "p", b"two", true), now);
    r.retain(&message_from("$SYS/x", "p", b"sys", true), now);
    assert_eq!(r.retained_count(), 3);
    let mut found: Vec<Bytes> = r
        .retained_matching("r/+", now)
        .iter()
        .map(|m| m.payload.clone())
        .collect();
    found.sort();
    assert_eq!(
        found,
        [Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );
    // A shared subscription gets the retained messages of its filter.
    assert_eq!(r.retained_matching("$share/g/r/1", now).len(), 1);
    // Wildcards at the first level do not match `$` topics.
    assert_eq!(r.retained_matching("#", now).len(), 2);
    // Replacing keeps one message per topic.
    r.retain(&message_from("r/1", "p", b"uno", true), now);
    assert_eq!(r.retained_matching("r/1", now)[0].payload, &b"uno"[..]);
    assert_eq!(
        r.retain(&message_from("r/1", "p", b"", true), now),
        RetainOutcome::Cleared
    );
    assert!(r.retained_matching("r/1", now).is_empty());
    assert_eq!(r.retained_count(), 2);
}

#[test]
fn retained_store_limits_refuse_and_expired_messages_make_room() {
    let config = RoutingConfig {
        retained_limits: RetainedLimits {
            max_messages: Some(1),
            max_payload_size: Some(4),
        },
        retained_expiry: Some(Duration::from_secs(10)),
        ..RoutingConfig::default()
    };
    let r = router_with(config.clone());
    let now = Instant::now();
    assert!(matches!(
        r.retain(&message_from("big", "p", b"too large", true), now),
        RetainOutcome::Refused(RetainError::PayloadTooLarge { .. })
    ));
    assert_eq!(
        r.retain(&message_from("a", "p", b"a", true), now),
        RetainOutcome::Stored
    );
    assert!(matches!(
        r.retain(&message_from("b", "p", b"b", true), now),
        RetainOutcome::Refused(RetainError::StoreFull { max: 1 })
    ));
    // Past its retainer expiry, "a" is no longer sent, and without a
    // clearer the full store drops it to make room.
    let later = now + Duration::from_secs(11);
    assert!(r.retained_matching("a", later).is_empty());
    assert_eq!(
        r.retain(&message_from("b", "p", b"b", true), later),
        RetainOutcome::Stored
    );
    assert_eq!(r.retained_matching("#", later).len(), 1);

    // With a clearer, expired messages keep their place until purged.
    let cleared = router_with(RoutingConfig {
        retained_clearer: true,
        ..config
    });
    cleared.retain(&message_from("a", "p", b"a", true), now);
    assert!(matches!(
        cleared.retain(&message_from("b", "p", b"b", true), later),
        RetainOutcome::Refused(RetainError::StoreFull { .. })
    ));
    assert_eq!(cleared.purge_expired_retained(later), 1);
    assert_eq!(
        cleared.retain(&message_from("b", "p", b"b", true), later),
        RetainOutcome::Stored
    );
}

#[test]
fn each_used_key_is_listed_once_in_its_shard() {
    let r = router();
    r.subscribe("a/+", &Sub(1), opts(QoS::AtMostOnce));
    r.subscribe("a/+", &Sub(2), opts(QoS::AtMostOnce));
    r.subscribe("$share/g/a/b", &Sub(3), opts(QoS::AtMostOnce));
    r.subscribe("#", &Sub(4), opts(QoS::AtMostOnce));
    let mut all: Vec<Box<str>> = Vec::new();
    for shard in 0..r.shard_count() {
        for key in r.used_keys(shard) {
            assert_eq!(r.shard_of(&key), shard, "{key}");
            all.push(key);
        }
    }
    all.sort_unstable();
    assert_eq!(
        all,
        ["#".into(), "$share/g/a/b".into(), "a/+".into()] as [Box<str>; 3]
    );
    assert_eq!(r.shard_of("#"), r.shard_count() - 1);
    assert_eq!(r.shard_of("a/+"), r.shard_of("a/b"));
}
