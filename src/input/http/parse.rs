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
mod tests;
