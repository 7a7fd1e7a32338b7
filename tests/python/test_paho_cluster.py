"""paho-mqtt clients on two nodes of one girder cluster: a publish on one
node reaches a subscriber on the other at every QoS with its MQTT 5
properties, a retained message is sent to a subscriber on the other node,
and a shared group with a member on each node gets each message once."""

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import Broker, GirderNode, _external, free_port, unique
from mqttutil import Client, eventually


@pytest.fixture(scope="module")
def two_nodes():
    if _external():
        pytest.skip("needs a girder cluster")
    dist = [free_port(), free_port()]
    seeds = ", ".join(f'"py{i + 1}@127.0.0.1:{port}"' for i, port in enumerate(dist))
    nodes = []
    try:
        for i, port in enumerate(dist):
            nodes.append(
                GirderNode(
                    f'node.name = "py{i + 1}@127.0.0.1"\n'
                    f"cluster.discovery_strategy = static\n"
                    f"cluster.static.seeds = [{seeds}]\n"
                    f'cluster.dist.bind = "127.0.0.1:{port}"\n'
                )
            )
        yield [Broker("127.0.0.1", n.port, False) for n in nodes]
    finally:
        for n in nodes:
            n.stop()


def v5(broker, prefix):
    c = Client(broker, unique(prefix), protocol=mqtt.MQTTv5)
    c.connect()
    return c


def routed(publisher, subscriber, topic):
    """Publishes probes on `topic` until the subscriber gets one (its route
    reached the publisher's node), then drains them."""

    def probe():
        publisher.publish(topic, b"probe", qos=0)
        return any(m.payload == b"probe" for m in subscriber.drain(quiet=0.1))

    assert eventually(probe, limit=20), "the route never reached the publisher's node"
    subscriber.drain()


def test_a_publish_crosses_nodes_at_every_qos_with_its_properties(two_nodes):
    n1, n2 = two_nodes
    sub = v5(n2, "sub")
    pub = v5(n1, "pub")
    topic = unique("cl") + "/x"
    sub.subscribe(topic, qos=2)
    routed(pub, sub, topic)
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "text/plain"
    props.ResponseTopic = "reply/here"
    props.CorrelationData = b"\x01\x02"
    props.UserProperty = [("site", "north"), ("site", "south")]
    props.MessageExpiryInterval = 100
    for qos in (0, 1, 2):
        pub.publish(topic, f"q{qos}".encode(), qos=qos, properties=props)
    got = {}
    for _ in range(3):
        m = sub.get()
        got[m.payload] = m
    assert sorted(got) == [b"q0", b"q1", b"q2"]
    assert sub.drain() == [], "each message once"
    for m in got.values():
        p = m.properties
        assert p.ContentType == "text/plain"
        assert p.ResponseTopic == "reply/here"
        assert p.CorrelationData == b"\x01\x02"
        assert p.UserProperty == [("site", "north"), ("site", "south")]
        assert 90 <= p.MessageExpiryInterval <= 100
    sub.close()
    pub.close()


def test_a_retained_message_reaches_a_new_subscriber_on_the_other_node(two_nodes):
    n1, n2 = two_nodes
    topic = unique("ret") + "/state"
    pub = Client(n1, unique("pub"))
    pub.connect()
    pub.publish(topic, b"on", qos=1, retain=True)

    def delivered():
        sub = Client(n2, unique("sub"))
        sub.connect()
        sub.subscribe(topic, qos=1)
        got = sub.drain(quiet=0.3)
        sub.close()
        return [(m.payload, m.retain) for m in got] == [(b"on", True)]

    assert eventually(delivered, limit=20)
    pub.publish(topic, b"", qos=1, retain=True)
    pub.close()


def test_a_shared_group_across_nodes_gets_each_message_once(two_nodes):
    n1, n2 = two_nodes
    base = unique("jobs")
    members = [Client(n, unique("member")) for n in (n1, n2)]
    for m in members:
        m.connect()
        m.subscribe(f"$share/workers/{base}/#", qos=1)
    pub = Client(n1, unique("pub"))
    pub.connect()

    def both_nodes_serve():
        for i in range(10):
            pub.publish(f"{base}/probe", b"probe", qos=0)
        return all(m.drain(quiet=0.2) for m in members)

    assert eventually(both_nodes_serve, limit=20)
    for m in members:
        m.drain()
    for i in range(40):
        pub.publish(f"{base}/{i}", str(i).encode(), qos=1)
    got = [msg.payload for m in members for msg in m.drain(quiet=1.0)]
    assert sorted(got) == sorted(str(i).encode() for i in range(40))
    pub.close()
    for m in members:
        m.close()
