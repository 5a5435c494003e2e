//! Tests of the HTTP head parser: bounds on targets and heads, the fields a POST carries,
//! framing and connection rules, credentials and answers.

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
    let expect = complete("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
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
