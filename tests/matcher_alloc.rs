//! Evaluating matchers allocates nothing once warm: `Program::matches` and
//! `MatcherSet::evaluate`, over headers, fields, the Uuid's text form, literals and regexes.

use gyges::matcher::{compile, Dialect, MatcherSet, Program};
use gyges::message::json::read_json;
use gyges::message::{MessageView, ProtoView};
use prost::Message as _;

use crate::util::allocations_during;

const MESSAGE: &str = r#"{"uuid":"0f8fad5b-d9cb-469f-a165-70867728950e","timestamp":1428773426113040228,"type":"nginx.access","logger":"nginx","severity":6,"payload":"GET /index.html HTTP/1.1 200 512","hostname":"web-1","fields":[{"name":"status","value_type":"integer","value":[200]},{"name":"method","value_type":"string","value":["GET"]},{"name":"ok","value_type":"bool","value":[true]}]}"#;

const EXPRESSIONS: &[(&str, Dialect)] = &[
    ("TRUE", Dialect::Heka),
    ("Type == 'nginx.access' && Severity <= 6", Dialect::Heka),
    (
        "Fields[status] >= 200 && Fields[method] == 'GET' && Fields[ok] == TRUE",
        Dialect::Heka,
    ),
    (
        "Payload =~ /HTTP\\/1\\.[01]\" 2\\d\\d/ || Payload =~ /^GET/",
        Dialect::Heka,
    ),
    ("Uuid =~ /^0f8f/ && Hostname =~ /web/", Dialect::Heka),
    ("Fields[missing] == NIL && EnvVersion == ''", Dialect::Heka),
    (
        "Payload =~ '%d%d%d' && Type =~ '^nginx%.' && Pid == NIL",
        Dialect::Lsb,
    ),
    ("Timestamp > '2015-04-11T17:30:26Z'", Dialect::Lsb),
];

fn programs() -> Vec<Program> {
    EXPRESSIONS
        .iter()
        .map(|&(expression, dialect)| {
            compile(expression, dialect).expect("the expression compiles")
        })
        .collect()
}

#[test]
fn the_counter_counts() {
    assert!(allocations_during(|| drop(std::hint::black_box(Box::new(1u64)))) >= 1);
}

#[test]
fn programs_allocate_nothing_per_message() {
    let bytes = read_json(MESSAGE).expect("a valid message").encode_to_vec();
    let programs = programs();
    // Warm up: regex caches are built on first use on this thread.
    let warm = MessageView::Proto(ProtoView::new(&bytes));
    let expected: Vec<bool> = programs
        .iter()
        .map(|program| program.matches(&warm))
        .collect();
    assert!(
        expected.iter().filter(|&&matched| matched).count() >= 6,
        "{expected:?}"
    );
    let allocations = allocations_during(|| {
        for _ in 0..1000 {
            // A fresh view per message, as the router makes one.
            let view = MessageView::Proto(ProtoView::new(&bytes));
            for (program, &expected) in programs.iter().zip(&expected) {
                assert_eq!(program.matches(&view), expected);
            }
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn matcher_sets_allocate_nothing_per_message() {
    let bytes = read_json(MESSAGE).expect("a valid message").encode_to_vec();
    let mut set = MatcherSet::new(programs());
    let mut matched = vec![false; set.len()];
    set.evaluate(&MessageView::Proto(ProtoView::new(&bytes)), &mut matched);
    let allocations = allocations_during(|| {
        for _ in 0..1000 {
            set.evaluate(&MessageView::Proto(ProtoView::new(&bytes)), &mut matched);
        }
    });
    assert_eq!(allocations, 0);
}
