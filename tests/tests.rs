//! End-to-end tests against the built `gyges` binary and the real engine on loopback: one
//! harness, one module per topic. Helpers live in `util`.

mod util;

/// The pipeline spine: ingest, routing, delivery, bad input, config errors, shutdown.
mod pipeline;

/// Zero allocations per record on the data path (a counting global allocator).
mod alloc;

/// The Heka tools: `gyges cat`, `gyges inject`, `gyges flood`.
mod tools;

/// The bench programs' shared report code (`bench/common`), compiled here for its tests.
#[path = "../bench/common/mod.rs"]
mod bench_common;

/// The report's dates, slugs, sections and tables.
mod bench_report;
