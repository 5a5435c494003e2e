//! The syslog parser: RFC 5424 and RFC 3164 lines into Heka messages, as pure functions.
//!
//! [`parse`] reads one line (one record, its trailing `\n` or `\r\n` ignored) and returns its
//! parts borrowed from the line: nothing is allocated and nothing is copied. The header decides
//! the format: `<PRI>1 ` starts RFC 5424 ([`rfc5424`]); anything else is read as RFC 3164 with
//! the variants rsyslog accepts ([`rfc3164`]): no PRI, no hostname, an RFC 3339 timestamp in
//! the BSD timestamp's place. [`encode`] appends the Heka protobuf message a line maps to, so
//! a decoder is one call; [`framing`] tells RFC 6587 octet counting from newline framing on a
//! TCP connection and cuts octet-counted frames.
//!
//! The mapping (`docs/syslog.md` has the table): PRI gives Severity (`pri & 7`) and
//! `Fields[facility]` (`pri >> 3`); the timestamp gives Timestamp; HOSTNAME gives Hostname;
//! APP-NAME or TAG gives Logger; PROCID or `[pid]` gives Pid when it is a number that fits an
//! int32 and `Fields[procid]` otherwise; MSGID gives `Fields[msgid]`; each structured-data
//! param gives `Fields[sd.<id>.<param>]`; MSG gives Payload; Type is `syslog`.
//!
//! Invariants:
//! - No input panics, and every part [`parse`] returns is a subslice of its input, except a
//!   structured-data value with escapes, which [`SdParam::value`] unescapes into a `Cow`.
//! - A line that is neither format is an operating error, not a bug: [`parse`] says why with a
//!   [`SyslogError`], and [`encode`] keeps the line whole as Payload with
//!   `Fields[syslog_error]` naming the reason, so nothing is lost.
//! - Bounds (all in `crate::limits`): the RFC 5424 header parts' lengths, the RFC 3164 tag and
//!   pid lengths, the timestamp fraction's digits, and the structured-data params kept per
//!   message (`SYSLOG_SD_PARAMS_MAX`; the rest are dropped and counted).

pub mod decoder;
pub mod framing;
pub mod rfc3164;
pub mod rfc5424;
pub mod time;

use std::borrow::Cow;

use crate::limits::SYSLOG_SD_PARAMS_MAX;
use crate::message::wire;

/// The largest PRI: facility 23, severity 7.
pub const PRIORITY_MAX: u8 = 191;

/// The PRI a line without one gets: facility user (1), severity notice (5), as rsyslog assigns.
pub const PRIORITY_DEFAULT: u8 = 13;

/// The Type of every message this parser produces.
pub const MESSAGE_TYPE: &[u8] = b"syslog";

/// What the receiver knows that a line may leave out: its clock and its zone.
///
/// An RFC 3164 timestamp has no year and no zone; a receiver reads it in its own current year
/// and local zone, as rsyslog does. The caller passes both here (rather than this module
/// reading the clock) so that parsing is a pure function and tests are deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyslogContext {
    /// When the line was received, in nanoseconds since the epoch: the Timestamp of a line
    /// that carries none (RFC 5424 NILVALUE, or no timestamp at all) or is malformed.
    pub received_ns: i64,
    /// The receiver's local year, for year-less timestamps.
    pub year: i64,
    /// The receiver's local month (1..=12), to put a December line read in January in the
    /// year before.
    pub month: u32,
    /// The receiver's local zone, in seconds east of UTC, for zone-less timestamps.
    pub utc_offset_seconds: i32,
}

impl SyslogContext {
    /// The context of a line received at `received_ns` by a receiver whose zone is
    /// `utc_offset_seconds` east of UTC: the local year and month are derived from both.
    pub fn new(received_ns: i64, utc_offset_seconds: i32) -> SyslogContext {
        let local_seconds = received_ns.div_euclid(1_000_000_000) + i64::from(utc_offset_seconds);
        let (year, month, _) = time::civil_from_days(local_seconds.div_euclid(86_400));
        SyslogContext {
            received_ns,
            year,
            month,
            utc_offset_seconds,
        }
    }
}

/// Which RFC a line's header follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`.
    Rfc5424,
    /// `[<PRI>]TIMESTAMP [HOSTNAME ]TAG[[PID]]: MSG`, with rsyslog's variants.
    Rfc3164,
}

/// One parsed line. Every part borrows from the line; an absent part (RFC 5424's NILVALUE
/// `-`, or a part RFC 3164 left out) is `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syslog<'a> {
    /// Which header grammar the line followed.
    pub format: Format,
    /// 0..=[`PRIORITY_MAX`]; [`PRIORITY_DEFAULT`] when the line has no PRI.
    pub priority: u8,
    /// Nanoseconds since the epoch, with the sender's offset (or the receiver's zone and year
    /// for a BSD timestamp) applied.
    pub timestamp_ns: Option<i64>,
    /// HOSTNAME.
    pub hostname: Option<&'a [u8]>,
    /// APP-NAME (RFC 5424) or TAG (RFC 3164).
    pub app_name: Option<&'a [u8]>,
    /// PROCID (RFC 5424) or the `[pid]` after the TAG (RFC 3164).
    pub procid: Option<&'a [u8]>,
    /// MSGID (RFC 5424 only).
    pub msgid: Option<&'a [u8]>,
    /// STRUCTURED-DATA (RFC 5424 only; empty otherwise).
    pub structured_data: StructuredData<'a>,
    /// MSG, without the UTF-8 BOM RFC 5424 allows before it.
    pub message: &'a [u8],
}

impl Syslog<'_> {
    /// Syslog severity, 0 (emergency) to 7 (debug).
    pub fn severity(&self) -> u8 {
        self.priority & 7
    }

    /// Syslog facility, 0 (kernel) to 23 (local7).
    pub fn facility(&self) -> u8 {
        self.priority >> 3
    }
}

/// Why a line is neither RFC 5424 nor RFC 3164. The [`SyslogError::code`] is short, static and
/// low-cardinality: it labels the decoder's counter and is the value of `Fields[syslog_error]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyslogError {
    /// The line has no bytes once its line end is stripped.
    #[error("the line is empty")]
    Empty,
    /// The line starts with `<` but no valid PRI follows (1 to 3 digits, at most 191, then `>`).
    #[error(
        "the line starts with '<' but has no valid PRI (1 to 3 digits, at most 191, then '>')"
    )]
    Priority,
    /// The line has neither a PRI nor a timestamp to recognise it as syslog by.
    #[error("the line has no PRI and no timestamp to recognise it by")]
    NoHeader,
    /// The RFC 5424 header ends before its STRUCTURED-DATA.
    #[error("the RFC 5424 header ends before its structured data")]
    TruncatedHeader,
    /// The RFC 5424 TIMESTAMP is not an RFC 3339 date-time (nor `-`).
    #[error("the RFC 5424 TIMESTAMP is not an RFC 3339 date-time")]
    Timestamp,
    /// The RFC 5424 HOSTNAME is not 1 to `SYSLOG_HOSTNAME_BYTES_MAX` printable ASCII bytes.
    #[error("the RFC 5424 HOSTNAME is not 1 to 255 printable ASCII bytes")]
    Hostname,
    /// The RFC 5424 APP-NAME is not 1 to `SYSLOG_APP_NAME_BYTES_MAX` printable ASCII bytes.
    #[error("the RFC 5424 APP-NAME is not 1 to 48 printable ASCII bytes")]
    AppName,
    /// The RFC 5424 PROCID is not 1 to `SYSLOG_PROCID_BYTES_MAX` printable ASCII bytes.
    #[error("the RFC 5424 PROCID is not 1 to 128 printable ASCII bytes")]
    Procid,
    /// The RFC 5424 MSGID is not 1 to `SYSLOG_MSGID_BYTES_MAX` printable ASCII bytes.
    #[error("the RFC 5424 MSGID is not 1 to 32 printable ASCII bytes")]
    Msgid,
    /// The RFC 5424 STRUCTURED-DATA is neither `-` nor well-formed SD-ELEMENTs.
    #[error("the RFC 5424 STRUCTURED-DATA is malformed")]
    StructuredData,
}

impl SyslogError {
    /// A low-cardinality label for counters and for `Fields[syslog_error]`.
    pub fn code(self) -> &'static str {
        match self {
            SyslogError::Empty => "empty",
            SyslogError::Priority => "priority",
            SyslogError::NoHeader => "no_header",
            SyslogError::TruncatedHeader => "truncated_header",
            SyslogError::Timestamp => "timestamp",
            SyslogError::Hostname => "hostname",
            SyslogError::AppName => "app_name",
            SyslogError::Procid => "procid",
            SyslogError::Msgid => "msgid",
            SyslogError::StructuredData => "structured_data",
        }
    }
}

/// Parses one line. Its trailing `\n` or `\r\n` (a TokenSplitter keeps its delimiter) is not
/// part of the message.
///
/// # Errors
/// The line is neither format: see [`SyslogError`].
pub fn parse<'a>(line: &'a [u8], context: &SyslogContext) -> Result<Syslog<'a>, SyslogError> {
    let line = strip_line_end(line);
    if line.is_empty() {
        return Err(SyslogError::Empty);
    }
    let (priority, rest) = match line.first() {
        Some(b'<') => {
            let (priority, consumed) = read_priority(line).ok_or(SyslogError::Priority)?;
            (Some(priority), &line[consumed..])
        }
        _ => (None, line),
    };
    match (priority, rest) {
        (Some(priority), [b'1', b' ', header @ ..]) => rfc5424::parse(priority, header),
        _ => rfc3164::parse(priority, rest, context),
    }
}

/// `line` without one trailing `\n` or `\r\n`.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads `<PRI>` at the start of `line`: 1 to 3 digits, at most [`PRIORITY_MAX`]. Returns the
/// priority and the bytes consumed.
fn read_priority(line: &[u8]) -> Option<(u8, usize)> {
    let mut value = 0u32;
    let mut count = 0usize;
    while let Some(&byte) = line.get(1 + count) {
        if !byte.is_ascii_digit() {
            break;
        }
        if count == 3 {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
        count += 1;
    }
    if count == 0 || line.get(1 + count) != Some(&b'>') {
        return None;
    }
    let priority = u8::try_from(value)
        .ok()
        .filter(|&priority| priority <= PRIORITY_MAX)?;
    Some((priority, count + 2))
}

/// RFC 5424 structured data, checked by the parser and read by iterating its params.
///
/// Only the parser builds one, so the text is known to be well formed; the iterator still
/// stops quietly at anything unexpected rather than trusting that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StructuredData<'a> {
    /// From the first `[` through the last `]`; empty for NILVALUE or RFC 3164.
    text: &'a [u8],
    /// Params across all elements.
    params: u32,
}

impl<'a> StructuredData<'a> {
    pub(crate) fn new(text: &'a [u8], params: u32) -> StructuredData<'a> {
        StructuredData { text, params }
    }

    /// The raw text, brackets and escapes included; empty when there is none.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// How many params the elements hold together.
    pub fn param_count(&self) -> usize {
        self.params as usize
    }

    /// The params of every element, in order.
    pub fn params(&self) -> SdParams<'a> {
        SdParams {
            text: self.text,
            position: 0,
            id: &[],
        }
    }
}

/// One structured-data param: `[id ... name="value" ...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdParam<'a> {
    /// The SD-ID of the element the param is in.
    pub id: &'a [u8],
    /// The PARAM-NAME.
    pub name: &'a [u8],
    /// The value between the quotes, escapes as sent.
    pub raw_value: &'a [u8],
}

impl<'a> SdParam<'a> {
    /// The value with `\"`, `\\` and `\]` unescaped. Borrowed unless there was an escape; any
    /// other backslash is kept, as RFC 5424 §6.3.3 says.
    pub fn value(&self) -> Cow<'a, [u8]> {
        if unescaped_len(self.raw_value) == self.raw_value.len() {
            return Cow::Borrowed(self.raw_value);
        }
        let mut value = Vec::with_capacity(self.raw_value.len());
        put_unescaped(&mut value, self.raw_value);
        Cow::Owned(value)
    }
}

/// Iterates the params of [`StructuredData`].
#[derive(Clone, Debug)]
pub struct SdParams<'a> {
    text: &'a [u8],
    position: usize,
    /// The SD-ID of the element being read.
    id: &'a [u8],
}

impl<'a> Iterator for SdParams<'a> {
    type Item = SdParam<'a>;

    fn next(&mut self) -> Option<SdParam<'a>> {
        // Each step consumes at least one byte, so the loop ends within the text's length.
        loop {
            match self.text.get(self.position)? {
                b'[' => {
                    let (id, consumed) = rfc5424::sd_name(self.text.get(self.position + 1..)?)?;
                    self.id = id;
                    self.position += 1 + consumed;
                }
                b']' => self.position += 1,
                b' ' => {
                    let rest = self.text.get(self.position + 1..)?;
                    let (name, raw_value, consumed) = rfc5424::sd_param(rest)?;
                    self.position += 1 + consumed;
                    return Some(SdParam {
                        id: self.id,
                        name,
                        raw_value,
                    });
                }
                _ => return None,
            }
        }
    }
}

/// The length of `raw` once `\"`, `\\` and `\]` are unescaped.
fn unescaped_len(raw: &[u8]) -> usize {
    let mut length = raw.len();
    let mut index = 0;
    while index < raw.len() {
        if raw[index] == b'\\' && matches!(raw.get(index + 1), Some(b'"' | b'\\' | b']')) {
            length -= 1;
            index += 2;
        } else {
            index += 1;
        }
    }
    length
}

/// Appends `raw` with `\"`, `\\` and `\]` unescaped.
fn put_unescaped(out: &mut Vec<u8>, raw: &[u8]) {
    let mut index = 0;
    while index < raw.len() {
        let byte = raw[index];
        if byte == b'\\' {
            if let Some(&escaped @ (b'"' | b'\\' | b']')) = raw.get(index + 1) {
                out.push(escaped);
                index += 2;
                continue;
            }
        }
        out.push(byte);
        index += 1;
    }
}

/// What [`encode`] did, for the decoder's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Why the line was malformed (it became a Payload-only message), or `None`.
    pub error: Option<SyslogError>,
    /// Structured-data params past `SYSLOG_SD_PARAMS_MAX`, not written as fields.
    pub sd_params_dropped: usize,
}

/// Parses `line` and appends the Heka protobuf message it maps to onto `out` (the decoder's
/// one call). A malformed line still yields a message: see [`encode_malformed`].
pub fn encode(line: &[u8], context: &SyslogContext, uuid: &[u8; 16], out: &mut Vec<u8>) -> Encoded {
    match parse(line, context) {
        Ok(syslog) => Encoded {
            error: None,
            sd_params_dropped: encode_parsed(&syslog, context, uuid, out),
        },
        Err(error) => {
            encode_malformed(line, error, context, uuid, out);
            Encoded {
                error: Some(error),
                sd_params_dropped: 0,
            }
        }
    }
}

/// Appends the message of a parsed line onto `out`, headers in schema order, and returns how
/// many structured-data params were dropped past `SYSLOG_SD_PARAMS_MAX`. Writing allocates
/// nothing but `out`'s growth: escaped values are unescaped straight into `out`.
pub fn encode_parsed(
    syslog: &Syslog<'_>,
    context: &SyslogContext,
    uuid: &[u8; 16],
    out: &mut Vec<u8>,
) -> usize {
    wire::put_bytes(out, 1, uuid);
    wire::put_int(out, 2, syslog.timestamp_ns.unwrap_or(context.received_ns));
    wire::put_bytes(out, 3, MESSAGE_TYPE);
    if let Some(app_name) = syslog.app_name {
        wire::put_bytes(out, 4, app_name);
    }
    wire::put_int(out, 5, i64::from(syslog.severity()));
    wire::put_bytes(out, 6, syslog.message);
    let pid = syslog.procid.and_then(numeric_pid);
    if let Some(pid) = pid {
        wire::put_int(out, 8, i64::from(pid));
    }
    if let Some(hostname) = syslog.hostname {
        wire::put_bytes(out, 9, hostname);
    }
    put_integer_field(out, b"facility", i64::from(syslog.facility()));
    if let (None, Some(procid)) = (pid, syslog.procid) {
        put_string_field(out, &[b"procid"], procid, procid.len());
    }
    if let Some(msgid) = syslog.msgid {
        put_string_field(out, &[b"msgid"], msgid, msgid.len());
    }
    let mut kept = 0usize;
    for param in syslog.structured_data.params().take(SYSLOG_SD_PARAMS_MAX) {
        let name: [&[u8]; 4] = [b"sd.", param.id, b".", param.name];
        let value_len = unescaped_len(param.raw_value);
        put_string_field(out, &name, param.raw_value, value_len);
        kept += 1;
    }
    let dropped = syslog.structured_data.param_count().saturating_sub(kept);
    if dropped > 0 {
        put_integer_field(out, b"sd_params_dropped", dropped as i64);
    }
    dropped
}

/// Appends the message of a line that is neither format: the line whole (its line end
/// included) as Payload, Type `syslog`, the receive time, and `Fields[syslog_error]` saying
/// why.
pub fn encode_malformed(
    line: &[u8],
    error: SyslogError,
    context: &SyslogContext,
    uuid: &[u8; 16],
    out: &mut Vec<u8>,
) {
    wire::put_bytes(out, 1, uuid);
    wire::put_int(out, 2, context.received_ns);
    wire::put_bytes(out, 3, MESSAGE_TYPE);
    wire::put_bytes(out, 6, line);
    let reason = error.code().as_bytes();
    put_string_field(out, &[b"syslog_error"], reason, reason.len());
}

/// A PROCID that is all digits and fits an int32 (Heka's Pid), or `None`.
fn numeric_pid(procid: &[u8]) -> Option<i32> {
    if procid.is_empty() || procid.len() > 10 || !procid.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = procid
        .iter()
        .fold(0i64, |value, &digit| value * 10 + i64::from(digit - b'0'));
    i32::try_from(value).ok()
}

/// The protobuf size of a length-delimited member of `tag` < 16 holding `length` bytes.
fn len_member_bytes(length: usize) -> usize {
    1 + wire::varint_len(length as u64) + length
}

/// Appends a STRING field whose name is the concatenation of `name_parts` and whose one value
/// is `raw_value` unescaped (`value_len` bytes once unescaped; equal to `raw_value.len()` when
/// it has no escapes). Value type STRING is the schema's default, so it is not written.
fn put_string_field(out: &mut Vec<u8>, name_parts: &[&[u8]], raw_value: &[u8], value_len: usize) {
    let name_len: usize = name_parts.iter().map(|part| part.len()).sum();
    let submessage_bytes = len_member_bytes(name_len) + len_member_bytes(value_len);
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, submessage_bytes as u64);
    wire::put_key(out, 1, wire::WIRE_LEN);
    wire::put_varint(out, name_len as u64);
    for part in name_parts {
        out.extend_from_slice(part);
    }
    wire::put_key(out, 4, wire::WIRE_LEN);
    wire::put_varint(out, value_len as u64);
    if value_len == raw_value.len() {
        out.extend_from_slice(raw_value);
    } else {
        put_unescaped(out, raw_value);
    }
}

/// Appends an INTEGER field with one value, packed as the schema declares.
fn put_integer_field(out: &mut Vec<u8>, name: &[u8], value: i64) {
    const VALUE_TYPE_INTEGER: i64 = 2;
    let value_bytes = wire::varint_len(value as u64);
    let submessage_bytes = len_member_bytes(name.len()) + 2 + len_member_bytes(value_bytes);
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, submessage_bytes as u64);
    wire::put_bytes(out, 1, name);
    wire::put_int(out, 2, VALUE_TYPE_INTEGER);
    wire::put_key(out, 6, wire::WIRE_LEN);
    wire::put_varint(out, value_bytes as u64);
    wire::put_varint(out, value as u64);
}

#[cfg(test)]
mod tests;
