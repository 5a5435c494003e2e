//! RFC 3164 ("BSD syslog") and the variants rsyslog accepts.
//!
//! `[<PRI>][SEQ: ][*|.]TIMESTAMP[:| ZONE:] [HOSTNAME ]TAG[[PID]]: MSG`, where
//! - PRI is optional; a line without one gets [`super::PRIORITY_DEFAULT`], but must then
//!   start with a timestamp, or nothing marks it as syslog and it is malformed;
//! - TIMESTAMP is the BSD form (`Oct 11 22:14:15`, with an optional year or fraction, read in
//!   the receiver's year and zone from [`SyslogContext`]) or RFC 3339 (rsyslog's forwarding
//!   templates write it here; without an offset it is local time). A line with a PRI and no
//!   timestamp is still accepted, as rsyslog does: it gets the receive time;
//! - `SEQ: `, the `*`/`.` clock markers, and `:` or ` UTC:`/` GMT:` after the clock are the
//!   shapes Cisco devices send; after them comes no hostname;
//! - HOSTNAME is present when the word after the timestamp looks like one (letters, digits,
//!   `.`, `-`, `_`, `:`, not ending in `:`). Otherwise it is the TAG, as when a local
//!   `logger` writes to `/dev/log`;
//! - TAG is the word up to `:` or `[PID]`; a word ending otherwise is not a tag (the line has
//!   none), and a TAG longer than `SYSLOG_TAG_BYTES_MAX` is not one either;
//! - MSG is the rest after one optional space.
//!
//! Nothing after a PRI makes an RFC 3164 line malformed: the parts it lacks are absent.

use super::time::{self, Bsd};
use super::{Format, StructuredData, Syslog, SyslogContext, SyslogError, PRIORITY_DEFAULT};
use crate::limits::{SYSLOG_HOSTNAME_BYTES_MAX, SYSLOG_TAG_BYTES_MAX, SYSLOG_TAG_PID_BYTES_MAX};

/// A timestamp as written, before its zone is settled.
#[derive(Clone, Copy)]
enum Stamp {
    /// RFC 3339 with its offset applied.
    Absolute(i64),
    /// BSD, or RFC 3339 without an offset: read in a zone decided later.
    Local(Bsd),
}

/// Parses the line after its optional PRI.
///
/// # Errors
/// [`SyslogError::NoHeader`] when there is neither a PRI nor a timestamp.
pub fn parse<'a>(
    priority: Option<u8>,
    rest: &'a [u8],
    context: &SyslogContext,
) -> Result<Syslog<'a>, SyslogError> {
    let header = match header(priority.is_some(), rest, context) {
        Some(header) => header,
        None if priority.is_some() => Header {
            timestamp_ns: None,
            hostname: None,
            rest,
        },
        None => return Err(SyslogError::NoHeader),
    };
    let Tag {
        name: app_name,
        pid: procid,
        message,
    } = tag(header.rest);
    let (timestamp_ns, hostname) = (header.timestamp_ns, header.hostname);
    Ok(Syslog {
        format: Format::Rfc3164,
        priority: priority.unwrap_or(PRIORITY_DEFAULT),
        timestamp_ns,
        hostname,
        app_name,
        procid,
        msgid: None,
        structured_data: StructuredData::default(),
        message,
    })
}

/// The timestamp and hostname of a line, and what follows them.
struct Header<'a> {
    timestamp_ns: Option<i64>,
    hostname: Option<&'a [u8]>,
    rest: &'a [u8],
}

/// Reads the timestamp and the hostname, or returns `None` when the line does not start with
/// a timestamp.
fn header<'a>(has_priority: bool, rest: &'a [u8], context: &SyslogContext) -> Option<Header<'a>> {
    let mut at = if has_priority {
        sequence_number(rest)
    } else {
        0
    };
    if matches!(rest.get(at), Some(b'*' | b'.')) {
        at += 1;
    }
    let (stamp, consumed) = read_stamp(&rest[at..])?;
    at += consumed;
    let mut offset_seconds = context.utc_offset_seconds;
    let mut hostname_follows = false;
    match rest.get(at) {
        None => {}
        Some(b':') => at += 1,
        Some(b' ') => {
            at += 1;
            if let (Stamp::Local(_), Some(b"UTC:" | b"GMT:")) = (stamp, rest.get(at..at + 4)) {
                offset_seconds = 0;
                at += 4;
            } else {
                hostname_follows = true;
            }
        }
        Some(_) => return None,
    }
    let timestamp_ns = match stamp {
        Stamp::Absolute(ns) => ns,
        Stamp::Local(reading) => reading.to_ns(context.year, context.month, offset_seconds)?,
    };
    let mut after = &rest[at..];
    let hostname = if hostname_follows {
        hostname(after)
    } else {
        None
    };
    if let Some(hostname) = hostname {
        after = &after[hostname.len()..];
    }
    // One space separates the timestamp or hostname from what follows; when the word after
    // the timestamp was no hostname, that space was already passed.
    if hostname.is_some() || !hostname_follows {
        after = after.strip_prefix(b" ").unwrap_or(after);
    }
    Some(Header {
        timestamp_ns: Some(timestamp_ns),
        hostname,
        rest: after,
    })
}

/// The bytes of a Cisco sequence number (`123: `) at the start of `rest`, or 0.
fn sequence_number(rest: &[u8]) -> usize {
    // Ten digits hold any u32 counter; more is not a sequence number.
    let digits = rest
        .iter()
        .take(11)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if (1..=10).contains(&digits) && rest.get(digits..digits + 2) == Some(b": ") {
        digits + 2
    } else {
        0
    }
}

/// Reads a BSD or RFC 3339 timestamp at the start of `bytes`.
fn read_stamp(bytes: &[u8]) -> Option<(Stamp, usize)> {
    if bytes.first().is_some_and(u8::is_ascii_digit) {
        if let Some((ns, consumed)) = time::rfc3339(bytes) {
            return Some((Stamp::Absolute(ns), consumed));
        }
        let (reading, consumed) = time::rfc3339_local(bytes)?;
        return Some((Stamp::Local(reading), consumed));
    }
    let (reading, consumed) = time::bsd(bytes)?;
    Some((Stamp::Local(reading), consumed))
}

/// The hostname at the start of `bytes`, if the first word looks like one.
fn hostname(bytes: &[u8]) -> Option<&[u8]> {
    let window = &bytes[..bytes.len().min(SYSLOG_HOSTNAME_BYTES_MAX + 1)];
    let end = window
        .iter()
        .position(|&byte| byte == b' ')
        .unwrap_or(window.len());
    let word = &bytes[..end];
    let looks_like_host = |byte: &u8| byte.is_ascii_alphanumeric() || b".-_:".contains(byte);
    let is_hostname = !word.is_empty()
        && word.len() <= SYSLOG_HOSTNAME_BYTES_MAX
        && word.last() != Some(&b':')
        && word.iter().all(looks_like_host);
    is_hostname.then_some(word)
}

/// A TAG, its `[PID]`, and the MSG after them.
struct Tag<'a> {
    name: Option<&'a [u8]>,
    pid: Option<&'a [u8]>,
    message: &'a [u8],
}

impl<'a> Tag<'a> {
    /// No tag: the whole of `bytes` is MSG.
    fn none(bytes: &'a [u8]) -> Tag<'a> {
        Tag {
            name: None,
            pid: None,
            message: bytes,
        }
    }
}

/// Splits `TAG[PID]: MSG` or `TAG: MSG` into its parts; a line without a tag is all MSG.
fn tag(bytes: &[u8]) -> Tag<'_> {
    let window = &bytes[..bytes.len().min(SYSLOG_TAG_BYTES_MAX + 1)];
    let Some(end) = window
        .iter()
        .position(|&byte| matches!(byte, b' ' | b'[' | b':'))
    else {
        return Tag::none(bytes);
    };
    if end == 0 || end > SYSLOG_TAG_BYTES_MAX {
        return Tag::none(bytes);
    }
    let name = &bytes[..end];
    let mut at = end;
    let mut pid = None;
    match bytes[end] {
        b':' => at += 1,
        b'[' => {
            let inside = &bytes[end + 1..];
            let window = &inside[..inside.len().min(SYSLOG_TAG_PID_BYTES_MAX + 1)];
            let Some(close) = window.iter().position(|&byte| byte == b']') else {
                return Tag::none(bytes);
            };
            pid = Some(&inside[..close]).filter(|pid| !pid.is_empty());
            at = end + 1 + close + 1;
            if bytes.get(at) == Some(&b':') {
                at += 1;
            }
        }
        _ => return Tag::none(bytes),
    }
    let message = &bytes[at..];
    Tag {
        name: Some(name),
        pid,
        message: message.strip_prefix(b" ").unwrap_or(message),
    }
}
