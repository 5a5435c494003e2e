//! Encoders: stages that turn one message into the bytes an output writes.

#[cfg(feature = "lua")]
pub mod sandbox;
