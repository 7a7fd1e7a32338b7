#!/usr/bin/env bash
# Runs the seeded rlog fault schedule (tests/tests/rlog_schedule.rs, t70)
# over many seeds, and the concurrent history test a few times: a long soak
# of the replicated tables. Every failing seed is printed with the command
# that replays it; the logs of failed runs are kept under $SOAK_DIR.
#
#   scripts/rlog-soak.sh [SEEDS] [FIRST_SEED] [HISTORY_RUNS]
#   scripts/rlog-soak.sh 300          # seeds 1..300, 3 history runs
#
# Two seeds run side by side; on a 2-core machine a
# seed takes about 15 s, so 300 seeds take about 40 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

seeds="${1:-200}"
first="${2:-1}"
history_runs="${3:-3}"
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export RLOG_NODE_BIN="$target_dir/debug/examples/rlog_node"
SOAK_DIR="${SOAK_DIR:-$(mktemp -d /tmp/rlog-soak.XXXXXX)}"
mkdir -p "$SOAK_DIR"

cargo build --locked -q -p girder-cluster --example rlog_node
cargo nextest run --locked --cargo-quiet -p girder-tests --test rlog_schedule --test rlog_history \
    --no-run

failed=()
run_seed() {
    local seed="$1" log="$SOAK_DIR/seed-$1.log"
    if RLOG_SEED="$seed" cargo nextest run --locked --cargo-quiet -p girder-tests \
        --test rlog_schedule --no-capture -E 'test(t70_)' >"$log" 2>&1; then
        rm -f "$log"
        echo "seed $seed ok"
    else
        echo "seed $seed FAILED (log: $log)"
        echo "  replay: RLOG_SEED=$seed cargo nextest run -p girder-tests --test rlog_schedule t70 --no-capture"
        return 1
    fi
}

# Two seeds side by side.
last=$((first + seeds - 1))
seed="$first"
while [ "$seed" -le "$last" ]; do
    next=$((seed + 1))
    run_seed "$seed" & a=$!
    b=""
    if [ "$next" -le "$last" ]; then
        run_seed "$next" & b=$!
    fi
    wait "$a" || failed+=("$seed")
    if [ -n "$b" ]; then
        wait "$b" || failed+=("$next")
    fi
    seed=$((seed + 2))
done

for i in $(seq 1 "$history_runs"); do
    hseed=$((first + i))
    log="$SOAK_DIR/history-$hseed.log"
    if RLOG_HISTORY_SEED="$hseed" cargo nextest run --locked --cargo-quiet -p girder-tests \
        --test rlog_history --no-capture -E 'test(t10_)' >"$log" 2>&1; then
        grep -E "operations in" "$log" || true
        rm -f "$log"
    else
        echo "history seed $hseed FAILED (log: $log)"
        echo "  replay: RLOG_HISTORY_SEED=$hseed cargo nextest run -p girder-tests --test rlog_history t10 --no-capture"
        failed+=("history-$hseed")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]} (logs in $SOAK_DIR)"
    exit 1
fi
echo "all $seeds seeds and $history_runs history runs passed"
