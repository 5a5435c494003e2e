//! Filters: stages that read routed messages and inject new ones, on the core that owns
//! their state (see `runtime::filters` for how messages reach that core).
//!
//! The contract ([`crate::component`]): each filter kind is one module here owning its raw
//! config, its plan (a [`FilterKind`]) and its build on its host core, a [`Filter`]; what
//! every filter shares (matcher, host core, delivery) is planned once in [`plan`]; [`KINDS`]
//! lists them.
//!
//! A filter is driven synchronously: [`Filter::process`] for each message its matcher chose,
//! [`Filter::timer`] every `ticker_interval`, [`Filter::shutdown`] once at a clean stop.
//! Injected messages are appended to the caller's sink as records (`u32` little-endian
//! length, then Heka protobuf), which the runtime routes again on this core.

#[cfg(feature = "lua")]
pub mod manager;
pub mod plan;
pub mod record;
#[cfg(feature = "lua")]
pub mod sandbox;
pub mod slots;
pub mod stats;

use std::time::Duration;

use std::fmt;

use crate::component::Registration;
use crate::config::plan::{FilterPlan, GlobalPlan};
use crate::message::MessageView;

/// What a filter call produced: messages to route again, and stat records for a
/// StatAccumInput (`u16` LE filter index, `u32` LE length, the record).
#[derive(Debug, Default)]
pub struct Emitted {
    /// Injected messages to route again on this core, as [`injected_records`] (`u32` LE
    /// length, then Heka protobuf).
    pub inject: Vec<u8>,
    /// Stat records for StatAccumInputs, each a `u16` LE filter index then a record in the
    /// [`injected_records`] framing; read them with [`Emitted::stat_records`].
    pub stats: Vec<u8>,
}

impl Emitted {
    /// Empties both sinks, keeping their capacity.
    pub fn clear(&mut self) {
        self.inject.clear();
        self.stats.clear();
    }

    /// Appends a stat record for the accumulator with filter index `accumulator`.
    pub fn push_stat(&mut self, accumulator: u16, record: &[u8]) {
        self.stats.extend_from_slice(&accumulator.to_le_bytes());
        push_record(&mut self.stats, record);
    }

    /// The stat records: `(accumulator index, record)`.
    pub fn stat_records(&self) -> impl Iterator<Item = (u16, &[u8])> {
        let mut rest = self.stats.as_slice();
        std::iter::from_fn(move || {
            let (index, after) = rest.split_first_chunk::<2>()?;
            let record = injected_records(after).next()?;
            rest = &after[4 + record.len()..];
            Some((u16::from_le_bytes(*index), record))
        })
    }
}

/// What one call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded.
    Ok,
    /// A non-fatal failure, counted.
    Failed,
    /// The filter stopped for good; the message to route says why (Heka's
    /// `heka.sandbox-terminated`).
    Terminated(Vec<u8>),
    /// The message was not processed and is counted as dropped (a dynamic slot that has
    /// nothing loaded any more).
    Dropped,
}

/// Every filter kind, by the Heka type names that select it.
#[cfg(feature = "lua")]
pub static KINDS: &[Registration<FilterPlan>] = &[
    sandbox::REGISTRATION,
    manager::REGISTRATION,
    stats::COUNTER_REGISTRATION,
    stats::STAT_REGISTRATION,
    stats::STAT_ACCUM_REGISTRATION,
];
/// Every filter kind, by the Heka type names that select it.
#[cfg(not(feature = "lua"))]
pub static KINDS: &[Registration<FilterPlan>] = &[
    stats::COUNTER_REGISTRATION,
    stats::STAT_REGISTRATION,
    stats::STAT_ACCUM_REGISTRATION,
];

/// One filter kind's validated plan, and how its host core builds it.
pub trait FilterKind: crate::component::AsAny + fmt::Debug + Send + Sync {
    /// The Heka type name.
    fn type_name(&self) -> &'static str;

    /// Whether it takes stat records (a StatAccumInput).
    fn accumulates_stats(&self) -> bool {
        false
    }

    /// The StatAccumInput it sends stats to, if it does.
    fn stat_accumulator(&self) -> Option<&str> {
        None
    }

    /// The filters this one reserves right after itself in the plan (a SandboxManagerFilter's
    /// dynamic slots).
    fn dynamic_slots(&self, plan: &FilterPlan) -> Vec<FilterPlan> {
        let _ = plan;
        Vec::new()
    }

    /// For a dynamic slot: the board publishing its matcher, and its slot there. Routers
    /// evaluate that matcher instead of the plan's.
    fn slot_board(&self) -> Option<(&std::sync::Arc<slots::SlotBoard>, usize)> {
        None
    }

    /// Builds the filter on its host core.
    ///
    /// # Errors
    /// The filter cannot start (a Lua script that does not load, a filter it names that does
    /// not exist).
    fn build(&self, build: &FilterBuild<'_>) -> Result<Box<dyn Filter>, String>;
}

/// What a filter's build is given.
pub struct FilterBuild<'a> {
    /// Its section name.
    pub name: &'a str,
    /// The global plan: hostname, inject bounds and directories for the filter.
    pub global: &'a GlobalPlan,
    /// The index of the filter named so, if any (a StatFilter's StatAccumInput).
    pub filter_index: crate::component::FilterIndex<'a>,
    /// What filters built on this core share with each other, by name (a
    /// SandboxManagerFilter's state, which its slots run from).
    pub local: &'a LocalShare,
}

/// Per-core state filters on one core share, by the name of the filter that made it.
pub type LocalShare =
    std::cell::RefCell<std::collections::HashMap<String, std::rc::Rc<dyn std::any::Any>>>;

impl FilterBuild<'_> {
    /// How an aggregating filter stamps the messages it makes.
    pub fn stamp(&self) -> stats::Stamp {
        stats::Stamp {
            name: self.name.to_string(),
            hostname: self.global.hostname.clone(),
            pid: std::process::id() as i32,
        }
    }
}

/// One filter, driven synchronously on its host core.
pub trait Filter {
    /// Processes one message.
    fn process(&mut self, message: &MessageView<'_>, emitted: &mut Emitted) -> Outcome;

    /// Takes one stat record (StatAccumInput only; others count it as a failure).
    fn add_stat(&mut self, record: &[u8]) -> Outcome {
        let _ = record;
        Outcome::Failed
    }

    /// Runs the periodic event.
    fn timer(&mut self, now_ns: i64, emitted: &mut Emitted) -> Outcome {
        let _ = (now_ns, emitted);
        Outcome::Ok
    }

    /// The clean-stop hook (a Lua filter's last timer event if configured, preservation; an
    /// accumulator's last rollup).
    fn shutdown(&mut self, now_ns: i64, emitted: &mut Emitted) {
        let _ = (now_ns, emitted);
    }

    /// Time between timer events, if any.
    fn ticker_interval(&self) -> Option<Duration> {
        None
    }

    /// A sandboxed filter's resource use, published as gauges by its host.
    fn sandbox_usage(&self) -> Option<SandboxUsage> {
        None
    }
}

/// What a Lua filter's state uses (Heka's Memory, MaxInstructions, MaxOutput).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxUsage {
    /// Bytes of Lua state after the last call.
    pub memory_bytes: u64,
    /// The most instructions one call used.
    pub instructions_max: u64,
    /// The largest payload buffer or injected message, in bytes.
    pub output_bytes_max: u64,
}

impl SandboxUsage {
    /// Sets the `sandbox_*` gauges of `plugin` on `core` to this use.
    pub fn publish(&self, telemetry: &crate::telemetry::Telemetry, core: usize, plugin: usize) {
        use crate::telemetry::Metric;
        telemetry.set(core, plugin, Metric::SandboxMemory, self.memory_bytes);
        telemetry.set(
            core,
            plugin,
            Metric::SandboxInstructionsMax,
            self.instructions_max,
        );
        telemetry.set(
            core,
            plugin,
            Metric::SandboxOutputMax,
            self.output_bytes_max,
        );
    }
}

/// Iterates the records that a call appended to the caller's sink: each record is a
/// little-endian `u32` length followed by that many bytes of Heka protobuf.
pub fn injected_records(sink: &[u8]) -> InjectedRecords<'_> {
    InjectedRecords { rest: sink }
}

/// Iterator returned by [`injected_records`]. A truncated tail ends the iteration.
pub struct InjectedRecords<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for InjectedRecords<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (length, rest) = self.rest.split_first_chunk::<4>()?;
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            self.rest = &[];
            return None;
        }
        let (record, rest) = rest.split_at(length);
        self.rest = rest;
        Some(record)
    }
}

/// Appends `record` to `sink` in the [`injected_records`] framing.
pub fn push_record(sink: &mut Vec<u8>, record: &[u8]) {
    sink.extend_from_slice(&(record.len() as u32).to_le_bytes());
    sink.extend_from_slice(record);
}
