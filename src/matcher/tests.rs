//! Matcher tests: the upstream suites' cases, a table per grammar rule for both dialects,
//! error positions, no-panic fuzzing, and properties checking the bytecode against the tree
//! evaluator and `MatcherSet` against programs run one by one.

use proptest::prelude::*;
use prost::Message as _;

use super::tree;
use super::*;
use crate::message::proto::{Field, Message, ValueType};
use crate::message::view::{format_uuid, parse_uuid};
use crate::message::{LineMeta, LineView, ProtoView};

fn field(name: &str, value_type: ValueType, representation: Option<&str>) -> Field {
    Field {
        name: name.into(),
        value_type: Some(value_type as i32),
        representation: representation.map(Into::into),
        ..Field::default()
    }
}

fn string_field(name: &str, values: &[&str]) -> Field {
    Field {
        value_string: values.iter().map(|value| value.to_string()).collect(),
        ..field(name, ValueType::String, None)
    }
}

fn integer_field(name: &str, values: &[i64]) -> Field {
    Field {
        value_integer: values.to_vec(),
        ..field(name, ValueType::Integer, None)
    }
}

/// Heka's matcher test message (`message_matcher_test.go`): every header, and fields of every
/// type, `foo` twice.
fn heka_message() -> Message {
    Message {
        uuid: parse_uuid("8e414f01-9d7f-4a48-a5e1-ae92e5954df5")
            .unwrap()
            .to_vec(),
        timestamp: 1_428_773_426_113_040_228,
        r#type: Some("TEST".into()),
        logger: Some("GoSpec".into()),
        severity: Some(6),
        payload: Some("Test Payload".into()),
        env_version: Some("0.8".into()),
        pid: Some(32157),
        hostname: Some("my.host.name".into()),
        fields: vec![
            string_field("foo", &["bar"]),
            Field {
                value_bytes: vec![b"data".to_vec()],
                ..field("bytes", ValueType::Bytes, None)
            },
            integer_field("int", &[999, 1024]),
            Field {
                value_double: vec![99.9],
                ..field("double", ValueType::Double, None)
            },
            Field {
                value_bool: vec![true],
                ..field("bool", ValueType::Bool, None)
            },
            string_field("foo", &["alternate"]),
            string_field("Payload", &["name=test;type=web;"]),
            Field {
                value_string: vec!["Mon Jan 02 15:04:05 -0700 2006".into()],
                ..field("Timestamp", ValueType::String, Some("date-time"))
            },
            integer_field("zero", &[0]),
            string_field("string", &["43"]),
        ],
    }
}

const LSB_PAYLOAD: &str = "Test Payload with a longer string to attempt to create a difference in \
    pattern match time versus the string literal match time for a unique-item";

/// lua_sandbox's matcher test message (`test_heka_message_matcher.c`).
fn lsb_message() -> Message {
    let mut message = heka_message();
    message.uuid = vec![
        0x23, 0x00, 0x81, 0xdc, 0x32, 0x6f, 0x4e, 0x3f, 0x9a, 0x5a, 0x93, 0x86, 0xa3, 0x7e, 0x24,
        0x6f,
    ];
    message.payload = Some(LSB_PAYLOAD.into());
    message.hostname = Some("trink-x230".into());
    message.fields.insert(1, integer_field("number", &[64]));
    message
}

/// lua_sandbox's minimal message: Uuid and Timestamp 0, nothing else.
fn minimal_message() -> Message {
    Message {
        uuid: lsb_message().uuid,
        timestamp: 0,
        ..Message::default()
    }
}

/// Compiles and evaluates one expression three ways (program, tree oracle, a one-program
/// set), asserting they agree; returns the verdict.
fn verdict(expression: &str, dialect: Dialect, message: &Message) -> bool {
    let program = compile(expression, dialect)
        .unwrap_or_else(|error| panic!("{expression:?} should compile: {error}"));
    let bytes = message.encode_to_vec();
    let view = MessageView::Proto(ProtoView::new(&bytes));
    let compiled = program.matches(&view);
    let tree = tree::evaluate(
        &parser::parse(expression, dialect).unwrap(),
        message,
        dialect,
    );
    assert_eq!(
        compiled, tree,
        "bytecode and tree disagree on {expression:?}\n{program}"
    );
    let mut set = MatcherSet::new(vec![program]);
    let mut matched = [false];
    set.evaluate(&view, &mut matched);
    assert_eq!(
        matched[0], compiled,
        "set and program disagree on {expression:?}"
    );
    compiled
}

fn assert_all(dialect: Dialect, message: &Message, expected: bool, expressions: &[&str]) {
    for expression in expressions {
        assert_eq!(
            verdict(expression, dialect, message),
            expected,
            "{dialect}: {expression:?}"
        );
    }
}

fn assert_errors(dialect: Dialect, expressions: &[&str]) {
    for expression in expressions {
        if let Ok(program) = compile(expression, dialect) {
            panic!("{dialect}: {expression:?} should not compile:\n{program}");
        }
    }
}

// The upstream suites' cases follow, expression by expression.

#[test]
fn heka_upstream_positive() {
    let message = heka_message();
    let uuid =
        String::from_utf8(format_uuid(&message.uuid.clone().try_into().unwrap()).to_vec()).unwrap();
    let uuid_test = format!("Uuid == '{uuid}'");
    assert_all(
        Dialect::Heka,
        &message,
        true,
        &[
            "TRUE",
            "(Severity == 7 || Payload == 'Test Payload') && Type == 'TEST'",
            "EnvVersion == \"0.8\"",
            "EnvVersion == '0.8'",
            "EnvVersion != '0.9'",
            "EnvVersion > '0.7'",
            "EnvVersion >= '0.8'",
            "EnvVersion < '0.9'",
            "EnvVersion <= '0.8'",
            "Hostname != ''",
            "Logger == 'GoSpec'",
            "Pid != 0",
            "Severity != 5",
            "Severity < 7",
            "Severity <= 6",
            "Severity == 6",
            "Severity > 5",
            "Severity >= 6",
            "Timestamp > 0",
            "Type != 'test'",
            "Type == 'TEST' && Severity == 6",
            "Type == 'test' && Severity == 7 || Payload == 'Test Payload'",
            "Type == 'TEST'",
            "Type == 'foo' || Type == 'bar' || Type == 'TEST'",
            &uuid_test,
            "Fields[foo] == 'bar'",
            "Fields[foo][0] == 'bar'",
            "Fields[foo][0][0] == 'bar'",
            "Fields[foo][1] == 'alternate'",
            "Fields[foo][1][0] == 'alternate'",
            "Fields[foo] == 'bar'",
            "Fields[bytes] == 'data'",
            "Fields[int] == 999",
            "Fields[int][0][1] == 1024",
            "Fields[double] == 99.9",
            "Fields[bool] == TRUE",
            "Type =~ /TEST/",
            "Type !~ /bogus/",
            "Type =~ /TEST/ && Payload =~ /Payload/",
            "Fields[foo][1] =~ /alt/",
            "Fields[Payload] =~ /name=\\w+/",
            "Type =~ /(ST)/",
            "Fields[int] != NIL",
            "Fields[int][0][1] != NIL",
            "Fields[int][0][2] == NIL",
            "Fields[missing] == NIL",
            "Type =~ /^TE/",
            "Type =~ /ST$/",
            "Type !~ /^te/",
            "Type !~ /st$/",
        ],
    );
}

#[test]
fn heka_upstream_negative() {
    assert_all(
        Dialect::Heka,
        &heka_message(),
        false,
        &[
            "FALSE",
            "Type == 'test'&&(Severity==7||Payload=='Test Payload')",
            "EnvVersion == '0.9'",
            "EnvVersion != '0.8'",
            "EnvVersion > '0.9'",
            "EnvVersion >= '0.9'",
            "EnvVersion < '0.8'",
            "EnvVersion <= '0.7'",
            "Severity == 5",
            "Severity != 6",
            "Severity < 6",
            "Severity <= 5",
            "Severity > 6",
            "Severity >= 7",
            "Fields[foo] == 'ba'",
            "Fields[foo][1] == 'bar'",
            "Fields[foo][0][1] == 'bar'",
            "Fields[bool] == FALSE",
            "Type =~ /Test/",
            "Type !~ /TEST/",
            "Payload =~ /^Payload/",
            "Type == \"te'st\"",
            "Type == 'te\"st'",
            "Fields[int] =~ /999/",
            "Fields[zero] == \"0\"",
            "Fields[string] == 43",
            "Fields[int] == NIL",
            "Fields[int][0][1] == NIL",
            "Fields[missing] != NIL",
            "Type =~ /^te/",
            "Type =~ /st$/",
            "Type !~ /^TE/",
            "Type !~ /ST$/",
            "Logger =~ /./ && Type =~ /^anything/",
        ],
    );
}

#[test]
fn heka_upstream_malformed() {
    assert_errors(
        Dialect::Heka,
        &[
            "",
            "bogus",
            "Type = 'test'",
            "Pid == 'test='",
            "Type == 'test' && (Severity==7 || Payload == 'Test Payload'",
            "Invalid == 'bogus'",
            "Fields[]",
            "Fields[test][]",
            "Fields[test][a]",
            "Fields[test][0][]",
            "Fields[test][0][a]",
            "Fields[test][0][0][]",
            "Fields[test][xxxx",
            "Pid =~ /6/",
            "Pid !~ /6/",
            "Type =~ /test",
            "Type == /test/",
            "Type =~ 'test'",
            "Type =~ /\\ytest/",
            "Type != 'test\"",
            "Pid =~ 6",
            "NIL",
            "Type == NIL",
            "Fields[test] > NIL",
        ],
    );
}

/// lua_sandbox's T128: the most tests its dialect allows.
fn t128() -> String {
    vec!["Type =~ '.'"; 128].join(" && ")
}

fn s255() -> String {
    "0123456789".repeat(26)[..255].to_string()
}

#[test]
fn lsb_upstream_true() {
    let t128 = t128();
    let message = lsb_message();
    assert_all(
        Dialect::Lsb,
        &message,
        true,
        &[
            "TRUE",
            "Timestamp > 1.428773420000e+18",
            "Timestamp < 1.428773426999e18",
            "Timestamp == 1428773426113040228",
            "Timestamp > '2015-04-11T17:30:26Z'",
            "Timestamp > '2015-04-11T17:30:26.112Z'",
            "Timestamp < '2015-04-11T17:30:26.114Z'",
            "(Severity == 7 || Logger == 'GoSpec') && Type == 'TEST'",
            "EnvVersion == \"0.8\"",
            "EnvVersion == '0.8'",
            "EnvVersion != '0.9'",
            "EnvVersion > '0.7'",
            "EnvVersion >= '0.8'",
            "EnvVersion < '0.9'",
            "EnvVersion <= '0.8'",
            "Hostname != ''",
            "Logger == 'GoSpec'",
            "Pid != 0",
            "Pid != NIL",
            "Severity != 5",
            "Severity < 7",
            "Severity <= 7",
            "Severity <= 6",
            "Severity == 6",
            "Severity > 5",
            "Severity >= 5",
            "Severity >= 6",
            "Timestamp > 0",
            "Type != 'test'",
            "Type == 'TEST' && Severity == 6",
            "Type == 'test' && Severity == 7 || Logger == 'GoSpec'",
            "Type == 'TEST'",
            "Type == 'foo' || Type == 'bar' || Type == 'TEST'",
            "Fields[foo] == 'bar'",
            "Fields[foo][0] == 'bar'",
            "Fields[foo][0][0] == 'bar'",
            "Fields[foo][1] == 'alternate'",
            "Fields[foo][1][0] == 'alternate'",
            "Fields[foo] <= 'barx'",
            "Fields[foo] < 'barx'",
            "Fields[foo] >= 'bar'",
            "Uuid > '#'",
            "Uuid >= '#'",
            r"Uuid < '\\'",
            "Fields[foo] > 'baq'",
            "Fields[foo] != 'bara'",
            "Fields[bytes] == 'data'",
            "Fields[int] == 999",
            "Fields[int][0][1] == 1024",
            "Fields[double] == 99.9",
            "Fields[bool] == TRUE",
            "Fields[bool] != FALSE",
            "Fields[int] != NIL",
            "Fields[int][0][1] != NIL",
            "Fields[int][0][2] == NIL",
            "Fields[missing] == NIL",
            "Type =~ 'TEST'",
            "Type !~ 'bogus'",
            "Type =~ 'TEST' && Payload =~ 'Payload'",
            "Fields[foo][1] =~ 'alt'",
            "Fields[Payload] =~ 'name=%w+'",
            "Type =~ 'ST'",
            "Type =~ '^TE'",
            "Type =~ 'ST$'",
            "Type !~ '^te'",
            "Type !~ 'st$'",
            "Fields[foo][255] == NIL",
            "Fields[foo][0][255] == NIL",
            &t128,
            "Payload =~ 'unique-item'%",
            "Fields[Timestamp] =~ ' -0700'%",
            "Type != NIL",
            "Hostname != NIL",
            "EnvVersion != NIL",
            "Pid != NIL",
            "Logger != NIL",
            "Payload != NIL",
            "Pid == 32157",
        ],
    );
}

#[test]
fn lsb_upstream_nil_headers() {
    let message = minimal_message();
    assert_all(
        Dialect::Lsb,
        &message,
        true,
        &[
            "Type == NIL",
            "Type != ''",
            "Type < ''",
            "Type <= ''",
            "Type !~ '.'",
            "Type !~ 'foo'",
            "Hostname == NIL",
            "EnvVersion == NIL",
            "Pid == NIL",
            "Logger == NIL",
            "Payload == NIL",
        ],
    );
    assert_all(
        Dialect::Lsb,
        &message,
        false,
        &[
            "Type != NIL",
            "Type == '%b()'",
            "Type == ''",
            "Type > ''",
            "Type >= ''",
            "Type =~ '.'",
            "Type =~ 'foo'",
            "Hostname != NIL",
            "Hostname == ''",
            "EnvVersion != NIL",
            "EnvVersion == ''",
            "Pid != NIL",
            "Logger != NIL",
            "Logger == ''",
            "Payload != NIL",
            "Payload == ''",
        ],
    );
}

#[test]
fn lsb_upstream_false() {
    let type_s255 = format!("Type == '{}'", s255());
    assert_all(
        Dialect::Lsb,
        &lsb_message(),
        false,
        &[
            "FALSE",
            "Timestamp == 1e9",
            "Timestamp > '2015-04-11T17:30:27Z'",
            "Type == 'test'&&(Severity==7||Payload=='Test Payload')",
            "EnvVersion == '0.9'",
            "EnvVersion != '0.8'",
            "EnvVersion > '0.9'",
            "EnvVersion >= '0.9'",
            "EnvVersion < '0.8'",
            "EnvVersion <= '0.7'",
            "Severity == 5",
            "Severity != 6",
            "Severity < 6",
            "Severity <= 5",
            "Severity > 6",
            "Severity >= 7",
            "Fields[foo] == 'ba'",
            "Fields[foo][1] == 'bar'",
            "Fields[foo][0][1] == 'bar'",
            "Fields[bool] == FALSE",
            "Fields[bool] != TRUE",
            "Fields[foo] > 'bara'",
            "Fields[foo] >= 'bara'",
            "Fields[foo] == 'bara'",
            "Type =~ 'Test'",
            "Type !~ 'TEST'",
            "Payload =~ '^Payload'",
            "Type == \"te'st\"",
            "Type == 'te\"st'",
            "Fields[int] =~ '999'",
            "Fields[zero] == \"0\"",
            "Fields[string] == 43",
            "Fields[int] == NIL",
            "Fields[int][0][1] == NIL",
            "Fields[missing] != NIL",
            "Type =~ '^te'",
            "Type =~ 'st$'",
            "Type !~ '^TE'",
            "Type !~ 'ST$'",
            "Logger =~ '.' && Type =~ '^anything'",
            &type_s255,
            "Payload =~ 'not.found'%",
            "Fields[foo][1] =~ 'not.found'%",
            "Type == NIL",
            "Hostname == NIL",
            "EnvVersion == NIL",
            "Pid == NIL",
            "Logger == NIL",
            "Payload == NIL",
        ],
    );
}

#[test]
fn lsb_upstream_malformed() {
    let too_many = format!("{} && Type =~ '.'", t128());
    let too_long = format!("Type == '{}5'", s255());
    assert_errors(
        Dialect::Lsb,
        &[
            "",
            "bogus",
            "Type = 'test'",
            "Pid == 'test='",
            "Type == 'test' && (Severity==7 || Payload == 'Test Payload'",
            "Invalid == 'bogus'",
            "Fields[]",
            "Fields[test][]",
            "Fields[test][a]",
            "Fields[test][0][]",
            "Fields[test][0][a]",
            "Fields[test][0][0][]",
            "Fields[test][xxxx",
            "Pid =~ '6'",
            "Pid !~ '6'",
            "Type =~ 'test",
            "Type != 'test\"",
            "Pid =~ 6",
            "NIL",
            "Type         > NIL",
            "Pid > NIL",
            "Fields[test] > NIL",
            "Uuid == NIL",
            "Severity == NIL",
            "TRUE FALSE",
            "Timestamp == '20150411T173026'",
            &too_many,
            &too_long,
            "Fields[test][256] == 1",
            "Fields[test][0][256] == 1",
            "Payload =~ 'foo'i",
        ],
    );
}

/// A message with every header and a field of every type, and one with none.
fn full_and_empty() -> (Message, Message) {
    let full = Message {
        uuid: parse_uuid("0f8fad5b-d9cb-469f-a165-70867728950e")
            .unwrap()
            .to_vec(),
        timestamp: 1_000_000_000,
        r#type: Some("nginx.access".into()),
        logger: Some("nginx".into()),
        severity: Some(3),
        payload: Some("GET /index.html 200".into()),
        env_version: Some("1".into()),
        pid: Some(-5),
        hostname: Some("web-1".into()),
        fields: vec![
            string_field("s", &["abc", "xyz"]),
            Field {
                value_bytes: vec![vec![0, 255]],
                ..field("b", ValueType::Bytes, None)
            },
            integer_field("i", &[1, -2]),
            Field {
                value_double: vec![2.5],
                ..field("d", ValueType::Double, None)
            },
            Field {
                value_bool: vec![false, true],
                ..field("t", ValueType::Bool, None)
            },
            string_field("empty", &[]),
        ],
    };
    let empty = Message {
        uuid: full.uuid.clone(),
        timestamp: 0,
        ..Message::default()
    };
    (full, empty)
}

/// (expression, verdict on the full message, verdict on the empty one) for one dialect.
type Table = &'static [(&'static str, bool, bool)];

fn check_table(dialect: Dialect, table: Table) {
    let (full, empty) = full_and_empty();
    for &(expression, on_full, on_empty) in table {
        assert_eq!(
            verdict(expression, dialect, &full),
            on_full,
            "{dialect} full: {expression:?}"
        );
        assert_eq!(
            verdict(expression, dialect, &empty),
            on_empty,
            "{dialect} empty: {expression:?}"
        );
    }
}

#[test]
fn heka_rules() {
    check_table(
        Dialect::Heka,
        &[
            // Constants, precedence, parentheses, short-circuit.
            ("TRUE", true, true),
            ("FALSE || TRUE", true, true),
            ("TRUE && FALSE", false, false),
            ("FALSE && Type == 'x' || TRUE", true, true),
            ("TRUE || FALSE && FALSE", true, true),
            ("(TRUE || FALSE) && FALSE", false, false),
            ("((((Type == 'nginx.access'))))", true, false),
            // Go accepts a sequence of expressions; the last one decides.
            ("FALSE TRUE", true, true),
            ("Type == 'nginx.access' Logger == 'x'", false, false),
            // A newline ends the expression.
            ("TRUE\nthis is ignored", true, true),
            // String headers: absent reads as "".
            ("Type == 'nginx.access'", true, false),
            ("Type == ''", false, true),
            ("Type != ''", true, false),
            ("Type < 'o'", true, true),
            ("Type >= 'nginx.access'", true, false),
            ("Logger <= 'nginx'", true, true),
            ("Payload > 'GET'", true, false),
            ("EnvVersion == '1'", true, false),
            ("Hostname == \"web-1\"", true, false),
            ("Hostname == 'web\\-1'", false, false),
            ("Hostname == 'web\\'1'", false, false),
            // Uuid is 36 characters of text; absent would read as "".
            ("Uuid == '0f8fad5b-d9cb-469f-a165-70867728950e'", true, true),
            ("Uuid =~ /^0f8fad5b-/", true, true),
            // Numbers: all compared as f64; Severity defaults to 7 and Pid to 0.
            ("Timestamp == 1e9", true, false),
            ("Timestamp >= 1000000000.0", true, false),
            ("Timestamp < .5", false, true),
            ("Severity == 3", true, false),
            ("Severity == 7", false, true),
            ("Severity <= 7", true, true),
            ("Pid == 0", false, true),
            ("Pid < 0", true, false),
            // Text that is not a float reads as 0.
            ("Pid > 1e", false, false),
            ("Severity > 6-", true, true),
            // Regexes: literal fast paths and the real thing.
            ("Payload =~ /index/", true, false),
            ("Payload =~ /^GET/", true, false),
            ("Payload =~ /200$/", true, false),
            ("Payload =~ /^GET \\/index\\.html 200$/", true, false),
            ("Payload =~ /^$/", false, true),
            ("Payload =~ //", true, true),
            ("Payload !~ /^GET/", false, true),
            ("Payload =~ /\\d{3}$/", true, false),
            ("Payload =~ /(?i)get/", true, false),
            ("Type =~ /^nginx\\./ && Payload !~ /POST/", true, false),
            // Fields: string, bytes, integer, double, bool; indices; NIL.
            ("Fields[s] == 'abc'", true, false),
            ("Fields[s][0][1] == 'xyz'", true, false),
            ("Fields[s][0][2] == NIL", true, true),
            ("Fields[s][1] == NIL", true, true),
            ("Fields[s] != NIL", true, false),
            ("Fields[s] < 'b'", true, false),
            ("Fields[s] =~ /^ab/", true, false),
            ("Fields[b] =~ /\\x{0}/", true, false),
            ("Fields[i] == 1", true, false),
            ("Fields[i][0][1] < 0", true, false),
            ("Fields[d] == 2.5", true, false),
            ("Fields[d] > 2", true, false),
            ("Fields[t] == FALSE", true, false),
            ("Fields[t][0][1] == TRUE", true, false),
            ("Fields[empty] == NIL", true, true),
            ("Fields[missing] != 'x'", false, false),
            // Type mismatches are false, whatever the operator.
            ("Fields[s] == 1", false, false),
            ("Fields[s] != 1", false, false),
            ("Fields[i] == '1'", false, false),
            ("Fields[i] != '1'", false, false),
            ("Fields[i] =~ /1/", false, false),
            ("Fields[i] !~ /1/", false, false),
            ("Fields[t] == 0", false, false),
            ("Fields[i] == TRUE", false, false),
            ("Fields[s] == TRUE", false, false),
        ],
    );
}

#[test]
fn lsb_rules() {
    check_table(
        Dialect::Lsb,
        &[
            ("TRUE", true, true),
            ("(TRUE || FALSE) && FALSE", false, false),
            ("TRUE\n&&\r\nTRUE", true, true),
            // Absent optional headers are NIL: unequal to all, below all.
            ("Type == 'nginx.access'", true, false),
            ("Type == NIL", false, true),
            ("Type != NIL", true, false),
            ("Type != 'x'", true, true),
            ("Type < 'a'", false, true),
            ("Type >= ''", true, false),
            ("Type =~ '.*'", true, true),
            ("Type !~ '.'", false, true),
            ("EnvVersion == NIL", false, true),
            ("Pid == NIL", false, true),
            ("Pid < -4", true, true),
            ("Pid > -10", true, false),
            ("Pid == -5", true, false),
            // Severity defaults to 7, Timestamp to 0.
            ("Severity == 7", false, true),
            ("Severity < +4", true, false),
            ("Timestamp == 1E9", true, false),
            ("Timestamp == '1970-01-01T00:00:01Z'", true, false),
            ("Timestamp < '1970-01-01T00:00:01.5+00:00'", true, true),
            // Uuid is its 16 raw bytes.
            (
                "Uuid == '0f8fad5b-d9cb-469f-a165-70867728950e'",
                false,
                false,
            ),
            ("Uuid =~ '^\u{f}'", true, true),
            // Lua patterns, plain text and anchored literals.
            ("Payload =~ '^GET'", true, false),
            ("Payload =~ '200$'", true, false),
            ("Payload =~ '%d%d%d$'", true, false),
            ("Payload =~ '/index.html'", true, false),
            ("Payload =~ '/index.html'%", true, false),
            ("Payload =~ 'index.htm'%", true, false),
            ("Payload =~ 'y.html'%", false, false),
            ("Payload =~ '^[A-Z]+ /%a+%.%a+ %d+$'", true, false),
            ("Payload !~ 'POST'", true, true),
            ("Hostname =~ 'web%-1'", true, false),
            ("Hostname =~ 'web-1'", false, false),
            // Fields, with NIL and booleans on both operators.
            ("Fields[s] == 'abc'", true, false),
            ("Fields[s][0][1] == 'xyz'", true, false),
            ("Fields[s] != NIL", true, false),
            ("Fields[missing] == NIL", true, true),
            ("Fields[b] == '\u{0}'", false, false),
            ("Fields[i] == 1", true, false),
            ("Fields[i][0][1] == -2", true, false),
            ("Fields[d] >= 2.5e0", true, false),
            ("Fields[t] != TRUE", true, false),
            ("Fields[t][0][1] == TRUE", true, false),
            // A number field equals TRUE when it is 1, FALSE when it is 0.
            ("Fields[i] == TRUE", true, false),
            ("Fields[i] != FALSE", true, false),
            ("Fields[t] == 0", false, false),
            ("Fields[s] =~ 'b'", true, false),
            ("Fields[i] =~ '1'", false, false),
            ("Fields[] == NIL", true, true),
        ],
    );
}

#[test]
fn line_records_read_their_meta() {
    let meta = LineMeta {
        type_: b"lines".as_slice().into(),
        logger: b"tcp".as_slice().into(),
        hostname: b"10.0.0.1".as_slice().into(),
    };
    let line = LineView {
        payload: b"hello world",
        uuid: [7; 16],
        timestamp: 42,
        meta: &meta,
    };
    let view = MessageView::Line(line);
    let cases = [
        (
            "Type == 'lines' && Logger == 'tcp' && Hostname =~ /^10\\./",
            Dialect::Heka,
            true,
        ),
        (
            "Payload =~ /world$/ && Timestamp == 42",
            Dialect::Heka,
            true,
        ),
        (
            "EnvVersion == '' && Severity == 7 && Pid == 0",
            Dialect::Heka,
            true,
        ),
        ("Fields[x] == NIL", Dialect::Heka, true),
        (
            "EnvVersion == NIL && Pid == NIL && Severity == 7",
            Dialect::Lsb,
            true,
        ),
        ("Payload =~ 'o w'", Dialect::Lsb, true),
        (
            "Uuid == '07070707-0707-0707-0707-070707070707'",
            Dialect::Heka,
            true,
        ),
    ];
    for (expression, dialect, expected) in cases {
        let program = compile(expression, dialect).unwrap();
        assert_eq!(program.matches(&view), expected, "{expression}");
    }
}

/// (dialect, expression, position, a phrase of the message).
const ERRORS: &[(Dialect, &str, usize, &str)] = &[
    (Dialect::Heka, "", 0, "expected a test"),
    (
        Dialect::Heka,
        "Type == 12",
        8,
        "expected a string after '=='",
    ),
    (
        Dialect::Heka,
        "Severity == 'x'",
        12,
        "expected a number after '=='",
    ),
    (Dialect::Heka, "Type = 'test'", 5, "expected '==' or '=~'"),
    (
        Dialect::Heka,
        "Type",
        4,
        "expected a comparison operator after 'Type'",
    ),
    (Dialect::Heka, "bogus == 1", 0, "unknown variable 'bogus'"),
    (
        Dialect::Heka,
        "Type == 'a' &&",
        14,
        "expected a test, TRUE, FALSE or '(' after '&&'",
    ),
    (
        Dialect::Heka,
        "(Type == 'a'",
        12,
        "expected '&&', '||' or ')' after 'a'",
    ),
    (
        Dialect::Heka,
        "Type == 'a')",
        11,
        "expected '&&', '||' or the end",
    ),
    (
        Dialect::Heka,
        "Type =~ /a(/",
        8,
        "invalid regular expression",
    ),
    (
        Dialect::Heka,
        "Type =~ 'a'",
        8,
        "expected a /regular expression/ after '=~'",
    ),
    (
        Dialect::Heka,
        "Pid =~ /1/",
        4,
        "'=~' applies to text, and 'Pid' is a number",
    ),
    (
        Dialect::Heka,
        "Type == NIL",
        8,
        "NIL can only be compared with Fields",
    ),
    (
        Dialect::Heka,
        "Fields[x] != TRUE",
        13,
        "TRUE and FALSE can only follow '=='",
    ),
    (
        Dialect::Heka,
        "Fields[x] < NIL",
        12,
        "NIL can only follow '==' or '!='",
    ),
    (Dialect::Heka, "Type == 'abc", 8, "unterminated string"),
    (Dialect::Heka, "Fields[x][y] == 1", 10, "expected digits"),
    (
        Dialect::Heka,
        "Fields[x][1][2][3] == 1",
        15,
        "unexpected character '['",
    ),
    (Dialect::Heka, "Type == -1", 8, "unexpected character '-'"),
    (Dialect::Heka, "type == 'x'", 0, "unknown variable 'type'"),
    (
        Dialect::Lsb,
        "Type == 12",
        8,
        "expected a string after '=='",
    ),
    (
        Dialect::Lsb,
        "TRUE FALSE",
        5,
        "expected '&&', '||' or the end of the expression after 'TRUE'",
    ),
    (Dialect::Lsb, "Type =~ /a/", 8, "unexpected character '/'"),
    (
        Dialect::Lsb,
        "Type == 'a'%",
        11,
        "'%' can only follow a Lua pattern",
    ),
    (Dialect::Lsb, "Type =~ '[a'", 8, "missing ']'"),
    (Dialect::Lsb, "Type =~ '%b()'", 8, "%b is not supported"),
    (Dialect::Lsb, "Uuid == NIL", 8, "never NIL"),
    (Dialect::Lsb, "Severity == NIL", 12, "defaults to 7"),
    (Dialect::Lsb, "Timestamp == 'yesterday'", 13, "RFC 3339"),
    (
        Dialect::Lsb,
        "Fields[x] > TRUE",
        12,
        "TRUE and FALSE can only follow '==' or '!='",
    ),
    (
        Dialect::Lsb,
        "Fields[x][300] == 1",
        10,
        "index above the maximum of 255",
    ),
    (
        Dialect::Lsb,
        "Severity == 01",
        13,
        "expected '&&', '||' or the end",
    ),
];

#[test]
fn errors_name_the_position_and_what_was_expected() {
    for &(dialect, expression, position, phrase) in ERRORS {
        let error = compile(expression, dialect).unwrap_err();
        let text = error.to_string();
        assert_eq!(
            error.position(),
            position,
            "{dialect} {expression:?}: {text}"
        );
        assert!(text.contains(phrase), "{dialect} {expression:?}: {text}");
        assert!(text.starts_with("matcher: "), "{text}");
        assert!(
            text.ends_with(&format!("at byte {position}: {expression}")),
            "{text}"
        );
    }
    let error = compile("Type == 12", Dialect::Heka).unwrap_err();
    assert_eq!(
        error.to_string(),
        "matcher: expected a string after '==' at byte 8: Type == 12"
    );
}

#[test]
fn limits_are_enforced() {
    let deep = format!("{}TRUE{}", "(".repeat(65), ")".repeat(65));
    assert!(compile(&deep, Dialect::Heka)
        .unwrap_err()
        .problem()
        .contains("nested deeper"));
    let ok = format!("{}TRUE{}", "(".repeat(64), ")".repeat(64));
    assert_eq!(
        compile(&ok, Dialect::Heka).unwrap().is_constant(),
        Some(true)
    );
    let tests = vec!["Type == 'x'"; 1025].join(" || ");
    assert!(compile(&tests, Dialect::Heka)
        .unwrap_err()
        .problem()
        .contains("more than 1024"));
    let tests = vec!["Type == 'x'"; 1024].join(" || ");
    assert_eq!(compile(&tests, Dialect::Heka).unwrap().ops().len(), 1024);
    let long = format!("Type == '{}'", "x".repeat(70_000));
    assert!(compile(&long, Dialect::Heka)
        .unwrap_err()
        .problem()
        .contains("longer than"));
    let huge_regex = "Payload =~ /\\w{1000}\\w{1000}\\w{1000}/";
    assert!(compile(huge_regex, Dialect::Heka)
        .unwrap_err()
        .problem()
        .contains("exceed"));
}

#[test]
fn constants_fold_and_dead_tests_vanish() {
    let constant = |expression| compile(expression, Dialect::Heka).unwrap().is_constant();
    assert_eq!(constant("TRUE"), Some(true));
    assert_eq!(constant("FALSE"), Some(false));
    assert_eq!(constant("TRUE || Type == 'x'"), Some(true));
    assert_eq!(constant("FALSE && Type == 'x'"), Some(false));
    assert_eq!(constant("(Type == 'x' || TRUE) && TRUE"), Some(true));
    assert_eq!(constant("Type == 'x'"), None);
    let program = compile("FALSE && Type == 'a' || Logger == 'b'", Dialect::Heka).unwrap();
    assert_eq!(program.ops().len(), 1, "{program}");
    let program = compile("(Type == 'a' || TRUE) && Logger == 'b'", Dialect::Heka).unwrap();
    assert_eq!(program.ops().len(), 1, "{program}");
}

#[test]
fn literal_patterns_become_cheap_tests() {
    use bytecode::{Predicate, StringMatcher};
    let matcher = |expression, dialect| {
        let program = compile(expression, dialect).unwrap();
        match &program.ops()[0].test.predicate {
            Predicate::Match { matcher, .. } => match matcher {
                StringMatcher::Equal(_) => "equal",
                StringMatcher::Prefix(_) => "prefix",
                StringMatcher::Suffix(_) => "suffix",
                StringMatcher::Contains(_) => "contains",
                StringMatcher::Regex(_) => "regex",
            },
            _ => "not a match",
        }
    };
    assert_eq!(
        matcher("Type =~ /^heka\\.sandbox\\./", Dialect::Heka),
        "prefix"
    );
    assert_eq!(matcher("Type =~ /access$/", Dialect::Heka), "suffix");
    assert_eq!(matcher("Type =~ /^TEST$/", Dialect::Heka), "equal");
    assert_eq!(matcher("Type =~ /TEST/", Dialect::Heka), "contains");
    assert_eq!(matcher("Type =~ /T.ST/", Dialect::Heka), "regex");
    assert_eq!(matcher("Type =~ '^TE'", Dialect::Lsb), "prefix");
    assert_eq!(matcher("Type =~ 'a.b'%", Dialect::Lsb), "contains");
    assert_eq!(matcher("Type =~ 'a.b'", Dialect::Lsb), "regex");
}

#[test]
fn disassembly_shows_ops_and_targets() {
    let program = compile(
        "Type == 'nginx.access' && (Severity < 4 || Fields[status] >= 500)",
        Dialect::Heka,
    )
    .unwrap();
    let text = program.to_string();
    assert!(text.contains("heka dialect"), "{text}");
    assert!(
        text.contains("0000  Str(Type)") || text.contains("0000  Type"),
        "{text}"
    );
    assert!(text.contains("Fields[status][0][0] >= 500"), "{text}");
    assert!(text.contains("true -> 0001; false -> NO MATCH"), "{text}");
    assert!(text.contains("true -> MATCH; false -> 0002"), "{text}");
    let constant = compile("TRUE", Dialect::Lsb).unwrap().to_string();
    assert!(constant.contains("constant"), "{constant}");
}

#[test]
fn programs_are_clone_and_send() {
    fn clone_and_send<T: Clone + Send + 'static>(value: T) -> T {
        std::thread::spawn(move || value.clone()).join().unwrap()
    }
    let program = compile("Payload =~ /a+b/ && Type =~ /x/", Dialect::Heka).unwrap();
    let copy = clone_and_send(program);
    let view = MessageView::Line(LineView {
        payload: b"xaab",
        uuid: [0; 16],
        timestamp: 0,
        meta: &LineMeta {
            type_: b"x".as_slice().into(),
            ..LineMeta::default()
        },
    });
    assert!(copy.matches(&view));
}

#[test]
fn dialects_deserialize_from_configuration() {
    #[derive(serde::Deserialize)]
    struct Hekad {
        #[serde(default)]
        matcher_dialect: Dialect,
    }
    let parse = |text: &str| toml::from_str::<Hekad>(text).map(|hekad| hekad.matcher_dialect);
    assert_eq!(parse("matcher_dialect = 'lsb'").unwrap(), Dialect::Lsb);
    assert_eq!(parse("matcher_dialect = 'heka'").unwrap(), Dialect::Heka);
    assert_eq!(parse("").unwrap(), Dialect::Heka);
    assert!(parse("matcher_dialect = 'go'").is_err());
}

#[test]
fn dialect_names() {
    assert_eq!("heka".parse::<Dialect>(), Ok(Dialect::Heka));
    assert_eq!("lsb".parse::<Dialect>(), Ok(Dialect::Lsb));
    assert!("go".parse::<Dialect>().is_err());
    assert_eq!(Dialect::default(), Dialect::Heka);
}

#[test]
fn set_shares_tests_and_groups_equalities() {
    let expressions = [
        "Type == 'a'",
        "Type == 'b' && Severity < 5",
        "Type == 'c' || Type == 'nginx.access'",
        "Type != 'nginx.access'",
        "Type == 'nginx.access' && Fields[s] == 'abc'",
        "Fields[s] == 'abc' || Fields[s] == 'x'",
        "TRUE",
        "Fields[i] == 'not text'",
        "Fields[i] == 'a' || Fields[i] == 'b' || Fields[i] == 'c'",
    ];
    let programs: Vec<Program> = expressions
        .iter()
        .map(|text| compile(text, Dialect::Heka).unwrap())
        .collect();
    let mut set = MatcherSet::new(programs.clone());
    assert_eq!(set.len(), expressions.len());
    assert!(set.group_count() >= 2, "Type and Fields[i] form groups");
    assert!(set.test_count() < programs.iter().map(|p| p.ops().len()).sum::<usize>());
    let (full, empty) = full_and_empty();
    for message in [&full, &empty] {
        let bytes = message.encode_to_vec();
        let view = MessageView::Proto(ProtoView::new(&bytes));
        let mut matched = vec![false; set.len()];
        // Twice: the second evaluation must not reuse the first one's stamps wrongly.
        for _ in 0..2 {
            set.evaluate(&view, &mut matched);
            let expected: Vec<bool> = programs.iter().map(|p| p.matches(&view)).collect();
            assert_eq!(matched, expected);
        }
    }
}

#[test]
fn set_routes_programs_by_their_first_equality() {
    let mut expressions: Vec<String> = (0..20)
        .map(|index| format!("Type == 'app.{index}' && Severity < 5"))
        .collect();
    expressions.push("Type == '' && Severity == 7".into());
    expressions.push("Type == 'app.3' || Logger == 'nginx'".into());
    expressions.push("Type != 'app.4'".into());
    expressions.push("FALSE".into());
    expressions.push("Type == 'app.5' && FALSE || TRUE".into());
    let programs: Vec<Program> = expressions
        .iter()
        .map(|text| compile(text, Dialect::Heka).unwrap())
        .collect();
    let mut set = MatcherSet::new(programs.clone());
    assert_eq!(set.group_count(), 1);
    let (full, empty) = full_and_empty();
    let mut messages = vec![full.clone(), empty];
    for (index, type_) in ["app.3", "app.4", "app.19", "other", ""].iter().enumerate() {
        let mut message = full.clone();
        message.r#type = Some(type_.to_string());
        message.severity = Some(index as i32 * 2);
        messages.push(message);
    }
    let mut matched = vec![false; set.len()];
    for dialect_message in &messages {
        let bytes = dialect_message.encode_to_vec();
        let view = MessageView::Proto(ProtoView::new(&bytes));
        set.evaluate(&view, &mut matched);
        let expected: Vec<bool> = programs.iter().map(|p| p.matches(&view)).collect();
        assert_eq!(matched, expected, "{:?}", dialect_message.r#type);
    }
}

#[test]
fn set_reads_each_subject_once_and_forgets_it_between_messages() {
    let expressions = [
        "Fields[s] == 'abc' && Fields[i] > 0",
        "Fields[s] != 'x' && Fields[i] < 5",
        "Fields[s] =~ /^a/ || Type == 'nginx.access'",
        "Uuid =~ /^0f8f/ && Uuid != 'x'",
    ];
    let programs: Vec<Program> = expressions
        .iter()
        .map(|text| compile(text, Dialect::Heka).unwrap())
        .collect();
    let mut set = MatcherSet::new(programs.clone());
    assert_eq!(set.read_count(), 4, "Fields[s], Fields[i], Type, Uuid");
    let (full, empty) = full_and_empty();
    let mut other = full.clone();
    other.fields[0].value_string = vec!["x".into()];
    other.uuid = vec![0; 16];
    let mut matched = vec![false; set.len()];
    for message in [&full, &other, &empty, &full, &empty] {
        let bytes = message.encode_to_vec();
        let view = MessageView::Proto(ProtoView::new(&bytes));
        set.evaluate(&view, &mut matched);
        let expected: Vec<bool> = programs.iter().map(|p| p.matches(&view)).collect();
        assert_eq!(matched, expected);
    }
    // Plain-line messages: values outside the record are read again, not cached wrongly.
    let meta = LineMeta {
        type_: b"nginx.access".as_slice().into(),
        ..LineMeta::default()
    };
    for payload in [&b"abc"[..], b"x"] {
        let view = MessageView::Line(LineView {
            payload,
            uuid: [0; 16],
            timestamp: 0,
            meta: &meta,
        });
        set.evaluate(&view, &mut matched);
        let expected: Vec<bool> = programs.iter().map(|p| p.matches(&view)).collect();
        assert_eq!(matched, expected);
    }
}

// Property tests: random expressions over random messages.

const STRINGS: &[&str] = &["", "a", "ab", "b", "TEST", "x y", "aab"];
const NUMBERS_HEKA: &[&str] = &["0", "1", "6", "7", "2.5", "1e3", ".5"];
const NUMBERS_LSB: &[&str] = &["0", "1", "6", "7", "-1", "2.5", "1e3"];
const REGEXES: &[&str] = &[
    "^a", "b$", "^ab$", "a", "a.b", "[ab]+", "^$", "", "(?i)test",
];
const LUA_PATTERNS: &[&str] = &["^a", "b$", "^ab$", "a", "a.b", "[ab]+", "%a+", "^$", "x%s"];
const HEADERS_TEXT: &[&str] = &[
    "Type",
    "Logger",
    "Payload",
    "EnvVersion",
    "Hostname",
    "Uuid",
];
const HEADERS_NUMBER: &[&str] = &["Timestamp", "Severity", "Pid"];
const FIELDS: &[&str] = &[
    "Fields[s]",
    "Fields[n]",
    "Fields[d]",
    "Fields[t]",
    "Fields[x]",
    "Fields[s][1]",
    "Fields[n][0][1]",
    "Fields[missing]",
];
const RELATIONS: &[&str] = &["==", "!=", "<", "<=", ">", ">="];

/// A random test in `dialect`; mostly valid, sometimes not (both paths must then fail alike).
fn leaf(dialect: Dialect) -> impl Strategy<Value = String> {
    let numbers = if dialect == Dialect::Heka {
        NUMBERS_HEKA
    } else {
        NUMBERS_LSB
    };
    let pattern = move |index: usize, plain: bool| match dialect {
        Dialect::Heka => format!("/{}/", REGEXES[index % REGEXES.len()]),
        Dialect::Lsb => {
            let suffix = if plain { "%" } else { "" };
            format!("'{}'{suffix}", LUA_PATTERNS[index % LUA_PATTERNS.len()])
        }
    };
    (0usize..8, 0usize..64, 0usize..64, 0usize..64, any::<bool>()).prop_map(
        move |(shape, a, b, c, flag)| {
            let relation = RELATIONS[b % RELATIONS.len()];
            let string = STRINGS[c % STRINGS.len()];
            let number = numbers[c % numbers.len()];
            let match_op = if flag { "=~" } else { "!~" };
            match shape {
                0 => format!(
                    "{} {relation} '{string}'",
                    HEADERS_TEXT[a % HEADERS_TEXT.len()]
                ),
                1 => format!(
                    "{} {match_op} {}",
                    HEADERS_TEXT[a % HEADERS_TEXT.len()],
                    pattern(c, flag)
                ),
                2 => format!(
                    "{} {relation} {number}",
                    HEADERS_NUMBER[a % HEADERS_NUMBER.len()]
                ),
                3 => format!("{} {relation} '{string}'", FIELDS[a % FIELDS.len()]),
                4 => format!("{} {relation} {number}", FIELDS[a % FIELDS.len()]),
                5 => {
                    let value = ["TRUE", "FALSE", "NIL"][c % 3];
                    let relation = if flag { "==" } else { "!=" };
                    let subject = if b % 3 == 0 {
                        HEADERS_TEXT[a % HEADERS_TEXT.len()]
                    } else {
                        FIELDS[a % FIELDS.len()]
                    };
                    format!("{subject} {relation} {value}")
                }
                6 => format!(
                    "{} {match_op} {}",
                    FIELDS[a % FIELDS.len()],
                    pattern(c, !flag)
                ),
                _ => ["TRUE", "FALSE", "Pid == NIL", "Pid != NIL"][c % 4].to_string(),
            }
        },
    )
}

fn expression(dialect: Dialect) -> impl Strategy<Value = String> {
    leaf(dialect).prop_recursive(4, 24, 4, |inner| {
        (
            proptest::collection::vec(inner, 2..4),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(items, and, parenthesise)| {
                let joined = items.join(if and { " && " } else { " || " });
                if parenthesise {
                    format!("({joined})")
                } else {
                    joined
                }
            })
    })
}

fn optional_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(proptest::sample::select(STRINGS).prop_map(str::to_string))
}

fn random_field() -> impl Strategy<Value = Field> {
    let name = proptest::sample::select(&["s", "n", "d", "t", "x"][..]);
    (
        name,
        0i32..5,
        0usize..3,
        proptest::collection::vec(0usize..8, 3),
    )
        .prop_map(|(name, value_type, count, picks)| {
            let mut field = Field {
                name: name.into(),
                value_type: Some(value_type),
                ..Field::default()
            };
            let picks = &picks[..count];
            let numbers = [0i64, 1, 6, 7, -1, 1000, 2, 3];
            match value_type {
                0 => {
                    field.value_string = picks
                        .iter()
                        .map(|&i| STRINGS[i % STRINGS.len()].into())
                        .collect()
                }
                1 => {
                    field.value_bytes = picks
                        .iter()
                        .map(|&i| STRINGS[i % STRINGS.len()].into())
                        .collect()
                }
                2 => field.value_integer = picks.iter().map(|&i| numbers[i]).collect(),
                3 => field.value_double = picks.iter().map(|&i| numbers[i] as f64 / 2.0).collect(),
                _ => field.value_bool = picks.iter().map(|&i| i % 2 == 0).collect(),
            }
            field
        })
}

fn random_message() -> impl Strategy<Value = Message> {
    (
        (
            optional_text(),
            optional_text(),
            optional_text(),
            optional_text(),
            optional_text(),
        ),
        proptest::option::of(0i32..8),
        proptest::option::of(-2i32..8),
        0i64..3,
        proptest::collection::vec(random_field(), 0..6),
        any::<[u8; 16]>(),
    )
        .prop_map(|(texts, severity, pid, timestamp, fields, uuid)| Message {
            uuid: uuid.to_vec(),
            timestamp: timestamp * 500,
            r#type: texts.0,
            logger: texts.1,
            payload: texts.2,
            env_version: texts.3,
            hostname: texts.4,
            severity,
            pid,
            fields,
        })
}

fn dialect() -> impl Strategy<Value = Dialect> {
    prop_oneof![Just(Dialect::Heka), Just(Dialect::Lsb)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bytecode_agrees_with_the_tree(
        (dialect, text) in dialect().prop_flat_map(|d| (Just(d), expression(d))),
        messages in proptest::collection::vec(random_message(), 1..4),
    ) {
        let Ok(program) = compile(&text, dialect) else {
            prop_assert!(parser::parse(&text, dialect).is_err() || text.len() > 60_000);
            return Ok(());
        };
        let tree = parser::parse(&text, dialect).unwrap();
        for message in &messages {
            let bytes = message.encode_to_vec();
            let view = MessageView::Proto(ProtoView::new(&bytes));
            prop_assert_eq!(
                program.matches(&view),
                tree::evaluate(&tree, message, dialect),
                "{}\n{}", text, program
            );
        }
    }

    #[test]
    fn set_agrees_with_programs_one_by_one(
        (dialect, texts) in dialect().prop_flat_map(|d| {
            (Just(d), proptest::collection::vec(expression(d), 1..12))
        }),
        messages in proptest::collection::vec(random_message(), 1..6),
    ) {
        let programs: Vec<Program> =
            texts.iter().filter_map(|text| compile(text, dialect).ok()).collect();
        let mut set = MatcherSet::new(programs.clone());
        let mut matched = vec![false; set.len()];
        for message in &messages {
            let bytes = message.encode_to_vec();
            let view = MessageView::Proto(ProtoView::new(&bytes));
            set.evaluate(&view, &mut matched);
            let expected: Vec<bool> = programs.iter().map(|p| p.matches(&view)).collect();
            prop_assert_eq!(&matched, &expected);
        }
    }

    #[test]
    fn no_input_panics_the_compiler(text in "\\PC{0,80}", dialect in dialect()) {
        check_compile_does_not_panic(&text, dialect);
    }

    #[test]
    fn no_token_soup_panics_the_compiler(
        parts in proptest::collection::vec(proptest::sample::select(SOUP), 0..24),
        dialect in dialect(),
    ) {
        check_compile_does_not_panic(&parts.concat(), dialect);
    }

    #[test]
    fn no_bytes_panic_the_evaluator(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        (dialect, text) in dialect().prop_flat_map(|d| (Just(d), expression(d))),
    ) {
        if let Ok(program) = compile(&text, dialect) {
            let _ = program.matches(&MessageView::Proto(ProtoView::new(&bytes)));
        }
    }
}

const SOUP: &[&str] = &[
    "Type",
    "Fields[",
    "]",
    "[",
    "0",
    "255",
    "256",
    "(",
    ")",
    "&&",
    "||",
    "==",
    "!=",
    "=~",
    "!~",
    "<",
    ">=",
    "'",
    "\"",
    "/",
    "\\",
    "%",
    "TRUE",
    "FALSE",
    "NIL",
    " ",
    "\n",
    "\t",
    "1e",
    ".",
    "-",
    "+",
    "a",
    "é",
    "Timestamp",
    "Severity",
    "Pid",
    "Uuid",
    "'2015-04-11T17:30:26Z'",
    "[^",
    "%b",
    "%f",
    "$",
    "^",
    "*",
    "?",
];

fn check_compile_does_not_panic(text: &str, dialect: Dialect) {
    match compile(text, dialect) {
        Ok(program) => {
            let _ = program.to_string();
        }
        Err(error) => {
            assert!(error.position() <= text.len());
            let message = error.to_string();
            assert!(message.starts_with("matcher: "), "{message}");
            assert!(!message.contains('\n'), "{message:?}");
        }
    }
}
