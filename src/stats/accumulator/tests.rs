//! Tests of the statsd accumulator: known traffic rolled up to known lines, namespaces and
//! prefixes, sample rates, percent thresholds and idle-stat deletion.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::message::proto::{Message, ValueType};
use crate::stats::statsd::parse_datagram;
use proptest::prelude::*;
use prost::Message as _;

/// 2023-11-14T22:13:20.5Z.
const NOW_NS: i64 = 1_700_000_000_500_000_000;

fn feed(accumulator: &mut Accumulator, datagram: &str) {
    for stat in parse_datagram(datagram.as_bytes()) {
        accumulator
            .add(&stat.expect("a valid seed line"))
            .expect("room");
    }
}

fn payload(rollup: &Rollup) -> &str {
    std::str::from_utf8(rollup.payload()).expect("lines are text")
}

/// Adds ` 1700000000` to every line of `lines`.
fn lines(lines: &[&str]) -> String {
    lines
        .iter()
        .map(|line| format!("{line} 1700000000\n"))
        .collect()
}

const TRAFFIC: &str = "gorets:1|c\ngorets:1|c\ngorets:1|c\ngorets:1|c|@0.1\n\
        gaugor:333|g\ngaugor:-10|g\ngaugor:+4|g\n\
        glork:3|ms\nglork:1|ms\nglork:2|ms:4|ms:5|ms\nglork:10|ms|@0.5\nglork:9|ms\n\
        glork:8|ms\nglork:7|ms\nglork:6|ms\n\
        uniques:765|s\nuniques:765|s\nuniques:766|s";

#[test]
fn known_traffic_rolls_up_to_the_known_lines() {
    let mut accumulator = Accumulator::with_seed(AccumulatorSettings::default(), 1);
    feed(&mut accumulator, TRAFFIC);
    let rollup = accumulator.flush(NOW_NS);
    let expected = lines(&[
        "stats.counters.gorets.rate 1.300000",
        "stats.counters.gorets.count 13",
        "stats.gauges.gaugor 327.000000",
        "stats.timers.glork.count 10",
        "stats.timers.glork.count_ps 1.000000",
        "stats.timers.glork.lower 1.000000",
        "stats.timers.glork.upper 10.000000",
        "stats.timers.glork.sum 55.000000",
        "stats.timers.glork.mean 5.500000",
        "stats.timers.glork.mean_90 5.000000",
        "stats.timers.glork.upper_90 9.000000",
        "stats.sets.uniques.count 2",
        "stats.statsd.numStats 4",
    ]);
    assert_eq!(payload(&rollup), expected);
    assert_eq!(rollup.stats_count(), 4);
    assert_eq!(rollup.timestamp_seconds(), 1_700_000_000);

    // The next interval, with nothing new: zeros, and the gauge keeps its value.
    let rollup = accumulator.flush(NOW_NS + 10_000_000_000);
    let expected: String = [
        "stats.counters.gorets.rate 0.000000",
        "stats.counters.gorets.count 0",
        "stats.gauges.gaugor 327.000000",
        "stats.timers.glork.count 0",
        "stats.timers.glork.count_ps 0.000000",
        "stats.timers.glork.lower 0.000000",
        "stats.timers.glork.upper 0.000000",
        "stats.timers.glork.sum 0.000000",
        "stats.timers.glork.mean 0.000000",
        "stats.timers.glork.mean_90 0.000000",
        "stats.timers.glork.upper_90 0.000000",
        "stats.sets.uniques.count 0",
        "stats.statsd.numStats 4",
    ]
    .iter()
    .map(|line| format!("{line} 1700000010\n"))
    .collect();
    assert_eq!(payload(&rollup), expected);
}

#[test]
fn legacy_namespaces_and_custom_prefixes() {
    let settings = AccumulatorSettings {
        legacy_namespaces: true,
        ticker_interval_seconds: 4,
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings, 1);
    feed(&mut accumulator, "gorets:10|c\ngaugor:5|g");
    let expected = lines(&[
        "stats.gorets 2.500000",
        "stats_counts.gorets 10",
        "stats.gauges.gaugor 5.000000",
        "statsd.numStats 2",
    ]);
    assert_eq!(payload(&accumulator.flush(NOW_NS)), expected);

    let settings = AccumulatorSettings {
        global_prefix: "g.".into(),
        counter_prefix: "".into(),
        timer_prefix: "t".into(),
        gauge_prefix: "ga".into(),
        set_prefix: "s".into(),
        statsd_prefix: "sd".into(),
        percent_thresholds: vec![],
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings, 1);
    feed(
        &mut accumulator,
        "c:1|c\nga:1|g\nt:1|ms\nset:a|s\nends.:2|c",
    );
    let expected = lines(&[
        "g.c.rate 0.100000",
        "g.c.count 1",
        // A name ending in a dot gets no second one, as in Heka.
        "g.ends.rate 0.200000",
        "g.ends.count 2",
        "g.ga.ga 1.000000",
        "g.t.t.count 1",
        "g.t.t.count_ps 0.100000",
        "g.t.t.lower 1.000000",
        "g.t.t.upper 1.000000",
        "g.t.t.sum 1.000000",
        "g.t.t.mean 1.000000",
        "g.s.set.count 1",
        "g.sd.numStats 5",
    ]);
    assert_eq!(payload(&accumulator.flush(NOW_NS)), expected);
}

#[test]
fn sample_rates_scale_counters_in_single_precision_and_truncate() {
    let mut accumulator = Accumulator::with_seed(AccumulatorSettings::default(), 1);
    // 1 / 0.3 = 3.33..: each stat adds 3. 0.5 at rate 0.5 adds 1. 2.9 adds 2.
    feed(
        &mut accumulator,
        "a:1|c|@0.3\na:1|c|@0.3\nb:0.5|c|@0.5\nc:2.9|c\nd:-1.5|c",
    );
    let text = payload(&accumulator.flush(NOW_NS)).to_owned();
    assert!(text.contains("stats.counters.a.count 6 "), "{text}");
    assert!(text.contains("stats.counters.b.count 1 "), "{text}");
    assert!(text.contains("stats.counters.c.count 2 "), "{text}");
    assert!(text.contains("stats.counters.d.count -1 "), "{text}");
    assert!(text.contains("stats.counters.d.rate -0.100000 "), "{text}");
}

#[test]
fn several_percent_thresholds_and_small_counts() {
    let settings = AccumulatorSettings {
        percent_thresholds: vec![50, 90, 99, 10, 100],
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings, 1);
    feed(
        &mut accumulator,
        "t:10|ms:9|ms:8|ms:7|ms:6|ms:5|ms:4|ms:3|ms:2|ms:1|ms",
    );
    feed(&mut accumulator, "one:7|ms\ntwo:1|ms:3|ms");
    let text = payload(&accumulator.flush(NOW_NS)).to_owned();
    for line in [
        "stats.timers.t.mean_50 3.000000",
        "stats.timers.t.upper_50 5.000000",
        "stats.timers.t.mean_90 5.000000",
        "stats.timers.t.upper_90 9.000000",
        "stats.timers.t.mean_99 5.500000",
        "stats.timers.t.upper_99 10.000000",
        "stats.timers.t.mean_10 1.000000",
        "stats.timers.t.upper_10 1.000000",
        "stats.timers.t.mean_100 5.500000",
        "stats.timers.t.upper_100 10.000000",
        "stats.timers.one.mean_90 7.000000",
        "stats.timers.one.upper_90 7.000000",
        // Two samples, 50%: one kept. 10%: none kept, so lower and upper stand in.
        "stats.timers.two.mean_50 1.000000",
        "stats.timers.two.upper_50 1.000000",
        "stats.timers.two.mean_10 1.000000",
        "stats.timers.two.upper_10 3.000000",
    ] {
        assert!(
            text.contains(&format!("{line} 1700000000\n")),
            "{line} in\n{text}"
        );
    }
}

#[test]
fn delete_idle_stats_emits_only_what_moved() {
    let settings = AccumulatorSettings {
        delete_idle_stats: true,
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings, 1);
    feed(&mut accumulator, TRAFFIC);
    assert_eq!(accumulator.flush(NOW_NS).stats_count(), 4);
    // Nothing new: only numStats, and every stat is forgotten.
    let rollup = accumulator.flush(NOW_NS);
    assert_eq!(payload(&rollup), lines(&["stats.statsd.numStats 0"]));
    assert!(accumulator.is_empty());
    // A relative gauge after deletion starts from zero, as after Heka's delete.
    feed(&mut accumulator, "gaugor:+4|g\nkept:1|c");
    feed(&mut accumulator, "");
    let rollup = accumulator.flush(NOW_NS);
    let expected = lines(&[
        "stats.counters.kept.rate 0.100000",
        "stats.counters.kept.count 1",
        "stats.gauges.gaugor 4.000000",
        "stats.statsd.numStats 2",
    ]);
    assert_eq!(payload(&rollup), expected);
    // A gauge touched every interval is emitted every interval but forgets its value.
    feed(&mut accumulator, "gaugor:+1|g");
    assert!(payload(&accumulator.flush(NOW_NS)).contains("stats.gauges.gaugor 1.000000"));
}

#[test]
fn gauges_absolute_and_relative() {
    let mut accumulator = Accumulator::with_seed(AccumulatorSettings::default(), 1);
    feed(&mut accumulator, "g:+5|g\ng:-2|g");
    assert!(payload(&accumulator.flush(NOW_NS)).contains("stats.gauges.g 3.000000 "));
    // Without delete_idle_stats the value carries over into relative changes.
    feed(&mut accumulator, "g:+0.5|g");
    assert!(payload(&accumulator.flush(NOW_NS)).contains("stats.gauges.g 3.500000 "));
    feed(&mut accumulator, "g:-7|g\ng:2|g");
    assert!(payload(&accumulator.flush(NOW_NS)).contains("stats.gauges.g 2.000000 "));
}

#[test]
fn fields_are_heka_fields() {
    let settings = AccumulatorSettings {
        emit_in_fields: true,
        emit_in_payload: false,
        legacy_namespaces: true,
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings, 1);
    feed(&mut accumulator, "gorets:13|c\nglork:2|ms");
    let rollup = accumulator.flush(NOW_NS);
    assert!(rollup.payload().is_empty());
    let headers = InjectHeaders {
        uuid: [1; 16],
        timestamp_ns: NOW_NS,
        type_: b"heka.statmetric",
        logger: b"StatAccumInput",
        hostname: b"h",
        pid: 7,
    };
    let mut messages = Vec::new();
    let mut out = Vec::new();
    let outcome = encode_statmetric(
        &rollup,
        &headers,
        || [2; 16],
        65536,
        &mut out,
        |m| messages.push(m.to_vec()),
    );
    assert_eq!(
        outcome,
        EncodeOutcome {
            messages: 1,
            lines_dropped: 0
        }
    );
    let message = Message::decode(messages[0].as_slice()).expect("valid protobuf");
    assert_eq!(message.payload.as_deref(), Some(""));
    assert_eq!(message.r#type.as_deref(), Some("heka.statmetric"));
    type Row = (String, Option<i32>, Option<String>, Vec<i64>, Vec<f64>);
    let fields: Vec<Row> = message
        .fields
        .iter()
        .map(|field| {
            (
                field.name.clone(),
                field.value_type,
                field.representation.clone(),
                field.value_integer.clone(),
                field.value_double.clone(),
            )
        })
        .collect();
    let int = Some(ValueType::Integer as i32);
    let double = Some(ValueType::Double as i32);
    let empty = Some(String::new());
    let expected = [
        (
            "timestamp".to_string(),
            int,
            empty.clone(),
            vec![1_700_000_000],
            vec![],
        ),
        ("stats.gorets".into(), int, empty.clone(), vec![1], vec![]),
        (
            "stats_counts.gorets".into(),
            int,
            empty.clone(),
            vec![13],
            vec![],
        ),
        (
            "stats.timers.glork.count".into(),
            int,
            empty.clone(),
            vec![1],
            vec![],
        ),
        (
            "stats.timers.glork.count_ps".into(),
            double,
            empty.clone(),
            vec![],
            vec![0.1],
        ),
    ];
    assert_eq!(fields[..5], expected[..]);
    assert_eq!(fields.len(), 1 + 2 + 8 + 1);
    assert_eq!(fields.last().map(|f| f.0.as_str()), Some("statsd.numStats"));
}

#[test]
fn large_rollups_split_into_messages_at_line_boundaries() {
    let settings = AccumulatorSettings {
        emit_in_fields: true,
        ..AccumulatorSettings::default()
    };
    let mut accumulator = Accumulator::with_seed(settings, 1);
    for index in 0..500 {
        feed(&mut accumulator, &format!("counter.number.{index:04}:1|c"));
    }
    let rollup = accumulator.flush(NOW_NS);
    let headers = InjectHeaders {
        uuid: [1; 16],
        timestamp_ns: NOW_NS,
        type_: b"heka.statmetric",
        logger: b"StatAccumInput",
        hostname: b"h",
        pid: 7,
    };
    let mut payloads = String::new();
    let mut field_names = Vec::new();
    let mut uuids = BTreeSet::new();
    let mut out = Vec::new();
    let mut next = 1u8;
    let outcome = encode_statmetric(
        &rollup,
        &headers,
        || {
            next += 1;
            [next; 16]
        },
        8 * 1024,
        &mut out,
        |bytes| {
            assert!(bytes.len() <= 8 * 1024);
            let message = Message::decode(bytes).expect("valid protobuf");
            uuids.insert(message.uuid.clone());
            assert_eq!(message.fields[0].name, "timestamp");
            field_names.extend(message.fields[1..].iter().map(|f| f.name.clone()));
            payloads.push_str(message.payload.as_deref().unwrap_or_default());
        },
    );
    assert!(outcome.messages > 1, "{outcome:?}");
    assert_eq!(outcome.lines_dropped, 0);
    assert_eq!(uuids.len(), outcome.messages);
    assert_eq!(payloads.as_bytes(), rollup.payload());
    assert_eq!(field_names.len(), rollup.lines());
    // A limit too small for any line drops every line and counts them.
    let outcome = encode_statmetric(&rollup, &headers, || [0; 16], 64, &mut out, |_| {});
    assert_eq!(outcome.messages, 0);
    assert_eq!(outcome.lines_dropped, rollup.lines());
}

#[test]
fn bounds_drop_and_count() {
    let mut accumulator = Accumulator::with_seed(AccumulatorSettings::default(), 1);
    let mut name = Vec::new();
    for index in 0..STATS_PER_ACCUMULATOR_MAX {
        name.clear();
        name.extend_from_slice(format!("c{index}").as_bytes());
        let stat = Stat {
            name: &name,
            kind: StatKind::Counter,
            value: StatValue::Number(1.0),
            sample_rate: 1.0,
        };
        accumulator.add(&stat).expect("room");
    }
    let new = Stat {
        name: b"one.too.many",
        kind: StatKind::Gauge,
        value: StatValue::Number(1.0),
        sample_rate: 1.0,
    };
    assert_eq!(accumulator.add(&new), Err(AddError::Full));
    let known = Stat { name: b"c0", ..new };
    assert_eq!(
        accumulator.add(&Stat {
            kind: StatKind::Counter,
            ..known
        }),
        Ok(())
    );
    assert_eq!(accumulator.stats().stats_dropped_full, 1);
    let wrong = Stat {
        value: StatValue::Member(b"x"),
        ..known
    };
    assert_eq!(accumulator.add(&wrong), Err(AddError::WrongValue));

    let mut accumulator = Accumulator::with_seed(AccumulatorSettings::default(), 1);
    let mut member = Vec::new();
    for index in 0..SET_MEMBERS_MAX + 10 {
        member.clear();
        member.extend_from_slice(format!("m{index}").as_bytes());
        let stat = Stat {
            name: b"users",
            kind: StatKind::Set,
            value: StatValue::Member(&member),
            sample_rate: 1.0,
        };
        accumulator.add(&stat).expect("room");
    }
    assert_eq!(accumulator.stats().set_members_dropped, 10);
    let text = payload(&accumulator.flush(NOW_NS)).to_owned();
    assert!(text.contains(&format!("stats.sets.users.count {SET_MEMBERS_MAX} ")));
}

#[test]
fn timer_reservoir_keeps_exact_figures_and_plausible_percentiles() {
    let mut accumulator = Accumulator::with_seed(AccumulatorSettings::default(), 7);
    let samples = 4 * TIMER_SAMPLES_MAX;
    for index in 0..samples {
        let stat = Stat {
            name: b"t",
            kind: StatKind::Timer,
            value: StatValue::Number(index as f64),
            sample_rate: 1.0,
        };
        accumulator.add(&stat).expect("room");
    }
    assert_eq!(
        accumulator.stats().timer_samples_sampled,
        (samples - TIMER_SAMPLES_MAX) as u64
    );
    let text = payload(&accumulator.flush(NOW_NS)).to_owned();
    let value = |name: &str| -> f64 {
        let line = text
            .lines()
            .find(|line| line.starts_with(&format!("stats.timers.t.{name} ")))
            .expect("line present");
        line.split(' ')
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("a number")
    };
    let n = samples as f64;
    assert_eq!(value("count"), n);
    assert_eq!(value("lower"), 0.0);
    assert_eq!(value("upper"), n - 1.0);
    assert_eq!(value("sum"), n * (n - 1.0) / 2.0);
    assert_eq!(value("mean"), (n - 1.0) / 2.0);
    // A uniform reservoir of 16384 puts the 90th percentile within 2% of the truth.
    let upper_90 = value("upper_90");
    assert!((upper_90 - 0.9 * n).abs() < 0.02 * n, "upper_90 {upper_90}");
    // Memory is given back after the burst.
    feed(&mut accumulator, "t:1|ms");
    accumulator.flush(NOW_NS);
    let timer = accumulator.timers.get(&b"t"[..]).expect("timer kept");
    assert!(
        timer.samples.capacity() <= 66,
        "{}",
        timer.samples.capacity()
    );
    assert_eq!(accumulator.timer_samples_total, 0);
}

#[test]
fn threshold_names() {
    for (percent, expected) in [
        (0u8, "mean_0"),
        (9, "mean_9"),
        (90, "mean_90"),
        (100, "mean_100"),
    ] {
        let mut buffer = [0u8; 9];
        assert_eq!(
            threshold_name(&mut buffer, b"mean_", percent),
            expected.as_bytes()
        );
    }
}

/// The naive model: what the rollup must say, computed the obvious way.
fn oracle(stats: &[(u8, u8, i32)], thresholds: &[u8]) -> String {
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    let mut gauges: BTreeMap<String, f64> = BTreeMap::new();
    let mut timers: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut sets: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
    for &(kind, name, value) in stats {
        let name = format!("n{name}");
        match kind {
            0 => *counters.entry(name).or_default() += i64::from(value),
            1 => timers.entry(name).or_default().push(f64::from(value.abs())),
            2 => {
                gauges.insert(name, f64::from(value));
            }
            _ => {
                sets.entry(name).or_default().insert(value);
            }
        }
    }
    let mut out = String::new();
    let mut line =
        |name: String, value: String| out.push_str(&format!("{name} {value} 1700000000\n"));
    for (name, count) in &counters {
        line(
            format!("stats.counters.{name}.rate"),
            format!("{:.6}", *count as f64 / 10.0),
        );
        line(format!("stats.counters.{name}.count"), count.to_string());
    }
    for (name, value) in &gauges {
        line(format!("stats.gauges.{name}"), format!("{value:.6}"));
    }
    for (name, samples) in &mut timers {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let sum: f64 = samples.iter().sum();
        let key = format!("stats.timers.{name}");
        line(format!("{key}.count"), n.to_string());
        line(format!("{key}.count_ps"), format!("{:.6}", n as f64 / 10.0));
        line(format!("{key}.lower"), format!("{:.6}", samples[0]));
        line(format!("{key}.upper"), format!("{:.6}", samples[n - 1]));
        line(format!("{key}.sum"), format!("{sum:.6}"));
        line(format!("{key}.mean"), format!("{:.6}", sum / n as f64));
        for &percent in thresholds {
            let dropped = ((100.0 - f64::from(percent)) / 100.0 * n as f64 + 0.5).floor();
            let kept = n - dropped as usize;
            let (mean, upper) = if kept == 0 {
                (samples[0], samples[n - 1])
            } else {
                (
                    samples[..kept].iter().sum::<f64>() / kept as f64,
                    samples[kept - 1],
                )
            };
            line(format!("{key}.mean_{percent}"), format!("{mean:.6}"));
            line(format!("{key}.upper_{percent}"), format!("{upper:.6}"));
        }
    }
    for (name, members) in &sets {
        line(
            format!("stats.sets.{name}.count"),
            members.len().to_string(),
        );
    }
    let total = counters.len() + gauges.len() + timers.len() + sets.len();
    line("stats.statsd.numStats".into(), total.to_string());
    out
}

proptest! {
    #[test]
    fn rollups_match_the_naive_model(
        stats in proptest::collection::vec((0u8..4, 0u8..5, -1000i32..1000), 0..200),
        thresholds in proptest::collection::vec(0u8..=100, 0..4),
    ) {
        let settings = AccumulatorSettings {
            percent_thresholds: thresholds.clone(),
            ..AccumulatorSettings::default()
        };
        let mut accumulator = Accumulator::with_seed(settings, 3);
        let mut member = String::new();
        for &(kind, name, value) in &stats {
            let name = format!("n{name}");
            member.clear();
            member.push_str(&value.to_string());
            let (kind, value) = match kind {
                0 => (StatKind::Counter, StatValue::Number(f64::from(value))),
                1 => (StatKind::Timer, StatValue::Number(f64::from(value.abs()))),
                2 => (StatKind::Gauge, StatValue::Number(f64::from(value))),
                _ => (StatKind::Set, StatValue::Member(member.as_bytes())),
            };
            let stat = Stat { name: name.as_bytes(), kind, value, sample_rate: 1.0 };
            prop_assert!(accumulator.add(&stat).is_ok());
        }
        let rollup = accumulator.flush(NOW_NS);
        prop_assert_eq!(payload(&rollup), oracle(&stats, &thresholds));
    }
}
