//! Every splitter over a stream that arrives in arbitrary read sizes, through the bounded
//! `StreamBuffer` the inputs use: no panic, every record within `max_message_size`, and the
//! buffer always has room for the next read (`spare_mut` asserts it).
#![no_main]

use std::sync::Arc;

use gyges::limits::READ_BUFFER_BYTES_MIN;
use gyges::message::framing::Verifier;
use gyges::splitter::{
    HekaFrameSplitter, NullSplitter, Splitter, StreamBuffer, SyslogSplitter, TokenSplitter,
};
use libfuzzer_sys::fuzz_target;

fn splitter(choice: u8, message_bytes_max: usize) -> Splitter {
    match choice % 6 {
        0 => Splitter::Token(TokenSplitter::lines(message_bytes_max).expect("valid")),
        1 => {
            Splitter::Token(TokenSplitter::new(b'\x1e', 3, true, message_bytes_max).expect("valid"))
        }
        2 | 3 => {
            let verifier =
                Verifier::new([("fuzzer_1", b"key".as_slice())]).expect("valid key name");
            Splitter::HekaFrame(
                HekaFrameSplitter::new(Arc::new(verifier), choice % 6 == 3, message_bytes_max)
                    .expect("valid"),
            )
        }
        4 => Splitter::Syslog(SyslogSplitter::new(message_bytes_max).expect("valid")),
        _ => Splitter::Null(NullSplitter::new(message_bytes_max).expect("valid")),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let Some((&size, rest)) = rest.split_first() else {
        return;
    };
    // Small limits reach the oversize paths; 1 is the smallest a config accepts.
    let message_bytes_max = usize::from(size) * 4 + 1;
    let (reads, stream) = gyges_fuzz::chunks_and_stream(rest);
    let mut splitter = splitter(choice, message_bytes_max);
    let mut buffer = StreamBuffer::new(message_bytes_max, READ_BUFFER_BYTES_MIN).expect("valid");
    let mut fed = 0;
    let mut read = 0;
    let mut record_bytes = 0u64;
    loop {
        while let Some(record) = buffer.next_record(&mut splitter) {
            assert!(record.bytes.len() <= message_bytes_max);
            record_bytes += record.bytes.len() as u64;
        }
        if fed == stream.len() {
            break;
        }
        let spare = buffer.spare_mut();
        let size = reads[read % reads.len()]
            .min(spare.len())
            .min(stream.len() - fed);
        read += 1;
        spare[..size].copy_from_slice(&stream[fed..fed + size]);
        buffer.commit(size);
        fed += size;
    }
    if let Some(record) = buffer.finish(&mut splitter) {
        assert!(record.bytes.len() <= message_bytes_max);
        record_bytes += record.bytes.len() as u64;
    }
    let stats = splitter.take_stats();
    assert_eq!(
        stats.record_bytes, record_bytes,
        "record bytes are counted once each"
    );
    assert!(
        buffer.pending().is_empty(),
        "finish leaves the buffer empty"
    );
    let _ = splitter.take_requests();
});
