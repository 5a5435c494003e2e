//! CarbonOutput's encoding: the graphite plaintext lines to send for a `heka.statmetric`
//! message, checked as Heka checks them, and their packing into UDP datagrams.
//!
//! Lines come from the Payload, trimmed of spaces, tabs and newlines at both ends and split on
//! `\n`. A line is sent, exactly as it is plus `\n`, when it has three whitespace-separated
//! parts `name value timestamp` where the value reads as a 64-bit float and the timestamp as a
//! 32-bit unsigned integer (decimal, or `0x`/`0o`/`0b`/leading-`0` forms, as Go's base-0
//! parse reads them). Other lines are counted as malformed and skipped, as Heka logs and
//! skips them.
//!
//! When the Payload is empty (a StatAccumInput with `emit_in_payload = false`), gyges builds
//! the lines from the fields instead: one line per integer or double field other than
//! `timestamp`, stamped with the `timestamp` field (or the message's Timestamp in seconds).
//! Heka sent nothing for such a message.
//!
//! Transport (done by the runtime): TCP writes the lines as one stream (a new connection per
//! message unless `tcp_keep_alive`, then reconnecting once on a write error, as Heka does);
//! UDP sends [`datagrams`]: whole lines packed greedily into datagrams of at most
//! `max_datagram_size` bytes. Heka cut after the first line that passed 62 KiB, so its
//! datagrams could exceed 64 KiB; here no datagram passes the bound, and a line that alone
//! passes it is dropped and counted.
//!
//! Everything is pure and allocation-free past the caller's output buffer.

use memchr::memchr;

use super::{put_float_fixed, put_int};
use crate::limits::CARBON_DATAGRAM_BYTES_DEFAULT;
use crate::message::{FieldValue, MessageView, StrHeader};

/// How CarbonOutput reaches carbon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CarbonProtocol {
    /// One TCP connection carrying the lines (Heka's default).
    Tcp,
    /// UDP datagrams of at most `datagram_bytes_max` bytes, each holding whole lines.
    Udp,
}

/// CarbonOutput's options, checked (see `stats::config::CarbonOutput`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarbonSettings {
    /// `host:port` of carbon's plaintext listener (default `localhost:2003`).
    pub address: String,
    /// Whether lines go over TCP or UDP (the `protocol` option, default `tcp`).
    pub protocol: CarbonProtocol,
    /// Keep the TCP connection between messages.
    pub tcp_keep_alive: bool,
    /// Largest UDP datagram, in bytes.
    pub datagram_bytes_max: usize,
}

impl Default for CarbonSettings {
    fn default() -> Self {
        CarbonSettings {
            address: "localhost:2003".into(),
            protocol: CarbonProtocol::Tcp,
            tcp_keep_alive: false,
            datagram_bytes_max: CARBON_DATAGRAM_BYTES_DEFAULT,
        }
    }
}

/// Why a statmetric line is not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not have exactly three space-separated parts: name, value, timestamp.
    #[error("a statmetric line needs exactly three parts: name value timestamp")]
    PartCount,
    /// The timestamp is not a 32-bit unsigned integer.
    #[error("the timestamp is not a 32-bit unsigned integer")]
    BadTimestamp,
    /// The value is not a number.
    #[error("the value is not a number")]
    BadValue,
    /// A field is not an integer or a double, or its name cannot stand in a line.
    #[error("the field is not an integer or a double, or its name cannot stand in a line")]
    BadField,
}

impl LineError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            LineError::PartCount => "part_count",
            LineError::BadTimestamp => "bad_timestamp",
            LineError::BadValue => "bad_value",
            LineError::BadField => "bad_field",
        }
    }
}

/// What [`carbon_lines`] did with one message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinesOutcome {
    /// Lines appended.
    pub lines: usize,
    /// Lines (or fields) skipped.
    pub malformed: usize,
    /// The last reason a line was skipped.
    pub last_error: Option<LineError>,
}

impl LinesOutcome {
    fn skip(&mut self, error: LineError) {
        self.malformed += 1;
        self.last_error = Some(error);
    }
}

/// Checks a line as Heka's CarbonOutput does.
///
/// # Errors
/// The first check that fails.
pub fn check_line(line: &[u8]) -> Result<(), LineError> {
    let mut parts = line
        .split(|byte| byte.is_ascii_whitespace())
        .filter(|part| !part.is_empty());
    let (Some(_name), Some(value), Some(timestamp), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LineError::PartCount);
    };
    parse_uint_base0_u32(timestamp).ok_or(LineError::BadTimestamp)?;
    if !is_go_float(value) {
        return Err(LineError::BadValue);
    }
    Ok(())
}

/// Appends the lines to send for `view` to `out`, each ending in `\n`.
pub fn carbon_lines(view: &MessageView<'_>, out: &mut Vec<u8>) -> LinesOutcome {
    let mut outcome = LinesOutcome::default();
    let payload = view.str_header(StrHeader::Payload).unwrap_or(b"");
    let payload = trim(payload);
    if payload.is_empty() {
        lines_from_fields(view, out, &mut outcome);
        return outcome;
    }
    for line in payload.split(|&byte| byte == b'\n') {
        match check_line(line) {
            Ok(()) => {
                out.extend_from_slice(line);
                out.push(b'\n');
                outcome.lines += 1;
            }
            Err(error) => outcome.skip(error),
        }
    }
    outcome
}

fn trim(bytes: &[u8]) -> &[u8] {
    let blank = |byte: &u8| matches!(byte, b' ' | b'\t' | b'\n');
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

fn lines_from_fields(view: &MessageView<'_>, out: &mut Vec<u8>, outcome: &mut LinesOutcome) {
    let timestamp = match view.field(b"timestamp", 0).and_then(|field| field.value(0)) {
        Some(FieldValue::Integer(seconds)) => seconds,
        _ => view.timestamp().unwrap_or(0).div_euclid(1_000_000_000),
    };
    view.for_each_field(|field| {
        let name = field.name().unwrap_or(b"");
        if name == b"timestamp" {
            return;
        }
        let usable = !name.is_empty() && name.iter().all(|&byte| byte > b' ' && byte != 0x7f);
        let value = field.value(0);
        if !usable || !matches!(value, Some(FieldValue::Integer(_) | FieldValue::Double(_))) {
            outcome.skip(LineError::BadField);
            return;
        }
        out.extend_from_slice(name);
        out.push(b' ');
        match value {
            Some(FieldValue::Integer(number)) => put_int(out, number),
            Some(FieldValue::Double(number)) => put_float_fixed(out, number, 6),
            _ => {}
        }
        out.push(b' ');
        put_int(out, timestamp);
        out.push(b'\n');
        outcome.lines += 1;
    });
}

/// Go's `strconv.ParseUint(text, 0, 32)`: decimal, `0x` hex, `0o` or leading-`0` octal, `0b`
/// binary, with `_` allowed between digits (and after a base prefix).
fn parse_uint_base0_u32(text: &[u8]) -> Option<u32> {
    let (radix, digits, prefixed) = match text {
        [b'0', b'x' | b'X', rest @ ..] => (16, rest, true),
        [b'0', b'o' | b'O', rest @ ..] => (8, rest, true),
        [b'0', b'b' | b'B', rest @ ..] => (2, rest, true),
        [b'0', rest @ ..] if !rest.is_empty() => (8, rest, false),
        _ => (10, text, false),
    };
    if digits.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    // Whether the byte before was a digit (or a base prefix, which counts as one for `_`).
    let mut after_digit = prefixed || radix == 8;
    for (index, &byte) in digits.iter().enumerate() {
        if byte == b'_' {
            let next_is_digit = digits
                .get(index + 1)
                .is_some_and(|next| char::from(*next).is_digit(radix));
            if !after_digit || !next_is_digit {
                return None;
            }
            after_digit = false;
            continue;
        }
        let digit = char::from(byte).to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(digit)?;
        after_digit = true;
    }
    Some(value)
}

/// Whether Go's `strconv.ParseFloat(text, 64)` accepts `text` (decimal forms, `inf`,
/// `infinity` and `nan` in any case with a sign; not hexadecimal floats or underscores).
/// A decimal that overflows to infinity is refused, as Go reports it out of range.
fn is_go_float(text: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    let Ok(value) = text.parse::<f64>() else {
        return false;
    };
    if value.is_infinite() {
        let word = text.trim_start_matches(['+', '-']).to_ascii_lowercase();
        return word == "inf" || word == "infinity";
    }
    true
}

/// Packs newline-terminated lines into datagrams of at most `bytes_max` bytes each.
pub fn datagrams(lines: &[u8], bytes_max: usize) -> Datagrams<'_> {
    Datagrams {
        lines,
        position: 0,
        bytes_max,
        oversize_lines: 0,
    }
}

/// Iterator over the datagrams of a run of lines.
#[derive(Debug)]
pub struct Datagrams<'a> {
    lines: &'a [u8],
    position: usize,
    bytes_max: usize,
    oversize_lines: usize,
}

impl Datagrams<'_> {
    /// Lines dropped so far because they alone pass the bound.
    pub fn oversize_lines(&self) -> usize {
        self.oversize_lines
    }
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let lines = self.lines;
        let mut start = self.position;
        let mut end = start;
        // Each turn moves `end` (or `start` and `end`) past one line, so the loop ends.
        while end < lines.len() {
            let line_end = memchr(b'\n', &lines[end..]).map_or(lines.len(), |at| end + at + 1);
            let line_bytes = line_end - end;
            if line_bytes > self.bytes_max {
                if end > start {
                    break;
                }
                self.oversize_lines += 1;
                start = line_end;
                end = line_end;
                continue;
            }
            if end - start + line_bytes > self.bytes_max {
                break;
            }
            end = line_end;
        }
        self.position = end;
        debug_assert!(end - start <= self.bytes_max);
        (end > start).then(|| &lines[start..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::proto::{Field, Message, ValueType};
    use crate::message::ProtoView;
    use crate::stats::accumulator::{encode_statmetric, Accumulator, AccumulatorSettings};
    use crate::stats::statsd::parse_datagram;
    use crate::stats::InjectHeaders;
    use proptest::prelude::*;
    use prost::Message as _;
    use std::io::{Read as _, Write as _};

    fn with_payload(payload: &str) -> Vec<u8> {
        Message {
            uuid: vec![0; 16],
            timestamp: 1_700_000_000_000_000_000,
            payload: Some(payload.into()),
            ..Message::default()
        }
        .encode_to_vec()
    }

    fn lines_of(bytes: &[u8]) -> (String, LinesOutcome) {
        let mut out = Vec::new();
        let outcome = carbon_lines(&MessageView::Proto(ProtoView::new(bytes)), &mut out);
        (String::from_utf8(out).expect("text"), outcome)
    }

    #[test]
    fn lines_are_checked_as_heka_checks_them() {
        let seeds: &[(&str, Result<(), LineError>)] = &[
            ("stats.a 1 1700000000", Ok(())),
            ("stats.a 1.500000 1700000000", Ok(())),
            ("stats.a   -2e3\t1700000000", Ok(())),
            ("x NaN 0", Ok(())),
            ("x +Inf 0x10", Ok(())),
            ("x 1 0o17", Ok(())),
            ("x 1 017", Ok(())),
            ("x 1 0b101", Ok(())),
            ("x 1 1_000", Ok(())),
            ("x 1 4294967295", Ok(())),
            ("x 1 4294967296", Err(LineError::BadTimestamp)),
            ("x 1 -1", Err(LineError::BadTimestamp)),
            ("x 1 +1", Err(LineError::BadTimestamp)),
            ("x 1 1__0", Err(LineError::BadTimestamp)),
            ("x 1 10_", Err(LineError::BadTimestamp)),
            ("x 1 08", Err(LineError::BadTimestamp)),
            ("x 1 0x", Err(LineError::BadTimestamp)),
            ("x 1 1.5", Err(LineError::BadTimestamp)),
            ("x abc 1", Err(LineError::BadValue)),
            ("x 1e400 1", Err(LineError::BadValue)),
            ("x 1", Err(LineError::PartCount)),
            ("x 1 2 3", Err(LineError::PartCount)),
            ("", Err(LineError::PartCount)),
        ];
        for &(line, expected) in seeds {
            assert_eq!(check_line(line.as_bytes()), expected, "line {line:?}");
        }
    }

    #[test]
    fn payload_lines_pass_through_as_written() {
        let payload = "\n stats.a 1.000000 1700000000\nbroken line\n\nstats.b  2 1700000000\n\n";
        let (lines, outcome) = lines_of(&with_payload(payload));
        assert_eq!(
            lines,
            "stats.a 1.000000 1700000000\nstats.b  2 1700000000\n"
        );
        assert_eq!(outcome.lines, 2);
        assert_eq!(
            outcome.malformed, 2,
            "the inner empty line counts too, as in Heka"
        );
        assert_eq!(outcome.last_error, Some(LineError::PartCount));
    }

    #[test]
    fn a_statmetric_message_round_trips_to_its_lines() {
        let mut accumulator = Accumulator::with_seed(AccumulatorSettings::default(), 1);
        for stat in parse_datagram(b"a:1|c\nb:2|ms\nc:3|g\nd:x|s") {
            accumulator.add(&stat.expect("valid")).expect("room");
        }
        let rollup = accumulator.flush(1_700_000_000 * 1_000_000_000);
        let headers = InjectHeaders {
            uuid: [1; 16],
            timestamp_ns: 1_700_000_000 * 1_000_000_000,
            type_: b"heka.statmetric",
            logger: b"StatAccumInput",
            hostname: b"h",
            pid: 1,
        };
        let mut scratch = Vec::new();
        let mut sent = Vec::new();
        encode_statmetric(
            &rollup,
            &headers,
            || [2; 16],
            65536,
            &mut scratch,
            |message| {
                let outcome = carbon_lines(&MessageView::Proto(ProtoView::new(message)), &mut sent);
                assert_eq!(outcome.malformed, 0);
            },
        );
        assert_eq!(sent, rollup.payload());
    }

    #[test]
    fn fields_stand_in_for_an_empty_payload() {
        let field = |name: &str, value_type: ValueType| Field {
            name: name.into(),
            value_type: Some(value_type as i32),
            representation: Some(String::new()),
            value_string: vec![],
            value_bytes: vec![],
            value_integer: vec![],
            value_double: vec![],
            value_bool: vec![],
        };
        let message = Message {
            uuid: vec![0; 16],
            timestamp: 5_000_000_000,
            payload: Some(String::new()),
            fields: vec![
                Field {
                    value_integer: vec![1_700_000_000],
                    ..field("timestamp", ValueType::Integer)
                },
                Field {
                    value_integer: vec![13],
                    ..field("stats.count", ValueType::Integer)
                },
                Field {
                    value_double: vec![1.3],
                    ..field("stats.rate", ValueType::Double)
                },
                Field {
                    value_string: vec!["no".into()],
                    ..field("stats.text", ValueType::String)
                },
            ],
            ..Message::default()
        };
        let (lines, outcome) = lines_of(&message.encode_to_vec());
        assert_eq!(
            lines,
            "stats.count 13 1700000000\nstats.rate 1.300000 1700000000\n"
        );
        assert_eq!((outcome.lines, outcome.malformed), (2, 1));

        let mut without_timestamp = message.clone();
        without_timestamp.fields.remove(0);
        without_timestamp.fields.truncate(1);
        let (lines, _) = lines_of(&without_timestamp.encode_to_vec());
        assert_eq!(lines, "stats.count 13 5\n");
    }

    #[test]
    fn datagrams_pack_whole_lines_within_the_bound() {
        let lines = b"aaaa 1 1\nbbbb 2 2\ncc 3 3\nthis-line-is-far-too-long 1 1\ndd 4 4\n";
        let mut packer = datagrams(lines, 18);
        let got: Vec<&[u8]> = packer.by_ref().collect();
        assert_eq!(
            got,
            vec![
                &b"aaaa 1 1\nbbbb 2 2\n"[..],
                &b"cc 3 3\n"[..],
                &b"dd 4 4\n"[..]
            ]
        );
        assert_eq!(packer.oversize_lines(), 1);
        assert_eq!(datagrams(b"", 10).count(), 0);
        // A last line without a newline is still a line.
        let got: Vec<&[u8]> = datagrams(b"a 1 1\nb 2 2", 100).collect();
        assert_eq!(got, vec![&b"a 1 1\nb 2 2"[..]]);
    }

    proptest! {
        #[test]
        fn datagrams_hold_every_fitting_line_once_in_order(
            lengths in proptest::collection::vec(1usize..40, 0..60),
            bytes_max in 1usize..64,
        ) {
            let mut lines = Vec::new();
            let mut fitting = Vec::new();
            for (index, length) in lengths.iter().enumerate() {
                let line: Vec<u8> = std::iter::repeat_n(b'a' + (index % 26) as u8, *length)
                    .chain(std::iter::once(b'\n'))
                    .collect();
                if line.len() <= bytes_max {
                    fitting.extend_from_slice(&line);
                }
                lines.extend_from_slice(&line);
            }
            let mut packer = datagrams(&lines, bytes_max);
            let mut joined = Vec::new();
            for datagram in packer.by_ref() {
                prop_assert!(!datagram.is_empty() && datagram.len() <= bytes_max);
                prop_assert!(datagram.ends_with(b"\n"));
                joined.extend_from_slice(datagram);
            }
            prop_assert_eq!(joined, fitting);
            let oversize = lengths.iter().filter(|length| **length + 1 > bytes_max).count();
            prop_assert_eq!(packer.oversize_lines(), oversize);
        }

        #[test]
        fn no_payload_panics(payload in "[ -~\t\n]{0,200}") {
            let (lines, outcome) = lines_of(&with_payload(&payload));
            prop_assert_eq!(lines.lines().count(), outcome.lines);
            for line in lines.lines() {
                prop_assert!(check_line(line.as_bytes()).is_ok());
            }
        }
    }

    /// Against a real carbon-cache (Debian's `graphite-carbon`), when one is named:
    /// `GYGES_CARBON_TCP` and `GYGES_CARBON_UDP` are its line receivers (`127.0.0.1:port`) and
    /// `GYGES_CARBON_WHISPER` its `LOCAL_DATA_DIR`. Rollups of the known traffic go over both,
    /// under the prefixes `gyges_tcp` and `gyges_udp`, and carbon must store them; the gauge's
    /// value is read back with `whisper-fetch`. Without the variables the test says so and
    /// passes; `docs/stats.md` shows the carbon.conf used.
    #[test]
    fn a_real_carbon_cache_stores_the_rollup() {
        let (Ok(tcp), Ok(udp), Ok(whisper)) = (
            std::env::var("GYGES_CARBON_TCP"),
            std::env::var("GYGES_CARBON_UDP"),
            std::env::var("GYGES_CARBON_WHISPER"),
        ) else {
            eprintln!("skipped: set GYGES_CARBON_TCP, GYGES_CARBON_UDP and GYGES_CARBON_WHISPER");
            return;
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970");
        let rollup = |prefix: &str| {
            let settings = AccumulatorSettings {
                global_prefix: prefix.into(),
                ..AccumulatorSettings::default()
            };
            let mut accumulator = Accumulator::with_seed(settings, 1);
            for stat in parse_datagram(b"gorets:1|c|@0.1\ngaugor:327|g\nglork:3|ms:5|ms\nu:a|s") {
                accumulator.add(&stat.expect("valid")).expect("room");
            }
            accumulator.flush(now.as_nanos() as i64)
        };
        let tcp_rollup = rollup("gyges_tcp");
        let mut stream = std::net::TcpStream::connect(&tcp).expect("carbon's TCP receiver");
        stream.write_all(tcp_rollup.payload()).expect("write");
        drop(stream);
        let udp_rollup = rollup("gyges_udp");
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        for datagram in datagrams(udp_rollup.payload(), CARBON_DATAGRAM_BYTES_DEFAULT) {
            socket.send_to(datagram, &udp).expect("send");
        }
        let base = std::path::Path::new(&whisper);
        let files = [
            "gyges_tcp/counters/gorets/rate.wsp",
            "gyges_tcp/gauges/gaugor.wsp",
            "gyges_tcp/timers/glork/upper_90.wsp",
            "gyges_tcp/sets/u/count.wsp",
            "gyges_tcp/statsd/numStats.wsp",
            "gyges_udp/counters/gorets/count.wsp",
            "gyges_udp/gauges/gaugor.wsp",
        ];
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while files.iter().any(|file| !base.join(file).exists()) {
            assert!(
                std::time::Instant::now() < deadline,
                "carbon did not store every metric"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        let fetched = std::process::Command::new("whisper-fetch")
            .arg("--from")
            .arg((now.as_secs() - 120).to_string())
            .arg(base.join("gyges_tcp/gauges/gaugor.wsp"))
            .output()
            .expect("whisper-fetch runs");
        let text = String::from_utf8_lossy(&fetched.stdout);
        assert!(
            text.lines().any(|line| line.ends_with("\t327.000000")),
            "{text}"
        );
    }

    /// The lines reach a carbon-style receiver on loopback byte for byte: over UDP as the
    /// packed datagrams, over TCP as one stream.
    #[test]
    fn a_receiver_gets_exactly_the_lines() {
        let mut lines = Vec::new();
        for index in 0..300 {
            lines.extend_from_slice(
                format!("stats.gauges.g{index:03} {index}.000000 1700000000\n").as_bytes(),
            );
        }
        let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        receiver
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("timeout");
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let mut sent = 0;
        for datagram in datagrams(&lines, 4096) {
            sender
                .send_to(datagram, receiver.local_addr().expect("addr"))
                .expect("send");
            sent += 1;
        }
        assert!(sent > 1);
        let mut received = Vec::new();
        let mut buffer = [0u8; 65_536];
        for _ in 0..sent {
            let bytes = receiver.recv(&mut buffer).expect("a datagram on loopback");
            assert!(bytes <= 4096);
            assert!(buffer[..bytes].ends_with(b"\n"));
            received.extend_from_slice(&buffer[..bytes]);
        }
        assert_eq!(received, lines);

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let address = listener.local_addr().expect("addr");
        let writer = std::thread::spawn({
            let lines = lines.clone();
            move || {
                let mut stream = std::net::TcpStream::connect(address).expect("connect");
                stream.write_all(&lines).expect("write");
            }
        });
        let (mut stream, _) = listener.accept().expect("accept");
        let mut received = Vec::new();
        stream.read_to_end(&mut received).expect("read");
        writer.join().expect("writer");
        assert_eq!(received, lines);
    }
}
