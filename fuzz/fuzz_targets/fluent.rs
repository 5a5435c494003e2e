//! FluentForwardInput's readers: MessagePack values, the resumable object scan that finds a
//! frame's end as bytes arrive, the Forward frame reader (every mode, gzip included) and the
//! PING of the handshake. Every message it routes is valid and within `max_message_size`.
#![no_main]

use gyges::input::fluent::frame::{frame_name, read_frame, FrameBuffers};
use gyges::input::fluent::handshake::answer_ping;
use gyges::input::fluent::msgpack::{Error, Reader, Scan};
use gyges::message::UuidSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let (reads, stream) = gyges_fuzz::chunks_and_stream(rest);
    // The scan, fed as the bytes arrive, agrees with a reader given them all at once.
    let whole = Reader::new(stream).clone().object().map(<[u8]>::len);
    let mut scan = Scan::new();
    let mut fed = 0;
    let mut read = 0;
    let scanned = loop {
        fed = (fed + reads[read % reads.len()]).min(stream.len());
        read += 1;
        match scan.resume(&stream[..fed]) {
            Err(Error::Incomplete) if fed < stream.len() => {}
            other => break other,
        }
    };
    assert_eq!(scanned, whole, "the scan and the reader disagree");
    let Ok(length) = scanned else {
        return;
    };
    let frame = &stream[..length];
    let _ = frame_name(frame);
    let max_message_size = usize::from(size) * 64 + 64;
    let mut buffers = FrameBuffers::new(max_message_size);
    let mut uuids = UuidSource::with_seed(1);
    let mut routed = 0u64;
    let (_, counts) = read_frame(frame, b"h1", &mut buffers, &mut uuids, &mut |message| {
        assert!(
            message.len() <= max_message_size,
            "a message over max_message_size"
        );
        gyges_fuzz::check_message(message);
        routed += 1;
    });
    assert_eq!(counts.events, routed);
    let mut out = Vec::new();
    let _ = answer_ping(frame, (&[3; 16], b"secret", b"h1"), &mut out);
});
