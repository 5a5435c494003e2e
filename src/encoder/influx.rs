//! SchemaInfluxLineEncoder: a message as InfluxDB line protocol, with the field mapping of
//! Heka's `schema_influx_line.lua` sandbox encoder, written in Rust.
//!
//! Each dynamic field value becomes a point (one line), named `name_prefix` +
//! `name_prefix_delimiter` + the field's name, with the field `value_field_key=<value>`, the
//! message's tags and its Timestamp; with `multi_fields`, the message is one line named
//! `name_prefix` holding every value as a field:
//!
//! ```text
//! 5MinAvg,Hostname=myhost,Environment=dev value=0.110000 1434932024
//! cpu,Hostname=myhost,Environment=dev 5MinAvg=0.110000,1MinAvg=0.110000 1434932024
//! ```
//!
//! Options (Heka's names and defaults), given in the section or, as a Heka config gives them
//! to the script, in its `[name.config]` table:
//! - `decimal_precision` (`"6"`): digits after the point of every number (all numbers are
//!   written as floats, so that InfluxDB never sees a field change type);
//! - `integer_suffix` (false, gyges only): write integer values as integers (`42i`) instead;
//! - `name_prefix` (none), with `%{name}` interpolation ([`super::interpolate`]; a missing
//!   field stays `%{name}`; dates are rendered at the time of encoding);
//! - `name_prefix_delimiter` (empty);
//! - `skip_fields`: space-separated dynamic field names that make no point; `**all_base**`
//!   adds the base header names to the list;
//! - `source_value_field`: only this dynamic field makes a point, named `name_prefix`;
//! - `tag_fields` (`**all_base**`): space-separated names of the headers (Type, Hostname,
//!   Severity, Logger) and dynamic fields written as tags of every line of the message;
//!   `**all_base**` tags the four headers, `**all**` the headers and every dynamic field;
//! - `timestamp_precision` (`ms`): `n`, `u`, `ms`, `s`, `m` or `h` (Heka had no `n`, `u`);
//! - `value_field_key` (`value`);
//! - `multi_fields` (false).
//!
//! A dynamic field's second occurrence is named `<name>_fidx_1`, its second value
//! `<name>_vidx_1`, as in Heka. Lines follow the message's field order and tags a fixed
//! order (the headers Type, Hostname, Severity, Logger, then the dynamic fields), where
//! Heka's followed Lua's table order. Escaping follows the line protocol: `\` before `,`
//! and space in measurements, before `,`, `=` and space in tag keys, tag values and field
//! keys, and before `"` in string values; a `\` itself is doubled everywhere. CR and LF
//! become spaces so that every point is one line (one datagram over UDP). A tag with an empty
//! key or value is left out, as InfluxDB refuses it (Heka wrote `Type=nil` for a missing
//! header), and a double that is NaN or infinite makes no point.

use std::sync::Arc;

use super::interpolate::{push_decimal, Missing, Template, TimeSource};
use super::{Encode, EncodeFailed, EncoderKind, Framing};
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::limits::{ES_FIELD_NAMES_MAX, ES_TEMPLATE_BYTES_MAX, INFLUX_DECIMAL_PRECISION_MAX};
use crate::message::{FieldValue, IntHeader, MessageView, StrHeader};

/// The headers Heka's mapping can tag, in the order gyges writes them.
const BASE_TAGS: [&str; 4] = ["Type", "Hostname", "Severity", "Logger"];
/// The header names `**all_base**` stands for.
const BASE_FIELDS: [&str; 7] = [
    "Type",
    "Payload",
    "Hostname",
    "Pid",
    "Logger",
    "Severity",
    "EnvVersion",
];

/// A number or a string holding one (`decimal_precision = "6"` as Heka wrote it).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum NumberText {
    Number(i64),
    Text(String),
}

/// A space-separated list (Heka's form) or an array of names.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
enum Names {
    Text(String),
    List(Vec<String>),
}

impl Names {
    fn names(&self) -> Vec<String> {
        match self {
            Names::Text(text) => text.split_whitespace().map(str::to_string).collect(),
            Names::List(list) => list.clone(),
        }
    }
}

/// The encoder's options, as `schema_influx_line.lua` read them.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOptions {
    /// Digits after the decimal point of numbers (default 6).
    decimal_precision: Option<NumberText>,
    /// Write integer values as `42i` rather than as floats (default false; gyges only).
    integer_suffix: Option<bool>,
    /// The measurement name's prefix, with `%{name}` interpolation.
    name_prefix: Option<String>,
    /// Between the prefix and the field's name (default empty).
    name_prefix_delimiter: Option<String>,
    /// Dynamic fields that make no point.
    skip_fields: Option<Names>,
    /// The one dynamic field that makes a point, named `name_prefix`.
    source_value_field: Option<String>,
    /// Headers and dynamic fields written as tags (default `**all_base**`).
    tag_fields: Option<Names>,
    /// `n`, `u`, `ms` (default), `s`, `m` or `h`.
    timestamp_precision: Option<String>,
    /// The field key of a point's value (default `value`).
    value_field_key: Option<String>,
    /// One line per message with every value as a field (default false).
    multi_fields: Option<bool>,
}

/// `SchemaInfluxLineEncoder` as configured. The keys besides Heka's script keys are the
/// options, checked by [`RawOptions`] (which refuses unknown ones).
#[derive(Debug, serde::Deserialize)]
struct RawInfluxLineEncoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// Heka's script file; accepted (and ignored) when it names `schema_influx_line.lua`, so
    /// that a Heka section only changes its `type`.
    filename: Option<String>,
    /// Heka's `script_type`; accepted when `lua`.
    script_type: Option<String>,
    /// The options as Heka gave them to the script (`[name.config]`).
    config: Option<RawOptions>,
    #[serde(flatten)]
    options: toml::Table,
}

/// A name set with Heka's magic values.
#[derive(Debug, Clone, Default)]
struct NameSet {
    names: Vec<Box<[u8]>>,
    /// `**all**`.
    all: bool,
    /// `**all_base**` (or `**all**`, or an empty list).
    all_base: bool,
}

impl NameSet {
    /// Heka's `field_util.field_map`: the names, with the base header names added for
    /// `**all_base**` and `**all**`; an empty list means the base headers.
    fn from_names(names: &[String]) -> NameSet {
        let mut set = NameSet::default();
        if names.is_empty() {
            set.all_base = true;
        }
        for name in names {
            match name.as_str() {
                "**all**" => set.all = true,
                "**all_base**" => set.all_base = true,
                _ => {}
            }
            set.names.push(name.as_bytes().into());
        }
        if set.all || set.all_base {
            set.names
                .extend(BASE_FIELDS.iter().map(|name| name.as_bytes().into()));
        }
        set
    }

    fn contains(&self, name: &[u8]) -> bool {
        self.names.iter().any(|known| known[..] == *name)
    }
}

/// The validated SchemaInfluxLineEncoder.
#[derive(Debug, Clone)]
pub struct InfluxPlan {
    decimal_precision: usize,
    integer_suffix: bool,
    name_prefix: Option<String>,
    name_prefix_delimiter: String,
    skip_fields: Option<NameSet>,
    source_value_field: Option<String>,
    tag_fields: NameSet,
    /// Nanoseconds per unit of `timestamp_precision`.
    timestamp_divisor: i64,
    value_field_key: String,
    multi_fields: bool,
}

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn EncoderKind>> = Registration {
    type_names: &["SchemaInfluxLineEncoder"],
    plan: |section, _: &PlanContext<'_>| Ok(Arc::new(influx_plan(section)?)),
};

fn precision_divisor(precision: &str) -> Option<i64> {
    Some(match precision {
        "n" | "ns" => 1,
        "u" | "us" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        _ => return None,
    })
}

/// Reads the options from the section or from its `config` table, and checks the Heka
/// script keys.
fn raw_options(section: &Section) -> Result<(RawOptions, &'static str), ConfigError> {
    let raw: RawInfluxLineEncoder = section.parse()?;
    if let Some(filename) = &raw.filename {
        if !filename.ends_with("schema_influx_line.lua") {
            return Err(section.error(
                Some("filename"),
                "SchemaInfluxLineEncoder runs schema_influx_line.lua's mapping itself; \
                 another script needs a SandboxEncoder",
            ));
        }
    }
    if raw.script_type.as_deref().is_some_and(|kind| kind != "lua") {
        return Err(section.error(Some("script_type"), "expected \"lua\""));
    }
    let inline: RawOptions = if raw.options.is_empty() {
        RawOptions::default()
    } else {
        let inline_section = Section {
            file: section.file.clone(),
            name: section.name.clone(),
            table: raw.options.clone(),
        };
        inline_section.parse()?
    };
    match raw.config {
        Some(_) if !raw.options.is_empty() => Err(section.error(
            raw.options.keys().next().map(String::as_str),
            "give the options either in the section or in its `config` table, not both",
        )),
        Some(config) => Ok((config, "config.")),
        None => Ok((inline, "")),
    }
}

/// Checks a SchemaInfluxLineEncoder section and builds its plan.
///
/// # Errors
/// An unknown key, a value out of range, a name list or text above its limit, or
/// `multi_fields` or `source_value_field` without a `name_prefix`.
pub fn influx_plan(section: &Section) -> Result<InfluxPlan, ConfigError> {
    let (raw, prefix) = raw_options(section)?;
    let error =
        |key: &str, message: String| section.error(Some(&format!("{prefix}{key}")), message);
    let precision = match &raw.decimal_precision {
        None => 6,
        Some(NumberText::Number(number)) => *number,
        Some(NumberText::Text(text)) => text
            .trim()
            .parse()
            .map_err(|_| error("decimal_precision", format!("`{text}` is not a number")))?,
    };
    let precision_max = i64::from(INFLUX_DECIMAL_PRECISION_MAX);
    if !(0..=precision_max).contains(&precision) {
        return Err(error(
            "decimal_precision",
            format!("{precision} is outside 0..={precision_max}"),
        ));
    }
    for (key, text) in [
        ("name_prefix", &raw.name_prefix),
        ("name_prefix_delimiter", &raw.name_prefix_delimiter),
        ("source_value_field", &raw.source_value_field),
        ("value_field_key", &raw.value_field_key),
    ] {
        if text
            .as_ref()
            .is_some_and(|text| text.len() > ES_TEMPLATE_BYTES_MAX)
        {
            return Err(error(
                key,
                format!("above the limit of {ES_TEMPLATE_BYTES_MAX} bytes"),
            ));
        }
    }
    let mut lists = Vec::new();
    for (key, names) in [
        ("skip_fields", &raw.skip_fields),
        ("tag_fields", &raw.tag_fields),
    ] {
        let names = names.as_ref().map(Names::names);
        if names
            .as_ref()
            .is_some_and(|names| names.len() > ES_FIELD_NAMES_MAX)
        {
            return Err(error(
                key,
                format!("above the limit of {ES_FIELD_NAMES_MAX} names"),
            ));
        }
        lists.push(names);
    }
    let precision_text = raw.timestamp_precision.as_deref().unwrap_or("ms");
    let timestamp_divisor = precision_divisor(precision_text).ok_or_else(|| {
        error(
            "timestamp_precision",
            format!("`{precision_text}` is not one of n, u, ms, s, m, h"),
        )
    })?;
    let value_field_key = raw.value_field_key.unwrap_or_else(|| "value".into());
    if value_field_key.is_empty() {
        return Err(error("value_field_key", "must not be empty".into()));
    }
    let multi_fields = raw.multi_fields.unwrap_or(false);
    let name_prefix = raw.name_prefix.filter(|prefix| !prefix.is_empty());
    if name_prefix.is_none() && (multi_fields || raw.source_value_field.is_some()) {
        let key = if multi_fields {
            "multi_fields"
        } else {
            "source_value_field"
        };
        return Err(error(
            key,
            "needs a name_prefix, the measurement's name".into(),
        ));
    }
    if let Some(prefix_text) = &name_prefix {
        Template::new(prefix_text, Missing::Placeholder, write_lua_number)
            .map_err(|problem| error("name_prefix", problem.to_string()))?;
    }
    let skip = lists[0].take().map(|names| NameSet::from_names(&names));
    let tags = lists[1]
        .take()
        .unwrap_or_else(|| vec!["**all_base**".into()]);
    Ok(InfluxPlan {
        decimal_precision: precision as usize,
        integer_suffix: raw.integer_suffix.unwrap_or(false),
        name_prefix,
        name_prefix_delimiter: raw.name_prefix_delimiter.unwrap_or_default(),
        skip_fields: skip,
        source_value_field: raw.source_value_field,
        tag_fields: NameSet::from_names(&tags),
        timestamp_divisor,
        value_field_key,
        multi_fields,
    })
}

impl EncoderKind for InfluxPlan {
    fn type_name(&self) -> &'static str {
        "SchemaInfluxLineEncoder"
    }

    fn build(
        &self,
        global: &crate::config::plan::GlobalPlan,
        _: Option<usize>,
    ) -> Result<Box<dyn Encode>, String> {
        InfluxEncoder::new(self, global.max_message_size)
            .map(|encoder| Box::new(encoder) as Box<dyn Encode>)
    }
}

/// What a name is escaped for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A measurement: `,` and space.
    Measurement,
    /// A tag key or value, or a field key: `,`, `=` and space.
    Key,
    /// Inside a string field value's quotes: `"`.
    Quoted,
}

/// Appends `bytes` escaped for `context`; CR and LF become (escaped) spaces.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], context: Context) {
    for &byte in bytes {
        let byte = if byte == b'\n' || byte == b'\r' {
            b' '
        } else {
            byte
        };
        let special = match context {
            Context::Measurement => matches!(byte, b',' | b' ' | b'\\'),
            Context::Key => matches!(byte, b',' | b'=' | b' ' | b'\\'),
            Context::Quoted => matches!(byte, b'"' | b'\\'),
        };
        if special {
            out.push(b'\\');
        }
        out.push(byte);
    }
}

/// Appends a number as Lua's `tostring` wrote it (`%.14g`): how Heka's Lua encoder turned a
/// number into a tag value or a name.
pub fn write_lua_number(value: f64, out: &mut Vec<u8>) {
    if value.is_nan() {
        out.extend_from_slice(if value.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    if value.is_infinite() {
        out.extend_from_slice(if value < 0.0 { b"-inf" } else { b"inf" });
        return;
    }
    let mut text = [0u8; 40];
    // 14 significant digits, rounded, and the exponent of the rounded value.
    let length = {
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{value:.13e}"));
        cursor.position() as usize
    };
    let written = &text[..length];
    let negative = written.first() == Some(&b'-');
    let split = written
        .iter()
        .position(|&byte| byte == b'e')
        .unwrap_or(written.len());
    let mut mantissa = [0u8; 16];
    let mut count = 0;
    for &byte in written[..split].iter().filter(|byte| byte.is_ascii_digit()) {
        if count < mantissa.len() {
            mantissa[count] = byte;
            count += 1;
        }
    }
    let exponent: i32 = std::str::from_utf8(&written[(split + 1).min(written.len())..])
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0);
    while count > 1 && mantissa[count - 1] == b'0' {
        count -= 1;
    }
    let digits = &mantissa[..count.max(1)];
    if negative {
        out.push(b'-');
    }
    if !(-4..14).contains(&exponent) {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exponent < 0 { b'-' } else { b'+' });
        if exponent.unsigned_abs() < 10 {
            out.push(b'0');
        }
        push_decimal(out, i64::from(exponent.unsigned_abs()));
    } else if exponent < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exponent - 1) as usize));
        out.extend_from_slice(digits);
    } else {
        let point = exponent as usize + 1;
        if digits.len() <= point {
            out.extend_from_slice(digits);
            out.extend(std::iter::repeat_n(b'0', point - digits.len()));
        } else {
            out.extend_from_slice(&digits[..point]);
            out.push(b'.');
            out.extend_from_slice(&digits[point..]);
        }
    }
}

/// One core's SchemaInfluxLineEncoder.
#[derive(Debug)]
pub struct InfluxEncoder {
    plan: InfluxPlan,
    name_prefix: Option<Template>,
    /// This message's measurement prefix, rendered.
    prefix: Vec<u8>,
    /// This message's tags, escaped, each led by `,`.
    tags: Vec<u8>,
    walk: Walk,
    framed: Vec<u8>,
    message_bytes_max: usize,
}

/// The walk over a message's dynamic field values, and the point names it makes.
#[derive(Debug, Default)]
struct Walk {
    /// The point name of the value being visited.
    name: Vec<u8>,
    /// The names seen so far in this message, end to end, and for each its span in `arena`
    /// and how many fields had it.
    arena: Vec<u8>,
    seen: Vec<(usize, usize, usize)>,
}

impl Walk {
    /// Calls `visit` with each dynamic field value, its field's name, and its point name:
    /// the name, `_fidx_<n>` for the n-th later field of the same name, `_vidx_<n>` for a
    /// field's n-th later value.
    fn values<'a>(
        &mut self,
        message: &MessageView<'a>,
        mut visit: impl FnMut(&[u8], &[u8], FieldValue<'a>),
    ) {
        self.arena.clear();
        self.seen.clear();
        message.for_each_field(|field| {
            let Some(field_name) = field.name() else {
                return;
            };
            let occurrence = self.occurrence(field_name);
            for (value_index, value) in field.values().enumerate() {
                self.name.clear();
                self.name.extend_from_slice(field_name);
                if occurrence > 0 {
                    self.name.extend_from_slice(b"_fidx_");
                    push_decimal(&mut self.name, occurrence as i64);
                }
                if value_index > 0 {
                    self.name.extend_from_slice(b"_vidx_");
                    push_decimal(&mut self.name, value_index as i64);
                }
                visit(field_name, &self.name, value);
            }
        });
    }

    /// How many earlier fields of this message had `name`; notes this one.
    fn occurrence(&mut self, name: &[u8]) -> usize {
        for (start, end, count) in self.seen.iter_mut() {
            if self.arena[*start..*end] == *name {
                *count += 1;
                return *count - 1;
            }
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(name);
        self.seen.push((start, self.arena.len(), 1));
        0
    }
}

/// Whether a value can be written (a double must be finite).
fn writable(value: &FieldValue<'_>) -> bool {
    !matches!(value, FieldValue::Double(number) if !number.is_finite())
}

impl InfluxPlan {
    fn is_point(&self, field_name: &[u8]) -> bool {
        if let Some(source) = &self.source_value_field {
            return source.as_bytes() == field_name;
        }
        match &self.skip_fields {
            None => true,
            Some(skip) => !skip.contains(field_name),
        }
    }

    fn write_field_value(&self, out: &mut Vec<u8>, value: FieldValue<'_>) {
        match value {
            FieldValue::String(bytes) | FieldValue::Bytes(bytes) => {
                out.push(b'"');
                write_escaped(out, bytes, Context::Quoted);
                out.push(b'"');
            }
            FieldValue::Integer(number) if self.integer_suffix => {
                push_decimal(out, number);
                out.push(b'i');
            }
            FieldValue::Integer(number) => write_fixed(out, number as f64, self.decimal_precision),
            FieldValue::Double(number) => write_fixed(out, number, self.decimal_precision),
            FieldValue::Bool(flag) => out.extend_from_slice(if flag { b"true" } else { b"false" }),
        }
    }
}

impl InfluxEncoder {
    /// The encoder `plan` describes; framed encodings above `message_bytes_max` are refused.
    ///
    /// # Errors
    /// A `name_prefix` date format gyges cannot render (checked when planning too).
    pub fn new(plan: &InfluxPlan, message_bytes_max: usize) -> Result<InfluxEncoder, String> {
        let name_prefix = plan
            .name_prefix
            .as_deref()
            .map(|text| Template::new(text, Missing::Placeholder, write_lua_number))
            .transpose()
            .map_err(|error| error.to_string())?;
        Ok(InfluxEncoder {
            plan: plan.clone(),
            name_prefix,
            prefix: Vec::with_capacity(64),
            tags: Vec::with_capacity(256),
            walk: Walk::default(),
            framed: Vec::new(),
            message_bytes_max,
        })
    }

    /// Appends the lines of `message` (none when it has no value to write).
    pub fn encode(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        self.prefix.clear();
        if let Some(template) = &mut self.name_prefix {
            template.render(message, TimeSource::Now, &mut self.prefix);
        }
        self.write_tags(message);
        let timestamp = message
            .timestamp()
            .unwrap_or(0)
            .div_euclid(self.plan.timestamp_divisor);
        if self.plan.source_value_field.is_some() {
            self.write_source_value(message, timestamp, out);
        } else if self.plan.multi_fields {
            self.write_multi_line(message, timestamp, out);
        } else {
            self.write_points(message, timestamp, out);
        }
    }

    /// The tags every line of the message carries: the tagged headers, then the tagged
    /// dynamic field values.
    fn write_tags(&mut self, message: &MessageView<'_>) {
        let Self {
            plan, tags, walk, ..
        } = self;
        tags.clear();
        let wanted = &plan.tag_fields;
        for header in BASE_TAGS {
            if !(wanted.all || wanted.all_base || wanted.contains(header.as_bytes())) {
                continue;
            }
            let start = tags.len();
            tags.push(b',');
            write_escaped(tags, header.as_bytes(), Context::Key);
            tags.push(b'=');
            let value_start = tags.len();
            if header == "Severity" {
                push_decimal(tags, message.int_header(IntHeader::Severity).unwrap_or(7));
            } else {
                let header = match header {
                    "Type" => StrHeader::Type,
                    "Hostname" => StrHeader::Hostname,
                    _ => StrHeader::Logger,
                };
                write_escaped(
                    tags,
                    message.str_header(header).unwrap_or(b""),
                    Context::Key,
                );
            }
            if tags.len() == value_start {
                tags.truncate(start);
            }
        }
        walk.values(message, |field_name, point_name, value| {
            if !(wanted.all || wanted.contains(field_name)) || point_name.is_empty() {
                return;
            }
            let start = tags.len();
            tags.push(b',');
            write_escaped(tags, point_name, Context::Key);
            tags.push(b'=');
            let value_start = tags.len();
            write_tag_value(tags, value);
            if tags.len() == value_start {
                tags.truncate(start);
            }
        });
    }

    /// One line per value of every dynamic field not skipped.
    fn write_points(&mut self, message: &MessageView<'_>, timestamp: i64, out: &mut Vec<u8>) {
        let Self {
            plan,
            prefix,
            tags,
            walk,
            ..
        } = self;
        walk.values(message, |field_name, point_name, value| {
            if !plan.is_point(field_name) || !writable(&value) {
                return;
            }
            write_escaped(out, prefix, Context::Measurement);
            write_escaped(
                out,
                plan.name_prefix_delimiter.as_bytes(),
                Context::Measurement,
            );
            write_escaped(out, point_name, Context::Measurement);
            finish_line(plan, tags, value, timestamp, out);
        });
    }

    /// `source_value_field`: one line named `name_prefix`, of the field's last value.
    fn write_source_value(&mut self, message: &MessageView<'_>, timestamp: i64, out: &mut Vec<u8>) {
        let Self {
            plan,
            prefix,
            tags,
            walk,
            ..
        } = self;
        let mut last = None;
        walk.values(message, |field_name, _, value| {
            if plan.is_point(field_name) && writable(&value) {
                last = Some(value);
            }
        });
        let Some(value) = last else {
            return;
        };
        write_escaped(out, prefix, Context::Measurement);
        if plan.multi_fields {
            // Heka's multi-field line of the source field: `<prefix>=<value>`.
            out.extend_from_slice(tags);
            out.push(b' ');
            write_escaped(out, prefix, Context::Key);
            out.push(b'=');
            plan.write_field_value(out, value);
            out.push(b' ');
            push_decimal(out, timestamp);
            out.push(b'\n');
        } else {
            finish_line(plan, tags, value, timestamp, out);
        }
    }

    /// `multi_fields`: one line named `name_prefix` with every value as a field.
    fn write_multi_line(&mut self, message: &MessageView<'_>, timestamp: i64, out: &mut Vec<u8>) {
        let Self {
            plan,
            prefix,
            tags,
            walk,
            ..
        } = self;
        let start = out.len();
        write_escaped(out, prefix, Context::Measurement);
        out.extend_from_slice(tags);
        let fields_start = out.len();
        walk.values(message, |field_name, point_name, value| {
            if !plan.is_point(field_name) || !writable(&value) || point_name.is_empty() {
                return;
            }
            out.push(if out.len() == fields_start {
                b' '
            } else {
                b','
            });
            write_escaped(out, point_name, Context::Key);
            out.push(b'=');
            plan.write_field_value(out, value);
        });
        if out.len() == fields_start {
            out.truncate(start);
            return;
        }
        out.push(b' ');
        push_decimal(out, timestamp);
        out.push(b'\n');
    }
}

/// The rest of a one-value line after its measurement: tags, the value, the timestamp.
fn finish_line(
    plan: &InfluxPlan,
    tags: &[u8],
    value: FieldValue<'_>,
    timestamp: i64,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(tags);
    out.push(b' ');
    write_escaped(out, plan.value_field_key.as_bytes(), Context::Key);
    out.push(b'=');
    plan.write_field_value(out, value);
    out.push(b' ');
    push_decimal(out, timestamp);
    out.push(b'\n');
}

/// A tag value as Heka's Lua `tostring` made it.
fn write_tag_value(out: &mut Vec<u8>, value: FieldValue<'_>) {
    match value {
        FieldValue::String(bytes) | FieldValue::Bytes(bytes) => {
            write_escaped(out, bytes, Context::Key)
        }
        FieldValue::Integer(number) => write_lua_number(number as f64, out),
        FieldValue::Double(number) => write_lua_number(number, out),
        FieldValue::Bool(flag) => out.extend_from_slice(if flag { b"true" } else { b"false" }),
    }
}

/// Appends `value` with `precision` digits after the point (C's `%.<precision>f`).
fn write_fixed(out: &mut Vec<u8>, value: f64, precision: usize) {
    // Writing to a Vec cannot fail.
    let _ = std::io::Write::write_fmt(out, format_args!("{value:.precision$}"));
}

impl Encode for InfluxEncoder {
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        framing: Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed> {
        match framing {
            Framing::None => {
                let before = out.len();
                self.encode(message, out);
                Ok(out.len() - before)
            }
            Framing::Heka(signer) => {
                let mut framed = std::mem::take(&mut self.framed);
                framed.clear();
                self.encode(message, &mut framed);
                let result = if framed.is_empty() {
                    Ok(0)
                } else if framed.len() > self.message_bytes_max {
                    Err(EncodeFailed)
                } else {
                    let before = out.len();
                    crate::message::framing::write_frame(out, &framed, signer)
                        .map(|()| out.len() - before)
                        .map_err(|_| EncodeFailed)
                };
                self.framed = framed;
                result
            }
        }
    }
}

#[cfg(test)]
mod tests;
