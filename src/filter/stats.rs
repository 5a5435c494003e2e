//! The built-in aggregations as filters: CounterFilter, StatFilter and StatAccumInput,
//! wrapping the pure logic of [`crate::stats`] for the filter host.
//!
//! StatAccumInput is an input in Heka's config, but it owns rollup state, so gyges hosts it
//! like a filter: StatsdInput (on every ingest core) and StatFilter (on its own host) send it
//! stat records over the filter lanes, and its ticker emits `heka.statmetric` messages.

use std::time::Duration;

use super::{push_record, Emitted, Outcome};
use crate::message::{MessageView, UuidSource};
use crate::stats::counter::{encode_counter_output, CounterFilter, COUNTER_OUTPUT_TYPE};
use crate::stats::stat_filter::{MetricSettings, StatFilter};
use crate::stats::{
    decode_stat, encode_stat, encode_statmetric, Accumulator, AccumulatorSettings, InjectHeaders,
    Rollup,
};

/// The daemon facts stamped on what these filters inject.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// The filter's section name, stamped as the Logger of what it injects.
    pub name: String,
    /// The daemon's hostname (the global section's `hostname`), stamped as the Hostname.
    pub hostname: String,
    /// The daemon's process id, stamped as the Pid.
    pub pid: i32,
}

/// CounterFilter: messages per interval, as `heka.counter-output`.
pub struct Counter {
    counter: CounterFilter,
    interval: Duration,
    stamp: Stamp,
    uuids: UuidSource,
    report: Vec<u8>,
    summary: Vec<u8>,
    message: Vec<u8>,
}

impl Counter {
    /// A counter reporting every `interval`.
    pub fn new(interval: Duration, stamp: Stamp) -> Counter {
        Counter {
            counter: CounterFilter::new(crate::message::now_ns()),
            interval,
            stamp,
            uuids: UuidSource::new(),
            report: Vec::new(),
            summary: Vec::new(),
            message: Vec::new(),
        }
    }

    fn count(&mut self) -> Outcome {
        self.counter.count();
        Outcome::Ok
    }

    pub(super) fn timer(&mut self, now_ns: i64, emitted: &mut Emitted) -> Outcome {
        let (report, summary) = self
            .counter
            .tick_into(now_ns, &mut self.report, &mut self.summary);
        for (due, payload) in [(report, &self.report), (summary, &self.summary)] {
            if !due {
                continue;
            }
            let headers = InjectHeaders {
                uuid: self.uuids.next_uuid(),
                timestamp_ns: now_ns,
                type_: COUNTER_OUTPUT_TYPE.as_bytes(),
                logger: self.stamp.name.as_bytes(),
                hostname: self.stamp.hostname.as_bytes(),
                pid: self.stamp.pid,
            };
            self.message.clear();
            encode_counter_output(&headers, payload, &mut self.message);
            push_record(&mut emitted.inject, &self.message);
        }
        Outcome::Ok
    }

    pub(super) fn interval(&self) -> Duration {
        self.interval
    }
}

/// StatFilter: stats extracted from messages, sent to a StatAccumInput.
pub struct Stats {
    filter: StatFilter,
    accumulator: u16,
    record: Vec<u8>,
}

impl Stats {
    /// A StatFilter feeding the filter with index `accumulator`.
    ///
    /// # Errors
    /// A metric template that does not compile.
    pub fn new(metrics: &[MetricSettings], accumulator: u16) -> Result<Stats, String> {
        let filter = StatFilter::new(metrics).map_err(|error| error.to_string())?;
        Ok(Stats {
            filter,
            accumulator,
            record: Vec::new(),
        })
    }

    fn extract(&mut self, message: &MessageView<'_>, emitted: &mut Emitted) -> Outcome {
        let (accumulator, record) = (self.accumulator, &mut self.record);
        let mut failed = false;
        self.filter.process(message, |result| match result {
            Ok(stat) => {
                record.clear();
                match encode_stat(&stat, record) {
                    Ok(()) => emitted.push_stat(accumulator, record),
                    Err(_) => failed = true,
                }
            }
            Err(_) => failed = true,
        });
        if failed {
            Outcome::Failed
        } else {
            Outcome::Ok
        }
    }
}

/// StatAccumInput: rolls stats up and emits them every interval.
pub struct StatAccum {
    accumulator: Accumulator,
    rollup: Rollup,
    interval: Duration,
    message_type: String,
    stamp: Stamp,
    uuids: UuidSource,
    message_bytes_max: usize,
    scratch: Vec<u8>,
}

impl StatAccum {
    /// An accumulator with Heka's StatAccumInput settings.
    pub fn new(settings: AccumulatorSettings, stamp: Stamp, message_bytes_max: usize) -> StatAccum {
        let interval = Duration::from_secs(u64::from(settings.ticker_interval_seconds.max(1)));
        let message_type = settings.message_type.clone();
        StatAccum {
            accumulator: Accumulator::new(settings),
            rollup: Rollup::new(),
            interval,
            message_type,
            stamp,
            uuids: UuidSource::new(),
            message_bytes_max,
            scratch: Vec::new(),
        }
    }

    fn add(&mut self, record: &[u8]) -> Outcome {
        match decode_stat(record) {
            Some(stat) => match self.accumulator.add(&stat) {
                Ok(()) => Outcome::Ok,
                Err(_) => Outcome::Failed,
            },
            None => Outcome::Failed,
        }
    }

    pub(super) fn timer(&mut self, now_ns: i64, emitted: &mut Emitted) -> Outcome {
        self.accumulator.flush_into(now_ns, &mut self.rollup);
        let headers = InjectHeaders {
            uuid: [0; 16],
            timestamp_ns: now_ns,
            type_: self.message_type.as_bytes(),
            logger: self.stamp.name.as_bytes(),
            hostname: self.stamp.hostname.as_bytes(),
            pid: self.stamp.pid,
        };
        let uuids = &mut self.uuids;
        let inject = &mut emitted.inject;
        encode_statmetric(
            &self.rollup,
            &headers,
            || uuids.next_uuid(),
            self.message_bytes_max,
            &mut self.scratch,
            |message| push_record(inject, message),
        );
        Outcome::Ok
    }

    pub(super) fn interval(&self) -> Duration {
        self.interval
    }
}

impl super::Filter for Counter {
    fn process(&mut self, _: &MessageView<'_>, _: &mut Emitted) -> Outcome {
        self.count()
    }

    fn timer(&mut self, now_ns: i64, emitted: &mut Emitted) -> Outcome {
        Counter::timer(self, now_ns, emitted)
    }

    fn ticker_interval(&self) -> Option<Duration> {
        Some(self.interval())
    }
}

impl super::Filter for Stats {
    fn process(&mut self, message: &MessageView<'_>, emitted: &mut Emitted) -> Outcome {
        self.extract(message, emitted)
    }
}

impl super::Filter for StatAccum {
    /// An accumulator takes stat records, not messages (its matcher is FALSE).
    fn process(&mut self, _: &MessageView<'_>, _: &mut Emitted) -> Outcome {
        Outcome::Ok
    }

    fn add_stat(&mut self, record: &[u8]) -> Outcome {
        self.add(record)
    }

    fn timer(&mut self, now_ns: i64, emitted: &mut Emitted) -> Outcome {
        StatAccum::timer(self, now_ns, emitted)
    }

    /// The last rollup.
    fn shutdown(&mut self, now_ns: i64, emitted: &mut Emitted) {
        StatAccum::timer(self, now_ns, emitted);
    }

    fn ticker_interval(&self) -> Option<Duration> {
        Some(self.interval())
    }
}

/// An error from the statistics plugins' option checks, on its section.
fn stats_error(
    section: &crate::config::Section,
) -> impl Fn(crate::stats::config::StatsConfigError) -> crate::config::ConfigError + '_ {
    move |error| section.error(Some(&error.key), error.message)
}

/// A statistics filter's delivery: always its ring, blocking when full.
const STATS_DELIVERY: (
    crate::config::delivery::RingFull,
    Option<crate::queue::QueueOptions>,
) = (crate::config::delivery::RingFull::Block, None);

/// CounterFilter, planned.
#[derive(Debug, Clone)]
pub struct CounterKind {
    interval: Duration,
}

/// CounterFilter's registry line.
pub const COUNTER_REGISTRATION: crate::component::Registration<crate::config::plan::FilterPlan> =
    crate::component::Registration {
        type_names: &["CounterFilter"],
        plan: |section, context| {
            let settings = section
                .parse::<crate::stats::config::CounterFilter>()?
                .settings()
                .map_err(stats_error(section))?;
            let interval = Duration::from_secs(settings.ticker_interval_seconds.max(1));
            let kind = std::sync::Arc::new(CounterKind { interval });
            let matcher = Some(settings.message_matcher.as_str());
            let selects = (matcher, settings.message_signer.as_deref());
            super::plan::filter_plan(section, context, selects, STATS_DELIVERY, kind)
        },
    };

impl super::FilterKind for CounterKind {
    fn type_name(&self) -> &'static str {
        "CounterFilter"
    }

    fn build(&self, build: &super::FilterBuild<'_>) -> Result<Box<dyn super::Filter>, String> {
        Ok(Box::new(Counter::new(self.interval, build.stamp())))
    }
}

/// StatFilter, planned.
#[derive(Debug, Clone)]
pub struct StatKind {
    metrics: Vec<MetricSettings>,
    accumulator: String,
}

/// StatFilter's registry line.
pub const STAT_REGISTRATION: crate::component::Registration<crate::config::plan::FilterPlan> =
    crate::component::Registration {
        type_names: &["StatFilter"],
        plan: |section, context| {
            let settings = section
                .parse::<crate::stats::config::StatFilter>()?
                .settings()
                .map_err(stats_error(section))?;
            let kind = std::sync::Arc::new(StatKind {
                metrics: settings.metrics,
                accumulator: settings.stat_accum_name,
            });
            let matcher = settings.message_matcher.as_deref();
            let selects = (matcher, settings.message_signer.as_deref());
            super::plan::filter_plan(section, context, selects, STATS_DELIVERY, kind)
        },
    };

impl super::FilterKind for StatKind {
    fn type_name(&self) -> &'static str {
        "StatFilter"
    }

    fn stat_accumulator(&self) -> Option<&str> {
        Some(&self.accumulator)
    }

    fn build(&self, build: &super::FilterBuild<'_>) -> Result<Box<dyn super::Filter>, String> {
        let index = (build.filter_index)(&self.accumulator)
            .ok_or_else(|| format!("no StatAccumInput named `{}`", self.accumulator))?;
        let index =
            u16::try_from(index).map_err(|_| format!("filter index {index} is too large"))?;
        Stats::new(&self.metrics, index).map(|filter| Box::new(filter) as Box<dyn super::Filter>)
    }
}

/// StatAccumInput, planned: hosted like a filter whose matcher never matches.
#[derive(Debug, Clone)]
pub struct StatAccumKind {
    settings: AccumulatorSettings,
}

/// StatAccumInput's registry line.
pub const STAT_ACCUM_REGISTRATION: crate::component::Registration<crate::config::plan::FilterPlan> =
    crate::component::Registration {
        type_names: &["StatAccumInput"],
        plan: |section, context| {
            let settings = section
                .parse::<crate::stats::config::StatAccumInput>()?
                .settings()
                .map_err(stats_error(section))?;
            let kind = std::sync::Arc::new(StatAccumKind { settings });
            let selects = (Some("FALSE"), None);
            super::plan::filter_plan(section, context, selects, STATS_DELIVERY, kind)
        },
    };

impl super::FilterKind for StatAccumKind {
    fn type_name(&self) -> &'static str {
        "StatAccumInput"
    }

    fn accumulates_stats(&self) -> bool {
        true
    }

    fn build(&self, build: &super::FilterBuild<'_>) -> Result<Box<dyn super::Filter>, String> {
        let accumulator = StatAccum::new(
            self.settings.clone(),
            build.stamp(),
            build.global.max_message_size,
        );
        Ok(Box::new(accumulator))
    }
}
