//! Lua sandbox throughput on one core.
//!
//! 1. A trivial counter filter (`count = count + 1; return 0`) fed protobuf records.
//! 2. A filter that reads one header (`read_message("Type")`) and counts by it.
//! 3. A decoder with a small lpeg grammar turning `<ip> <method> <path> <status> <bytes>`
//!    lines into a message with five fields (one `inject_message` per line).
//!
//! Targets from the issue: (1) ≥ 2 M messages/s, (3) ≥ 500 k lines/s.
//! `GYGES_BENCH_QUICK=1` runs a tenth of the iterations. Results are printed and written to
//! `bench/results/<hostname>-<YYYY-MM-DD>-sandbox.md`.

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use gyges::decoder::sandbox::{Decoded, SandboxDecoder};
use gyges::filter::sandbox::SandboxFilter;
use gyges::message::proto::Message;
use gyges::message::{LineMeta, LineView, MessageView, ProtoView};
use gyges::sandbox::{HostInfo, SandboxConfig};
use prost::Message as _;

const COUNTER: &str = "count = 0\nfunction process_message() count = count + 1 return 0 end\n";

const BY_TYPE: &str = r#"
counts = {}
function process_message()
    local t = read_message("Type")
    counts[t] = (counts[t] or 0) + 1
    return 0
end
"#;

const DECODER: &str = r#"
local l = require "lpeg"
local sp = l.P" "
local word = l.C((1 - sp)^1)
local num = l.R"09"^1 / tonumber
local grammar = l.Ct(l.Cg(word, "ip") * sp * l.Cg(word, "method") * sp * l.Cg(word, "path")
    * sp * l.Cg(num, "status") * sp * l.Cg(num, "bytes") * l.P(-1))
local fields = {}
local msg = {Type = "access", Fields = fields}
function process_message()
    local t = grammar:match(read_message("Payload"))
    if not t then return -1 end
    fields.ip = t.ip
    fields.method = t.method
    fields.path = t.path
    fields.status = t.status
    fields.bytes = t.bytes
    inject_message(msg)
    return 0
end
"#;

struct Result {
    name: &'static str,
    count: u64,
    seconds: f64,
    unit: &'static str,
    target: Option<f64>,
}

impl Result {
    fn rate(&self) -> f64 {
        self.count as f64 / self.seconds
    }
}

fn config(dir: &Path, name: &str, script: &str) -> SandboxConfig {
    let path = dir.join(format!("{name}.lua"));
    std::fs::write(&path, script).expect("write script");
    SandboxConfig::new(path)
}

fn bench_filter(
    dir: &Path,
    host: &HostInfo,
    name: &'static str,
    script: &str,
    count: u64,
) -> Result {
    let mut filter = SandboxFilter::new(name, &config(dir, name, script), host).expect("filter");
    let record = Message {
        uuid: vec![3; 16],
        timestamp: 1_700_000_000_000_000_000,
        r#type: Some("nginx.access".into()),
        logger: Some("bench".into()),
        payload: Some("10.0.0.1 GET /index.html 200 1234".into()),
        hostname: Some("bench-host".into()),
        ..Message::default()
    }
    .encode_to_vec();
    let mut sink = Vec::with_capacity(1024);
    let view = MessageView::Proto(ProtoView::new(&record));
    for _ in 0..count / 10 {
        filter.process_message(&view, &mut sink).expect("warm-up");
    }
    let started = Instant::now();
    for _ in 0..count {
        let view = MessageView::Proto(ProtoView::new(&record));
        filter.process_message(&view, &mut sink).expect("process");
    }
    let seconds = started.elapsed().as_secs_f64();
    Result {
        name,
        count,
        seconds,
        unit: "messages/s",
        target: (name == "counter_filter").then_some(2e6),
    }
}

fn bench_decoder(dir: &Path, host: &HostInfo, count: u64) -> Result {
    let mut decoder = SandboxDecoder::new("lpeg_decoder", &config(dir, "decoder", DECODER), host)
        .expect("decoder");
    let lines: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "10.0.{}.{} GET /path/{i} {} {}",
                i % 7,
                i,
                200 + (i % 3) * 100,
                1000 + i
            )
        })
        .collect();
    let meta = LineMeta {
        type_: b"file".to_vec().into(),
        logger: b"access".to_vec().into(),
        hostname: b"bench-host".to_vec().into(),
    };
    let mut out = Vec::with_capacity(64 * 1024);
    let mut run = |n: u64, out: &mut Vec<u8>| {
        for i in 0..n {
            let line = &lines[(i % 64) as usize];
            let view = LineView {
                payload: line.as_bytes(),
                uuid: [1; 16],
                timestamp: 5,
                meta: &meta,
            };
            let decoded = decoder
                .decode(&MessageView::Line(view), out)
                .expect("decode");
            assert_eq!(decoded, Decoded::Messages(1));
            if out.len() > 32 * 1024 {
                out.clear();
            }
        }
    };
    run(count / 10, &mut out);
    let started = Instant::now();
    run(count, &mut out);
    let seconds = started.elapsed().as_secs_f64();
    Result {
        name: "lpeg_decoder",
        count,
        seconds,
        unit: "lines/s",
        target: Some(5e5),
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Today's date (UTC) as YYYY-MM-DD, from the civil-from-days algorithm.
fn today() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0);
    let days = seconds.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn main() {
    // Under `cargo test` (no `--bench` argument) a bench only has to prove it still runs.
    if common::Mode::detect() == common::Mode::Smoke {
        std::env::set_var("GYGES_BENCH_QUICK", "1");
    }
    let quick = std::env::var("GYGES_BENCH_QUICK").is_ok_and(|value| value == "1");
    let scale = if quick { 10 } else { 1 };
    let dir = std::env::temp_dir().join(format!("gyges-bench-sandbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let host = HostInfo {
        base_dir: dir.join("base"),
        share_dir: dir.clone(),
        ..HostInfo::default()
    };
    let hostname = read_trimmed("/proc/sys/kernel/hostname");
    let date = today();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut report = String::new();
    let _ = writeln!(report, "# Lua sandbox benchmark\n");
    let _ = writeln!(report, "- date: {date}");
    let _ = writeln!(report, "- host: {hostname}");
    let _ = writeln!(report, "- cpu: {} ({cores} cores online)", cpu_model());
    let _ = writeln!(
        report,
        "- kernel: {}",
        read_trimmed("/proc/sys/kernel/osrelease")
    );
    let _ = writeln!(
        report,
        "- build: `cargo bench --bench sandbox` (release, thin LTO), mlua 0.12 / Lua 5.4 \
         vendored, Debian lpeg 1.0.2"
    );
    let _ = writeln!(
        report,
        "- quick mode: {quick}; one thread, one sandbox at a time\n"
    );
    // `GYGES_BENCH_ONLY=<name>` runs one benchmark (for profiling).
    let only = std::env::var("GYGES_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    // Every benchmark runs `runs` times, one after the other; the row is the median run.
    let runs = if common::Mode::detect() == common::Mode::Smoke {
        1
    } else {
        3
    };
    let mut results: Vec<Vec<Result>> = Vec::new();
    if wanted("counter_filter") {
        results.push(
            (0..runs)
                .map(|_| bench_filter(&dir, &host, "counter_filter", COUNTER, 4_000_000 / scale))
                .collect(),
        );
    }
    if wanted("read_type_filter") {
        results.push(
            (0..runs)
                .map(|_| bench_filter(&dir, &host, "read_type_filter", BY_TYPE, 4_000_000 / scale))
                .collect(),
        );
    }
    if wanted("lpeg_decoder") {
        results.push(
            (0..runs)
                .map(|_| bench_decoder(&dir, &host, 2_000_000 / scale))
                .collect(),
        );
    }
    let _ = writeln!(
        report,
        "Each benchmark runs {runs} times; the row is the median run, with the slowest and \
         fastest run's rate beside it.\n"
    );
    let _ = writeln!(
        report,
        "| benchmark | iterations | seconds | rate (median) | slowest – fastest | target | ns/op |"
    );
    let _ = writeln!(report, "|---|---|---|---|---|---|---|");
    for mut runs in results {
        runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
        let (slowest, fastest) = (runs[0].rate(), runs[runs.len() - 1].rate());
        let result = &runs[(runs.len() - 1) / 2];
        let target = result.target.map_or("-".to_string(), |target| {
            let verdict = if result.rate() >= target {
                "met"
            } else {
                "MISSED"
            };
            format!("{:.0} k ({verdict})", target / 1e3)
        });
        let _ = writeln!(
            report,
            "| {} | {} | {:.3} | {:.0} k {} | {:.0} k – {:.0} k | {} | {:.0} |",
            result.name,
            result.count,
            result.seconds,
            result.rate() / 1e3,
            result.unit,
            slowest / 1e3,
            fastest / 1e3,
            target,
            result.seconds * 1e9 / result.count as f64
        );
    }
    // One dated report for every bench: this bench's section of it (bench/common).
    let mode = common::Mode::detect();
    let mut section = common::Section::new("sandbox", "Lua sandbox", mode);
    section.line(&report);
    section.publish();
    let _ = std::fs::remove_dir_all(&dir);
}
