//! `gyges inject`'s JSON reader: any text, no panic; a message it accepts encodes to a
//! record that validates, and reads back the same through `gyges cat`'s writer.
#![no_main]

use gyges::message::json::{read_json, write_json};
use gyges::message::{MessageView, ProtoView};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(message) = read_json(text) else {
        return;
    };
    let bytes = message.encode_to_vec();
    gyges_fuzz::check_message(&bytes);
    let mut json = Vec::new();
    write_json(&MessageView::Proto(ProtoView::new(&bytes)), &mut json);
    let again = read_json(std::str::from_utf8(&json).expect("UTF-8"))
        .expect("what gyges cat writes, gyges inject reads");
    assert_eq!(again.encode_to_vec(), bytes, "JSON round trip");
});
