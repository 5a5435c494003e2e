//! StatFilter: turns each matched message into statsd-style [`Stat`]s, one per
//! `[name.Metric.<id>]` subsection, by interpolating the metric's `name` and `value` templates.
//!
//! Templates: every `%word%` (a word is one or more ASCII letters, digits or `_`, matched left
//! to right without overlap, as Heka's `%\w+%`) is replaced by:
//! - `%Type%`, `%Logger%`, `%Hostname%`, `%Payload%`: that header (empty when absent);
//! - `%anything%`: the first value of the last field named `anything`: strings and bytes as
//!   they are, integers in decimal, doubles in the shortest form that reads back exactly
//!   (never an exponent), booleans as `true`/`false`. A field named like a header wins over
//!   the header, as in Heka;
//! - a name with no such field: `<name>`, as Heka writes it.
//!
//! `replace_dot` turns `.` into `_` in the substituted values of the name (not in the
//! template's own text). The value is then read as a number: single precision for counters,
//! double for timers and gauges (gauges are always absolute here).
//!
//! Templates are compiled once ([`StatFilter::new`]) into literal pieces and placeholder
//! slots; per message the headers and fields are read once into a stack array of slots, and
//! each metric renders into a buffer the filter reuses, so a message costs no allocation.
//!
//! Differences from Heka, each deliberate: a value that is not a finite number rejects the
//! stat (Heka sent 0); a name that would break a graphite line (spaces, control bytes, over
//! `STAT_NAME_BYTES_MAX`) rejects the stat; placeholders never carry over a previous
//! message's field values (Heka's value map did); `replace_dot` touches only the name (Heka's
//! also mangled the value, so `1.5` became `1_5` and then 0); metrics run in the order of their
//! ids, not in map order; bytes and boolean fields are interpolated (Heka left them stale).

use std::ops::Range;

use super::statsd::{check_name, parse_decimal, Stat, StatKind, StatValue, StatsdError};
use super::{put_float_shortest, put_int};
use crate::limits::{
    STAT_FILTER_METRICS_MAX, STAT_FILTER_PLACEHOLDERS_MAX, STAT_NAME_BYTES_MAX,
    STAT_TEMPLATE_BYTES_MAX, STAT_VALUE_BYTES_MAX,
};
use crate::message::{FieldValue, MessageView, StrHeader};

/// The kind of stat a metric makes (`type = "Counter" | "Timer" | "Gauge"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// A statsd counter: the value is added up over the interval.
    Counter,
    /// A statsd timer: the value is a sample (count, mean, percentiles …).
    Timer,
    /// A statsd gauge: the value replaces the last one.
    Gauge,
}

impl MetricKind {
    /// Parses Heka's type names.
    pub fn from_name(name: &str) -> Option<MetricKind> {
        Some(match name {
            "Counter" => MetricKind::Counter,
            "Timer" => MetricKind::Timer,
            "Gauge" => MetricKind::Gauge,
            _ => return None,
        })
    }

    fn stat_kind(self) -> StatKind {
        match self {
            MetricKind::Counter => StatKind::Counter,
            MetricKind::Timer => StatKind::Timer,
            MetricKind::Gauge => StatKind::Gauge,
        }
    }
}

/// One metric, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricSettings {
    /// The subsection name (`[name.Metric.<id>]`), for messages.
    pub id: String,
    /// The stat kind, from the subsection's `type`.
    pub kind: MetricKind,
    /// The name template.
    pub name: String,
    /// The value template.
    pub value: String,
    /// Replace `.` by `_` in the values substituted into the name.
    pub replace_dot: bool,
}

/// Why a StatFilter's metrics cannot be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatFilterError {
    /// More metrics than `STAT_FILTER_METRICS_MAX`.
    #[error("{count} metrics; at most {STAT_FILTER_METRICS_MAX} are allowed")]
    TooManyMetrics {
        /// The number of metrics configured.
        count: usize,
    },
    /// A name or value template longer than `STAT_TEMPLATE_BYTES_MAX` bytes.
    #[error("metric `{metric}`: template longer than {STAT_TEMPLATE_BYTES_MAX} bytes")]
    TemplateTooLong {
        /// The metric's id.
        metric: String,
    },
    /// A metric's name template is empty.
    #[error("metric `{metric}`: empty name template")]
    EmptyName {
        /// The metric's id.
        metric: String,
    },
    /// The metrics name more distinct placeholders between them than
    /// `STAT_FILTER_PLACEHOLDERS_MAX`.
    #[error(
        "metric `{metric}`: more than {STAT_FILTER_PLACEHOLDERS_MAX} distinct %placeholders% \
         across the filter"
    )]
    TooManyPlaceholders {
        /// The id of the metric whose placeholder went past the bound.
        metric: String,
    },
}

/// One piece of a compiled template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    /// Bytes of the template text.
    Literal(Range<usize>),
    /// A placeholder, by slot.
    Slot(usize),
}

#[derive(Clone, Debug)]
struct Template {
    text: Box<[u8]>,
    pieces: Vec<Piece>,
}

/// Where a placeholder's value comes from.
#[derive(Clone, Debug)]
struct Slot {
    name: Box<[u8]>,
    header: Option<StrHeader>,
}

#[derive(Clone, Debug)]
struct Metric {
    kind: MetricKind,
    name: Template,
    value: Template,
    replace_dot: bool,
}

/// A placeholder's value for one message.
#[derive(Clone, Copy, Debug)]
enum Resolved<'a> {
    Text(&'a [u8]),
    Integer(i64),
    Double(f64),
    Bool(bool),
}

/// What a StatFilter has done since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatFilterStats {
    /// Messages processed.
    pub messages: u64,
    /// Stats made and handed on, one per metric per message at most.
    pub stats_emitted: u64,
    /// Stats not made because a rendered name or value was invalid, each one counted.
    pub stats_rejected: u64,
}

/// A compiled StatFilter.
#[derive(Debug)]
pub struct StatFilter {
    metrics: Vec<Metric>,
    slots: Vec<Slot>,
    name_buffer: Vec<u8>,
    value_buffer: Vec<u8>,
    stats: StatFilterStats,
}

impl StatFilter {
    /// Compiles the metrics' templates.
    ///
    /// # Errors
    /// Too many metrics or placeholders, a template over its bound, an empty name.
    pub fn new(metrics: &[MetricSettings]) -> Result<StatFilter, StatFilterError> {
        if metrics.len() > STAT_FILTER_METRICS_MAX {
            return Err(StatFilterError::TooManyMetrics {
                count: metrics.len(),
            });
        }
        let mut slots = Vec::new();
        let mut compiled = Vec::with_capacity(metrics.len());
        for metric in metrics {
            if metric.name.is_empty() {
                return Err(StatFilterError::EmptyName {
                    metric: metric.id.clone(),
                });
            }
            compiled.push(Metric {
                kind: metric.kind,
                name: compile(&metric.id, &metric.name, &mut slots)?,
                value: compile(&metric.id, &metric.value, &mut slots)?,
                replace_dot: metric.replace_dot,
            });
        }
        Ok(StatFilter {
            metrics: compiled,
            slots,
            name_buffer: Vec::with_capacity(STAT_NAME_BYTES_MAX),
            value_buffer: Vec::with_capacity(STAT_VALUE_BYTES_MAX),
            stats: StatFilterStats::default(),
        })
    }

    /// Counts so far.
    pub fn stats(&self) -> StatFilterStats {
        self.stats
    }

    /// Evaluates every metric against `view`, in order, handing each stat (or the reason it
    /// was rejected) to `emit`. Returns the stats emitted. The stats borrow the filter's
    /// buffers, so `emit` must copy what it keeps (e.g. with `statsd::encode_stat`).
    pub fn process(
        &mut self,
        view: &MessageView<'_>,
        mut emit: impl FnMut(Result<Stat<'_>, StatsdError>),
    ) -> usize {
        let values = resolve(&self.slots, view);
        let mut emitted = 0;
        for metric in &self.metrics {
            let result = render_stat(
                metric,
                &self.slots,
                &values,
                &mut self.name_buffer,
                &mut self.value_buffer,
            );
            match result {
                Ok(value) => {
                    emitted += 1;
                    emit(Ok(Stat {
                        name: &self.name_buffer,
                        kind: metric.kind.stat_kind(),
                        value: StatValue::Number(value),
                        sample_rate: 1.0,
                    }));
                }
                Err(error) => {
                    self.stats.stats_rejected += 1;
                    emit(Err(error));
                }
            }
        }
        self.stats.messages += 1;
        self.stats.stats_emitted += emitted as u64;
        emitted
    }
}

/// Splits a template into literals and placeholders, registering new placeholder names.
fn compile(metric: &str, text: &str, slots: &mut Vec<Slot>) -> Result<Template, StatFilterError> {
    let bytes = text.as_bytes();
    if bytes.len() > STAT_TEMPLATE_BYTES_MAX {
        return Err(StatFilterError::TemplateTooLong {
            metric: metric.into(),
        });
    }
    let word = |byte: &u8| byte.is_ascii_alphanumeric() || *byte == b'_';
    let mut pieces = Vec::new();
    let mut literal_start = 0;
    let mut at = 0;
    while at < bytes.len() {
        let word_len = if bytes[at] == b'%' {
            bytes[at + 1..].iter().take_while(|byte| word(byte)).count()
        } else {
            0
        };
        let end = at + 1 + word_len;
        if word_len == 0 || bytes.get(end) != Some(&b'%') {
            at += 1;
            continue;
        }
        if literal_start < at {
            pieces.push(Piece::Literal(literal_start..at));
        }
        let name = &bytes[at + 1..end];
        let slot = match slots.iter().position(|slot| &*slot.name == name) {
            Some(slot) => slot,
            None if slots.len() < STAT_FILTER_PLACEHOLDERS_MAX => {
                slots.push(Slot {
                    name: name.into(),
                    header: header_named(name),
                });
                slots.len() - 1
            }
            None => {
                return Err(StatFilterError::TooManyPlaceholders {
                    metric: metric.into(),
                })
            }
        };
        pieces.push(Piece::Slot(slot));
        at = end + 1;
        literal_start = at;
    }
    if literal_start < bytes.len() {
        pieces.push(Piece::Literal(literal_start..bytes.len()));
    }
    Ok(Template {
        text: bytes.into(),
        pieces,
    })
}

fn header_named(name: &[u8]) -> Option<StrHeader> {
    Some(match name {
        b"Type" => StrHeader::Type,
        b"Logger" => StrHeader::Logger,
        b"Hostname" => StrHeader::Hostname,
        b"Payload" => StrHeader::Payload,
        _ => return None,
    })
}

/// Reads every slot's value from the message: headers first, then one pass over the fields
/// in order, so the last field of a name wins and fields win over headers.
fn resolve<'a>(
    slots: &[Slot],
    view: &MessageView<'a>,
) -> [Option<Resolved<'a>>; STAT_FILTER_PLACEHOLDERS_MAX] {
    let mut values = [None; STAT_FILTER_PLACEHOLDERS_MAX];
    if slots.is_empty() {
        return values;
    }
    for (value, slot) in values.iter_mut().zip(slots) {
        if let Some(header) = slot.header {
            *value = Some(Resolved::Text(view.str_header(header).unwrap_or(b"")));
        }
    }
    view.for_each_field(|field| {
        let Some(name) = field.name() else {
            return;
        };
        for (value, slot) in values.iter_mut().zip(slots) {
            if &*slot.name != name {
                continue;
            }
            if let Some(first) = field.value(0) {
                *value = Some(match first {
                    FieldValue::String(text) | FieldValue::Bytes(text) => Resolved::Text(text),
                    FieldValue::Integer(number) => Resolved::Integer(number),
                    FieldValue::Double(number) => Resolved::Double(number),
                    FieldValue::Bool(flag) => Resolved::Bool(flag),
                });
            }
        }
    });
    values
}

/// Renders a metric's name and value and reads the value.
fn render_stat(
    metric: &Metric,
    slots: &[Slot],
    values: &[Option<Resolved<'_>>],
    name: &mut Vec<u8>,
    value: &mut Vec<u8>,
) -> Result<f64, StatsdError> {
    let name_fits = render(
        &metric.name,
        slots,
        values,
        metric.replace_dot,
        STAT_NAME_BYTES_MAX,
        name,
    );
    if !name_fits {
        return Err(StatsdError::NameTooLong);
    }
    check_name(name)?;
    let value_fits = render(
        &metric.value,
        slots,
        values,
        false,
        STAT_VALUE_BYTES_MAX,
        value,
    );
    if !value_fits {
        return Err(StatsdError::BadValue);
    }
    let number = match metric.kind {
        MetricKind::Counter => parse_decimal::<f32>(value).map(f64::from),
        MetricKind::Timer | MetricKind::Gauge => parse_decimal::<f64>(value),
    }
    .ok_or(StatsdError::BadValue)?;
    if metric.kind == MetricKind::Timer && number < 0.0 {
        return Err(StatsdError::NegativeTimer);
    }
    Ok(number)
}

/// Renders a template into `out` (cleared first). Returns false, with `out` holding a prefix,
/// as soon as the result would pass `bytes_max`.
fn render(
    template: &Template,
    slots: &[Slot],
    values: &[Option<Resolved<'_>>],
    replace_dot: bool,
    bytes_max: usize,
    out: &mut Vec<u8>,
) -> bool {
    out.clear();
    for piece in &template.pieces {
        let start = out.len();
        match piece {
            Piece::Literal(range) => out.extend_from_slice(&template.text[range.clone()]),
            Piece::Slot(slot) => {
                let value = values.get(*slot).copied().flatten();
                let name = slots.get(*slot).map_or(&[][..], |slot| &slot.name);
                put_value(out, value, name, bytes_max);
                if replace_dot {
                    out[start..]
                        .iter_mut()
                        .filter(|byte| **byte == b'.')
                        .for_each(|byte| *byte = b'_');
                }
            }
        }
        if out.len() > bytes_max {
            return false;
        }
    }
    true
}

/// Appends one placeholder's value; text longer than `bytes_max` is cut just past it (the
/// caller then rejects the result), so a large Payload is never copied whole.
fn put_value(out: &mut Vec<u8>, value: Option<Resolved<'_>>, name: &[u8], bytes_max: usize) {
    match value {
        Some(Resolved::Text(text)) => {
            let room = (bytes_max + 1).saturating_sub(out.len());
            out.extend_from_slice(&text[..text.len().min(room)]);
        }
        Some(Resolved::Integer(number)) => put_int(out, number),
        Some(Resolved::Double(number)) => put_float_shortest(out, number),
        Some(Resolved::Bool(flag)) => out.extend_from_slice(if flag { b"true" } else { b"false" }),
        None => {
            out.push(b'<');
            out.extend_from_slice(name);
            out.push(b'>');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::proto::{Field, Message, ValueType};
    use crate::message::{LineMeta, LineView, ProtoView};
    use proptest::prelude::*;
    use prost::Message as _;

    fn metric(id: &str, kind: MetricKind, name: &str, value: &str) -> MetricSettings {
        MetricSettings {
            id: id.into(),
            kind,
            name: name.into(),
            value: value.into(),
            replace_dot: false,
        }
    }

    fn field(name: &str, value_type: ValueType) -> Field {
        Field {
            name: name.into(),
            value_type: Some(value_type as i32),
            representation: None,
            value_string: vec![],
            value_bytes: vec![],
            value_integer: vec![],
            value_double: vec![],
            value_bool: vec![],
        }
    }

    fn message() -> Vec<u8> {
        let mut fields = vec![
            Field {
                value_string: vec!["GET".into()],
                ..field("Method", ValueType::String)
            },
            Field {
                value_integer: vec![1234, 99],
                ..field("Bytes", ValueType::Integer)
            },
            Field {
                value_double: vec![0.25],
                ..field("Seconds", ValueType::Double)
            },
            Field {
                value_bool: vec![true],
                ..field("Cached", ValueType::Bool)
            },
            Field {
                value_string: vec!["first.host".into()],
                ..field("Origin", ValueType::String)
            },
            Field {
                value_string: vec!["last.host".into()],
                ..field("Origin", ValueType::String)
            },
            field("Empty", ValueType::String),
        ];
        fields.push(Field {
            value_bytes: vec![b"raw".to_vec()],
            ..field("Blob", ValueType::Bytes)
        });
        Message {
            uuid: vec![0; 16],
            timestamp: 1,
            r#type: Some("ApacheLogfile".into()),
            logger: Some("nginx".into()),
            severity: None,
            payload: Some("GET / 200".into()),
            env_version: None,
            pid: None,
            hostname: Some("web.1".into()),
            fields,
        }
        .encode_to_vec()
    }

    fn run(
        metrics: &[MetricSettings],
        bytes: &[u8],
    ) -> Vec<Result<(String, StatKind, f64), StatsdError>> {
        let mut filter = StatFilter::new(metrics).expect("compiles");
        let view = MessageView::Proto(ProtoView::new(bytes));
        let mut out = Vec::new();
        filter.process(&view, |stat| {
            out.push(stat.map(|stat| {
                let StatValue::Number(value) = stat.value else {
                    unreachable!("StatFilter makes numbers")
                };
                (
                    String::from_utf8_lossy(stat.name).into_owned(),
                    stat.kind,
                    value,
                )
            }))
        });
        out
    }

    #[test]
    fn seeds_interpolate_as_heka_does() {
        let bytes = message();
        type Seed = (
            MetricSettings,
            Result<(&'static str, StatKind, f64), StatsdError>,
        );
        let seeds: Vec<Seed> = vec![
            (
                metric(
                    "bw",
                    MetricKind::Counter,
                    "httpd.bytes.%Hostname%",
                    "%Bytes%",
                ),
                Ok(("httpd.bytes.web.1", StatKind::Counter, 1234.0)),
            ),
            (
                metric(
                    "hits",
                    MetricKind::Counter,
                    "httpd.hits.%Method%.%Type%",
                    "1",
                ),
                Ok(("httpd.hits.GET.ApacheLogfile", StatKind::Counter, 1.0)),
            ),
            (
                metric("t", MetricKind::Timer, "%Logger%.%Seconds%", "%Seconds%"),
                Ok(("nginx.0.25", StatKind::Timer, 0.25)),
            ),
            (
                metric("g", MetricKind::Gauge, "g.%Cached%.%Blob%", "-%Bytes%"),
                Ok(("g.true.raw", StatKind::Gauge, -1234.0)),
            ),
            // The last field of a name wins; an empty field leaves the placeholder unknown.
            (
                metric("o", MetricKind::Counter, "o.%Origin%.%Empty%", "2"),
                Ok(("o.last.host.<Empty>", StatKind::Counter, 2.0)),
            ),
            // Unknown placeholders, `%%`, a lone `%` and non-word names stay text.
            (
                metric("u", MetricKind::Counter, "a.%Nope%.100%.%%.%a-b%", "3"),
                Ok(("a.<Nope>.100%.%%.%a-b%", StatKind::Counter, 3.0)),
            ),
            // The Payload holds spaces: the name is rejected.
            (
                metric("p", MetricKind::Counter, "p.%Payload%", "1"),
                Err(StatsdError::BadName),
            ),
            (
                metric("v", MetricKind::Counter, "v", "%Method%"),
                Err(StatsdError::BadValue),
            ),
            (
                metric("n", MetricKind::Timer, "n", "-%Seconds%"),
                Err(StatsdError::NegativeTimer),
            ),
            (
                metric("m", MetricKind::Gauge, "m", "%Missing%"),
                Err(StatsdError::BadValue),
            ),
        ];
        for (settings, expected) in seeds {
            let got = run(std::slice::from_ref(&settings), &bytes);
            let expected = expected.map(|(name, kind, value)| (name.to_string(), kind, value));
            assert_eq!(got, vec![expected], "metric {}", settings.id);
        }
    }

    #[test]
    fn replace_dot_touches_substituted_values_of_the_name_only() {
        let settings = MetricSettings {
            replace_dot: true,
            ..metric(
                "r",
                MetricKind::Timer,
                "site.%Hostname%.%Seconds%",
                "%Seconds%",
            )
        };
        assert_eq!(
            run(&[settings], &message()),
            vec![Ok(("site.web_1.0_25".to_string(), StatKind::Timer, 0.25))]
        );
    }

    #[test]
    fn fields_override_headers_and_lines_have_headers_only() {
        let mut with_hostname_field = Message::decode(message().as_slice()).expect("valid");
        with_hostname_field.fields.push(Field {
            value_string: vec!["from-field".into()],
            ..field("Hostname", ValueType::String)
        });
        let bytes = with_hostname_field.encode_to_vec();
        let settings = metric("h", MetricKind::Counter, "%Hostname%", "1");
        assert_eq!(
            run(std::slice::from_ref(&settings), &bytes),
            vec![Ok(("from-field".to_string(), StatKind::Counter, 1.0))]
        );

        let meta = LineMeta {
            type_: b"StatsLines".to_vec().into(),
            logger: b"TcpInput".to_vec().into(),
            hostname: b"10.0.0.1".to_vec().into(),
        };
        let line = LineView {
            payload: b"42",
            uuid: [0; 16],
            timestamp: 0,
            meta: &meta,
        };
        let mut filter = StatFilter::new(&[metric(
            "l",
            MetricKind::Gauge,
            "%Type%.%Hostname%.%Field%",
            "%Payload%",
        )])
        .expect("compiles");
        let mut got = Vec::new();
        filter.process(&MessageView::Line(line), |stat| {
            let stat = stat.expect("valid");
            let StatValue::Number(value) = stat.value else {
                unreachable!("StatFilter makes numbers")
            };
            got.push((stat.name.to_vec(), value));
        });
        assert_eq!(got, vec![(b"StatsLines.10.0.0.1.<Field>".to_vec(), 42.0)]);
        assert_eq!(
            filter.stats(),
            StatFilterStats {
                messages: 1,
                stats_emitted: 1,
                stats_rejected: 0
            }
        );
    }

    #[test]
    fn bounds_and_config_errors() {
        let long = "x".repeat(STAT_TEMPLATE_BYTES_MAX + 1);
        assert!(matches!(
            StatFilter::new(&[metric("l", MetricKind::Counter, &long, "1")]),
            Err(StatFilterError::TemplateTooLong { .. })
        ));
        assert!(matches!(
            StatFilter::new(&[metric("e", MetricKind::Counter, "", "1")]),
            Err(StatFilterError::EmptyName { .. })
        ));
        let many: String = (0..=STAT_FILTER_PLACEHOLDERS_MAX)
            .map(|i| format!("%p{i}%"))
            .collect();
        assert!(matches!(
            StatFilter::new(&[metric("p", MetricKind::Counter, &many, "1")]),
            Err(StatFilterError::TooManyPlaceholders { .. })
        ));
        let metrics: Vec<_> = (0..=STAT_FILTER_METRICS_MAX)
            .map(|i| metric(&i.to_string(), MetricKind::Counter, "a", "1"))
            .collect();
        assert!(matches!(
            StatFilter::new(&metrics),
            Err(StatFilterError::TooManyMetrics { .. })
        ));
        // A name longer than the bound after interpolation is rejected, not truncated.
        let mut big = Message::decode(message().as_slice()).expect("valid");
        big.payload = Some("y".repeat(STAT_NAME_BYTES_MAX * 4));
        let got = run(
            &[metric("b", MetricKind::Counter, "%Payload%", "1")],
            &big.encode_to_vec(),
        );
        assert_eq!(got, vec![Err(StatsdError::NameTooLong)]);
    }

    /// The naive oracle of `%\w+%` interpolation: a left-to-right scan written differently.
    fn naive(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('%') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            let word_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if word_len > 0 && after[word_len..].starts_with('%') {
                let name = &after[..word_len];
                out.push_str(&lookup(name).unwrap_or_else(|| format!("<{name}>")));
                rest = &after[word_len + 1..];
            } else {
                out.push('%');
                rest = after;
            }
        }
        out.push_str(rest);
        out
    }

    proptest! {
        #[test]
        fn interpolation_matches_the_naive_scan(template in "[a-c%._]{0,24}") {
            let lookup = |name: &str| match name {
                "a" => Some("A.1".to_string()),
                "b_c" => Some("7".to_string()),
                _ => None,
            };
            let bytes = Message {
                uuid: vec![0; 16],
                timestamp: 1,
                fields: vec![
                    Field { value_string: vec!["A.1".into()], ..field("a", ValueType::String) },
                    Field { value_integer: vec![7], ..field("b_c", ValueType::Integer) },
                ],
                ..Message::default()
            }
            .encode_to_vec();
            let name = format!("n{template}");
            let mut filter = StatFilter::new(&[metric("x", MetricKind::Counter, &name, "1")])
                .expect("compiles");
            let view = MessageView::Proto(ProtoView::new(&bytes));
            let mut got = None;
            filter.process(&view, |stat| got = Some(stat.map(|stat| stat.name.to_vec())));
            let expected = format!("n{}", naive(&template, &lookup));
            prop_assert_eq!(got, Some(Ok(expected.into_bytes())));
        }
    }
}
