//! The matcher's compiler, both dialects, from arbitrary text (a config's `message_matcher`),
//! and every program it accepts run over a message with fields and over a line: no panic, and
//! a constant program gives its constant.
#![no_main]

use std::sync::OnceLock;

use gyges::matcher::{compile, Dialect};
use gyges::message::proto::{Field, Message, ValueType};
use gyges::message::{LineMeta, LineView, MessageView, ProtoView};
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fn sample() -> &'static [u8] {
    static SAMPLE: OnceLock<Vec<u8>> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        Message {
            uuid: vec![7; 16],
            timestamp: 1_428_773_426_113_040_228,
            r#type: Some("nginx.access".into()),
            logger: Some("tail".into()),
            severity: Some(6),
            payload: Some("GET / 200".into()),
            env_version: None,
            pid: Some(99),
            hostname: Some("web1".into()),
            fields: vec![
                Field {
                    name: "status".into(),
                    value_type: Some(ValueType::Integer as i32),
                    value_integer: vec![200, 404],
                    ..Field::default()
                },
                Field {
                    name: "tags".into(),
                    value_string: vec!["a".into(), "b".into()],
                    ..Field::default()
                },
                Field {
                    name: "ratio".into(),
                    value_type: Some(ValueType::Double as i32),
                    value_double: vec![0.5],
                    ..Field::default()
                },
                Field {
                    name: "ok".into(),
                    value_type: Some(ValueType::Bool as i32),
                    value_bool: vec![true],
                    ..Field::default()
                },
                Field {
                    name: "blob".into(),
                    value_type: Some(ValueType::Bytes as i32),
                    value_bytes: vec![vec![0, 1, 2]],
                    ..Field::default()
                },
            ],
        }
        .encode_to_vec()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, text)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let dialect = if choice & 1 == 0 {
        Dialect::Heka
    } else {
        Dialect::Lsb
    };
    let Ok(program) = compile(text, dialect) else {
        return;
    };
    let meta = LineMeta {
        type_: b"tcp_in".to_vec().into(),
        logger: b"tcp_in".to_vec().into(),
        hostname: b"h1".to_vec().into(),
    };
    let line = LineView {
        payload: b"GET / 200",
        uuid: [1; 16],
        timestamp: 1,
        meta: &meta,
    };
    for message in [
        MessageView::Proto(ProtoView::new(sample())),
        MessageView::Line(line),
    ] {
        let verdict = program.matches(&message);
        if let Some(constant) = program.is_constant() {
            assert_eq!(verdict, constant, "a constant program gave another verdict");
        }
    }
});
