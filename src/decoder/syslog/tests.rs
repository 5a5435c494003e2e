//! Tests of the syslog parser: a seed table of real-world lines with their expected parts,
//! the mapping to Heka messages read back by an independent decoder (prost), properties over
//! arbitrary and generated lines, and a bounded fuzz loop.

use std::borrow::Cow;

use proptest::prelude::*;
use prost::Message as _;

use super::time::days_from_civil;
use super::*;
use crate::limits::SYSLOG_SD_PARAMS_MAX;
use crate::message::proto::{self, ValueType};
use crate::message::{ProtoView, StrHeader};

/// 2026-12-02T13:00:00Z, read in UTC: the receiver of most seeds.
const RECEIVED_NS: i64 = 1_796_216_400_000_000_000;

fn context() -> SyslogContext {
    SyslogContext::new(RECEIVED_NS, 0)
}

/// Nanoseconds since the epoch of a UTC reading, computed from the calendar alone.
fn utc(date: (i64, u32, u32), clock: (i64, i64, i64), nanosecond: i64) -> i64 {
    let (year, month, day) = date;
    let (hour, minute, second) = clock;
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    seconds * 1_000_000_000 + nanosecond
}

/// What a seed line must parse to. Strings stand for byte slices of the line.
struct Seed {
    /// Where the line's shape comes from.
    source: &'static str,
    line: &'static [u8],
    format: Format,
    priority: u8,
    timestamp_ns: Option<i64>,
    hostname: Option<&'static str>,
    app_name: Option<&'static str>,
    procid: Option<&'static str>,
    msgid: Option<&'static str>,
    /// `(SD-ID, PARAM-NAME, unescaped value)`.
    params: &'static [(&'static str, &'static str, &'static str)],
    message: &'static str,
}

fn seeds() -> Vec<Seed> {
    let event_log_params: &[(&str, &str, &str)] = &[
        ("exampleSDID@32473", "iut", "3"),
        ("exampleSDID@32473", "eventSource", "Application"),
        ("exampleSDID@32473", "eventID", "1011"),
    ];
    vec![
        Seed {
            source: "RFC 5424 §6.5 example 1 (BOM before MSG)",
            line: b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
            format: Format::Rfc5424,
            priority: 34,
            timestamp_ns: Some(utc((2003, 10, 11), (22, 14, 15), 3_000_000)),
            hostname: Some("mymachine.example.com"),
            app_name: Some("su"),
            procid: None,
            msgid: Some("ID47"),
            params: &[],
            message: "'su root' failed for lonvick on /dev/pts/8",
        },
        Seed {
            source: "RFC 5424 §6.5 example 2 (offset, microseconds, no MSGID)",
            line: b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            format: Format::Rfc5424,
            priority: 165,
            timestamp_ns: Some(utc((2003, 8, 24), (12, 14, 15), 3_000)),
            hostname: Some("192.0.2.1"),
            app_name: Some("myproc"),
            procid: Some("8710"),
            msgid: None,
            params: &[],
            message: "%% It's time to make the do-nuts.",
        },
        Seed {
            source: "RFC 5424 §6.5 example 3 (structured data and MSG)",
            line: b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \xEF\xBB\xBFAn application event log entry...",
            format: Format::Rfc5424,
            priority: 165,
            timestamp_ns: Some(utc((2003, 10, 11), (22, 14, 15), 3_000_000)),
            hostname: Some("mymachine.example.com"),
            app_name: Some("evntslog"),
            procid: None,
            msgid: Some("ID47"),
            params: event_log_params,
            message: "An application event log entry...",
        },
        Seed {
            source: "RFC 5424 §6.5 example 4 (two elements, no MSG)",
            line: b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]",
            format: Format::Rfc5424,
            priority: 165,
            timestamp_ns: Some(utc((2003, 10, 11), (22, 14, 15), 3_000_000)),
            hostname: Some("mymachine.example.com"),
            app_name: Some("evntslog"),
            procid: None,
            msgid: Some("ID47"),
            params: &[
                ("exampleSDID@32473", "iut", "3"),
                ("exampleSDID@32473", "eventSource", "Application"),
                ("exampleSDID@32473", "eventID", "1011"),
                ("examplePriority@32473", "class", "high"),
            ],
            message: "",
        },
        Seed {
            source: "util-linux logger --rfc5424 (timeQuality element)",
            line: b"<13>1 2026-12-02T14:05:01.123456+01:00 myhost alice - - [timeQuality tzKnown=\"1\" isSynced=\"1\" syncAccuracy=\"400000\"] hello world\n",
            format: Format::Rfc5424,
            priority: 13,
            timestamp_ns: Some(utc((2026, 12, 2), (13, 5, 1), 123_456_000)),
            hostname: Some("myhost"),
            app_name: Some("alice"),
            procid: None,
            msgid: None,
            params: &[
                ("timeQuality", "tzKnown", "1"),
                ("timeQuality", "isSynced", "1"),
                ("timeQuality", "syncAccuracy", "400000"),
            ],
            message: "hello world",
        },
        Seed {
            source: "util-linux logger --rfc3164 to a server",
            line: b"<13>Dec  2 14:05:01 myhost alice: hello world\n",
            format: Format::Rfc3164,
            priority: 13,
            timestamp_ns: Some(utc((2026, 12, 2), (14, 5, 1), 0)),
            hostname: Some("myhost"),
            app_name: Some("alice"),
            procid: None,
            msgid: None,
            params: &[],
            message: "hello world",
        },
        Seed {
            source: "logger to /dev/log: no hostname, a pid",
            line: b"<13>Dec  2 14:05:01 alice[4242]: hello",
            format: Format::Rfc3164,
            priority: 13,
            timestamp_ns: Some(utc((2026, 12, 2), (14, 5, 1), 0)),
            hostname: None,
            app_name: Some("alice"),
            procid: Some("4242"),
            msgid: None,
            params: &[],
            message: "hello",
        },
        Seed {
            source: "rsyslog RSYSLOG_ForwardFormat (RFC 3339 in the BSD position)",
            line: b"<30>2026-12-02T14:05:01.123456+01:00 web1 systemd[1]: Started Session 7 of user bob.\n",
            format: Format::Rfc3164,
            priority: 30,
            timestamp_ns: Some(utc((2026, 12, 2), (13, 5, 1), 123_456_000)),
            hostname: Some("web1"),
            app_name: Some("systemd"),
            procid: Some("1"),
            msgid: None,
            params: &[],
            message: "Started Session 7 of user bob.",
        },
        Seed {
            source: "rsyslog RSYSLOG_TraditionalForwardFormat",
            line: b"<86>Dec  2 14:05:01 web1 sshd[31337]: Accepted publickey for bob from 192.0.2.7 port 52311 ssh2",
            format: Format::Rfc3164,
            priority: 86,
            timestamp_ns: Some(utc((2026, 12, 2), (14, 5, 1), 0)),
            hostname: Some("web1"),
            app_name: Some("sshd"),
            procid: Some("31337"),
            msgid: None,
            params: &[],
            message: "Accepted publickey for bob from 192.0.2.7 port 52311 ssh2",
        },
        Seed {
            source: "rsyslog RSYSLOG_SyslogProtocol23Format",
            line: b"<86>1 2026-12-02T14:05:01.123456+01:00 web1 sshd 31337 - - Accepted publickey for bob\n",
            format: Format::Rfc5424,
            priority: 86,
            timestamp_ns: Some(utc((2026, 12, 2), (13, 5, 1), 123_456_000)),
            hostname: Some("web1"),
            app_name: Some("sshd"),
            procid: Some("31337"),
            msgid: None,
            params: &[],
            message: "Accepted publickey for bob",
        },
        Seed {
            source: "a line of /var/log/syslog (no PRI)",
            line: b"Dec  2 14:05:01 web1 CRON[999]: (root) CMD (run-parts /etc/cron.hourly)\n",
            format: Format::Rfc3164,
            priority: PRIORITY_DEFAULT,
            timestamp_ns: Some(utc((2026, 12, 2), (14, 5, 1), 0)),
            hostname: Some("web1"),
            app_name: Some("CRON"),
            procid: Some("999"),
            msgid: None,
            params: &[],
            message: "(root) CMD (run-parts /etc/cron.hourly)",
        },
        Seed {
            source: "Cisco IOS (sequence number, unsynced clock, UTC zone, no hostname)",
            line: b"<189>123: *Mar  1 18:48:50.483 UTC: %SYS-5-CONFIG_I: Configured from console by vty0 (10.0.0.1)",
            format: Format::Rfc3164,
            priority: 189,
            timestamp_ns: Some(utc((2026, 3, 1), (18, 48, 50), 483_000_000)),
            hostname: None,
            app_name: Some("%SYS-5-CONFIG_I"),
            procid: None,
            msgid: None,
            params: &[],
            message: "Configured from console by vty0 (10.0.0.1)",
        },
        Seed {
            source: "Cisco ASA (year in the timestamp, colon after the clock)",
            line: b"<166>Dec 02 2025 14:05:01: %ASA-6-302013: Built outbound TCP connection 1 for outside:192.0.2.9/443",
            format: Format::Rfc3164,
            priority: 166,
            timestamp_ns: Some(utc((2025, 12, 2), (14, 5, 1), 0)),
            hostname: None,
            app_name: Some("%ASA-6-302013"),
            procid: None,
            msgid: None,
            params: &[],
            message: "Built outbound TCP connection 1 for outside:192.0.2.9/443",
        },
        Seed {
            source: "a PRI and nothing else recognisable (rsyslog accepts it)",
            line: b"<13>hello world",
            format: Format::Rfc3164,
            priority: 13,
            timestamp_ns: None,
            hostname: None,
            app_name: None,
            procid: None,
            msgid: None,
            params: &[],
            message: "hello world",
        },
        Seed {
            source: "RFC 5424 escapes in a param value, CRLF line end",
            line: b"<14>1 2026-12-02T13:00:00Z h a p m [x@1 q=\"say \\\"hi\\\" \\\\ \\] \\n done\"] msg\r\n",
            format: Format::Rfc5424,
            priority: 14,
            timestamp_ns: Some(utc((2026, 12, 2), (13, 0, 0), 0)),
            hostname: Some("h"),
            app_name: Some("a"),
            procid: Some("p"),
            msgid: Some("m"),
            params: &[("x@1", "q", "say \"hi\" \\ ] \\n done")],
            message: "msg",
        },
        Seed {
            source: "RFC 5424, every part NILVALUE",
            line: b"<0>1 - - - - - -",
            format: Format::Rfc5424,
            priority: 0,
            timestamp_ns: None,
            hostname: None,
            app_name: None,
            procid: None,
            msgid: None,
            params: &[],
            message: "",
        },
        Seed {
            source: "RFC 5424 with a PROCID that is no pid",
            line: b"<191>1 2026-12-02T13:00:00.5Z host app worker-3 - - x",
            format: Format::Rfc5424,
            priority: 191,
            timestamp_ns: Some(utc((2026, 12, 2), (13, 0, 0), 500_000_000)),
            hostname: Some("host"),
            app_name: Some("app"),
            procid: Some("worker-3"),
            msgid: None,
            params: &[],
            message: "x",
        },
        Seed {
            source: "RFC 3164 without a tag (the word after the host ends in a space)",
            line: b"<13>Dec  2 14:05:01 host just some text",
            format: Format::Rfc3164,
            priority: 13,
            timestamp_ns: Some(utc((2026, 12, 2), (14, 5, 1), 0)),
            hostname: Some("host"),
            app_name: None,
            procid: None,
            msgid: None,
            params: &[],
            message: "just some text",
        },
    ]
}

/// Checks one seed's parse against its expectations.
fn check_seed(seed: &Seed) {
    let parsed =
        parse(seed.line, &context()).unwrap_or_else(|error| panic!("{}: {error}", seed.source));
    let text = |part: Option<&[u8]>| part.map(|bytes| String::from_utf8_lossy(bytes).into_owned());
    let expected = |part: Option<&str>| part.map(str::to_owned);
    assert_eq!(parsed.format, seed.format, "{}", seed.source);
    assert_eq!(parsed.priority, seed.priority, "{}", seed.source);
    assert_eq!(parsed.timestamp_ns, seed.timestamp_ns, "{}", seed.source);
    assert_eq!(
        text(parsed.hostname),
        expected(seed.hostname),
        "{}",
        seed.source
    );
    assert_eq!(
        text(parsed.app_name),
        expected(seed.app_name),
        "{}",
        seed.source
    );
    assert_eq!(
        text(parsed.procid),
        expected(seed.procid),
        "{}",
        seed.source
    );
    assert_eq!(text(parsed.msgid), expected(seed.msgid), "{}", seed.source);
    let params: Vec<(String, String, String)> = parsed
        .structured_data
        .params()
        .map(|param| {
            let lossy = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
            (lossy(param.id), lossy(param.name), lossy(&param.value()))
        })
        .collect();
    let expected_params: Vec<(String, String, String)> = seed
        .params
        .iter()
        .map(|&(id, name, value)| (id.to_owned(), name.to_owned(), value.to_owned()))
        .collect();
    assert_eq!(params, expected_params, "{}", seed.source);
    assert_eq!(
        parsed.structured_data.param_count(),
        seed.params.len(),
        "{}",
        seed.source
    );
    assert_eq!(parsed.message, seed.message.as_bytes(), "{}", seed.source);
    assert_parts_within(seed.line, &parsed);
}

#[test]
fn seed_lines_parse_to_their_parts() {
    for seed in seeds() {
        check_seed(&seed);
    }
}

/// Decodes an encoded message with prost: an independent check that the bytes are a valid
/// Heka message (required headers present, strings UTF-8, fields well formed).
fn decode(bytes: &[u8]) -> proto::Message {
    let message = proto::Message::decode(bytes).expect("the encoding is a valid Heka message");
    assert!(ProtoView::new(bytes).validate().is_ok());
    message
}

fn string_fields(message: &proto::Message) -> Vec<(String, String)> {
    message
        .fields
        .iter()
        .filter(|field| field.value_type.unwrap_or(0) == ValueType::String as i32)
        .map(|field| (field.name.clone(), field.value_string.join("|")))
        .collect()
}

fn integer_field(message: &proto::Message, name: &str) -> Option<Vec<i64>> {
    let field = message.fields.iter().find(|field| field.name == name)?;
    assert_eq!(field.value_type, Some(ValueType::Integer as i32), "{name}");
    Some(field.value_integer.clone())
}

#[test]
fn seed_lines_map_to_heka_messages() {
    let uuid = [7u8; 16];
    for seed in seeds() {
        let mut out = vec![0xAA];
        let encoded = encode(seed.line, &context(), &uuid, &mut out);
        assert_eq!(
            encoded,
            Encoded {
                error: None,
                sd_params_dropped: 0
            },
            "{}",
            seed.source
        );
        assert_eq!(out[0], 0xAA, "encode appends");
        let message = decode(&out[1..]);
        let owned = |part: Option<&str>| part.map(str::to_owned);
        assert_eq!(message.uuid, uuid);
        assert_eq!(
            message.timestamp,
            seed.timestamp_ns.unwrap_or(RECEIVED_NS),
            "{}",
            seed.source
        );
        assert_eq!(message.r#type.as_deref(), Some("syslog"));
        assert_eq!(
            message.severity,
            Some(i32::from(seed.priority & 7)),
            "{}",
            seed.source
        );
        assert_eq!(message.hostname, owned(seed.hostname), "{}", seed.source);
        assert_eq!(message.logger, owned(seed.app_name), "{}", seed.source);
        assert_eq!(
            message.payload.as_deref(),
            Some(seed.message),
            "{}",
            seed.source
        );
        assert_eq!(
            integer_field(&message, "facility"),
            Some(vec![i64::from(seed.priority >> 3)])
        );
        let numeric = seed.procid.and_then(|procid| procid.parse::<i32>().ok());
        assert_eq!(message.pid, numeric, "{}", seed.source);
        let mut expected = Vec::new();
        if let (None, Some(procid)) = (numeric, seed.procid) {
            expected.push(("procid".to_owned(), procid.to_owned()));
        }
        if let Some(msgid) = seed.msgid {
            expected.push(("msgid".to_owned(), msgid.to_owned()));
        }
        for (id, name, value) in seed.params {
            expected.push((format!("sd.{id}.{name}"), (*value).to_owned()));
        }
        assert_eq!(string_fields(&message), expected, "{}", seed.source);
    }
}

#[test]
fn rfc5424_example_maps_field_by_field() {
    let line = b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut=\"3\"] An entry";
    let mut out = Vec::new();
    encode(line, &context(), &[1; 16], &mut out);
    let message = decode(&out);
    assert_eq!(message.severity, Some(5));
    assert_eq!(integer_field(&message, "facility"), Some(vec![20]));
    assert_eq!(message.pid, Some(1234));
    assert_eq!(message.timestamp, 1_065_910_455_003_000_000);
    assert_eq!(
        string_fields(&message),
        [
            ("msgid".to_owned(), "ID47".to_owned()),
            ("sd.exampleSDID@32473.iut".to_owned(), "3".to_owned())
        ]
    );
    // The matcher reads the same message through the lazy view.
    let view = ProtoView::new(&out);
    assert_eq!(view.str_header(StrHeader::Logger), Some(&b"evntslog"[..]));
    let field = view.field(b"sd.exampleSDID@32473.iut", 0).unwrap();
    assert_eq!(
        field.value(0),
        Some(crate::message::FieldValue::String(b"3"))
    );
}

#[test]
fn pid_is_numeric_only_when_it_fits_an_int32() {
    let mut out = Vec::new();
    encode(
        b"<13>1 - - - 2147483647 - -",
        &context(),
        &[0; 16],
        &mut out,
    );
    let message = decode(&out);
    assert_eq!(
        (message.pid, string_fields(&message)),
        (Some(i32::MAX), vec![])
    );
    out.clear();
    encode(
        b"<13>1 - - - 2147483648 - -",
        &context(),
        &[0; 16],
        &mut out,
    );
    let message = decode(&out);
    assert_eq!(message.pid, None);
    assert_eq!(
        string_fields(&message),
        [("procid".to_owned(), "2147483648".to_owned())]
    );
}

/// `(line, reason)` for lines that are neither format.
const MALFORMED: &[(&[u8], SyslogError)] = &[
    (b"", SyslogError::Empty),
    (b"\r\n", SyslogError::Empty),
    (b"<13", SyslogError::Priority),
    (b"<>Oct 11 22:14:15 host tag: x", SyslogError::Priority),
    (b"<192>Oct 11 22:14:15 host tag: x", SyslogError::Priority),
    (b"<0013>Oct 11 22:14:15 host tag: x", SyslogError::Priority),
    (b"<1a>x", SyslogError::Priority),
    (b"just a line of text", SyslogError::NoHeader),
    (b"Okt 11 22:14:15 host tag: x", SyslogError::NoHeader),
    (
        b"<13>1 2003-10-11 22:14:15Z host app - - - msg",
        SyslogError::Timestamp,
    ),
    (
        b"<13>1 2003-10-11T22:14:15.003Zhost app - - - msg",
        SyslogError::Timestamp,
    ),
    (
        b"<13>1 2003-10-11T22:14:15.003Z host app - -",
        SyslogError::TruncatedHeader,
    ),
    (
        b"<13>1 2003-10-11T22:14:15.003Z host",
        SyslogError::TruncatedHeader,
    ),
    (b"<13>1 ", SyslogError::TruncatedHeader),
    (b"<13>1 -  host app - - - x", SyslogError::Hostname),
    (b"<13>1 - ho\tst app - - - x", SyslogError::Hostname),
    (
        b"<13>1 - host aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa - - - x",
        SyslogError::AppName,
    ),
    (
        b"<13>1 - host app - 012345678901234567890123456789012 - x",
        SyslogError::Msgid,
    ),
    (b"<13>1 - host app - - [bad", SyslogError::StructuredData),
    (
        b"<13>1 - host app - - [id x=\"1\"]msg",
        SyslogError::StructuredData,
    ),
    (
        b"<13>1 - host app - - [id x=\"unterminated] msg",
        SyslogError::StructuredData,
    ),
    (
        b"<13>1 - host app - - [id x=1] msg",
        SyslogError::StructuredData,
    ),
    (b"<13>1 - host app - - [] msg", SyslogError::StructuredData),
    (
        b"<13>1 - host app - - [id  x=\"1\"] msg",
        SyslogError::StructuredData,
    ),
    (b"<13>1 - host app - - -x msg", SyslogError::StructuredData),
];

#[test]
fn malformed_lines_say_why_and_keep_their_bytes() {
    for &(line, reason) in MALFORMED {
        let shown = String::from_utf8_lossy(line);
        assert_eq!(parse(line, &context()), Err(reason), "{shown}");
        let mut out = Vec::new();
        let encoded = encode(line, &context(), &[3; 16], &mut out);
        assert_eq!(encoded.error, Some(reason), "{shown}");
        let message = decode(&out);
        assert_eq!(
            message.payload.as_deref().map(str::as_bytes),
            Some(line),
            "{shown}"
        );
        assert_eq!(message.timestamp, RECEIVED_NS);
        assert_eq!(message.r#type.as_deref(), Some("syslog"));
        assert_eq!(
            (&message.hostname, &message.logger, message.pid),
            (&None, &None, None)
        );
        assert_eq!(
            string_fields(&message),
            [("syslog_error".to_owned(), reason.code().to_owned())],
            "{shown}"
        );
    }
}

#[test]
fn bsd_timestamps_use_the_receivers_year_zone_and_new_year() {
    // Received 2027-01-01T00:30:00 local time, one hour east of UTC.
    let new_year = SyslogContext::new(utc((2026, 12, 31), (23, 30, 0), 0), 3600);
    assert_eq!((new_year.year, new_year.month), (2027, 1));
    let parsed = parse(b"<13>Dec 31 23:59:58 host tag: late", &new_year).unwrap();
    assert_eq!(
        parsed.timestamp_ns,
        Some(utc((2026, 12, 31), (22, 59, 58), 0))
    );
    let parsed = parse(b"<13>Jan  1 00:29:59 host tag: on time", &new_year).unwrap();
    assert_eq!(
        parsed.timestamp_ns,
        Some(utc((2026, 12, 31), (23, 29, 59), 0))
    );
    // Cisco's UTC marker overrides the receiver's zone; a zone-less RFC 3339 time is local.
    let parsed = parse(b"<13>Jan  1 00:29:59 UTC: %X-1-Y: z", &new_year).unwrap();
    assert_eq!(parsed.timestamp_ns, Some(utc((2027, 1, 1), (0, 29, 59), 0)));
    let parsed = parse(b"<13>2027-01-01T00:29:59 host tag: local", &new_year).unwrap();
    assert_eq!(
        parsed.timestamp_ns,
        Some(utc((2026, 12, 31), (23, 29, 59), 0))
    );
    // The 29th of February exists only in leap years: in 2026 it is no timestamp at all.
    let parsed = parse(b"<13>Feb 29 12:00:00 host tag: x", &new_year).unwrap();
    assert_eq!(
        (parsed.timestamp_ns, parsed.message),
        (None, &b"Feb 29 12:00:00 host tag: x"[..])
    );
}

#[test]
fn escaped_values_are_the_only_owned_parts() {
    let line = b"<13>1 - - - - - [a plain=\"x y\" escaped=\"x\\\"y\" other=\"x\\ny\"]";
    let parsed = parse(line, &context()).unwrap();
    let values: Vec<Cow<'_, [u8]>> = parsed
        .structured_data
        .params()
        .map(|param| param.value())
        .collect();
    assert!(matches!(values[0], Cow::Borrowed(b"x y")));
    assert!(matches!(&values[1], Cow::Owned(value) if value == b"x\"y"));
    // A backslash before any other byte is kept: nothing to unescape, nothing to own.
    assert!(matches!(values[2], Cow::Borrowed(b"x\\ny")));
}

#[test]
fn structured_data_params_past_the_bound_are_dropped_and_counted() {
    let params = SYSLOG_SD_PARAMS_MAX + 3;
    let mut line = b"<13>1 - - - - - [many".to_vec();
    for index in 0..params {
        line.extend_from_slice(format!(" p{index}=\"{index}\"").as_bytes());
    }
    line.extend_from_slice(b"] tail");
    let parsed = parse(&line, &context()).unwrap();
    assert_eq!(parsed.structured_data.param_count(), params);
    let mut out = Vec::new();
    let encoded = encode(&line, &context(), &[0; 16], &mut out);
    assert_eq!(
        encoded,
        Encoded {
            error: None,
            sd_params_dropped: 3
        }
    );
    let message = decode(&out);
    let kept = string_fields(&message);
    assert_eq!(kept.len(), SYSLOG_SD_PARAMS_MAX);
    let last = SYSLOG_SD_PARAMS_MAX - 1;
    assert_eq!(
        kept[last],
        (format!("sd.many.p{last}"), last.to_string()),
        "the first ones are kept"
    );
    assert_eq!(integer_field(&message, "sd_params_dropped"), Some(vec![3]));
    assert_eq!(message.payload.as_deref(), Some("tail"));
}

/// Whether `part` lies inside `input` (an empty part is nowhere, so it is allowed anywhere).
fn is_within(input: &[u8], part: &[u8]) -> bool {
    let start = input.as_ptr() as usize;
    let part_start = part.as_ptr() as usize;
    part.is_empty() || (part_start >= start && part_start + part.len() <= start + input.len())
}

/// Asserts that every borrowed part of `parsed` is a subslice of `input`.
fn assert_parts_within(input: &[u8], parsed: &Syslog<'_>) {
    let optional = [
        parsed.hostname,
        parsed.app_name,
        parsed.procid,
        parsed.msgid,
    ];
    for part in optional.into_iter().flatten() {
        assert!(is_within(input, part));
        assert!(!part.is_empty(), "a present part is never empty");
    }
    assert!(is_within(input, parsed.message));
    assert!(is_within(input, parsed.structured_data.text()));
    let mut params = 0;
    for param in parsed.structured_data.params() {
        assert!(is_within(input, param.id) && is_within(input, param.name));
        assert!(is_within(input, param.raw_value));
        if let Cow::Borrowed(value) = param.value() {
            assert!(is_within(input, value));
        }
        params += 1;
    }
    assert_eq!(params, parsed.structured_data.param_count());
    assert!(parsed.priority <= PRIORITY_MAX);
}

/// Parses and encodes `input`, checking everything that must hold whatever the bytes.
fn check_any(input: &[u8]) {
    let context = context();
    let parsed = parse(input, &context);
    if let Ok(parsed) = &parsed {
        assert_parts_within(input, parsed);
    }
    let mut out = Vec::new();
    let encoded = encode(input, &context, &[9; 16], &mut out);
    assert_eq!(encoded.error, parsed.err());
    let view = ProtoView::new(&out);
    assert_eq!(view.validate(), Ok(()));
    assert_eq!(
        view.fields().count(),
        view.fields().filter(|field| field.name().is_some()).count()
    );
    if encoded.error.is_some() {
        assert_eq!(view.str_header(StrHeader::Payload), Some(input));
    }
}

/// Fragments that syslog lines are made of, so generated lines reach deep into the parsers.
const FRAGMENTS: &[&[u8]] = &[
    b"<13>",
    b"<191>",
    b"<0>",
    b"<",
    b">",
    b"1 ",
    b"1",
    b" ",
    b"  ",
    b"-",
    b"- ",
    b"[",
    b"]",
    b"=\"",
    b"\"",
    b"\\",
    b"\\\"",
    b"\\]",
    b"id@1",
    b" x=\"v\"",
    b"Oct 11 22:14:15",
    b"Dec  2 ",
    b"Feb 29 12:00:00",
    b"2003-10-11T22:14:15.003Z",
    b"2003-10-11T22:14:15",
    b"+01:00",
    b".5",
    b"host",
    b"tag",
    b":",
    b": ",
    b"[123]",
    b"[",
    b"123: ",
    b"*",
    b"UTC:",
    b"\xEF\xBB\xBF",
    b"\n",
    b"\r\n",
    b"\xff",
    b"9",
    b"msg",
];

fn fragment_line() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0..FRAGMENTS.len(), 0..24).prop_map(|indexes| {
        indexes
            .into_iter()
            .flat_map(|index| FRAGMENTS[index].to_vec())
            .collect()
    })
}

/// `(year, month, day, hour, minute, second, fraction digits, offset in minutes)`.
type GeneratedTimestamp = (i64, u32, u32, u32, u32, u32, String, i32);

/// One generated RFC 5424 message, by parts.
#[derive(Clone, Debug)]
struct Generated {
    priority: u8,
    timestamp: Option<GeneratedTimestamp>,
    hostname: Option<String>,
    app_name: Option<String>,
    procid: Option<String>,
    msgid: Option<String>,
    /// `(SD-ID, [(PARAM-NAME, value)])`, values unescaped.
    elements: Vec<(String, Vec<(String, String)>)>,
    bom: bool,
    message: Option<String>,
}

fn generated() -> impl Strategy<Value = Generated> {
    let timestamp = (
        (1970i64..2200, 1u32..=12, 1u32..=28),
        (0u32..24, 0u32..60, 0u32..60),
        "[0-9]{0,9}",
        -(23 * 60 + 59)..=(23 * 60 + 59),
    )
        .prop_map(
            |((year, month, day), (hour, minute, second), fraction, offset)| {
                (year, month, day, hour, minute, second, fraction, offset)
            },
        );
    let name = "[a-zA-Z0-9@._-]{1,32}";
    let element = (
        name,
        proptest::collection::vec((name, "[ -~é\\]\\\\\"]{0,12}"), 0..4),
    );
    (
        (0u8..=PRIORITY_MAX, proptest::option::of(timestamp)),
        (
            proptest::option::of("[!-~]{1,255}"),
            proptest::option::of("[!-~]{1,48}"),
            proptest::option::of("[!-~]{1,128}"),
            proptest::option::of("[!-~]{1,32}"),
        ),
        proptest::collection::vec(element, 0..4),
        (any::<bool>(), proptest::option::of("[ -~é\u{1F600}]{0,40}")),
    )
        .prop_map(
            |(
                (priority, timestamp),
                (hostname, app_name, procid, msgid),
                elements,
                (bom, message),
            )| {
                Generated {
                    priority,
                    timestamp,
                    hostname,
                    app_name,
                    procid,
                    msgid,
                    elements,
                    bom,
                    message,
                }
            },
        )
}

impl Generated {
    fn line(&self) -> Vec<u8> {
        let nil = |part: &Option<String>| part.clone().unwrap_or_else(|| "-".to_owned());
        let timestamp = match &self.timestamp {
            None => "-".to_owned(),
            Some((year, month, day, hour, minute, second, fraction, offset)) => {
                let fraction = if fraction.is_empty() {
                    String::new()
                } else {
                    format!(".{fraction}")
                };
                let zone = match offset {
                    0 => "Z".to_owned(),
                    _ => format!(
                        "{}{:02}:{:02}",
                        if *offset < 0 { '-' } else { '+' },
                        offset.abs() / 60,
                        offset.abs() % 60
                    ),
                };
                format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}{zone}")
            }
        };
        let mut line = format!(
            "<{}>1 {timestamp} {} {} {} {} ",
            self.priority,
            nil(&self.hostname),
            nil(&self.app_name),
            nil(&self.procid),
            nil(&self.msgid)
        )
        .into_bytes();
        if self.elements.is_empty() {
            line.push(b'-');
        }
        for (id, params) in &self.elements {
            line.extend_from_slice(format!("[{id}").as_bytes());
            for (name, value) in params {
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace(']', "\\]");
                line.extend_from_slice(format!(" {name}=\"{escaped}\"").as_bytes());
            }
            line.push(b']');
        }
        if let Some(message) = &self.message {
            line.push(b' ');
            if self.bom {
                line.extend_from_slice(b"\xEF\xBB\xBF");
            }
            line.extend_from_slice(message.as_bytes());
        }
        line
    }

    fn timestamp_ns(&self) -> Option<i64> {
        let (year, month, day, hour, minute, second, fraction, offset) = self.timestamp.clone()?;
        let nanosecond: i64 = format!("{fraction:0<9}").parse().unwrap_or(0);
        let local = utc(
            (year, month, day),
            (hour.into(), minute.into(), second.into()),
            nanosecond,
        );
        Some(local - i64::from(offset) * 60_000_000_000)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Any bytes: no panic, every part inside the input, a valid message out.
    #[test]
    fn any_bytes_parse_within_the_input(input in proptest::collection::vec(any::<u8>(), 0..200)) {
        check_any(&input);
    }

    /// Lines assembled from syslog fragments: the same, deeper in the parsers.
    #[test]
    fn fragment_lines_parse_within_the_input(input in fragment_line()) {
        check_any(&input);
    }

    /// A generated RFC 5424 message parses back to its parts, and every truncation of it
    /// parses without panicking.
    #[test]
    fn generated_rfc5424_round_trips(generated in generated(), cut in any::<prop::sample::Index>()) {
        let line = generated.line();
        let parsed = parse(&line, &context());
        prop_assert!(parsed.is_ok(), "{:?}: {:?}", String::from_utf8_lossy(&line), parsed);
        let parsed = parsed.unwrap();
        let nil = |part: &Option<String>| part.clone().filter(|part| part != "-");
        let text = |part: Option<&[u8]>| part.map(|bytes| String::from_utf8(bytes.to_vec()).unwrap());
        prop_assert_eq!(parsed.format, Format::Rfc5424);
        prop_assert_eq!(parsed.priority, generated.priority);
        prop_assert_eq!(parsed.timestamp_ns, generated.timestamp_ns());
        prop_assert_eq!(text(parsed.hostname), nil(&generated.hostname));
        prop_assert_eq!(text(parsed.app_name), nil(&generated.app_name));
        prop_assert_eq!(text(parsed.procid), nil(&generated.procid));
        prop_assert_eq!(text(parsed.msgid), nil(&generated.msgid));
        let params: Vec<(String, String, String)> = parsed.structured_data.params()
            .map(|param| (text(Some(param.id)).unwrap(), text(Some(param.name)).unwrap(), text(Some(&param.value())).unwrap()))
            .collect();
        let expected: Vec<(String, String, String)> = generated.elements.iter()
            .flat_map(|(id, params)| params.iter().map(move |(name, value)| (id.clone(), name.clone(), value.clone())))
            .collect();
        prop_assert_eq!(params, expected);
        let message = generated.message.clone().unwrap_or_default();
        prop_assert_eq!(parsed.message, message.as_bytes());
        assert_parts_within(&line, &parsed);
        check_any(&line[..cut.index(line.len() + 1)]);
    }
}

/// Every prefix of every seed and malformed line: no panic, parts within the prefix.
#[test]
fn truncated_seed_lines_never_panic() {
    let lines = seeds()
        .into_iter()
        .map(|seed| seed.line)
        .chain(MALFORMED.iter().map(|&(line, _)| line));
    for line in lines {
        for end in 0..=line.len() {
            check_any(&line[..end]);
        }
    }
}

/// A bounded fuzz loop with a fixed seed: random bytes, and seed lines with random bytes
/// flipped, inserted, removed and cut.
#[test]
fn fuzz_random_and_mutated_lines() {
    const ROUNDS: usize = 20_000;
    let mut rng = fastrand::Rng::with_seed(0x5157_4c06);
    let seeds = seeds();
    let mut input = Vec::new();
    for round in 0..ROUNDS {
        input.clear();
        if round % 4 == 0 {
            let length = rng.usize(0..120);
            input.extend((0..length).map(|_| rng.u8(..)));
        } else {
            input.extend_from_slice(seeds[rng.usize(..seeds.len())].line);
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(0..=input.len());
                match rng.u8(0..4) {
                    0 if at < input.len() => input[at] = rng.u8(..),
                    1 => input.insert(
                        at,
                        *rng.choice(b"<>[]\"\\ -:=0123456789\n").unwrap_or(&b' '),
                    ),
                    2 if at < input.len() => {
                        input.remove(at);
                    }
                    _ => input.truncate(at),
                }
            }
        }
        check_any(&input);
    }
}

/// The success path borrows: parsing returns slices of the line and encoding writes into the
/// caller's buffer, so a warmed buffer sees no reallocation.
#[test]
fn encoding_reuses_the_callers_buffer() {
    let line = seeds()[2].line;
    let mut out = Vec::with_capacity(4096);
    let capacity = out.capacity();
    let pointer = out.as_ptr();
    for _ in 0..8 {
        out.clear();
        encode(line, &context(), &[0; 16], &mut out);
    }
    assert_eq!((out.capacity(), out.as_ptr()), (capacity, pointer));
}
