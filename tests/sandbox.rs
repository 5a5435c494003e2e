//! End-to-end tests of the Lua sandbox through the library API, with the scripts in
//! `tests/lua/`: a counting filter with ticks and preservation, an lpeg decoder, an encoder,
//! and runaway scripts that are terminated while a neighbour loses nothing.

use std::path::{Path, PathBuf};

use gyges::decoder::sandbox::{Decoded, SandboxDecoder};
use gyges::encoder::sandbox::{Encoded, SandboxEncoder};
use gyges::filter::sandbox::SandboxFilter;
use gyges::message::proto::Message;
use gyges::message::{LineMeta, LineView, MessageView, ProtoView};
use gyges::sandbox::{injected_records, CallStatus, HostInfo, SandboxConfig};
use prost::Message as _;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua")
        .join(name)
}

fn host(dir: &Path) -> HostInfo {
    HostInfo {
        hostname: "e2e-host".into(),
        base_dir: dir.join("base"),
        share_dir: dir.join("share"),
        ..HostInfo::default()
    }
}

fn message(type_: &str, payload: &str) -> Vec<u8> {
    Message {
        uuid: vec![9; 16],
        timestamp: 1_000_000_000,
        r#type: Some(type_.into()),
        payload: Some(payload.into()),
        ..Message::default()
    }
    .encode_to_vec()
}

fn decode_all(sink: &[u8]) -> Vec<Message> {
    injected_records(sink)
        .map(|record| Message::decode(record).expect("protobuf"))
        .collect()
}

#[test]
fn counter_filter_reports_each_tick_and_keeps_counts_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let config = SandboxConfig {
        preserve_data: true,
        ticker_interval: 60,
        ..SandboxConfig::new(script("counter_filter.lua"))
    };
    let mut sink = Vec::new();
    {
        let mut filter = SandboxFilter::new("Counter", &config, &host).unwrap();
        assert_eq!(filter.ticker_interval_s(), 60);
        for (type_, count) in [("nginx", 3), ("syslog", 2)] {
            for _ in 0..count {
                let bytes = message(type_, "x");
                let status =
                    filter.process_message(&MessageView::Proto(ProtoView::new(&bytes)), &mut sink);
                assert_eq!(status, Ok(CallStatus::Ok));
            }
        }
        filter.timer_event(60_000_000_000, &mut sink).unwrap();
        let reports = decode_all(&sink);
        assert_eq!(reports.len(), 1);
        assert_eq!(
            reports[0].payload.as_deref(),
            Some("nginx\t3\nsyslog\t2\ntotal\t5\n")
        );
        assert_eq!(reports[0].r#type.as_deref(), Some("heka.sandbox-output"));
        assert_eq!(reports[0].logger.as_deref(), Some("Counter"));
        assert_eq!(filter.stats().process_message_count, 5);
        filter.shutdown(0, &mut sink).unwrap();
    }
    sink.clear();
    let mut filter = SandboxFilter::new("Counter", &config, &host).unwrap();
    let bytes = message("nginx", "x");
    filter
        .process_message(&MessageView::Proto(ProtoView::new(&bytes)), &mut sink)
        .unwrap();
    filter.timer_event(120_000_000_000, &mut sink).unwrap();
    let reports = decode_all(&sink);
    assert_eq!(
        reports[0].payload.as_deref(),
        Some("nginx\t4\nsyslog\t2\ntotal\t6\n")
    );
}

#[test]
fn lpeg_decoder_parses_lines_into_fields() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let config = SandboxConfig::new(script("access_decoder.lua"));
    let mut decoder = SandboxDecoder::new("AccessDecoder", &config, &host).unwrap();
    let meta = LineMeta {
        type_: b"file".to_vec().into(),
        logger: b"access.log".to_vec().into(),
        hostname: b"web7".to_vec().into(),
    };
    let lines: [&[u8]; 2] = [
        b"10.0.0.1 - alice [10/Oct/2000:13:55:36 +0000] \"GET /index.html HTTP/1.1\" 200 2326",
        b"10.0.0.2 - - [01/Jan/2024:00:00:01 +0000] \"POST /api HTTP/2\" 503 -",
    ];
    let mut out = Vec::new();
    for line in lines {
        let view = LineView {
            payload: line,
            uuid: [1; 16],
            timestamp: 5,
            meta: &meta,
        };
        assert_eq!(
            decoder.decode(&MessageView::Line(view), &mut out),
            Ok(Decoded::Messages(1))
        );
    }
    let decoded = decode_all(&out);
    assert_eq!(decoded.len(), 2);
    let first = &decoded[0];
    assert_eq!(first.r#type.as_deref(), Some("nginx.access"));
    assert_eq!(
        first.timestamp, 971_186_136_000_000_000,
        "parsed from the line"
    );
    assert_eq!(
        first.logger.as_deref(),
        Some("access.log"),
        "copied from the record"
    );
    assert_eq!(
        first.hostname.as_deref(),
        Some("web7"),
        "copied from the record"
    );
    assert_ne!(first.uuid, vec![1; 16], "a decoded message gets a new Uuid");
    let field = |message: &Message, name: &str| {
        message
            .fields
            .iter()
            .find(|field| field.name == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(field(first, "status").value_integer, vec![200]);
    assert_eq!(field(first, "body_bytes_sent").value_integer, vec![2326]);
    assert_eq!(
        field(first, "body_bytes_sent").representation.as_deref(),
        Some("B")
    );
    assert_eq!(field(first, "method").value_string, vec!["GET".to_string()]);
    assert_eq!(
        field(first, "path").value_string,
        vec!["/index.html".to_string()]
    );
    assert_eq!(
        field(first, "remote_user").value_string,
        vec!["alice".to_string()]
    );
    assert_eq!(decoded[1].timestamp, 1_704_067_201_000_000_000);
    assert_eq!(field(&decoded[1], "status").value_integer, vec![503]);
    assert_eq!(field(&decoded[1], "body_bytes_sent").value_integer, vec![0]);

    let before = out.len();
    let view = LineView {
        payload: b"not a log line",
        uuid: [1; 16],
        timestamp: 5,
        meta: &meta,
    };
    assert_eq!(
        decoder.decode(&MessageView::Line(view), &mut out),
        Ok(Decoded::Failed)
    );
    assert_eq!(out.len(), before);
    assert_eq!(
        decoder.last_error(),
        "line does not match the access log grammar"
    );
    assert_eq!(decoder.stats().process_message_failures, 1);
}

#[test]
fn encoder_writes_lines_skips_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let config = SandboxConfig::new(script("line_encoder.lua"));
    let mut encoder = SandboxEncoder::new("LineEncoder", &config, &host).unwrap();
    let mut out = Vec::new();
    let bytes = message("web", "hello");
    assert_eq!(
        encoder.encode(&MessageView::Proto(ProtoView::new(&bytes)), &mut out),
        Ok(Encoded::Bytes)
    );
    assert_eq!(out, b"web hello status=-\n");
    let bytes = message("skip", "x");
    assert_eq!(
        encoder.encode(&MessageView::Proto(ProtoView::new(&bytes)), &mut out),
        Ok(Encoded::Skipped)
    );
    assert!(out.is_empty());
    let bytes = message("broken", "x");
    assert_eq!(
        encoder.encode(&MessageView::Proto(ProtoView::new(&bytes)), &mut out),
        Ok(Encoded::Failed)
    );
    assert_eq!(encoder.last_error(), "cannot encode broken messages");
    assert_eq!(encoder.stats().process_message_failures, 1);
}

#[test]
fn runaway_scripts_terminate_alone() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(dir.path());
    let neighbour_config = SandboxConfig {
        ticker_interval: 1,
        ..SandboxConfig::new(script("counter_filter.lua"))
    };
    let mut neighbour = SandboxFilter::new("Neighbour", &neighbour_config, &host).unwrap();
    let runaway_names = [
        "runaway_loop.lua",
        "runaway_memory.lua",
        "runaway_output.lua",
    ];
    let expected = [
        "instruction_limit exceeded",
        "memory_limit exceeded",
        "output_limit exceeded",
    ];
    let mut runaways: Vec<SandboxFilter> = runaway_names
        .iter()
        .map(|name| {
            let config = SandboxConfig {
                memory_limit: 4 * 1024 * 1024,
                ..SandboxConfig::new(script(name))
            };
            SandboxFilter::new(name, &config, &host).unwrap()
        })
        .collect();
    let mut sink = Vec::new();
    let rounds = 200u64;
    for round in 0..rounds {
        let bytes = message("steady", "x");
        let view = MessageView::Proto(ProtoView::new(&bytes));
        for (index, runaway) in runaways.iter_mut().enumerate() {
            let terminated = runaway.process_message(&view, &mut sink).unwrap_err();
            assert!(
                terminated.reason.contains(expected[index]),
                "{}: {terminated:?}",
                runaway_names[index]
            );
            if round == 0 {
                let termination = runaway.termination_message().expect("terminated");
                let view = ProtoView::new(&termination);
                assert_eq!(
                    view.str_header(gyges::message::StrHeader::Type),
                    Some(&b"heka.sandbox-terminated"[..])
                );
            }
        }
        assert_eq!(
            neighbour.process_message(&view, &mut sink),
            Ok(CallStatus::Ok)
        );
    }
    neighbour.timer_event(0, &mut sink).unwrap();
    let reports = decode_all(&sink);
    assert_eq!(
        reports.last().unwrap().payload.as_deref(),
        Some(format!("steady\t{rounds}\ntotal\t{rounds}\n").as_str())
    );
    for runaway in &runaways {
        assert_eq!(
            runaway.stats().process_message_count,
            1,
            "a terminated filter runs no more"
        );
    }
}
