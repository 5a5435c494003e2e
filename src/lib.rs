//! gyges: a thread-per-core data pipeline daemon, the successor to Heka and Hindsight.
//!
//! See `docs/architecture.md` for the data path as built.

pub mod decoder;
pub mod encoder;
pub mod filter;
pub mod message;
#[cfg(feature = "lua")]
pub mod sandbox;
