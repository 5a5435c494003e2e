//! `cuckoo_filter`: set membership with deletion (lua_sandbox's module).
//!
//! ```text
//! require "cuckoo_filter"
//! local cf = cuckoo_filter.new(1 <= items <= 2^29)
//! cf:add(key) -> true if added, false if already present (or the filter is full)
//! cf:query(key) -> boolean    cf:delete(key) -> true if a copy was removed
//! cf:count() -> keys held     cf:clear()     cf:fromstring(text)   -- restore (preservation)
//! ```
//! Keys are strings or numbers. Buckets of four 16-bit fingerprints, the bucket count the
//! power of two at or above `items / 4`; a key lives in one of two buckets (partial-key
//! cuckoo hashing, MurmurHash64A). The false-positive rate is about 8 / 2^16 ≈ 0.012 % at
//! full load. When both buckets are full, stored fingerprints are moved to their other
//! bucket, up to 500 moves; a fingerprint left over then sits in a one-entry overflow slot,
//! and while that slot is taken further adds of new keys return false (the filter is full;
//! a `delete` frees room). Deleting a key that was never added may remove another key whose
//! fingerprint collides, as with every cuckoo filter. The table is native memory charged to
//! `memory_limit` at `new`.
//!
//! `fromstring`/preservation form: the fingerprints as little-endian 16-bit values, bucket
//! by bucket, then the overflow slot's fingerprint (2 bytes, 0 when free) and bucket
//! (8 bytes, little-endian).

use std::rc::Rc;

use mlua::{Lua, Table, UserData, UserDataMethods, Value};

use super::api::Host;
use super::native::{bad_argument, key_bytes, murmur64, Charge};

/// The most items a filter may be sized for.
pub const ITEMS_MAX: f64 = 536_870_912.0;
/// Fingerprints per bucket.
pub const BUCKET_SIZE: usize = 4;
/// Moves tried before a fingerprint goes to the overflow slot.
pub const KICKS_MAX: usize = 500;

const SEED: u64 = 0x3c6e_f372_fe94_f82b;
const STASH_BYTES: usize = 10;

/// One filter.
#[derive(Debug)]
pub struct CuckooFilter {
    items: u64,
    buckets: usize,
    slots: Vec<u16>,
    /// A fingerprint that found no room, with the bucket it was last meant for.
    stash: Option<(usize, u16)>,
    count: u64,
    _charge: Charge,
}

impl CuckooFilter {
    /// The bucket count for `items`.
    ///
    /// # Errors
    /// A Lua error when `items` is out of range.
    pub fn buckets_for(items: f64) -> mlua::Result<usize> {
        if !(1.0..=ITEMS_MAX).contains(&items) {
            return Err(bad_argument(1, "new", "items must be >= 1 and <= 2^29"));
        }
        let buckets = (items as u64)
            .div_ceil(BUCKET_SIZE as u64)
            .next_power_of_two();
        Ok(buckets as usize)
    }

    /// Bytes a filter of `buckets` buckets takes.
    pub fn bytes_for(buckets: usize) -> usize {
        buckets * BUCKET_SIZE * 2
    }

    /// An empty filter for `items` keys holding `charge`.
    ///
    /// # Errors
    /// As [`CuckooFilter::buckets_for`].
    pub fn new(items: f64, charge: Charge) -> mlua::Result<CuckooFilter> {
        let buckets = Self::buckets_for(items)?;
        Ok(CuckooFilter {
            items: items as u64,
            buckets,
            slots: vec![0; buckets * BUCKET_SIZE],
            stash: None,
            count: 0,
            _charge: charge,
        })
    }

    /// The items the filter was sized for.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// Fingerprints held.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The key's fingerprint (never 0, which marks an empty slot) and first bucket.
    fn locate(&self, key: &[u8]) -> (u16, usize) {
        let hash = murmur64(key, SEED);
        let fingerprint = ((hash >> 48) as u16).max(1);
        (fingerprint, (hash as usize) & (self.buckets - 1))
    }

    fn other(&self, bucket: usize, fingerprint: u16) -> usize {
        (bucket ^ murmur64(&fingerprint.to_le_bytes(), SEED) as usize) & (self.buckets - 1)
    }

    fn bucket(&mut self, bucket: usize) -> &mut [u16] {
        &mut self.slots[bucket * BUCKET_SIZE..(bucket + 1) * BUCKET_SIZE]
    }

    fn holds(&self, bucket: usize, fingerprint: u16) -> bool {
        self.slots[bucket * BUCKET_SIZE..(bucket + 1) * BUCKET_SIZE].contains(&fingerprint)
    }

    fn put(&mut self, bucket: usize, fingerprint: u16) -> bool {
        match self.bucket(bucket).iter_mut().find(|slot| **slot == 0) {
            Some(slot) => {
                *slot = fingerprint;
                true
            }
            None => false,
        }
    }

    fn take(&mut self, bucket: usize, fingerprint: u16) -> bool {
        match self
            .bucket(bucket)
            .iter_mut()
            .find(|slot| **slot == fingerprint)
        {
            Some(slot) => {
                *slot = 0;
                true
            }
            None => false,
        }
    }

    fn stashed(&self, first: usize, second: usize, fingerprint: u16) -> bool {
        matches!(self.stash, Some((bucket, stashed))
            if stashed == fingerprint && (bucket == first || bucket == second))
    }

    /// Whether the key's fingerprint is in one of its buckets.
    pub fn query(&self, key: &[u8]) -> bool {
        let (fingerprint, first) = self.locate(key);
        let second = self.other(first, fingerprint);
        self.holds(first, fingerprint)
            || self.holds(second, fingerprint)
            || self.stashed(first, second, fingerprint)
    }

    /// Adds a key not already present; see the module notes for a full filter.
    pub fn add(&mut self, key: &[u8]) -> bool {
        if self.query(key) || self.stash.is_some() {
            return false;
        }
        let (mut fingerprint, first) = self.locate(key);
        let second = self.other(first, fingerprint);
        self.count += 1;
        if self.put(first, fingerprint) || self.put(second, fingerprint) {
            return true;
        }
        let mut bucket = if fingerprint & 1 == 0 { first } else { second };
        let mut state = u64::from(fingerprint) | 1;
        for _ in 0..KICKS_MAX {
            // xorshift: which of the four to move, varied so that moves do not cycle.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let slot = bucket * BUCKET_SIZE + (state % BUCKET_SIZE as u64) as usize;
            std::mem::swap(&mut fingerprint, &mut self.slots[slot]);
            bucket = self.other(bucket, fingerprint);
            if self.put(bucket, fingerprint) {
                return true;
            }
        }
        self.stash = Some((bucket, fingerprint));
        true
    }

    /// Removes one copy of the key's fingerprint; true if one was found.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let (fingerprint, first) = self.locate(key);
        let second = self.other(first, fingerprint);
        let removed = if self.stashed(first, second, fingerprint) {
            self.stash = None;
            true
        } else {
            self.take(first, fingerprint) || self.take(second, fingerprint)
        };
        if removed {
            self.count = self.count.saturating_sub(1);
            // Room may have opened for the overflow fingerprint.
            if let Some((bucket, stashed)) = self.stash {
                let other = self.other(bucket, stashed);
                if self.put(bucket, stashed) || self.put(other, stashed) {
                    self.stash = None;
                }
            }
        }
        removed
    }

    /// Empties the filter.
    pub fn clear(&mut self) {
        self.slots.fill(0);
        self.stash = None;
        self.count = 0;
    }

    /// The preservation form (see the module notes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.slots.len() * 2 + STASH_BYTES);
        for slot in &self.slots {
            out.extend_from_slice(&slot.to_le_bytes());
        }
        let (bucket, fingerprint) = self.stash.unwrap_or((0, 0));
        out.extend_from_slice(&fingerprint.to_le_bytes());
        out.extend_from_slice(&(bucket as u64).to_le_bytes());
        out
    }

    /// Restores [`CuckooFilter::to_bytes`]'s form.
    ///
    /// # Errors
    /// A Lua error when the length or the overflow bucket does not fit this filter.
    pub fn restore(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        let expected = self.slots.len() * 2 + STASH_BYTES;
        if bytes.len() != expected {
            return Err(mlua::Error::runtime(format!(
                "fromstring() bytes found: {}, expected {expected}",
                bytes.len()
            )));
        }
        let (table, stash) = bytes.split_at(self.slots.len() * 2);
        let fingerprint = u16::from_le_bytes([stash[0], stash[1]]);
        let mut bucket = [0u8; 8];
        bucket.copy_from_slice(&stash[2..]);
        let bucket = u64::from_le_bytes(bucket);
        if fingerprint != 0 && bucket >= self.buckets as u64 {
            return Err(mlua::Error::runtime(
                "fromstring() overflow bucket out of range",
            ));
        }
        for (slot, pair) in self.slots.iter_mut().zip(table.chunks_exact(2)) {
            *slot = u16::from_le_bytes([pair[0], pair[1]]);
        }
        self.stash = (fingerprint != 0).then_some((bucket as usize, fingerprint));
        self.count = self.slots.iter().filter(|slot| **slot != 0).count() as u64
            + u64::from(self.stash.is_some());
        Ok(())
    }
}

impl UserData for CuckooFilter {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("add", |_, this, key: Value| {
            Ok(this.add(&key_bytes(&key, "add")?))
        });
        methods.add_method("query", |_, this, key: Value| {
            Ok(this.query(&key_bytes(&key, "query")?))
        });
        methods.add_method_mut("delete", |_, this, key: Value| {
            Ok(this.delete(&key_bytes(&key, "delete")?))
        });
        // An integer, so that it prints as lua_sandbox's whole double did ("5", not "5.0").
        methods.add_method("count", |_, this, ()| {
            Ok(i64::try_from(this.count()).unwrap_or(i64::MAX))
        });
        methods.add_method_mut("clear", |_, this, ()| {
            this.clear();
            Ok(())
        });
        methods.add_method_mut("fromstring", |_, this, text: mlua::LuaString| {
            this.restore(&text.as_bytes())
        });
    }
}

/// The `cuckoo_filter` module table.
///
/// # Errors
/// mlua's error if the table cannot be built.
pub(crate) fn module(lua: &Lua, host: &Rc<Host>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    let host = Rc::clone(host);
    module.raw_set(
        "new",
        lua.create_function(move |lua, items: f64| {
            let buckets = CuckooFilter::buckets_for(items)?;
            let charge = Charge::take(lua, &host, CuckooFilter::bytes_for(buckets))?;
            lua.create_userdata(CuckooFilter::new(items, charge)?)
        })?,
    )?;
    Ok(module)
}

#[cfg(test)]
mod tests;
