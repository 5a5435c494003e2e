#!/usr/bin/env bash
# Runs every test: installs what the build and the tests need (scripts/setup.sh), then the
# whole workspace's tests: unit and property tests, the end-to-end tests against the real
# binary, and every bench program in smoke mode (tiny counts, no report), so the benches
# cannot rot. Measuring is `cargo bench` (see bench/README.md), never part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets
