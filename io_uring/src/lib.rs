//! Linux and io_uring specifics for gyges: the only crate allowed `unsafe` code.

#[cfg(feature = "lua")]
pub mod lpeg;
