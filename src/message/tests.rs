use proptest::prelude::*;
use prost::Message as _;

use super::json::{read_json, write_json};
use super::proto::{Field, Message, ValueType};
use super::view::DecodeError;
use super::*;

pub(crate) fn sample_message() -> Message {
    Message {
        uuid: view::parse_uuid("0f8fad5b-d9cb-469f-a165-70867728950e")
            .unwrap()
            .to_vec(),
        timestamp: 1_428_773_426_113_040_228,
        r#type: Some("TEST".into()),
        logger: Some("GoSpec".into()),
        severity: Some(6),
        payload: Some("Test Payload".into()),
        env_version: Some("0.8".into()),
        pid: Some(32157),
        hostname: Some("h1".into()),
        fields: vec![
            Field {
                name: "foo".into(),
                value_type: Some(ValueType::String as i32),
                representation: Some("".into()),
                value_string: vec!["bar".into(), "alternate".into()],
                ..Field::default()
            },
            Field {
                name: "number".into(),
                value_type: Some(ValueType::Integer as i32),
                value_integer: vec![64, -3],
                ..Field::default()
            },
            Field {
                name: "double".into(),
                value_type: Some(ValueType::Double as i32),
                value_double: vec![0.5],
                ..Field::default()
            },
            Field {
                name: "bool".into(),
                value_type: Some(ValueType::Bool as i32),
                value_bool: vec![true, false],
                ..Field::default()
            },
            Field {
                name: "bytes".into(),
                value_type: Some(ValueType::Bytes as i32),
                value_bytes: vec![b"data".to_vec()],
                ..Field::default()
            },
            Field {
                name: "foo".into(),
                value_string: vec!["second foo".into()],
                ..Field::default()
            },
        ],
    }
}

#[test]
fn view_reads_every_header_and_field() {
    let bytes = sample_message().encode_to_vec();
    let view = ProtoView::new(&bytes);
    assert_eq!(view.validate(), Ok(()));
    assert_eq!(view.timestamp(), Some(1_428_773_426_113_040_228));
    assert_eq!(view.str_header(StrHeader::Type), Some(&b"TEST"[..]));
    assert_eq!(
        view.str_header(StrHeader::Payload),
        Some(&b"Test Payload"[..])
    );
    assert_eq!(view.int_header(IntHeader::Severity), Some(6));
    assert_eq!(view.int_header(IntHeader::Pid), Some(32157));
    let uuid: [u8; 16] = view.uuid().unwrap().try_into().unwrap();
    assert_eq!(
        &view::format_uuid(&uuid),
        b"0f8fad5b-d9cb-469f-a165-70867728950e"
    );
    assert_eq!(
        view.field(b"foo", 0).unwrap().value(1),
        Some(FieldValue::String(b"alternate"))
    );
    assert_eq!(
        view.field(b"foo", 1).unwrap().value(0),
        Some(FieldValue::String(b"second foo"))
    );
    assert!(view.field(b"foo", 2).is_none());
    assert_eq!(
        view.field(b"number", 0).unwrap().value(1),
        Some(FieldValue::Integer(-3))
    );
    assert_eq!(
        view.field(b"double", 0).unwrap().value(0),
        Some(FieldValue::Double(0.5))
    );
    assert_eq!(
        view.field(b"bool", 0).unwrap().value(1),
        Some(FieldValue::Bool(false))
    );
    assert_eq!(
        view.field(b"bytes", 0).unwrap().value(0),
        Some(FieldValue::Bytes(b"data"))
    );
    assert!(view.field(b"bool", 0).unwrap().value(2).is_none());
    assert!(view.field(b"missing", 0).is_none());
}

#[test]
fn unpacked_numeric_values_are_read_too() {
    // value_type INTEGER, then two unpacked varints 7 and 9 under tag 6.
    let mut field = Vec::new();
    wire::put_bytes(&mut field, 1, b"n");
    wire::put_int(&mut field, 2, 2);
    wire::put_int(&mut field, 6, 7);
    wire::put_int(&mut field, 6, 9);
    let mut bytes = Vec::new();
    wire::put_bytes(&mut bytes, 1, &[1; 16]);
    wire::put_int(&mut bytes, 2, 5);
    wire::put_bytes(&mut bytes, 10, &field);
    let view = ProtoView::new(&bytes);
    let values: Vec<_> = view.field(b"n", 0).unwrap().values().collect();
    assert_eq!(values, vec![FieldValue::Integer(7), FieldValue::Integer(9)]);
}

#[test]
fn many_fields_beyond_the_index_are_found() {
    let mut message = sample_message();
    message.fields = (0..60)
        .map(|index| Field {
            name: format!("f{index}"),
            value_integer: vec![index],
            value_type: Some(2),
            ..Field::default()
        })
        .collect();
    let bytes = message.encode_to_vec();
    let view = ProtoView::new(&bytes);
    assert_eq!(
        view.field(b"f59", 0).unwrap().value(0),
        Some(FieldValue::Integer(59))
    );
    assert_eq!(view.fields().count(), 60);
}

#[test]
fn invalid_records_fail_validation() {
    let mut no_uuid = sample_message();
    no_uuid.uuid = vec![1, 2, 3];
    assert_eq!(
        ProtoView::new(&no_uuid.encode_to_vec()).validate(),
        Err(DecodeError::BadUuid)
    );
    let mut bytes = Vec::new();
    wire::put_bytes(&mut bytes, 1, &[1; 16]);
    assert_eq!(
        ProtoView::new(&bytes).validate(),
        Err(DecodeError::MissingTimestamp)
    );
    assert_eq!(
        ProtoView::new(b"\x0a\xff").validate(),
        Err(DecodeError::Malformed)
    );
    // Type (3) sent as a varint.
    assert_eq!(
        ProtoView::new(b"\x18\x01").validate(),
        Err(DecodeError::WrongWireType)
    );
}

#[test]
fn line_encoding_decodes_with_prost() {
    let meta = LineMeta {
        type_: b"lines".as_slice().into(),
        logger: b"lines".as_slice().into(),
        hostname: b"127.0.0.1:9".as_slice().into(),
    };
    let line = LineView {
        payload: b"hello",
        uuid: UuidSource::with_seed(1).next_uuid(),
        timestamp: 42,
        meta: &meta,
    };
    let mut out = Vec::new();
    encode_line(&line, &mut out);
    assert_eq!(out.len(), encoded_line_len(&line));
    let message = Message::decode(out.as_slice()).unwrap();
    assert_eq!(message.payload.as_deref(), Some("hello"));
    assert_eq!(message.hostname.as_deref(), Some("127.0.0.1:9"));
    assert_eq!(message.uuid[6] >> 4, 4, "version 4");
    assert_eq!(message.timestamp, 42);
}

#[test]
fn json_round_trips_through_protobuf() {
    let bytes = sample_message().encode_to_vec();
    let mut json = Vec::new();
    write_json(&MessageView::Proto(ProtoView::new(&bytes)), &mut json);
    let text = String::from_utf8(json).unwrap();
    assert!(text.starts_with(r#"{"uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","timestamp":1428773426113040228,"type":"TEST""#), "{text}");
    assert!(
        text.contains(r#"{"name":"bytes","value_type":"bytes","value":["ZGF0YQ=="]}"#),
        "{text}"
    );
    let back = read_json(&text).unwrap();
    let mut expected = sample_message();
    // The JSON form always names the value type.
    expected.fields[5].value_type = Some(0);
    assert_eq!(back, expected);
}

/// Found by the `message_view` fuzz target (fuzz/regressions/message_view/): a double field
/// holding NaN was printed as `null`, which `gyges inject` refused.
#[test]
fn non_finite_doubles_survive_the_json_round_trip() {
    let message = Message {
        fields: vec![Field {
            name: "ratio".into(),
            value_type: Some(ValueType::Double as i32),
            value_double: vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.25],
            ..Field::default()
        }],
        ..sample_message()
    };
    let bytes = message.encode_to_vec();
    let mut json = Vec::new();
    write_json(&MessageView::Proto(ProtoView::new(&bytes)), &mut json);
    let text = String::from_utf8(json).unwrap();
    assert!(
        text.contains(r#""value":["NaN","Infinity","-Infinity",-1.25]"#),
        "{text}"
    );
    let back = read_json(&text).unwrap();
    let values = &back.fields[0].value_double;
    assert!(values[0].is_nan());
    assert_eq!(values[1..], [f64::INFINITY, f64::NEG_INFINITY, -1.25]);
    let error = read_json(r#"{"fields":[{"name":"x","value_type":"double","value":["nan"]}]}"#)
        .unwrap_err()
        .to_string();
    assert!(error.contains("expected numbers"), "{error}");
    let crash = include_bytes!("../../fuzz/regressions/message_view/nan-double-printed-as-null");
    let mut json = Vec::new();
    write_json(&MessageView::Proto(ProtoView::new(crash)), &mut json);
    read_json(std::str::from_utf8(&json).unwrap()).expect("what cat prints, inject reads");
}

#[test]
fn json_errors_name_the_key() {
    let error = read_json(r#"{"severity":"high"}"#).unwrap_err().to_string();
    assert!(error.contains("severity"), "{error}");
    let error = read_json(r#"{"colour":1}"#).unwrap_err().to_string();
    assert!(error.contains("colour"), "{error}");
}

proptest! {
    #[test]
    fn no_input_panics_the_view(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let view = ProtoView::new(&bytes);
        let _ = view.validate();
        let _ = view.str_header(StrHeader::Payload);
        let _ = view.int_header(IntHeader::Severity);
        for field in view.fields() {
            let _ = field.name();
            let _ = field.representation();
            let _ = field.values().count();
        }
        let mut json = Vec::new();
        write_json(&MessageView::Proto(ProtoView::new(&bytes)), &mut json);
    }

    #[test]
    fn view_agrees_with_prost(payload in ".{0,40}", severity in any::<i32>(), ints in proptest::collection::vec(any::<i64>(), 0..5)) {
        let mut message = sample_message();
        message.payload = Some(payload.clone());
        message.severity = Some(severity);
        message.fields[1].value_integer = ints.clone();
        let bytes = message.encode_to_vec();
        let view = ProtoView::new(&bytes);
        prop_assert_eq!(view.str_header(StrHeader::Payload), Some(payload.as_bytes()));
        prop_assert_eq!(view.int_header(IntHeader::Severity), Some(i64::from(severity)));
        let read: Vec<_> = view.field(b"number", 0).unwrap().values().collect();
        let expected: Vec<_> = ints.iter().map(|&n| FieldValue::Integer(n)).collect();
        prop_assert_eq!(read, expected);
    }
}

/// One member of a field submessage, for the property below: (tag, wire type, payload).
fn field_member() -> impl Strategy<Value = (u32, u8, Vec<u8>)> {
    (
        1u32..10,
        prop_oneof![Just(0u8), Just(1), Just(2), Just(5)],
        proptest::collection::vec(any::<u8>(), 0..6),
    )
}

proptest! {
    /// `FieldRef::value`'s one-pass fast path reads exactly what iterating `values()` reads,
    /// for well-formed and malformed submessages, value types before or after the values,
    /// repeated value types, packed and unpacked arrays.
    #[test]
    fn field_value_agrees_with_values(members in proptest::collection::vec(field_member(), 0..8), truncate in 0usize..4) {
        let mut bytes = Vec::new();
        for (tag, wire_type, payload) in &members {
            wire::put_key(&mut bytes, *tag, *wire_type);
            match *wire_type {
                0 => wire::put_varint(&mut bytes, u64::from(payload.first().copied().unwrap_or(0)) % 6),
                1 => bytes.extend_from_slice(&[payload.first().copied().unwrap_or(0); 8]),
                2 => {
                    wire::put_varint(&mut bytes, payload.len() as u64);
                    bytes.extend_from_slice(payload);
                }
                _ => bytes.extend_from_slice(&[0; 4]),
            }
        }
        bytes.truncate(bytes.len().saturating_sub(truncate));
        let field = FieldRef::new(&bytes);
        for index in 0..4 {
            // Compared as text: a NaN double equals itself there.
            prop_assert_eq!(format!("{:?}", field.value(index)), format!("{:?}", field.values().nth(index)));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// The same, for submessages shaped as encoders write them (name, value type,
    /// representation, values), with the variations that must send `value` to its general path:
    /// other tags among the values, unpacked numbers, a second value type, truncation.
    #[test]
    fn field_value_agrees_with_values_on_encoder_layouts(
        value_type in proptest::option::of(0u64..6),
        representation in proptest::option::of("[a-z]{0,3}"),
        values in proptest::collection::vec((0u32..3, any::<bool>(), proptest::collection::vec(any::<u8>(), 0..10)), 0..4),
        truncate in 0usize..3,
    ) {
        let mut bytes = Vec::new();
        wire::put_bytes(&mut bytes, 1, b"name");
        if let Some(value_type) = value_type {
            wire::put_int(&mut bytes, 2, value_type as i64);
        }
        if let Some(representation) = &representation {
            wire::put_bytes(&mut bytes, 3, representation.as_bytes());
        }
        let active = 4 + value_type.unwrap_or(0) as u32;
        for (offset, packed, payload) in &values {
            // Mostly the active tag, sometimes another one or a second value type.
            let tag = if *offset == 0 { active } else { [2, 5, 6, 7][payload.len() % 4] };
            if *packed || tag == 4 || tag == 5 {
                wire::put_bytes(&mut bytes, tag, payload);
            } else {
                wire::put_int(&mut bytes, tag, i64::from(payload.first().copied().unwrap_or(1)));
            }
        }
        bytes.truncate(bytes.len().saturating_sub(truncate));
        let field = FieldRef::new(&bytes);
        for index in 0..5 {
            prop_assert_eq!(format!("{:?}", field.value(index)), format!("{:?}", field.values().nth(index)));
        }
    }
}
