#!/usr/bin/env bash
# Fuzz smoke run of the MQTT codec: builds the cargo-fuzz targets of
# broker/fuzz and runs each for a bounded time (FUZZ_SECONDS, default 20)
# over its kept corpus (broker/fuzz/corpus/<target>, the regression inputs),
# with the MQTT dictionary. Each target checks that the decoder never
# panics and that decode(encode(p)) == p for every packet it decodes.
#   scripts/fuzz-smoke.sh                 # every target, 20 s each
#   FUZZ_SECONDS=600 scripts/fuzz-smoke.sh decode_v5
# libFuzzer needs no sanitizer here (-s none), so a stable toolchain does
# with RUSTC_BOOTSTRAP=1. New inputs found during a run are not kept: run
# `cargo fuzz cmin` and commit the corpus to keep them.
set -euo pipefail
cd "$(dirname "$0")/../broker/fuzz"

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=(decode_connect decode_v3 decode_v5)
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    run_corpus="$(mktemp -d)"
    log="$(mktemp)"
    echo "== fuzz $target (${seconds}s)"
    # The kept corpus is read, new inputs go to a scratch directory.
    status=0
    cargo fuzz run -s none "$target" "$run_corpus" "corpus/$target" -- \
        -max_total_time="$seconds" -dict=mqtt.dict -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units)|panicked|ERROR|SUMMARY' "$log" || true
    rm -rf "$run_corpus"
    if [ "$status" -ne 0 ]; then
        tail -40 "$log"
        echo "fuzz $target failed (exit $status); the input is under broker/fuzz/artifacts/$target"
        exit 1
    fi
    rm -f "$log"
done
