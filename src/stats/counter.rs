//! CounterFilter: counts the messages its matcher lets through and, each `ticker_interval`
//! (default 5 s), reports them in a `heka.counter-output` message, exactly as Heka words it.
//!
//! Each tick with new messages produces one report; every tenth report is followed by a
//! summary of the last ten rates:
//!
//! ```text
//! Payload: "Got <total> messages. <rate %.2f> msg/sec"
//! Payload: "AGG Sum. Min: <%.2f>    Max: <%.2f>    Mean: <%.2f>"
//! ```
//!
//! `<total>` is the count since the filter started, as in Heka (not this tick's count); the
//! rate is the messages since the last report over the time since the last report. A
//! tick with no new message produces nothing and does not restart the rate's clock, as in
//! Heka. Both messages have Type `heka.counter-output`, Logger the filter's name, and the
//! daemon's Hostname and Pid; the caller provides them as [`InjectHeaders`].
//!
//! The filter holds a fixed ten-slot array of rates: no allocation, however long it runs.
//! Other cores may count their share and hand it over with [`CounterFilter::add`].

use std::io::Write as _;

use super::{put_float_fixed, put_message, InjectHeaders};
use crate::limits::COUNTER_SUMMARY_TICKS;

/// The Type of CounterFilter's messages.
pub const COUNTER_OUTPUT_TYPE: &str = "heka.counter-output";

/// The matcher a CounterFilter uses when none is configured: everything but its own output.
pub const COUNTER_MATCHER_DEFAULT: &str = "Type != 'heka.counter-output'";

/// Seconds between reports when none is configured.
pub const COUNTER_TICKER_INTERVAL_SECONDS_DEFAULT: u64 = 5;

/// CounterFilter's state.
#[derive(Debug)]
pub struct CounterFilter {
    count: u64,
    count_reported: u64,
    reported_at_ns: i64,
    rates: [f64; COUNTER_SUMMARY_TICKS],
    rates_len: usize,
}

/// The payloads one tick produced, in the order to inject them.
#[derive(Debug, Default)]
pub struct CounterTick {
    /// The report, if any message arrived since the last one.
    pub report: Option<Vec<u8>>,
    /// The summary, on every tenth report.
    pub summary: Option<Vec<u8>>,
}

impl CounterFilter {
    /// A filter that starts its clock at `now_ns`.
    pub fn new(now_ns: i64) -> CounterFilter {
        CounterFilter {
            count: 0,
            count_reported: 0,
            reported_at_ns: now_ns,
            rates: [0.0; COUNTER_SUMMARY_TICKS],
            rates_len: 0,
        }
    }

    /// Counts one message.
    #[inline]
    pub fn count(&mut self) {
        self.count += 1;
    }

    /// Counts `messages` at once (another core's share).
    #[inline]
    pub fn add(&mut self, messages: u64) {
        self.count = self.count.saturating_add(messages);
    }

    /// Messages counted since the filter started.
    pub fn total(&self) -> u64 {
        self.count
    }

    /// The ticker fired at `now_ns`. Writes the report payload into `report` and, on every
    /// tenth report, the summary into `summary` (both cleared first). Returns which it wrote.
    pub fn tick_into(
        &mut self,
        now_ns: i64,
        report: &mut Vec<u8>,
        summary: &mut Vec<u8>,
    ) -> (bool, bool) {
        report.clear();
        summary.clear();
        let messages = self.count - self.count_reported;
        if messages == 0 {
            return (false, false);
        }
        let elapsed_seconds = now_ns.saturating_sub(self.reported_at_ns) as f64 / 1e9;
        self.count_reported = self.count;
        self.reported_at_ns = now_ns;
        let rate = messages as f64 / elapsed_seconds;
        self.rates[self.rates_len] = rate;
        self.rates_len += 1;
        let _ = write!(report, "Got {} messages. ", self.count);
        put_float_fixed(report, rate, 2);
        report.extend_from_slice(b" msg/sec");
        if self.rates_len < COUNTER_SUMMARY_TICKS {
            return (true, false);
        }
        self.rates_len = 0;
        self.rates.sort_unstable_by(f64::total_cmp);
        // Summed in sorted order, as Heka sums.
        let sum = self.rates.iter().fold(0.0, |sum, rate| sum + rate);
        let mean = sum / COUNTER_SUMMARY_TICKS as f64;
        summary.extend_from_slice(b"AGG Sum. Min: ");
        put_float_fixed(summary, self.rates[0], 2);
        summary.extend_from_slice(b"    Max: ");
        put_float_fixed(summary, self.rates[COUNTER_SUMMARY_TICKS - 1], 2);
        summary.extend_from_slice(b"    Mean: ");
        put_float_fixed(summary, mean, 2);
        (true, true)
    }

    /// As [`CounterFilter::tick_into`], into fresh buffers.
    pub fn tick(&mut self, now_ns: i64) -> CounterTick {
        let (mut report, mut summary) = (Vec::new(), Vec::new());
        let (has_report, has_summary) = self.tick_into(now_ns, &mut report, &mut summary);
        CounterTick {
            report: has_report.then_some(report),
            summary: has_summary.then_some(summary),
        }
    }
}

/// Appends a `heka.counter-output` message carrying `payload`. `headers.type_` should be
/// [`COUNTER_OUTPUT_TYPE`].
pub fn encode_counter_output(headers: &InjectHeaders<'_>, payload: &[u8], out: &mut Vec<u8>) {
    put_message(headers, payload, &[], out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::proto::Message;
    use prost::Message as _;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn reports_match_heka_word_for_word() {
        let start = 1_700_000_000 * SECOND;
        let mut filter = CounterFilter::new(start);
        // Nothing counted: no message, and the clock does not restart.
        assert!(filter.tick(start + 5 * SECOND).report.is_none());
        for _ in 0..25 {
            filter.count();
        }
        let tick = filter.tick(start + 10 * SECOND);
        assert_eq!(
            tick.report.as_deref(),
            Some(&b"Got 25 messages. 2.50 msg/sec"[..])
        );
        assert!(tick.summary.is_none());
        filter.add(10);
        let tick = filter.tick(start + 13 * SECOND);
        assert_eq!(
            tick.report.as_deref(),
            Some(&b"Got 35 messages. 3.33 msg/sec"[..])
        );
    }

    #[test]
    fn every_tenth_report_is_followed_by_a_summary() {
        let mut filter = CounterFilter::new(0);
        let mut now = 0;
        let mut summaries = Vec::new();
        for tick in 1..=20u64 {
            filter.add(tick * 5);
            now += 5 * SECOND;
            let output = filter.tick(now);
            assert!(output.report.is_some());
            if let Some(summary) = output.summary {
                summaries.push((tick, String::from_utf8(summary).expect("text")));
            }
        }
        // Rates 1..10 then 11..20 messages per second.
        assert_eq!(
            summaries,
            vec![
                (
                    10,
                    "AGG Sum. Min: 1.00    Max: 10.00    Mean: 5.50".to_string()
                ),
                (
                    20,
                    "AGG Sum. Min: 11.00    Max: 20.00    Mean: 15.50".to_string()
                ),
            ]
        );
    }

    #[test]
    fn the_message_has_heka_headers() {
        let headers = InjectHeaders {
            uuid: [3; 16],
            timestamp_ns: 42,
            type_: COUNTER_OUTPUT_TYPE.as_bytes(),
            logger: b"CounterFilter",
            hostname: b"box",
            pid: 9,
        };
        let mut out = Vec::new();
        encode_counter_output(&headers, b"Got 1 messages. 0.20 msg/sec", &mut out);
        let message = Message::decode(out.as_slice()).expect("valid protobuf");
        assert_eq!(message.r#type.as_deref(), Some("heka.counter-output"));
        assert_eq!(message.logger.as_deref(), Some("CounterFilter"));
        assert_eq!(
            message.payload.as_deref(),
            Some("Got 1 messages. 0.20 msg/sec")
        );
        assert!(message.fields.is_empty());
    }

    #[test]
    fn a_zero_interval_reports_an_infinite_rate_without_panicking() {
        let mut filter = CounterFilter::new(100);
        filter.count();
        let tick = filter.tick(100);
        assert_eq!(
            tick.report.as_deref(),
            Some(&b"Got 1 messages. +Inf msg/sec"[..])
        );
    }
}
