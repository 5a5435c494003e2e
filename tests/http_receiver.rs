//! A real HTTP/1.1 server on loopback for the HttpOutput and ElasticSearchOutput tests: it
//! reads every request by the protocol (request line, headers, a `Content-Length` body,
//! gzip inflated), checks what every request must carry, records the requests it answered
//! 2xx, and answers as the test's script says: any status and body, Elasticsearch bulk
//! answers item by item, or no answer at all (a server that hangs). Optionally over TLS.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// Header names lower-cased, values as sent.
    pub headers: BTreeMap<String, String>,
    /// The body, inflated when it was sent gzip-encoded.
    pub body: Vec<u8>,
    /// The body's bytes on the wire.
    pub wire_bytes: usize,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body's lines (without their newlines).
    pub fn lines(&self) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = self.body.split(|byte| *byte == b'\n').collect();
        assert_eq!(lines.pop(), Some(&b""[..]), "the body ends with a newline");
        lines
    }
}

/// How to answer one request.
pub enum Answer {
    /// A status with a body (`Content-Length` framed, or chunked with `true`).
    Status(u16, String, bool),
    /// Read the request, never answer (the connection stays open until the server stops).
    Hang,
}

/// The script: the request's number (from 0, over the server's life) and the request.
pub type Script = dyn Fn(usize, &Request) -> Answer + Send + Sync;

/// A running server.
pub struct Receiver {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The requests answered 2xx, in the order they were answered.
    pub accepted: Arc<Mutex<Vec<Request>>>,
    /// Requests read, answered or not.
    pub requests: Arc<AtomicUsize>,
    /// Connections accepted.
    pub connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// TLS for the server: its certificate chain and key, PEM files.
pub struct ServerTls {
    /// The certificate chain.
    pub cert: std::path::PathBuf,
    /// The private key.
    pub key: std::path::PathBuf,
}

impl Receiver {
    /// Starts a server on `port` (0: any free port) answering with `script`.
    pub fn start(
        port: u16,
        tls: Option<ServerTls>,
        script: impl Fn(usize, &Request) -> Answer + Send + Sync + 'static,
    ) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the HTTP receiver");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let tls = tls.map(|tls| Arc::new(server_config(&tls)));
        let script: Arc<Script> = Arc::new(script);
        let accepted: Arc<Mutex<Vec<Request>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let shared = (
            accepted.clone(),
            requests.clone(),
            connections.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            let (accepted, requests, connections, stop) = shared;
            let mut workers = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                connections.fetch_add(1, Ordering::AcqRel);
                let context = Connection {
                    script: script.clone(),
                    accepted: accepted.clone(),
                    requests: requests.clone(),
                    stop: stop.clone(),
                };
                let tls = tls.clone();
                workers.push(std::thread::spawn(move || {
                    stream.set_nonblocking(false).expect("blocking");
                    stream
                        .set_read_timeout(Some(Duration::from_millis(50)))
                        .expect("timeout");
                    match tls {
                        None => context.serve(stream),
                        Some(config) => {
                            let connection =
                                rustls::ServerConnection::new(config).expect("TLS connection");
                            context.serve(rustls::StreamOwned::new(connection, stream));
                        }
                    }
                }));
            }
            for worker in workers {
                let _ = worker.join();
            }
        });
        Receiver {
            port,
            accepted,
            requests,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    /// The requests answered 2xx so far.
    pub fn accepted(&self) -> Vec<Request> {
        self.accepted.lock().unwrap().clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.halt();
    }
}

struct Connection {
    script: Arc<Script>,
    accepted: Arc<Mutex<Vec<Request>>>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Connection {
    fn serve(&self, mut stream: impl Read + Write) {
        let mut inbox = Vec::new();
        loop {
            let Some(request) = self.read_request(&mut stream, &mut inbox) else {
                return;
            };
            let number = self.requests.fetch_add(1, Ordering::AcqRel);
            match (self.script)(number, &request) {
                Answer::Hang => {
                    while !self.stop.load(Ordering::Acquire) {
                        let mut scratch = [0u8; 4096];
                        match stream.read(&mut scratch) {
                            Ok(0) => return,
                            Ok(_) => {}
                            Err(error) if is_timeout(&error) => {}
                            Err(_) => return,
                        }
                    }
                    return;
                }
                Answer::Status(status, body, chunked) => {
                    if (200..300).contains(&status) {
                        self.accepted.lock().unwrap().push(request);
                    }
                    let mut answer =
                        format!("HTTP/1.1 {status} Whatever\r\nContent-Type: application/json\r\n");
                    if chunked {
                        answer.push_str("Transfer-Encoding: chunked\r\n\r\n");
                        for piece in body.as_bytes().chunks(7) {
                            answer.push_str(&format!("{:x}\r\n", piece.len()));
                            answer.push_str(std::str::from_utf8(piece).unwrap_or("?"));
                            answer.push_str("\r\n");
                        }
                        answer.push_str("0\r\n\r\n");
                    } else {
                        answer.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
                    }
                    if stream.write_all(answer.as_bytes()).is_err() || stream.flush().is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Reads one request; `None` when the client closed or the server stops. A request that
    /// breaks the protocol fails the test (the sending output is gyges).
    fn read_request(&self, stream: &mut impl Read, inbox: &mut Vec<u8>) -> Option<Request> {
        let end = loop {
            if let Some(at) = find(inbox, b"\r\n\r\n") {
                break at;
            }
            assert!(inbox.len() < 64 * 1024, "request head too long");
            if !self.fill(stream, inbox)? {
                assert!(inbox.is_empty(), "closed in the middle of a request head");
                return None;
            }
        };
        let head = String::from_utf8(inbox[..end].to_vec()).expect("an ASCII head");
        inbox.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().expect("a request line");
        let mut parts = request_line.split(' ');
        let (method, target, version) = (
            parts.next().expect("method").to_string(),
            parts.next().expect("target").to_string(),
            parts.next().expect("version"),
        );
        assert_eq!(version, "HTTP/1.1", "request line `{request_line}`");
        assert!(parts.next().is_none(), "request line `{request_line}`");
        let mut headers = BTreeMap::new();
        for line in lines {
            let (name, value) = line.split_once(':').expect("a header line");
            assert!(!name.contains(' '), "header name `{name}`");
            let previous = headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
            assert!(previous.is_none(), "header {name} sent twice");
        }
        assert!(
            headers.contains_key("host"),
            "every HTTP/1.1 request has Host"
        );
        assert!(
            !headers.contains_key("transfer-encoding"),
            "gyges sends Content-Length bodies"
        );
        let length: usize = headers
            .get("content-length")
            .expect("Content-Length")
            .parse()
            .expect("a Content-Length number");
        while inbox.len() < length {
            if !self.fill(stream, inbox)? {
                panic!("closed in the middle of a request body");
            }
        }
        let wire: Vec<u8> = inbox.drain(..length).collect();
        let body = match headers.get("content-encoding").map(String::as_str) {
            None => wire.clone(),
            Some("gzip") => {
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&wire[..])
                    .read_to_end(&mut plain)
                    .expect("a gzip body");
                plain
            }
            Some(other) => panic!("content encoding {other}"),
        };
        Some(Request {
            method,
            target,
            headers,
            body,
            wire_bytes: length,
        })
    }

    /// Reads more; `Some(false)` at the end of the stream, `None` when the server stops.
    fn fill(&self, stream: &mut impl Read, inbox: &mut Vec<u8>) -> Option<bool> {
        let mut buffer = [0u8; 64 * 1024];
        loop {
            if self.stop.load(Ordering::Acquire) {
                return None;
            }
            match stream.read(&mut buffer) {
                Ok(0) => return Some(false),
                Ok(count) => {
                    inbox.extend_from_slice(&buffer[..count]);
                    return Some(true);
                }
                Err(error) if is_timeout(&error) => {}
                Err(_) => return Some(false),
            }
        }
    }
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn server_config(tls: &ServerTls) -> rustls::ServerConfig {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .expect("certificate file")
        .map(|cert| cert.expect("a certificate"))
        .collect();
    let key = PrivateKeyDer::from_pem_file(&tls.key).expect("key file");
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config")
}

/// An Elasticsearch bulk answer to `request`: `status` says each item's status from its
/// number (from 0) and its action and document lines; an item that is not 2xx gets an error
/// object as Elasticsearch writes them. Checks that the body is action/document line pairs.
pub fn bulk_answer(request: &Request, status: impl Fn(usize, &[u8], &[u8]) -> u16) -> String {
    let lines = request.lines();
    assert_eq!(lines.len() % 2, 0, "bulk lines come in pairs");
    let mut errors = false;
    let mut items = Vec::new();
    for (number, pair) in lines.chunks(2).enumerate() {
        let action: serde_json::Value = serde_json::from_slice(pair[0]).expect("action JSON");
        let _: serde_json::Value = serde_json::from_slice(pair[1]).expect("document JSON");
        assert!(action.get("index").is_some(), "an index action");
        let code = status(number, pair[0], pair[1]);
        let item = if (200..300).contains(&code) {
            format!(
                r#"{{"index":{{"_index":"x","_id":"{number}","status":{code},"result":"created"}}}}"#
            )
        } else {
            errors = true;
            let kind = match code {
                429 => "es_rejected_execution_exception",
                400 => "mapper_parsing_exception",
                _ => "unavailable_shards_exception",
            };
            format!(
                r#"{{"index":{{"_index":"x","status":{code},"error":{{"type":"{kind}","reason":"item {number}"}}}}}}"#
            )
        };
        items.push(item);
    }
    format!(
        r#"{{"took":1,"errors":{errors},"items":[{}]}}"#,
        items.join(",")
    )
}
