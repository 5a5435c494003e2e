//! `gyges top`: per-plugin rates and queue lag of a running daemon, read from its operator
//! endpoint's `/metrics` (`[gyges] http_address`) and refreshed every interval.
//!
//! A rate is the difference of two scrapes divided by the time between them, summed over
//! cores. Each row is one plugin: its messages (records split for an input, messages
//! processed for a filter, messages sent for an output) per second and in total, its bytes
//! per second, its drops and failures in total, and for a durable one the records its queues
//! hold undelivered. `--once` and `--iterations` print that many frames and exit, for scripts
//! and tests; otherwise it runs until interrupted, redrawing the terminal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The most bytes of one `/metrics` answer read.
const SCRAPE_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// How long one scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `gyges top`.
#[derive(clap::Args, Debug)]
pub struct TopArgs {
    /// The daemon's operator endpoint (`[gyges] http_address`).
    #[arg(long, default_value = "127.0.0.1:4352")]
    pub addr: String,
    /// Print one frame (two scrapes an interval apart) and exit.
    #[arg(long, conflicts_with = "iterations")]
    pub once: bool,
    /// Print this many frames and exit (default: until interrupted).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Milliseconds between scrapes.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
    pub interval_ms: u64,
}

/// `gyges top`: exits 0 after the frames asked for, 1 when a scrape fails.
pub fn run(args: &TopArgs) -> ExitCode {
    let address = match args.addr.to_socket_addrs().map(|mut found| found.next()) {
        Ok(Some(address)) => address,
        _ => return super::fail("top", format!("--addr `{}` is not HOST:PORT", args.addr)),
    };
    let frames = if args.once { Some(1) } else { args.iterations };
    let interval = Duration::from_millis(args.interval_ms);
    let clear = frames.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut previous = match scrape(address) {
        Ok(sample) => (Instant::now(), sample),
        Err(error) => return super::fail("top", error),
    };
    let mut shown = 0u64;
    while frames.is_none_or(|frames| shown < frames) {
        std::thread::sleep(interval);
        let now = match scrape(address) {
            Ok(sample) => (Instant::now(), sample),
            Err(error) => return super::fail("top", error),
        };
        let seconds = now.0.duration_since(previous.0).as_secs_f64();
        let text = frame(&args.addr, &previous.1, &now.1, seconds);
        let mut stdout = std::io::stdout().lock();
        let written = if clear {
            write!(stdout, "\x1b[2J\x1b[H{text}")
        } else {
            write!(stdout, "{text}")
        };
        if written.and_then(|()| stdout.flush()).is_err() {
            // stdout closed (a pipe whose reader left): nothing more to show.
            return ExitCode::SUCCESS;
        }
        previous = now;
        shown += 1;
    }
    ExitCode::SUCCESS
}

/// One series: its metric name and labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    name: String,
    labels: Vec<(String, String)>,
}

impl Series {
    fn label(&self, name: &str) -> Option<&str> {
        let found = self.labels.iter().find(|(label, _)| label == name);
        found.map(|(_, value)| value.as_str())
    }
}

/// One scrape: every sample by series.
type Sample = BTreeMap<Series, f64>;

/// GETs `/metrics` and parses it.
fn scrape(address: SocketAddr) -> Result<Sample, String> {
    let failed = |error: std::io::Error| format!("cannot scrape {address}/metrics: {error}");
    let mut stream = TcpStream::connect_timeout(&address, SCRAPE_TIMEOUT).map_err(failed)?;
    stream
        .set_read_timeout(Some(SCRAPE_TIMEOUT))
        .map_err(failed)?;
    stream
        .set_write_timeout(Some(SCRAPE_TIMEOUT))
        .map_err(failed)?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(failed)?;
    let mut answer = Vec::new();
    let reader = &mut stream;
    reader
        .take(SCRAPE_BYTES_MAX)
        .read_to_end(&mut answer)
        .map_err(failed)?;
    let answer = String::from_utf8_lossy(&answer);
    let Some((head, body)) = answer.split_once("\r\n\r\n") else {
        return Err(format!("{address}/metrics: no complete answer"));
    };
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("{address}/metrics answered `{status}`"));
    }
    parse_exposition(body)
}

/// Reads the Prometheus text format: `name{label="value",...} number` lines; comments and
/// blank lines are skipped.
fn parse_exposition(text: &str) -> Result<Sample, String> {
    let mut sample = Sample::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("/metrics line {}: cannot read `{line}`", number + 1);
        let (series, rest) = parse_series(line).ok_or_else(bad)?;
        let value = rest.split_whitespace().next().ok_or_else(bad)?;
        let value: f64 = value.parse().map_err(|_| bad())?;
        sample.insert(series, value);
    }
    Ok(sample)
}

/// A series name and its labels at the start of `line`, and what follows them.
fn parse_series(line: &str) -> Option<(Series, &str)> {
    let end = line.find(['{', ' ']).unwrap_or(line.len());
    let name = line[..end].to_string();
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        rest = inner;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest.split_once("=\"")?;
            let (value, after) = unescape_until_quote(after)?;
            labels.push((label.trim().to_string(), value));
            rest = after;
        }
    }
    Some((Series { name, labels }, rest))
}

/// A label value up to its closing quote, unescaped, and what follows the quote.
fn unescape_until_quote(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut characters = text.char_indices();
    while let Some((at, character)) = characters.next() {
        match character {
            '"' => return Some((value, &text[at + 1..])),
            '\\' => match characters.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            other => value.push(other),
        }
    }
    None
}

/// One plugin's row: totals of the later scrape and rates between the two.
#[derive(Debug, Default, Clone)]
struct Row {
    type_name: String,
    messages: f64,
    messages_rate: f64,
    bytes_rate: f64,
    dropped: f64,
    failed: f64,
    lag: Option<f64>,
}

/// The metrics (without the `gyges_` prefix) a row adds up, by column.
const MESSAGES: [&str; 3] = ["records_total", "processed_total", "sent_total"];
const BYTES: [&str; 2] = ["bytes_read_total", "sent_bytes_total"];
const DROPPED: [&str; 3] = [
    "dropped_total",
    "oversize_records_total",
    "auth_failures_total",
];
const FAILED: [&str; 5] = [
    "decode_failures_total",
    "encode_failures_total",
    "process_failures_total",
    "errors_total",
    "rejected_total",
];

/// The rows of every plugin, by name.
fn rows(before: &Sample, after: &Sample, seconds: f64) -> BTreeMap<String, Row> {
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    for (series, &value) in after {
        let Some(plugin) = series.label("plugin") else {
            continue;
        };
        let Some(metric) = series
            .name
            .strip_prefix(crate::telemetry::exposition::PREFIX)
        else {
            continue;
        };
        let row = rows.entry(plugin.to_string()).or_default();
        row.type_name = series.label("type").unwrap_or_default().to_string();
        let rate = (value - before.get(series).copied().unwrap_or(0.0)).max(0.0) / seconds;
        if MESSAGES.contains(&metric) {
            row.messages += value;
            row.messages_rate += rate;
        } else if BYTES.contains(&metric) {
            row.bytes_rate += rate;
        } else if DROPPED.contains(&metric) {
            row.dropped += value;
        } else if FAILED.contains(&metric) {
            row.failed += value;
        } else if metric == "queue_lag_records" {
            *row.lag.get_or_insert(0.0) += value;
        }
    }
    rows
}

/// One frame: a heading and a row per plugin.
fn frame(address: &str, before: &Sample, after: &Sample, seconds: f64) -> String {
    let ready = after
        .iter()
        .find(|(series, _)| series.name == "gyges_ready")
        .is_some_and(|(_, &value)| value == 1.0);
    let state = if ready { "ready" } else { "not ready" };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gyges top {address}: {state}; rates over {seconds:.1} s, summed over cores"
    );
    let _ = writeln!(
        out,
        "{:<24} {:<20} {:>12} {:>12} {:>14} {:>12} {:>10} {:>10}",
        "PLUGIN", "TYPE", "MSG/S", "MB/S", "MESSAGES", "DROPPED", "FAILED", "QUEUE_LAG"
    );
    for (name, row) in rows(before, after, seconds.max(1e-9)) {
        let lag = row
            .lag
            .map_or_else(|| "-".to_string(), |lag| format!("{lag:.0}"));
        let _ = writeln!(
            out,
            "{name:<24} {:<20} {:>12.1} {:>12.3} {:>14.0} {:>12.0} {:>10.0} {lag:>10}",
            row.type_name,
            row.messages_rate,
            row.bytes_rate / 1e6,
            row.messages,
            row.dropped,
            row.failed,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_sum_cores_and_rate_the_difference() {
        let before = parse_exposition(
            "# TYPE gyges_records_total counter\n\
             gyges_records_total{plugin=\"in\",type=\"TcpInput\",core=\"0\"} 10\n\
             gyges_records_total{plugin=\"in\",type=\"TcpInput\",core=\"1\"} 0\n",
        )
        .unwrap();
        let after = parse_exposition(
            "gyges_ready 1\n\
             gyges_records_total{plugin=\"in\",type=\"TcpInput\",core=\"0\"} 30\n\
             gyges_records_total{plugin=\"in\",type=\"TcpInput\",core=\"1\"} 20\n\
             gyges_queue_lag_records{plugin=\"o\\\"ut\",type=\"FileOutput\",core=\"1\",consumer=\"o\"} 5\n",
        )
        .unwrap();
        let rows = rows(&before, &after, 2.0);
        assert_eq!(rows["in"].messages, 50.0);
        assert_eq!(rows["in"].messages_rate, 20.0);
        assert_eq!(rows["o\"ut"].lag, Some(5.0));
        let text = frame("a:1", &before, &after, 2.0);
        assert!(text.starts_with("gyges top a:1: ready;"), "{text}");
        assert!(parse_exposition("gyges_x{a=\"unterminated} 1\n").is_err());
        assert!(parse_exposition("gyges_x{a=\"b\"} many\n").is_err());
    }
}
