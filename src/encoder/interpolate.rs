//! `%{name}` interpolation of message values into an encoder's text option: an Elasticsearch
//! index, type or id, an InfluxDB measurement prefix.
//!
//! A template is compiled once at startup ([`Template::new`]) into literal runs and
//! placeholders; rendering appends to a caller-owned buffer and allocates nothing once that
//! buffer has grown to its working size. A placeholder `%{name}` is, in this order:
//! 1. a header: `Type`, `Logger`, `Hostname`, `Payload`, `EnvVersion`, `Pid`, `Severity`,
//!    `Uuid` (also spelled `UUID`, as Heka did);
//! 2. a strftime format when the name holds a `%` (`%{%Y.%m.%d}`), compiled at startup with
//!    [`super::strftime`] and rendered in UTC from the message's Timestamp or the time of
//!    encoding, as the encoder chooses per render;
//! 3. otherwise the first value of the first field of that name.
//!
//! A field the message does not have renders as its encoder's [`Missing`] policy says, and
//! [`Template::render`] reports it so the caller can drop what depends on it (an `_id`).
//! A `%{` with no closing `}` is literal text.

use super::strftime::{TsFormat, TsFormatError};
use crate::message::view::format_uuid;
use crate::message::{FieldValue, IntHeader, MessageView, StrHeader};

/// What a placeholder naming a field the message lacks renders as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The name without its braces (Heka's ES encoders: `%{host}` becomes `host`).
    Name,
    /// The placeholder as written (Heka's Lua interpolation: `%{host}` stays `%{host}`).
    Placeholder,
}

/// Which time a strftime placeholder renders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeSource {
    /// The message's Timestamp (the epoch when it has none).
    Message,
    /// The time of encoding.
    Now,
}

/// A header a placeholder can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Header {
    Str(StrHeader),
    Pid,
    Severity,
    Uuid,
}

#[derive(Clone, Debug)]
enum Piece {
    /// `text[start..end]`, copied as is.
    Literal {
        start: usize,
        end: usize,
    },
    Header(Header),
    /// A field named `text[start..end]`; the placeholder is `text[start - 2..end + 1]`.
    Field {
        start: usize,
        end: usize,
    },
    Time(Box<TimeFormat>),
}

/// A strftime placeholder and its rendering, cached for the second it was made for.
#[derive(Clone, Debug)]
struct TimeFormat {
    format: TsFormat,
    second: Option<i64>,
    text: Vec<u8>,
}

/// A compiled template.
#[derive(Clone, Debug)]
pub struct Template {
    text: Box<[u8]>,
    pieces: Box<[Piece]>,
    missing: Missing,
    double: fn(f64, &mut Vec<u8>),
}

impl Template {
    /// Compiles `text`; a field the message lacks renders as `missing` says and a double
    /// field value is written by `double`.
    ///
    /// # Errors
    /// A strftime placeholder gyges cannot render.
    pub fn new(
        text: &str,
        missing: Missing,
        double: fn(f64, &mut Vec<u8>),
    ) -> Result<Template, TsFormatError> {
        let bytes = text.as_bytes();
        let mut pieces = Vec::new();
        let mut literal_start = 0;
        let mut at = 0;
        while let Some(open) = memchr::memmem::find(&bytes[at..], b"%{").map(|found| at + found) {
            let Some(close) =
                memchr::memchr(b'}', &bytes[open + 2..]).map(|found| open + 2 + found)
            else {
                break;
            };
            if literal_start < open {
                pieces.push(Piece::Literal {
                    start: literal_start,
                    end: open,
                });
            }
            let name = &text[open + 2..close];
            pieces.push(match header(name) {
                Some(header) => Piece::Header(header),
                None if name.contains('%') => Piece::Time(Box::new(TimeFormat {
                    format: TsFormat::new(name)?,
                    second: None,
                    text: Vec::with_capacity(64),
                })),
                None => Piece::Field {
                    start: open + 2,
                    end: close,
                },
            });
            at = close + 1;
            literal_start = at;
        }
        if literal_start < bytes.len() {
            pieces.push(Piece::Literal {
                start: literal_start,
                end: bytes.len(),
            });
        }
        Ok(Template {
            text: bytes.into(),
            pieces: pieces.into(),
            missing,
            double,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// Whether the template has no placeholder at all.
    pub fn is_literal(&self) -> bool {
        self.pieces
            .iter()
            .all(|piece| matches!(piece, Piece::Literal { .. }))
    }

    /// Appends the template rendered for `message`. Returns false when a placeholder named a
    /// field the message does not have (rendered as the [`Missing`] policy says).
    pub fn render(
        &mut self,
        message: &MessageView<'_>,
        time: TimeSource,
        out: &mut Vec<u8>,
    ) -> bool {
        let mut complete = true;
        for piece in self.pieces.iter_mut() {
            match piece {
                Piece::Literal { start, end } => out.extend_from_slice(&self.text[*start..*end]),
                Piece::Header(header) => render_header(*header, message, out),
                Piece::Time(format) => {
                    let nanoseconds = match time {
                        TimeSource::Message => message.timestamp().unwrap_or(0),
                        TimeSource::Now => crate::message::now_ns(),
                    };
                    let second = nanoseconds.div_euclid(1_000_000_000);
                    if format.second != Some(second) {
                        format.text.clear();
                        format.format.format(second, &mut format.text);
                        format.second = Some(second);
                    }
                    out.extend_from_slice(&format.text);
                }
                Piece::Field { start, end } => {
                    let name = &self.text[*start..*end];
                    let value = message.field(name, 0).and_then(|field| field.value(0));
                    match value {
                        Some(value) => render_value(value, self.double, out),
                        None => {
                            complete = false;
                            match self.missing {
                                Missing::Name => out.extend_from_slice(name),
                                Missing::Placeholder => {
                                    out.extend_from_slice(&self.text[*start - 2..*end + 1])
                                }
                            }
                        }
                    }
                }
            }
        }
        complete
    }
}

fn header(name: &str) -> Option<Header> {
    Some(match name {
        "Type" => Header::Str(StrHeader::Type),
        "Logger" => Header::Str(StrHeader::Logger),
        "Hostname" => Header::Str(StrHeader::Hostname),
        "Payload" => Header::Str(StrHeader::Payload),
        "EnvVersion" => Header::Str(StrHeader::EnvVersion),
        "Pid" => Header::Pid,
        "Severity" => Header::Severity,
        "Uuid" | "UUID" => Header::Uuid,
        _ => return None,
    })
}

/// A header as Heka reads it: an absent string is empty, Pid 0, Severity 7.
fn render_header(header: Header, message: &MessageView<'_>, out: &mut Vec<u8>) {
    match header {
        Header::Str(header) => out.extend_from_slice(message.str_header(header).unwrap_or(b"")),
        Header::Pid => push_decimal(out, message.int_header(IntHeader::Pid).unwrap_or(0)),
        Header::Severity => push_decimal(out, message.int_header(IntHeader::Severity).unwrap_or(7)),
        Header::Uuid => {
            if let Some(uuid) = message
                .uuid()
                .and_then(|uuid| <[u8; 16]>::try_from(uuid).ok())
            {
                out.extend_from_slice(&format_uuid(&uuid));
            }
        }
    }
}

fn render_value(value: FieldValue<'_>, double: fn(f64, &mut Vec<u8>), out: &mut Vec<u8>) {
    match value {
        FieldValue::String(bytes) | FieldValue::Bytes(bytes) => out.extend_from_slice(bytes),
        FieldValue::Integer(number) => push_decimal(out, number),
        FieldValue::Double(number) => double(number, out),
        FieldValue::Bool(flag) => out.extend_from_slice(if flag { b"true" } else { b"false" }),
    }
}

/// Appends `value` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    let mut magnitude = value.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut count = 0;
    loop {
        digits[count] = b'0' + (magnitude % 10) as u8;
        count += 1;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    out.extend(digits[..count].iter().rev());
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::proto::{Field, Message};
    use crate::message::ProtoView;

    fn plain(value: f64, out: &mut Vec<u8>) {
        out.extend_from_slice(value.to_string().as_bytes());
    }

    fn sample() -> Vec<u8> {
        Message {
            uuid: vec![0xab; 16],
            timestamp: 1_428_773_426_113_040_228,
            r#type: Some("nginx.access".into()),
            logger: Some("Front".into()),
            hostname: Some("web1".into()),
            pid: Some(42),
            fields: vec![
                Field {
                    name: "status".into(),
                    value_integer: vec![200, 404],
                    value_type: Some(2),
                    ..Field::default()
                },
                Field {
                    name: "ratio".into(),
                    value_double: vec![0.5],
                    value_type: Some(3),
                    ..Field::default()
                },
                Field {
                    name: "app".into(),
                    value_string: vec!["shop".into()],
                    ..Field::default()
                },
            ],
            ..Message::default()
        }
        .encode_to_vec()
    }

    fn render(text: &str, missing: Missing, time: TimeSource) -> (String, bool) {
        let bytes = sample();
        let mut template = Template::new(text, missing, plain).unwrap();
        let mut out = Vec::new();
        let complete = template.render(&MessageView::Proto(ProtoView::new(&bytes)), time, &mut out);
        (String::from_utf8(out).unwrap(), complete)
    }

    #[test]
    fn headers_fields_and_dates() {
        let text = "%{Type}-%{Logger}@%{Hostname}/%{Pid}/%{Severity}/%{app}/%{status}/%{ratio}/%{%Y.%m.%d}";
        assert_eq!(
            render(text, Missing::Name, TimeSource::Message),
            (
                "nginx.access-Front@web1/42/7/shop/200/0.5/2015.04.11".into(),
                true
            )
        );
        assert_eq!(
            render("%{UUID}", Missing::Name, TimeSource::Message).0,
            "abababab-abab-abab-abab-abababababab"
        );
        assert_eq!(
            render(
                "%{EnvVersion}|%{Payload}|",
                Missing::Name,
                TimeSource::Message
            )
            .0,
            "||",
            "absent string headers are empty"
        );
    }

    #[test]
    fn missing_fields_follow_the_policy_and_are_reported() {
        assert_eq!(
            render("a-%{nope}-b", Missing::Name, TimeSource::Message),
            ("a-nope-b".into(), false)
        );
        assert_eq!(
            render("a-%{nope}-b", Missing::Placeholder, TimeSource::Message),
            ("a-%{nope}-b".into(), false)
        );
    }

    #[test]
    fn unclosed_and_literal_text() {
        assert_eq!(
            render("plain", Missing::Name, TimeSource::Message),
            ("plain".into(), true)
        );
        assert_eq!(
            render("x-%{Type", Missing::Name, TimeSource::Message).0,
            "x-%{Type"
        );
        assert_eq!(
            render("}%{Type}}", Missing::Name, TimeSource::Message).0,
            "}nginx.access}"
        );
        assert!(Template::new("plain", Missing::Name, plain)
            .unwrap()
            .is_literal());
    }

    #[test]
    fn now_is_this_year_and_bad_formats_are_refused() {
        let year = 1970 + crate::message::now_ns() / 1_000_000_000 / 31_556_952;
        let text = render("%{%Y}", Missing::Name, TimeSource::Now).0;
        assert!(
            text == year.to_string() || text == (year + 1).to_string(),
            "{text}"
        );
        assert!(Template::new("%{%Q}", Missing::Name, plain).is_err());
    }
}
