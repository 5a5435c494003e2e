//! `hyperloglog`: the approximate number of distinct keys in a fixed 16 KiB (lua_sandbox's
//! module, which used Redis's HyperLogLog layout).
//!
//! ```text
//! require "hyperloglog"
//! local hll = hyperloglog.new()
//! hll:add(key) -> true if the estimate may have changed (a register grew)
//! hll:count() -> estimated distinct keys     hll:clear()     hll:merge(other_hll)
//! hll:fromstring(text)                        -- restore (preservation)
//! ```
//! Keys are strings or numbers (a number hashes as its IEEE double). 2^14 registers, each
//! holding the longest run of trailing zero bits + 1 seen among the keys that hash to it
//! (MurmurHash64A with Redis's seed); the estimate uses Ertl's improved estimator, standard
//! error 1.04/√16384 ≈ 0.81 %. Registers are one byte each in memory (16 KiB, charged to
//! `memory_limit`). `fromstring` and preservation use Redis's dense form: `"HYLL"`, the
//! encoding byte 0, three zero bytes, an 8-byte cached count (ignored), then 16384 6-bit
//! registers packed little-endian (12 304 bytes).

use std::rc::Rc;

use mlua::{AnyUserData, Lua, Table, UserData, UserDataMethods, Value};

use super::api::Host;
use super::native::{bad_argument, key_bytes, murmur64, Charge};

/// Index bits.
pub const P: u32 = 14;
/// Registers.
pub const REGISTERS: usize = 1 << P;
/// Hash bits left for the run length.
const Q: u32 = 64 - P;
/// Redis's MurmurHash64A seed.
const SEED: u64 = 0xadc8_3b19;
/// Header of the dense form.
const HEADER: usize = 16;
/// Bytes of the dense form.
pub const DENSE_BYTES: usize = HEADER + REGISTERS * 6 / 8;

/// One estimator.
#[derive(Debug)]
pub struct HyperLogLog {
    registers: Vec<u8>,
    _charge: Charge,
}

impl HyperLogLog {
    /// An empty estimator holding `charge`.
    pub fn new(charge: Charge) -> HyperLogLog {
        HyperLogLog {
            registers: vec![0; REGISTERS],
            _charge: charge,
        }
    }

    /// Bytes one estimator takes.
    pub const BYTES: usize = REGISTERS;

    /// Adds a key; true if its register grew.
    pub fn add(&mut self, key: &[u8]) -> bool {
        let hash = murmur64(key, SEED);
        let index = (hash & (REGISTERS as u64 - 1)) as usize;
        let rest = (hash >> P) | (1u64 << Q);
        let run = rest.trailing_zeros() as u8 + 1;
        if run > self.registers[index] {
            self.registers[index] = run;
            true
        } else {
            false
        }
    }

    /// Zeroes every register.
    pub fn clear(&mut self) {
        self.registers.fill(0);
    }

    /// Takes the larger register of each pair.
    pub fn merge(&mut self, other: &HyperLogLog) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// The estimate (Ertl, "New cardinality estimation algorithms for HyperLogLog
    /// sketches", 2017: the improved raw estimator, no empirical bias tables).
    pub fn count(&self) -> u64 {
        let m = REGISTERS as f64;
        let mut histogram = [0u32; Q as usize + 2];
        for &register in &self.registers {
            histogram[usize::from(register).min(Q as usize + 1)] += 1;
        }
        let q = Q as usize;
        let mut z = m * tau((m - f64::from(histogram[q + 1])) / m);
        for k in (1..=q).rev() {
            z = 0.5 * (z + f64::from(histogram[k]));
        }
        z += m * sigma(f64::from(histogram[0]) / m);
        let alpha = 0.5 / std::f64::consts::LN_2;
        (alpha * m * m / z).round() as u64
    }

    /// Redis's dense form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; DENSE_BYTES];
        out[..4].copy_from_slice(b"HYLL");
        let packed = &mut out[HEADER..];
        for (index, &register) in self.registers.iter().enumerate() {
            let bit = index * 6;
            let (byte, shift) = (bit / 8, bit % 8);
            let value = u16::from(register & 63) << shift;
            packed[byte] |= value as u8;
            if shift > 2 {
                packed[byte + 1] |= (value >> 8) as u8;
            }
        }
        out
    }

    /// Restores Redis's dense form.
    ///
    /// # Errors
    /// A Lua error when the text is not the dense form.
    pub fn restore(&mut self, bytes: &[u8]) -> mlua::Result<()> {
        if bytes.len() != DENSE_BYTES || &bytes[..4] != b"HYLL" || bytes[4] != 0 {
            return Err(mlua::Error::runtime(format!(
                "fromstring() expects the {DENSE_BYTES}-byte dense HYLL form, found {} bytes",
                bytes.len()
            )));
        }
        let packed = &bytes[HEADER..];
        for (index, register) in self.registers.iter_mut().enumerate() {
            let bit = index * 6;
            let (byte, shift) = (bit / 8, bit % 8);
            let low = u16::from(packed[byte]);
            let high = u16::from(packed.get(byte + 1).copied().unwrap_or(0));
            *register = (((low | (high << 8)) >> shift) & 63) as u8;
        }
        Ok(())
    }
}

/// σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k−1).
fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

/// τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))² 2^−k) / 3.
fn tau(mut x: f64) -> f64 {
    if x <= 0.0 || x >= 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

impl UserData for HyperLogLog {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method_mut("add", |_, this, key: Value| {
            Ok(this.add(&key_bytes(&key, "add")?))
        });
        // An integer, so that it prints as lua_sandbox's whole double did ("5", not "5.0").
        methods.add_method("count", |_, this, ()| {
            Ok(i64::try_from(this.count()).unwrap_or(i64::MAX))
        });
        methods.add_method_mut("clear", |_, this, ()| {
            this.clear();
            Ok(())
        });
        methods.add_function("merge", |_, (data, other): (AnyUserData, Value)| {
            let Value::UserData(other) = other else {
                return Err(bad_argument(1, "merge", "hyperloglog expected"));
            };
            if data.to_pointer() == other.to_pointer() {
                return Ok(());
            }
            let other = other
                .borrow::<HyperLogLog>()
                .map_err(|_| bad_argument(1, "merge", "hyperloglog expected"))?;
            data.borrow_mut::<HyperLogLog>()?.merge(&other);
            Ok(())
        });
        methods.add_method_mut("fromstring", |_, this, text: mlua::LuaString| {
            this.restore(&text.as_bytes())
        });
    }
}

/// The `hyperloglog` module table.
///
/// # Errors
/// mlua's error if the table cannot be built.
pub(crate) fn module(lua: &Lua, host: &Rc<Host>) -> mlua::Result<Table> {
    let module = lua.create_table()?;
    let host = Rc::clone(host);
    module.raw_set(
        "new",
        lua.create_function(move |lua, ()| {
            let charge = Charge::take(lua, &host, HyperLogLog::BYTES)?;
            lua.create_userdata(HyperLogLog::new(charge))
        })?,
    )?;
    Ok(module)
}

#[cfg(test)]
mod tests;
