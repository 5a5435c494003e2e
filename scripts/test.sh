#!/usr/bin/env bash
# Runs every test: installs what the build and the tests need (scripts/setup.sh), then the
# whole workspace's tests, including the end-to-end tests against the real binary, and a
# quick smoke run of the benchmarks so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets
GYGES_BENCH_QUICK=1 cargo bench --workspace
