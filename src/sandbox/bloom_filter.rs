//! `bloom_filter`: set membership with a chosen false-positive probability and no false
//! negatives (lua_sandbox's module).
//!
//! ```text
//! require "bloom_filter"
//! local bf = bloom_filter.new(items >= 1, 0 < probability < 1)
//! bf:add(key) -> true if the key was not present     bf:query(key) -> boolean
//! bf:count() -> keys added (adds that returned true)  bf:clear()
//! bf:fromstring(bits)                                  -- restore (preservation)
//! ```
//! Keys are strings or numbers. A filter sized for `items` keys with probability `p` has
//! `m = ⌈−items·ln p / ln²2⌉` bits and `k = round(m/items · ln 2)` hashes (1..=64), set by
//! double hashing of two MurmurHash64A values. Past `items` keys the false-positive rate
//! grows. The bits are native memory charged to `memory_limit` at `new`.
//!
//! `fromstring` takes the bit array (`⌈m/8⌉` bytes, as lua_sandbox wrote it) optionally
//! followed by the count as 8 little-endian bytes (as gyges writes it); without the count it
//! is estimated from the bits set.

use std::rc::Rc;

use mlua::{Lua, Table, UserData, UserDataMethods, Value};

use super::api::Host;
use super::native::{bad_argument, key_bytes, murmur64, Charge};

/// The most items a filter may be sized for.
pub const ITEMS_MAX: f64 = 4_294_967_296.0;
/// The most hash functions a filter uses.
pub const HASHES_MAX: u32 = 64;
/// The largest bit array, in bytes (the sandbox's largest `memory_limit`).
pub const BYTES_MAX: usize = super::MEMORY_LIMIT_MAX;

const SEED_1: u64 = 0x9747_b28c;
const SEED_2: u64 = 0x5bd1_e995_9747_b28c;

/// One filter.
#[derive(Debug)]
pub struct BloomFilter {
    items: u64,
    probability: f64,
    bits: u64,
    hashes: u32,
    count: u64,
    data: Vec<u8>,
    _charge: Charge,
}

impl BloomFilter {
    /// The bit and hash counts for `items` keys at `probability`.
    ///
    /// # Errors
    /// A Lua error naming the argument out of range.
    pub fn shape(items: f64, probability: f64) -> mlua::Result<(u64, u32)> {
        if !(1.0..=ITEMS_MAX).contains(&items) {
            return Err(bad_argument(1, "new", "items must be >= 1 and <= 2^32"));
        }
        if !(probability > 0.0 && probability < 1.0) {
            return Err(bad_argument(2, "new", "probability must be > 0 and < 1"));
        }
        let items = items.trunc();
        let ln2 = std::f64::consts::LN_2;
        let bits = (-items * probability.ln() / (ln2 * ln2)).ceil().max(8.0);
        if bits / 8.0 > BYTES_MAX as f64 {
            return Err(bad_argument(
                2,
                "new",
                "the filter would be larger than 1 GiB",
            ));
        }
        let bits = bits as u64;
        let hashes = ((bits as f64 / items) * ln2)
            .round()
            .clamp(1.0, f64::from(HASHES_MAX)) as u32;
        Ok((bits, hashes))
    }

    /// A filter of the given shape (see [`BloomFilter::shape`]) holding `charge`.
    pub fn new(items: f64, probability: f64, charge: Charge) -> mlua::Result<BloomFilter> {
        let (bits, hashes) = Self::shape(items, probability)?;
        Ok(BloomFilter {
            items: items as u64,
            probability,
            bits,
            hashes,
            count: 0,
            data: vec![0; Self::bytes_for(bits)],
            _charge: charge,
        })
    }

    /// Bytes of a bit array of `bits` bits.
    pub fn bytes_for(bits: u64) -> usize {
        bits.div_ceil(8) as usize
    }

    /// The items the filter was sized for.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The false-positive probability the filter was sized for.
    pub fn probability(&self) -> f64 {
        self.probability
    }

    fn positions(&self, key: &[u8]) -> impl Iterator<Item = u64> {
        let first = murmur64(key, SEED_1);
        let step = murmur64(key, SEED_2) | 1;
        let bits = self.bits;
        (0..u64::from(self.hashes)).map(move |i| first.wrapping_add(i.wrapping_mul(step)) % bits)
    }

    /// Sets the key's bits; true if any was unset (the key was not present).
    pub fn add(&mut self, key: &[u8]) -> bool {
        let mut added = false;
        let positions: Vec<u64> = self.positions(key).collect();
        for bit in positions {
            let (byte, mask) = ((bit / 8) as usize, 1u8 << (bit % 8));
            if self.data[byte] & mask == 0 {
                self.data[byte] |= mask;
                added = true;
            }
        }
        if added {
            self.count += 1;
        }
        added
    }

    /// Whether every bit of the key is set.
    pub fn query(&self, key: &[u8]) -> bool {
        self.positions(key)
            .all(|bit| self.data[(bit / 8) as usize] & (1u8 << (bit % 8)) != 0)
    }

    /// Unsets every bit.
    pub fn clear(&mut self) {
        self.data.fill(0);
        self.count = 0;
    }

    /// Adds that set a bit.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The bit array then the count (8 bytes, little-endian).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 8);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.count.to_le_bytes());
        out
    }

    /// Restores what [`BloomFilter::to_bytes`] wrote, or a bare bit array.
    ///
    /// # Errors
    /// A Lua error when the length matches neither form.
    pub fn restore(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        let size = self.data.len();
        if bytes.len() == size + 8 {
            self.data.copy_from_slice(&bytes[..size]);
            let mut count = [0u8; 8];
            count.copy_from_slice(&bytes[size..]);
            self.count = u64::from_le_bytes(count);
        } else if bytes.len() == size {
            self.data.copy_from_slice(bytes);
            // Estimated from the fraction of bits set: n ≈ −m/k · ln(1 − X/m).
            let set: u64 = self.data.iter().map(|b| u64::from(b.count_ones())).sum();
            let m = self.bits as f64;
            let fraction = (set as f64 / m).min(1.0 - 1.0 / m);
            self.count = (-(m / f64::from(self.hashes)) * (1.0 - fraction).ln()).round() as u64;
        } else {
            return Err(mlua::Error::runtime(format!(
                "fromstring() bytes found: {}, expected {size} or {}",
                bytes.len(),
                size + 8
            )));
        }
        Ok(())
    }
}

impl UserData for BloomFilter {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("add", |_, this, key: Value| {
            Ok(this.add(&key_bytes(&key, "add")?))
        });
        methods.add_method("query", |_, this, key: Value| {
            Ok(this.query(&key_bytes(&key, "query")?))
        });
        methods.add_method_mut("clear", |_, this, ()| {
            this.clear();
            Ok(())
        });
        // An integer, so that it prints as lua_sandbox's whole double did ("5", not "5.0").
        methods.add_method("count", |_, this, ()| {
            Ok(i64::try_from(this.count()).unwrap_or(i64::MAX))
        });
        methods.add_method_mut("fromstring", |_, this, text: mlua::LuaString| {
            this.restore(&text.as_bytes())
        });
    }
}

/// The `bloom_filter` module table.
///
/// # Errors
/// mlua's error if the table cannot be built.
pub(crate) fn module(lua: &Lua, host: &Rc<Host>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    let host = Rc::clone(host);
    module.raw_set(
        "new",
        lua.create_function(move |lua, (items, probability): (f64, f64)| {
            let (bits, _) = BloomFilter::shape(items, probability)?;
            let charge = Charge::take(lua, &host, BloomFilter::bytes_for(bits))?;
            lua.create_userdata(BloomFilter::new(items, probability, charge)?)
        })?,
    )?;
    Ok(module)
}

#[cfg(test)]
mod tests;
