//! SyslogInput's parsers: framing detection, octet counting (RFC 6587), the RFC 5424 and
//! RFC 3164 line parser and the message it encodes. Every line makes a valid message, parsed
//! or not (a malformed line is kept as its payload, counted).
#![no_main]

use gyges::decoder::syslog::framing::{detect, next_frame, Frame};
use gyges::decoder::syslog::{encode, parse, SyslogContext};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, line)) = data.split_first() else {
        return;
    };
    // 2026-12-01T12:00:00Z, in a zone chosen by the input: year-less dates are resolved
    // against it, and a zone near the edge of a year moves the year.
    let offset_seconds = (i32::from(choice) - 128) * 450;
    let context = SyslogContext::new(1_796_126_400_000_000_000, offset_seconds);
    let parsed = parse(line, &context);
    let mut out = Vec::new();
    let encoded = encode(line, &context, &[9; 16], &mut out);
    assert_eq!(encoded.error.is_some(), parsed.is_err());
    gyges_fuzz::check_message(&out);
    let _ = detect(line);
    let max_message_size = usize::from(choice) * 16 + 1;
    let mut at = 0;
    while let Frame::Complete(range) = next_frame(&line[at..], max_message_size) {
        assert!(range.len() <= max_message_size);
        assert!(range.end > 0, "a frame moves the stream on");
        at += range.end;
    }
});
