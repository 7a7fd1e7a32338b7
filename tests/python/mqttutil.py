"""Small paho-mqtt helpers: connect, wait for CONNACK, collect messages."""

import queue
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

WAIT = 5.0
QUIET = 0.5


class Client:
    """A paho client with its network loop in a thread and queues of events."""

    def __init__(self, broker, client_id, protocol=mqtt.MQTTv311, clean=True, **connect_kw):
        self.messages = queue.Queue()
        self.connacks = queue.Queue()
        self.disconnects = queue.Queue()
        self.subacks = queue.Queue()
        kw = {"clean_session": clean} if protocol != mqtt.MQTTv5 else {}
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kw)
        self.c.on_message = lambda c, u, m: self.messages.put(m)
        self.c.on_connect = lambda c, u, f, rc, p: self.connacks.put((f, rc, p))
        self.c.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self.subacks.put(rcs)
        self.protocol = protocol
        self.broker = broker
        self.connect_kw = connect_kw
        if protocol == mqtt.MQTTv5 and "clean_start" not in connect_kw:
            self.connect_kw["clean_start"] = clean

    def connect(self, keepalive=60):
        self.c.connect(self.broker.host, self.broker.port, keepalive=keepalive, **self.connect_kw)
        self.c.loop_start()
        flags, rc, props = self.connacks.get(timeout=WAIT)
        return flags, rc, props

    def subscribe(self, topic, qos=1, options=None):
        if options is not None:
            self.c.subscribe(topic, options=options)
        else:
            self.c.subscribe(topic, qos)
        return self.subacks.get(timeout=WAIT)

    def publish(self, topic, payload, qos=1, retain=False, properties=None):
        info = self.c.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        info.wait_for_publish(timeout=WAIT)
        assert info.is_published()

    def get(self, timeout=WAIT):
        return self.messages.get(timeout=timeout)

    def drain(self, quiet=QUIET):
        out = []
        while True:
            try:
                out.append(self.messages.get(timeout=quiet))
            except queue.Empty:
                return out

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()

    def kill(self):
        """Ends the connection without DISCONNECT."""
        self.c.loop_stop()
        self.c.socket().close()


def eventually(check, limit=WAIT):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False
