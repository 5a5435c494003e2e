//! Heka stream framing: the header parser, HMAC authentication and the ack control frames.
//! A header that parses must describe a frame the writer could have written, and a frame
//! written around the input must parse back to the same lengths.
#![no_main]

use gyges::message::ack;
use gyges::message::framing::{
    parse_header, write_frame, Authentication, HashFunction, Signer, Verifier,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verifier = Verifier::new([("fuzzer_1", b"key".as_slice())]).expect("valid key name");
    if let Ok(Some(header)) = parse_header(data) {
        assert!(header.message_start() >= 3);
        assert!(header.frame_bytes() >= header.message_start());
        let message = data
            .get(header.message_start()..header.frame_bytes())
            .unwrap_or(&[]);
        match verifier.authenticate(&header, message) {
            Authentication::Verified(id) => {
                assert_eq!(verifier.signer_name(id), Some(b"fuzzer".as_slice()));
            }
            Authentication::Unsigned | Authentication::Rejected(_) => {}
        }
    }
    match ack::parse(data) {
        ack::Parsed::Control { .. } | ack::Parsed::Incomplete | ack::Parsed::Not => {}
    }
    // The writer's side: a frame around the input parses back, and a signed one verifies.
    let signer = Signer::new("fuzzer", 1, HashFunction::Sha1, b"key").expect("valid signer");
    for signer in [None, Some(&signer)] {
        let mut out = Vec::new();
        if write_frame(&mut out, data, signer).is_err() {
            continue;
        }
        let header = parse_header(&out)
            .expect("a written frame parses")
            .expect("a written frame is whole");
        assert_eq!(header.frame_bytes(), out.len());
        assert_eq!(&out[header.message_start()..], data);
        let verdict = verifier.authenticate(&header, data);
        match signer {
            Some(_) => assert!(
                matches!(verdict, Authentication::Verified(_)),
                "{verdict:?}"
            ),
            None => assert_eq!(verdict, Authentication::Unsigned),
        }
    }
});
