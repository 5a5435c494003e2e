//! HttpListenInput's request parser: the head (with Basic auth and copied headers), the
//! fields it writes, the operator endpoint's target reader, and the chunked body decoder.
#![no_main]

use std::sync::OnceLock;

use gyges::input::http::parse::{
    parse_head, parse_target, Auth, ChunkStep, Chunked, Framing, Settings,
};
use gyges::message::wire;
use libfuzzer_sys::fuzz_target;

fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings {
        auth: Auth::Basic {
            username: b"user".to_vec(),
            password: b"pass".to_vec(),
        },
        request_headers: vec!["X-Request-Id".into(), "User-Agent".into()],
        response_headers: b"X-Served-By: gyges\r\n".to_vec(),
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_target(data);
    let mut fields = Vec::new();
    let mut scratch = Vec::new();
    let head = match parse_head(data, settings(), b"10.0.0.1", (&mut fields, &mut scratch)) {
        Ok(Some(head)) => head,
        Ok(None) | Err(_) => return,
    };
    assert!(head.consumed <= data.len());
    // The fields are message fields: a message made of them validates.
    let mut message = Vec::new();
    wire::put_bytes(&mut message, 1, &[5; 16]);
    wire::put_int(&mut message, 2, 1);
    message.extend_from_slice(&fields);
    gyges_fuzz::check_message(&message);
    if head.framing != Framing::Chunked {
        return;
    }
    let mut chunked = Chunked::new();
    let mut window = &data[head.consumed..];
    loop {
        match chunked.step(window) {
            Ok(ChunkStep::Data {
                start,
                end,
                consumed,
            }) => {
                assert!(start <= end && end <= consumed && consumed <= window.len());
                assert!(consumed > 0, "a step moves on");
                window = &window[consumed..];
            }
            Ok(ChunkStep::Framing { consumed }) => {
                assert!(consumed > 0 && consumed <= window.len(), "a step moves on");
                window = &window[consumed..];
            }
            Ok(ChunkStep::Done { consumed }) => {
                assert!(consumed <= window.len());
                break;
            }
            Ok(ChunkStep::NeedMore) | Err(_) => break,
        }
    }
});
