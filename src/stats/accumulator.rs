//! StatAccumInput: folds [`Stat`]s into per-name state and, every `ticker_interval`, rolls
//! them up into the graphite lines and fields of a `heka.statmetric` message, as Heka does.
//!
//! One accumulator lives on one core; stats from other cores reach it as records
//! (`statsd::encode_stat`) over the runtime's rings. [`Accumulator::add`] is the per-stat
//! path: a lookup in a sorted map and an update, with no allocation once the name is known.
//! [`Accumulator::flush_into`] runs once per interval and writes a [`Rollup`]; and
//! [`encode_statmetric`] turns the rollup into one or more protobuf messages.
//!
//! The rollup, in this order, names sorted bytewise within each kind (`<g>` is
//! `global_prefix`, `<c>`, `<t>`, `<ga>`, `<s>`, `<sd>` the other prefixes, each followed by a
//! `.` unless empty or already ending in one; `%f` is six decimals; `ts` is `now` in whole
//! seconds):
//!
//! ```text
//! counters, legacy_namespaces = false (default):
//!     <g>.<c>.<name>.rate   %f (count / ticker_interval)      field: double
//!     <g>.<c>.<name>.count  integer                          field: integer
//! counters, legacy_namespaces = true:
//!     <g>.<name>            %f rate                          field: integer (rate truncated)
//!     stats_counts.<name>   integer count                    field: integer
//! gauges:    <g>.<ga>.<name>  %f
//! timers:    <g>.<t>.<name>.count (integer), .count_ps, .lower, .upper, .sum, .mean, and per
//!            percent threshold N: .mean_N, .upper_N (all %f)
//! sets:      <g>.<s>.<name>.count  integer distinct members (gyges; Heka had no sets)
//! last:      <sd>.numStats (legacy) or <g>.<sd>.numStats: integer, the stats emitted
//! ```
//!
//! Each payload line is `name value ts\n`. With `emit_in_fields` the message carries a
//! `timestamp` integer field (the same seconds) first, then one field per line with the same
//! name, an empty representation, and an integer or double value as noted.
//!
//! The rules, from Heka: a counter adds `trunc(value * (1 / sample_rate))` in single precision
//! per stat; timer `count` is the number of samples (sample rates do not scale it); percentile
//! `N` keeps the lowest `n - round((100 - N) / 100 * n)` sorted samples (round half up) and
//! reports their mean and largest, or the overall lower and upper when none are kept. Without
//! `delete_idle_stats` every stat seen is emitted each interval: idle counters and timers as
//! zeros, idle gauges with their last value; with it, only stats updated in the interval are
//! emitted, and a gauge starts again from nothing.
//!
//! Bounds: see [`crate::limits`] (`STATS_PER_ACCUMULATOR_MAX`, `SET_MEMBERS_MAX`,
//! `TIMER_SAMPLES_MAX`, `TIMER_SAMPLES_TOTAL_MAX`); each overflow is counted in
//! [`AccumulatorStats`].

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;

use super::statsd::{Stat, StatKind, StatValue};
use super::{message_bytes, put_float_fixed, put_int, put_message, InjectHeaders};
use crate::limits::{
    SET_MEMBERS_MAX, STATS_PER_ACCUMULATOR_MAX, TIMER_SAMPLES_MAX, TIMER_SAMPLES_TOTAL_MAX,
};
use crate::message::wire;

/// The options of a StatAccumInput, checked (see `stats::config::StatAccumInput`).
#[derive(Clone, Debug, PartialEq)]
pub struct AccumulatorSettings {
    /// Seconds between rollups; rates are per second over this interval. At least 1.
    pub ticker_interval_seconds: u32,
    /// Write graphite lines into the Payload.
    pub emit_in_payload: bool,
    /// Write one field per line.
    pub emit_in_fields: bool,
    /// Percentiles computed for timers, each in 0..=100.
    pub percent_thresholds: Vec<u8>,
    /// The message Type of the rollup message.
    pub message_type: String,
    /// Counters as `<global>.<name>` (rate) and `stats_counts.<name>` (count).
    pub legacy_namespaces: bool,
    /// The first part of most line names (`<g>` in the module docs; default `stats`).
    pub global_prefix: String,
    /// The part after `<g>` in counters' names (`<c>`, default `counters`); unused with
    /// `legacy_namespaces`.
    pub counter_prefix: String,
    /// The part after `<g>` in timers' names (`<t>`, default `timers`).
    pub timer_prefix: String,
    /// The part after `<g>` in gauges' names (`<ga>`, default `gauges`).
    pub gauge_prefix: String,
    /// Sets' prefix (gyges; statsd's `prefixSet`).
    pub set_prefix: String,
    /// The prefix of `numStats`.
    pub statsd_prefix: String,
    /// Emit only the stats updated during the interval.
    pub delete_idle_stats: bool,
}

impl Default for AccumulatorSettings {
    /// Heka's defaults.
    fn default() -> Self {
        AccumulatorSettings {
            ticker_interval_seconds: 10,
            emit_in_payload: true,
            emit_in_fields: false,
            percent_thresholds: vec![90],
            message_type: "heka.statmetric".into(),
            legacy_namespaces: false,
            global_prefix: "stats".into(),
            counter_prefix: "counters".into(),
            timer_prefix: "timers".into(),
            gauge_prefix: "gauges".into(),
            set_prefix: "sets".into(),
            statsd_prefix: "statsd".into(),
            delete_idle_stats: false,
        }
    }
}

/// Appends `name` as a namespace level: `name.` unless it is empty or already ends in `.`.
fn push_namespace(out: &mut Vec<u8>, name: &[u8]) {
    out.extend_from_slice(name);
    if !name.is_empty() && !name.ends_with(b".") {
        out.push(b'.');
    }
}

fn namespace(parent: &[u8], name: &str) -> Vec<u8> {
    let mut out = parent.to_vec();
    push_namespace(&mut out, name.as_bytes());
    out
}

/// The full prefixes, resolved once.
#[derive(Debug)]
struct Namespaces {
    global: Vec<u8>,
    counters: Vec<u8>,
    timers: Vec<u8>,
    gauges: Vec<u8>,
    sets: Vec<u8>,
    stats_counts: Vec<u8>,
    statsd: Vec<u8>,
}

impl Namespaces {
    fn new(settings: &AccumulatorSettings) -> Namespaces {
        let global = namespace(b"", &settings.global_prefix);
        let statsd_parent: &[u8] = if settings.legacy_namespaces {
            b""
        } else {
            &global
        };
        Namespaces {
            counters: namespace(&global, &settings.counter_prefix),
            timers: namespace(&global, &settings.timer_prefix),
            gauges: namespace(&global, &settings.gauge_prefix),
            sets: namespace(&global, &settings.set_prefix),
            stats_counts: namespace(b"", "stats_counts"),
            statsd: namespace(statsd_parent, &settings.statsd_prefix),
            global,
        }
    }
}

#[derive(Debug, Default)]
struct CounterState {
    count: i64,
    touched: bool,
}

#[derive(Debug, Default)]
struct GaugeState {
    value: f64,
    touched: bool,
}

#[derive(Debug, Default)]
struct TimerState {
    /// Every sample of the interval, or a uniform reservoir of them once bounded.
    samples: Vec<f64>,
    /// Exact, whatever was kept.
    count: u64,
    sum: f64,
    lower: f64,
    upper: f64,
    touched: bool,
}

#[derive(Debug, Default)]
struct SetState {
    /// Hashes of the distinct members (64-bit keyed hashes: collisions are negligible).
    members: HashSet<u64>,
    touched: bool,
}

/// Why [`Accumulator::add`] did not take a stat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    /// The stat has a new name and the accumulator already holds `STATS_PER_ACCUMULATOR_MAX` stats:
    /// dropped and counted.
    #[error("the accumulator already holds the most distinct stats it may")]
    Full,
    /// A set stat without a member, or another kind without a number.
    #[error("a set stat needs a member and the others a number")]
    WrongValue,
}

impl AddError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            AddError::Full => "stats_full",
            AddError::WrongValue => "wrong_value",
        }
    }
}

/// What an accumulator has counted since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccumulatorStats {
    /// Stats folded in.
    pub stats_added: u64,
    /// Stats with a new name refused because `STATS_PER_ACCUMULATOR_MAX` were held.
    pub stats_dropped_full: u64,
    /// New set members refused because the set held `SET_MEMBERS_MAX`.
    pub set_members_dropped: u64,
    /// Timer samples that went through the reservoir rather than being kept outright.
    pub timer_samples_sampled: u64,
    /// Rollup entries too large for a message on their own, dropped by `encode_statmetric`.
    pub entries_dropped_oversize: u64,
}

/// StatAccumInput's state: every stat seen, by kind and name.
#[derive(Debug)]
pub struct Accumulator {
    settings: AccumulatorSettings,
    names: Namespaces,
    counters: BTreeMap<Box<[u8]>, CounterState>,
    gauges: BTreeMap<Box<[u8]>, GaugeState>,
    timers: BTreeMap<Box<[u8]>, TimerState>,
    sets: BTreeMap<Box<[u8]>, SetState>,
    /// Entries across the four maps.
    distinct: usize,
    /// Samples kept across all timers.
    timer_samples_total: usize,
    rng: fastrand::Rng,
    member_hasher: RandomState,
    stats: AccumulatorStats,
}

/// Updates the state of `name` with `update`, inserting a fresh state first if the name is
/// new and there is room. A known name costs one lookup and no allocation (the entry API
/// would need an owned key for every call).
fn upsert<T: Default>(
    map: &mut BTreeMap<Box<[u8]>, T>,
    name: &[u8],
    distinct: &mut usize,
    update: impl FnOnce(&mut T),
) -> Result<(), AddError> {
    if let Some(state) = map.get_mut(name) {
        update(state);
        return Ok(());
    }
    if *distinct >= STATS_PER_ACCUMULATOR_MAX {
        return Err(AddError::Full);
    }
    *distinct += 1;
    update(map.entry(name.into()).or_default());
    Ok(())
}

impl Accumulator {
    /// An empty accumulator. `settings` are trusted to be checked (config does it); a zero
    /// interval is read as one second.
    pub fn new(settings: AccumulatorSettings) -> Accumulator {
        Accumulator::with_seed(settings, fastrand::u64(..))
    }

    /// As [`Accumulator::new`], with the reservoir's randomness seeded (tests).
    pub fn with_seed(mut settings: AccumulatorSettings, seed: u64) -> Accumulator {
        settings.ticker_interval_seconds = settings.ticker_interval_seconds.max(1);
        Accumulator {
            names: Namespaces::new(&settings),
            settings,
            counters: BTreeMap::new(),
            gauges: BTreeMap::new(),
            timers: BTreeMap::new(),
            sets: BTreeMap::new(),
            distinct: 0,
            timer_samples_total: 0,
            rng: fastrand::Rng::with_seed(seed),
            member_hasher: RandomState::new(),
            stats: AccumulatorStats::default(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &AccumulatorSettings {
        &self.settings
    }

    /// Counts so far.
    pub fn stats(&self) -> AccumulatorStats {
        self.stats
    }

    /// Distinct stats held.
    pub fn len(&self) -> usize {
        self.distinct
    }

    /// Whether no stat is held.
    pub fn is_empty(&self) -> bool {
        self.distinct == 0
    }

    /// Folds one stat in.
    ///
    /// # Errors
    /// [`AddError::Full`] for a new name past `STATS_PER_ACCUMULATOR_MAX`, and
    /// [`AddError::WrongValue`] for a set without a member or a number stat without a number.
    /// Both are counted and leave the state as it was.
    pub fn add(&mut self, stat: &Stat<'_>) -> Result<(), AddError> {
        let result = self.add_inner(stat);
        match result {
            Ok(()) => self.stats.stats_added += 1,
            Err(AddError::Full) => self.stats.stats_dropped_full += 1,
            Err(AddError::WrongValue) => {}
        }
        result
    }

    fn add_inner(&mut self, stat: &Stat<'_>) -> Result<(), AddError> {
        let distinct = &mut self.distinct;
        match (stat.kind, stat.value) {
            (StatKind::Counter, StatValue::Number(value)) => {
                // Heka: int(float32(value) * (1 / sampling)), all in single precision.
                let delta = (value as f32 * (1.0f32 / stat.sample_rate)) as i64;
                upsert(&mut self.counters, stat.name, distinct, |counter| {
                    counter.count = counter.count.saturating_add(delta);
                    counter.touched = true;
                })
            }
            (StatKind::Gauge | StatKind::GaugeDelta, StatValue::Number(value)) => {
                let absolute = stat.kind == StatKind::Gauge;
                upsert(&mut self.gauges, stat.name, distinct, |gauge| {
                    gauge.value = if absolute { value } else { gauge.value + value };
                    gauge.touched = true;
                })
            }
            (StatKind::Timer, StatValue::Number(value)) => {
                let total = &mut self.timer_samples_total;
                let rng = &mut self.rng;
                let sampled = &mut self.stats.timer_samples_sampled;
                upsert(&mut self.timers, stat.name, distinct, |timer| {
                    if !timer_add(timer, value, total, rng) {
                        *sampled += 1;
                    }
                })
            }
            (StatKind::Set, StatValue::Member(member)) => {
                let hash = self.member_hasher.hash_one(member);
                let dropped = &mut self.stats.set_members_dropped;
                upsert(&mut self.sets, stat.name, distinct, |set| {
                    set.touched = true;
                    if set.members.len() >= SET_MEMBERS_MAX && !set.members.contains(&hash) {
                        *dropped += 1;
                    } else {
                        set.members.insert(hash);
                    }
                })
            }
            _ => Err(AddError::WrongValue),
        }
    }

    /// Rolls the interval up into a fresh [`Rollup`]. See [`Accumulator::flush_into`].
    pub fn flush(&mut self, now_ns: i64) -> Rollup {
        let mut rollup = Rollup::new();
        self.flush_into(now_ns, &mut rollup);
        rollup
    }

    /// Rolls the interval up into `rollup` (cleared first, its buffers reused) and starts the
    /// next interval: counters to zero, timers and sets emptied, idle stats removed when
    /// `delete_idle_stats`. `now_ns` gives the lines' timestamp, in whole seconds.
    pub fn flush_into(&mut self, now_ns: i64, rollup: &mut Rollup) {
        let timestamp_seconds = now_ns.div_euclid(1_000_000_000);
        rollup.begin(
            timestamp_seconds,
            self.settings.emit_in_payload,
            self.settings.emit_in_fields,
        );
        let delete_idle = self.settings.delete_idle_stats;
        let interval = f64::from(self.settings.ticker_interval_seconds);
        let legacy = self.settings.legacy_namespaces;
        let names = &self.names;
        let mut emitted = 0i64;
        let mut removed = 0usize;

        self.counters.retain(|name, counter| {
            if delete_idle && !counter.touched {
                removed += 1;
                return false;
            }
            let rate = counter.count as f64 / interval;
            if legacy {
                rollup.emit_split(
                    &[&names.global, name],
                    Number::Float(rate),
                    Number::Int(rate as i64),
                );
                rollup.emit(&[&names.stats_counts, name], Number::Int(counter.count));
            } else {
                let key = rollup.key(&names.counters, name);
                rollup.emit(&[key.as_slice(), b"rate"], Number::Float(rate));
                rollup.emit(&[key.as_slice(), b"count"], Number::Int(counter.count));
                rollup.key_done(key);
            }
            *counter = CounterState::default();
            emitted += 1;
            true
        });

        self.gauges.retain(|name, gauge| {
            if delete_idle && !gauge.touched {
                removed += 1;
                return false;
            }
            rollup.emit(&[&names.gauges, name], Number::Float(gauge.value));
            gauge.touched = false;
            if delete_idle {
                // Heka deletes the gauge here: a later relative change starts from zero.
                gauge.value = 0.0;
            }
            emitted += 1;
            true
        });

        let thresholds = &self.settings.percent_thresholds;
        let total = &mut self.timer_samples_total;
        self.timers.retain(|name, timer| {
            if delete_idle && !timer.touched {
                *total -= timer.samples.len();
                removed += 1;
                return false;
            }
            let key = rollup.key(&names.timers, name);
            emit_timer(rollup, &key, timer, interval, thresholds);
            rollup.key_done(key);
            *total -= timer.samples.len();
            timer_reset(timer);
            emitted += 1;
            true
        });

        self.sets.retain(|name, set| {
            if delete_idle && !set.touched {
                removed += 1;
                return false;
            }
            let key = rollup.key(&names.sets, name);
            rollup.emit(
                &[key.as_slice(), b"count"],
                Number::Int(set.members.len() as i64),
            );
            rollup.key_done(key);
            set.members.clear();
            set.touched = false;
            emitted += 1;
            true
        });

        rollup.emit(&[&names.statsd, b"numStats"], Number::Int(emitted));
        rollup.stats_count = emitted as u64;
        self.distinct -= removed;
    }
}

/// Adds a sample; returns whether it was kept outright (rather than through the reservoir).
fn timer_add(
    timer: &mut TimerState,
    value: f64,
    total: &mut usize,
    rng: &mut fastrand::Rng,
) -> bool {
    timer.count += 1;
    timer.sum += value;
    if timer.count == 1 {
        timer.lower = value;
        timer.upper = value;
    } else {
        timer.lower = timer.lower.min(value);
        timer.upper = timer.upper.max(value);
    }
    timer.touched = true;
    if timer.samples.len() < TIMER_SAMPLES_MAX && *total < TIMER_SAMPLES_TOTAL_MAX {
        timer.samples.push(value);
        *total += 1;
        return true;
    }
    // Reservoir sampling (Vitter's algorithm R): the n-th sample replaces a kept one with
    // probability kept / n, which keeps every sample equally likely to be held.
    let slot = rng.u64(..timer.count);
    if let Some(kept) = usize::try_from(slot)
        .ok()
        .and_then(|slot| timer.samples.get_mut(slot))
    {
        *kept = value;
    }
    false
}

/// Starts a timer's next interval, giving back memory a burst left behind: capacity is kept
/// within twice what the interval used.
fn timer_reset(timer: &mut TimerState) {
    let used = timer.samples.len();
    timer.samples.clear();
    if timer.samples.capacity() > 2 * used + 64 {
        timer.samples.shrink_to(used);
    }
    timer.count = 0;
    timer.sum = 0.0;
    timer.lower = 0.0;
    timer.upper = 0.0;
    timer.touched = false;
}

/// Sums in order from the first element, as a running cumulative sum does.
fn sum_in_order(values: &[f64]) -> f64 {
    let mut iter = values.iter();
    let first = iter.next().copied().unwrap_or(0.0);
    iter.fold(first, |sum, value| sum + value)
}

/// The figures of one timer's interval.
#[derive(Clone, Debug, PartialEq)]
struct TimerFigures {
    count: u64,
    lower: f64,
    upper: f64,
    sum: f64,
    mean: f64,
}

/// Sorts the samples and computes count, lower, upper, sum and mean. When every sample was
/// kept, lower, upper and sum come from the sorted samples, as in Heka; otherwise from the
/// exact running figures.
fn timer_figures(timer: &mut TimerState) -> TimerFigures {
    if timer.count == 0 {
        return TimerFigures {
            count: 0,
            lower: 0.0,
            upper: 0.0,
            sum: 0.0,
            mean: 0.0,
        };
    }
    timer.samples.sort_unstable_by(f64::total_cmp);
    let complete = timer.samples.len() as u64 == timer.count;
    let (lower, upper, sum) = match (complete, timer.samples.first(), timer.samples.last()) {
        (true, Some(&lower), Some(&upper)) => (lower, upper, sum_in_order(&timer.samples)),
        _ => (timer.lower, timer.upper, timer.sum),
    };
    TimerFigures {
        count: timer.count,
        lower,
        upper,
        sum,
        mean: sum / timer.count as f64,
    }
}

/// Heka's percentile `percent` over sorted `samples`: `(mean, upper)` of the lowest
/// `n - round((100 - percent) / 100 * n)` samples, or `(lower, upper)` when that is none.
fn percentile(samples: &[f64], percent: u8, figures: &TimerFigures) -> (f64, f64) {
    if figures.count == 0 {
        return (0.0, 0.0);
    }
    if samples.is_empty() {
        // Nothing kept (the total bound was reached): the whole interval stands in.
        return (figures.mean, figures.upper);
    }
    let count = samples.len();
    let outside = ((100.0 - f64::from(percent)) / 100.0) * count as f64;
    let within = count as i64 - (outside + 0.5).floor() as i64;
    match usize::try_from(within) {
        Ok(within) if within > 0 => {
            let kept = &samples[..within.min(count)];
            let mean = sum_in_order(kept) / kept.len() as f64;
            (mean, kept.last().copied().unwrap_or(figures.upper))
        }
        _ => (figures.lower, figures.upper),
    }
}

fn emit_timer(
    rollup: &mut Rollup,
    key: &[u8],
    timer: &mut TimerState,
    interval: f64,
    thresholds: &[u8],
) {
    let figures = timer_figures(timer);
    rollup.emit(&[key, b"count"], Number::Int(figures.count as i64));
    rollup.emit(
        &[key, b"count_ps"],
        Number::Float(figures.count as f64 / interval),
    );
    rollup.emit(&[key, b"lower"], Number::Float(figures.lower));
    rollup.emit(&[key, b"upper"], Number::Float(figures.upper));
    rollup.emit(&[key, b"sum"], Number::Float(figures.sum));
    rollup.emit(&[key, b"mean"], Number::Float(figures.mean));
    for &percent in thresholds {
        let (mean, upper) = percentile(&timer.samples, percent, &figures);
        let mut suffix = [0u8; 9];
        let mean_name = threshold_name(&mut suffix, b"mean_", percent);
        rollup.emit(&[key, mean_name], Number::Float(mean));
        let mut suffix = [0u8; 9];
        let upper_name = threshold_name(&mut suffix, b"upper_", percent);
        rollup.emit(&[key, upper_name], Number::Float(upper));
    }
}

/// Writes `mean_90`-style names into a stack buffer.
fn threshold_name<'b>(buffer: &'b mut [u8; 9], stem: &[u8], percent: u8) -> &'b [u8] {
    let mut len = stem.len();
    buffer[..len].copy_from_slice(stem);
    let digits = [percent / 100, percent / 10 % 10, percent % 10];
    let first = if percent >= 100 {
        0
    } else if percent >= 10 {
        1
    } else {
        2
    };
    for &digit in &digits[first..] {
        buffer[len] = b'0' + digit;
        len += 1;
    }
    &buffer[..len]
}

/// A value in a rollup line.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Number {
    /// Printed in decimal; an integer field.
    Int(i64),
    /// Printed `%f`; a double field.
    Float(f64),
}

/// Where one emitted line (and its field) ends in the rollup's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    payload_end: usize,
    fields_end: usize,
}

/// One interval's rollup: graphite lines and encoded fields, ready to become messages.
#[derive(Debug, Default)]
pub struct Rollup {
    payload: Vec<u8>,
    /// Encoded top-level field entries (tag 10), the `timestamp` field first.
    fields: Vec<u8>,
    /// Where the `timestamp` field ends in `fields` (0 without fields).
    timestamp_field_end: usize,
    entries: Vec<Entry>,
    timestamp_seconds: i64,
    stats_count: u64,
    emit_in_payload: bool,
    emit_in_fields: bool,
    /// Scratch for a line's name.
    name: Vec<u8>,
    /// Spare key buffers, recycled by `key` and `key_done`.
    spare_keys: Vec<Vec<u8>>,
}

impl Rollup {
    /// An empty rollup.
    pub fn new() -> Rollup {
        Rollup::default()
    }

    /// The graphite lines, `name value timestamp\n` each (empty unless `emit_in_payload`).
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The lines' timestamp, in seconds since the epoch.
    pub fn timestamp_seconds(&self) -> i64 {
        self.timestamp_seconds
    }

    /// The stats emitted (the `numStats` value).
    pub fn stats_count(&self) -> u64 {
        self.stats_count
    }

    /// Lines emitted, `numStats` included.
    pub fn lines(&self) -> usize {
        self.entries.len()
    }

    fn begin(&mut self, timestamp_seconds: i64, emit_in_payload: bool, emit_in_fields: bool) {
        self.payload.clear();
        self.fields.clear();
        self.entries.clear();
        self.timestamp_seconds = timestamp_seconds;
        self.stats_count = 0;
        self.emit_in_payload = emit_in_payload;
        self.emit_in_fields = emit_in_fields;
        if emit_in_fields {
            put_field(
                &mut self.fields,
                b"timestamp",
                Number::Int(timestamp_seconds),
            );
        }
        self.timestamp_field_end = self.fields.len();
    }

    /// `prefix` then `name` as a namespace level, in a recycled buffer.
    fn key(&mut self, prefix: &[u8], name: &[u8]) -> Vec<u8> {
        let mut key = self.spare_keys.pop().unwrap_or_default();
        key.clear();
        key.extend_from_slice(prefix);
        push_namespace(&mut key, name);
        key
    }

    fn key_done(&mut self, key: Vec<u8>) {
        self.spare_keys.push(key);
    }

    /// One line and one field, with the same value.
    fn emit(&mut self, name: &[&[u8]], value: Number) {
        self.emit_split(name, value, value);
    }

    /// One line printing `payload_value` and one field holding `field_value`.
    fn emit_split(&mut self, name: &[&[u8]], payload_value: Number, field_value: Number) {
        self.name.clear();
        for part in name {
            self.name.extend_from_slice(part);
        }
        if self.emit_in_payload {
            let payload = &mut self.payload;
            payload.extend_from_slice(&self.name);
            payload.push(b' ');
            match payload_value {
                Number::Int(value) => put_int(payload, value),
                Number::Float(value) => put_float_fixed(payload, value, 6),
            }
            payload.push(b' ');
            put_int(payload, self.timestamp_seconds);
            payload.push(b'\n');
        }
        if self.emit_in_fields {
            put_field(&mut self.fields, &self.name, field_value);
        }
        self.entries.push(Entry {
            payload_end: self.payload.len(),
            fields_end: self.fields.len(),
        });
    }

    /// Where entry `index` starts.
    fn entry_start(&self, index: usize) -> Entry {
        match index
            .checked_sub(1)
            .and_then(|previous| self.entries.get(previous))
        {
            Some(previous) => *previous,
            None => Entry {
                payload_end: 0,
                fields_end: self.timestamp_field_end,
            },
        }
    }
}

/// Appends a top-level field entry as Heka's `message.NewField(name, value, "")` encodes it:
/// name, value type, an empty representation, and a packed one-value array.
fn put_field(out: &mut Vec<u8>, name: &[u8], value: Number) {
    const VALUE_TYPE_INTEGER: i64 = 2;
    const VALUE_TYPE_DOUBLE: i64 = 3;
    let (value_type, value_bytes) = match value {
        Number::Int(value) => (VALUE_TYPE_INTEGER, wire::varint_len(value as u64)),
        Number::Float(_) => (VALUE_TYPE_DOUBLE, 8),
    };
    let name_bytes = 1 + wire::varint_len(name.len() as u64) + name.len();
    let submessage_bytes = name_bytes + 2 + 2 + 1 + 1 + value_bytes;
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, submessage_bytes as u64);
    wire::put_bytes(out, 1, name);
    wire::put_int(out, 2, value_type);
    wire::put_bytes(out, 3, b"");
    match value {
        Number::Int(value) => {
            wire::put_key(out, 6, wire::WIRE_LEN);
            wire::put_varint(out, value_bytes as u64);
            wire::put_varint(out, value as u64);
        }
        Number::Float(value) => {
            wire::put_key(out, 7, wire::WIRE_LEN);
            wire::put_varint(out, 8);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// What [`encode_statmetric`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeOutcome {
    /// Messages handed to `emit`.
    pub messages: usize,
    /// Lines that did not fit in a message on their own and were dropped.
    pub lines_dropped: usize,
}

/// Encodes `rollup` as `heka.statmetric` messages (Heka protobuf bytes) and hands each to
/// `emit`. Headers: Uuid, Timestamp, Type, Logger, Payload, Pid, Hostname as in `headers`
/// (the Uuid of the second and later messages comes from `next_uuid`), then the fields.
///
/// Usually one message holds everything, as in Heka. A rollup larger than
/// `message_bytes_max` is split at line boundaries into several messages, each carrying the
/// `timestamp` field when fields are emitted; a single line too large for a message alone is
/// dropped and counted in the outcome. `out` is scratch (cleared per message).
pub fn encode_statmetric(
    rollup: &Rollup,
    headers: &InjectHeaders<'_>,
    mut next_uuid: impl FnMut() -> [u8; 16],
    message_bytes_max: usize,
    out: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) -> EncodeOutcome {
    let mut outcome = EncodeOutcome::default();
    // The Uuid changes per message but not the size: sizes are computed on a copy.
    let sizing = *headers;
    let mut headers = *headers;
    let timestamp_field = &rollup.fields[..rollup.timestamp_field_end];
    let size = |first: usize, last: usize| {
        let start = rollup.entry_start(first);
        let end = rollup.entries[last];
        let payload = end.payload_end - start.payload_end;
        let fields = end.fields_end - start.fields_end + timestamp_field.len();
        message_bytes(&sizing, payload, fields)
    };
    let mut first = 0;
    while first < rollup.entries.len() {
        if size(first, first) > message_bytes_max {
            outcome.lines_dropped += 1;
            first += 1;
            continue;
        }
        let mut last = first;
        while last + 1 < rollup.entries.len() && size(first, last + 1) <= message_bytes_max {
            last += 1;
        }
        let start = rollup.entry_start(first);
        let end = rollup.entries[last];
        if outcome.messages > 0 {
            headers.uuid = next_uuid();
        }
        out.clear();
        let fields = &rollup.fields[start.fields_end..end.fields_end];
        let payload = &rollup.payload[start.payload_end..end.payload_end];
        put_message(&headers, payload, &[timestamp_field, fields], out);
        emit(out);
        outcome.messages += 1;
        first = last + 1;
    }
    if rollup.entries.is_empty() {
        out.clear();
        put_message(&headers, b"", &[timestamp_field], out);
        emit(out);
        outcome.messages += 1;
    }
    outcome
}

#[cfg(test)]
mod tests;
