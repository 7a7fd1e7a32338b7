#!/usr/bin/env bash
# Benchmarks girder against Mosquitto and rumqttd on this machine, one broker
# at a time, with the same load generator (`girder bench`) and the same load;
# and a 3-node girder cluster against a 3-node rmqtt cluster (rmqttd with its
# raft cluster plugin), with publishers on one node and subscribers on
# another (the `xnode-*` scenarios) beside the same load on one node.
#
#   scripts/bench.sh [--quick] [--brokers girder,mosquitto,rumqttd,girder-cluster,rmqtt-cluster]
#                    [--out DIR]
#                    [--girder PATH]   (a prebuilt girder binary: no build)
#                    [--only REGEX]    (only the scenarios whose name matches)
#
# Installs what it needs (mosquitto from Debian, rumqttd with cargo install,
# a font for the chart), builds girder in release, then for every scenario and
# every broker: starts the broker on its own loopback port with a fresh state,
# runs the scenario (the generator samples the broker's CPU and RSS from
# /proc), stops the broker. Results: DIR/<scenario>--<broker>.json, DIR/*.log,
# DIR/report.md (tables with girder / best peer ratios) and DIR/chart.png.
#
# Every run is bounded: each scenario by its --duration plus connect and
# drain deadlines, and by `timeout` around it. The load average before each
# run goes to DIR/loadavg.txt: other work on the machine shows up there. Open files are capped at about
# 20,000 per process here, so connection counts stay below 19,500.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=full
BROKERS=girder,mosquitto,rumqttd,girder-cluster,rmqtt-cluster
OUT=""
GIRDER=""
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --brokers) BROKERS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --girder) GIRDER=$2; shift ;;
    --only) ONLY=$2; shift ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
OUT=${OUT:-bench-results/$(date -u +%Y-%m-%dT%H%M%SZ)-$MODE}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d)
trap 'stop_broker; rm -rf "$WORK"' EXIT

log() { echo "bench.sh: $*" >&2; }

# --- setup ---------------------------------------------------------------
need_apt=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
# rmqttd's build runs protoc, and cmake for librdkafka.
if [[ ",$BROKERS," == *,rmqtt-cluster,* ]] && ! command -v rmqttd >/dev/null 2>&1 &&
  [ ! -x "$HOME/.cargo/bin/rmqttd" ]; then
  command -v protoc >/dev/null 2>&1 || need_apt+=(protobuf-compiler)
  command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
systemctl stop mosquitto >/dev/null 2>&1 || true

RUMQTTD=$(command -v rumqttd || echo "$HOME/.cargo/bin/rumqttd")
if [[ ",$BROKERS," == *,rumqttd,* ]] && [ ! -x "$RUMQTTD" ]; then
  log "cargo install --locked rumqttd"
  t0=$(date +%s)
  # rumqttd 0.20's lock file pins metrics 0.22.1, which newer compilers
  # refuse (E0521); without --locked cargo takes a fixed 0.22.x.
  if cargo install --locked rumqttd >"$OUT/rumqttd-install.log" 2>&1 ||
    { log "--locked failed; retrying without it"; cargo install rumqttd >>"$OUT/rumqttd-install.log" 2>&1; }; then
    log "rumqttd installed in $(( $(date +%s) - t0 ))s"
  else
    log "rumqttd failed to install after $(( $(date +%s) - t0 ))s: it is marked missing"
  fi
fi

RMQTTD=$(command -v rmqttd || echo "$HOME/.cargo/bin/rmqttd")
if [[ ",$BROKERS," == *,rmqtt-cluster,* ]] && [ ! -x "$RMQTTD" ]; then
  log "cargo install --locked rmqttd (a long build)"
  t0=$(date +%s)
  if cargo install --locked rmqttd >"$OUT/rmqttd-install.log" 2>&1; then
    log "rmqttd installed in $(( $(date +%s) - t0 ))s"
  else
    log "rmqttd failed to install after $(( $(date +%s) - t0 ))s: it is marked missing"
  fi
fi

if [ -z "$GIRDER" ]; then
  log "building girder (release)"
  cargo build --release -p girder >"$OUT/build.log" 2>&1 || { tail -20 "$OUT/build.log"; exit 1; }
  GIRDER=${CARGO_TARGET_DIR:-$ROOT/target}/release/girder
fi

ulimit -n "$(ulimit -Hn)"

# --- brokers -------------------------------------------------------------
# Fixed loopback ports, one per broker. Limits lifted or aligned the same way
# where the broker allows it: no connection limit, a window of 100 messages
# in flight per client, queues of 1000 messages per client (QoS 0 included).
PORT_girder=21883
PORT_mosquitto=21884
PORT_rumqttd=21885

write_configs() {
  cat >"$WORK/mosquitto.conf" <<CONF
listener $PORT_mosquitto 127.0.0.1
allow_anonymous true
max_connections -1
max_inflight_messages 100
max_queued_messages 1000
persistence false
log_dest none
CONF
  cat >"$WORK/rumqttd.toml" <<CONF
id = 0

[router]
id = 0
max_connections = 20010
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:$PORT_rumqttd"
next_connection_delay_ms = 0
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = 100
    dynamic_filters = true

[v5.1]
name = "v5-1"
listen = "127.0.0.1:$((PORT_rumqttd + 100))"
next_connection_delay_ms = 0
    [v5.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 1048576
    max_inflight_count = 100
CONF
}

# The clusters: three nodes each on 127.0.0.1. Clients of the same-node
# scenarios use node 1; the xnode scenarios publish on node 1 and subscribe
# on node 2. The broker's CPU and RSS are sampled on node 1.
GC_MQTT=22871; GC_DIST=22874; GC_ADMIN=22877
RC_MQTT=22881

write_girder_cluster() {
  local n seeds=""
  for n in 1 2 3; do
    seeds+="${seeds:+, }\"girder$n@127.0.0.1:$((GC_DIST + n - 1))\""
  done
  for n in 1 2 3; do
    cat >"$WORK/girder$n.conf" <<CONF
node { name = "girder$n@127.0.0.1", cookie = "bench-cookie", data_dir = "$WORK/girder$n" }
cluster {
  discovery_strategy = static
  static.seeds = [$seeds]
  dist.bind = "127.0.0.1:$((GC_DIST + n - 1))"
}
listeners.tcp.default { bind = "127.0.0.1:$((GC_MQTT + n - 1))", tcp_options.backlog = 4096 }
admin.bind = "127.0.0.1:$((GC_ADMIN + n - 1))"
mqtt { max_inflight = 100, max_mqueue_len = 1000 }
CONF
  done
}

# rmqtt: the raft cluster plugin only (no ACL, counter or HTTP plugin), the
# same window and queue as the others, its busy check off (it refuses
# CONNECTs on a loaded machine). Raft state is in memory: every run starts
# afresh. Nodes start one at a time (node 1 leads): started together, they
# can elect two leaders. A node's MQTT port opens once it is in the cluster.
# Its raft listener cannot bind a port that still has connections in
# TIME-WAIT, so every start takes ports no socket uses (RC_MQTT moves up
# by 30 until its nine ports are all unused).
RC_FIRST=$RC_MQTT
RC_STARTS=0
rmqtt_ports_unused() {
  local used
  used=$(ss -Htan 2>/dev/null | awk '{print $4; print $5}' | sed 's/.*://' | sort -u)
  for p in 0 1 2 10 11 12 20 21 22; do
    grep -qx "$((RC_MQTT + p))" <<<"$used" && return 1
  done
  return 0
}
write_rmqtt_cluster() {
  local n
  for _ in $(seq 20); do
    RC_MQTT=$((RC_FIRST + 30 * (RC_STARTS % 20)))
    RC_STARTS=$((RC_STARTS + 1))
    rmqtt_ports_unused && break
  done
  for n in 1 2 3; do
    mkdir -p "$WORK/rmqtt$n/plugins"
    cat >"$WORK/rmqtt$n/rmqtt.toml" <<CONF
[node]
id = $n

[node.busy]
check_enable = false

[rpc]
server_addr = "127.0.0.1:$((RC_MQTT + 10 + n - 1))"

[log]
to = "console"
level = "warn"

[mqtt]
max_sessions = 0

[plugins]
dir = "$WORK/rmqtt$n/plugins"
default_startups = ["rmqtt-cluster-raft"]
disabled_default_startups = ["rmqtt-acl", "rmqtt-counter", "rmqtt-http-api"]

[listener.tcp.external]
addr = "127.0.0.1:$((RC_MQTT + n - 1))"
allow_anonymous = true
max_connections = 1024000
max_handshaking_limit = 5000
backlog = 4096
nodelay = true
max_packet_size = "1m"
max_inflight = 100
max_mqueue_len = 1000
mqueue_rate_limit = "4294967295,1s"
message_retry_interval = "30s"
message_expiry_interval = "5m"
session_expiry_interval = "2h"
CONF
    cat >"$WORK/rmqtt$n/plugins/rmqtt-cluster-raft.toml" <<CONF
node_grpc_addrs = ["1@127.0.0.1:$((RC_MQTT + 10))", "2@127.0.0.1:$((RC_MQTT + 11))", "3@127.0.0.1:$((RC_MQTT + 12))"]
raft_peer_addrs = ["1@127.0.0.1:$((RC_MQTT + 20))", "2@127.0.0.1:$((RC_MQTT + 21))", "3@127.0.0.1:$((RC_MQTT + 22))"]
leader_id = 1
CONF
  done
}

start_rmqtt_node() { # n -> $! is the node's pid once it listens (or has failed)
  local n=$1 port=$((RC_MQTT + n - 1))
  (cd "$WORK/rmqtt$n" && exec env -u RUST_LOG "$RMQTTD" -f "$WORK/rmqtt$n/rmqtt.toml" --id "$n") \
    >"$OUT/broker-rmqtt-cluster-$n.log" 2>&1 &
  local pid=$!
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
}

rmqtt_ready() {
  local n
  for n in 1 2 3; do
    (exec 3<>"/dev/tcp/127.0.0.1/$((RC_MQTT + n - 1))") 2>/dev/null || return 1
  done
}

BROKER_PID=""
CLUSTER_PIDS=()
SUB_ADDR=""
start_cluster() { # broker -> sets CLUSTER_PIDS, BROKER_PID, BROKER_ADDR, SUB_ADDR
  local broker=$1 n
  CLUSTER_PIDS=()
  case "$broker" in
    girder-cluster)
      rm -rf "$WORK"/girder[123]
      for n in 1 2 3; do
        "$GIRDER" start -c "$WORK/girder$n.conf" >"$OUT/broker-girder-cluster-$n.log" 2>&1 &
        CLUSTER_PIDS+=($!)
      done
      BROKER_ADDR=127.0.0.1:$GC_MQTT
      SUB_ADDR=127.0.0.1:$((GC_MQTT + 1))
      local ok=""
      for _ in $(seq 200); do
        if "$GIRDER" ctl --node "127.0.0.1:$GC_ADMIN" --json cluster status 2>/dev/null |
          grep -q 'girder3@127.0.0.1' &&
          "$GIRDER" ctl --node "127.0.0.1:$((GC_ADMIN + 1))" --json cluster status 2>/dev/null |
          grep -q 'girder1@127.0.0.1'; then ok=1; break; fi
        sleep 0.1
      done
      ;;
    rmqtt-cluster)
      write_rmqtt_cluster
      for n in 1 2 3; do
        start_rmqtt_node "$n"
        CLUSTER_PIDS+=($!)
      done
      BROKER_ADDR=127.0.0.1:$RC_MQTT
      SUB_ADDR=127.0.0.1:$((RC_MQTT + 1))
      local ok=""
      for _ in $(seq 300); do
        if rmqtt_ready; then ok=1; break; fi
        sleep 0.1
      done
      ;;
  esac
  BROKER_PID=${CLUSTER_PIDS[0]}
  if [ -z "$ok" ]; then
    log "$broker did not form a cluster"
    stop_broker
    return 1
  fi
}

BROKER_PID=""
start_broker() { # broker version -> sets BROKER_PID and BROKER_ADDR
  local broker=$1 version=$2 port
  SUB_ADDR=""
  case "$broker" in
    girder-cluster|rmqtt-cluster) start_cluster "$broker"; return $? ;;
    girder)
      port=$PORT_girder
      "$GIRDER" start --set "listeners.tcp.default.bind=127.0.0.1:$port" \
        --set admin.enable=false --set mqtt.max_inflight=100 \
        --set mqtt.max_mqueue_len=1000 --set listeners.tcp.default.tcp_options.backlog=4096 \
        >"$OUT/broker-girder.log" 2>&1 &
      ;;
    mosquitto)
      port=$PORT_mosquitto
      "$MOSQUITTO" -c "$WORK/mosquitto.conf" >"$OUT/broker-mosquitto.log" 2>&1 &
      ;;
    rumqttd)
      port=$PORT_rumqttd
      [ "$version" = 5 ] && port=$((PORT_rumqttd + 100))
      "$RUMQTTD" -c "$WORK/rumqttd.toml" >"$OUT/broker-rumqttd.log" 2>&1 &
      ;;
  esac
  BROKER_PID=$!
  BROKER_ADDR=127.0.0.1:$port
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "$broker did not open port $port"
  stop_broker
  return 1
}

stop_broker() {
  local pid
  if [ ${#CLUSTER_PIDS[@]} -gt 0 ]; then
    for pid in "${CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${CLUSTER_PIDS[@]}"; do
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    done
    CLUSTER_PIDS=()
    BROKER_PID=""
    return 0
  fi
  [ -n "$BROKER_PID" ] || return 0
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$BROKER_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$BROKER_PID" 2>/dev/null || true
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
}

available() {
  case "$1" in
    girder) [ -x "$GIRDER" ] ;;
    mosquitto) [ -x "$MOSQUITTO" ] ;;
    rumqttd) [ -x "$RUMQTTD" ] ;;
    girder-cluster) [ -x "$GIRDER" ] ;;
    rmqtt-cluster) [ -x "$RMQTTD" ] ;;
    *) return 1 ;;
  esac
}

# --- scenarios -----------------------------------------------------------
# name|mqtt version|girder bench arguments[|where]. Sizes: quick / full.
# where: "single" (default: the single-node brokers), "both" (also each
# cluster, all clients on node 1), "xnode" (the clusters only: publishers on
# node 1, subscribers on node 2).
if [ "$MODE" = quick ]; then
  D=3; IDLE1=1000; IDLE2=2000; FANOUT=200; PAIRS=200; PAIR_RATE=4000; STORM_SUBS=100; STORM_RET=1000
else
  D=15; IDLE1=10000; IDLE2=19000; FANOUT=1000; PAIRS=1000; PAIR_RATE=20000; STORM_SUBS=1000; STORM_RET=1000
fi
SCENARIOS=(
  "idle-$IDLE1|3|conn -c $IDLE1 --connect-rate 5000 --sources 4 --hold $D -d $((D + 5))"
  "idle-$IDLE2|3|conn -c $IDLE2 --connect-rate 5000 --sources 4 --hold $D -d $((D + 5))"
  "fan-in-q0|3|pubsub --publishers 100 -t bench/fanin/%i --subscribers 1 --sub-topic bench/fanin/# -q 0 --inflight 5000 -d $D"
  "fan-in-q1|3|pubsub --publishers 100 -t bench/fanin/%i --subscribers 1 --sub-topic bench/fanin/# -q 1 --sub-qos 1 --inflight 1000 -d $D|both"
  "xnode-fan-in-q1|3|pubsub --publishers 100 -t bench/fanin/%i --subscribers 1 --sub-topic bench/fanin/# -q 1 --sub-qos 1 --inflight 1000 -d $D|xnode"
  "fan-out-100|3|pubsub --publishers 1 -t bench/fanout --subscribers $FANOUT --sub-topic bench/fanout -q 0 --rate 100 -d $D"
  "fan-out-max|3|pubsub --publishers 1 -t bench/fanout --subscribers $FANOUT --sub-topic bench/fanout -q 0 --inflight $((FANOUT * 50)) -d $D|both"
  "xnode-fan-out-max|3|pubsub --publishers 1 -t bench/fanout --subscribers $FANOUT --sub-topic bench/fanout -q 0 --inflight $((FANOUT * 50)) -d $D|xnode"
  "pairs-q0-v3|3|pubsub --publishers $PAIRS -t bench/pair/%i --subscribers $PAIRS --sub-topic bench/pair/%i -q 0 --rate $PAIR_RATE -d $D --sources 2"
  "pairs-q1-v3|3|pubsub --publishers $PAIRS -t bench/pair/%i --subscribers $PAIRS --sub-topic bench/pair/%i -q 1 --sub-qos 1 --rate $PAIR_RATE -d $D --sources 2|both"
  "xnode-pairs-q1-v3|3|pubsub --publishers $PAIRS -t bench/pair/%i --subscribers $PAIRS --sub-topic bench/pair/%i -q 1 --sub-qos 1 --rate $PAIR_RATE -d $D --sources 2|xnode"
  "pairs-q0-v5|5|pubsub --publishers $PAIRS -t bench/pair/%i --subscribers $PAIRS --sub-topic bench/pair/%i -q 0 --rate $PAIR_RATE -d $D --sources 2"
  "pairs-q1-v5|5|pubsub --publishers $PAIRS -t bench/pair/%i --subscribers $PAIRS --sub-topic bench/pair/%i -q 1 --sub-qos 1 --rate $PAIR_RATE -d $D --sources 2"
  "retained-storm|3|storm --retained $STORM_RET --subscribers $STORM_SUBS --connect-rate 1000 -d $((D * 4))"
  "shared-group|3|pubsub --publishers 10 -t bench/shared/%i --subscribers 10 --sub-topic \$share/g/bench/shared/# -q 1 --sub-qos 1 --inflight 1000 -d $D"
)

write_configs
write_girder_cluster
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "mode: $MODE"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
  echo "kernel: $(uname -r)"
  echo "girder: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "mosquitto: $("$MOSQUITTO" -h 2>/dev/null | head -1 || true)"
  echo "rumqttd: $( [ -x "$RUMQTTD" ] && "$RUMQTTD" --version 2>/dev/null || echo missing)"
  echo "rmqttd: $( [ -x "$RMQTTD" ] && "$RMQTTD" --version 2>/dev/null | head -1 || echo missing)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

IFS=',' read -r -a BROKER_LIST <<<"$BROKERS"
for entry in "${SCENARIOS[@]}"; do
  IFS='|' read -r name version args where <<<"$entry"
  where=${where:-single}
  [[ -z "$ONLY" || "$name" =~ $ONLY ]] || continue
  for broker in "${BROKER_LIST[@]}"; do
    case "$broker" in
      *-cluster) [ "$where" = single ] && continue ;;
      *) [ "$where" = xnode ] && continue ;;
    esac
    if ! available "$broker"; then
      log "$broker missing: $name skipped"
      continue
    fi
    log "== $name on $broker"
    echo "$name $broker $(cat /proc/loadavg)" >>"$OUT/loadavg.txt"
    start_broker "$broker" "$version" || continue
    sub_host=()
    [ "$where" = xnode ] && sub_host=(--sub-host "$SUB_ADDR")
    # shellcheck disable=SC2086 # the arguments are split on purpose
    if ! timeout 600 "$GIRDER" bench $args "${sub_host[@]}" --mqtt "$version" --host "$BROKER_ADDR" \
      --broker-pid "$BROKER_PID" --broker-name "$broker" --label "$name" \
      --prefix "bench-$broker" --out "$OUT/$name--$broker.json" 2>"$OUT/$name--$broker.log"; then
      log "$name on $broker failed (see $OUT/$name--$broker.log)"
      tail -3 "$OUT/$name--$broker.log" >&2 || true
    fi
    stop_broker
  done
done

single=$(tr ',' '\n' <<<"$BROKERS" | grep -v -- '-cluster$' | paste -sd, -)
clusters=$(tr ',' '\n' <<<"$BROKERS" | grep -- '-cluster$' | paste -sd, -)
if [ -n "$single" ]; then
  "$GIRDER" bench report "$OUT" --subject girder --brokers "$single"
fi
if [ -n "$clusters" ]; then
  "$GIRDER" bench report "$OUT" --subject girder-cluster --brokers "$clusters" \
    --markdown "$OUT/report-cluster.md" --png "$OUT/chart-cluster.png"
fi
log "results in $OUT"
