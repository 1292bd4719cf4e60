#!/usr/bin/env bash
# Coverage-guided fuzzing of the core with libFuzzer (libfuzzer-sys), on the
# stable toolchain: the same instrumentation cargo-fuzz uses, without a
# sanitizer (RUSTC_BOOTSTRAP only lets libfuzzer-sys build; no nightly code).
#   ci/fuzz.sh [TARGET...]      each target runs FUZZ_SECONDS (default 60)
# Corpora grow in ci/fuzz/corpus/TARGET (seeded from ci/fuzz/seeds/TARGET);
# a crash leaves its input in ci/fuzz/artifacts/TARGET and fails the run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$root/ci/fuzz
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(extract scanner inflate config store state decisions sync)

export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --manifest-path "$fuzz/Cargo.toml" --bins --target "$host" \
    --target-dir "$fuzz/target" >/dev/null 2>"$fuzz/build.log" \
    || { tail -30 "$fuzz/build.log"; exit 1; }
bin=$fuzz/target/$host/release

status=0
for t in "${targets[@]}"; do
    mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
    seeds=()
    [ -d "$fuzz/seeds/$t" ] && seeds=("$fuzz/seeds/$t")
    if "$bin/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
        -artifact_prefix="$fuzz/artifacts/$t/" "$fuzz/corpus/$t" "${seeds[@]}" \
        >"$fuzz/$t.log" 2>&1; then
        runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$fuzz/$t.log" | grep -o '[0-9]*$' || true)
        [ -n "$runs" ] || runs=$(grep -Eo '^#[0-9]+' "$fuzz/$t.log" | tail -1 | tr -d '#')
        echo "fuzz $t: ok, ${seconds}s, ${runs:-?} runs, corpus $(ls "$fuzz/corpus/$t" | wc -l)"
    else
        echo "fuzz $t: FAILED, see ci/fuzz/$t.log and ci/fuzz/artifacts/$t/" >&2
        grep -E 'panicked|ERROR|SUMMARY' "$fuzz/$t.log" | head -5 >&2
        status=1
    fi
done
exit $status
