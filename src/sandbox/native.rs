//! What the native (Rust-memory) modules share: charging their storage to the sandbox's
//! `memory_limit`, the 64-bit key hash, reading a key argument, and writing them back for
//! `preserve_data`.
//!
//! A structure's bytes are counted in the host's native byte counter from creation until the
//! structure is dropped ([`Charge`]); creation fails with the sandbox's memory abort when the
//! bytes do not fit in what the Lua state leaves of `memory_limit`, and the Lua state's own
//! limit shrinks by the same amount, as for `circular_buffer`.

use std::cell::Cell;
use std::io::Write as _;
use std::rc::Rc;

use mlua::{AnyUserData, Lua, Value};

use super::api::{Host, ABORT_MEMORY};

/// Bytes held in native memory by one structure, given back when it is dropped.
#[derive(Debug)]
pub struct Charge {
    counter: Rc<Cell<usize>>,
    bytes: usize,
}

impl Charge {
    /// Charges `bytes` to `host`, or raises the memory abort when they do not fit.
    ///
    /// # Errors
    /// The sandbox's memory abort, which terminates the plugin as any memory overrun does.
    pub(crate) fn take(lua: &Lua, host: &Host, bytes: usize) -> mlua::Result<Charge> {
        if bytes > host.native_budget(lua) {
            return Err(host.abort_with(ABORT_MEMORY));
        }
        let counter = host.native_bytes_counter();
        counter.set(counter.get() + bytes);
        let limit = host.memory_limit.saturating_sub(host.native_bytes()).max(1);
        lua.set_memory_limit(limit)?;
        Ok(Charge { counter, bytes })
    }

    /// A charge to a private counter (tests of the pure structures).
    #[cfg(test)]
    pub fn detached(bytes: usize) -> Charge {
        Charge {
            counter: Rc::new(Cell::new(bytes)),
            bytes,
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.counter
            .set(self.counter.get().saturating_sub(self.bytes));
    }
}

/// A `bad argument` error in the form Lua's own library uses.
pub(crate) fn bad_argument(position: usize, function: &str, problem: &str) -> mlua::Error {
    mlua::Error::runtime(format!(
        "bad argument #{position} to '{function}' ({problem})"
    ))
}

/// MurmurHash64A (public-domain algorithm by Austin Appleby) of `data` with `seed`: stable
/// across builds and platforms, so preserved filters keep answering after an upgrade.
pub fn murmur64(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (index, &byte) in tail.iter().enumerate() {
            h ^= u64::from(byte) << (8 * index);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The bytes a key argument hashes as: a string's bytes, or a number's IEEE double (so `1`
/// and `1.0` are the same key), as the C modules hashed a `lua_Number`.
pub(crate) fn key_bytes(value: &Value, function: &str) -> mlua::Result<Vec<u8>> {
    match value {
        Value::String(text) => Ok(text.as_bytes().to_vec()),
        Value::Integer(number) => Ok((*number as f64).to_le_bytes().to_vec()),
        Value::Number(number) => Ok(number.to_le_bytes().to_vec()),
        _ => Err(bad_argument(1, function, "must be a string or number")),
    }
}

/// Appends Lua source that recreates a native structure as global path `key`, if `data` is
/// one of the modules' structures; returns whether it was.
pub(crate) fn serialize(data: &AnyUserData, key: &str, out: &mut Vec<u8>) -> bool {
    if let Ok(filter) = data.borrow::<super::bloom_filter::BloomFilter>() {
        let _ = writeln!(
            out,
            "if {key} == nil then {key} = bloom_filter.new({}, {:e}) end",
            filter.items(),
            filter.probability()
        );
        push_fromstring(key, &filter.to_bytes(), out);
        return true;
    }
    if let Ok(hll) = data.borrow::<super::hyperloglog::HyperLogLog>() {
        let _ = writeln!(out, "if {key} == nil then {key} = hyperloglog.new() end");
        push_fromstring(key, &hll.to_bytes(), out);
        return true;
    }
    if let Ok(filter) = data.borrow::<super::cuckoo_filter::CuckooFilter>() {
        let _ = writeln!(
            out,
            "if {key} == nil then {key} = cuckoo_filter.new({}) end",
            filter.items()
        );
        push_fromstring(key, &filter.to_bytes(), out);
        return true;
    }
    false
}

/// Appends `key:fromstring("<bytes>")`.
pub(crate) fn push_fromstring(key: &str, bytes: &[u8], out: &mut Vec<u8>) {
    let _ = write!(out, "{key}:fromstring(");
    super::preserve::push_lua_string(bytes, out);
    out.extend_from_slice(b")\n");
}

/// Whether `data` is one of the native structures [`serialize`] writes.
pub(crate) fn is_native(data: &AnyUserData) -> bool {
    data.is::<super::bloom_filter::BloomFilter>()
        || data.is::<super::hyperloglog::HyperLogLog>()
        || data.is::<super::cuckoo_filter::CuckooFilter>()
}

#[cfg(test)]
mod tests {
    use super::murmur64;

    #[test]
    fn murmur64_spreads_and_is_stable() {
        // Fixed values: preserved filters depend on the hash never changing.
        assert_eq!(murmur64(b"", 0), 0);
        let a = murmur64(b"hello", 0xadc8_3b19);
        assert_eq!(a, murmur64(b"hello", 0xadc8_3b19));
        assert_ne!(a, murmur64(b"hellp", 0xadc8_3b19));
        assert_ne!(a, murmur64(b"hello", 1));
        let ones: u32 = (0..1000u32)
            .map(|i| murmur64(&i.to_le_bytes(), 7).count_ones())
            .sum();
        // About half of the 64 000 bits are set.
        assert!((30_000..34_000).contains(&ones), "{ones}");
    }
}
