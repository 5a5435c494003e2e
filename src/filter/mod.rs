//! Filters: stages that read routed messages and inject new ones.

#[cfg(feature = "lua")]
pub mod sandbox;
