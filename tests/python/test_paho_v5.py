"""paho-mqtt, MQTT 5: assigned client id, properties pass-through, session
expiry, message expiry, no local, retain handling, takeover, will delay."""

import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from conftest import unique
from mqttutil import Client


def client(broker, prefix="c", client_id=None, **kw):
    return Client(broker, client_id if client_id is not None else unique(prefix), mqtt.MQTTv5, **kw)


def connect_props(**values):
    p = Properties(PacketTypes.CONNECT)
    for k, v in values.items():
        setattr(p, k, v)
    return p


def test_empty_client_id_is_assigned(broker):
    c = client(broker, client_id="")
    _, rc, props = c.connect()
    assert rc == 0
    assert getattr(props, "AssignedClientIdentifier", "")
    c.close()


def test_publish_properties_pass_through(broker):
    topic = unique("py5/props")
    c = client(broker)
    c.connect()
    c.subscribe(topic, 1)
    props = Properties(PacketTypes.PUBLISH)
    props.PayloadFormatIndicator = 1
    props.ContentType = "application/json"
    props.ResponseTopic = f"{topic}/reply"
    props.CorrelationData = b"\x00corr"
    props.UserProperty = [("a", "1"), ("b", "2")]
    c.publish(topic, b"{}", qos=1, properties=props)
    m = c.get()
    assert m.properties.ContentType == "application/json"
    assert m.properties.ResponseTopic == f"{topic}/reply"
    assert m.properties.CorrelationData == b"\x00corr"
    assert m.properties.PayloadFormatIndicator == 1
    assert m.properties.UserProperty == [("a", "1"), ("b", "2")]
    c.close()


def test_session_expiry_keeps_and_then_drops_the_session(broker):
    cid = unique("sx")
    props = connect_props(SessionExpiryInterval=1)
    c = client(broker, client_id=cid, clean=False, properties=props)
    c.connect()
    c.close()
    c = client(broker, client_id=cid, clean=False, properties=props)
    flags, _, _ = c.connect()
    assert flags.session_present
    c.close()
    time.sleep(2.5)
    c = client(broker, client_id=cid, clean=False, properties=props)
    flags, _, _ = c.connect()
    assert not flags.session_present
    c.close()


def test_message_expiry_drops_expired_messages(broker):
    cid, topic = unique("mx"), unique("py5/mx")
    props = connect_props(SessionExpiryInterval=60)
    s = client(broker, client_id=cid, clean=False, properties=props)
    s.connect()
    s.subscribe(topic, 1)
    s.close()
    p = client(broker, "p")
    p.connect()
    for payload, expiry in ((b"short", 1), (b"long", 30)):
        pp = Properties(PacketTypes.PUBLISH)
        pp.MessageExpiryInterval = expiry
        p.publish(topic, payload, qos=1, properties=pp)
    time.sleep(2.1)
    s = client(broker, client_id=cid, clean=False, properties=props)
    s.connect()
    got = s.drain()
    assert [m.payload for m in got] == [b"long"]
    assert got[0].properties.MessageExpiryInterval <= 28
    s.close()
    p.close()


def test_no_local(broker):
    topic = unique("py5/nl")
    c = client(broker)
    c.connect()
    c.subscribe(topic, options=SubscribeOptions(qos=1, noLocal=True))
    c.publish(topic, b"own")
    o = client(broker, "o")
    o.connect()
    o.publish(topic, b"other")
    assert [m.payload for m in c.drain()] == [b"other"]
    c.close()
    o.close()


def test_retain_handling_never(broker):
    topic = unique("py5/rh")
    p = client(broker, "p")
    p.connect()
    p.publish(topic, b"r", retain=True)
    s = client(broker, "s")
    s.connect()
    s.subscribe(topic, options=SubscribeOptions(qos=1, retainHandling=2))
    assert s.drain() == []
    s.subscribe(f"{topic}/#", options=SubscribeOptions(qos=1, retainHandling=0))
    assert [m.payload for m in s.drain()] == [b"r"]
    p.publish(topic, b"", retain=True)
    p.close()
    s.close()


def test_takeover_disconnects_the_old_client(broker):
    cid = unique("take")
    old = client(broker, client_id=cid)
    old.connect()
    new = client(broker, client_id=cid)
    _, rc, _ = new.connect()
    assert rc == 0
    # The old client is disconnected. The exact reason code (0x8E) is
    # checked on the wire by the Rust suite: paho 2.1 may report the socket
    # close rather than the server's DISCONNECT.
    old.disconnects.get(timeout=5)
    new.close()


def test_will_delay(broker):
    topic = unique("py5/wd")
    s = client(broker, "s")
    s.connect()
    s.subscribe(topic, 1)
    wp = Properties(PacketTypes.WILLMESSAGE)
    wp.WillDelayInterval = 1
    w = client(broker, "w", properties=connect_props(SessionExpiryInterval=30))
    w.c.will_set(topic, b"late", qos=1, properties=wp)
    w.connect()
    w.kill()
    assert s.drain(quiet=0.5) == []
    assert s.get().payload == b"late"
    s.close()


def test_oversized_packet_refused(girder_with):
    b = girder_with("mqtt.max_packet_size = 1KB\n")
    c = client(b)
    c.connect()
    c.c.publish(unique("py5/big"), b"x" * 4096, qos=0)
    # Disconnected (the 0x95 reason code is checked on the wire by the Rust
    # suite, mqtt_limits.rs).
    c.disconnects.get(timeout=5)
