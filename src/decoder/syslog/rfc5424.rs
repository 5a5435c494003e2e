//! RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [SP MSG]`.
//!
//! The header is strict, as the RFC is: single spaces between parts, each part `-` (NILVALUE)
//! or 1 to its bound of printable ASCII (`SYSLOG_*_BYTES_MAX` in `crate::limits`, the RFC's
//! own numbers). Structured data is one or more `[SD-ID *(SP PARAM-NAME="PARAM-VALUE")]`,
//! names of 1 to 32 printable bytes other than `=`, space, `]` and `"`; inside a value a
//! backslash escapes the next byte, so `\"` does not end it. MSG may start with a UTF-8 BOM,
//! which is not part of the Payload. Any departure makes the line malformed, with the part
//! that departed as the reason.

use super::{time, StructuredData, Syslog, SyslogError};
use crate::limits::{
    SYSLOG_APP_NAME_BYTES_MAX, SYSLOG_HOSTNAME_BYTES_MAX, SYSLOG_MSGID_BYTES_MAX,
    SYSLOG_PROCID_BYTES_MAX, SYSLOG_SD_NAME_BYTES_MAX,
};

/// The UTF-8 byte order mark RFC 5424 puts before a MSG known to be UTF-8.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Parses what follows `<PRI>1 `.
///
/// # Errors
/// The part that is malformed, or [`SyslogError::TruncatedHeader`] if the line ends early.
pub fn parse(priority: u8, header: &[u8]) -> Result<Syslog<'_>, SyslogError> {
    let (timestamp_ns, mut at) = timestamp(header)?;
    let (hostname, consumed) = header_part(
        &header[at..],
        SYSLOG_HOSTNAME_BYTES_MAX,
        SyslogError::Hostname,
    )?;
    at += consumed;
    let (app_name, consumed) = header_part(
        &header[at..],
        SYSLOG_APP_NAME_BYTES_MAX,
        SyslogError::AppName,
    )?;
    at += consumed;
    let (procid, consumed) =
        header_part(&header[at..], SYSLOG_PROCID_BYTES_MAX, SyslogError::Procid)?;
    at += consumed;
    let (msgid, consumed) = header_part(&header[at..], SYSLOG_MSGID_BYTES_MAX, SyslogError::Msgid)?;
    at += consumed;
    let (structured_data, consumed) = structured_data(&header[at..])?;
    at += consumed;
    let message = match header.get(at) {
        None => &[][..],
        Some(b' ') => {
            let message = &header[at + 1..];
            message.strip_prefix(BOM).unwrap_or(message)
        }
        Some(_) => return Err(SyslogError::StructuredData),
    };
    Ok(Syslog {
        format: super::Format::Rfc5424,
        priority,
        timestamp_ns,
        hostname,
        app_name,
        procid,
        msgid,
        structured_data,
        message,
    })
}

/// Reads TIMESTAMP and the space after it: `-`, or an RFC 3339 date-time with its offset.
fn timestamp(header: &[u8]) -> Result<(Option<i64>, usize), SyslogError> {
    let (timestamp_ns, consumed) = match header.first() {
        None => return Err(SyslogError::TruncatedHeader),
        Some(b'-') => (None, 1),
        Some(_) => {
            let (ns, consumed) = time::rfc3339(header).ok_or(SyslogError::Timestamp)?;
            (Some(ns), consumed)
        }
    };
    match header.get(consumed) {
        Some(b' ') => Ok((timestamp_ns, consumed + 1)),
        None => Err(SyslogError::TruncatedHeader),
        Some(_) => Err(SyslogError::Timestamp),
    }
}

/// Reads one header part and the space after it: `-` (`None`), or 1 to `bytes_max` printable
/// ASCII bytes. `error` names the part when it is malformed.
fn header_part(
    header: &[u8],
    bytes_max: usize,
    error: SyslogError,
) -> Result<(Option<&[u8]>, usize), SyslogError> {
    // Only a bounded window is searched for the space: a part longer than its bound is
    // malformed however long it goes on.
    let window = &header[..header.len().min(bytes_max + 1)];
    let Some(end) = window.iter().position(|&byte| byte == b' ') else {
        if header.len() <= bytes_max && window.iter().all(|&byte| is_print(byte)) {
            return Err(SyslogError::TruncatedHeader);
        }
        return Err(error);
    };
    let part = &header[..end];
    if part.is_empty() || !part.iter().all(|&byte| is_print(byte)) {
        return Err(error);
    }
    let value = if part == b"-" { None } else { Some(part) };
    Ok((value, end + 1))
}

/// RFC 5424's PRINTUSASCII: `!` to `~`.
fn is_print(byte: u8) -> bool {
    (33..=126).contains(&byte)
}

/// Reads STRUCTURED-DATA: `-`, or one or more elements. Returns it and the bytes consumed.
fn structured_data(bytes: &[u8]) -> Result<(StructuredData<'_>, usize), SyslogError> {
    match bytes.first() {
        None => return Err(SyslogError::TruncatedHeader),
        Some(b'-') => return Ok((StructuredData::default(), 1)),
        Some(b'[') => {}
        Some(_) => return Err(SyslogError::StructuredData),
    }
    let mut at = 0usize;
    let mut params = 0u32;
    // Each pass consumes one element of at least three bytes; the line's length bounds it.
    while bytes.get(at) == Some(&b'[') {
        let (_, consumed) = sd_name(&bytes[at + 1..]).ok_or(SyslogError::StructuredData)?;
        at += 1 + consumed;
        loop {
            match bytes.get(at) {
                Some(b']') => {
                    at += 1;
                    break;
                }
                Some(b' ') => {
                    let (_, _, consumed) =
                        sd_param(&bytes[at + 1..]).ok_or(SyslogError::StructuredData)?;
                    at += 1 + consumed;
                    params = params.saturating_add(1);
                }
                _ => return Err(SyslogError::StructuredData),
            }
        }
    }
    Ok((StructuredData::new(&bytes[..at], params), at))
}

/// Reads an SD-NAME (an SD-ID or a PARAM-NAME) at the start of `bytes`: 1 to
/// `SYSLOG_SD_NAME_BYTES_MAX` printable bytes other than `=`, `]` and `"`. Returns it and its
/// length; what follows is the caller's to check.
pub(super) fn sd_name(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let end = bytes
        .iter()
        .take(SYSLOG_SD_NAME_BYTES_MAX + 1)
        .position(|&byte| !is_print(byte) || matches!(byte, b'=' | b']' | b'"'))
        .unwrap_or(bytes.len().min(SYSLOG_SD_NAME_BYTES_MAX + 1));
    if end == 0 || end > SYSLOG_SD_NAME_BYTES_MAX {
        return None;
    }
    Some((&bytes[..end], end))
}

/// Reads `PARAM-NAME="PARAM-VALUE"` at the start of `bytes`. Returns the name, the value as
/// sent (escapes kept) and the bytes consumed.
pub(super) fn sd_param(bytes: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let (name, name_len) = sd_name(bytes)?;
    if bytes.get(name_len..name_len + 2)? != b"=\"" {
        return None;
    }
    let value_start = name_len + 2;
    let mut at = value_start;
    loop {
        match bytes.get(at)? {
            b'"' => break,
            // An escape: the next byte, whatever it is, is part of the value.
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    Some((name, bytes.get(value_start..at)?, at + 1))
}
