//! The matcher benchmark: `cargo bench --bench matcher` (`GYGES_BENCH_QUICK=1` for a short run).
//!
//! Measures, on one ~300-byte nginx access-log message in Heka protobuf form:
//! - ns per evaluation of `TRUE`, one header comparison, a 5-clause `&&`/`||` mix over three
//!   headers and two fields, and a regex on Payload; each on a warm view (the message's index
//!   already built, as when several matchers read one message) and on a fresh view per
//!   evaluation (which includes building the index on first read);
//! - with 50 distinct matchers (a realistic aggregator configuration), messages and matcher
//!   evaluations per second on one core, program by program versus through a `MatcherSet`.
//!
//! Prints a Markdown table with the machine and date, and writes the same text to
//! `bench/results/<hostname>-<YYYY-MM-DD>-matcher.md`. Timing is `std::time::Instant` around
//! loops of `std::hint::black_box`ed evaluations, in many short rounds (a few milliseconds each,
//! so that a short disturbance spoils few of them); each figure is the median round, with the
//! fastest and slowest rounds in parentheses.

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Instant;

use gyges::matcher::{compile, Dialect, MatcherSet, Program};
use gyges::message::proto::{Field, Message, ValueType};
use gyges::message::{MessageView, ProtoView};
use prost::Message as _;

/// Rounds per measurement; the median round is reported, with the fastest and slowest.
const ROUNDS: usize = 41;

fn main() {
    // Under `cargo test` (no `--bench` argument) a bench only has to prove it still runs.
    if common::Mode::detect() == common::Mode::Smoke {
        std::env::set_var("GYGES_BENCH_QUICK", "1");
    }
    let quick = std::env::var("GYGES_BENCH_QUICK").is_ok_and(|value| value == "1");
    let scale = if quick { 1 } else { 5 };
    let mut report = String::new();
    header(&mut report, quick);

    let message = nginx_message(0);
    let bytes = message.encode_to_vec();
    let _ = writeln!(
        report,
        "Message: {} bytes of Heka protobuf (9 headers, 6 fields).\n",
        bytes.len()
    );

    single_cases(&mut report, &bytes, scale);
    set_cases(&mut report, scale);

    // One dated report for every bench: this bench's section of it (bench/common).
    let mode = common::Mode::detect();
    let mut section = common::Section::new("matcher", "Matcher evaluation", mode);
    section.line(&report);
    section.publish();
}

const CASES: &[(&str, &str)] = &[
    ("constant", "TRUE"),
    ("one header comparison", "Type == 'nginx.access'"),
    (
        "5-clause mix (3 headers, 2 fields)",
        "Type == 'nginx.access' && Hostname != 'localhost' && \
         (Severity < 4 || Fields[status] >= 200) && Fields[method] == 'GET'",
    ),
    (
        "regex on Payload",
        "Payload =~ /HTTP\\/1\\.[01]\" 2\\d\\d /",
    ),
];

fn single_cases(report: &mut String, bytes: &[u8], scale: u64) {
    let _ = writeln!(report, "## One matcher, one message\n");
    let _ = writeln!(
        report,
        "| case | expression | ops | ns/eval (warm view) | ns/eval (fresh view) |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    let iterations = 20_000 * scale;
    for &(name, expression) in CASES {
        let program = compile(expression, Dialect::Heka).expect("the bench expressions compile");
        let warm_view = MessageView::Proto(ProtoView::new(bytes));
        assert!(
            program.matches(&warm_view),
            "{expression} should match the bench message"
        );
        let warm = timed_ns(iterations, || {
            black_box(program.matches(black_box(&warm_view)));
        });
        let fresh = timed_ns(iterations, || {
            let view = MessageView::Proto(ProtoView::new(black_box(bytes)));
            black_box(program.matches(&view));
        });
        let _ = writeln!(
            report,
            "| {name} | `{}` | {} | {} | {} |",
            expression.replace('|', "\\|"),
            program.ops().len(),
            warm.text(1),
            fresh.text(1),
        );
    }
    let index = timed_ns(iterations, || {
        let view = ProtoView::new(black_box(bytes));
        black_box(view.validate().is_ok());
    });
    let compile_ns = timed_ns(200 * scale, || {
        black_box(compile(black_box(CASES[2].1), Dialect::Heka).is_ok());
    });
    let _ = writeln!(
        report,
        "\nBuilding the message's index alone (what a fresh view adds): {} ns. \
         Compiling the 5-clause expression: {:.2} µs.\n",
        index.text(1),
        compile_ns.median / 1000.0
    );
}

/// Fifty matchers of the kinds an aggregator's filters and outputs use.
fn fifty_expressions() -> Vec<String> {
    let mut expressions = Vec::new();
    for index in 0..20 {
        expressions.push(format!("Type == 'app.service{index}'"));
    }
    for index in 0..8 {
        expressions.push(format!(
            "Type == 'nginx.access' && Fields[status] >= {} && Fields[status] < {}",
            400 + index * 10,
            410 + index * 10
        ));
    }
    for method in ["GET", "POST", "PUT", "DELETE", "HEAD"] {
        expressions.push(format!(
            "Type == 'nginx.access' && Fields[method] == '{method}'"
        ));
    }
    for index in 0..5 {
        expressions.push(format!("Logger == 'svc{index}' && Severity <= 3"));
    }
    for index in 0..5 {
        expressions.push(format!(
            "Hostname =~ /^web-{index}\\./ && Type =~ /^nginx\\./"
        ));
    }
    expressions.push("Type == 'nginx.access' && Payload =~ /\" 5\\d\\d /".into());
    expressions.push("Payload =~ /(?i)(bot|crawler|spider)/".into());
    expressions.push("Type =~ /^heka\\.sandbox\\./ || Type == 'heka.all-report'".into());
    expressions.push("Fields[request_time] > 1.0 && Type == 'nginx.access'".into());
    expressions.push("Severity <= 2 || Fields[level] == 'error'".into());
    expressions.push("Type == 'nginx.access' && Fields[status] != NIL && Hostname != ''".into());
    expressions.push("Fields[user_agent] =~ /Mozilla/ && Fields[method] == 'GET'".into());
    assert_eq!(expressions.len(), 50);
    expressions
}

/// Fifty filters that each route one message type, the commonest Heka configuration.
fn fifty_routes() -> Vec<String> {
    let mut expressions: Vec<String> = (0..49)
        .map(|index| format!("Type == 'app.service{index}' && Severity < 7"))
        .collect();
    expressions.push("Type == 'nginx.access' && Fields[status] >= 500".into());
    expressions
}

fn set_cases(report: &mut String, scale: u64) {
    let _ = writeln!(
        report,
        "## 50 matchers, one core
"
    );
    let corpus: Vec<Vec<u8>> = (0..16)
        .map(|index| nginx_message(index).encode_to_vec())
        .collect();
    let _ = writeln!(
        report,
        "Corpus: {} messages (nginx and app types), a fresh view per message. A matcher \
         evaluation is one program's verdict on one message.\n",
        corpus.len()
    );
    let _ = writeln!(
        report,
        "| configuration | strategy | ns/message | messages/s | matcher evaluations/s |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|");
    let mut notes = String::new();
    for (name, expressions) in [
        ("mixed aggregator (below)", fifty_expressions()),
        ("routing by Type", fifty_routes()),
    ] {
        set_case(report, &mut notes, name, &expressions, &corpus, scale);
    }
    let _ = writeln!(report, "\n{notes}");
    let _ = writeln!(report, "The mixed aggregator configuration:\n");
    for expression in fifty_expressions() {
        let _ = writeln!(report, "    {expression}");
    }
    let _ = writeln!(report);
}

fn set_case(
    report: &mut String,
    notes: &mut String,
    name: &str,
    expressions: &[String],
    corpus: &[Vec<u8>],
    scale: u64,
) {
    let programs: Vec<Program> = expressions
        .iter()
        .map(|expression| {
            compile(expression, Dialect::Heka).expect("the bench expressions compile")
        })
        .collect();
    let ops: usize = programs.iter().map(|program| program.ops().len()).sum();
    let mut set = MatcherSet::new(programs.clone());

    // Both ways agree on every message of the corpus.
    let mut matched = vec![false; programs.len()];
    let mut matches_total = 0;
    for bytes in corpus {
        let view = MessageView::Proto(ProtoView::new(bytes));
        set.evaluate(&view, &mut matched);
        for (program, &verdict) in programs.iter().zip(&matched) {
            assert_eq!(program.matches(&view), verdict, "{}", program.source());
        }
        matches_total += matched.iter().filter(|&&verdict| verdict).count();
    }

    let messages = 1_000 * scale;
    let mut cursor = 0usize;
    let one_by_one = timed_ns(messages, || {
        let bytes = &corpus[cursor % corpus.len()];
        cursor += 1;
        let view = MessageView::Proto(ProtoView::new(black_box(bytes)));
        for (program, slot) in programs.iter().zip(matched.iter_mut()) {
            *slot = program.matches(&view);
        }
        black_box(&matched);
    });
    let mut cursor = 0usize;
    let shared = timed_ns(messages, || {
        let bytes = &corpus[cursor % corpus.len()];
        cursor += 1;
        let view = MessageView::Proto(ProtoView::new(black_box(bytes)));
        set.evaluate(&view, &mut matched);
        black_box(&matched);
    });
    for (strategy, timing) in [
        ("one by one (`Program::matches`)", one_by_one),
        ("`MatcherSet::evaluate`", shared),
    ] {
        let per_second = 1e9 / timing.median;
        let _ = writeln!(
            report,
            "| {name} | {strategy} | {} | {:.2} M | {:.1} M |",
            timing.text(0),
            per_second / 1e6,
            per_second * programs.len() as f64 / 1e6
        );
    }
    let _ = writeln!(
        notes,
        "- {name}: {} programs, {ops} ops; the set shares them as {} distinct tests over {} \
         subjects, with {} equality lookup table(s); {:.1} matches per message. The set is \
         {:.1}x as fast (median rounds; {:.1}x comparing the fastest).",
        programs.len(),
        set.test_count(),
        set.read_count(),
        set.group_count(),
        matches_total as f64 / corpus.len() as f64,
        one_by_one.median / shared.median,
        one_by_one.fastest / shared.fastest
    );
}

/// Nanoseconds per call: the median round, the fastest and the slowest.
#[derive(Clone, Copy)]
struct Timing {
    fastest: f64,
    median: f64,
    slowest: f64,
}

impl Timing {
    fn text(self, decimals: usize) -> String {
        format!(
            "{:.*} ({:.*}–{:.*})",
            decimals, self.median, decimals, self.fastest, decimals, self.slowest
        )
    }
}

/// Times [`ROUNDS`] rounds of `iterations` calls of `work`.
fn timed_ns(iterations: u64, mut work: impl FnMut()) -> Timing {
    // Warm up caches, branch predictors and regex caches.
    for _ in 0..iterations {
        work();
    }
    let mut rounds: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                work();
            }
            start.elapsed().as_nanos() as f64 / iterations as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    Timing {
        fastest: rounds[0],
        median: rounds[ROUNDS / 2],
        slowest: rounds[ROUNDS - 1],
    }
}

fn field(name: &str, value_type: ValueType) -> Field {
    Field {
        name: name.into(),
        value_type: Some(value_type as i32),
        ..Field::default()
    }
}

/// A ~300-byte nginx access-log message; `variant` varies Type, status, method and host.
fn nginx_message(variant: usize) -> Message {
    let methods = ["GET", "POST", "GET", "PUT", "GET", "DELETE", "GET", "HEAD"];
    let statuses = [200, 404, 200, 500, 301, 200, 429, 200];
    let method = methods[variant % methods.len()];
    let status = statuses[variant % statuses.len()];
    let type_ = match variant % 4 {
        0 | 1 => "nginx.access".to_string(),
        2 => format!("app.service{}", variant % 20),
        _ => "heka.sandbox.counter".to_string(),
    };
    Message {
        uuid: vec![0x0f, 0x8f, 0xad, 0x5b, 0xd9, 0xcb, 0x46, 0x9f, 0xa1, 0x65, 0x70, 0x86, 0x77, 0x28, 0x95, variant as u8],
        timestamp: 1_428_773_426_113_040_228 + variant as i64,
        r#type: Some(type_),
        logger: Some("nginx".into()),
        severity: Some(6),
        payload: Some(format!(
            "192.168.1.10 - - [11/Apr/2015:17:30:26 +0000] \"{method} /api/v1/items?page=2 HTTP/1.1\" {status} 5123 \"-\" \"Mozilla/5.0\""
        )),
        env_version: Some("1".into()),
        pid: Some(4242),
        hostname: Some(format!("web-{}.example.com", variant % 6)),
        fields: vec![
            Field { value_string: vec!["192.168.1.10".into()], ..field("remote_addr", ValueType::String) },
            Field { value_string: vec![method.into()], ..field("method", ValueType::String) },
            Field { value_integer: vec![status], ..field("status", ValueType::Integer) },
            Field { value_integer: vec![5123], ..field("body_bytes_sent", ValueType::Integer) },
            Field { value_double: vec![0.023], ..field("request_time", ValueType::Double) },
            Field { value_string: vec!["Mozilla/5.0".into()], ..field("user_agent", ValueType::String) },
        ],
    }
}

fn header(report: &mut String, quick: bool) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism()
        .map(|count| count.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let _ = writeln!(report, "# Matcher benchmark — {}\n", today());
    let _ = writeln!(
        report,
        "Machine: {} — CPU: {cpu}, {cores} core(s) available — kernel {kernel} — {rustc}. \
         Mode: {}. Single-threaded; ns figures are the median of {ROUNDS} rounds, with the \
         fastest and slowest rounds in parentheses.\n",
        hostname(),
        if quick {
            "quick (GYGES_BENCH_QUICK=1)"
        } else {
            "full"
        }
    );
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|text| text.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Today's UTC date as YYYY-MM-DD.
fn today() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0);
    // Civil from days (proleptic Gregorian), after Howard Hinnant's algorithm.
    let days = seconds.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
