//! The statistics plugins of Heka, as pure synchronous library code: StatsdInput's parser,
//! StatAccumInput's rollups, StatFilter, CounterFilter and CarbonOutput's line encoding.
//!
//! What runs where (the runtime hosts these; nothing here touches a socket or an executor):
//!
//! ```text
//!  every ingest core                          the accumulator's core
//!  ┌────────────────────────────────┐         ┌───────────────────────────────────────┐
//!  │ StatsdInput datagram           │ records │ decode_stat → Accumulator::add        │
//!  │   statsd::parse_datagram       ├──ring──→│ each ticker_interval:                 │
//!  │   statsd::encode_stat          │         │   Accumulator::flush → Rollup         │
//!  └────────────────────────────────┘         │   encode_statmetric → heka.statmetric │
//!  the filter core                            └───────────────────┬───────────────────┘
//!  ┌────────────────────────────────┐ records          router     │
//!  │ StatFilter::process(view)      ├──────→ (same ring path)     ▼
//!  │ CounterFilter::count / tick    │               CarbonOutput: carbon::carbon_lines,
//!  └────────────────────────────────┘               carbon::datagrams (UDP) → socket
//! ```
//!
//! - [`statsd`]: the statsd line parser and the compact stat record that crosses cores.
//! - [`accumulator`]: StatAccumInput's state, its rollup each `ticker_interval`, and the
//!   `heka.statmetric` message (graphite lines in the Payload, optionally one field per stat).
//! - [`stat_filter`]: StatFilter's `%name%` templates, compiled once, evaluated per message.
//! - [`counter`]: CounterFilter's per-tick `heka.counter-output` messages.
//! - [`carbon`]: CarbonOutput's checks of statmetric lines and the UDP datagram split.
//! - [`config`]: the serde structs of the five plugins, with Heka's option names.
//!
//! Bounds (all in [`crate::limits`]), and what happens at each:
//! - a statsd name over `STAT_NAME_BYTES_MAX` or a set member over `STAT_MEMBER_BYTES_MAX`:
//!   the line is rejected and counted;
//! - `STATS_PER_ACCUMULATOR_MAX` distinct stats: a stat with a new name is dropped and counted;
//!   stats already held keep being updated;
//! - `SET_MEMBERS_MAX` members per set per interval: new members are dropped and counted;
//! - `TIMER_SAMPLES_MAX` samples per timer per interval, `TIMER_SAMPLES_TOTAL_MAX` across an
//!   accumulator: further samples go into a uniform reservoir; count, sum, lower, upper and
//!   mean stay exact and only the percentiles become estimates;
//! - `max_message_size`: a rollup too large for one message is split across several
//!   `heka.statmetric` messages at line boundaries;
//! - CarbonOutput's `max_datagram_size`: lines are packed into datagrams no larger; a line
//!   that alone is larger is dropped and counted.
//!
//! Nothing here panics on any input and the per-stat path does not allocate once a stat's
//! name is known; see `docs/stats.md` for formats and differences from Heka and statsd.

pub mod accumulator;
pub mod carbon;
pub mod config;
pub mod counter;
pub mod stat_filter;
pub mod statsd;

use std::io::Write as _;

use crate::message::wire;

pub use accumulator::{encode_statmetric, Accumulator, AccumulatorSettings, Rollup};
pub use statsd::{decode_stat, encode_stat, parse_datagram, Stat, StatKind, StatValue};

/// The headers of a message a stat plugin creates (as Heka's runner stamps them).
#[derive(Clone, Copy, Debug)]
pub struct InjectHeaders<'a> {
    /// 16 raw bytes.
    pub uuid: [u8; 16],
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    /// The message Type, e.g. `heka.statmetric`.
    pub type_: &'a [u8],
    /// The plugin's name.
    pub logger: &'a [u8],
    /// The daemon's hostname.
    pub hostname: &'a [u8],
    /// The daemon's process id.
    pub pid: i32,
}

/// The bytes of a message with `headers`, a Payload of `payload_len` bytes and
/// `fields_bytes` of already encoded fields.
pub(crate) fn message_bytes(
    headers: &InjectHeaders<'_>,
    payload_len: usize,
    fields_bytes: usize,
) -> usize {
    fn len_field(len: usize) -> usize {
        1 + wire::varint_len(len as u64) + len
    }
    len_field(16)
        + 1
        + wire::varint_len(headers.timestamp_ns as u64)
        + len_field(headers.type_.len())
        + len_field(headers.logger.len())
        + len_field(payload_len)
        + 1
        + wire::varint_len(i64::from(headers.pid) as u64)
        + len_field(headers.hostname.len())
        + fields_bytes
}

/// Appends a whole message: the headers in schema order, the Payload, then `fields` (each
/// slice a run of already encoded top-level field entries).
pub(crate) fn put_message(
    headers: &InjectHeaders<'_>,
    payload: &[u8],
    fields: &[&[u8]],
    out: &mut Vec<u8>,
) {
    wire::put_bytes(out, 1, &headers.uuid);
    wire::put_int(out, 2, headers.timestamp_ns);
    wire::put_bytes(out, 3, headers.type_);
    wire::put_bytes(out, 4, headers.logger);
    wire::put_bytes(out, 6, payload);
    wire::put_int(out, 8, i64::from(headers.pid));
    wire::put_bytes(out, 9, headers.hostname);
    for run in fields {
        out.extend_from_slice(run);
    }
}

/// Appends a float as Go's `%.Nf` prints it: fixed decimals, rounding half to even on the
/// exact binary value, and `NaN`, `+Inf`, `-Inf` for the non-finite.
pub(crate) fn put_float_fixed(out: &mut Vec<u8>, value: f64, decimals: usize) {
    if !put_non_finite(out, value) {
        // Writing to a Vec cannot fail.
        let _ = write!(out, "{value:.decimals$}");
    }
}

/// Appends a float as Go's `strconv.FormatFloat(v, 'f', -1, 64)`: the shortest decimal that
/// reads back to the same value, never in exponent form.
pub(crate) fn put_float_shortest(out: &mut Vec<u8>, value: f64) {
    if !put_non_finite(out, value) {
        let _ = write!(out, "{value}");
    }
}

fn put_non_finite(out: &mut Vec<u8>, value: f64) -> bool {
    let text: &[u8] = if value.is_nan() {
        b"NaN"
    } else if value == f64::INFINITY {
        b"+Inf"
    } else if value == f64::NEG_INFINITY {
        b"-Inf"
    } else {
        return false;
    };
    out.extend_from_slice(text);
    true
}

/// Appends an integer in decimal.
pub(crate) fn put_int(out: &mut Vec<u8>, value: i64) {
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::proto::Message;
    use prost::Message as _;

    #[test]
    fn floats_print_as_go_prints_them() {
        let seeds: &[(f64, &str, &str, &str)] = &[
            (0.0, "0.000000", "0.00", "0"),
            (1.0, "1.000000", "1.00", "1"),
            (0.1, "0.100000", "0.10", "0.1"),
            (-2.5, "-2.500000", "-2.50", "-2.5"),
            // Ties round half to even on the exact binary value, as Go does.
            (0.0078125, "0.007812", "0.01", "0.0078125"),
            (0.125, "0.125000", "0.12", "0.125"),
            (
                1e21,
                "1000000000000000000000.000000",
                "1000000000000000000000.00",
                "1000000000000000000000",
            ),
            (f64::NAN, "NaN", "NaN", "NaN"),
            (f64::INFINITY, "+Inf", "+Inf", "+Inf"),
            (f64::NEG_INFINITY, "-Inf", "-Inf", "-Inf"),
        ];
        for &(value, six, two, shortest) in seeds {
            let mut out = Vec::new();
            put_float_fixed(&mut out, value, 6);
            assert_eq!(out, six.as_bytes(), "{value} %f");
            out.clear();
            put_float_fixed(&mut out, value, 2);
            assert_eq!(out, two.as_bytes(), "{value} %.2f");
            out.clear();
            put_float_shortest(&mut out, value);
            assert_eq!(out, shortest.as_bytes(), "{value} shortest");
        }
    }

    #[test]
    fn messages_have_the_headers_and_the_predicted_size() {
        let headers = InjectHeaders {
            uuid: [7; 16],
            timestamp_ns: 1_700_000_000_123_456_789,
            type_: b"heka.statmetric",
            logger: b"StatAccumInput",
            hostname: b"host-1",
            pid: 4242,
        };
        let mut out = Vec::new();
        put_message(&headers, b"a 1 2\n", &[], &mut out);
        assert_eq!(out.len(), message_bytes(&headers, 6, 0));
        let message = Message::decode(out.as_slice()).expect("a valid message");
        assert_eq!(message.uuid, vec![7; 16]);
        assert_eq!(message.timestamp, 1_700_000_000_123_456_789);
        assert_eq!(message.r#type.as_deref(), Some("heka.statmetric"));
        assert_eq!(message.logger.as_deref(), Some("StatAccumInput"));
        assert_eq!(message.payload.as_deref(), Some("a 1 2\n"));
        assert_eq!(message.hostname.as_deref(), Some("host-1"));
        assert_eq!(message.pid, Some(4242));
        assert_eq!(message.severity, None);
    }
}
