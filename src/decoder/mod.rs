//! Decoders: stages that turn one record into zero or more messages.

#[cfg(feature = "lua")]
pub mod sandbox;
