#!/usr/bin/env bash
# The lint gate (CI runs it before the tests): formatting, then clippy with the house lints.
#
# - The library and the binaries (the code that runs in production): no `unwrap()` (a data
#   path never panics on input; startup code says why it cannot fail with `expect`), no
#   function over 100 lines (`clippy.toml`), every public item documented (`missing_docs`,
#   set in src/lib.rs), and every warning an error.
# - Tests and benches: clippy's default lints, every warning an error (they may unwrap).
# - The sys crate (`io_uring/`) denies undocumented `unsafe` blocks in its own Cargo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --lib --bins -- -D warnings -D clippy::unwrap_used -D clippy::too_many_lines
cargo clippy --workspace --all-targets -- -D warnings
