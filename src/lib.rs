//! gyges: a thread-per-core data pipeline daemon, the successor to Heka and Hindsight.
//!
//! See `docs/architecture.md` for the data path as built.

pub mod encoder;
pub mod limits;
pub mod message;
pub mod splitter;
pub mod tools;
