"""paho-mqtt, MQTT 3.1.1: round trips, QoS, persistent sessions, retained
messages, wills, wildcards and shared subscriptions."""

import paho.mqtt.client as mqtt

from conftest import unique
from mqttutil import Client


def client(broker, prefix="c", **kw):
    return Client(broker, unique(prefix), mqtt.MQTTv311, **kw)


def test_round_trip_each_qos(broker):
    c = client(broker)
    _, rc, _ = c.connect()
    assert rc == 0
    for qos in (0, 1, 2):
        topic = unique("py/rt")
        assert c.subscribe(topic, qos)[0] == qos
        c.publish(topic, f"q{qos}".encode(), qos=qos)
        m = c.get()
        assert (m.topic, m.payload, m.qos) == (topic, f"q{qos}".encode(), qos)
    c.close()


def test_persistent_session_gets_messages_sent_while_away(broker):
    cid, topic = unique("sess"), unique("py/sess")
    s = Client(broker, cid, mqtt.MQTTv311, clean=False)
    s.connect()
    s.subscribe(topic, 2)
    s.close()
    p = client(broker, "p")
    p.connect()
    p.publish(topic, b"one", qos=1)
    p.publish(topic, b"two", qos=2)
    s = Client(broker, cid, mqtt.MQTTv311, clean=False)
    flags, rc, _ = s.connect()
    assert rc == 0 and flags.session_present
    assert [m.payload for m in (s.get(), s.get())] == [b"one", b"two"]
    s.close()
    p.close()


def test_retained_set_replace_clear(broker):
    topic = unique("py/ret")
    p = client(broker, "p")
    p.connect()
    p.publish(topic, b"a", retain=True)
    p.publish(topic, b"b", retain=True)
    s = client(broker, "s")
    s.connect()
    s.subscribe(topic, 1)
    got = s.drain()
    assert [(m.payload, m.retain) for m in got] == [(b"b", True)]
    p.publish(topic, b"", retain=True)
    s2 = client(broker, "s")
    s2.connect()
    s2.subscribe(topic, 1)
    assert s2.drain() == []
    for c in (p, s, s2):
        c.close()


def test_will_on_abnormal_disconnect(broker):
    topic = unique("py/will")
    s = client(broker, "s")
    s.connect()
    s.subscribe(topic, 1)
    w = client(broker, "w")
    w.c.will_set(topic, b"gone", qos=1)
    w.connect()
    w.kill()
    m = s.get()
    assert (m.topic, m.payload) == (topic, b"gone")
    s.close()


def test_wildcards(broker):
    base = unique("py/w")
    s = client(broker, "s")
    s.connect()
    s.subscribe(f"{base}/+/x", 0)
    p = client(broker, "p")
    p.connect()
    for t in ("a/x", "a/y", "a/b/x"):
        p.publish(f"{base}/{t}", t.encode(), qos=1)
    assert [m.payload for m in s.drain()] == [b"a/x"]
    s.close()
    p.close()


def test_shared_subscription_delivers_each_message_once(broker):
    topic = unique("py/share")
    members = [client(broker, "m") for _ in range(2)]
    for m in members:
        m.connect()
        m.subscribe(f"$share/g/{topic}", 1)
    p = client(broker, "p")
    p.connect()
    for i in range(10):
        p.publish(topic, bytes([i]), qos=1)
    got = sorted(m.payload[0] for c in members for m in c.drain())
    assert got == list(range(10))
    for c in members + [p]:
        c.close()
