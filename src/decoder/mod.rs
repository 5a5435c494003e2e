//! Decoders: turn a record into a message the router can read.
//!
//! - [`protobuf`]: the record is a Heka protobuf message; it is checked, never decoded.
//! - `sandbox` (feature `lua`): a Lua decoder, one Lua state per core.
//! - no decoder: the record becomes the Payload of a message the input fills in (Uuid,
//!   Timestamp, Type and Logger = the input's name, Hostname = the sender), as Heka does.

pub mod protobuf;
#[cfg(feature = "lua")]
pub mod sandbox;
pub mod syslog;
