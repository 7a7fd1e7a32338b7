"""The Mosquitto command-line clients against the broker: publish/subscribe
round trip, retained messages, QoS 2, and MQTT 5 properties via -D."""

import subprocess

from conftest import unique


def sub(broker, *args, count=1, wait=5, version=None):
    cmd = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-C", str(count), "-W", str(wait)]
    if version:
        cmd += ["-V", version]
    return subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pub(broker, *args, version=None):
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port)]
    if version:
        cmd += ["-V", version]
    subprocess.run(cmd + list(args), check=True, timeout=10, capture_output=True)


def ready(broker, topic):
    """Retains a marker on `topic`, to be called before the subscriber starts:
    the subscriber's first message is then the marker, so the test knows its
    subscription exists. (Retaining while a subscription is being made can
    deliver the marker twice, once live and once retained, as MQTT allows.)"""
    pub(broker, "-t", topic, "-m", "ready", "-r", "-q", "1")


def wait_first(s):
    """Blocks until the subscriber printed its first line (the retained
    marker), and keeps that line for the caller's checks."""
    first = s.stdout.readline()
    s.first_line = first
    return first


def output(s):
    """Everything the subscriber printed, the line read by wait_first
    included."""
    out, err = s.communicate(timeout=10)
    return getattr(s, "first_line", "") + out, err


def test_round_trip(broker):
    topic = unique("cli/rt")
    ready(broker, topic)
    s = sub(broker, "-t", topic, "-q", "1", count=2)
    wait_first(s)
    pub(broker, "-t", topic, "-m", "hello", "-q", "1")
    out, err = output(s)
    assert s.returncode == 0, err
    assert out.splitlines() == ["ready", "hello"]
    pub(broker, "-t", topic, "-n", "-r")


def test_retained_message(broker):
    topic = unique("cli/ret")
    pub(broker, "-t", topic, "-m", "kept", "-r")
    s = sub(broker, "-t", topic, "-v", "-R", count=1, wait=2)
    out, _ = s.communicate(timeout=10)
    # -R drops retained (stale) messages: nothing must arrive.
    assert out == ""
    s = sub(broker, "-t", topic, "-v", count=1)
    out, err = s.communicate(timeout=10)
    assert s.returncode == 0, err
    assert out.strip() == f"{topic} kept"
    pub(broker, "-t", topic, "-n", "-r")


def test_qos2(broker):
    topic = unique("cli/q2")
    ready(broker, topic)
    s = sub(broker, "-t", topic, "-q", "2", "-F", "%q %p", count=2)
    wait_first(s)
    pub(broker, "-t", topic, "-m", "exactly", "-q", "2")
    out, err = output(s)
    assert s.returncode == 0, err
    assert out.splitlines()[1] == "2 exactly"
    pub(broker, "-t", topic, "-n", "-r")


def test_v5_properties(broker):
    topic = unique("cli/v5")
    pub(broker, "-t", topic, "-m", "ready", "-r", "-q", "1", version="mqttv5")
    s = sub(broker, "-t", topic, "-q", "1", "-F", "%p|%C|%R|%D|%P", count=2, version="mqttv5")
    wait_first(s)
    pub(
        broker, "-t", topic, "-m", "props", "-q", "1",
        "-D", "publish", "content-type", "text/plain",
        "-D", "publish", "response-topic", f"{topic}/r",
        "-D", "publish", "correlation-data", "c0rr",
        "-D", "publish", "user-property", "k", "v",
        version="mqttv5",
    )
    out, err = output(s)
    assert s.returncode == 0, err
    assert out.splitlines()[1] == f"props|text/plain|{topic}/r|c0rr|k:v"
    pub(broker, "-t", topic, "-n", "-r", version="mqttv5")
