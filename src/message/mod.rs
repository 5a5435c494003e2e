//! The message: Heka's schema, its lazy view, its wire and JSON forms.
//!
//! - [`proto`]: owned prost types, for building messages off the data path.
//! - [`view`]: the borrowed, lazily indexed view every stage reads on the data path.
//! - [`wire`]: protobuf primitives used by the view and by the encoders.
//! - [`json`]: the one-object-per-line JSON form printed by `gyges cat`.
//! - [`framing`]: Heka stream framing and HMAC signing, the one owner of that format.
//! - [`ack`]: the control frames of the acknowledgement protocol between gyges peers.

pub mod ack;
pub mod framing;
pub mod json;
pub mod proto;
pub mod view;
pub mod wire;

pub use view::{
    FieldRef, FieldValue, IntHeader, LineMeta, LineView, MessageView, ProtoView, StrHeader,
};

/// Appends the protobuf encoding of a plain-line message to `out`, without allocating
/// beyond `out`'s growth. Fields are written in schema order, as Heka's encoder does.
pub fn encode_line(line: &LineView<'_>, out: &mut Vec<u8>) {
    wire::put_bytes(out, 1, &line.uuid);
    wire::put_int(out, 2, line.timestamp);
    wire::put_bytes(out, 3, &line.meta.type_);
    wire::put_bytes(out, 4, &line.meta.logger);
    wire::put_bytes(out, 6, line.payload);
    wire::put_bytes(out, 9, &line.meta.hostname);
}

/// The size `encode_line` will write.
pub fn encoded_line_len(line: &LineView<'_>) -> usize {
    fn len_field(len: usize) -> usize {
        1 + wire::varint_len(len as u64) + len
    }
    len_field(16)
        + 1
        + wire::varint_len(line.timestamp as u64)
        + len_field(line.meta.type_.len())
        + len_field(line.meta.logger.len())
        + len_field(line.payload.len())
        + len_field(line.meta.hostname.len())
}

/// A per-core source of type-4 UUIDs: fast, not cryptographic, and distinct across cores
/// because each generator is seeded from the OS.
pub struct UuidSource {
    rng: fastrand::Rng,
}

impl UuidSource {
    /// Seeds a generator from the OS's randomness.
    pub fn new() -> UuidSource {
        UuidSource {
            rng: fastrand::Rng::new(),
        }
    }

    /// Seeds a generator deterministically (tests).
    pub fn with_seed(seed: u64) -> UuidSource {
        UuidSource {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The next random UUID, with the version (4) and variant (RFC 4122) bits set.
    #[inline]
    pub fn next_uuid(&mut self) -> [u8; 16] {
        let mut uuid = self.rng.u128(..).to_le_bytes();
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        uuid
    }
}

impl Default for UuidSource {
    fn default() -> Self {
        UuidSource::new()
    }
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
