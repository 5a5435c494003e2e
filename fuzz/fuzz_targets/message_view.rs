//! The lazy message view over arbitrary protobuf bytes: validation, every accessor, the JSON
//! writer (`gyges cat`) and the matcher over whatever validates.
#![no_main]

use std::sync::OnceLock;

use gyges::decoder::protobuf;
use gyges::matcher::{compile, Dialect, Program};
use gyges::message::json::{read_json, write_json};
use gyges::message::{MessageView, ProtoView};
use libfuzzer_sys::fuzz_target;

fn programs() -> &'static [Program] {
    static PROGRAMS: OnceLock<Vec<Program>> = OnceLock::new();
    PROGRAMS.get_or_init(|| {
        [
            "Type == 'a' || Fields[status] >= 200 || Fields[tags][1] == 'b'",
            "Payload =~ /x+y/ && Fields[status] != NIL && Severity < 7",
            "Fields[ratio][0][0] > 0.5 || Fields[ok] == TRUE || Fields[none] == NIL",
            "Timestamp > 0 && Pid == 99 && EnvVersion == '' && Logger =~ /^t/",
        ]
        .iter()
        .map(|text| compile(text, Dialect::Heka).expect("valid expression"))
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let view = ProtoView::new(data);
    let valid = view.validate().is_ok();
    assert_eq!(
        protobuf::decode(data).is_ok(),
        valid,
        "the decoder checks what validate checks"
    );
    let message = MessageView::Proto(view);
    gyges_fuzz::walk(&message);
    for program in programs() {
        let _ = program.matches(&message);
    }
    if valid {
        let mut json = Vec::new();
        write_json(&message, &mut json);
        let text = std::str::from_utf8(&json).expect("write_json writes UTF-8");
        if let Err(error) = read_json(text) {
            panic!("`gyges cat` output that `gyges inject` refuses: {error}\n{text}");
        }
    }
});
