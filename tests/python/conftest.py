"""Fixtures for the Python MQTT suite.

`broker` is either an external broker named by MQTT_TEST_BROKER=host:port
(used to validate the suite against Mosquitto) or a `girder` node started
as `$GIRDER_BIN start -c <generated file>` on free loopback ports, stopped
when the test module ends. `girder_with(config)` starts a node with extra
HOCON and skips the test against an external broker.
"""

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_counter = itertools.count()


def unique(prefix: str) -> str:
    """A unique client id or topic part."""
    return f"{prefix}-{os.getpid()}-{next(_counter)}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    host: str
    port: int
    external: bool


class GirderNode:
    """A `girder start` child process on free loopback ports."""

    def __init__(self, extra_config: str = ""):
        binary = os.environ.get("GIRDER_BIN") or str(ROOT / "target" / "debug" / "girder")
        self.dir = tempfile.mkdtemp(prefix="girder-py-")
        self.port = free_port()
        conf = Path(self.dir) / "girder.conf"
        conf.write_text(
            f'node {{\n  name = "girder@127.0.0.1"\n  data_dir = "{self.dir}/data"\n}}\n'
            f'cluster.dist.bind = "127.0.0.1:{free_port()}"\n'
            f'listeners.tcp.default.bind = "127.0.0.1:{self.port}"\n'
            f'admin.bind = "127.0.0.1:{free_port()}"\n'
            f"log.console.level = info\n{extra_config}\n"
        )
        self.log = open(Path(self.dir) / "node.log", "wb")
        self.proc = subprocess.Popen(
            [binary, "start", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"girder exited early: {self.read_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"girder did not listen in time: {self.read_log()}")

    def read_log(self) -> str:
        return (Path(self.dir) / "node.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _external():
    spec = os.environ.get("MQTT_TEST_BROKER")
    if not spec:
        return None
    host, _, port = spec.rpartition(":")
    return Broker(host, int(port), True)


@pytest.fixture(scope="module")
def broker():
    ext = _external()
    if ext:
        yield ext
        return
    node = GirderNode()
    try:
        yield Broker("127.0.0.1", node.port, False)
    finally:
        node.stop()


@pytest.fixture
def girder_with():
    nodes = []

    def start(extra_config: str) -> Broker:
        if _external():
            pytest.skip(f"needs girder config `{extra_config.strip()}`")
        node = GirderNode(extra_config)
        nodes.append(node)
        return Broker("127.0.0.1", node.port, False)

    yield start
    for n in nodes:
        n.stop()
