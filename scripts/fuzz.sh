#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser reachable from the network or the config
# (docs/fuzzing.md): builds the libFuzzer targets in fuzz/ and runs each for a
# bounded time, starting from its seed corpus in fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh                    every target, FUZZ_SECONDS each (default 5: the CI run)
#   scripts/fuzz.sh matcher config     only these targets
#   scripts/fuzz.sh --long             every target for an hour (FUZZ_SECONDS=3600 does the same)
#
#   FUZZ_SECONDS  seconds per target (default 5; 3600 with --long)
#   FUZZ_JOBS     targets run at once (default 2: one per core of the CI machine)
#   FUZZ_REPORT   a file to write the table of executions and crashes to (markdown)
#   FUZZ_PROFILE  `dev` (default: unoptimised, built in about half the time, run slower: the
#                 CI run, whose cost is the build) or `release` (optimised; the default with
#                 --long)
#
# Exits non-zero when a target crashes (a panic, a failed assertion, a timeout of 10 s on one
# input or more than 2 GiB of memory): the crashing input is kept in fuzz/artifacts/<target>/
# and its path printed; running the target binary on that file replays it. New inputs that add
# coverage go to fuzz/target/corpus/<target>/ (not committed; copy the useful ones into
# fuzz/corpus/ with `cargo fuzz cmin`).
#
# The targets are built without a sanitizer: the main crate has no `unsafe`
# (`#![deny(unsafe_code)]`), so AddressSanitizer would find nothing safe Rust does not already
# check, at twice the cost per execution; overflow checks and debug assertions stay on.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-5}"
profile="${FUZZ_PROFILE:-dev}"
if [[ "${1:-}" == "--long" ]]; then
    seconds="${FUZZ_SECONDS:-3600}"
    profile="${FUZZ_PROFILE:-release}"
    shift
fi
jobs="${FUZZ_JOBS:-2}"
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^gyges-fuzz$')
fi

# The targets are libFuzzer binaries (libfuzzer-sys) built by plain cargo with the
# sanitizer-coverage instrumentation libFuzzer steers by, the flags `cargo fuzz build` passes
# (so no cargo-fuzz install is needed, and the stable compiler takes them as they are). The
# target triple is explicit so that the flags reach the fuzzed code only, not build scripts.
triple=$(rustc -vV | sed -n 's/^host: //p')
rustflags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing
    -Cdebug-assertions
    -Coverflow-checks
    -Ccodegen-units=16
)
cargo_flags=(--manifest-path fuzz/Cargo.toml --target "$triple" --bins)
case "$profile" in
    release)
        cargo_flags+=(--release --config 'profile.release.debug="line-tables-only"')
        binaries="fuzz/target/$triple/release"
        ;;
    dev) binaries="fuzz/target/$triple/debug" ;;
    *) echo "fuzz: FUZZ_PROFILE is dev or release, not $profile" >&2; exit 2 ;;
esac
started=$(date +%s)
RUSTFLAGS="${rustflags[*]}" cargo build "${cargo_flags[@]}"
built=$(date +%s)
echo "fuzz: built ${#targets[@]} targets in $(( built - started )) s; ${seconds} s each, ${jobs} at a time"

logs=fuzz/target/logs
mkdir -p "$logs"
run_target() {
    local target=$1
    local work="fuzz/target/corpus/$target"
    mkdir -p "$work" "fuzz/artifacts/$target"
    # The first corpus directory receives new inputs; the committed seeds and the crash
    # reproducers fixed so far (fuzz/regressions/<target>/, replayed first) are only read.
    local seeds=("fuzz/corpus/$target")
    if [[ -d "fuzz/regressions/$target" ]]; then
        seeds+=("fuzz/regressions/$target")
    fi
    # A target's scratch files (the queue target's segment files) go to a directory of its
    # own, removed after the run: libFuzzer ends the process without running destructors.
    local scratch="fuzz/target/tmp/$target"
    mkdir -p "$scratch"
    if TMPDIR="$PWD/$scratch" "$binaries/$target" "$work" "${seeds[@]}" \
        -artifact_prefix="fuzz/artifacts/$target/" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        > "$logs/$target.log" 2>&1; then
        echo "0" > "$logs/$target.status"
    else
        echo "1" > "$logs/$target.status"
    fi
    rm -rf "$scratch"
}

running=0
for target in "${targets[@]}"; do
    run_target "$target" &
    running=$(( running + 1 ))
    if (( running >= jobs )); then
        wait -n || true
        running=$(( running - 1 ))
    fi
done
wait

failed=0
table="| target | seconds | executions | exec/s | coverage (edges) | corpus | crashes |"$'\n'
table+="|---|---|---|---|---|---|---|"$'\n'
for target in "${targets[@]}"; do
    log="$logs/$target.log"
    # A target that crashed on its first input has no statistics: the row says `?`.
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 || true)
    edges=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | sed 's/cov: //')
    corpus=$(find "fuzz/target/corpus/$target" "fuzz/corpus/$target" -type f | wc -l)
    crashes=0
    if [[ "$(cat "$logs/$target.status")" != "0" ]]; then
        crashes=1
        failed=1
        echo "fuzz: $target CRASHED; the log is $log"
        grep -E "^(thread '|panicked|==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written)" "$log" | head -20 || true
    fi
    table+="| $target | $seconds | ${executions:-?} | ${rate:-?} | ${edges:-?} | $corpus | $crashes |"$'\n'
done
echo
echo "$table"
if [[ -n "${FUZZ_REPORT:-}" ]]; then
    printf '%s' "$table" > "$FUZZ_REPORT"
fi
exit "$failed"
