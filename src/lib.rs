//! gyges: a thread-per-core data pipeline daemon, the successor to Heka and Hindsight.
//!
//! The data path, stage by stage (see `docs/architecture.md` for the picture):
//! [`input`] → [`splitter`] → [`decoder`] → [`runtime::router`] (the [`matcher`]) →
//! [`encoder`] → [`output`]. [`runtime`] runs one pinned executor per core and owns the rings
//! between cores; [`config`] turns Heka's TOML into a checked plan; [`telemetry`] counts.

// Every public item says what it is (`scripts/lint.sh` makes a warning an error).
#![warn(missing_docs)]

#[cfg(feature = "amqp")]
pub mod amqp;
pub mod calendar;
pub mod component;
pub mod config;
pub mod decoder;
pub mod encoder;
pub mod filter;
pub mod input;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod limits;
pub mod matcher;
pub mod message;
pub mod output;
pub mod queue;
pub mod runtime;
#[cfg(feature = "lua")]
pub mod sandbox;
pub mod splitter;
pub mod stats;
pub mod telemetry;
#[cfg(test)]
mod testing;
pub mod tls;
pub mod tools;
pub mod zone;
