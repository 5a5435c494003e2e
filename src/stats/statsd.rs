//! StatsdInput's parser: statsd datagrams into [`Stat`]s, and the compact record a stat
//! travels in from the ingest core that parsed it to the core that accumulates it.
//!
//! The wire format, one metric per line, several lines per datagram:
//!
//! ```text
//! name:value|type[|@sample_rate][:value|type[|@sample_rate]...]
//! ```
//!
//! - `type` is `c` (counter), `ms` (timer), `g` (gauge) or `s` (set). `h` and `m` are counters,
//!   as Heka and statsd treat them.
//! - A gauge value with a leading `+` or `-` is a relative change ([`StatKind::GaugeDelta`]),
//!   as in statsd; without a sign it replaces the gauge.
//! - `@sample_rate` (in `(0, 1]`) scales counters by `1 / rate`; timers and gauges accept it
//!   and ignore it, as Heka's accumulator does.
//! - Several `:value|type` segments after one name are several metrics of that name, as statsd
//!   allows (`latency:12|ms:15|ms`).
//! - Lines are split on `\n`; spaces, tabs and `\r` around a line are ignored, and blank lines
//!   are skipped.
//!
//! Invariants: parsing never allocates and never panics, whatever the bytes. A bad line or
//! segment is one [`StatsdError`] (the caller counts it by [`StatsdError::code`]) and parsing
//! goes on with the next segment or line. Every [`Stat`] handed out has a name of
//! 1..=[`STAT_NAME_BYTES_MAX`] bytes without spaces or control bytes (so it can never break a
//! graphite line), a finite value, and a sample rate in `(0, 1]`.
//!
//! Differences from Heka, each deliberate: names with spaces or control bytes are rejected
//! rather than passed through to corrupt the graphite lines; a non-numeric value is a bad line
//! rather than a silent 0; negative timers are rejected as statsd does; sets and relative
//! gauges work (Heka had neither); a bad line costs only itself, not the rest of the datagram.

use memchr::memchr;

use crate::limits::{STAT_MEMBER_BYTES_MAX, STAT_NAME_BYTES_MAX};

/// What a stat is, which decides how the accumulator folds it in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StatKind {
    /// Summed per interval, scaled by `1 / sample_rate`; emitted as a count and a rate.
    Counter,
    /// Each value is a sample; emitted as count, rate, lower, upper, sum, mean, percentiles.
    Timer,
    /// Replaces the gauge's value.
    Gauge,
    /// Adds to the gauge's value (a `+N` or `-N` gauge).
    GaugeDelta,
    /// A member of a set; the number of distinct members per interval is emitted.
    Set,
}

impl StatKind {
    fn to_byte(self) -> u8 {
        match self {
            StatKind::Counter => 0,
            StatKind::Timer => 1,
            StatKind::Gauge => 2,
            StatKind::GaugeDelta => 3,
            StatKind::Set => 4,
        }
    }

    fn from_byte(byte: u8) -> Option<StatKind> {
        Some(match byte {
            0 => StatKind::Counter,
            1 => StatKind::Timer,
            2 => StatKind::Gauge,
            3 => StatKind::GaugeDelta,
            4 => StatKind::Set,
            _ => return None,
        })
    }
}

/// A stat's value: a number, or a set member's bytes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StatValue<'a> {
    /// Counters, timers and gauges. Always finite.
    Number(f64),
    /// Sets: the member, compared byte for byte.
    Member(&'a [u8]),
}

/// One metric, borrowing its name (and a set member) from the bytes it was read from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stat<'a> {
    /// The stat's name, the part of the line before `:`.
    pub name: &'a [u8],
    /// Counter, timer, gauge (or gauge delta) or set, from the `|type` section.
    pub kind: StatKind,
    /// The number, or the set's member.
    pub value: StatValue<'a>,
    /// In `(0, 1]`; 1 when the line had none.
    pub sample_rate: f32,
}

/// Why a statsd line or segment was rejected. The code is a low-cardinality counter label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatsdError {
    /// The line has no `:` between name and value.
    #[error("no `:` after the stat name")]
    MissingColon,
    /// The name before `:` is empty.
    #[error("empty stat name")]
    EmptyName,
    /// The name holds a space or a control byte, which cannot stand in a graphite line.
    #[error("a stat name may not hold spaces or control bytes")]
    BadName,
    /// The name is longer than `STAT_NAME_BYTES_MAX` bytes.
    #[error("stat name longer than {STAT_NAME_BYTES_MAX} bytes")]
    NameTooLong,
    /// The value has no `|type` section after it.
    #[error("no `|type` after the value")]
    MissingType,
    /// The type is not `c`, `ms`, `g` or `s`.
    #[error("unknown stat type (expected c, ms, g or s)")]
    UnknownType,
    /// The value is not a finite number.
    #[error("the value is not a finite number")]
    BadValue,
    /// A timer value is negative.
    #[error("a timer may not be negative")]
    NegativeTimer,
    /// The sample rate is not `@` followed by a number in (0, 1].
    #[error("the sample rate is not `@` and a number in (0, 1]")]
    BadSampleRate,
    /// A `|` section follows the sample rate.
    #[error("unexpected `|` section after the sample rate")]
    ExtraSection,
    /// A set member is longer than `STAT_MEMBER_BYTES_MAX` bytes.
    #[error("set member longer than {STAT_MEMBER_BYTES_MAX} bytes")]
    MemberTooLong,
}

impl StatsdError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            StatsdError::MissingColon => "missing_colon",
            StatsdError::EmptyName => "empty_name",
            StatsdError::BadName => "bad_name",
            StatsdError::NameTooLong => "name_too_long",
            StatsdError::MissingType => "missing_type",
            StatsdError::UnknownType => "unknown_type",
            StatsdError::BadValue => "bad_value",
            StatsdError::NegativeTimer => "negative_timer",
            StatsdError::BadSampleRate => "bad_sample_rate",
            StatsdError::ExtraSection => "extra_section",
            StatsdError::MemberTooLong => "member_too_long",
        }
    }
}

/// Parses every metric of a datagram, in order. See the module docs for the format.
pub fn parse_datagram(datagram: &[u8]) -> StatsdParser<'_> {
    StatsdParser {
        lines: datagram,
        name: &[],
        segments: None,
    }
}

/// Iterator over a datagram's metrics: each item is one stat or one rejected line or segment.
pub struct StatsdParser<'a> {
    /// The lines not yet started.
    lines: &'a [u8],
    /// The current line's name.
    name: &'a [u8],
    /// The current line's segments not yet parsed; `None` between lines.
    segments: Option<&'a [u8]>,
}

impl<'a> Iterator for StatsdParser<'a> {
    type Item = Result<Stat<'a>, StatsdError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Each turn either returns or consumes one (blank) line, so the loop ends.
        loop {
            if let Some(segments) = self.segments {
                let (segment, rest) = split_once(segments, b':');
                self.segments = rest;
                return Some(parse_segment(self.name, segment));
            }
            if self.lines.is_empty() {
                return None;
            }
            let (line, rest) = split_once(self.lines, b'\n');
            self.lines = rest.unwrap_or(&[]);
            let line = trim(line);
            if line.is_empty() {
                continue;
            }
            let Some(colon) = memchr(b':', line) else {
                return Some(Err(StatsdError::MissingColon));
            };
            let name = &line[..colon];
            if let Err(error) = check_name(name) {
                return Some(Err(error));
            }
            self.name = name;
            self.segments = Some(&line[colon + 1..]);
        }
    }
}

/// Checks that a stat name can stand in a graphite line.
///
/// # Errors
/// Empty, too long, or holding a space or control byte.
pub fn check_name(name: &[u8]) -> Result<(), StatsdError> {
    if name.is_empty() {
        return Err(StatsdError::EmptyName);
    }
    if name.len() > STAT_NAME_BYTES_MAX {
        return Err(StatsdError::NameTooLong);
    }
    if name.iter().any(|&byte| byte <= b' ' || byte == 0x7f) {
        return Err(StatsdError::BadName);
    }
    Ok(())
}

/// `(before, Some(after))` at the first `delimiter`, or `(all, None)`.
#[inline]
fn split_once(bytes: &[u8], delimiter: u8) -> (&[u8], Option<&[u8]>) {
    match memchr(delimiter, bytes) {
        Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
        None => (bytes, None),
    }
}

#[inline]
fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\r');
    let start = bytes
        .iter()
        .position(|byte| !blank(byte))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|byte| !blank(byte))
        .map_or(start, |at| at + 1);
    &bytes[start..end]
}

/// Parses `value|type[|@rate]` for `name`.
fn parse_segment<'a>(name: &'a [u8], segment: &'a [u8]) -> Result<Stat<'a>, StatsdError> {
    let (value, rest) = split_once(segment, b'|');
    let rest = rest.ok_or(StatsdError::MissingType)?;
    let (type_, rest) = split_once(rest, b'|');
    let sample_rate = match rest {
        None => 1.0,
        Some(section) => parse_sample_rate(section)?,
    };
    let (kind, value) = match type_ {
        b"c" | b"h" | b"m" => (StatKind::Counter, StatValue::Number(parse_counter(value)?)),
        b"ms" => {
            let number = parse_number(value)?;
            if number < 0.0 {
                return Err(StatsdError::NegativeTimer);
            }
            (StatKind::Timer, StatValue::Number(number))
        }
        b"g" => {
            let kind = match value.first() {
                Some(b'+' | b'-') => StatKind::GaugeDelta,
                _ => StatKind::Gauge,
            };
            (kind, StatValue::Number(parse_number(value)?))
        }
        b"s" => {
            if value.len() > STAT_MEMBER_BYTES_MAX {
                return Err(StatsdError::MemberTooLong);
            }
            // statsd counts an empty member as "0".
            let member: &[u8] = if value.is_empty() { b"0" } else { value };
            (StatKind::Set, StatValue::Member(member))
        }
        b"" => return Err(StatsdError::MissingType),
        _ => return Err(StatsdError::UnknownType),
    };
    Ok(Stat {
        name,
        kind,
        value,
        sample_rate,
    })
}

/// `@rate`, possibly followed by further `|` sections, which are rejected.
fn parse_sample_rate(section: &[u8]) -> Result<f32, StatsdError> {
    let (rate, rest) = split_once(section, b'|');
    if rest.is_some() {
        return Err(StatsdError::ExtraSection);
    }
    let digits = rate.strip_prefix(b"@").ok_or(StatsdError::BadSampleRate)?;
    let rate = parse_decimal::<f32>(digits).ok_or(StatsdError::BadSampleRate)?;
    if rate > 0.0 && rate <= 1.0 {
        Ok(rate)
    } else {
        Err(StatsdError::BadSampleRate)
    }
}

/// A counter's value, read to single precision as Heka reads it (and widened exactly).
fn parse_counter(value: &[u8]) -> Result<f64, StatsdError> {
    parse_decimal::<f32>(value)
        .map(f64::from)
        .ok_or(StatsdError::BadValue)
}

fn parse_number(value: &[u8]) -> Result<f64, StatsdError> {
    parse_decimal::<f64>(value).ok_or(StatsdError::BadValue)
}

/// A finite decimal number (`-12`, `+0.5`, `1e3`, `.5`). Words such as `inf` and `NaN`, which
/// the float parser would take, are refused by the byte check first.
pub(crate) fn parse_decimal<T>(bytes: &[u8]) -> Option<T>
where
    T: std::str::FromStr + Into<f64> + Copy,
{
    let numeric = |byte: &u8| matches!(byte, b'0'..=b'9' | b'.' | b'-' | b'+' | b'e' | b'E');
    if bytes.is_empty() || bytes.len() > 64 || !bytes.iter().all(numeric) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let value: T = text.parse().ok()?;
    value.into().is_finite().then_some(value)
}

/// Bytes of a stat record before its name: kind, name length, member length, sample rate,
/// value.
pub const STAT_RECORD_HEADER_BYTES: usize = 1 + 2 + 2 + 4 + 8;

/// Why a stat cannot be written as a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatRecordError {
    /// The name is longer than `STAT_NAME_BYTES_MAX` bytes.
    #[error("stat name longer than {STAT_NAME_BYTES_MAX} bytes")]
    NameTooLong,
    /// The set member is longer than `STAT_MEMBER_BYTES_MAX` bytes.
    #[error("set member longer than {STAT_MEMBER_BYTES_MAX} bytes")]
    MemberTooLong,
}

/// Appends `stat` as one ring record:
///
/// ```text
/// struct StatRecord {
///     kind: u8,             // 0 counter, 1 timer, 2 gauge, 3 gauge delta, 4 set
///     name_len: u16,        // little-endian, 1..=STAT_NAME_BYTES_MAX
///     member_len: u16,      // little-endian, 0 unless a set
///     sample_rate: f32,     // little-endian IEEE 754
///     value: f64,           // little-endian IEEE 754, 0 for a set
///     name: [u8; name_len],
///     member: [u8; member_len],
/// }
/// ```
///
/// # Errors
/// A name or member over its bound; nothing is written then.
pub fn encode_stat(stat: &Stat<'_>, out: &mut Vec<u8>) -> Result<(), StatRecordError> {
    if stat.name.len() > STAT_NAME_BYTES_MAX {
        return Err(StatRecordError::NameTooLong);
    }
    let (value, member) = match stat.value {
        StatValue::Number(value) => (value, &[][..]),
        StatValue::Member(member) => (0.0, member),
    };
    if member.len() > STAT_MEMBER_BYTES_MAX {
        return Err(StatRecordError::MemberTooLong);
    }
    out.push(stat.kind.to_byte());
    out.extend_from_slice(&(stat.name.len() as u16).to_le_bytes());
    out.extend_from_slice(&(member.len() as u16).to_le_bytes());
    out.extend_from_slice(&stat.sample_rate.to_le_bytes());
    out.extend_from_slice(&value.to_le_bytes());
    out.extend_from_slice(stat.name);
    out.extend_from_slice(member);
    Ok(())
}

/// Reads exactly one record written by [`encode_stat`]; `None` if the bytes are not one.
pub fn decode_stat(record: &[u8]) -> Option<Stat<'_>> {
    match decode_stat_prefix(record)? {
        (stat, used) if used == record.len() => Some(stat),
        _ => None,
    }
}

/// Reads the record at the start of `bytes`, returning it and its length in bytes.
pub fn decode_stat_prefix(bytes: &[u8]) -> Option<(Stat<'_>, usize)> {
    let header: &[u8; STAT_RECORD_HEADER_BYTES] =
        bytes.get(..STAT_RECORD_HEADER_BYTES)?.try_into().ok()?;
    let kind = StatKind::from_byte(header[0])?;
    let name_len = usize::from(u16::from_le_bytes([header[1], header[2]]));
    let member_len = usize::from(u16::from_le_bytes([header[3], header[4]]));
    let sample_rate = f32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    let mut value_bytes = [0u8; 8];
    value_bytes.copy_from_slice(&header[9..17]);
    let value = f64::from_le_bytes(value_bytes);
    let name_end = STAT_RECORD_HEADER_BYTES + name_len;
    let end = name_end + member_len;
    let name = bytes.get(STAT_RECORD_HEADER_BYTES..name_end)?;
    let member = bytes.get(name_end..end)?;
    let value = match kind {
        StatKind::Set => StatValue::Member(member),
        _ if member_len == 0 && value.is_finite() => StatValue::Number(value),
        _ => return None,
    };
    let stat = Stat {
        name,
        kind,
        value,
        sample_rate,
    };
    (check_name(name).is_ok() && sample_rate > 0.0 && sample_rate <= 1.0).then_some((stat, end))
}

/// Iterates the records of a batch (records written back to back). Stops at the first bytes
/// that are not a record; [`StatRecords::rest`] then holds them.
pub fn stat_records(batch: &[u8]) -> StatRecords<'_> {
    StatRecords { rest: batch }
}

/// Iterator over the records of a batch.
pub struct StatRecords<'a> {
    rest: &'a [u8],
}

impl<'a> StatRecords<'a> {
    /// The bytes not read: empty after a clean batch.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for StatRecords<'a> {
    type Item = Stat<'a>;

    fn next(&mut self) -> Option<Stat<'a>> {
        let rest = self.rest;
        let (stat, used) = decode_stat_prefix(rest)?;
        self.rest = &rest[used..];
        Some(stat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn counter(name: &str, value: f64, sample_rate: f32) -> Stat<'_> {
        Stat {
            name: name.as_bytes(),
            kind: StatKind::Counter,
            value: StatValue::Number(value),
            sample_rate,
        }
    }

    fn number(name: &str, kind: StatKind, value: f64) -> Stat<'_> {
        Stat {
            name: name.as_bytes(),
            kind,
            value: StatValue::Number(value),
            sample_rate: 1.0,
        }
    }

    fn parse(datagram: &str) -> Vec<Result<Stat<'_>, StatsdError>> {
        parse_datagram(datagram.as_bytes()).collect()
    }

    #[test]
    fn seeds_parse_to_the_expected_stats() {
        let member = |name: &'static str, value: &'static str| Stat {
            name: name.as_bytes(),
            kind: StatKind::Set,
            value: StatValue::Member(value.as_bytes()),
            sample_rate: 1.0,
        };
        let seeds: Vec<(&str, Vec<Result<Stat<'_>, StatsdError>>)> = vec![
            ("gorets:1|c", vec![Ok(counter("gorets", 1.0, 1.0))]),
            ("gorets:1|c|@0.1", vec![Ok(counter("gorets", 1.0, 0.1))]),
            (
                "glork:320|ms",
                vec![Ok(number("glork", StatKind::Timer, 320.0))],
            ),
            (
                "glork:320|ms|@0.5",
                vec![Ok(Stat {
                    sample_rate: 0.5,
                    ..number("glork", StatKind::Timer, 320.0)
                })],
            ),
            (
                "gaugor:333|g",
                vec![Ok(number("gaugor", StatKind::Gauge, 333.0))],
            ),
            (
                "gaugor:-10|g",
                vec![Ok(number("gaugor", StatKind::GaugeDelta, -10.0))],
            ),
            (
                "gaugor:+4|g",
                vec![Ok(number("gaugor", StatKind::GaugeDelta, 4.0))],
            ),
            ("uniques:765|s", vec![Ok(member("uniques", "765"))]),
            ("uniques:|s", vec![Ok(member("uniques", "0"))]),
            ("hist:2|h", vec![Ok(counter("hist", 2.0, 1.0))]),
            ("neg:-3|c", vec![Ok(counter("neg", -3.0, 1.0))]),
            ("frac:0.5|c", vec![Ok(counter("frac", 0.5, 1.0))]),
            (
                "a:1|c\nb:2|ms\n\n  c:3|g \r\n",
                vec![
                    Ok(counter("a", 1.0, 1.0)),
                    Ok(number("b", StatKind::Timer, 2.0)),
                    Ok(number("c", StatKind::Gauge, 3.0)),
                ],
            ),
            (
                "multi:1|c:2|ms:3|g",
                vec![
                    Ok(counter("multi", 1.0, 1.0)),
                    Ok(number("multi", StatKind::Timer, 2.0)),
                    Ok(number("multi", StatKind::Gauge, 3.0)),
                ],
            ),
            (
                "multi:1|c:oops:3|g",
                vec![
                    Ok(counter("multi", 1.0, 1.0)),
                    Err(StatsdError::MissingType),
                    Ok(number("multi", StatKind::Gauge, 3.0)),
                ],
            ),
            ("", vec![]),
            (" \n\t\n", vec![]),
            ("nocolon", vec![Err(StatsdError::MissingColon)]),
            (":1|c", vec![Err(StatsdError::EmptyName)]),
            ("a b:1|c", vec![Err(StatsdError::BadName)]),
            ("a:1", vec![Err(StatsdError::MissingType)]),
            ("a:", vec![Err(StatsdError::MissingType)]),
            ("a:1|", vec![Err(StatsdError::MissingType)]),
            ("a:1|x", vec![Err(StatsdError::UnknownType)]),
            ("a:1|cc", vec![Err(StatsdError::UnknownType)]),
            ("a:|c", vec![Err(StatsdError::BadValue)]),
            ("a:abc|c", vec![Err(StatsdError::BadValue)]),
            ("a:inf|g", vec![Err(StatsdError::BadValue)]),
            ("a:NaN|ms", vec![Err(StatsdError::BadValue)]),
            ("a:1e400|ms", vec![Err(StatsdError::BadValue)]),
            ("a:-1|ms", vec![Err(StatsdError::NegativeTimer)]),
            ("a:1|c|0.1", vec![Err(StatsdError::BadSampleRate)]),
            ("a:1|c|@", vec![Err(StatsdError::BadSampleRate)]),
            ("a:1|c|@0", vec![Err(StatsdError::BadSampleRate)]),
            ("a:1|c|@1.5", vec![Err(StatsdError::BadSampleRate)]),
            ("a:1|c|@-0.5", vec![Err(StatsdError::BadSampleRate)]),
            ("a:1|c|@0.5|#tag", vec![Err(StatsdError::ExtraSection)]),
            (
                "bad\ngood:1|c",
                vec![
                    Err(StatsdError::MissingColon),
                    Ok(counter("good", 1.0, 1.0)),
                ],
            ),
        ];
        for (datagram, expected) in seeds {
            assert_eq!(parse(datagram), expected, "datagram {datagram:?}");
        }
    }

    #[test]
    fn bounds_on_names_and_members_are_enforced() {
        let long_name = format!("{}:1|c", "n".repeat(STAT_NAME_BYTES_MAX + 1));
        assert_eq!(parse(&long_name), vec![Err(StatsdError::NameTooLong)]);
        let longest_name = format!("{}:1|c", "n".repeat(STAT_NAME_BYTES_MAX));
        assert!(parse(&longest_name)[0].is_ok());
        let long_member = format!("s:{}|s", "m".repeat(STAT_MEMBER_BYTES_MAX + 1));
        assert_eq!(parse(&long_member), vec![Err(StatsdError::MemberTooLong)]);
    }

    #[test]
    fn counters_read_to_single_precision_like_heka() {
        // 0.1 is not exact in binary; single precision rounds it differently from double.
        let stats = parse("a:0.1|c");
        assert_eq!(stats, vec![Ok(counter("a", f64::from(0.1f32), 1.0))]);
        assert_ne!(f64::from(0.1f32), 0.1);
    }

    #[test]
    fn error_codes_are_distinct() {
        let errors = [
            StatsdError::MissingColon,
            StatsdError::EmptyName,
            StatsdError::BadName,
            StatsdError::NameTooLong,
            StatsdError::MissingType,
            StatsdError::UnknownType,
            StatsdError::BadValue,
            StatsdError::NegativeTimer,
            StatsdError::BadSampleRate,
            StatsdError::ExtraSection,
            StatsdError::MemberTooLong,
        ];
        let codes: std::collections::HashSet<_> = errors.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), errors.len());
    }

    #[test]
    fn records_round_trip_and_reject_garbage() {
        let stats = [
            counter("a.b", 3.0, 0.25),
            number("t", StatKind::Timer, 12.5),
            number("g", StatKind::GaugeDelta, -1.0),
            Stat {
                name: b"s",
                kind: StatKind::Set,
                value: StatValue::Member(b"user-1"),
                sample_rate: 1.0,
            },
        ];
        let mut batch = Vec::new();
        for stat in &stats {
            let start = batch.len();
            encode_stat(stat, &mut batch).expect("within bounds");
            assert_eq!(decode_stat(&batch[start..]), Some(*stat));
        }
        let mut records = stat_records(&batch);
        assert_eq!(records.by_ref().collect::<Vec<_>>(), stats.to_vec());
        assert!(records.rest().is_empty());
        // Truncated, over-long, bad kind, non-finite value.
        assert_eq!(decode_stat(&batch[..batch.len() - 1]), None);
        let mut one = Vec::new();
        encode_stat(&stats[0], &mut one).expect("within bounds");
        let mut longer = one.clone();
        longer.push(0);
        assert_eq!(decode_stat(&longer), None);
        let mut bad_kind = one.clone();
        bad_kind[0] = 9;
        assert_eq!(decode_stat(&bad_kind), None);
        let mut nan = one.clone();
        nan[9..17].copy_from_slice(&f64::NAN.to_le_bytes());
        assert_eq!(decode_stat(&nan), None);
        let long = "x".repeat(STAT_NAME_BYTES_MAX + 1);
        let too_long = counter(&long, 1.0, 1.0);
        assert_eq!(
            encode_stat(&too_long, &mut one),
            Err(StatRecordError::NameTooLong)
        );
    }

    proptest! {
        #[test]
        fn no_input_panics_and_every_stat_is_well_formed(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            for stat in parse_datagram(&bytes).flatten() {
                prop_assert!(check_name(stat.name).is_ok());
                prop_assert!(stat.sample_rate > 0.0 && stat.sample_rate <= 1.0);
                if let StatValue::Number(value) = stat.value {
                    prop_assert!(value.is_finite());
                }
                let mut record = Vec::new();
                prop_assert!(encode_stat(&stat, &mut record).is_ok());
                prop_assert_eq!(decode_stat(&record), Some(stat));
            }
            // Records never panic either.
            let _ = stat_records(&bytes).count();
        }

        #[test]
        fn printed_stats_parse_back(
            name in "[a-z][a-z0-9_.-]{0,20}",
            values in proptest::collection::vec((0u8..4, -1000i32..1000, 1u32..=100), 1..6),
        ) {
            // The oracle: build the line by hand, then compare field by field.
            let mut line = name.clone();
            let mut expected = Vec::new();
            for (kind, value, rate) in &values {
                let rate = *rate as f32 / 100.0;
                let (type_, kind, value) = match kind {
                    0 => ("c", StatKind::Counter, *value as f64),
                    1 => ("ms", StatKind::Timer, value.unsigned_abs() as f64),
                    2 => ("g", StatKind::Gauge, value.unsigned_abs() as f64),
                    _ => ("g", StatKind::GaugeDelta, *value as f64),
                };
                let sign = if kind == StatKind::GaugeDelta && value >= 0.0 { "+" } else { "" };
                line.push_str(&format!(":{sign}{value}|{type_}|@{rate}"));
                let value = StatValue::Number(value);
                expected.push(Stat { name: name.as_bytes(), kind, value, sample_rate: rate });
            }
            let parsed: Vec<_> = parse_datagram(line.as_bytes()).collect();
            prop_assert_eq!(parsed.len(), expected.len());
            for (parsed, expected) in parsed.into_iter().zip(expected) {
                prop_assert_eq!(parsed, Ok(expected));
            }
        }
    }
}
