//! The HTTP/1.1 client of HttpOutput and ElasticSearchOutput: one [`Client`] per core, with
//! at most one connection (kept alive between requests unless told otherwise), plain or TLS
//! ([`crate::tls`]).
//!
//! A request is written as a head and a `Content-Length` body; the answer's head is read with
//! `httparse` and its body by `Content-Length`, chunked coding (the decoder HttpListenInput
//! uses, [`crate::input::http::parse::Chunked`]) or until the connection closes. Interim
//! `1xx` answers are skipped.
//!
//! Bounds (`crate::limits`): an answer's head is at most [`HTTP_RESPONSE_HEAD_BYTES_MAX`]
//! bytes and 64 header lines; a body the caller keeps (ElasticSearchOutput's bulk answer) at
//! most [`HTTP_RESPONSE_BODY_BYTES_MAX`]; a body the caller does not keep is read and thrown
//! away. The whole exchange, from the first byte written to the last byte read, takes at most
//! the timeout. Past any bound the request fails, the connection is closed, and the caller
//! retries as for any failure.
//!
//! A connection kept alive may have been closed by the server while idle: a request on a
//! reused connection that fails before any byte of the answer arrived is sent once more on a
//! new connection before it counts as failed.

use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use glommio::net::TcpStream;

use crate::input::http::parse::{ChunkStep, Chunked};
use crate::limits::{HTTP_RESPONSE_BODY_BYTES_MAX, HTTP_RESPONSE_HEAD_BYTES_MAX};
use crate::tls::{TlsClient, TlsStream, Transport};

/// Bytes read from the socket at once.
const READ_BYTES: usize = 64 * 1024;
/// Header lines of an answer at most.
const RESPONSE_HEADERS_MAX: usize = 64;

/// An `http://` or `https://` address, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https://`.
    pub https: bool,
    /// The host, without brackets for IPv6.
    pub host: String,
    /// The port (default 80 or 443).
    pub port: u16,
    /// The path and query, at least `/`.
    pub target: String,
}

impl Url {
    /// Parses `text`.
    ///
    /// # Errors
    /// Not `http://` or `https://`, no host, a bad port, user information in the address
    /// (use `username` and `password`), a fragment, or spaces and control characters.
    pub fn parse(text: &str) -> Result<Url, String> {
        let (https, rest) = if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else {
            return Err(format!("`{text}` does not start with http:// or https://"));
        };
        if text.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
            return Err(format!("`{text}` has spaces or control characters"));
        }
        if text.contains('#') {
            return Err(format!("`{text}` has a fragment (#), which is never sent"));
        }
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, target) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!(
                "`{text}` has user information: give username and password instead"
            ));
        }
        let (host, port) = split_authority(authority)
            .ok_or_else(|| format!("`{text}` has no host, or a bad port"))?;
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let target = match target {
            "" => "/".to_string(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_string(),
        };
        Ok(Url {
            https,
            host: host.to_string(),
            port,
            target,
        })
    }

    /// `host:port` to connect to (an IPv6 host in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Host` header: the host, with the port when it is not the scheme's default.
    pub fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            if self.host.contains(':') {
                return format!("[{}]", self.host);
            }
            return self.host.clone();
        }
        self.address()
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` when the host is empty or the port bad.
fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            port => (host, Some(port.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok().filter(|port| *port != 0)?),
        None => None,
    };
    Some((host, port))
}

/// The request method (`method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `POST` (the default).
    Post,
    /// `PUT`.
    Put,
    /// `GET` (the body is sent all the same).
    Get,
}

impl Method {
    /// `POST`, `PUT` or `GET`, as written in a config (upper or lower case).
    pub fn from_name(name: &str) -> Option<Method> {
        Some(match name.to_ascii_uppercase().as_str() {
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "GET" => Method::Get,
            _ => return None,
        })
    }

    /// The method's name on the request line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Get => "GET",
        }
    }
}

/// What every request of one output is sent with, planned once and shared by the cores.
#[derive(Debug, Clone)]
pub struct ClientPlan {
    /// Where requests go.
    pub url: Url,
    /// The method.
    pub method: Method,
    /// `https://`: the TLS client config and the name the server must carry.
    pub tls: Option<TlsClient>,
    /// How long one connection attempt (and TLS handshake) may take.
    pub connect_timeout: Duration,
    /// How long one request may take, from its first byte to its answer's last.
    pub timeout: Duration,
    /// Keep the connection open between requests (`http_disable_keepalives = false`).
    pub keep_alive: bool,
    /// Header lines written after `Host` in every request (`Name: value\r\n` each): the
    /// configured headers, the authorization, the content type, `Connection: close`.
    pub header_lines: Vec<u8>,
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The request took longer than the timeout.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The server closed the connection before the answer was complete.
    #[error("the server closed the connection before answering")]
    Closed,
    /// The answer is not HTTP/1.x, or breaks its framing.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    /// The answer is over a bound.
    #[error("the answer's {0} is too large")]
    TooLarge(&'static str),
}

/// An answer: its status and, when the caller keeps it, its body.
#[derive(Debug, Default)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (empty unless kept).
    pub body: Vec<u8>,
}

/// How an answer's body is delimited.
enum BodyLength {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the head of an answer says.
struct Head {
    status: u16,
    bytes: usize,
    length: BodyLength,
    close: bool,
}

/// One core's client: at most one connection.
pub struct Client {
    plan: std::sync::Arc<ClientPlan>,
    stream: Option<Transport>,
    head: Vec<u8>,
    inbox: Vec<u8>,
}

impl Client {
    /// A client of `plan`, connecting when first needed.
    pub fn new(plan: std::sync::Arc<ClientPlan>) -> Client {
        Client {
            plan,
            stream: None,
            head: Vec::with_capacity(1024),
            inbox: Vec::with_capacity(READ_BYTES),
        }
    }

    /// The plan it sends with.
    pub fn plan(&self) -> &ClientPlan {
        &self.plan
    }

    /// Sends `body` (gzip-compressed when `gzip`) and reads the answer into `response`, its
    /// body only when `keep_body`.
    ///
    /// # Errors
    /// The connection failed, the answer did not come in time, or broke a bound or HTTP's
    /// framing; the connection is closed.
    pub async fn send(
        &mut self,
        body: &[u8],
        gzip: bool,
        keep_body: bool,
        response: &mut Response,
    ) -> Result<(), HttpError> {
        self.write_head(body.len(), gzip);
        let reused = self.stream.is_some();
        let first = self.exchange(body, keep_body, response).await;
        let result = match first {
            Err(HttpError::Closed | HttpError::Io(_)) if reused && self.inbox.is_empty() => {
                // The server closed the idle connection: once more on a new one.
                self.drop_connection().await;
                self.exchange(body, keep_body, response).await
            }
            other => other,
        };
        if result.is_err() {
            self.drop_connection().await;
        }
        result
    }

    /// Closes the connection, if any.
    pub async fn drop_connection(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            stream.close().await;
        }
    }

    fn write_head(&mut self, length: usize, gzip: bool) {
        use std::io::Write as _;
        let plan = &self.plan;
        self.head.clear();
        let _ = write!(
            self.head,
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            plan.method.name(),
            plan.url.target,
            plan.url.authority()
        );
        self.head.extend_from_slice(&plan.header_lines);
        if gzip {
            self.head.extend_from_slice(b"Content-Encoding: gzip\r\n");
        }
        let _ = write!(self.head, "Content-Length: {length}\r\n\r\n");
    }

    /// The open connection, or a new one.
    async fn connection(&mut self) -> Result<&mut Transport, HttpError> {
        if self
            .stream
            .as_ref()
            .is_some_and(|stream| gyges_sys::socket::peer_closed(stream.tcp()))
        {
            self.drop_connection().await;
        }
        if self.stream.is_none() {
            self.stream = Some(connect(&self.plan).await?);
        }
        self.stream.as_mut().ok_or(HttpError::Closed)
    }

    async fn exchange(
        &mut self,
        body: &[u8],
        keep_body: bool,
        response: &mut Response,
    ) -> Result<(), HttpError> {
        let timeout = self.plan.timeout;
        let deadline = Instant::now() + timeout;
        self.inbox.clear();
        response.body.clear();
        self.connection().await?;
        let stream = self.stream.as_mut().ok_or(HttpError::Closed)?;
        stream
            .tcp()
            .set_write_timeout(Some(timeout))
            .map_err(std::io::Error::from)?;
        // The head stays in `self.head` whatever happens: a retry writes it again.
        let head = &self.head;
        let written = async {
            stream.write_all(head).await?;
            stream.write_all(body).await
        }
        .await;
        written.map_err(|error| timed_out(error, timeout))?;
        let head = loop {
            let head = self.read_head(deadline).await?;
            if !(100..200).contains(&head.status) {
                break head;
            }
            self.inbox.drain(..head.bytes);
        };
        self.inbox.drain(..head.bytes);
        response.status = head.status;
        let until_close = matches!(head.length, BodyLength::UntilClose);
        self.read_body(head.length, keep_body, &mut response.body, deadline)
            .await?;
        if head.close || until_close || !self.plan.keep_alive {
            self.drop_connection().await;
        }
        Ok(())
    }

    /// Reads more of the answer into the inbox; `false` at the end of the stream.
    async fn fill(&mut self, deadline: Instant) -> Result<bool, HttpError> {
        let timeout = self.plan.timeout;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HttpError::Timeout(timeout));
        }
        let stream = self.stream.as_mut().ok_or(HttpError::Closed)?;
        stream
            .tcp()
            .set_read_timeout(Some(left))
            .map_err(std::io::Error::from)?;
        let start = self.inbox.len();
        self.inbox.resize(start + READ_BYTES, 0);
        let read = stream.read(&mut self.inbox[start..]).await;
        let count = match read {
            Ok(count) => count,
            Err(error) => {
                self.inbox.truncate(start);
                return Err(timed_out(error, timeout));
            }
        };
        self.inbox.truncate(start + count);
        Ok(count > 0)
    }

    async fn read_head(&mut self, deadline: Instant) -> Result<Head, HttpError> {
        loop {
            if let Some(head) = parse_head(&self.inbox)? {
                return Ok(head);
            }
            if self.inbox.len() >= HTTP_RESPONSE_HEAD_BYTES_MAX {
                return Err(HttpError::TooLarge("head"));
            }
            if !self.fill(deadline).await? {
                return Err(HttpError::Closed);
            }
        }
    }

    async fn read_body(
        &mut self,
        length: BodyLength,
        keep: bool,
        body: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<(), HttpError> {
        let take = |data: &[u8], body: &mut Vec<u8>| {
            if !keep {
                return Ok(());
            }
            if body.len() + data.len() > HTTP_RESPONSE_BODY_BYTES_MAX {
                return Err(HttpError::TooLarge("body"));
            }
            body.extend_from_slice(data);
            Ok(())
        };
        match length {
            BodyLength::None => Ok(()),
            BodyLength::Length(mut left) => loop {
                let count = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(self.inbox.len());
                take(&self.inbox[..count], body)?;
                self.inbox.drain(..count);
                left -= count as u64;
                if left == 0 {
                    return Ok(());
                }
                if !self.fill(deadline).await? {
                    return Err(HttpError::Closed);
                }
            },
            BodyLength::UntilClose => loop {
                take(&self.inbox, body)?;
                self.inbox.clear();
                if !self.fill(deadline).await? {
                    return Ok(());
                }
            },
            BodyLength::Chunked => {
                let mut chunked = Chunked::new();
                loop {
                    match chunked.step(&self.inbox).map_err(HttpError::Malformed)? {
                        ChunkStep::Data {
                            start,
                            end,
                            consumed,
                        } => {
                            take(&self.inbox[start..end], body)?;
                            self.inbox.drain(..consumed);
                        }
                        ChunkStep::Framing { consumed } => {
                            self.inbox.drain(..consumed);
                        }
                        ChunkStep::Done { consumed } => {
                            self.inbox.drain(..consumed);
                            return Ok(());
                        }
                        ChunkStep::NeedMore => {
                            if !self.fill(deadline).await? {
                                return Err(HttpError::Closed);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A read or write that timed out is a [`HttpError::Timeout`].
fn timed_out(error: std::io::Error, timeout: Duration) -> HttpError {
    match error.kind() {
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
            HttpError::Timeout(timeout)
        }
        _ => HttpError::Io(error),
    }
}

/// Parses an answer's head from the front of `bytes`; `None` when it is not complete yet.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; RESPONSE_HEADERS_MAX];
    let mut parsed = httparse::Response::new(&mut headers);
    let bounded = &bytes[..bytes.len().min(HTTP_RESPONSE_HEAD_BYTES_MAX)];
    let size = match parsed.parse(bounded) {
        Ok(httparse::Status::Complete(size)) => size,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooLarge("head")),
        Err(_) => return Err(HttpError::Malformed("not an HTTP/1.x answer head")),
    };
    let status = parsed.code.unwrap_or(0);
    let mut close = parsed.version == Some(0);
    let mut length = None;
    let mut chunked = false;
    for header in parsed.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or(HttpError::Malformed("bad Content-Length"))?;
            if length.is_some_and(|known| known != value) {
                return Err(HttpError::Malformed("two different Content-Length"));
            }
            length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = header.value.rsplit(|byte| *byte == b',').next();
            chunked =
                last.is_some_and(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            if !chunked {
                return Err(HttpError::Malformed("a transfer coding other than chunked"));
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|byte| *byte == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    let length = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyLength::None
    } else if chunked {
        BodyLength::Chunked
    } else if let Some(length) = length {
        BodyLength::Length(length)
    } else {
        BodyLength::UntilClose
    };
    Ok(Some(Head {
        status,
        bytes: size,
        length,
        close,
    }))
}

/// Connects to `plan`'s server; with `https://`, also completes the TLS handshake, which
/// verifies the server's certificate.
///
/// # Errors
/// The address does not resolve, the connection or the handshake fails or takes too long.
pub async fn connect(plan: &ClientPlan) -> std::io::Result<Transport> {
    let address = plan.url.address();
    let target = address.to_socket_addrs()?.next().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "address resolves to nothing")
    })?;
    let stream = TcpStream::connect_timeout(target, plan.connect_timeout)
        .await
        .map_err(std::io::Error::from)?;
    stream.set_nodelay(true).map_err(std::io::Error::from)?;
    let Some(tls) = &plan.tls else {
        return Ok(Transport::Plain(stream));
    };
    let connection = rustls::ClientConnection::new(tls.config.clone(), tls.server_name.clone())
        .map_err(std::io::Error::other)?;
    let mut stream = TlsStream::new(stream, connection.into());
    stream.handshake(plan.connect_timeout).await?;
    Ok(Transport::Tls(Box::new(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_their_defaults() {
        let url = Url::parse("http://localhost:9200").expect("parses");
        assert_eq!(
            (url.https, url.host.as_str(), url.port, url.target.as_str()),
            (false, "localhost", 9200, "/")
        );
        assert_eq!(url.authority(), "localhost:9200");
        let url = Url::parse("https://[::1]/write?db=x").expect("parses");
        assert_eq!(
            (url.https, url.host.as_str(), url.port, url.target.as_str()),
            (true, "::1", 443, "/write?db=x")
        );
        assert_eq!(url.address(), "[::1]:443");
        assert_eq!(url.authority(), "[::1]");
        let url = Url::parse("http://h?q=1").expect("parses");
        assert_eq!(url.target, "/?q=1");
        for bad in [
            "localhost:9200",
            "ftp://h/",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://u:p@h/",
            "http://h/a b",
            "http://h/#x",
            "http://[::1/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn answer_heads_say_how_their_body_ends() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .expect("valid")
            .expect("complete");
        assert_eq!(head.status, 200);
        assert!(matches!(head.length, BodyLength::Length(5)));
        assert!(!head.close);
        let head = parse_head(
            b"HTTP/1.1 429 Too Many\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .expect("valid")
        .expect("complete");
        assert!(matches!(head.length, BodyLength::Chunked));
        assert!(head.close);
        let head = parse_head(b"HTTP/1.0 204 No Content\r\n\r\n")
            .expect("valid")
            .expect("complete");
        assert!(matches!(head.length, BodyLength::None));
        assert!(head.close, "HTTP/1.0 closes by default");
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Len")
            .expect("valid")
            .is_none());
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n")
                .is_err()
        );
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n").is_err());
    }

    #[test]
    fn methods_are_the_three_heka_accepts() {
        assert_eq!(Method::from_name("post"), Some(Method::Post));
        assert_eq!(Method::from_name("PUT"), Some(Method::Put));
        assert_eq!(Method::from_name("GET"), Some(Method::Get));
        assert_eq!(Method::from_name("DELETE"), None);
    }
}
