//! End-to-end tests against the built `gyges` binary: one harness, one module per topic.
//! Helpers live in `util`.

mod util;

/// The Heka tools: `gyges cat`, `gyges inject`, `gyges flood`.
mod tools;
