//! CONNECT and CONNACK: clean session / clean start, client identifiers,
//! keep alive, CONNACK flags and properties, connect timeout, and a second
//! CONNECT (MQTT 3.1.1 §3.1-3.2, MQTT 5.0 §3.1-3.2).

use std::time::Duration;

use anyhow::{ensure, Result};
use girder_tests::mqtt::{
    find, kind, prop, unique, Broker, Connect, Prop, Publish, RawClient, V4Client, V5Client,
    Version, PINGREQ, QUIET,
};
use tokio::time::Instant;

#[tokio::test]
async fn v311_rumqttc_connects_and_round_trips() -> Result<()> {
    let b = Broker::start()?;
    let topic = unique("t/connect/v311");
    let opts = rumqttc::MqttOptions::new(unique("c"), b.host(), b.port());
    let (mut c, ack) = V4Client::connect(opts).await?;
    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
    assert!(
        !ack.session_present,
        "clean session must not find a session"
    );
    c.client
        .subscribe(&topic, rumqttc::QoS::AtLeastOnce)
        .await?;
    c.next_suback().await?;
    c.client
        .publish(&topic, rumqttc::QoS::AtLeastOnce, false, "hello")
        .await?;
    let p = c.next_publish().await?;
    assert_eq!(p.topic, topic);
    assert_eq!(&p.payload[..], b"hello");
    Ok(())
}

#[tokio::test]
async fn v5_rumqttc_connects_and_round_trips() -> Result<()> {
    let b = Broker::start()?;
    let topic = unique("t/connect/v5");
    let opts = rumqttc::v5::MqttOptions::new(unique("c"), b.host(), b.port());
    let (mut c, ack) = V5Client::connect(opts).await?;
    assert_eq!(
        ack.code,
        rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success
    );
    assert!(!ack.session_present);
    c.client
        .subscribe(&topic, rumqttc::v5::mqttbytes::QoS::ExactlyOnce)
        .await?;
    c.next_suback().await?;
    c.client
        .publish(
            &topic,
            rumqttc::v5::mqttbytes::QoS::ExactlyOnce,
            false,
            "hi",
        )
        .await?;
    let p = c.next_publish().await?;
    assert_eq!(&p.topic[..], topic.as_bytes());
    assert_eq!(&p.payload[..], b"hi");
    Ok(())
}

#[tokio::test]
async fn v311_empty_client_id_with_clean_session_is_accepted() -> Result<()> {
    let b = Broker::start()?;
    let (_c, ack) = RawClient::connect(b.addr, &Connect::v311("")).await?;
    assert_eq!(ack.code, 0x00);
    assert!(!ack.session_present);
    Ok(())
}

/// [MQTT-3.1.3-8]: an empty client id with CleanSession=0 is answered with
/// return code 0x02 (identifier rejected) and the connection closed.
#[tokio::test]
async fn v311_empty_client_id_without_clean_session_is_rejected() -> Result<()> {
    let b = Broker::start()?;
    let (mut c, ack) = RawClient::connect(b.addr, &Connect::v311("").clean(false)).await?;
    assert_eq!(ack.code, 0x02, "identifier rejected");
    c.closed_within(Duration::from_secs(3)).await?;
    Ok(())
}

/// [MQTT-3.2.2-16]: a v5 CONNECT with an empty client id gets an Assigned
/// Client Identifier in the CONNACK.
#[tokio::test]
async fn v5_empty_client_id_gets_an_assigned_identifier() -> Result<()> {
    let b = Broker::start()?;
    let (_c, ack) = RawClient::connect(b.addr, &Connect::v5("")).await?;
    assert_eq!(ack.code, 0x00);
    match find(&ack.props, prop::ASSIGNED_CLIENT_ID) {
        Some(Prop::Str(id)) => assert!(!id.is_empty(), "assigned id is empty"),
        other => panic!("no assigned client id: {other:?} in {:?}", ack.props),
    }
    Ok(())
}

/// Two clients with empty ids get two different assigned ids.
#[tokio::test]
async fn v5_assigned_identifiers_are_distinct() -> Result<()> {
    let b = Broker::start()?;
    let (_a, a) = RawClient::connect(b.addr, &Connect::v5("")).await?;
    let (_b, bb) = RawClient::connect(b.addr, &Connect::v5("")).await?;
    assert_ne!(
        find(&a.props, prop::ASSIGNED_CLIENT_ID),
        find(&bb.props, prop::ASSIGNED_CLIENT_ID)
    );
    Ok(())
}

/// [MQTT-3.1.0-2]: a second CONNECT is a protocol error; the connection is
/// closed (v5: after DISCONNECT 0x82 if the server sends one).
#[tokio::test]
async fn second_connect_is_a_protocol_error() -> Result<()> {
    let b = Broker::start()?;
    for connect in [Connect::v311(&unique("c")), Connect::v5(&unique("c"))] {
        let mut c = RawClient::connected(b.addr, &connect).await?;
        c.send(&connect.encode()).await?;
        let closed = c.closed_within(Duration::from_secs(3)).await?;
        if let Some(reason) = closed.disconnect_reason() {
            assert_eq!(reason, 0x82, "protocol error");
        }
        assert!(
            closed.frames.iter().all(|f| f.kind() != kind::CONNACK),
            "a second CONNACK was sent"
        );
    }
    Ok(())
}

/// [MQTT-3.1.2-24]: without any packet for 1.5 times the keep alive the
/// server closes the connection; not before the keep alive itself.
/// Mosquitto 2.0 checks keep alives only every few seconds, so the upper
/// bound is loose against an external broker.
#[tokio::test]
async fn silent_client_is_disconnected_after_one_and_a_half_keep_alive() -> Result<()> {
    let b = Broker::start()?;
    let upper = if b.is_external() {
        Duration::from_secs(7)
    } else {
        Duration::from_millis(2600)
    };
    for version in [Version::V311, Version::V5] {
        let connect = Connect {
            version,
            ..Connect::v311(&unique("ka"))
        }
        .keep_alive(1);
        let mut c = RawClient::connected(b.addr, &connect).await?;
        let start = Instant::now();
        c.closed_within(upper + Duration::from_secs(1)).await?;
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1000),
            "closed too early: {elapsed:?}"
        );
        assert!(elapsed <= upper, "closed too late: {elapsed:?}");
    }
    Ok(())
}

/// PINGREQ keeps a connection alive past its keep alive and gets PINGRESP.
#[tokio::test]
async fn pings_keep_the_connection_alive() -> Result<()> {
    let b = Broker::start()?;
    let mut c = RawClient::connected(b.addr, &Connect::v311(&unique("ping")).keep_alive(1)).await?;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.send(&PINGREQ).await?;
        assert_eq!(c.recv().await?.kind(), kind::PINGRESP);
    }
    Ok(())
}

/// A v5 client asking for response information and sending user properties
/// is accepted; response information, when given, is a string.
#[tokio::test]
async fn v5_request_response_information_and_user_properties_are_accepted() -> Result<()> {
    let b = Broker::start()?;
    let connect = Connect::v5(&unique("rri"))
        .prop(prop::REQUEST_RESPONSE_INFO, Prop::Byte(1))
        .prop(prop::USER_PROPERTY, Prop::Pair("k".into(), "v".into()))
        .prop(prop::USER_PROPERTY, Prop::Pair("k".into(), "v2".into()));
    let (_c, ack) = RawClient::connect(b.addr, &connect).await?;
    assert_eq!(ack.code, 0);
    if let Some(p) = find(&ack.props, prop::RESPONSE_INFO) {
        assert!(matches!(p, Prop::Str(_)), "response information {p:?}");
    }
    Ok(())
}

/// [MQTT-3.1.2-?] Receive Maximum 0 in CONNECT is a protocol error: CONNACK
/// 0x82 (or just a close).
#[tokio::test]
async fn v5_receive_maximum_zero_is_refused() -> Result<()> {
    let b = Broker::start()?;
    let connect = Connect::v5(&unique("rm0")).prop(prop::RECEIVE_MAXIMUM, Prop::U16(0));
    let mut c = RawClient::open(b.addr, Version::V5).await?;
    c.send(&connect.encode()).await?;
    let closed = c.closed_within(Duration::from_secs(3)).await?;
    for f in &closed.frames {
        if f.kind() == kind::CONNACK {
            assert_eq!(f.connack(Version::V5)?.code, 0x82);
        }
    }
    Ok(())
}

/// An unknown protocol level is refused: CONNACK 0x01 (3.1.1 format) or
/// 0x84 (v5), or a close.
#[tokio::test]
async fn unsupported_protocol_level_is_refused() -> Result<()> {
    let b = Broker::start()?;
    let mut bytes = Connect::v311(&unique("lvl")).encode();
    bytes[8] = 9; // protocol level after 0x10, len, 0x00 0x04 "MQTT"
    let mut c = RawClient::open(b.addr, Version::V311).await?;
    c.send(&bytes).await?;
    let closed = c.closed_within(Duration::from_secs(3)).await?;
    for f in &closed.frames {
        if f.kind() == kind::CONNACK {
            let code = f.body.get(1).copied().unwrap_or(0);
            assert!(code == 0x01 || code == 0x84, "CONNACK code 0x{code:02x}");
        }
    }
    Ok(())
}

/// The CONNACK advertises the configured limits (EMQX's capability
/// properties) and the server keep alive overrides the client's.
#[tokio::test]
async fn v5_connack_carries_configured_capabilities() -> Result<()> {
    let Some(b) = Broker::with_config(
        "mqtt.max_packet_size = 4KB\nmqtt.max_topic_alias = 7\nmqtt.server_keepalive = 30\n",
    )?
    else {
        return Ok(());
    };
    let (_c, ack) =
        RawClient::connect(b.addr, &Connect::v5(&unique("caps")).keep_alive(60)).await?;
    assert_eq!(ack.code, 0);
    assert_eq!(
        find(&ack.props, prop::MAXIMUM_PACKET_SIZE),
        Some(&Prop::U32(4096))
    );
    assert_eq!(
        find(&ack.props, prop::TOPIC_ALIAS_MAXIMUM),
        Some(&Prop::U16(7))
    );
    assert_eq!(
        find(&ack.props, prop::SERVER_KEEP_ALIVE),
        Some(&Prop::U16(30))
    );
    Ok(())
}

/// With server keep alive 1 s, a client that asked for 60 s is dropped
/// after about 1.5 s of silence.
#[tokio::test]
async fn server_keep_alive_is_enforced() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.server_keepalive = 1\n")? else {
        return Ok(());
    };
    let mut c = RawClient::connected(b.addr, &Connect::v5(&unique("ska")).keep_alive(60)).await?;
    let start = Instant::now();
    c.closed_within(Duration::from_secs(4)).await?;
    ensure!(start.elapsed() >= Duration::from_millis(1000));
    Ok(())
}

/// A socket that sends no CONNECT within mqtt.idle_timeout is closed, and
/// other clients are unaffected.
#[tokio::test]
async fn no_connect_in_time_closes_the_socket() -> Result<()> {
    let Some(b) = Broker::with_config("mqtt.idle_timeout = 1s\n")? else {
        return Ok(());
    };
    let mut idle = RawClient::open(b.addr, Version::V311).await?;
    let mut ok = RawClient::connected(b.addr, &Connect::v311(&unique("ok"))).await?;
    let start = Instant::now();
    let closed = idle.closed_within(Duration::from_secs(4)).await?;
    assert!(closed.frames.is_empty(), "sent {:?}", closed.frames);
    assert!(start.elapsed() >= Duration::from_millis(800));
    let topic = unique("t/idle");
    ok.subscribe(1, &[(&topic, 0)]).await?;
    ok.publish(&Publish::new(&topic, b"x")).await?;
    assert_eq!(ok.recv_publish().await?.payload, b"x");
    ok.expect_silence(QUIET).await
}
