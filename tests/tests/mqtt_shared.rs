//! Shared subscriptions: `$share/group/filter` balance, independent groups,
//! EMQX's `$queue/filter`, dispatch strategies and redelivery of an
//! unacknowledged message to another member (MQTT 5.0 §4.8.2; EMQX
//! `broker.shared_subscription_strategy`, here mqtt.shared_subscription_strategy).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use girder_tests::mqtt::{ack, unique, Broker, Connect, Publish, RawClient, Version, QUIET};

/// Counts, per member, the messages received until all are quiet.
async fn drain(members: &mut [RawClient]) -> Result<Vec<Vec<u8>>> {
    let mut got = vec![Vec::new(); members.len()];
    for (i, m) in members.iter_mut().enumerate() {
        while let Some(f) = m.recv_within(QUIET).await? {
            let p = f.publish(m.version)?;
            if p.qos > 0 {
                m.send(&ack(0x40, p.pid)).await?;
            }
            got[i].push(p.payload[0]);
        }
    }
    Ok(got)
}

async fn members(b: &Broker, filter: &str, n: usize) -> Result<Vec<RawClient>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("m"))).await?;
        c.subscribe(1, &[(filter, 1)]).await?;
        out.push(c);
    }
    Ok(out)
}

async fn publish_n(b: &Broker, topic: &str, n: u8) -> Result<()> {
    let mut p = RawClient::connected(b.addr, &Connect::v5(&unique("p"))).await?;
    for i in 0..n {
        p.publish(&Publish::new(topic, &[i]).qos(1, u16::from(i) + 1))
            .await?;
    }
    Ok(())
}

/// Each message goes to exactly one member of a group, and both members
/// get some; a plain subscriber and a second group get every message.
#[tokio::test]
async fn shared_group_balances_and_groups_are_independent() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/share");
    let mut g1 = members(&b, &format!("$share/g1/{t}"), 2).await?;
    let mut g2 = members(&b, &format!("$share/g2/{t}"), 1).await?;
    let mut plain = members(&b, &t, 1).await?;
    publish_n(&b, &t, 20).await?;
    let got = drain(&mut g1).await?;
    let mut all: Vec<u8> = got.concat();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..20).collect::<Vec<_>>(),
        "each message exactly once"
    );
    assert!(got.iter().all(|g| !g.is_empty()), "unbalanced: {got:?}");
    assert_eq!(drain(&mut g2).await?[0].len(), 20);
    assert_eq!(drain(&mut plain).await?[0].len(), 20);
    Ok(())
}

/// rumqttc v3.1.1 clients can be members of a shared group.
#[tokio::test]
async fn v311_clients_share_a_group() -> Result<()> {
    let b = Broker::start()?;
    let t = unique("t/share311");
    let mut ms = Vec::new();
    for _ in 0..2 {
        let mut c = RawClient::connected(b.addr, &Connect::v311(&unique("m"))).await?;
        c.subscribe(1, &[(&format!("$share/g/{t}"), 1)]).await?;
        ms.push(c);
    }
    publish_n(&b, &t, 10).await?;
    let got = drain(&mut ms).await?;
    assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 10);
    Ok(())
}

/// EMQX's `$queue/filter` is `$share/$queue/filter`. Mosquitto has no
/// `$queue`, so this runs against girder only.
#[tokio::test]
async fn queue_prefix_is_a_shared_group() -> Result<()> {
    let b = Broker::start()?;
    if b.is_external() {
        eprintln!("skipped: $queue/ is EMQX-specific (Mosquitto treats it as a plain topic)");
        return Ok(());
    }
    let t = unique("t/queue");
    let mut ms = members(&b, &format!("$queue/{t}"), 2).await?;
    publish_n(&b, &t, 10).await?;
    let got = drain(&mut ms).await?;
    assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 10);
    Ok(())
}

async fn strategy(name: &str) -> Result<Option<(Broker, Vec<Vec<u8>>)>> {
    let Some(b) = Broker::with_config(&format!("mqtt.shared_subscription_strategy = {name}\n"))?
    else {
        return Ok(None);
    };
    let t = unique("t/strat");
    let mut ms = members(&b, &format!("$share/g/{t}"), 3).await?;
    publish_n(&b, &t, 9).await?;
    let got = drain(&mut ms).await?;
    Ok(Some((b, got)))
}

#[tokio::test]
async fn round_robin_strategy_alternates() -> Result<()> {
    let Some((_b, got)) = strategy("round_robin").await? else {
        return Ok(());
    };
    assert!(got.iter().all(|g| g.len() == 3), "{got:?}");
    Ok(())
}

#[tokio::test]
async fn sticky_and_hash_strategies_pick_one_member_for_one_publisher() -> Result<()> {
    for name in ["sticky", "hash_clientid", "hash_topic"] {
        let Some((_b, got)) = strategy(name).await? else {
            return Ok(());
        };
        let mut lens: Vec<usize> = got.iter().map(Vec::len).collect();
        lens.sort_unstable();
        assert_eq!(lens, vec![0, 0, 9], "{name}: {got:?}");
    }
    Ok(())
}

#[tokio::test]
async fn random_strategy_delivers_each_message_once() -> Result<()> {
    let Some((_b, got)) = strategy("random").await? else {
        return Ok(());
    };
    let mut all = got.concat();
    all.sort_unstable();
    assert_eq!(all, (0..9).collect::<Vec<_>>());
    Ok(())
}

/// A QoS 1 message whose shared subscriber leaves without acknowledging
/// is redelivered to another member of the group (EMQX behaviour; girder
/// only: Mosquitto drops it with the subscriber's session).
#[tokio::test]
async fn unacked_message_is_redelivered_to_another_member() -> Result<()> {
    let b = Broker::start()?;
    if b.is_external() {
        eprintln!("skipped: Mosquitto does not redispatch shared messages");
        return Ok(());
    }
    let t = unique("t/redeliver");
    let filter = format!("$share/g/{t}");
    let mut ms = members(&b, &filter, 2).await?;
    publish_n(&b, &t, 1).await?;
    // Find who got it, drop it unacknowledged.
    let mut owner = None;
    for (i, m) in ms.iter_mut().enumerate() {
        if let Some(f) = m.recv_within(Duration::from_secs(2)).await? {
            assert_eq!(f.publish(Version::V5)?.payload, vec![0]);
            owner = Some(i);
            break;
        }
    }
    let owner = owner.expect("nobody got the message");
    let mut rest: HashMap<usize, RawClient> = ms.into_iter().enumerate().collect();
    drop(rest.remove(&owner));
    let mut other = rest.into_values().next().expect("two members");
    let m = other.recv_publish().await?;
    assert_eq!(m.payload, vec![0]);
    Ok(())
}

/// No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
#[tokio::test]
async fn no_local_on_a_shared_subscription_is_a_protocol_error() -> Result<()> {
    let b = Broker::start()?;
    if b.is_external() {
        eprintln!("skipped: Mosquitto 2.0.11 grants No Local on shared subscriptions");
        return Ok(());
    }
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("nl"))).await?;
    let filter = format!("$share/g/{}", unique("t/nl"));
    c.send(&girder_tests::mqtt::subscribe(
        Version::V5,
        1,
        &[(&filter, 0x04 | 1)],
        &Vec::new(),
    ))
    .await?;
    let closed = c.closed_within(Duration::from_secs(3)).await?;
    if let Some(r) = closed.disconnect_reason() {
        assert_eq!(r, 0x82);
    }
    Ok(())
}
