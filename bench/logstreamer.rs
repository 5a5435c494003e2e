//! LogstreamerInput from a file already written: the real `gyges run` (release build) under
//! `tuning/single-core.toml` (one core reads, splits, routes and writes), reading one stream,
//! a file of 200-byte lines (then 1000-byte lines: the per-record and per-byte costs), into a FileOutput with PayloadEncoder (`append_newlines = false`,
//! so the output is the input byte for byte). The clock runs from the spawn of `gyges run` to
//! the moment the output file holds every byte (polled every 200 µs), so startup is included.
//! Reported: bytes/s per core (the target is >= 1 GB/s), CPU seconds per GB
//! (utime+stime from /proc/PID/stat) and peak RSS (VmHWM; the target is < 64 MiB). Each pass
//! starts with an empty journal directory, so the whole file is read every time; the input
//! file stays in the page cache between passes.

#[path = "common/mod.rs"]
mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LINE_BYTES: [usize; 2] = [200, 1000];
const BYTES_PER_SECOND_TARGET: f64 = 1e9;
const RSS_BYTES_TARGET: u64 = 64 << 20;

fn write_input(path: &Path, bytes: usize, line_bytes: usize) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create input"));
    let mut written = 0;
    let mut number = 0u64;
    while written + line_bytes <= bytes {
        let head = format!("2026-12-02T10:00:00Z host-7 app[42]: request {number:012} ");
        let pad = line_bytes - head.len() - 1;
        file.write_all(head.as_bytes()).expect("write");
        file.write_all(&b"abcdefghijklmnopqrstuvwxyz0123456789".repeat(32)[..pad])
            .expect("write");
        file.write_all(b"\n").expect("write");
        written += line_bytes;
        number += 1;
    }
    file.flush().expect("flush");
}

struct Pass {
    seconds: f64,
    cpu_seconds: f64,
    rss_bytes: u64,
}

fn cpu_seconds(pid: u32) -> f64 {
    let ticks: f64 = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok())
        .unwrap_or(100.0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rfind(')').map(|end| &stat[end + 1..]).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    };
    (field(11) + field(12)) / ticks
}

fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .unwrap_or(0)
}

fn pass(dir: &Path, logs: &Path, bytes: u64) -> Pass {
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let output = dir.join("out.log");
    let _ = std::fs::remove_file(&output);
    let config = format!(
        "[gyges]\nstats_interval = 0\nbase_dir = \"{}\"\n\
         [app]\ntype = \"LogstreamerInput\"\nlog_directory = \"{}\"\n\
         file_match = 'app\\.log$'\nrescan_interval = \"1s\"\ncheck_data_interval = \"10ms\"\n\
         [LinePayload]\ntype = \"PayloadEncoder\"\nappend_newlines = false\n\
         [out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"{}\"\n\
         encoder = \"LinePayload\"\nflush_interval = 1\n",
        state.display(),
        logs.display(),
        output.display()
    );
    let config_path = dir.join("gyges.toml");
    std::fs::write(&config_path, config).expect("write config");
    let profile = common::repo_root().join("tuning/single-core.toml");
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gyges"))
        .args(["run", "-c"])
        .arg(&config_path)
        .arg("--tuning")
        .arg(&profile)
        .env("GYGES_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn gyges");
    let deadline = started + Duration::from_secs(600);
    loop {
        let size = std::fs::metadata(&output)
            .map(|meta| meta.len())
            .unwrap_or(0);
        if size >= bytes {
            break;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            panic!("the output did not reach {bytes} bytes (it has {size})");
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let seconds = started.elapsed().as_secs_f64();
    let pid = child.id();
    let result = Pass {
        seconds,
        cpu_seconds: cpu_seconds(pid),
        rss_bytes: peak_rss_bytes(pid),
    };
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = child.wait();
    result
}

fn main() {
    let mode = common::Mode::detect();
    let bytes = mode.pick(1usize << 30, 128 << 20, 4 << 20);
    let passes = mode.pick(3, 3, 1);
    let dir = tempfile::tempdir().expect("a temp dir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let input = logs.join("app.log");
    let mut section = common::Section::new(
        "logstreamer",
        "LogstreamerInput from a file already written",
        mode,
    );
    section.line(format!(
        "One stream: a {} MiB file of lines, read by `gyges run` under \
         `tuning/single-core.toml` (one core reads, splits, routes and writes) into a FileOutput \
         with PayloadEncoder; timed from the spawn to the last output byte (startup included). \
         {passes} passes per line size, each with an empty journal directory; the input is in \
         the page cache. Rows sorted by time; the median is the middle row.\n",
        bytes >> 20
    ));
    let mut table = common::Table::new(&[
        "line bytes",
        "pass",
        "seconds",
        "GB/s per core",
        "M lines/s",
        "CPU s/GB",
        "peak RSS MiB",
    ]);
    let mut verdicts = Vec::new();
    for line_bytes in LINE_BYTES {
        write_input(&input, bytes, line_bytes);
        let size = std::fs::metadata(&input).expect("input").len();
        let mut results: Vec<Pass> = (0..passes).map(|_| pass(dir.path(), &logs, size)).collect();
        results.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        for (index, result) in results.iter().enumerate() {
            let rate = size as f64 / result.seconds;
            table.row(vec![
                line_bytes.to_string(),
                (index + 1).to_string(),
                format!("{:.3}", result.seconds),
                format!("{:.2}", rate / 1e9),
                format!("{:.2}", rate / line_bytes as f64 / 1e6),
                format!("{:.2}", result.cpu_seconds / (size as f64 / 1e9)),
                format!("{:.1}", result.rss_bytes as f64 / (1 << 20) as f64),
            ]);
        }
        verdicts.push(verdict(line_bytes, size, &results));
    }
    section.table(&table);
    for line in verdicts {
        section.line(line);
    }
    section.publish();
}

fn verdict(line_bytes: usize, size: u64, results: &[Pass]) -> String {
    let median = &results[results.len() / 2];
    let rate = size as f64 / median.seconds;
    let fastest = size as f64 / results[0].seconds;
    let slowest = size as f64 / results[results.len() - 1].seconds;
    let rss = results
        .iter()
        .map(|result| result.rss_bytes)
        .max()
        .unwrap_or(0);
    let met = |ok: bool| if ok { "met" } else { "MISSED" };
    format!(
        "- {line_bytes}-byte lines: median {:.2} GB/s per core (spread {:.2}–{:.2} GB/s): \
         target >= 1 GB/s per core {} ({:+.0} %). Peak RSS {:.1} MiB: target < 64 MiB {}.",
        rate / 1e9,
        slowest / 1e9,
        fastest / 1e9,
        met(rate >= BYTES_PER_SECOND_TARGET),
        (rate / BYTES_PER_SECOND_TARGET - 1.0) * 100.0,
        rss as f64 / (1 << 20) as f64,
        met(rss < RSS_BYTES_TARGET)
    )
}
