//! End-to-end tests against the built `gyges` binary: one harness, one module per topic.
//! Helpers live in `util`.

mod util;

/// Zero allocations per record on the data path (a counting global allocator).
mod alloc;

/// The Heka tools: `gyges cat`, `gyges inject`, `gyges flood`.
mod tools;
