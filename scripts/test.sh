#!/usr/bin/env bash
# The one command that runs every test of Girder, on a fresh machine:
#   scripts/test.sh
# It installs what the tests need (apt, pip, cargo tools), checks formatting
# and lints, runs the doctests, a fuzz smoke run of the codec
# (scripts/fuzz-smoke.sh), the Rust suites (unit, property, actor,
# real-client and multi-process cluster tests, and the docker compose
# cluster's fault tests, which need a docker daemon) and the Python suite
# (paho-mqtt and the mosquitto_pub / mosquitto_sub clients against a real
# node).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo build (the binaries the process-level tests start)"
cargo build --locked -p girder
cargo build --locked -p girder-cluster --example rlog_node
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export GIRDER_BIN="$target_dir/debug/girder"
export RLOG_NODE_BIN="$target_dir/debug/examples/rlog_node"

echo "== docker image girder:local (from the debug binary, for tests/tests/compose_faults.rs)"
scripts/docker-image.sh "$GIRDER_BIN"

echo "== doctests (nextest does not run them)"
cargo test --workspace --doc --locked

echo "== fuzz smoke (codec round trip, ${FUZZ_SECONDS:-20} s per target)"
scripts/fuzz-smoke.sh

echo "== cargo nextest"
cargo nextest run --workspace --locked --profile ci

echo "== pytest (paho-mqtt, mosquitto clients)"
python3 -m pytest tests/python -q
