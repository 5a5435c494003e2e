//! End-to-end tests against the real binary and the real engine on loopback.
//!
//! One harness, topic modules; helpers in `util`.

mod util;

/// The pipeline spine: ingest, routing, delivery, bad input, config errors, shutdown.
mod pipeline;

/// `gyges queue` on files the disk queue wrote.
mod queue_tool;
