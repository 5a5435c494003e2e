//! `gyges matcher [--dialect heka|lsb] EXPR [--message FILE]`.

use gyges::message::json::read_json;
use gyges::message::proto::Header;
use prost::Message as _;

use crate::util::{run_gyges, temp_file};

/// The issue's example of the JSON message form.
const JSON: &str = r#"{"uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","timestamp":1428773426113040228,"type":"TEST","logger":"GoSpec","severity":6,"payload":"Test Payload","env_version":"0.8","pid":32157,"hostname":"h1","fields":[{"name":"foo","value_type":"string","representation":"","value":["bar"]},{"name":"bytes","value_type":"bytes","value":["ZGF0YQ=="]}]}"#;

fn protobuf() -> Vec<u8> {
    read_json(JSON)
        .expect("the example is a valid message")
        .encode_to_vec()
}

fn framed() -> Vec<u8> {
    let message = protobuf();
    let header = Header {
        message_length: message.len() as u32,
        ..Header::default()
    }
    .encode_to_vec();
    let mut record = vec![0x1e, header.len() as u8];
    record.extend_from_slice(&header);
    record.push(0x1f);
    record.extend_from_slice(&message);
    record
}

fn verdict(dialect: &str, expression: &str, file: &[u8]) -> String {
    let file = temp_file(file);
    let path = file.path().to_str().expect("a UTF-8 temporary path");
    let run = run_gyges(&[
        "matcher",
        "--dialect",
        dialect,
        expression,
        "--message",
        path,
    ]);
    assert_eq!(run.code, Some(0), "{expression}: {}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    run.stdout
}

#[test]
fn prints_the_program_without_a_message() {
    let run = run_gyges(&["matcher", "Type == 'nginx.access' && Fields[status] >= 500"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("heka dialect"), "{}", run.stdout);
    assert!(
        run.stdout.contains("0000  Type == \"nginx.access\""),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("0001  Fields[status][0][0] >= 500"),
        "{}",
        run.stdout
    );
    let run = run_gyges(&["matcher", "--dialect", "lsb", "Pid == NIL"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("lsb dialect"), "{}", run.stdout);
}

#[test]
fn a_syntax_error_goes_to_stderr_with_exit_code_2() {
    let run = run_gyges(&["matcher", "Type == 12"]);
    assert_eq!(run.code, Some(2));
    assert_eq!(
        run.stderr,
        "matcher: expected a string after '==' at byte 8: Type == 12\n"
    );
    assert!(run.stdout.is_empty());
    let run = run_gyges(&["matcher", "--dialect", "lsb", "Type =~ /x/"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr
            .starts_with("matcher: unexpected character '/' at byte 8"),
        "{}",
        run.stderr
    );
    // The error wins over the message file, which is not even read.
    let run = run_gyges(&["matcher", "Type ==", "--message", "/nonexistent"]);
    assert_eq!(run.code, Some(2));
}

#[test]
fn an_unknown_dialect_is_a_usage_error() {
    let run = run_gyges(&["matcher", "--dialect", "go", "TRUE"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("expected 'heka' or 'lsb'"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_messages() {
    let json = JSON.as_bytes();
    assert_eq!(
        verdict("heka", "Type == 'TEST' && Fields[foo] == 'bar'", json),
        "true\n"
    );
    assert_eq!(
        verdict("heka", "Fields[bytes] == 'data' && Pid == 32157", json),
        "true\n"
    );
    assert_eq!(
        verdict(
            "heka",
            "Uuid == '0f8fad5b-d9cb-469f-a165-70867728950e'",
            json
        ),
        "true\n"
    );
    assert_eq!(
        verdict("heka", "Severity > 6 || Hostname != 'h1'", json),
        "false\n"
    );
    assert_eq!(
        verdict("lsb", "Payload =~ '^Test' && Fields[foo] != NIL", json),
        "true\n"
    );
    let pretty = format!("\n  {JSON}\n");
    assert_eq!(
        verdict("heka", "Logger == 'GoSpec'", pretty.as_bytes()),
        "true\n"
    );
    // An absent header is an absent key.
    let sparse = br#"{"uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","timestamp":1}"#;
    assert_eq!(
        verdict("lsb", "Type == NIL && Severity == 7", sparse),
        "true\n"
    );
    assert_eq!(verdict("heka", "Type == '' && Pid == 0", sparse), "true\n");
}

#[test]
fn framed_and_bare_protobuf_messages() {
    for file in [framed(), protobuf()] {
        assert_eq!(
            verdict("heka", "Type == 'TEST' && Fields[bytes] =~ /^da/", &file),
            "true\n"
        );
        assert_eq!(verdict("heka", "Type =~ /^test$/", &file), "false\n");
        assert_eq!(
            verdict("lsb", "Timestamp > '2015-04-11T17:30:26Z'", &file),
            "true\n"
        );
    }
}

#[test]
fn unusable_message_files_exit_with_1() {
    let cases: [(&[u8], &str); 5] = [
        (b"", "empty"),
        (b"{\"colour\":1}", "colour"),
        (
            &[0x1e, 0x02, 0x08, 0x64, 0x1f, 0x0a],
            "shorter than message_length",
        ),
        (&[0x1e, 0x02, 0x08, 0x64, 0x00], "0x1F"),
        (&[0x0a, 0x01, 0x00], "not a valid Heka protobuf message"),
    ];
    for (bytes, phrase) in cases {
        let file = temp_file(bytes);
        let path = file.path().to_str().expect("a UTF-8 temporary path");
        let run = run_gyges(&["matcher", "TRUE", "--message", path]);
        assert_eq!(run.code, Some(1), "{phrase}");
        assert!(run.stderr.contains(phrase), "{phrase}: {}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    let run = run_gyges(&["matcher", "TRUE", "--message", "/nonexistent/message.json"]);
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("cannot read"), "{}", run.stderr);
}
