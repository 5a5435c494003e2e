//! Tests of the InfluxDB line encoder: the documented example, multi-value fields, name
//! prefixes, escaping and the options' edge cases.

use prost::Message as _;

use super::*;
use crate::message::proto::{Field, Message};
use crate::message::ProtoView;

fn section(options: &str) -> Section {
    let mut table: toml::Table = toml::from_str(options).unwrap();
    table.insert("type".into(), "SchemaInfluxLineEncoder".into());
    Section {
        file: "test.toml".into(),
        name: "Influx".into(),
        table,
    }
}

fn double(name: &str, values: &[f64]) -> Field {
    Field {
        name: name.into(),
        value_type: Some(3),
        value_double: values.to_vec(),
        ..Field::default()
    }
}

fn integer(name: &str, values: &[i64]) -> Field {
    Field {
        name: name.into(),
        value_type: Some(2),
        value_integer: values.to_vec(),
        ..Field::default()
    }
}

fn string(name: &str, values: &[&str]) -> Field {
    Field {
        name: name.into(),
        value_string: values.iter().map(|value| value.to_string()).collect(),
        ..Field::default()
    }
}

/// Heka's documented example: a loadavg message with static fields.
fn loadavg() -> Message {
    Message {
        uuid: vec![1; 16],
        timestamp: 1_434_932_024_123_456_789,
        r#type: Some("stats.loadavg".into()),
        logger: Some("LoadAvgPoller".into()),
        hostname: Some("myhost".into()),
        fields: vec![
            double("1MinAvg", &[0.11]),
            double("5MinAvg", &[0.11]),
            double("15MinAvg", &[0.17]),
            integer("NumProcesses", &[312]),
            string("FilePath", &["/proc/loadavg"]),
            string("Environment", &["dev"]),
            integer("TickerInterval", &[5]),
        ],
        ..Message::default()
    }
}

fn encode(options: &str, message: &Message) -> String {
    let plan = influx_plan(&section(options)).unwrap();
    let mut encoder = InfluxEncoder::new(&plan, 1 << 20).unwrap();
    let bytes = message.encode_to_vec();
    let mut out = Vec::new();
    encoder
        .encode_into(
            &MessageView::Proto(ProtoView::new(&bytes)),
            Framing::None,
            &mut out,
        )
        .unwrap();
    String::from_utf8(out).unwrap()
}

const HEKA_EXAMPLE: &str = r#"
        skip_fields = "**all_base** FilePath NumProcesses Environment TickerInterval"
        tag_fields = "Hostname Environment"
        timestamp_precision= "s"
    "#;

#[test]
fn hekas_documented_example() {
    assert_eq!(
        encode(HEKA_EXAMPLE, &loadavg()),
        "1MinAvg,Hostname=myhost,Environment=dev value=0.110000 1434932024\n\
             5MinAvg,Hostname=myhost,Environment=dev value=0.110000 1434932024\n\
             15MinAvg,Hostname=myhost,Environment=dev value=0.170000 1434932024\n"
    );
    // The same options in Heka's `[name.config]` table, with Heka's script keys.
    let heka_form = format!(
        "filename = \"lua_encoders/schema_influx_line.lua\"\nscript_type = \"lua\"\n\
             [config]\n{HEKA_EXAMPLE}"
    );
    assert_eq!(
        encode(&heka_form, &loadavg()),
        encode(HEKA_EXAMPLE, &loadavg())
    );
}

#[test]
fn multi_fields_and_name_prefix() {
    let options = r#"
            name_prefix = "%{Type}.%{Environment}.%{nope}"
            multi_fields = true
            skip_fields = "FilePath Environment"
            tag_fields = "Hostname"
            decimal_precision = "2"
            timestamp_precision = "ms"
        "#;
    assert_eq!(
        encode(options, &loadavg()),
        "stats.loadavg.dev.%{nope},Hostname=myhost 1MinAvg=0.11,5MinAvg=0.11,\
             15MinAvg=0.17,NumProcesses=312.00,TickerInterval=5.00 1434932024123\n"
    );
}

#[test]
fn default_tags_and_name_delimiter() {
    let mut message = loadavg();
    message.fields.truncate(1);
    assert_eq!(
        encode(
            "name_prefix = \"load\"\nname_prefix_delimiter = \".\"\ntimestamp_precision = \"h\"",
            &message
        ),
        "load.1MinAvg,Type=stats.loadavg,Hostname=myhost,Severity=7,Logger=LoadAvgPoller \
             value=0.110000 398592\n"
    );
    // Absent headers are left out rather than written as `nil` or empty.
    message.hostname = None;
    message.logger = Some(String::new());
    message.severity = Some(3);
    assert_eq!(
        encode("timestamp_precision = \"n\"", &message),
        "1MinAvg,Type=stats.loadavg,Severity=3 value=0.110000 1434932024123456789\n"
    );
}

#[test]
fn value_kinds_and_repeated_fields() {
    let message = Message {
        uuid: vec![1; 16],
        timestamp: 1_000_000_000,
        fields: vec![
            integer("n", &[1, -2, 3]),
            integer("n", &[4]),
            Field {
                name: "ok".into(),
                value_type: Some(4),
                value_bool: vec![true],
                ..Field::default()
            },
            double("bad", &[f64::NAN, f64::INFINITY]),
            string("s", &["a \"q\" \\ b\nc"]),
        ],
        ..Message::default()
    };
    let options = "tag_fields = \"\"\ninteger_suffix = true\ntimestamp_precision = \"s\"\n\
                       value_field_key = \"v al\"";
    assert_eq!(
        encode(options, &message),
        "n,Severity=7 v\\ al=1i 1\n\
             n_vidx_1,Severity=7 v\\ al=-2i 1\n\
             n_vidx_2,Severity=7 v\\ al=3i 1\n\
             n_fidx_1,Severity=7 v\\ al=4i 1\n\
             ok,Severity=7 v\\ al=true 1\n\
             s,Severity=7 v\\ al=\"a \\\"q\\\" \\\\ b c\" 1\n"
    );
}

#[test]
fn escaping_of_names_and_tags() {
    let message = Message {
        uuid: vec![1; 16],
        timestamp: 0,
        r#type: Some("a b,c=d".into()),
        fields: vec![
            string("t a,g=x", &["v a,l=ue\\"]),
            double("m e,a=s", &[1.5]),
        ],
        ..Message::default()
    };
    // The lists split on spaces, so a name with a space is given in an array.
    let options = r#"tag_fields = ["Type", "t a,g=x"]
                         skip_fields = ["t a,g=x"]"#;
    assert_eq!(
        encode(options, &message),
        "m\\ e\\,a=s,Type=a\\ b\\,c\\=d,t\\ a\\,g\\=x=v\\ a\\,l\\=ue\\\\ value=1.500000 0\n"
    );
}

#[test]
fn source_value_field_takes_the_last_value() {
    let options = "name_prefix = \"load\"\nsource_value_field = \"5MinAvg\"\ntag_fields = \"\"";
    let mut message = loadavg();
    message.fields[1] = double("5MinAvg", &[0.5, 0.25]);
    assert_eq!(
        encode(options, &message),
        "load,Type=stats.loadavg,Hostname=myhost,Severity=7,Logger=LoadAvgPoller \
             value=0.250000 1434932024123\n"
    );
    // No such field: nothing at all.
    message.fields.remove(1);
    assert_eq!(encode(options, &message), "");
}

#[test]
fn tag_all_tags_dynamic_fields_too() {
    let mut message = loadavg();
    message.fields.truncate(2);
    assert_eq!(
        encode(
            "tag_fields = \"**all**\"\nskip_fields = \"5MinAvg\"",
            &message
        ),
        "1MinAvg,Type=stats.loadavg,Hostname=myhost,Severity=7,Logger=LoadAvgPoller,\
             1MinAvg=0.11,5MinAvg=0.11 value=0.110000 1434932024123\n"
    );
}

#[test]
fn lua_numbers() {
    let cases: &[(f64, &str)] = &[
        (0.0, "0"),
        (42.0, "42"),
        (0.1, "0.1"),
        (-2.5, "-2.5"),
        (1e14, "1e+14"),
        (12345678901234.0, "12345678901234"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.0 / 3.0, "0.33333333333333"),
        (1152921504606846976.0, "1.1529215046068e+18"),
    ];
    for (value, text) in cases {
        let mut out = Vec::new();
        write_lua_number(*value, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), *text, "{value}");
    }
}

#[test]
fn config_errors_name_the_key() {
    for (options, key) in [
        ("decimal_precision = 18", "decimal_precision"),
        ("decimal_precision = \"x\"", "decimal_precision"),
        (
            "[config]\ndecimal_precision = \"-1\"",
            "config.decimal_precision",
        ),
        ("timestamp_precision = \"d\"", "timestamp_precision"),
        ("multi_fields = true", "multi_fields"),
        ("source_value_field = \"x\"", "source_value_field"),
        ("name_prefix = \"%{%Q}\"", "name_prefix"),
        ("filename = \"other.lua\"", "filename"),
        ("bogus = 1", "bogus"),
        ("value_field_key = \"\"", "value_field_key"),
        (
            "tag_fields = \"x\"\n[config]\nskip_fields = \"y\"",
            "tag_fields",
        ),
    ] {
        let error = influx_plan(&section(options)).unwrap_err();
        assert_eq!(error.key.as_deref(), Some(key), "{options}: {error}");
    }
}

/// A reference reader of one line of the line protocol, from its specification: the
/// measurement, the tags, the fields (strings unquoted, other values as written) and the
/// timestamp. A backslash takes the next character literally.
fn parse_line(line: &str) -> Result<ParsedLine, String> {
    let bytes = line.as_bytes();
    let mut at = 0;
    let read_name = |at: &mut usize, stops: &[u8]| -> Result<Vec<u8>, String> {
        let mut name = Vec::new();
        while *at < bytes.len() && !stops.contains(&bytes[*at]) {
            if bytes[*at] == b'\\' {
                *at += 1;
                let escaped = *bytes.get(*at).ok_or("a trailing backslash")?;
                name.push(escaped);
            } else {
                name.push(bytes[*at]);
            }
            *at += 1;
        }
        if name.is_empty() {
            return Err(format!("an empty name at {at}"));
        }
        Ok(name)
    };
    let measurement = read_name(&mut at, b", ")?;
    let mut tags = Vec::new();
    while bytes.get(at) == Some(&b',') {
        at += 1;
        let key = read_name(&mut at, b"=")?;
        at += 1;
        let value = read_name(&mut at, b", ")?;
        tags.push((key, value));
    }
    if bytes.get(at) != Some(&b' ') {
        return Err("no space before the fields".into());
    }
    at += 1;
    let mut fields = Vec::new();
    loop {
        let key = read_name(&mut at, b"=")?;
        at += 1;
        let value = if bytes.get(at) == Some(&b'"') {
            at += 1;
            let mut value = Vec::new();
            loop {
                match bytes.get(at) {
                    None => return Err("an unterminated string".into()),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        at += 1;
                        value.push(*bytes.get(at).ok_or("a trailing backslash")?);
                    }
                    Some(&byte) => value.push(byte),
                }
                at += 1;
            }
            at += 1;
            ParsedValue::String(value)
        } else {
            let start = at;
            while at < bytes.len() && bytes[at] != b',' && bytes[at] != b' ' {
                at += 1;
            }
            let text = &line[start..at];
            let valid = matches!(text, "true" | "false" | "t" | "f" | "T" | "F")
                || text
                    .strip_suffix('i')
                    .is_some_and(|n| n.parse::<i64>().is_ok())
                || (text.parse::<f64>().is_ok_and(f64::is_finite)
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-'));
            if !valid {
                return Err(format!("a bad value `{text}`"));
            }
            ParsedValue::Other(text.to_string())
        };
        fields.push((key, value));
        if bytes.get(at) == Some(&b',') {
            at += 1;
            continue;
        }
        break;
    }
    if bytes.get(at) != Some(&b' ') {
        return Err("no space before the timestamp".into());
    }
    let timestamp = line[at + 1..]
        .parse::<i64>()
        .map_err(|error| error.to_string())?;
    Ok(ParsedLine {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

#[derive(Debug, PartialEq)]
enum ParsedValue {
    String(Vec<u8>),
    Other(String),
}

#[derive(Debug)]
struct ParsedLine {
    measurement: Vec<u8>,
    tags: Vec<(Vec<u8>, Vec<u8>)>,
    fields: Vec<(Vec<u8>, ParsedValue)>,
    timestamp: i64,
}

#[test]
fn the_reference_reader_reads_the_examples() {
    let line = parse_line("m\\ e,t\\=k=v\\,1 f=\"a\\\"b\",g=1.5,h=2i 17").unwrap();
    assert_eq!(line.measurement, b"m e");
    assert_eq!(line.tags, vec![(b"t=k".to_vec(), b"v,1".to_vec())]);
    assert_eq!(
        line.fields[0],
        (b"f".to_vec(), ParsedValue::String(b"a\"b".to_vec()))
    );
    assert_eq!(line.timestamp, 17);
    assert!(parse_line("m value=nan 1").is_err());
    assert!(parse_line(",x=1 value=1 1").is_err());
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn name() -> impl Strategy<Value = String> {
        "[a-z ,=\\\\\"\n\u{e9}]{1,6}"
    }

    proptest! {
        #[test]
        fn every_line_reads_back(
            names in proptest::collection::vec(name(), 1..5),
            texts in proptest::collection::vec("[a-z ,=\\\\\"\n\u{e9}]{0,8}", 1..5),
            numbers in proptest::collection::vec(any::<f64>(), 1..5),
            integers in proptest::collection::vec(any::<i64>(), 1..5),
            hostname in name(),
            multi in any::<bool>(),
            suffix in any::<bool>(),
        ) {
            let mut fields = Vec::new();
            for (index, name) in names.iter().enumerate() {
                fields.push(match index % 3 {
                    0 => string(name, &texts.iter().map(String::as_str).collect::<Vec<_>>()),
                    1 => double(name, &numbers),
                    _ => integer(name, &integers),
                });
            }
            let message = Message {
                uuid: vec![1; 16],
                timestamp: 1_434_932_024_000_000_000,
                hostname: Some(hostname.clone()),
                fields,
                ..Message::default()
            };
            let options = format!(
                "name_prefix = \"p %{{Hostname}}\"\nmulti_fields = {multi}\n\
                 integer_suffix = {suffix}\ntag_fields = \"**all**\""
            );
            let text = encode(&options, &message);
            let expected_values: usize = message.fields.iter().map(|field| {
                field.value_string.len()
                    + field.value_integer.len()
                    + field.value_double.iter().filter(|value| value.is_finite()).count()
            }).sum();
            let lines: Vec<&str> = text.split_terminator('\n').collect();
            if multi {
                prop_assert_eq!(lines.len(), 1);
            } else {
                prop_assert_eq!(lines.len(), expected_values);
            }
            let mut seen_values = 0;
            for line in lines {
                let parsed = parse_line(line)
                    .map_err(|error| TestCaseError::fail(format!("{error}: {line:?}")))?;
                prop_assert_eq!(parsed.timestamp, 1_434_932_024_000);
                let host = hostname.replace('\n', " ");
                let expected_prefix = format!("p {host}");
                prop_assert!(parsed.measurement.starts_with(expected_prefix.as_bytes()));
                prop_assert!(parsed.tags.contains(&(b"Hostname".to_vec(), host.clone().into_bytes())));
                for (_, value) in &parsed.fields {
                    if let ParsedValue::String(bytes) = value {
                        let text = String::from_utf8(bytes.clone()).unwrap();
                        prop_assert!(texts.iter().any(|original| original.replace('\n', " ") == text));
                    }
                }
                seen_values += parsed.fields.len();
            }
            prop_assert_eq!(seen_values, expected_values);
        }
    }
}
