#!/usr/bin/env bash
# Installs what the test suites need besides the Rust toolchain: the Mosquitto
# command-line clients (mosquitto_pub / mosquitto_sub), `ss` (iproute2), the Mosquitto broker
# (a peer in the benchmark), and the Python packages of tests/python.
# Idempotent: a second run only checks.
set -euo pipefail

need_apt=()
command -v mosquitto_pub >/dev/null 2>&1 || need_apt+=(mosquitto-clients)
# `ss` (tests/tests/mqtt_listener.rs reads a listening socket's backlog).
command -v ss >/dev/null 2>&1 || need_apt+=(iproute2)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "install-test-deps: apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! python3 -c 'import paho.mqtt, pytest' >/dev/null 2>&1; then
    echo "install-test-deps: pip install -r tests/python/requirements.txt"
    python3 -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi

command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
