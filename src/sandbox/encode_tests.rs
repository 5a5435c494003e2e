//! Message tables → protobuf ([`super::protobuf::encode_table`]), read in place on the Lua
//! stack: every form, rule and error of the walk, through `inject_message` in a decoder.

use super::tests::{process_sample, records, sample, Harness};
use super::*;
use crate::message::proto::Message;
use crate::message::{MessageView, ProtoView};

/// Runs `setup` then `inject_message(<table>)` in a decoder over the sample record: the
/// message injected, or the error text the call raised.
fn inject_with(setup: &str, table: &str) -> Result<Message, String> {
    let harness = Harness::new();
    let script = format!(
        r#"
        function process_message()
            {setup}
            local ok, err = pcall(inject_message, {table})
            if not ok then return -1, tostring(err) end
            return 0
        end
        "#
    );
    let mut sandbox = harness.sandbox(SandboxKind::Decoder, &script);
    let mut sink = Vec::new();
    let status = sandbox
        .process_message(&MessageView::Proto(ProtoView::new(&sample())), &mut sink)
        .map_err(|terminated| format!("terminated: {}", terminated.reason))?;
    match status {
        CallStatus::Ok => {
            let mut injected = records(&sink);
            assert_eq!(injected.len(), 1, "one message per inject_message");
            Ok(injected.remove(0))
        }
        _ => Err(sandbox.last_error().to_string()),
    }
}

fn inject(table: &str) -> Result<Message, String> {
    inject_with("", table)
}

/// The error text of an `inject_message` that must fail.
fn refused(table: &str) -> String {
    match inject(table) {
        Ok(message) => panic!("{table} was encoded: {message:?}"),
        Err(text) => text,
    }
}

fn field<'m>(message: &'m Message, name: &str) -> &'m crate::message::proto::Field {
    message
        .fields
        .iter()
        .find(|field| field.name == name)
        .unwrap_or_else(|| panic!("no field {name} in {message:?}"))
}

#[test]
fn nested_tables_encode_both_field_forms() {
    let message = inject(
        r#"{Type = "t", Fields = {
            ms = {value = {10, 20.9}, value_type = 2, representation = "ms"},
            list = {"x", "y"},
            flags = {value = {true, false}},
            one = {value = 1.5},
            empty = {},
        }}"#,
    )
    .unwrap();
    assert_eq!(field(&message, "ms").value_integer, vec![10, 20]);
    assert_eq!(field(&message, "ms").representation.as_deref(), Some("ms"));
    assert_eq!(field(&message, "list").value_string, vec!["x", "y"]);
    assert_eq!(field(&message, "flags").value_bool, vec![true, false]);
    assert_eq!(field(&message, "one").value_double, vec![1.5]);
    assert!(
        field(&message, "empty").value_string.is_empty(),
        "an empty table is a string field without values"
    );
    assert_eq!(message.fields.len(), 5);
    let message = inject(
        r#"{Fields = {{name = "a", value = {1, 2}, value_type = 2},
                      {name = "b", value = "v", representation = "r"},
                      {name = "c"}}}"#,
    )
    .unwrap();
    let names: Vec<&str> = message.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"], "array form keeps its order");
    assert_eq!(message.fields[0].value_integer, vec![1, 2]);
    assert_eq!(message.fields[1].value_string, vec!["v"]);
    assert_eq!(message.fields[1].representation.as_deref(), Some("r"));
    assert!(message.fields[2].value_string.is_empty());
    assert!(refused(r#"{Fields = {x = {{1}}}}"#).contains("unsupported field value type"));
    assert!(refused(r#"{Fields = {x = {value = {{1}}}}}"#).contains("unsupported field value type"));
    assert!(refused(r#"{Fields = {x = function() end}}"#).contains("unsupported field value type"));
}

#[test]
fn arrays_of_mixed_types_are_refused_as_before() {
    let mismatch = "inject_message() could not encode protobuf - field values do not match the \
                    value_type";
    for table in [
        r#"{Fields = {m = {1, "a"}}}"#,
        r#"{Fields = {m = {true, 1}}}"#,
        r#"{Fields = {m = {1, true}}}"#,
        r#"{Fields = {m = {"a", true}}}"#,
        r#"{Fields = {m = {value = {1, "2"}, value_type = 2}}}"#,
        r#"{Fields = {m = {value = "x", value_type = 4}}}"#,
    ] {
        let error = refused(table);
        assert!(error.contains(mismatch), "{table}: {error}");
    }
    // Numbers in a string field are written as text; the first value sets the type.
    let message = inject(r#"{Fields = {m = {"a", 1, 2.5}}}"#).unwrap();
    assert_eq!(field(&message, "m").value_string, vec!["a", "1", "2.5"]);
    let message = inject(r#"{Fields = {m = {value = {1, 2}, value_type = 1}}}"#).unwrap();
    assert_eq!(
        field(&message, "m").value_bytes,
        vec![b"1".to_vec(), b"2".to_vec()]
    );
    let message = inject(r#"{Fields = {m = {value = {1, 2}, value_type = 3}}}"#).unwrap();
    assert_eq!(field(&message, "m").value_double, vec![1.0, 2.0]);
}

#[test]
fn non_string_keys_are_ignored_at_the_top_and_refused_in_fields() {
    let message = inject(r#"{[1] = "x", [true] = 5, Type = "t", Payload = "p"}"#).unwrap();
    assert_eq!(message.r#type.as_deref(), Some("t"));
    assert_eq!(message.payload.as_deref(), Some("p"));
    assert!(message.fields.is_empty());
    for table in [r#"{Fields = {[2] = "x"}}"#, r#"{Fields = {[true] = 1}}"#] {
        assert!(
            refused(table).contains("could not encode protobuf - field names must be strings"),
            "{table}"
        );
    }
    assert!(refused(r#"{Fields = {{name = "a", value = 1}, "b"}}"#)
        .contains("array form Fields entries must be tables"));
    assert!(refused(r#"{Fields = {{value = 1}}}"#)
        .contains("array form Fields entries need a string name"));
    assert!(refused(r#"{Fields = {{name = 7, value = 1}}}"#)
        .contains("array form Fields entries need a string name"));
}

#[test]
fn metatables_are_not_consulted() {
    let setup = r#"
        local index = {__index = function() return "meta" end, __len = function() return 9 end,
                       __pairs = function() error("__pairs was called") end}
        msg = setmetatable({Type = "t"}, index)
        msg.Fields = setmetatable({
            list = setmetatable({1, 2}, index),
            entry = setmetatable({value = 3}, index),
        }, index)
    "#;
    let message = inject_with(setup, "msg").unwrap();
    assert_eq!(message.r#type.as_deref(), Some("t"));
    assert_eq!(message.payload, None, "__index does not supply Payload");
    assert_eq!(
        message.env_version, None,
        "__index does not supply EnvVersion"
    );
    assert_eq!(field(&message, "list").value_double, vec![1.0, 2.0]);
    let entry = field(&message, "entry");
    assert_eq!(entry.value_double, vec![3.0]);
    assert_eq!(
        entry.representation, None,
        "__index does not supply representation"
    );
    assert_eq!(message.fields.len(), 2);
    // The array form is recognised by a raw read of Fields[1].
    let setup = r#"
        msg = {Fields = setmetatable({}, {__index = function() return {name = "x"} end})}
    "#;
    assert!(inject_with(setup, "msg").unwrap().fields.is_empty());
}

#[test]
fn strings_with_nul_bytes_are_copied_whole() {
    let message = inject(
        r#"{Uuid = string.rep("\0", 15) .. "\1", Type = "t\0u", Payload = "a\0b\0",
            Fields = {["k\0ey"] = "v\0al", bin = {value = "\0\1\0", value_type = 1}}}"#,
    )
    .unwrap();
    let mut uuid = vec![0u8; 15];
    uuid.push(1);
    assert_eq!(message.uuid, uuid);
    assert_eq!(message.r#type.as_deref(), Some("t\0u"));
    assert_eq!(message.payload.as_deref(), Some("a\0b\0"));
    assert_eq!(field(&message, "k\0ey").value_string, vec!["v\0al"]);
    assert_eq!(field(&message, "bin").value_bytes, vec![vec![0u8, 1, 0]]);
}

#[test]
fn header_values_are_converted_or_refused_as_before() {
    let message = inject(
        r#"{Timestamp = "123", Severity = 2.7, Pid = 7, Type = 12, Logger = 1.5,
            Hostname = "h", EnvVersion = "1"}"#,
    )
    .unwrap();
    assert_eq!(message.timestamp, 123);
    assert_eq!(message.severity, Some(2));
    assert_eq!(message.pid, Some(7));
    assert_eq!(message.r#type.as_deref(), Some("12"));
    assert_eq!(message.logger.as_deref(), Some("1.5"));
    assert_eq!(message.hostname.as_deref(), Some("h"));
    assert_eq!(message.env_version.as_deref(), Some("1"));
    let uuid = "01234567-89ab-cdef-0123-456789abcdef";
    let message = inject(&format!(r#"{{Uuid = "{uuid}"}}"#)).unwrap();
    assert_eq!(
        message.uuid,
        crate::message::view::parse_uuid(uuid).unwrap()
    );
    // A decoder's unset headers come from the record.
    let message = inject("{}").unwrap();
    assert_eq!(message.r#type.as_deref(), Some("nginx.access"));
    assert_eq!((message.severity, message.pid), (Some(6), Some(99)));
    for (table, error) in [
        (r#"{Timestamp = "abc"}"#, "Timestamp must be a number"),
        (r#"{Timestamp = 0/0}"#, "Timestamp must be a number"),
        (r#"{Severity = {}}"#, "Severity must be a number"),
        (r#"{Logger = true}"#, "Logger must be a string"),
        (r#"{Payload = {}}"#, "Payload must be a string"),
        (r#"{Fields = "x"}"#, "Fields must be a table"),
        (
            r#"{Fields = {x = {value = 1, value_type = "2"}}}"#,
            "value_type must be a number",
        ),
        (
            r#"{Fields = {x = {value = 1, value_type = 9}}}"#,
            "value_type must be 0..=4",
        ),
        (
            r#"{Fields = {x = {value = 1, representation = 5}}}"#,
            "representation must be a string",
        ),
    ] {
        let text = refused(table);
        assert!(
            text.contains(&format!(
                "inject_message() could not encode protobuf - {error}"
            )),
            "{table}: {text}"
        );
    }
}

#[test]
fn huge_tables_hit_the_output_limit_and_the_counts() {
    // 20 000 fields of 12 bytes each: far over the 63 KiB output limit, which no pcall catches.
    let setup = r#"
        local fields = {}
        for i = 1, 20000 do fields["k" .. i] = "xxxxxxxx" end
        msg = {Fields = fields}
    "#;
    let error = inject_with(setup, "msg").unwrap_err();
    assert!(error.contains("output_limit exceeded"), "{error}");
    let setup = r#"
        local values = {}
        for i = 1, 65537 do values[i] = 1 end
        msg = {Fields = {big = values}}
    "#;
    let error = inject_with(setup, "msg").unwrap_err();
    assert!(error.contains("too many values in a field"), "{error}");
    let setup = r#"
        local entry, fields = {name = "a", value = 1}, {}
        for i = 1, 65537 do fields[i] = entry end
        msg = {Fields = fields}
    "#;
    let error = inject_with(setup, "msg").unwrap_err();
    assert!(error.contains("too many fields"), "{error}");
    // Just under the limit, a large message goes through whole.
    let setup = r#"
        local fields = {}
        for i = 1, 2000 do fields["k" .. i] = i end
        msg = {Fields = fields}
    "#;
    let message = inject_with(setup, "msg").unwrap();
    assert_eq!(message.fields.len(), 2000);
    assert_eq!(field(&message, "k1234").value_double, vec![1234.0]);
}

#[test]
fn encode_message_reads_the_same_table_as_inject_message() {
    let harness = Harness::new();
    let mut sandbox = harness.sandbox(
        SandboxKind::Filter,
        r#"
        function process_message()
            local t = {Type = "t", Payload = "p\0q", Fields = {a = {value = {1, 2}, value_type = 2}}}
            for _ = 1, 1000 do
                local msg = decode_message(encode_message(t))
                assert(msg.Type == "t" and msg.Payload == "p\0q")
                assert(msg.Fields[1].name == "a" and msg.Fields[1].value[2] == 2)
            end
            local ok, err = pcall(encode_message, {Fields = {[1.5] = 1}})
            assert(not ok and tostring(err):find("field names must be strings", 1, true))
            return 0
        end
        "#,
    );
    process_sample(&mut sandbox);
}
