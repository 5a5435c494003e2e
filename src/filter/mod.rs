//! Filters: stages that read routed messages and inject new ones, on the core that owns
//! their state (see `runtime::filters` for how messages reach that core).
//!
//! A filter is driven synchronously: [`Filter::process`] for each message its matcher chose,
//! [`Filter::timer`] every `ticker_interval`, [`Filter::shutdown`] once at a clean stop.
//! Injected messages are appended to the caller's sink as records (`u32` little-endian
//! length, then Heka protobuf), which the runtime routes again on this core.

pub mod record;
#[cfg(feature = "lua")]
pub mod sandbox;
pub mod stats;

use std::time::Duration;

use crate::config::plan::{FilterKind, FilterPlan, GlobalPlan};
use crate::message::MessageView;

/// What a filter call produced: messages to route again, and stat records for a
/// StatAccumInput (`u16` LE filter index, `u32` LE length, the record).
#[derive(Debug, Default)]
pub struct Emitted {
    pub inject: Vec<u8>,
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
    Ok,
    /// A non-fatal failure, counted.
    Failed,
    /// The filter stopped for good; the message to route says why (Heka's
    /// `heka.sandbox-terminated`).
    Terminated(Vec<u8>),
}

/// One filter of any kind.
pub enum Filter {
    #[cfg(feature = "lua")]
    Sandbox(Box<sandbox::SandboxFilter>),
    Counter(Box<stats::Counter>),
    Stat(Box<stats::Stats>),
    StatAccum(Box<stats::StatAccum>),
}

impl Filter {
    /// Builds the filter a plan names, on the core that hosts it. `filter_index` finds other
    /// filters by name (a StatFilter's StatAccumInput).
    ///
    /// # Errors
    /// The filter cannot start (for a Lua filter: its script does not load).
    pub fn build(
        plan: &FilterPlan,
        global: &GlobalPlan,
        filter_index: impl Fn(&str) -> Option<usize>,
    ) -> Result<Filter, String> {
        let stamp = stats::Stamp {
            name: plan.name.clone(),
            hostname: global.hostname.clone(),
            pid: std::process::id() as i32,
        };
        match &plan.kind {
            #[cfg(feature = "lua")]
            FilterKind::Sandbox(config) => {
                let host = crate::config::plan::sandbox_host_info(global);
                sandbox::SandboxFilter::new(&plan.name, config, &host)
                    .map(|filter| Filter::Sandbox(Box::new(filter)))
                    .map_err(|error| error.to_string())
            }
            FilterKind::Counter { interval } => Ok(Filter::Counter(Box::new(stats::Counter::new(
                *interval, stamp,
            )))),
            FilterKind::Stat {
                metrics,
                accumulator,
            } => {
                let index = filter_index(accumulator)
                    .ok_or_else(|| format!("no StatAccumInput named `{accumulator}`"))?;
                stats::Stats::new(metrics, index as u16)
                    .map(|filter| Filter::Stat(Box::new(filter)))
            }
            FilterKind::StatAccum(settings) => Ok(Filter::StatAccum(Box::new(
                stats::StatAccum::new(settings.clone(), stamp, global.max_message_size),
            ))),
        }
    }

    /// Processes one message.
    pub fn process(&mut self, message: &MessageView<'_>, emitted: &mut Emitted) -> Outcome {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => match filter.process_message(message, &mut emitted.inject) {
                Ok(crate::sandbox::CallStatus::Failed) => Outcome::Failed,
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Terminated(filter.termination_message().unwrap_or_default()),
            },
            Filter::Counter(counter) => counter.process(),
            Filter::Stat(stats) => stats.process(message, emitted),
            // An accumulator takes stat records, not messages (its matcher is FALSE).
            Filter::StatAccum(_) => Outcome::Ok,
        }
    }

    /// Takes one stat record (StatAccumInput only).
    pub fn add_stat(&mut self, record: &[u8]) -> Outcome {
        match self {
            Filter::StatAccum(accumulator) => accumulator.add(record),
            _ => Outcome::Failed,
        }
    }

    /// Runs the periodic event.
    pub fn timer(&mut self, now_ns: i64, emitted: &mut Emitted) -> Outcome {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => match filter.timer_event(now_ns, &mut emitted.inject) {
                Ok(()) => Outcome::Ok,
                Err(_) => Outcome::Terminated(filter.termination_message().unwrap_or_default()),
            },
            Filter::Counter(counter) => counter.timer(now_ns, emitted),
            Filter::Stat(_) => Outcome::Ok,
            Filter::StatAccum(accumulator) => accumulator.timer(now_ns, emitted),
        }
    }

    /// The clean-stop hook (a Lua filter's last timer event if configured, preservation; an
    /// accumulator's last rollup).
    pub fn shutdown(&mut self, now_ns: i64, emitted: &mut Emitted) {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => {
                if let Err(error) = filter.shutdown(now_ns, &mut emitted.inject) {
                    tracing::error!(%error, "filter shutdown failed");
                }
            }
            Filter::StatAccum(accumulator) => {
                accumulator.timer(now_ns, emitted);
            }
            Filter::Counter(_) | Filter::Stat(_) => {}
        }
    }

    /// Time between timer events, if any.
    pub fn ticker_interval(&self) -> Option<Duration> {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => match filter.ticker_interval_s() {
                0 => None,
                seconds => Some(Duration::from_secs(seconds)),
            },
            Filter::Counter(counter) => Some(counter.interval()),
            Filter::Stat(_) => None,
            Filter::StatAccum(accumulator) => Some(accumulator.interval()),
        }
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
