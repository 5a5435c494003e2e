//! The frame reader against the recorded fixtures of each mode (`tests/fixtures/fluent/`),
//! hand-built frames, and random and truncated input.

use super::frame::{read_frame, FrameBuffers, FrameCounts, FrameOption};
use super::msgpack::{self, Scan};
use crate::message::view::{FieldValue, StrHeader};
use crate::message::{ProtoView, UuidSource};

const MESSAGE: &[u8] = include_bytes!("../../../tests/fixtures/fluent/message.bin");
const FORWARD: &[u8] = include_bytes!("../../../tests/fixtures/fluent/forward.bin");
const PACKED: &[u8] = include_bytes!("../../../tests/fixtures/fluent/packed.bin");
const COMPRESSED: &[u8] = include_bytes!("../../../tests/fixtures/fluent/compressed.bin");

/// Reads one frame; returns its messages, option and counts.
fn read(frame: &[u8], max_message_size: usize) -> (Vec<Vec<u8>>, Option<Vec<u8>>, FrameCounts) {
    let mut buffers = FrameBuffers::new(max_message_size);
    let mut uuids = UuidSource::with_seed(1);
    let mut messages = Vec::new();
    let (option, counts) = read_frame(
        frame,
        b"10.0.0.1",
        &mut buffers,
        &mut uuids,
        &mut |message| messages.push(message.to_vec()),
    );
    let FrameOption { chunk, .. } = option;
    (messages, chunk.map(<[u8]>::to_vec), counts)
}

fn string(view: &ProtoView<'_>, name: &[u8]) -> Option<Vec<u8>> {
    match view.field(name, 0)?.value(0)? {
        FieldValue::String(text) => Some(text.to_vec()),
        _ => None,
    }
}

fn check_event(message: &[u8], number: usize, time_ns: i64) {
    let view = ProtoView::new(message);
    assert!(view.validate().is_ok());
    assert_eq!(view.timestamp(), Some(time_ns));
    assert_eq!(view.str_header(StrHeader::Type), Some(&b"fluent"[..]));
    assert_eq!(view.str_header(StrHeader::Logger), Some(&b"app.web"[..]));
    assert_eq!(view.str_header(StrHeader::Hostname), Some(&b"10.0.0.1"[..]));
    let payload = format!("event {number}");
    assert_eq!(
        view.str_header(StrHeader::Payload),
        Some(payload.as_bytes())
    );
    assert_eq!(string(&view, b"host").as_deref(), Some(&b"web-1"[..]));
    let value = |name: &[u8]| view.field(name, 0).and_then(|field| field.value(0));
    assert_eq!(
        value(b"status"),
        Some(FieldValue::Integer(200 + number as i64))
    );
    assert_eq!(value(b"ratio"), Some(FieldValue::Double(0.25)));
    assert_eq!(value(b"ok"), Some(FieldValue::Bool(true)));
    assert_eq!(value(b"raw"), Some(FieldValue::Bytes(&[0, 1])));
    assert_eq!(
        string(&view, b"http").as_deref(),
        Some(&br#"{"method":"GET","path":"/a\"b"}"#[..])
    );
    assert_eq!(string(&view, b"tags").as_deref(), Some(&br#"["x",1]"#[..]));
    assert!(
        view.field(b"message", 0).is_none(),
        "the payload key is not a field too"
    );
}

#[test]
fn message_mode_fixture() {
    let (messages, chunk, counts) = read(MESSAGE, 65536);
    assert_eq!(messages.len(), 1);
    assert_eq!(chunk, None);
    assert_eq!(counts.malformed + counts.oversize, 0);
    check_event(&messages[0], 0, 1_700_000_000_000_000_000);
}

#[test]
fn forward_packed_and_compressed_fixtures() {
    for (frame, expected_chunk) in [
        (FORWARD, &b"Zm9yd2FyZC1jaHVuaw=="[..]),
        (PACKED, b"cGFja2VkLWNodW5r"),
        (COMPRESSED, b"Y29tcHJlc3NlZC1jaHVuaw=="),
    ] {
        let (messages, chunk, counts) = read(frame, 65536);
        assert_eq!(chunk.as_deref(), Some(expected_chunk));
        assert_eq!(
            counts,
            FrameCounts {
                events: 3,
                ..FrameCounts::default()
            }
        );
        for (number, message) in messages.iter().enumerate() {
            let time = 1_700_000_000_500_000_000 + number as i64 * 100_000_000;
            check_event(message, number, time);
        }
    }
}

#[test]
fn each_fixture_is_one_whole_frame() {
    for frame in [MESSAGE, FORWARD, PACKED, COMPRESSED] {
        assert_eq!(Scan::new().resume(frame), Ok(frame.len()));
        for cut in 0..frame.len() {
            assert_eq!(
                Scan::new().resume(&frame[..cut]),
                Err(msgpack::Error::Incomplete)
            );
        }
    }
}

#[test]
fn log_is_the_payload_without_message_and_a_bad_event_does_not_stop_the_frame() {
    let mut packed = Vec::new();
    // A good event with `log`, a bad one (the record is a string), a good one.
    for record in [Some("first"), None, Some("third")] {
        msgpack::put_array(&mut packed, 2);
        msgpack::put_int(&mut packed, 1_700_000_000);
        match record {
            Some(text) => {
                msgpack::put_map(&mut packed, 2);
                msgpack::put_str(&mut packed, b"log");
                msgpack::put_str(&mut packed, text.as_bytes());
                msgpack::put_str(&mut packed, b"n");
                msgpack::put_map(&mut packed, 0);
            }
            None => msgpack::put_str(&mut packed, b"not a map"),
        }
    }
    let mut frame = Vec::new();
    msgpack::put_array(&mut frame, 2);
    msgpack::put_str(&mut frame, b"t");
    msgpack::put_bin(&mut frame, &packed);
    let (messages, _, counts) = read(&frame, 65536);
    assert_eq!((counts.events, counts.malformed), (2, 1));
    let payloads: Vec<_> = messages
        .iter()
        .map(|message| {
            ProtoView::new(message)
                .str_header(StrHeader::Payload)
                .map(<[u8]>::to_vec)
        })
        .collect();
    assert_eq!(payloads, [Some(b"first".to_vec()), Some(b"third".to_vec())]);
    assert_eq!(
        string(&ProtoView::new(&messages[0]), b"n").as_deref(),
        Some(&b"{}"[..])
    );
}

#[test]
fn an_event_past_max_message_size_is_counted_and_the_rest_kept() {
    let mut frame = Vec::new();
    msgpack::put_array(&mut frame, 2);
    msgpack::put_str(&mut frame, b"t");
    msgpack::put_array(&mut frame, 3);
    for size in [10, 5000, 10] {
        msgpack::put_array(&mut frame, 2);
        msgpack::put_int(&mut frame, 1);
        msgpack::put_map(&mut frame, 1);
        msgpack::put_str(&mut frame, b"message");
        msgpack::put_str(&mut frame, &vec![b'a'; size]);
    }
    let (messages, _, counts) = read(&frame, 1024);
    assert_eq!((counts.events, counts.oversize, messages.len()), (2, 1, 2));
    assert!(messages.iter().all(|message| message.len() <= 1024));
}

#[test]
fn a_zip_bomb_is_refused_and_counted() {
    use std::io::Write as _;
    // 100 MiB of one entry repeated inflates past the bound from a few hundred KiB.
    let mut entry = Vec::new();
    msgpack::put_array(&mut entry, 2);
    msgpack::put_int(&mut entry, 1);
    msgpack::put_map(&mut entry, 1);
    msgpack::put_str(&mut entry, b"message");
    msgpack::put_str(&mut entry, &[b'z'; 1000]);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let copies = (100 << 20) / entry.len();
    for _ in 0..copies {
        encoder.write_all(&entry).expect("compress");
    }
    let bomb = encoder.finish().expect("compress");
    assert!(bomb.len() < 1 << 20);
    let mut frame = Vec::new();
    msgpack::put_array(&mut frame, 3);
    msgpack::put_str(&mut frame, b"t");
    msgpack::put_bin(&mut frame, &bomb);
    msgpack::put_map(&mut frame, 1);
    msgpack::put_str(&mut frame, b"compressed");
    msgpack::put_str(&mut frame, b"gzip");
    let (_, _, counts) = read(&frame, 65536);
    assert_eq!(counts.oversize, 1);
    let bound = crate::limits::FLUENT_INFLATED_BYTES_MAX as u64;
    assert!(
        counts.events < bound / entry.len() as u64 + 1,
        "stopped at the bound"
    );
    assert!(
        counts.events > copies as u64 / 4,
        "entries before the bound are kept"
    );
}

proptest::proptest! {
    /// Random bytes, and every truncation and single-byte corruption of each fixture: no
    /// panic, and no message past `max_message_size`.
    #[test]
    fn random_and_damaged_frames_never_panic(
        bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
        which in 0usize..4,
        cut in 0usize..400,
        flip_at in 0usize..400,
        flip in proptest::num::u8::ANY,
    ) {
        let _ = read(&bytes, 1024);
        let fixture = [MESSAGE, FORWARD, PACKED, COMPRESSED][which];
        let _ = read(&fixture[..cut.min(fixture.len())], 1024);
        let mut damaged = fixture.to_vec();
        let at = flip_at % damaged.len();
        damaged[at] ^= flip;
        let (messages, _, _) = read(&damaged, 1024);
        proptest::prop_assert!(messages.iter().all(|message| message.len() <= 1024));
    }
}

proptest::proptest! {
    /// Records whose values add up to around `max_message_size`: a message is either within
    /// the bound or refused as oversize, never past it.
    #[test]
    fn messages_near_the_bound_stay_within_it(
        sizes in proptest::collection::vec(0usize..700, 1..6),
        nested in 0usize..400,
    ) {
        let mut frame = Vec::new();
        msgpack::put_array(&mut frame, 3);
        msgpack::put_str(&mut frame, b"tag");
        msgpack::put_int(&mut frame, 1);
        msgpack::put_map(&mut frame, sizes.len() as u32 + 2);
        msgpack::put_str(&mut frame, b"message");
        msgpack::put_str(&mut frame, &vec![b'p'; nested]);
        msgpack::put_str(&mut frame, b"nested");
        msgpack::put_array(&mut frame, 1);
        msgpack::put_str(&mut frame, &vec![b'"'; nested]);
        for (index, size) in sizes.iter().enumerate() {
            msgpack::put_str(&mut frame, format!("k{index}").as_bytes());
            msgpack::put_bin(&mut frame, &vec![7u8; *size]);
        }
        let (messages, _, counts) = read(&frame, 1024);
        proptest::prop_assert_eq!(messages.len() as u64 + counts.oversize, 1);
        proptest::prop_assert!(messages.iter().all(|message| message.len() <= 1024));
    }
}
