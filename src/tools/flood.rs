//! `gyges flood`: the load generator. It must not be the bottleneck of what it measures.
//!
//! Records are numbered so that a receiver can prove exactly-once delivery:
//!
//! ```text
//! lines: seq=<10 digits> ts=<19 digits> <padding>\n        (--size bytes in all, default 200)
//! syslog: an RFC 6587 octet-counted RFC 5424 message        (--size bytes in all, default 200)
//!        <LEN> <165>1 2026-12-02T14:05:01.123456Z web1 bench 4242 ID47 - seq=… ts=… <padding>
//! heka:  a framed Message (--size bytes in all, about; default 300) with
//!        Uuid      = 10 random bytes (fixed per run) + the sequence number in 6 bytes
//!        Timestamp = send time, ns
//!        Type      = "flood", Logger = "gyges-flood"
//!        Payload   = seq=<10 digits> ts=<19 digits> <padding>   (no newline)
//!        Fields    = [{name: "seq", value_string: ["<10 digits>"]}]
//! ```
//!
//! Sequence numbers are global: `--first-seq` (default 0) up to `first + count - 1`.
//! Connection `c` of `C` sends `first + c`, `first + c + C`, `first + c + 2C`, … so every
//! connection advances through the whole range at once. `ts` is the send time in ns.
//!
//! Speed: each connection's record template is built once; per record only the sequence
//! digits, the timestamp digits (formatted once per batch) and, for heka, the timestamp varint
//! and the Uuid's last 6 bytes are patched in place. Batches of about `FLOOD_BATCH_BYTES`
//! (256 KiB) go out with one blocking `write_all`, from one thread per connection, pinned with
//! `--cpu` (threads take the listed cores in turn). `--rate` is the total messages per second,
//! shared evenly by the connections, paced per batch; batches shrink so that a slow rate is
//! still sent at least about 100 times a second.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use super::inject::connect;
use crate::limits::{FLOOD_BATCH_BYTES, FLOOD_CONNECTIONS_MAX, FLOOD_RECORD_BYTES_MAX};
use crate::message::framing::{frame_overhead_bytes, write_frame};
use crate::message::wire::{self, WIRE_VARINT};
use crate::message::{now_ns, UuidSource};

/// Bytes of a line when `--size` is not given.
pub const LINE_BYTES_DEFAULT: usize = 200;
/// Bytes of a framed heka record when `--size` is not given.
pub const HEKA_RECORD_BYTES_DEFAULT: usize = 300;
/// Digits of a sequence number.
pub const SEQ_DIGITS: usize = 10;
/// Digits of a send timestamp.
pub const TS_DIGITS: usize = 19;
/// The first sequence number that does not fit in `SEQ_DIGITS`.
pub const SEQ_LIMIT: u64 = 10_000_000_000;
/// `seq=` + digits + ` ts=` + digits + ` `: the text before the padding.
const TEXT_HEAD_BYTES: usize = 4 + SEQ_DIGITS + 4 + TS_DIGITS + 1;
/// Bytes of a Timestamp varint written at a fixed width, so it can be patched in place.
const TS_VARINT_BYTES: usize = 9;
/// Batches per second a rate-limited connection aims at, at least.
const PACED_BATCHES_PER_SECOND: u64 = 100;
/// The padding's alphabet.
const PADDING: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// What flood sends.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloodFormat {
    /// Heka-framed protobuf messages.
    Heka,
    /// Newline-terminated text lines.
    Lines,
    /// RFC 5424 messages, octet-counted (RFC 6587); the MSG is a line's text.
    Syslog,
}

/// `gyges flood`'s options.
#[derive(clap::Args, Debug, Clone)]
pub struct FloodArgs {
    /// Where to send: `host:port`.
    #[arg(long)]
    pub addr: String,
    /// What to send.
    #[arg(long, value_enum, default_value_t = FloodFormat::Heka)]
    pub format: FloodFormat,
    /// Messages to send, over all connections.
    #[arg(long)]
    pub count: u64,
    /// Bytes per record (lines: exact, default 200; heka: the framed record, about, default 300).
    #[arg(long, value_name = "BYTES")]
    pub size: Option<usize>,
    /// TCP connections, each with its own thread.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Total messages per second (default: as fast as possible).
    #[arg(long, value_name = "MESSAGES")]
    pub rate: Option<u64>,
    /// Pin the connection threads to these cores, in turn (repeat the option).
    #[arg(long = "cpu", value_name = "CORE")]
    pub cpus: Vec<usize>,
    /// The first sequence number.
    #[arg(long, default_value_t = 0)]
    pub first_seq: u64,
}

/// What a flood run sent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FloodReport {
    /// Messages sent over all connections.
    pub messages: u64,
    /// Bytes written over all connections, framing included.
    pub bytes: u64,
    /// Wall-clock seconds from the first connection's start to the last one's end.
    pub seconds: f64,
}

impl FloodReport {
    /// The one-line summary flood prints.
    pub fn summary(&self) -> String {
        let seconds = self.seconds.max(1e-9);
        format!(
            "gyges flood: {} messages, {} bytes in {:.3} s: {:.0} msgs/s, {:.1} MB/s",
            self.messages,
            self.bytes,
            self.seconds,
            self.messages as f64 / seconds,
            self.bytes as f64 / seconds / 1e6
        )
    }
}

/// One record with the places that change per record.
#[derive(Clone, Debug)]
pub struct Template {
    /// The record's bytes, with zeros where the numbers go.
    pub record: Vec<u8>,
    seq_text_at: usize,
    ts_text_at: usize,
    seq_field_at: Option<usize>,
    uuid_seq_at: Option<usize>,
    ts_varint_at: Option<usize>,
}

/// The per-batch timestamp, formatted once for all the records of a batch.
struct TsPatch {
    digits: [u8; TS_DIGITS],
    varint: [u8; TS_VARINT_BYTES],
}

impl TsPatch {
    fn new(timestamp_ns: i64) -> TsPatch {
        let value = timestamp_ns.max(0) as u64;
        let mut digits = [b'0'; TS_DIGITS];
        put_digits(&mut digits, value);
        // A varint padded to nine bytes with continuation bits: valid protobuf for any
        // value below 2^63, and the same width for every timestamp.
        let mut varint = [0u8; TS_VARINT_BYTES];
        for (index, byte) in varint.iter_mut().enumerate() {
            let bits = ((value >> (7 * index)) & 0x7f) as u8;
            *byte = if index + 1 < TS_VARINT_BYTES {
                bits | 0x80
            } else {
                bits
            };
        }
        TsPatch { digits, varint }
    }
}

/// Writes `value` as the decimal digits filling `out`, zero-padded; the top digits are cut
/// when the value is too large (callers check `SEQ_LIMIT`).
#[inline]
fn put_digits(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// The text of a record: `seq=… ts=… ` and `text_bytes - TEXT_HEAD_BYTES` of padding.
fn record_text(text_bytes: usize) -> Vec<u8> {
    let mut text = Vec::with_capacity(text_bytes);
    text.extend_from_slice(b"seq=");
    text.extend_from_slice(&[b'0'; SEQ_DIGITS]);
    text.extend_from_slice(b" ts=");
    text.extend_from_slice(&[b'0'; TS_DIGITS]);
    text.push(b' ');
    text.extend(PADDING.iter().cycle().take(text_bytes - TEXT_HEAD_BYTES));
    text
}

/// The RFC 5424 header of a syslog flood record, before its MSG.
const SYSLOG_HEADER: &[u8] = b"<165>1 2026-12-02T14:05:01.123456Z web1 bench 4242 ID47 - ";

/// Bytes of the heka message for a payload of `text_bytes`.
fn heka_message_bytes(text_bytes: usize) -> usize {
    // Uuid 18, Timestamp 10, Type 7, Logger 13, the seq field 19, then the Payload.
    67 + 1 + wire::varint_len(text_bytes as u64) + text_bytes
}

impl Template {
    /// A line of exactly `size` bytes.
    ///
    /// # Errors
    /// `size` below the fixed text (39 bytes) or above `FLOOD_RECORD_BYTES_MAX`.
    pub fn lines(size: usize) -> Result<Template, String> {
        if !(TEXT_HEAD_BYTES + 1..=FLOOD_RECORD_BYTES_MAX).contains(&size) {
            let min = TEXT_HEAD_BYTES + 1;
            return Err(format!(
                "--size {size} is outside {min}..={FLOOD_RECORD_BYTES_MAX} for lines"
            ));
        }
        let mut record = record_text(size - 1);
        record.push(b'\n');
        Ok(Template {
            record,
            seq_text_at: 4,
            ts_text_at: 4 + SEQ_DIGITS + 4,
            seq_field_at: None,
            uuid_seq_at: None,
            ts_varint_at: None,
        })
    }

    /// An octet-counted RFC 5424 record of exactly `size` bytes, its count included.
    ///
    /// # Errors
    /// `size` too small for the header and the fixed text, or above `FLOOD_RECORD_BYTES_MAX`.
    pub fn syslog(size: usize) -> Result<Template, String> {
        let smallest = 3 + SYSLOG_HEADER.len() + TEXT_HEAD_BYTES;
        if !(smallest..=FLOOD_RECORD_BYTES_MAX).contains(&size) {
            return Err(format!(
                "--size {size} is outside {smallest}..={FLOOD_RECORD_BYTES_MAX} for syslog"
            ));
        }
        // The count's own digits come out of `size`: find the count that fits.
        let mut message_bytes = size - 2;
        while message_bytes.to_string().len() + 1 + message_bytes > size {
            message_bytes -= 1;
        }
        let mut record = format!("{message_bytes} ").into_bytes();
        record.extend_from_slice(SYSLOG_HEADER);
        let text_at = record.len();
        record.extend_from_slice(&record_text(message_bytes - SYSLOG_HEADER.len()));
        if record.len() != size {
            // A count whose digits change between the two candidates: no exact fit.
            return Err(format!(
                "--size {size} has no exact syslog record; try {}",
                size + 1
            ));
        }
        Ok(Template {
            record,
            seq_text_at: text_at + 4,
            ts_text_at: text_at + 4 + SEQ_DIGITS + 4,
            seq_field_at: None,
            uuid_seq_at: None,
            ts_varint_at: None,
        })
    }

    /// A framed heka record of `size` bytes, or the largest size below it that varint lengths
    /// allow. `uuid` gives the Uuid's first 10 bytes.
    ///
    /// # Errors
    /// `size` below the smallest record or above `FLOOD_RECORD_BYTES_MAX`.
    pub fn heka(size: usize, uuid: [u8; 16]) -> Result<Template, String> {
        let record_bytes = |text: usize| {
            let message = heka_message_bytes(text);
            frame_overhead_bytes(message, None) + message
        };
        let smallest = record_bytes(TEXT_HEAD_BYTES);
        if !(smallest..=FLOOD_RECORD_BYTES_MAX).contains(&size) {
            return Err(format!(
                "--size {size} is outside {smallest}..={FLOOD_RECORD_BYTES_MAX} for heka"
            ));
        }
        // The record grows by one byte per text byte, plus a byte where a varint grows.
        let mut text_bytes = TEXT_HEAD_BYTES + (size - smallest);
        while record_bytes(text_bytes) > size {
            text_bytes -= 1;
        }
        let mut message = Vec::with_capacity(heka_message_bytes(text_bytes));
        wire::put_bytes(&mut message, 1, &uuid);
        let uuid_seq_at = message.len() - 6;
        wire::put_key(&mut message, 2, WIRE_VARINT);
        let ts_varint_at = message.len();
        message.extend_from_slice(&TsPatch::new(0).varint);
        wire::put_bytes(&mut message, 3, b"flood");
        wire::put_bytes(&mut message, 4, b"gyges-flood");
        wire::put_bytes(&mut message, 6, &record_text(text_bytes));
        let payload_at = message.len() - text_bytes;
        let mut field = Vec::new();
        wire::put_bytes(&mut field, 1, b"seq");
        wire::put_bytes(&mut field, 4, &[b'0'; SEQ_DIGITS]);
        wire::put_bytes(&mut message, 10, &field);
        let seq_field_at = message.len() - SEQ_DIGITS;
        debug_assert_eq!(message.len(), heka_message_bytes(text_bytes));
        let mut record = Vec::with_capacity(size);
        write_frame(&mut record, &message, None).map_err(|error| error.to_string())?;
        let framing = record.len() - message.len();
        Ok(Template {
            record,
            seq_text_at: framing + payload_at + 4,
            ts_text_at: framing + payload_at + 4 + SEQ_DIGITS + 4,
            seq_field_at: Some(framing + seq_field_at),
            uuid_seq_at: Some(framing + uuid_seq_at),
            ts_varint_at: Some(framing + ts_varint_at),
        })
    }

    /// Numbers the records of `batch` (copies of this template) `seq`, `seq + step`, … and
    /// stamps them all with `timestamp_ns`. Returns the number after the last one.
    pub fn patch_batch(&self, batch: &mut [u8], mut seq: u64, step: u64, timestamp_ns: i64) -> u64 {
        let ts = TsPatch::new(timestamp_ns);
        for record in batch.chunks_exact_mut(self.record.len()) {
            self.patch(record, seq, &ts);
            seq += step;
        }
        seq
    }

    /// Writes `seq` and the batch's timestamp into one copy of the record.
    #[inline]
    fn patch(&self, record: &mut [u8], seq: u64, ts: &TsPatch) {
        let digits = &mut record[self.seq_text_at..self.seq_text_at + SEQ_DIGITS];
        put_digits(digits, seq);
        record[self.ts_text_at..self.ts_text_at + TS_DIGITS].copy_from_slice(&ts.digits);
        if let Some(at) = self.seq_field_at {
            record.copy_within(self.seq_text_at..self.seq_text_at + SEQ_DIGITS, at);
        }
        if let Some(at) = self.uuid_seq_at {
            record[at..at + 6].copy_from_slice(&seq.to_be_bytes()[2..]);
        }
        if let Some(at) = self.ts_varint_at {
            record[at..at + TS_VARINT_BYTES].copy_from_slice(&ts.varint);
        }
    }
}

/// The sequence number of a flood record: `seq=<10 digits>` at the start of a line or of a
/// heka Payload.
pub fn parse_seq(text: &[u8]) -> Option<u64> {
    let digits = text.strip_prefix(b"seq=")?.get(..SEQ_DIGITS)?;
    parse_digits(digits)
}

/// The send timestamp of a flood record (ns since the epoch).
pub fn parse_send_ts(text: &[u8]) -> Option<i64> {
    let rest = text.get(4 + SEQ_DIGITS..)?.strip_prefix(b" ts=")?;
    parse_digits(rest.get(..TS_DIGITS)?).and_then(|value| i64::try_from(value).ok())
}

fn parse_digits(digits: &[u8]) -> Option<u64> {
    digits.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u64::from(digit - b'0'))
    })
}

/// Tracks which sequence numbers of `first..first + count` arrived, to prove exactly-once
/// delivery. One bit per number.
#[derive(Clone, Debug)]
pub struct SequenceCheck {
    first: u64,
    count: u64,
    seen: Vec<u64>,
    distinct: u64,
    /// Records seen, with duplicates.
    pub received: u64,
    /// Records whose number had been seen before.
    pub duplicates: u64,
    /// Records with a number outside the range.
    pub out_of_range: u64,
    /// Records without a readable number.
    pub unreadable: u64,
}

impl SequenceCheck {
    /// A check for the numbers `first..first + count`.
    pub fn new(first: u64, count: u64) -> SequenceCheck {
        let words = usize::try_from(count.div_ceil(64)).unwrap_or(usize::MAX);
        SequenceCheck {
            first,
            count,
            seen: vec![0; words],
            distinct: 0,
            received: 0,
            duplicates: 0,
            out_of_range: 0,
            unreadable: 0,
        }
    }

    /// Records one arrival.
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        let Some(offset) = seq
            .checked_sub(self.first)
            .filter(|offset| *offset < self.count)
        else {
            self.out_of_range += 1;
            return;
        };
        let (word, bit) = ((offset / 64) as usize, offset % 64);
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
        } else {
            self.seen[word] |= 1 << bit;
            self.distinct += 1;
        }
    }

    /// Records the arrival of a line or payload, reading its number.
    pub fn record_text(&mut self, text: &[u8]) {
        match parse_seq(text) {
            Some(seq) => self.record(seq),
            None => {
                self.received += 1;
                self.unreadable += 1;
            }
        }
    }

    /// Numbers of the range that never arrived.
    pub fn missing(&self) -> u64 {
        self.count - self.distinct
    }

    /// The smallest number that never arrived.
    pub fn first_missing(&self) -> Option<u64> {
        let (word, bits) = self
            .seen
            .iter()
            .enumerate()
            .find(|(_, bits)| **bits != u64::MAX)?;
        let offset = word as u64 * 64 + u64::from(bits.trailing_ones());
        (offset < self.count).then_some(self.first + offset)
    }

    /// Every number arrived exactly once, and nothing else did.
    pub fn is_exactly_once(&self) -> bool {
        self.missing() == 0
            && self.duplicates == 0
            && self.out_of_range == 0
            && self.unreadable == 0
    }
}

/// Checks a set of records (lines or payloads) against `first..first + count`.
pub fn check_sequence<'a>(
    texts: impl IntoIterator<Item = &'a [u8]>,
    first: u64,
    count: u64,
) -> SequenceCheck {
    let mut check = SequenceCheck::new(first, count);
    for text in texts {
        check.record_text(text);
    }
    check
}

/// What one connection thread does.
struct ConnectionPlan<'t> {
    index: usize,
    template: &'t Template,
    /// The first number this connection sends, and the distance between its numbers.
    first_seq: u64,
    step: u64,
    messages: u64,
    records_per_batch: usize,
    /// Messages per second for this connection.
    rate: Option<f64>,
    cpu: Option<usize>,
}

fn run_connection(addr: &str, plan: &ConnectionPlan<'_>) -> Result<u64, String> {
    if let Some(cpu) = plan.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            return Err(format!(
                "connection {}: cannot pin to core {cpu}",
                plan.index
            ));
        }
    }
    let mut stream = connect(addr).map_err(|error| format!("connecting to {error}"))?;
    let record_bytes = plan.template.record.len();
    let mut batch = plan.template.record.repeat(plan.records_per_batch);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut seq = plan.first_seq;
    while sent < plan.messages {
        let records = (plan.messages - sent).min(plan.records_per_batch as u64) as usize;
        if let Some(rate) = plan.rate {
            let due = started + Duration::from_secs_f64(sent as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let bytes = records * record_bytes;
        seq = plan
            .template
            .patch_batch(&mut batch[..bytes], seq, plan.step, now_ns());
        stream
            .write_all(&batch[..bytes])
            .map_err(|error| format!("connection {}: sending: {error}", plan.index))?;
        sent += records as u64;
    }
    stream
        .flush()
        .map_err(|error| format!("connection {}: {error}", plan.index))?;
    Ok(sent * record_bytes as u64)
}

/// Sends what `args` describes and reports it.
///
/// # Errors
/// Bad options, or a connection that could not connect or send.
pub fn flood(args: &FloodArgs) -> Result<FloodReport, String> {
    if args.connections == 0 || args.connections > FLOOD_CONNECTIONS_MAX {
        return Err(format!(
            "--connections must be within 1..={FLOOD_CONNECTIONS_MAX}"
        ));
    }
    if args
        .first_seq
        .checked_add(args.count)
        .is_none_or(|end| end > SEQ_LIMIT)
    {
        return Err(format!("--first-seq + --count must not exceed {SEQ_LIMIT}"));
    }
    if args.rate == Some(0) {
        return Err("--rate must be above 0".into());
    }
    let template = match args.format {
        FloodFormat::Lines => Template::lines(args.size.unwrap_or(LINE_BYTES_DEFAULT))?,
        FloodFormat::Syslog => Template::syslog(args.size.unwrap_or(LINE_BYTES_DEFAULT))?,
        FloodFormat::Heka => {
            let size = args.size.unwrap_or(HEKA_RECORD_BYTES_DEFAULT);
            Template::heka(size, UuidSource::new().next_uuid())?
        }
    };
    let connections = args.connections as u64;
    let rate = args.rate.map(|rate| rate as f64 / connections as f64);
    let mut records_per_batch = (FLOOD_BATCH_BYTES / template.record.len()).max(1);
    if let Some(rate) = args.rate {
        let paced = rate / connections / PACED_BATCHES_PER_SECOND;
        records_per_batch = records_per_batch.min(paced.max(1) as usize);
    }
    let plans: Vec<ConnectionPlan<'_>> = (0..args.connections)
        .map(|index| {
            let index_u64 = index as u64;
            ConnectionPlan {
                index,
                template: &template,
                first_seq: args.first_seq + index_u64,
                step: connections,
                messages: args.count.saturating_sub(index_u64).div_ceil(connections),
                records_per_batch,
                rate,
                cpu: (!args.cpus.is_empty()).then(|| args.cpus[index % args.cpus.len()]),
            }
        })
        .collect();
    let started = Instant::now();
    let results: Vec<Result<u64, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| scope.spawn(|| run_connection(&args.addr, plan)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a connection thread panicked".into()))
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut report = FloodReport {
        messages: 0,
        bytes: 0,
        seconds,
    };
    for (plan, result) in plans.iter().zip(results) {
        report.bytes += result?;
        report.messages += plan.messages;
    }
    Ok(report)
}

/// Runs `gyges flood`.
pub fn run(args: &FloodArgs) -> ExitCode {
    match flood(args) {
        Ok(report) => {
            println!("{}", report.summary());
            ExitCode::SUCCESS
        }
        Err(error) => super::fail("flood", error),
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::framing::parse_header;
    use crate::message::{proto, FieldValue, ProtoView, StrHeader};

    #[test]
    fn lines_have_the_exact_size_and_read_back() {
        let template = Template::lines(200).unwrap();
        assert_eq!(template.record.len(), 200);
        let mut record = template.record.clone();
        template.patch(
            &mut record,
            1234567890,
            &TsPatch::new(1_700_000_000_123_456_789),
        );
        let text = std::str::from_utf8(&record).unwrap();
        assert!(
            text.starts_with("seq=1234567890 ts=1700000000123456789 abcdef"),
            "{text}"
        );
        assert!(text.ends_with('\n'));
        assert_eq!(parse_seq(&record), Some(1234567890));
        assert_eq!(parse_send_ts(&record), Some(1_700_000_000_123_456_789));
        assert!(Template::lines(38).is_err());
        assert_eq!(Template::lines(39).unwrap().record.len(), 39);
    }

    #[test]
    fn syslog_records_are_octet_counted_rfc5424_of_the_exact_size() {
        for size in [200, 1000, 1004, 4096] {
            let template = match Template::syslog(size) {
                Ok(template) => template,
                Err(error) => {
                    // Only where the count's digits grow can no size fit exactly.
                    assert_eq!(size, 1004, "{error}");
                    continue;
                }
            };
            let mut record = template.record.clone();
            template.patch(&mut record, 77, &TsPatch::new(1_700_000_000_000_000_001));
            assert_eq!(record.len(), size);
            let crate::decoder::syslog::framing::Frame::Complete(frame) =
                crate::decoder::syslog::framing::next_frame(&record, 64 * 1024)
            else {
                panic!("not an octet-counted frame");
            };
            assert_eq!(frame.end, size, "the count covers the rest of the record");
            let message = &record[frame];
            assert!(message.starts_with(SYSLOG_HEADER));
            let text = &message[SYSLOG_HEADER.len()..];
            assert_eq!(parse_seq(text), Some(77));
            assert_eq!(parse_send_ts(text), Some(1_700_000_000_000_000_001));
        }
    }

    #[test]
    fn heka_records_are_valid_framed_messages() {
        for size in [160, 250, 300, 4096] {
            let template = Template::heka(size, [7; 16]).unwrap();
            assert!(
                template.record.len() <= size && template.record.len() + 2 >= size,
                "{size}"
            );
            let mut record = template.record.clone();
            template.patch(&mut record, 42, &TsPatch::new(1_428_773_426_113_040_228));
            let header = parse_header(&record).unwrap().unwrap();
            assert_eq!(header.frame_bytes(), record.len());
            let message = &record[header.message_start()..];
            let view = ProtoView::new(message);
            assert_eq!(view.validate(), Ok(()));
            assert_eq!(view.timestamp(), Some(1_428_773_426_113_040_228));
            assert_eq!(view.str_header(StrHeader::Type), Some(&b"flood"[..]));
            assert_eq!(
                view.str_header(StrHeader::Logger),
                Some(&b"gyges-flood"[..])
            );
            let payload = view.str_header(StrHeader::Payload).unwrap();
            assert_eq!(parse_seq(payload), Some(42));
            assert_eq!(
                view.field(b"seq", 0).unwrap().value(0),
                Some(FieldValue::String(b"0000000042"))
            );
            assert_eq!(&view.uuid().unwrap()[10..], &[0, 0, 0, 0, 0, 42]);
            // prost agrees, padded varint included.
            let decoded = proto::Message::decode(message).unwrap();
            assert_eq!(decoded.timestamp, 1_428_773_426_113_040_228);
        }
        assert!(Template::heka(100, [0; 16]).is_err());
    }

    #[test]
    fn sequence_checks() {
        let mut check = SequenceCheck::new(100, 130);
        for seq in (100..230).rev() {
            check.record(seq);
        }
        assert!(check.is_exactly_once());
        check.record(150);
        check.record(99);
        check.record_text(b"nonsense");
        assert_eq!(
            (check.duplicates, check.out_of_range, check.unreadable),
            (1, 1, 1)
        );
        assert!(!check.is_exactly_once());

        let lines: Vec<Vec<u8>> = [0u64, 1, 3]
            .iter()
            .map(|seq| format!("seq={seq:010} ts=0000000000000000000 x").into_bytes())
            .collect();
        let check = check_sequence(lines.iter().map(Vec::as_slice), 0, 4);
        assert_eq!(check.missing(), 1);
        assert_eq!(check.first_missing(), Some(2));
    }

    #[test]
    fn bad_options_are_refused() {
        let args = FloodArgs {
            addr: "127.0.0.1:1".into(),
            format: FloodFormat::Lines,
            count: SEQ_LIMIT,
            size: None,
            connections: 1,
            rate: None,
            cpus: Vec::new(),
            first_seq: 1,
        };
        assert!(flood(&args).unwrap_err().contains("--first-seq"));
        let zero = FloodArgs {
            connections: 0,
            count: 1,
            ..args.clone()
        };
        assert!(flood(&zero).unwrap_err().contains("--connections"));
        let tiny = FloodArgs {
            size: Some(10),
            count: 1,
            ..args
        };
        assert!(flood(&tiny).unwrap_err().contains("--size 10"));
    }
}
