//! The pure part of HttpListenInput: a request head read with `httparse`, the chunked body
//! decoder, the credential checks, the request's message fields and the answers. No I/O, no
//! glommio: the connection task (`super::connection`) drives these.
//!
//! Bounds (`crate::limits`): a head is at most [`HTTP_HEAD_BYTES_MAX`] bytes and
//! [`HTTP_HEADERS_MAX`] lines (past either: 431); a chunk-size line at most
//! [`HTTP_CHUNK_LINE_BYTES_MAX`] bytes and the trailers at most [`HTTP_HEAD_BYTES_MAX`] (past
//! either: 400). The fields a head makes are built from the head's own bytes, so they are
//! bounded by it. Nothing here panics or allocates past those bounds, whatever the bytes (the
//! property tests at the bottom feed random and truncated requests).

use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use crate::limits::{
    HTTP_BASIC_CREDENTIALS_BYTES_MAX, HTTP_CHUNK_LINE_BYTES_MAX, HTTP_HEADERS_MAX,
    HTTP_HEAD_BYTES_MAX,
};
use crate::message::wire;

/// Who may post: Heka's `auth_type` with its credentials.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anyone.
    None,
    /// `auth_type = "Basic"`: `Authorization: Basic` with this user and password.
    Basic {
        /// `username`.
        username: Vec<u8>,
        /// `password`.
        password: Vec<u8>,
    },
    /// `auth_type = "API"`: the `X-API-Key` header equals `api_key`.
    Api {
        /// `api_key`.
        key: Vec<u8>,
    },
}

impl std::fmt::Debug for Auth {
    // Never prints a secret.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => formatter.write_str("None"),
            Auth::Basic { .. } => formatter.write_str("Basic"),
            Auth::Api { .. } => formatter.write_str("API"),
        }
    }
}

/// What every request of one input is checked and described with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Who may post.
    pub auth: Auth,
    /// Request headers copied to fields (`request_headers`), by the names as written.
    pub request_headers: Vec<String>,
    /// The configured response `headers`, formatted as `Name: value\r\n` lines.
    pub response_headers: Vec<u8>,
}

/// The request methods HttpListenInput tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// POST: the body is read into the pipeline.
    Post,
    /// PUT: as POST.
    Put,
    /// GET: answered 200 with nothing read (a health check).
    Get,
    /// HEAD: as GET.
    Head,
    /// Anything else: answered 405.
    Other,
}

/// How the body of a request is delimited (RFC 9112 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request head, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, its final empty line included.
    pub consumed: usize,
    /// The method.
    pub method: Method,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection stays open after the answer (HTTP/1.1 unless `Connection:
    /// close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue`: the client waits for a 100 before it sends the body.
    pub expect_continue: bool,
    /// Whether the credentials are right (always, without `auth_type`).
    pub authorized: bool,
}

/// The answers HttpListenInput gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// 200: the body was accepted (shipped, and appended where the route is durable).
    Ok,
    /// 400: the request is malformed.
    BadRequest,
    /// 401: missing or wrong credentials.
    Unauthorized,
    /// 405: a method other than POST, PUT, GET and HEAD.
    MethodNotAllowed,
    /// 413: the body is over its bound.
    PayloadTooLarge,
    /// 431: the head is over [`HTTP_HEAD_BYTES_MAX`] or [`HTTP_HEADERS_MAX`].
    HeaderTooLarge,
    /// 501: a transfer coding other than chunked.
    NotImplemented,
    /// 503: a destination of the core is full; retry later.
    Unavailable,
}

impl Status {
    /// The status line's code and reason, and a short text body.
    fn parts(self) -> (u16, &'static str, &'static str) {
        match self {
            Status::Ok => (200, "OK", ""),
            Status::BadRequest => (400, "Bad Request", "malformed request\n"),
            Status::Unauthorized => (401, "Unauthorized", "unauthorized\n"),
            Status::MethodNotAllowed => (405, "Method Not Allowed", "use POST or PUT\n"),
            Status::PayloadTooLarge => (413, "Payload Too Large", "body too large\n"),
            Status::HeaderTooLarge => (
                431,
                "Request Header Fields Too Large",
                "request head too large\n",
            ),
            Status::NotImplemented => (501, "Not Implemented", "only chunked is supported\n"),
            Status::Unavailable => (503, "Service Unavailable", "busy, retry later\n"),
        }
    }

    /// The numeric code.
    pub fn code(self) -> u16 {
        self.parts().0
    }
}

/// Why a head was refused, and the answer it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The answer.
    pub status: Status,
    /// A short reason for the log.
    pub reason: &'static str,
}

fn refuse(status: Status, reason: &'static str) -> Refusal {
    Refusal { status, reason }
}

/// The headers a head carries that HttpListenInput acts on.
#[derive(Default)]
struct Known<'h> {
    length: Option<u64>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    authorization: Option<&'h [u8]>,
    api_key: Option<&'h [u8]>,
    host: &'h [u8],
    user_agent: &'h [u8],
    content_type: &'h [u8],
}

/// Reads the head at the start of `window`. `Ok(None)`: incomplete, read more. On success the
/// request's message fields (Heka's Protocol, UserAgent, ContentType, Path, Host, RemoteAddr,
/// then each `request_headers` header present, then the query parameters) are written to
/// `fields`, encoded as message fields; `scratch` is working room.
///
/// # Errors
/// A head over its bounds (431), malformed (400), or with a transfer coding other than
/// chunked (501).
pub fn parse_head(
    window: &[u8],
    settings: &Settings,
    remote_ip: &[u8],
    (fields, scratch): (&mut Vec<u8>, &mut Vec<u8>),
) -> Result<Option<Head>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let Some(consumed) = parse_bounded(window, &mut request)? else {
        return Ok(None);
    };
    let version = request.version.unwrap_or(1);
    let method = method_of(request.method.unwrap_or(""));
    let known = known_headers(request.headers)?;
    let framing = match (known.chunked, known.length) {
        (true, Some(_)) => {
            return Err(refuse(
                Status::BadRequest,
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (true, None) => Framing::Chunked,
        (false, Some(0) | None) => Framing::Empty,
        (false, Some(length)) => Framing::Length(length),
    };
    let keep_alive = match version {
        0 => known.keep_alive && !known.close,
        _ => !known.close,
    };
    let authorized = authorized(&settings.auth, &known);
    let path = request.path.unwrap_or("").as_bytes();
    let protocol: &[u8] = if version == 0 {
        b"HTTP/1.0"
    } else {
        b"HTTP/1.1"
    };
    fields.clear();
    put_string_field(fields, b"Protocol", protocol);
    put_string_field(fields, b"UserAgent", known.user_agent);
    put_string_field(fields, b"ContentType", known.content_type);
    let (path, query) = match memchr::memchr(b'?', path) {
        Some(at) => (&path[..at], &path[at + 1..]),
        None => (path, &[][..]),
    };
    put_string_field(fields, b"Path", path);
    put_string_field(fields, b"Host", without_port(known.host));
    put_string_field(fields, b"RemoteAddr", remote_ip);
    for name in &settings.request_headers {
        let value = request
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .map(|header| header.value)
            .filter(|value| !value.is_empty());
        if let Some(value) = value {
            put_string_field(fields, name.as_bytes(), value);
        }
    }
    put_query_fields(fields, scratch, query);
    Ok(Some(Head {
        consumed,
        method,
        framing,
        keep_alive,
        expect_continue: known.expect_continue,
        authorized,
    }))
}

/// Parses the head at the start of `window` into `request`, within [`HTTP_HEAD_BYTES_MAX`]
/// bytes and [`HTTP_HEADERS_MAX`] lines. `Ok(None)`: incomplete, read more.
fn parse_bounded<'h, 'b>(
    window: &'b [u8],
    request: &mut httparse::Request<'h, 'b>,
) -> Result<Option<usize>, Refusal> {
    let bounded = &window[..window.len().min(HTTP_HEAD_BYTES_MAX)];
    match request.parse(bounded) {
        Ok(httparse::Status::Complete(consumed)) => Ok(Some(consumed)),
        Ok(httparse::Status::Partial) if bounded.len() < HTTP_HEAD_BYTES_MAX => Ok(None),
        Ok(httparse::Status::Partial) => {
            Err(refuse(Status::HeaderTooLarge, "request head too large"))
        }
        Err(httparse::Error::TooManyHeaders) => {
            Err(refuse(Status::HeaderTooLarge, "too many header lines"))
        }
        Err(_) => Err(refuse(Status::BadRequest, "malformed request head")),
    }
}

/// The method a request line names.
fn method_of(name: &str) -> Method {
    match name {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    }
}

/// A request's method and path, for a server that only answers GET and HEAD from its path
/// (the operator endpoint, `crate::telemetry::endpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'b> {
    /// Bytes of the head, its final empty line included.
    pub consumed: usize,
    /// The method.
    pub method: Method,
    /// The path, without its query.
    pub path: &'b str,
}

/// Reads the method and path of the head at the start of `window`, within the same bounds as
/// [`parse_head`]. `Ok(None)`: incomplete, read more.
///
/// # Errors
/// A head over its bounds (431) or malformed (400).
pub fn parse_target(window: &[u8]) -> Result<Option<Target<'_>>, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    let Some(consumed) = parse_bounded(window, &mut request)? else {
        return Ok(None);
    };
    let method = method_of(request.method.unwrap_or(""));
    let target = request.path.unwrap_or("");
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    Ok(Some(Target {
        consumed,
        method,
        path,
    }))
}

/// Picks out the headers HttpListenInput acts on.
fn known_headers<'h>(headers: &[httparse::Header<'h>]) -> Result<Known<'h>, Refusal> {
    let mut known = Known::default();
    for header in headers {
        let (name, value) = (header.name, header.value);
        if name.eq_ignore_ascii_case("content-length") {
            let length = parse_length(value)
                .ok_or_else(|| refuse(Status::BadRequest, "bad Content-Length"))?;
            if known.length.is_some_and(|seen| seen != length) {
                return Err(refuse(Status::BadRequest, "conflicting Content-Length"));
            }
            known.length = Some(length);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if !value.eq_ignore_ascii_case(b"chunked") || known.chunked {
                return Err(refuse(
                    Status::NotImplemented,
                    "unsupported transfer coding",
                ));
            }
            known.chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&byte| byte == b',') {
                let token = token.trim_ascii();
                known.close |= token.eq_ignore_ascii_case(b"close");
                known.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            known.expect_continue = value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("authorization") {
            known.authorization = Some(value);
        } else if name.eq_ignore_ascii_case("x-api-key") {
            known.api_key = Some(value);
        } else if name.eq_ignore_ascii_case("host") {
            known.host = value;
        } else if name.eq_ignore_ascii_case("user-agent") {
            known.user_agent = value;
        } else if name.eq_ignore_ascii_case("content-type") {
            known.content_type = value;
        }
    }
    Ok(known)
}

/// A Content-Length value: decimal digits only, at most 19 of them (fits a u64).
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0u64, |total, digit| total * 10 + u64::from(digit - b'0')),
    )
}

/// Whether the request carries the configured credentials. Secrets are compared in constant
/// time.
fn authorized(auth: &Auth, known: &Known<'_>) -> bool {
    match auth {
        Auth::None => true,
        Auth::Api { key } => known
            .api_key
            .is_some_and(|given| bool::from(given.ct_eq(key))),
        Auth::Basic { username, password } => {
            let Some(value) = known.authorization else {
                return false;
            };
            let mut decoded = [0u8; HTTP_BASIC_CREDENTIALS_BYTES_MAX];
            let Some(credentials) = basic_credentials(value, &mut decoded) else {
                return false;
            };
            let Some(colon) = memchr::memchr(b':', credentials) else {
                return false;
            };
            let user_ok = credentials[..colon].ct_eq(username);
            let password_ok = credentials[colon + 1..].ct_eq(password);
            bool::from(user_ok & password_ok)
        }
    }
}

/// The decoded `user:password` of an `Authorization: Basic …` value, in `out`.
fn basic_credentials<'o>(value: &[u8], out: &'o mut [u8]) -> Option<&'o [u8]> {
    let value = value.trim_ascii();
    let space = memchr::memchr(b' ', value)?;
    if !value[..space].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let encoded = value[space + 1..].trim_ascii();
    // Room the decoder may want for the encoded length: checked first, so a long value fails
    // rather than overflowing the buffer.
    if encoded.len() / 4 * 3 + 3 > out.len() {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let length = engines
        .iter()
        .find_map(|engine| engine.decode_slice(encoded, out).ok())?;
    Some(&out[..length])
}

/// The host part of a `Host` value: without `:port`, and an IPv6 literal without brackets.
fn without_port(host: &[u8]) -> &[u8] {
    if let Some(rest) = host.strip_prefix(b"[") {
        return match memchr::memchr(b']', rest) {
            Some(end) => &rest[..end],
            None => host,
        };
    }
    match memchr::memrchr(b':', host) {
        Some(colon) => &host[..colon],
        None => host,
    }
}

/// Appends a string field (`value_type` STRING, the default, left out) to a message's fields.
pub fn put_string_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let inner = 1
        + wire::varint_len(name.len() as u64)
        + name.len()
        + 1
        + wire::varint_len(value.len() as u64)
        + value.len();
    wire::put_key(out, 10, wire::WIRE_LEN);
    wire::put_varint(out, inner as u64);
    wire::put_bytes(out, 1, name);
    wire::put_bytes(out, 4, value);
}

/// Each `name=value` of a query string as a field, percent-decoded (`+` is a space), as Heka
/// did. A parameter with an empty name is skipped.
fn put_query_fields(fields: &mut Vec<u8>, scratch: &mut Vec<u8>, query: &[u8]) {
    for parameter in query.split(|&byte| byte == b'&') {
        let (name, value) = match memchr::memchr(b'=', parameter) {
            Some(at) => (&parameter[..at], &parameter[at + 1..]),
            None => (parameter, &[][..]),
        };
        scratch.clear();
        percent_decode(name, scratch);
        let name_bytes = scratch.len();
        if name_bytes == 0 {
            continue;
        }
        percent_decode(value, scratch);
        let (name, value) = scratch.split_at(name_bytes);
        put_string_field(fields, name, value);
    }
}

/// Appends `text` percent-decoded; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(text: &[u8], out: &mut Vec<u8>) {
    let mut at = 0;
    while at < text.len() {
        let byte = text[at];
        let escaped = (byte == b'%')
            .then(|| Some((hex(*text.get(at + 1)?)?, hex(*text.get(at + 2)?)?)))
            .flatten();
        match (byte, escaped) {
            (_, Some((high, low))) => {
                out.push(high << 4 | low);
                at += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                at += 1;
            }
            (byte, None) => {
                out.push(byte);
                at += 1;
            }
        }
    }
}

fn hex(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Writes an answer: status line, `Content-Length`, `Connection: close` when the connection
/// closes after it, the status's own headers, the configured `headers`, and a short text body
/// (none for HEAD).
pub fn write_response(
    out: &mut Vec<u8>,
    status: Status,
    close: bool,
    (auth, response_headers): (&Auth, &[u8]),
    head_only: bool,
) {
    use std::io::Write as _;
    let (code, reason, body) = status.parts();
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(out, "HTTP/1.1 {code} {reason}\r\n");
    let _ = write!(out, "Content-Length: {}\r\n", body.len());
    if !body.is_empty() {
        out.extend_from_slice(b"Content-Type: text/plain; charset=utf-8\r\n");
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    match status {
        Status::Unauthorized if matches!(auth, Auth::Basic { .. }) => {
            out.extend_from_slice(b"WWW-Authenticate: Basic realm=\"gyges\"\r\n");
        }
        Status::Unavailable => out.extend_from_slice(b"Retry-After: 1\r\n"),
        Status::MethodNotAllowed => out.extend_from_slice(b"Allow: POST, PUT, GET, HEAD\r\n"),
        _ => {}
    }
    out.extend_from_slice(response_headers);
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
}

/// The interim answer to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Where a chunked body decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last (zero) chunk: trailer lines up to an empty one.
    Trailers,
    /// The body has ended.
    Done,
}

/// One step of [`Chunked::step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkStep {
    /// `window[start..end]` is body data; drop `consumed` bytes.
    Data {
        /// Offset of the data in the window.
        start: usize,
        /// Offset just past the data.
        end: usize,
        /// Bytes to drop from the front of the window.
        consumed: usize,
    },
    /// Framing read: drop `consumed` bytes and step again.
    Framing {
        /// Bytes to drop from the front of the window.
        consumed: usize,
    },
    /// Nothing complete in the window: read more.
    NeedMore,
    /// The body has ended: drop `consumed` bytes (the rest of the window is the next request).
    Done {
        /// Bytes to drop from the front of the window.
        consumed: usize,
    },
}

/// A chunked body decoder (RFC 9112 §7.1). It keeps no bytes: the caller's window holds them.
#[derive(Debug, Clone)]
pub struct Chunked {
    state: ChunkState,
    trailer_bytes: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked::new()
    }
}

impl Chunked {
    /// A decoder at the start of a body.
    pub fn new() -> Chunked {
        Chunked {
            state: ChunkState::Size,
            trailer_bytes: 0,
        }
    }

    /// Reads what it can from the front of `window` (the unread bytes of the connection).
    ///
    /// # Errors
    /// Malformed framing, or a size line or trailers over their bounds.
    pub fn step(&mut self, window: &[u8]) -> Result<ChunkStep, &'static str> {
        match self.state {
            ChunkState::Size => self.size_line(window),
            ChunkState::Data(left) => {
                if window.is_empty() {
                    return Ok(ChunkStep::NeedMore);
                }
                let take = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(window.len());
                let left = left - take as u64;
                self.state = match left {
                    0 => ChunkState::DataEnd,
                    _ => ChunkState::Data(left),
                };
                Ok(ChunkStep::Data {
                    start: 0,
                    end: take,
                    consumed: take,
                })
            }
            ChunkState::DataEnd => match window {
                [b'\r', b'\n', ..] => self.framed(ChunkState::Size, 2),
                [b'\n', ..] => self.framed(ChunkState::Size, 1),
                [] | [b'\r'] => Ok(ChunkStep::NeedMore),
                _ => Err("chunk data not followed by CRLF"),
            },
            ChunkState::Trailers => self.trailer_line(window),
            ChunkState::Done => Ok(ChunkStep::Done { consumed: 0 }),
        }
    }

    fn framed(&mut self, next: ChunkState, consumed: usize) -> Result<ChunkStep, &'static str> {
        self.state = next;
        Ok(ChunkStep::Framing { consumed })
    }

    fn size_line(&mut self, window: &[u8]) -> Result<ChunkStep, &'static str> {
        let bounded = &window[..window.len().min(HTTP_CHUNK_LINE_BYTES_MAX)];
        match httparse::parse_chunk_size(bounded) {
            Ok(httparse::Status::Complete((consumed, 0))) => {
                self.framed(ChunkState::Trailers, consumed)
            }
            Ok(httparse::Status::Complete((consumed, size))) => {
                self.framed(ChunkState::Data(size), consumed)
            }
            Ok(httparse::Status::Partial) if bounded.len() < HTTP_CHUNK_LINE_BYTES_MAX => {
                Ok(ChunkStep::NeedMore)
            }
            Ok(httparse::Status::Partial) => Err("chunk-size line too long"),
            Err(_) => Err("bad chunk size"),
        }
    }

    fn trailer_line(&mut self, window: &[u8]) -> Result<ChunkStep, &'static str> {
        let room = HTTP_HEAD_BYTES_MAX - self.trailer_bytes;
        let bounded = &window[..window.len().min(room)];
        let Some(newline) = memchr::memchr(b'\n', bounded) else {
            return match bounded.len() < room {
                true => Ok(ChunkStep::NeedMore),
                false => Err("trailers too long"),
            };
        };
        let consumed = newline + 1;
        self.trailer_bytes += consumed;
        let line = &window[..newline];
        if line.is_empty() || line == b"\r" {
            self.state = ChunkState::Done;
            return Ok(ChunkStep::Done { consumed });
        }
        Ok(ChunkStep::Framing { consumed })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{FieldValue, ProtoView};
    use proptest::prelude::*;

    #[test]
    fn a_target_is_read_within_the_head_bounds() {
        let target = parse_target(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        let target = target.expect("complete");
        assert_eq!((target.method, target.path), (Method::Get, "/metrics"));
        assert_eq!(target.consumed, 38);
        assert_eq!(parse_target(b"GET /metrics HTTP/1.1\r\nHo"), Ok(None));
        let refused = parse_target(b"GET\x01 / HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!(refused.status, Status::BadRequest);
        let mut long = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(HTTP_HEAD_BYTES_MAX + 10, b'a');
        let refused = parse_target(&long).unwrap_err();
        assert_eq!(refused.status, Status::HeaderTooLarge);
        let many: String = (0..=HTTP_HEADERS_MAX)
            .map(|n| format!("X-{n}: v\r\n"))
            .collect();
        let many = format!("GET / HTTP/1.1\r\n{many}\r\n");
        let refused = parse_target(many.as_bytes()).unwrap_err();
        assert_eq!(refused.status, Status::HeaderTooLarge);
    }

    fn settings(auth: Auth) -> Settings {
        Settings {
            auth,
            request_headers: vec!["X-Tenant".into(), "X-Absent".into()],
            response_headers: b"X-Served-By: gyges\r\n".to_vec(),
        }
    }

    fn parse(bytes: &[u8], auth: Auth) -> (Result<Option<Head>, Refusal>, Vec<u8>) {
        let (mut fields, mut scratch) = (Vec::new(), Vec::new());
        let settings = settings(auth);
        let parsed = parse_head(bytes, &settings, b"10.1.2.3", (&mut fields, &mut scratch));
        (parsed, fields)
    }

    /// The fields as (name, value) pairs, read back with the message view.
    fn fields_of(fields: &[u8]) -> Vec<(String, String)> {
        let mut message = Vec::new();
        wire::put_bytes(&mut message, 1, &[0; 16]);
        wire::put_int(&mut message, 2, 1);
        message.extend_from_slice(fields);
        let view = ProtoView::new(&message);
        view.validate().expect("well-formed fields");
        view.fields()
            .map(|field| {
                let name = String::from_utf8_lossy(field.name().unwrap_or_default()).into_owned();
                let value = match field.value(0) {
                    Some(FieldValue::String(value)) => String::from_utf8_lossy(value).into_owned(),
                    other => panic!("not a string: {other:?}"),
                };
                (name, value)
            })
            .collect()
    }

    const POST: &[u8] = b"POST /logs/in?source=web&msg=a%20b+c&flag HTTP/1.1\r\n\
        Host: gyges.example:8325\r\nUser-Agent: test/1\r\nContent-Type: text/plain\r\n\
        x-tenant: acme\r\nContent-Length: 11\r\n\r\nhello world";

    #[test]
    fn a_post_head_is_read_with_hekas_fields() {
        let (parsed, fields) = parse(POST, Auth::None);
        let head = parsed.expect("valid").expect("complete");
        assert_eq!(&POST[head.consumed..], b"hello world");
        assert_eq!(head.method, Method::Post);
        assert_eq!(head.framing, Framing::Length(11));
        assert!(head.keep_alive && head.authorized && !head.expect_continue);
        let expected = [
            ("Protocol", "HTTP/1.1"),
            ("UserAgent", "test/1"),
            ("ContentType", "text/plain"),
            ("Path", "/logs/in"),
            ("Host", "gyges.example"),
            ("RemoteAddr", "10.1.2.3"),
            ("X-Tenant", "acme"),
            ("source", "web"),
            ("msg", "a b c"),
            ("flag", ""),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        assert_eq!(fields_of(&fields), expected);
    }

    #[test]
    fn framing_and_connection_rules() {
        let head = |text: &str| parse(text.as_bytes(), Auth::None).0;
        let complete = |text: &str| head(text).expect("valid").expect("complete");
        let chunked = complete("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(
            (chunked.method, chunked.framing),
            (Method::Put, Framing::Chunked)
        );
        let close = complete("POST / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert_eq!((close.keep_alive, close.framing), (false, Framing::Empty));
        assert!(!complete("POST / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(complete("POST / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        let expect =
            complete("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        assert!(expect.expect_continue);
        assert_eq!(complete("DELETE / HTTP/1.1\r\n\r\n").method, Method::Other);
        assert_eq!(head("POST / HTTP/1.1\r\nContent-Length: 5\r\n"), Ok(None));
        let refused = |text: &str| head(text).expect_err("refused").status;
        let bad = [
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "GARBAGE\r\n\r\n",
            "POST / HTTP/1.1\r\nBad Header\r\n\r\n",
        ];
        for text in bad {
            assert_eq!(refused(text), Status::BadRequest, "{text:?}");
        }
        let gzip = "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(refused(gzip), Status::NotImplemented);
        let many: String = (0..=HTTP_HEADERS_MAX)
            .map(|index| format!("X-{index}: 1\r\n"))
            .collect();
        assert_eq!(
            refused(&format!("POST / HTTP/1.1\r\n{many}\r\n")),
            Status::HeaderTooLarge
        );
        let long = format!("POST /{} HTTP/1.1\r\n", "a".repeat(HTTP_HEAD_BYTES_MAX));
        assert_eq!(refused(&long), Status::HeaderTooLarge);
    }

    #[test]
    fn credentials_are_checked() {
        let basic = || Auth::Basic {
            username: b"alice".to_vec(),
            password: b"s3cret:x".to_vec(),
        };
        let with = |header: &str, auth: Auth| {
            let text = format!("POST / HTTP/1.1\r\n{header}\r\n\r\n");
            parse(text.as_bytes(), auth)
                .0
                .expect("valid")
                .expect("complete")
                .authorized
        };
        // base64("alice:s3cret:x"): the password may hold a colon.
        assert!(with("Authorization: Basic YWxpY2U6czNjcmV0Ong=", basic()));
        assert!(with("authorization: basic  YWxpY2U6czNjcmV0Ong=", basic()));
        assert!(
            !with("Authorization: Basic YWxpY2U6d3Jvbmc=", basic()),
            "alice:wrong"
        );
        assert!(!with("Authorization: Bearer YWxpY2U6czNjcmV0Ong=", basic()));
        assert!(!with("Authorization: Basic !!!", basic()));
        assert!(!with("X-Other: 1", basic()));
        let long = format!(
            "Authorization: Basic {}",
            "QUFB".repeat(HTTP_BASIC_CREDENTIALS_BYTES_MAX)
        );
        assert!(!with(&long, basic()));
        let api = || Auth::Api {
            key: b"k-123".to_vec(),
        };
        assert!(with("X-API-Key: k-123", api()));
        assert!(with("x-api-key: k-123", api()));
        assert!(!with("X-API-Key: k-124", api()));
        assert!(!with("X-Other: k-123", api()));
        assert!(with("X-Other: 1", Auth::None));
    }

    #[test]
    fn answers_carry_their_headers() {
        let text = |status, close, auth: &Auth| {
            let mut out = Vec::new();
            write_response(
                &mut out,
                status,
                close,
                (auth, b"X-Served-By: gyges\r\n"),
                false,
            );
            String::from_utf8(out).expect("text")
        };
        let ok = text(Status::Ok, false, &Auth::None);
        assert_eq!(
            ok,
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Served-By: gyges\r\n\r\n"
        );
        let basic = Auth::Basic {
            username: b"u".to_vec(),
            password: Vec::new(),
        };
        let unauthorized = text(Status::Unauthorized, true, &basic);
        assert!(unauthorized.starts_with("HTTP/1.1 401 Unauthorized\r\n"));
        assert!(unauthorized.contains("WWW-Authenticate: Basic realm=\"gyges\"\r\n"));
        assert!(unauthorized.contains("Connection: close\r\n"));
        assert!(unauthorized.ends_with("\r\n\r\nunauthorized\n"));
        assert!(text(Status::Unavailable, true, &Auth::None).contains("Retry-After: 1\r\n"));
        assert!(text(Status::PayloadTooLarge, true, &Auth::None).starts_with("HTTP/1.1 413 "));
    }

    /// Decodes a whole chunked body fed in pieces of `piece` bytes; returns the data and the
    /// bytes left after the body.
    fn dechunk(stream: &[u8], piece: usize) -> Result<(Vec<u8>, Vec<u8>), &'static str> {
        let mut chunked = Chunked::new();
        let (mut window, mut data, mut fed) = (Vec::new(), Vec::new(), 0);
        loop {
            match chunked.step(&window)? {
                ChunkStep::Data {
                    start,
                    end,
                    consumed,
                } => {
                    assert!(start <= end && end <= consumed && consumed <= window.len());
                    data.extend_from_slice(&window[start..end]);
                    window.drain(..consumed);
                }
                ChunkStep::Framing { consumed } => {
                    assert!(consumed > 0 && consumed <= window.len());
                    window.drain(..consumed);
                }
                ChunkStep::Done { consumed } => {
                    window.drain(..consumed);
                    window.extend_from_slice(&stream[fed..]);
                    return Ok((data, window));
                }
                ChunkStep::NeedMore => {
                    if fed == stream.len() {
                        return Err("truncated");
                    }
                    let next = (fed + piece.max(1)).min(stream.len());
                    window.extend_from_slice(&stream[fed..next]);
                    fed = next;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_in_any_pieces() {
        let stream = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, 100] {
            let (data, rest) = dechunk(stream, piece).expect("valid");
            assert_eq!(data, b"hello world", "piece {piece}");
            assert_eq!(rest, b"NEXT");
        }
        assert_eq!(
            dechunk(b"5\r\nhelloXX0\r\n\r\n", 4),
            Err("chunk data not followed by CRLF")
        );
        assert_eq!(dechunk(b"zz\r\n", 4), Err("bad chunk size"));
        let long_line = format!("5;{}\r\n", "e".repeat(HTTP_CHUNK_LINE_BYTES_MAX));
        assert_eq!(
            dechunk(long_line.as_bytes(), 64),
            Err("chunk-size line too long")
        );
        let trailers = format!("0\r\n{}", "X-T: 1\r\n".repeat(HTTP_HEAD_BYTES_MAX / 8 + 1));
        assert_eq!(dechunk(trailers.as_bytes(), 512), Err("trailers too long"));
    }

    fn chunked(body: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut stream = Vec::new();
        let mut at = 0;
        let mut index = 0;
        while at < body.len() {
            let size = sizes[index % sizes.len()].clamp(1, body.len() - at);
            index += 1;
            stream.extend_from_slice(format!("{size:x}\r\n").as_bytes());
            stream.extend_from_slice(&body[at..at + size]);
            stream.extend_from_slice(b"\r\n");
            at += size;
        }
        stream.extend_from_slice(b"0\r\n\r\n");
        stream
    }

    proptest! {
        /// Random bytes as a head: no panic; the fields stay within a bound set by the head
        /// bound (each byte of the head lands in the fields at most once, plus each field's
        /// name and framing), and a complete head consumes no more than it was given.
        #[test]
        fn random_heads_never_panic_or_grow_past_the_bound(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let (parsed, fields) = parse(&bytes, Auth::Api { key: b"k".to_vec() });
            if let Ok(Some(head)) = parsed {
                prop_assert!(head.consumed <= bytes.len());
            }
            prop_assert!(fields.len() <= 3 * HTTP_HEAD_BYTES_MAX + 1024);
        }

        /// A valid request with random bytes written over it: refused or read, never a panic,
        /// and the fields stay bounded.
        #[test]
        fn mutated_heads_never_panic(
            edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..12),
        ) {
            let mut bytes = POST.to_vec();
            for (at, byte) in edits {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            let (parsed, fields) = parse(&bytes, Auth::None);
            if let Ok(Some(head)) = parsed {
                prop_assert!(head.consumed <= bytes.len());
                fields_of(&fields);
            }
            prop_assert!(fields.len() <= 3 * HTTP_HEAD_BYTES_MAX + 1024);
        }

        /// A valid request cut anywhere: incomplete (read more) until the head is whole, and
        /// then the same head.
        #[test]
        fn truncated_heads_ask_for_more(cut in 0usize..POST.len()) {
            let (parsed, _) = parse(&POST[..cut], Auth::None);
            let whole = parse(POST, Auth::None).0.expect("valid").expect("complete");
            match parsed {
                Ok(None) => prop_assert!(cut < whole.consumed),
                Ok(Some(head)) => prop_assert_eq!(head, whole),
                Err(refusal) => prop_assert!(false, "refused {:?} at {}", refusal, cut),
            }
        }

        /// Headers of random printable text: the request_headers field carries the value.
        #[test]
        fn copied_headers_keep_their_value(value in "[ -~]{1,200}") {
            let text = format!("POST / HTTP/1.1\r\nX-Tenant: {value}\r\n\r\n");
            let (parsed, fields) = parse(text.as_bytes(), Auth::None);
            prop_assert!(parsed.is_ok());
            let fields = fields_of(&fields);
            let copied = fields.iter().find(|(name, _)| name == "X-Tenant");
            let trimmed = value.trim_matches(|c| c == ' ' || c == '\t');
            match copied {
                Some((_, copied)) => prop_assert_eq!(copied.as_str(), trimmed),
                None => prop_assert!(trimmed.is_empty()),
            }
        }

        /// Any body, chunked in any sizes and fed in any pieces, decodes to itself.
        #[test]
        fn chunked_round_trip(
            body in proptest::collection::vec(any::<u8>(), 0..3000),
            sizes in proptest::collection::vec(1usize..700, 1..8),
            piece in 1usize..600,
        ) {
            let stream = chunked(&body, &sizes);
            let (data, rest) = dechunk(&stream, piece).expect("valid");
            prop_assert_eq!(data, body);
            prop_assert!(rest.is_empty());
        }

        /// Random and truncated chunked streams: an error or a shorter body, never a panic,
        /// and never data beyond what was given.
        #[test]
        fn random_chunked_streams_never_panic(
            noise in proptest::collection::vec(any::<u8>(), 0..1500),
            body in proptest::collection::vec(any::<u8>(), 0..500),
            cut in any::<proptest::sample::Index>(),
        ) {
            if let Ok((data, _)) = dechunk(&noise, 37) {
                prop_assert!(data.len() <= noise.len());
            }
            let stream = chunked(&body, &[13]);
            let cut = cut.index(stream.len());
            match dechunk(&stream[..cut], 5) {
                Ok((data, _)) => prop_assert_eq!(data, body),
                Err(reason) => prop_assert_eq!(reason, "truncated"),
            }
        }
    }
}
