//! End to end: a real `gyges run` loaded by `gyges flood` over loopback, measured at the output.
//!
//! Each run starts the release binary on a config written into a temporary folder, with a
//! tuning profile (`--tuning tuning/NAME.toml`), then starts `gyges flood` as a separate process
//! (pinned with `--cpu` to a core the profile leaves free, when there is one) and tails the
//! output file as it grows. The cases (issue 4):
//! 1. Heka-framed protobuf over TCP → `TRUE` matcher → framed FileOutput (ProtobufEncoder).
//! 2. 200-byte lines over TCP (TokenSplitter, no decoder) → FileOutput with PayloadEncoder
//!    (`append_newlines = false`: the splitter keeps the newline).
//! 3. Case 1 with 20 FileOutputs: 19 realistic matchers that match little or nothing and one
//!    that matches everything (the measured file): the routing cost.
//! 4. Case 1 into a TcpOutput to a second gyges (one core of its own, no profile), measured at
//!    the second gyges's file.
//! 5. 200-byte RFC 5424 messages, octet-counted (`flood --format syslog`), over TCP into a
//!    SyslogInput → FileOutput with PayloadEncoder (each MSG and a newline); rsyslog gets the
//!    same stream (`bench/rsyslog-syslog.conf`). `GYGES_BENCH_E2E_CASES=syslog` runs both.
//!
//! Case 4t is case 4 with TLS on both ends of the relay (`use_tls`, certificates made with the
//! `openssl` CLI per run), against case 4 in the same run: the TLS cost per message
//! (`GYGES_BENCH_E2E_CASES=tls` runs both).
//!
//! Case 2m is case 2 with the operator endpoint on (`http_address`) and `/metrics` scraped
//! every 100 ms by the bench during the run, against case 2 in the same run: the scrape cost
//! (`GYGES_BENCH_E2E_CASES=scrape` runs both).
//!
//! Every case runs with 1 and 8 connections under `tuning/dev-2core.toml` and
//! `tuning/single-core.toml`; then rsyslog (imtcp → omfile, `bench/rsyslog.conf`) on case 2's
//! workload when `scripts/install-rsyslog.sh` has unpacked it; then cases 1 and 2 again,
//! rate-limited (`flood --rate`) under the first profile at half the best median rate it
//! reached in this run, for latency under load. Every setup runs 3 times, round by round, and
//! its row is the median run with the spread beside it. Quick mode: small counts, 1
//! connection, dev-2core only.
//!
//! How each figure is taken:
//! - messages/s and MB/s: records and bytes found in the output file, from the start of flood
//!   to the poll that finds the last sequence number;
//! - CPU s/GB: utime + stime of the gyges process(es) from /proc/PID/stat (10 ms ticks) over
//!   the same window, per GB delivered to the output;
//! - peak RSS: VmHWM from /proc/PID/status at the end of the window;
//! - latency: for each record, the time of the poll that read it minus its send time (the
//!   Heka Timestamp header, or `ts=` in a line), both from the same realtime clock, into an
//!   hdrhistogram (3 significant digits). The tailer polls with `pread` and sleeps 20 µs when
//!   nothing is new; its resolution (mean gap between polls) is reported. flood stamps a whole
//!   256 KiB batch at once, so at full load the figure includes the sender's socket queueing;
//! - lost / dup: sequence numbers missing or seen twice (flood numbers every record); the
//!   file is read to its end once more after gyges has stopped, so late duplicates count.
//!
//! The tailer never reads a record that is still being written: `write_at` batches may land
//! out of order, leaving a transient hole of zeros, so a record that does not check out (a
//! frame whose Uuid and `seq` field disagree, a line with a NUL or without its numbers) is read
//! again at the next poll; only after gyges has stopped is it counted as corrupt and skipped.
//! Targets are reported with their margin or miss, never asserted.

#[path = "common/mod.rs"]
mod common;

/// The delivery classes compared in one run, and kill -9 at scale (their own report section).
#[path = "e2e_delivery.rs"]
mod delivery;

use common::pki::openssl_available;
use common::rsyslog::Rsyslog;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Mode, Section, Table};
use gyges::message::framing::parse_header;
use gyges::message::{now_ns, wire, ProtoView, StrHeader};
use gyges::tools::flood::{parse_send_ts, parse_seq, SequenceCheck};
use hdrhistogram::Histogram;

/// The binary under test: with `cargo bench`, the release build.
const GYGES: &str = env!("CARGO_BIN_EXE_gyges");
/// Bytes of a flood heka record (framed) and of a flood line.
const HEKA_RECORD_BYTES: usize = 300;
const LINE_BYTES: usize = 200;
/// Bytes the tailer reads per poll at most.
const TAIL_READ_BYTES: usize = 1 << 20;
/// The tailer's sleep when nothing new is in the file.
const TAIL_POLL_SLEEP: Duration = Duration::from_micros(20);
/// A run is given up when the output has not grown for this long after flood finished.
const STALL_TIMEOUT: Duration = Duration::from_secs(10);
/// A daemon that has not exited this long after SIGTERM is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Latency histogram bounds, ns: 1 ns to 10 minutes, 3 significant digits.
const LATENCY_NS_MAX: u64 = 600_000_000_000;

// The targets of issue 4 (reported, never asserted).
const CASE1_BYTES_PER_SECOND_TARGET: f64 = 1e9;
const CASE2_LINES_PER_SECOND_PER_CORE_TARGET: f64 = 5e6;
const RSYSLOG_RATIO_TARGET: f64 = 5.0;
/// Case 5's targets (the ingest issue): 2 M syslog messages/s per core, 3x rsyslog.
const SYSLOG_MESSAGES_PER_SECOND_PER_CORE_TARGET: f64 = 2e6;
const SYSLOG_RSYSLOG_RATIO_TARGET: f64 = 3.0;
const RSS_BYTES_TARGET: u64 = 64 << 20;
const P99_NS_TARGET: u64 = 1_000_000;

// -------------------------------------------------------------------------------------------
// Processes and /proc.

/// (utime, stime) of a process in seconds, from /proc/PID/stat.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state is field 3 of the full line, utime 14 and stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / ticks_per_second, stime / ticks_per_second))
}

/// VmHWM (peak resident set) of a process in bytes.
fn peak_rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Ports the bench picks from: below Linux's ephemeral range, where tests that bind port 0
/// (and gyges binds with SO_REUSEPORT, which lets two processes of one user share a port)
/// do not land.
const BENCH_PORTS: std::ops::Range<u16> = 20_000..30_000;

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = fastrand::u16(BENCH_PORTS);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("an ephemeral loopback port")
}

/// A daemon this bench started; killed if still running when dropped.
struct Daemon {
    name: String,
    child: Option<Child>,
    stderr_path: PathBuf,
}

impl Daemon {
    fn spawn(name: &str, command: &mut Command, dir: &Path) -> Daemon {
        let stderr_path = dir.join(format!("{name}.stderr"));
        let stderr = File::create(&stderr_path).expect("a stderr file in the temp dir");
        let child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Daemon {
            name: name.into(),
            child: Some(child),
            stderr_path,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The exit status, if the daemon has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
    }

    /// Everything the daemon wrote to stderr.
    fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }

    /// Waits until `port` accepts connections; panics with the daemon's log if it exits.
    fn wait_for_port(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited with {status}:\n{}",
                    self.name,
                    self.stderr_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} never listened on {port}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGTERM, then waits (SIGKILL after `STOP_TIMEOUT`). Returns whether it exited cleanly.
    fn stop(&mut self) -> bool {
        self.child
            .take()
            .is_none_or(|child| common::stop_gracefully(child, STOP_TIMEOUT))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// -------------------------------------------------------------------------------------------
// The tailer: reads the output file as it grows, checks numbers, measures latency.

/// How records are laid out in the measured file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    /// Heka frames of flood's protobuf messages.
    Framed,
    /// flood's lines, newline-terminated.
    Lines,
}

/// What parsing one record found.
enum Parsed {
    /// A whole, checked record of `bytes`, with its number and send time.
    Record {
        bytes: usize,
        seq: u64,
        send_ns: i64,
    },
    /// The record is not all there yet.
    Incomplete,
    /// The bytes do not check out: still being written, or corrupt.
    Invalid,
}

/// One flood heka record at the start of `window`.
fn parse_framed(window: &[u8]) -> Parsed {
    let header = match parse_header(window) {
        Ok(Some(header)) => header,
        Ok(None) => return Parsed::Incomplete,
        Err(_) => return Parsed::Invalid,
    };
    let bytes = header.frame_bytes();
    let Some(message) = window.get(header.message_start()..bytes) else {
        return Parsed::Incomplete;
    };
    match flood_message_fast(message).or_else(|| flood_message_any(message)) {
        Some((seq, send_ns)) => Parsed::Record {
            bytes,
            seq,
            send_ns,
        },
        None => Parsed::Invalid,
    }
}

/// flood's own layout: Uuid first (its last 6 bytes are the number), the Timestamp varint
/// right after, the `seq` field's 10 digits last. The two copies of the number must agree,
/// which also proves the record was not read half written.
fn flood_message_fast(message: &[u8]) -> Option<(u64, i64)> {
    if message.len() < 40 || message[..2] != [0x0a, 16] || message[18] != 0x10 {
        return None;
    }
    let mut uuid_seq = [0u8; 8];
    uuid_seq[2..].copy_from_slice(&message[12..18]);
    let seq = u64::from_be_bytes(uuid_seq);
    let digits = &message[message.len() - 10..];
    let field_seq = digits.iter().try_fold(0u64, |value, &digit| {
        digit
            .is_ascii_digit()
            .then(|| value * 10 + u64::from(digit - b'0'))
    })?;
    let mut at = 19;
    let send_ns = wire::read_varint(message, &mut at)? as i64;
    (seq == field_seq).then_some((seq, send_ns))
}

/// Any valid message whose Payload starts with flood's `seq=…` text.
fn flood_message_any(message: &[u8]) -> Option<(u64, i64)> {
    let view = ProtoView::new(message);
    view.validate().ok()?;
    let seq = parse_seq(view.str_header(StrHeader::Payload)?)?;
    Some((seq, view.timestamp()?))
}

/// One flood line at the start of `window`.
fn parse_line(window: &[u8]) -> Parsed {
    let Some(end) = memchr::memchr(b'\n', window) else {
        return Parsed::Incomplete;
    };
    let line = &window[..end];
    if memchr::memchr(0, line).is_some() {
        return Parsed::Invalid;
    }
    match (parse_seq(line), parse_send_ts(line)) {
        (Some(seq), Some(send_ns)) => Parsed::Record {
            bytes: end + 1,
            seq,
            send_ns,
        },
        _ => Parsed::Invalid,
    }
}

/// What the tailer found.
struct Tally {
    check: SequenceCheck,
    latency: Histogram<u64>,
    /// Bytes of checked records.
    bytes: u64,
    /// Bytes skipped as corrupt in the final pass.
    corrupt_bytes: u64,
    polls: u64,
    /// From the first poll to the last.
    polling_seconds: f64,
}

/// State shared between the tailer thread and the run.
struct TailShared {
    /// Distinct sequence numbers seen so far.
    distinct: AtomicU64,
    /// Records seen (with duplicates) and bytes, for progress.
    records: AtomicU64,
    /// Set once gyges has stopped: read to the end one last time, then return.
    finish: AtomicBool,
}

/// Consumes every whole, checked record in `window`; returns the bytes consumed. With
/// `resync`, bytes that do not check out are skipped (and counted) rather than waited for.
fn consume(
    window: &[u8],
    format: OutputFormat,
    now_ns: i64,
    resync: bool,
    tally: &mut Tally,
) -> usize {
    let mut at = 0;
    while at < window.len() {
        let parsed = match format {
            OutputFormat::Framed => parse_framed(&window[at..]),
            OutputFormat::Lines => parse_line(&window[at..]),
        };
        match parsed {
            Parsed::Record {
                bytes,
                seq,
                send_ns,
            } => {
                tally.check.record(seq);
                let latency = u64::try_from(now_ns.saturating_sub(send_ns)).unwrap_or(0);
                tally.latency.saturating_record(latency.max(1));
                tally.bytes += bytes as u64;
                at += bytes;
            }
            Parsed::Incomplete => break,
            Parsed::Invalid if resync => {
                // Skip to the next plausible record start.
                let next = match format {
                    OutputFormat::Framed => memchr::memchr(0x1e, &window[at + 1..]),
                    OutputFormat::Lines => memchr::memchr(b'\n', &window[at..]),
                };
                let skip = next.map_or(window.len() - at, |offset| offset + 1);
                tally.corrupt_bytes += skip as u64;
                at += skip;
            }
            Parsed::Invalid => break,
        }
    }
    at
}

/// Tails `path` until told to finish; see the module docs.
fn tail(path: &Path, format: OutputFormat, count: u64, shared: &TailShared) -> Tally {
    let mut tally = Tally {
        check: SequenceCheck::new(0, count),
        latency: Histogram::new_with_bounds(1, LATENCY_NS_MAX, 3).expect("valid histogram bounds"),
        bytes: 0,
        corrupt_bytes: 0,
        polls: 0,
        polling_seconds: 0.0,
    };
    let mut buffer = vec![0u8; TAIL_READ_BYTES];
    let mut offset = 0u64;
    let mut file = None;
    let started = Instant::now();
    loop {
        let finishing = shared.finish.load(Ordering::Acquire);
        if file.is_none() {
            file = File::open(path).ok();
        }
        let Some(open) = file.as_ref() else {
            if finishing {
                break;
            }
            std::thread::sleep(TAIL_POLL_SLEEP);
            continue;
        };
        // The poll's time is taken before the read: every record read was written by then.
        let now = now_ns();
        let read = open.read_at(&mut buffer, offset).unwrap_or(0);
        tally.polls += 1;
        let consumed = consume(&buffer[..read], format, now, finishing, &mut tally);
        offset += consumed as u64;
        shared.distinct.store(
            tally.check.received - tally.check.duplicates,
            Ordering::Release,
        );
        shared
            .records
            .store(tally.check.received, Ordering::Release);
        if consumed == 0 {
            if finishing {
                break;
            }
            std::thread::sleep(TAIL_POLL_SLEEP);
        }
    }
    tally.polling_seconds = started.elapsed().as_secs_f64();
    tally
}

// -------------------------------------------------------------------------------------------
// Cases, configs and runs.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    /// 1: framed protobuf → TRUE → framed FileOutput.
    Framed,
    /// 2: lines → PayloadEncoder FileOutput.
    Lines,
    /// 2m: case 2 with the operator endpoint on and `/metrics` scraped every
    /// [`SCRAPE_INTERVAL`] during the run.
    ScrapedLines,
    /// 3: case 1 with 20 outputs.
    Routing,
    /// 4: case 1 into a TcpOutput to a second gyges.
    Relay,
    /// 4t: case 4 over TLS (TcpOutput `use_tls` to a TcpInput `use_tls`).
    TlsRelay,
    /// Case 2's workload into rsyslog.
    Rsyslog,
    /// 5: octet-counted RFC 5424 over TCP → SyslogInput → FileOutput of each MSG.
    Syslog,
    /// Case 5's stream into rsyslog (imtcp → omfile of each MSG).
    RsyslogSyslog,
    /// Case 1 with the FileOutput's `delivery` class set (see [`delivery`]).
    Class(delivery::Class),
}

impl Case {
    fn label(self) -> &'static str {
        match self {
            Case::Framed => "1 heka→file",
            Case::Lines => "2 lines→file",
            Case::ScrapedLines => "2m lines→file, /metrics scraped",
            Case::Routing => "3 heka→20 outputs",
            Case::Relay => "4 heka→tcp→gyges→file",
            Case::TlsRelay => "4t heka→tls→gyges→file",
            Case::Rsyslog => "rsyslog lines→file",
            Case::Syslog => "5 syslog 5424→file",
            Case::RsyslogSyslog => "rsyslog syslog 5424→file",
            Case::Class(class) => class.label(),
        }
    }

    fn flood_format(self) -> &'static str {
        match self {
            Case::Lines | Case::ScrapedLines | Case::Rsyslog => "lines",
            Case::Syslog | Case::RsyslogSyslog => "syslog",
            _ => "heka",
        }
    }

    fn record_bytes(self) -> usize {
        match self {
            Case::Lines | Case::ScrapedLines | Case::Rsyslog => LINE_BYTES,
            Case::Syslog | Case::RsyslogSyslog => LINE_BYTES,
            _ => HEKA_RECORD_BYTES,
        }
    }

    fn output_format(self) -> OutputFormat {
        match self {
            Case::Lines | Case::ScrapedLines | Case::Rsyslog => OutputFormat::Lines,
            Case::Syslog | Case::RsyslogSyslog => OutputFormat::Lines,
            _ => OutputFormat::Framed,
        }
    }
}

/// A tuning profile and the cores it names.
#[derive(Clone, Debug)]
struct Profile {
    name: String,
    path: PathBuf,
    cpus: Vec<usize>,
}

impl Profile {
    fn load(name: &str) -> Result<Profile, String> {
        let path = common::repo_root()
            .join("tuning")
            .join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        let value: toml::Value =
            toml::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
        let cpus: Vec<usize> = value
            .get("core")
            .and_then(toml::Value::as_array)
            .map(|cores| {
                cores
                    .iter()
                    .filter_map(|core| core.get("cpu")?.as_integer())
                    .filter_map(|cpu| usize::try_from(cpu).ok())
                    .collect()
            })
            .unwrap_or_default();
        if cpus.is_empty() {
            return Err(format!("{}: names no [[core]] cpu", path.display()));
        }
        Ok(Profile {
            name: name.into(),
            path,
            cpus,
        })
    }
}

/// The online cores, as core_affinity lists them.
fn online_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect()
}

/// The daemon-side configs of one run, and where the measured file will be.
struct Configs {
    /// (name, config text, the port it listens on for flood or the relay) in start order.
    daemons: Vec<(String, String, u16)>,
    /// The port flood sends to.
    port: u16,
    output: PathBuf,
    /// The operator endpoint's port, when the case scrapes it.
    http: Option<u16>,
}

/// How often case 2m scrapes `/metrics`.
const SCRAPE_INTERVAL: Duration = Duration::from_millis(100);

/// The nineteen outputs of case 3 besides the measured one: realistic matchers that match
/// little (two match a handful of flood's records) or nothing.
const ROUTING_MATCHERS: [&str; 19] = [
    "Type == 'nginx.access' && Fields[status] >= 500",
    "Type == 'nginx.error'",
    "Logger == 'syslog' && Severity <= 3",
    "Hostname == 'web-01' || Hostname == 'web-02'",
    "Payload =~ /ERROR|FATAL/",
    "Fields[seq] == '0000000042'",
    "Type == 'flood' && Fields[seq] =~ /00000$/",
    "Severity < 4",
    "Logger == 'gyges-flood' && Type != 'flood'",
    "EnvVersion == '0.8'",
    "Pid == 4242",
    "Fields[status] == 404",
    "Type =~ /^nginx/",
    "Payload =~ /timeout$/",
    "Fields[request_id] != NIL",
    "Timestamp < 1000000000000000000",
    "Hostname =~ /^db-/ && Severity <= 4",
    "Logger == 'statsd' || Logger == 'collectd'",
    "Type == 'flood' && Fields[seq] == '9999999999'",
];

/// The matcher of case 3's measured output: everything flood sends.
const ROUTING_MATCH_ALL: &str = "Type == 'flood' && Logger == 'gyges-flood'";

/// Extra `[gyges]` options for every gyges of the run, from `GYGES_BENCH_E2E_GLOBAL` (one
/// TOML line per option, `;` between them), for experiments; the report prints them.
fn global_extra() -> String {
    options_from_env("GYGES_BENCH_E2E_GLOBAL")
}

/// TOML lines from the variable `name`, `;` between them.
fn options_from_env(name: &str) -> String {
    std::env::var(name)
        .map(|value| {
            value
                .split(';')
                .map(|option| format!("{}\n", option.trim()))
                .collect()
        })
        .unwrap_or_default()
}

fn global_section(extra: &str) -> String {
    format!(
        "[gyges]\nstats_interval = 0\nbase_dir = \"data\"\n{extra}{}",
        global_extra()
    )
}

/// Which parts run, from `GYGES_BENCH_E2E_CASES` (e.g. `1,2,latency`; default: all of
/// 1, 2, 3, 4, rsyslog, latency).
fn selected(part: &str) -> bool {
    match std::env::var("GYGES_BENCH_E2E_CASES") {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|item| item.trim() == part),
        _ => true,
    }
}

fn tcp_input(name: &str, port: u16, lines: bool) -> String {
    let splitter = if lines {
        "splitter = \"TokenSplitter\"\n"
    } else {
        ""
    };
    format!("[{name}]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n{splitter}")
}

/// Extra options for every measured FileOutput, from `GYGES_BENCH_E2E_OUTPUT` (as
/// `GYGES_BENCH_E2E_GLOBAL`), for experiments such as `flush_on_idle = false`.
fn output_extra() -> String {
    options_from_env("GYGES_BENCH_E2E_OUTPUT")
}

/// A FileOutput; `flush_interval = 1` ms so the last partial batch of a run is not held for
/// the default second (every other option is the default).
fn file_output(name: &str, matcher: &str, path: &Path, encoder: &str, framing: bool) -> String {
    format!(
        "[{name}]\ntype = \"FileOutput\"\nmessage_matcher = \"{matcher}\"\npath = \"{}\"\n\
         encoder = \"{encoder}\"\nuse_framing = {framing}\nflush_interval = 1\n{}",
        path.display(),
        output_extra()
    )
}

/// The daemons' configs of `case`; with `held`, the measured FileOutput of cases 1 and 2 waits
/// for its `flush_interval` ([`Setup::held`]).
fn configs(case: Case, dir: &Path, held: bool) -> Configs {
    let held = if held { "flush_on_idle = false\n" } else { "" };
    let port = free_port();
    let http = (case == Case::ScrapedLines).then(free_port);
    let output = dir.join("out.log");
    let mut daemons = Vec::new();
    match case {
        Case::Framed => {
            let text = global_section("")
                + &tcp_input("FloodIn", port, false)
                + &file_output("Out", "TRUE", &output, "ProtobufEncoder", true)
                + held;
            daemons.push(("gyges".into(), text, port));
        }
        Case::Lines | Case::ScrapedLines => {
            let endpoint = http.map_or(String::new(), |http| {
                format!("http_address = \"127.0.0.1:{http}\"\n")
            });
            let text = global_section(&endpoint)
                + &tcp_input("FloodIn", port, true)
                + "[LinePayload]\ntype = \"PayloadEncoder\"\nappend_newlines = false\n"
                + &file_output("Out", "TRUE", &output, "LinePayload", false)
                + held;
            daemons.push(("gyges".into(), text, port));
        }
        Case::Routing => {
            let mut text = global_section("") + &tcp_input("FloodIn", port, false);
            for (index, matcher) in ROUTING_MATCHERS.iter().enumerate() {
                let path = dir.join(format!("route-{index:02}.log"));
                let name = format!("Route{index:02}");
                text += &file_output(&name, matcher, &path, "ProtobufEncoder", true);
            }
            text += &file_output("Out", ROUTING_MATCH_ALL, &output, "ProtobufEncoder", true);
            daemons.push(("gyges".into(), text, port));
        }
        Case::Relay | Case::TlsRelay => {
            let (serve, connect) = if case == Case::TlsRelay {
                tls_options(dir)
            } else {
                (String::new(), String::new())
            };
            let relay_port = free_port();
            let last_core = online_cores().last().copied().unwrap_or(0);
            let receiver = global_section(&format!("cores = [{last_core}]\n"))
                + &tcp_input("RelayIn", relay_port, false)
                + &serve
                + &file_output("Out", "TRUE", &output, "ProtobufEncoder", true);
            daemons.push(("gyges-receiver".into(), receiver, relay_port));
            let sender = global_section("")
                + &tcp_input("FloodIn", port, false)
                + &format!(
                    "[Relay]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\n\
                     address = \"127.0.0.1:{relay_port}\"\n{connect}"
                );
            daemons.push(("gyges".into(), sender, port));
        }
        Case::Class(class) => {
            let text = global_section("")
                + &tcp_input("FloodIn", port, false)
                + &file_output("Out", "TRUE", &output, "ProtobufEncoder", true)
                + &class.output_options("Out");
            daemons.push(("gyges".into(), text, port));
        }
        Case::Syslog => {
            // Each message's MSG, one per line, with the PayloadEncoder's newline.
            let text = global_section("")
                + &format!("[SyslogIn]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:{port}\"\n")
                + &file_output("Out", "TRUE", &output, "PayloadEncoder", false);
            daemons.push(("gyges".into(), text, port));
        }
        Case::Rsyslog | Case::RsyslogSyslog => unreachable!("rsyslog runs from its own config"),
    }
    Configs {
        daemons,
        port,
        output,
        http,
    }
}

/// Makes a CA and a server certificate for 127.0.0.1 in `dir`; returns the options of case
/// 4t: `use_tls` with its `[RelayIn.tls]` for the receiver, and `use_tls` with its
/// `[Relay.tls]` for the sender.
fn tls_options(dir: &Path) -> (String, String) {
    common::pki::make_pki(dir, &["server"]);
    let file = |name: &str| dir.join(name).display().to_string();
    let serve = format!(
        "use_tls = true\n[RelayIn.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        file("server.pem"),
        file("server.key")
    );
    let connect = format!(
        "use_tls = true\n[Relay.tls]\nroot_cafile = \"{}\"\n",
        file("ca.pem")
    );
    (serve, connect)
}

/// One run's settings.
#[derive(Clone, Debug)]
struct Setup {
    case: Case,
    /// None for rsyslog.
    profile: Option<Profile>,
    connections: usize,
    count: u64,
    rate: Option<u64>,
    /// The measured FileOutput sets `flush_on_idle = false`, so that a partly filled batch
    /// waits for its `flush_interval` as before gyges shipped on idle (the latency part runs
    /// each of its setups both ways, for comparison).
    held: bool,
}

/// One run's figures.
#[derive(Clone, Debug)]
struct Outcome {
    setup: Setup,
    flood_cpu: Option<usize>,
    seconds: f64,
    delivered: u64,
    bytes: u64,
    /// utime + stime of the daemons over the window.
    cpu_seconds: f64,
    /// The stime part.
    system_seconds: f64,
    peak_rss_bytes: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    lost: u64,
    duplicates: u64,
    /// Out-of-range numbers, unreadable records and corrupt bytes, summed (must be 0).
    other_errors: u64,
    poll_gap_us: f64,
    clean_stop: bool,
    complete: bool,
    /// What the daemons said and did besides the output file (delivery classes).
    daemon: delivery::DaemonFigures,
    /// Case 2m: `/metrics` answers read during the run, and the bytes of the largest.
    scrapes: Option<(u64, usize)>,
    /// Case 2m: daemon CPU (utime+stime) per scrape of the idle daemon, in microseconds.
    scrape_cpu_us: Option<f64>,
    /// Set on the median outcome of a setup's runs ([`medians`]): how far the runs spread.
    spread: Option<Spread>,
    /// The daemons' context switches over the run: (voluntary, involuntary).
    switches: (u64, u64),
    /// The load average when the run ended.
    load_average: String,
}

/// How the runs of one setup spread: the median outcome's row shows these beside its own
/// figures, so that one lucky or unlucky run is never the record.
#[derive(Clone, Debug)]
struct Spread {
    runs: usize,
    /// Messages per second, lowest and highest run.
    rate: (f64, f64),
    /// CPU seconds per GB, lowest and highest run.
    cpu_per_gb: (f64, f64),
    /// p99 latency, lowest and highest run.
    p99_ns: (u64, u64),
    /// p99.9 latency, lowest and highest run.
    p999_ns: (u64, u64),
}

impl Outcome {
    fn messages_per_second(&self) -> f64 {
        self.delivered as f64 / self.seconds.max(1e-9)
    }

    fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.seconds.max(1e-9)
    }

    fn cpu_seconds_per_gb(&self) -> f64 {
        self.cpu_seconds / (self.bytes as f64 / 1e9).max(1e-12)
    }
}

/// The flood command for `setup`, pinned to a core the daemons leave free if any.
fn flood_command(setup: &Setup, port: u16, busy_cpus: &[usize]) -> (Command, Option<usize>) {
    let mut command = Command::new(GYGES);
    command.args([
        "flood",
        "--addr",
        &format!("127.0.0.1:{port}"),
        "--format",
        setup.case.flood_format(),
        "--size",
        &setup.case.record_bytes().to_string(),
        "--count",
        &setup.count.to_string(),
        "--connections",
        &setup.connections.to_string(),
    ]);
    if let Some(rate) = setup.rate {
        command.args(["--rate", &rate.to_string()]);
    }
    let free = online_cores()
        .into_iter()
        .find(|cpu| !busy_cpus.contains(cpu));
    if let Some(cpu) = free {
        command.args(["--cpu", &cpu.to_string()]);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    (command, free)
}

/// Starts the daemons of `setup` in `dir`; returns them, the port flood sends to, the
/// measured file and the cores the daemons are pinned to.
fn start_daemons(
    setup: &Setup,
    dir: &Path,
    rsyslog: Option<&Rsyslog>,
) -> (Vec<Daemon>, u16, PathBuf, Vec<usize>, Option<u16>) {
    if matches!(setup.case, Case::Rsyslog | Case::RsyslogSyslog) {
        let rsyslog = rsyslog.expect("rsyslog runs only when found");
        let port = free_port();
        let output = dir.join("out.log");
        let conf = match setup.case {
            Case::Rsyslog => "bench/rsyslog.conf",
            _ => "bench/rsyslog-syslog.conf",
        };
        let template =
            std::fs::read_to_string(common::repo_root().join(conf)).expect("the rsyslog config");
        let config = template
            .replace("@WORK_DIR@", &dir.display().to_string())
            .replace("@PORT@", &port.to_string())
            .replace("@OUTPUT@", &output.display().to_string());
        let config_path = dir.join("rsyslog.conf");
        std::fs::write(&config_path, config).expect("write the rsyslog config");
        let mut command = rsyslog.command(&config_path, dir);
        let mut daemon = Daemon::spawn("rsyslogd", &mut command, dir);
        daemon.wait_for_port(port);
        // rsyslog is not pinned: flood is left free too, as it is with gyges on every core.
        return (vec![daemon], port, output, online_cores(), None);
    }
    let profile = setup.profile.as_ref().expect("gyges runs have a profile");
    let configs = configs(setup.case, dir, setup.held);
    let mut daemons = Vec::new();
    let mut busy = profile.cpus.clone();
    for (name, text, port) in &configs.daemons {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, text).expect("write a config");
        // Info is a few lines per run (start, stop, the counters); GYGES_BENCH_LOG changes it.
        let log = std::env::var("GYGES_BENCH_LOG").unwrap_or_else(|_| "info".into());
        let mut command = Command::new(GYGES);
        command
            .arg("run")
            .arg("-c")
            .arg(&config_path)
            .env("GYGES_LOG", log);
        if name == "gyges" {
            command.arg("--tuning").arg(&profile.path);
        } else if let Some(last) = online_cores().last() {
            busy.push(*last);
        }
        let mut daemon = Daemon::spawn(name, &mut command, dir);
        daemon.wait_for_port(*port);
        daemons.push(daemon);
    }
    (daemons, configs.port, configs.output, busy, configs.http)
}

/// Scrapes `http://127.0.0.1:{port}/metrics` every [`SCRAPE_INTERVAL`] until `finish`;
/// returns the answers read whole and the bytes of the largest.
fn scrape_metrics(port: u16, finish: &AtomicBool) -> (u64, usize) {
    let (mut scrapes, mut largest) = (0u64, 0usize);
    while !finish.load(Ordering::Acquire) {
        let started = Instant::now();
        let (count, bytes) = scrape_once(port);
        scrapes += count;
        largest = largest.max(bytes);
        std::thread::sleep(SCRAPE_INTERVAL.saturating_sub(started.elapsed()));
    }
    (scrapes, largest)
}

/// Back-to-back scrapes of the idle daemon that measure the CPU one scrape costs it.
const IDLE_SCRAPES: usize = 2000;

/// One GET of `/metrics`: (1, bytes of the answer) if it was answered 200, else (0, 0).
fn scrape_once(port: u16) -> (u64, usize) {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, 0);
    };
    let mut answer = Vec::new();
    let request = stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n");
    let read = request.is_ok() && stream.read_to_end(&mut answer).is_ok();
    if read && answer.starts_with(b"HTTP/1.1 200") {
        (1, answer.len())
    } else {
        (0, 0)
    }
}

/// utime and stime of `pids`, summed.
fn cpu_total(pids: &[u32], ticks_per_second: f64) -> (f64, f64) {
    pids.iter()
        .filter_map(|pid| cpu_seconds(*pid, ticks_per_second))
        .fold((0.0, 0.0), |(user, system), (u, s)| (user + u, system + s))
}

/// Context switches of every thread of `pids` so far: (voluntary, involuntary), from
/// /proc/PID/task/TID/status. Voluntary: a thread went to sleep (it had nothing to do);
/// involuntary: the scheduler took its CPU away (something else wanted it).
fn context_switches(pids: &[u32]) -> (u64, u64) {
    let mut total = (0, 0);
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
                continue;
            };
            for line in status.lines() {
                let count = |prefix: &str| {
                    line.strip_prefix(prefix)
                        .and_then(|rest| rest.trim().parse::<u64>().ok())
                };
                if let Some(count) = count("voluntary_ctxt_switches:") {
                    total.0 += count;
                } else if let Some(count) = count("nonvoluntary_ctxt_switches:") {
                    total.1 += count;
                }
            }
        }
    }
    total
}

/// Waits until the tailer has seen `count` distinct numbers (true), or gives up (false) when
/// the output has not grown for `STALL_TIMEOUT` after flood finished, or a daemon exited.
/// With `settle` (a class that may drop), an output that has not grown for that long after
/// flood finished is complete too. Returns that and when the output last grew.
fn wait_for_delivery(
    shared: &TailShared,
    (count, settle): (u64, Option<Duration>),
    flood: &mut Child,
    daemons: &mut [Daemon],
) -> (bool, Instant) {
    let mut flood_done = false;
    let mut last_progress = (0u64, Instant::now());
    loop {
        if shared.distinct.load(Ordering::Acquire) >= count {
            return (true, last_progress.1);
        }
        let records = shared.records.load(Ordering::Acquire);
        if records != last_progress.0 {
            last_progress = (records, Instant::now());
        }
        flood_done = flood_done || matches!(flood.try_wait(), Ok(Some(_)));
        if flood_done && settle.is_some_and(|settle| last_progress.1.elapsed() > settle) {
            return (true, last_progress.1);
        }
        if flood_done && last_progress.1.elapsed() > STALL_TIMEOUT {
            return (false, last_progress.1);
        }
        if let Some((name, status)) = daemons
            .iter_mut()
            .find_map(|daemon| Some((daemon.name.clone(), daemon.exited()?)))
        {
            eprintln!("e2e: {name} exited during the run with {status}");
            return (false, last_progress.1);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Stops every daemon (whatever the others did) and says whether all exited cleanly; prints
/// their log tails when something went wrong.
fn stop_all(daemons: &mut [Daemon], complete: bool) -> bool {
    let stops: Vec<bool> = daemons.iter_mut().rev().map(Daemon::stop).collect();
    let clean_stop = stops.iter().all(|ok| *ok);
    if !complete || !clean_stop {
        for daemon in daemons.iter() {
            eprintln!("e2e: {} log tail:\n{}", daemon.name, daemon.stderr_tail());
        }
    }
    clean_stop
}

/// One run: daemons up, tailer on, flood, wait, measure, stop, count.
fn run(setup: &Setup, rsyslog: Option<&Rsyslog>, ticks_per_second: f64) -> Outcome {
    let dir = tempfile::Builder::new()
        .prefix("gyges-e2e-")
        .tempdir()
        .expect("a temporary folder");
    let (mut daemons, port, output, busy, http) = start_daemons(setup, dir.path(), rsyslog);
    let shared = Arc::new(TailShared {
        distinct: AtomicU64::new(0),
        records: AtomicU64::new(0),
        finish: AtomicBool::new(false),
    });
    let format = setup.case.output_format();
    let tailer = {
        let (shared, output, count) = (shared.clone(), output.clone(), setup.count);
        std::thread::spawn(move || tail(&output, format, count, &shared))
    };
    let pids: Vec<u32> = daemons.iter().map(Daemon::pid).collect();
    let cpu_before = cpu_total(&pids, ticks_per_second);
    let switches_before = context_switches(&pids);
    let write_bytes_before = delivery::disk_write_bytes(&pids);
    let (mut command, flood_cpu) = flood_command(setup, port, &busy);
    let scraping = Arc::new(AtomicBool::new(false));
    let scraper = http.map(|http| {
        let scraping = scraping.clone();
        std::thread::spawn(move || scrape_metrics(http, &scraping))
    });
    let started = Instant::now();
    let mut flood = command.spawn().expect("start gyges flood");
    let settle = match setup.case {
        Case::Class(class) => class.settle(),
        _ => None,
    };
    let (complete, last_progress) =
        wait_for_delivery(&shared, (setup.count, settle), &mut flood, &mut daemons);
    let all_seen = shared.distinct.load(Ordering::Acquire) >= setup.count;
    let seconds = if complete && all_seen {
        started.elapsed()
    } else {
        last_progress.duration_since(started)
    };
    let disk_write_bytes = delivery::disk_write_bytes(&pids).saturating_sub(write_bytes_before);
    let cpu_after = cpu_total(&pids, ticks_per_second);
    let switches_after = context_switches(&pids);
    let peak_rss_bytes = pids.iter().filter_map(|pid| peak_rss_bytes(*pid)).sum();
    if let Ok(result) = flood.wait_with_output() {
        if !result.status.success() {
            let stderr = String::from_utf8_lossy(&result.stderr);
            eprintln!("e2e: gyges flood failed: {}", stderr.trim());
        }
    }
    scraping.store(true, Ordering::Release);
    let scrapes = scraper.map(|scraper| scraper.join().expect("the scraper thread"));
    // The load is over: what one scrape costs the idle daemon, over back-to-back scrapes.
    let scrape_cpu_us = http.map(|http| {
        let before = cpu_total(&pids, ticks_per_second);
        let mut answered = 0u64;
        for _ in 0..IDLE_SCRAPES {
            let (count, _) = scrape_once(http);
            answered += count;
        }
        let after = cpu_total(&pids, ticks_per_second);
        let seconds = (after.0 - before.0) + (after.1 - before.1);
        seconds / answered.max(1) as f64 * 1e6
    });
    let clean_stop = stop_all(&mut daemons, complete);
    let logs: Vec<String> = daemons.iter().map(Daemon::stderr_text).collect();
    let daemon = delivery::DaemonFigures::from_logs(&logs, disk_write_bytes);
    shared.finish.store(true, Ordering::Release);
    let tally = tailer.join().expect("the tailer thread");
    let check = &tally.check;
    let quantile = |q: f64| tally.latency.value_at_quantile(q);
    Outcome {
        setup: setup.clone(),
        flood_cpu,
        seconds: seconds.as_secs_f64(),
        delivered: check.received - check.duplicates,
        bytes: tally.bytes,
        cpu_seconds: (cpu_after.0 - cpu_before.0) + (cpu_after.1 - cpu_before.1),
        system_seconds: cpu_after.1 - cpu_before.1,
        peak_rss_bytes,
        p50_ns: quantile(0.5),
        p99_ns: quantile(0.99),
        p999_ns: quantile(0.999),
        max_ns: tally.latency.max(),
        lost: check.missing(),
        duplicates: check.duplicates,
        other_errors: check.out_of_range + check.unreadable + tally.corrupt_bytes,
        poll_gap_us: tally.polling_seconds / tally.polls.max(1) as f64 * 1e6,
        clean_stop,
        complete,
        daemon,
        scrapes,
        scrape_cpu_us,
        spread: None,
        switches: (
            switches_after.0.saturating_sub(switches_before.0),
            switches_after.1.saturating_sub(switches_before.1),
        ),
        load_average: common::load_average(),
    }
}

/// Whether two outcomes come from the same setup (case, profile, connections and rate).
fn same_setup(a: &Setup, b: &Setup) -> bool {
    a.case == b.case
        && a.connections == b.connections
        && a.rate == b.rate
        && a.held == b.held
        && a.profile.as_ref().map(|p| &p.name) == b.profile.as_ref().map(|p| &p.name)
}

/// One outcome per setup, in the order the setups first ran: the median run, by rate at full
/// load and by p99 when the rate was fixed, with [`Spread`] set. Counts that must be zero
/// (lost, duplicated, bad) are summed over the runs, `complete` and `clean_stop` hold only if
/// they held for every run, and the peak RSS is the largest of the runs.
fn medians(outcomes: &[Outcome]) -> Vec<Outcome> {
    let mut groups: Vec<Vec<&Outcome>> = Vec::new();
    for outcome in outcomes {
        match groups
            .iter_mut()
            .find(|group| same_setup(&group[0].setup, &outcome.setup))
        {
            Some(group) => group.push(outcome),
            None => groups.push(vec![outcome]),
        }
    }
    groups
        .into_iter()
        .map(|mut group| {
            if group[0].setup.rate.is_some() {
                group.sort_by_key(|outcome| outcome.p99_ns);
            } else {
                group.sort_by(|a, b| a.messages_per_second().total_cmp(&b.messages_per_second()));
            }
            let mut median = group[(group.len() - 1) / 2].clone();
            let range_f = |value: &dyn Fn(&Outcome) -> f64| {
                group
                    .iter()
                    .map(|o| value(o))
                    .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)))
            };
            let range_u = |value: &dyn Fn(&Outcome) -> u64| {
                let values = group.iter().map(|o| value(o));
                (values.clone().min().unwrap_or(0), values.max().unwrap_or(0))
            };
            median.spread = Some(Spread {
                runs: group.len(),
                rate: range_f(&Outcome::messages_per_second),
                cpu_per_gb: range_f(&Outcome::cpu_seconds_per_gb),
                p99_ns: range_u(&|o| o.p99_ns),
                p999_ns: range_u(&|o| o.p999_ns),
            });
            median.lost = group.iter().map(|o| o.lost).sum();
            median.duplicates = group.iter().map(|o| o.duplicates).sum();
            median.other_errors = group.iter().map(|o| o.other_errors).sum();
            median.complete = group.iter().all(|o| o.complete);
            median.clean_stop = group.iter().all(|o| o.clean_stop);
            median.peak_rss_bytes = range_u(&|o| o.peak_rss_bytes).1;
            median
        })
        .collect()
}

// -------------------------------------------------------------------------------------------
// The report.

fn format_ns(ns: u64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.2} s", ns as f64 / 1e9)
    } else if ns >= 1_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.0} µs", ns as f64 / 1e3)
    }
}

fn outcome_row(outcome: &Outcome) -> Vec<String> {
    let setup = &outcome.setup;
    let profile = setup
        .profile
        .as_ref()
        .map_or("(rsyslog, free)".to_string(), |profile| {
            profile.name.clone()
        });
    let flood = outcome
        .flood_cpu
        .map_or("free".to_string(), |cpu| format!("cpu {cpu}"));
    let mut status = String::new();
    if !outcome.complete {
        status.push_str(" INCOMPLETE");
    }
    if !outcome.clean_stop {
        status.push_str(" unclean-stop");
    }
    if outcome.other_errors > 0 {
        status.push_str(&format!(" bad={}", outcome.other_errors));
    }
    let spread = outcome.spread.as_ref();
    let runs = spread.map_or(1, |spread| spread.runs);
    let range = |text: String, low: String, high: String| match spread {
        Some(_) if runs > 1 => format!("{text} ({low}–{high})"),
        _ => text,
    };
    let (rate_low, rate_high) = spread.map_or((0.0, 0.0), |spread| spread.rate);
    let (cpu_low, cpu_high) = spread.map_or((0.0, 0.0), |spread| spread.cpu_per_gb);
    let (p99_low, p99_high) = spread.map_or((0, 0), |spread| spread.p99_ns);
    let (p999_low, p999_high) = spread.map_or((0, 0), |spread| spread.p999_ns);
    vec![
        format!("{}{status}", setup.case.label()),
        profile,
        setup.connections.to_string(),
        flood,
        runs.to_string(),
        outcome.delivered.to_string(),
        range(
            format!("{:.2}", outcome.messages_per_second() / 1e6),
            format!("{:.2}", rate_low / 1e6),
            format!("{:.2}", rate_high / 1e6),
        ),
        format!("{:.0}", outcome.bytes_per_second() / 1e6),
        range(
            format!(
                "{:.2} ({:.0} % sys)",
                outcome.cpu_seconds_per_gb(),
                outcome.system_seconds / outcome.cpu_seconds.max(1e-9) * 100.0
            ),
            format!("{cpu_low:.2}"),
            format!("{cpu_high:.2}"),
        ),
        format!("{:.1}", outcome.peak_rss_bytes as f64 / f64::from(1 << 20)),
        format_ns(outcome.p50_ns),
        range(
            format_ns(outcome.p99_ns),
            format_ns(p99_low),
            format_ns(p99_high),
        ),
        range(
            format_ns(outcome.p999_ns),
            format_ns(p999_low),
            format_ns(p999_high),
        ),
        outcome.lost.to_string(),
        outcome.duplicates.to_string(),
    ]
}

/// The table's columns. With several runs, a figure is the median run's, with the lowest
/// and highest run in brackets; messages, MB/s and p50 are the median run's alone, lost and
/// dup the sum over the runs, peak RSS the largest.
const COLUMNS: [&str; 15] = [
    "case",
    "profile",
    "conns",
    "flood",
    "runs",
    "messages",
    "M msg/s (min–max)",
    "MB/s",
    "CPU s/GB (min–max)",
    "peak RSS MiB",
    "p50",
    "p99 (min–max)",
    "p99.9 (min–max)",
    "lost",
    "dup",
];

/// "met, 1.3x" or "missed by 42 %".
fn verdict(value: f64, target: f64, higher_is_better: bool) -> String {
    let ratio = if higher_is_better {
        value / target
    } else {
        target / value.max(1e-12)
    };
    if ratio >= 1.0 {
        format!("**met** ({ratio:.2}x the target)")
    } else if higher_is_better {
        format!(
            "**missed** by {:.0} % (needs {:.1}x)",
            (1.0 - ratio) * 100.0,
            1.0 / ratio
        )
    } else {
        format!("**missed**: {:.1}x over", 1.0 / ratio)
    }
}

/// The outcome of `case` (under `profile`, at full load) with the highest rate: among
/// [`medians`], the best setup's median run.
fn best_of_case<'a>(
    outcomes: &'a [Outcome],
    case: Case,
    profile: Option<&str>,
) -> Option<&'a Outcome> {
    outcomes
        .iter()
        .filter(|outcome| outcome.setup.case == case && outcome.setup.rate.is_none())
        .filter(|outcome| {
            profile.is_none_or(|name| {
                outcome
                    .setup
                    .profile
                    .as_ref()
                    .is_some_and(|p| p.name == name)
            })
        })
        .max_by(|a, b| a.messages_per_second().total_cmp(&b.messages_per_second()))
}

/// Case 1's target: 1 GB/s into the file on one core.
fn target_case1(section: &mut Section, outcomes: &[Outcome]) {
    let one_core = best_of_case(outcomes, Case::Framed, Some("single-core"));
    if let Some(case1) = one_core.or_else(|| best_of_case(outcomes, Case::Framed, None)) {
        let profile = case1.setup.profile.as_ref().map_or("", |p| p.name.as_str());
        let caveat = if one_core.is_none() {
            " (no single-core run in this mode: the best setup's median stands in)"
        } else {
            ""
        };
        section.line(format!(
            "- Case 1 ≥ 1 GB/s end to end into the file with gyges on one core: {:.0} MB/s \
             ({profile}, {} conn){caveat} → {}. At its {:.2} CPU s/GB, one fully busy core \
             would carry {:.0} MB/s.",
            case1.bytes_per_second() / 1e6,
            case1.setup.connections,
            verdict(
                case1.bytes_per_second(),
                CASE1_BYTES_PER_SECOND_TARGET,
                true
            ),
            case1.cpu_seconds_per_gb(),
            1e3 / case1.cpu_seconds_per_gb().max(1e-9),
        ));
    }
}

/// Case 2's target: 5 M lines/s per core, under each profile.
fn target_case2(section: &mut Section, outcomes: &[Outcome]) {
    for profile in ["single-core", "dev-2core"] {
        let Some(case2) = best_of_case(outcomes, Case::Lines, Some(profile)) else {
            continue;
        };
        let cores = case2
            .setup
            .profile
            .as_ref()
            .map_or(1, |p| p.cpus.len())
            .max(1);
        let per_core = case2.messages_per_second() / cores as f64;
        let per_cpu_second = case2.delivered as f64 / case2.cpu_seconds.max(1e-9);
        section.line(format!(
            "- Case 2 ≥ 5 M lines/s per core ({profile}, {cores} core(s), {} conn): {:.2} M \
             lines/s per core → {}. Per CPU second gyges used: {:.2} M lines.",
            case2.setup.connections,
            per_core / 1e6,
            verdict(per_core, CASE2_LINES_PER_SECOND_PER_CORE_TARGET, true),
            per_cpu_second / 1e6,
        ));
    }
}

/// Case 5: syslog messages per core under each profile, and against rsyslog on the same
/// stream.
fn target_syslog(section: &mut Section, outcomes: &[Outcome]) {
    let rsyslog = best_of_case(outcomes, Case::RsyslogSyslog, None);
    for profile in ["single-core", "dev-2core"] {
        let Some(syslog) = best_of_case(outcomes, Case::Syslog, Some(profile)) else {
            continue;
        };
        let cores = syslog
            .setup
            .profile
            .as_ref()
            .map_or(1, |p| p.cpus.len())
            .max(1);
        let per_core = syslog.messages_per_second() / cores as f64;
        section.line(format!(
            "- Case 5 ≥ 2 M syslog msg/s per core ({profile}, {cores} core(s), {} conn): {:.2} M \
             msg/s per core → {}.",
            syslog.setup.connections,
            per_core / 1e6,
            verdict(per_core, SYSLOG_MESSAGES_PER_SECOND_PER_CORE_TARGET, true),
        ));
        if let (Some(rsyslog), "dev-2core") = (rsyslog, profile) {
            let ratio = syslog.messages_per_second() / rsyslog.messages_per_second().max(1e-9);
            section.line(format!(
                "- Case 5 ≥ 3× rsyslog on the same stream (gyges on both cores, as rsyslog): \
                 gyges/rsyslog = **{ratio:.1}x** → {}.",
                verdict(ratio, SYSLOG_RSYSLOG_RATIO_TARGET, true)
            ));
        }
    }
}

/// Case 2 against rsyslog: 5x.
fn target_rsyslog(section: &mut Section, outcomes: &[Outcome]) {
    let rsyslog = best_of_case(outcomes, Case::Rsyslog, None);
    let both_cores = best_of_case(outcomes, Case::Lines, Some("dev-2core"));
    for (profile, how) in [
        (Some("dev-2core"), "gyges on both cores, as rsyslog"),
        (None, "gyges's best profile"),
    ] {
        let gyges = best_of_case(outcomes, Case::Lines, profile);
        let (Some(rsyslog), Some(gyges)) = (rsyslog, gyges) else {
            continue;
        };
        if profile.is_none() && both_cores.is_some_and(|other| std::ptr::eq(other, gyges)) {
            // The best setup is the dev-2core one, already stated.
            continue;
        }
        let ratio = gyges.messages_per_second() / rsyslog.messages_per_second().max(1e-9);
        section.line(format!(
            "- Case 2 ≥ 5× rsyslog in the same run (median runs; {how}: {}, {} conn): \
             gyges/rsyslog = **{ratio:.1}x** → {}.",
            gyges.setup.profile.as_ref().map_or("", |p| p.name.as_str()),
            gyges.setup.connections,
            verdict(ratio, RSYSLOG_RATIO_TARGET, true)
        ));
    }
}

/// RSS, latency at 50 % load, and loss.
fn target_rss_latency_loss(section: &mut Section, outcomes: &[Outcome]) {
    let full_load: Vec<&Outcome> = outcomes
        .iter()
        .filter(|outcome| {
            matches!(outcome.setup.case, Case::Framed | Case::Lines) && outcome.setup.rate.is_none()
        })
        .collect();
    if let Some(peak) = full_load
        .iter()
        .max_by_key(|outcome| outcome.peak_rss_bytes)
    {
        section.line(format!(
            "- RSS < 64 MiB at full load with the default config (largest VmHWM of cases 1 and \
             2): {:.1} MiB ({}, {}, {} conn) → {}.",
            peak.peak_rss_bytes as f64 / f64::from(1 << 20),
            peak.setup.case.label(),
            peak.setup.profile.as_ref().map_or("", |p| p.name.as_str()),
            peak.setup.connections,
            verdict(peak.peak_rss_bytes as f64, RSS_BYTES_TARGET as f64, false)
        ));
    }
    // The target is the default's: the held runs are there for comparison.
    for outcome in outcomes
        .iter()
        .filter(|outcome| outcome.setup.rate.is_some() && !outcome.setup.held)
    {
        section.line(format!(
            "- p99 < 1 ms at 50 % load ({}, {}): p99 {} → {}.",
            outcome.setup.case.label(),
            outcome
                .setup
                .profile
                .as_ref()
                .map_or("", |p| p.name.as_str()),
            format_ns(outcome.p99_ns),
            verdict(outcome.p99_ns as f64, P99_NS_TARGET as f64, false)
        ));
    }
    let total_errors: u64 = outcomes
        .iter()
        .filter(|outcome| !matches!(outcome.setup.case, Case::Class(class) if class.may_drop()))
        .map(|outcome| outcome.lost + outcome.duplicates + outcome.other_errors)
        .sum();
    section.line(format!(
        "- Nothing lost or duplicated: {} runs, {} lost + duplicated + bad records in all.\n",
        outcomes
            .iter()
            .map(|outcome| outcome.spread.as_ref().map_or(1, |spread| spread.runs))
            .sum::<usize>(),
        total_errors
    ));
}

fn targets(section: &mut Section, outcomes: &[Outcome], rsyslog_row: bool) {
    section.line("### Targets (issue 4)\n");
    target_case1(section, outcomes);
    target_case2(section, outcomes);
    target_syslog(section, outcomes);
    if rsyslog_row {
        target_rsyslog(section, outcomes);
    }
    target_rss_latency_loss(section, outcomes);
}

/// Pearson's correlation of the pairs (0 when either side does not vary).
fn correlation(pairs: &[(f64, f64)]) -> f64 {
    let n = pairs.len() as f64;
    if pairs.len() < 3 {
        return 0.0;
    }
    let (mean_x, mean_y) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        xy += (x - mean_x) * (y - mean_y);
        xx += (x - mean_x) * (x - mean_x);
        yy += (y - mean_y) * (y - mean_y);
    }
    if xx <= 0.0 || yy <= 0.0 {
        return 0.0;
    }
    xy / (xx * yy).sqrt()
}

/// Why the CPU per GB moves between runs: every full-load run of cases 1 and 2 (not only the
/// medians), with the daemons' context switches per MB beside its CPU, and how each goes with
/// the CPU per GB over the runs.
fn cpu_variance(section: &mut Section, runs: &[Outcome]) {
    let full: Vec<&Outcome> = runs
        .iter()
        .filter(|o| matches!(o.setup.case, Case::Framed | Case::Lines) && o.setup.rate.is_none())
        .collect();
    if full.len() < 3 {
        return;
    }
    let megabytes = |o: &Outcome| (o.bytes as f64 / 1e6).max(1e-9);
    let mut table = Table::new(&[
        "case",
        "profile",
        "conns",
        "MB/s",
        "CPU s/GB",
        "system share",
        "sleeps (voluntary switches) per MB",
        "preemptions (involuntary) per MB",
        "load average at the end",
    ]);
    for o in &full {
        table.row(vec![
            o.setup.case.label().into(),
            o.setup
                .profile
                .as_ref()
                .map_or(String::new(), |p| p.name.clone()),
            o.setup.connections.to_string(),
            format!("{:.0}", o.bytes_per_second() / 1e6),
            format!("{:.2}", o.cpu_seconds_per_gb()),
            format!(
                "{:.0} %",
                o.system_seconds / o.cpu_seconds.max(1e-9) * 100.0
            ),
            format!("{:.1}", o.switches.0 as f64 / megabytes(o)),
            format!("{:.2}", o.switches.1 as f64 / megabytes(o)),
            o.load_average.clone(),
        ]);
    }
    let with = |value: &dyn Fn(&Outcome) -> f64| {
        let pairs: Vec<(f64, f64)> = full
            .iter()
            .map(|o| (o.cpu_seconds_per_gb(), value(o)))
            .collect();
        correlation(&pairs)
    };
    section.line(
        "### CPU per GB, run by run (cases 1 and 2 at full load)\n\nEvery run, not only the \
         medians: the CPU per GB moves with how often the daemon's threads sleep and wake (a \
         voluntary switch: it ran out of input and waited) and with how often other work took \
         its CPU (an involuntary switch), from /proc/PID/task/*/status over the run.\n",
    );
    section.table(&table);
    section.line(format!(
        "Correlation of CPU s/GB over these {} runs with: sleeps per MB {:+.2}; preemptions per \
         MB {:+.2}; the system share {:+.2}; MB/s {:+.2}.\n",
        full.len(),
        with(&|o| o.switches.0 as f64 / megabytes(o)),
        with(&|o| o.switches.1 as f64 / megabytes(o)),
        with(&|o| o.system_seconds / o.cpu_seconds.max(1e-9)),
        with(&Outcome::bytes_per_second),
    ));
}

/// Case 3 against case 1, same profile and connections.
fn routing_cost(section: &mut Section, outcomes: &[Outcome]) {
    let mut table = Table::new(&[
        "profile",
        "conns",
        "case 1 M msg/s",
        "case 3 M msg/s",
        "throughput ratio",
        "case 1 CPU ns/msg",
        "case 3 CPU ns/msg",
        "routing CPU ns/msg",
    ]);
    for routed in outcomes
        .iter()
        .filter(|outcome| outcome.setup.case == Case::Routing)
    {
        let base = outcomes.iter().find(|outcome| {
            outcome.setup.case == Case::Framed
                && outcome.setup.rate.is_none()
                && outcome.setup.connections == routed.setup.connections
                && outcome.setup.profile.as_ref().map(|p| &p.name)
                    == routed.setup.profile.as_ref().map(|p| &p.name)
        });
        let Some(base) = base else { continue };
        let per_message =
            |outcome: &Outcome| outcome.cpu_seconds / outcome.delivered.max(1) as f64 * 1e9;
        table.row(vec![
            routed
                .setup
                .profile
                .as_ref()
                .map_or(String::new(), |p| p.name.clone()),
            routed.setup.connections.to_string(),
            format!("{:.2}", base.messages_per_second() / 1e6),
            format!("{:.2}", routed.messages_per_second() / 1e6),
            format!(
                "{:.2}",
                routed.messages_per_second() / base.messages_per_second().max(1e-9)
            ),
            format!("{:.0}", per_message(base)),
            format!("{:.0}", per_message(routed)),
            format!("{:.0}", per_message(routed) - per_message(base)),
        ]);
    }
    if !table.is_empty() {
        section.line(
            "### Routing cost (case 3 against case 1)\n\nCPU ns/msg is the daemon's utime+stime \
             per delivered message (10 ms ticks, so short runs are coarse).\n",
        );
        section.table(&table);
    }
}

/// Case 2m against case 2, same profile and connections: what scraping `/metrics` every
/// [`SCRAPE_INTERVAL`] costs in throughput and in daemon CPU per message, against < 1 %.
fn scrape_cost(section: &mut Section, outcomes: &[Outcome]) {
    let mut table = Table::new(&[
        "profile",
        "conns",
        "case 2 M msg/s",
        "case 2m M msg/s",
        "case 2 CPU ns/msg",
        "case 2m CPU ns/msg",
        "scrapes",
        "bytes/scrape",
        "CPU µs/scrape (idle)",
        "at 10/s, % of a core",
        "cost target < 1 %",
    ]);
    for scraped in outcomes
        .iter()
        .filter(|outcome| outcome.setup.case == Case::ScrapedLines)
    {
        let base = outcomes.iter().find(|outcome| {
            outcome.setup.case == Case::Lines
                && outcome.setup.rate.is_none()
                && outcome.setup.connections == scraped.setup.connections
                && outcome.setup.profile.as_ref().map(|p| &p.name)
                    == scraped.setup.profile.as_ref().map(|p| &p.name)
        });
        let Some(base) = base else { continue };
        let per_message =
            |outcome: &Outcome| outcome.cpu_seconds / outcome.delivered.max(1) as f64 * 1e9;
        // The share of one core the endpoint takes at one scrape per interval.
        let share = scraped
            .scrape_cpu_us
            .map(|us| us / SCRAPE_INTERVAL.as_secs_f64() / 1e6);
        let verdict = match share {
            Some(share) if share < 0.01 => format!("met ({:.2} %)", share * 100.0),
            Some(share) => format!("MISSED ({:.2} %)", share * 100.0),
            None => String::new(),
        };
        let (scrapes, largest) = scraped.scrapes.unwrap_or_default();
        table.row(vec![
            scraped
                .setup
                .profile
                .as_ref()
                .map_or(String::new(), |p| p.name.clone()),
            scraped.setup.connections.to_string(),
            format!("{:.2}", base.messages_per_second() / 1e6),
            format!("{:.2}", scraped.messages_per_second() / 1e6),
            format!("{:.0}", per_message(base)),
            format!("{:.0}", per_message(scraped)),
            scrapes.to_string(),
            largest.to_string(),
            scraped
                .scrape_cpu_us
                .map_or(String::new(), |us| format!("{us:.0}")),
            share.map_or(String::new(), |share| format!("{:.3}", share * 100.0)),
            verdict,
        ]);
    }
    if !table.is_empty() {
        section.line(format!(
            "### Scrape cost (case 2m against case 2)\n\nCase 2 with `http_address` set and \
             `/metrics` scraped every {} ms by the bench during the run (a new connection per \
             scrape), beside case 2 without it: median runs, so on a shared machine their \
             difference in throughput and CPU per message is mostly noise. The cost is \
             measured directly after the load instead: the daemon's utime+stime (10 ms ticks) \
             over {IDLE_SCRAPES} back-to-back scrapes, divided by them (CPU µs/scrape); at one \
             scrape per interval that is the share of one core in the next column, judged \
             against the < 1 % target.\n",
            SCRAPE_INTERVAL.as_millis()
        ));
        section.table(&table);
    }
}

/// Case 4t against case 4, same profile and connections: throughput, and messages per CPU
/// second of both daemons (the rate per core), against the 60 % target (issue 10).
fn tls_cost(section: &mut Section, outcomes: &[Outcome]) {
    let mut table = Table::new(&[
        "profile",
        "conns",
        "plain M msg/s",
        "TLS M msg/s",
        "throughput ratio",
        "plain CPU ns/msg",
        "TLS CPU ns/msg",
        "per-core ratio",
        "target ≥ 60 %",
    ]);
    for secured in outcomes
        .iter()
        .filter(|outcome| outcome.setup.case == Case::TlsRelay && outcome.setup.rate.is_none())
    {
        let base = outcomes.iter().find(|outcome| {
            outcome.setup.case == Case::Relay
                && outcome.setup.rate.is_none()
                && outcome.setup.connections == secured.setup.connections
                && outcome.setup.profile.as_ref().map(|p| &p.name)
                    == secured.setup.profile.as_ref().map(|p| &p.name)
        });
        let Some(base) = base else { continue };
        let per_message =
            |outcome: &Outcome| outcome.cpu_seconds / outcome.delivered.max(1) as f64 * 1e9;
        let throughput = secured.messages_per_second() / base.messages_per_second().max(1e-9);
        let per_core = per_message(base) / per_message(secured).max(1e-9);
        let verdict = if throughput.min(per_core) >= 0.6 {
            format!("met ({:.0} %)", throughput.min(per_core) * 100.0)
        } else {
            format!("MISSED ({:.0} %)", throughput.min(per_core) * 100.0)
        };
        table.row(vec![
            secured
                .setup
                .profile
                .as_ref()
                .map_or(String::new(), |p| p.name.clone()),
            secured.setup.connections.to_string(),
            format!("{:.2}", base.messages_per_second() / 1e6),
            format!("{:.2}", secured.messages_per_second() / 1e6),
            format!("{throughput:.2}"),
            format!("{:.0}", per_message(base)),
            format!("{:.0}", per_message(secured)),
            format!("{per_core:.2}"),
            verdict,
        ]);
    }
    if !table.is_empty() {
        section.line(
            "### TLS cost (case 4t against case 4)\n\nThe same relay with `use_tls` on the \
             TcpOutput and the receiving TcpInput (rustls, `ring`; TLS 1.3 with \
             TLS13_AES_256_GCM_SHA384, rustls's first choice; P-256 certificate). Per-core ratio: messages per CPU \
             second of both daemons, TLS over plain; the target is judged on the lower of \
             the two ratios.\n",
        );
        section.table(&table);
    }
}

/// The cases this mode runs, less those `GYGES_BENCH_E2E_CASES` leaves out.
fn cases_to_run(mode: Mode) -> Vec<Case> {
    let cases: &[Case] = mode.pick(
        &[
            Case::Framed,
            Case::Lines,
            Case::ScrapedLines,
            Case::Routing,
            Case::Relay,
            Case::Syslog,
            Case::TlsRelay,
        ],
        &[
            Case::Framed,
            Case::Lines,
            Case::ScrapedLines,
            Case::Routing,
            Case::Relay,
            Case::Syslog,
            Case::TlsRelay,
        ],
        &[Case::Framed, Case::Lines, Case::Syslog],
    );
    // `tls` selects case 4 too: 4t is reported against it.
    let names = [
        (Case::Framed, "1"),
        (Case::Lines, "2"),
        (Case::Lines, "scrape"),
        (Case::ScrapedLines, "scrape"),
        (Case::Routing, "3"),
        (Case::Relay, "4"),
        (Case::Syslog, "syslog"),
        (Case::Relay, "tls"),
        (Case::TlsRelay, "tls"),
    ];
    cases
        .iter()
        .copied()
        .filter(|case| *case != Case::TlsRelay || openssl_available())
        .filter(|case| {
            names
                .iter()
                .any(|(known, name)| known == case && selected(name))
        })
        .collect()
}

/// The profiles this mode runs under that this machine can run; notes for the others.
fn profiles_to_run(mode: Mode, notes: &mut Vec<String>) -> Vec<Profile> {
    let names: &[&str] = mode.pick(
        &["dev-2core", "single-core"],
        &["dev-2core"],
        &["dev-2core"],
    );
    let online = online_cores();
    let mut profiles = Vec::new();
    for name in names {
        match Profile::load(name) {
            Ok(profile) if profile.cpus.iter().all(|cpu| online.contains(cpu)) => {
                profiles.push(profile)
            }
            Ok(profile) => notes.push(format!(
                "- Profile {name} skipped: it names cores {:?}, online here: {online:?}.",
                profile.cpus
            )),
            Err(error) => notes.push(format!("- Profile {name} skipped: {error}.")),
        }
    }
    profiles
}

/// Every full-speed run: each case under each profile with each connection count, then
/// rsyslog with each connection count.
fn full_speed_setups(mode: Mode, profiles: &[Profile], with_rsyslog: bool) -> Vec<Setup> {
    let heka_count = mode.pick(4_000_000u64, 300_000, 20_000);
    let line_count = mode.pick(5_000_000u64, 300_000, 20_000);
    let connection_counts: &[usize] = mode.pick(&[1, 8], &[1], &[1]);
    let mut setups = Vec::new();
    for case in cases_to_run(mode) {
        let count = if matches!(case, Case::Lines | Case::ScrapedLines | Case::Syslog) {
            line_count
        } else {
            heka_count
        };
        for profile in profiles {
            for &connections in connection_counts {
                let profile = Some(profile.clone());
                let rate = None;
                setups.push(Setup {
                    case,
                    profile,
                    connections,
                    count,
                    rate,
                    held: false,
                });
            }
        }
    }
    let rsyslog_cases = [(Case::Rsyslog, "rsyslog"), (Case::RsyslogSyslog, "syslog")];
    for (case, part) in rsyslog_cases {
        if !with_rsyslog || !selected(part) {
            continue;
        }
        for &connections in connection_counts {
            let (profile, count, rate) = (None, line_count, None);
            setups.push(Setup {
                case,
                profile,
                connections,
                count,
                rate,
                held: false,
            });
        }
    }
    setups
}

/// The latency part's rate for case 1 (`index` 0) or case 2 (1), from
/// `GYGES_BENCH_E2E_LATENCY_RATES` (`<case 1 msg/s>,<case 2 lines/s>`): set, the latency part
/// runs at those rates without the full-load runs, so that two builds compare at one rate.
fn fixed_latency_rate(index: usize) -> Option<u64> {
    let list = std::env::var("GYGES_BENCH_E2E_LATENCY_RATES").ok()?;
    list.split(',').nth(index)?.trim().parse().ok()
}

/// Latency under load: cases 1 and 2 under `profile`, one connection, at half the best median rate
/// that profile reached in `outcomes`; each once as configured and once with
/// `flush_on_idle = false` ([`Setup::held`]).
fn latency_setups(mode: Mode, profile: &Profile, outcomes: &[Outcome]) -> Vec<Setup> {
    let mut setups = Vec::new();
    for (index, case) in [Case::Framed, Case::Lines].into_iter().enumerate() {
        let rate = match fixed_latency_rate(index) {
            Some(rate) => rate,
            None => {
                let Some(best) = best_of_case(outcomes, case, Some(&profile.name)) else {
                    continue;
                };
                (best.messages_per_second() / 2.0).max(1000.0) as u64
            }
        };
        // About 3 s of load (1 s in quick mode; a moment in a smoke run).
        let (seconds, count_max) = mode.pick((3, u64::MAX), (1, u64::MAX), (1, 50_000));
        for held in [false, true] {
            setups.push(Setup {
                case,
                profile: Some(profile.clone()),
                connections: 1,
                count: (rate * seconds).clamp(10_000, count_max.max(10_000)),
                rate: Some(rate),
                held,
            });
        }
    }
    setups
}

/// Runs every setup `runs` times, round by round (each round runs every setup once), so that
/// drift in the machine's load reaches every setup alike.
fn run_all(
    setups: &[Setup],
    runs: usize,
    rsyslog: Option<&Rsyslog>,
    ticks: f64,
    outcomes: &mut Vec<Outcome>,
) {
    for round in 0..runs {
        for setup in setups {
            let outcome = run(setup, rsyslog, ticks);
            let rate = setup
                .rate
                .map_or(String::new(), |rate| format!(" (rate {rate}/s)"));
            println!(
                "e2e: round {}/{runs}: {}{rate}{}",
                round + 1,
                outcome_row(&outcome).join(" | "),
                held_label(setup)
            );
            outcomes.push(outcome);
        }
    }
}

/// Runs per setup: at least 3 when measuring, so that every headline row is a median.
fn runs_per_setup(mode: Mode) -> usize {
    mode.pick(3, 3, 1)
}

fn main() {
    let mode = Mode::detect();
    let machine = common::Machine::detect();
    let ticks_per_second = common::clock_ticks_per_second();
    let mut section = Section::new("e2e", "End to end: gyges run loaded by gyges flood", mode);
    let mut notes = Vec::new();
    let profiles = profiles_to_run(mode, &mut notes);
    let rsyslog = if mode == Mode::Smoke {
        None
    } else {
        Rsyslog::find()
    };
    let mut outcomes = Vec::new();
    let runs = runs_per_setup(mode);
    let setups = full_speed_setups(mode, &profiles, rsyslog.is_some());
    run_all(
        &setups,
        runs,
        rsyslog.as_ref(),
        ticks_per_second,
        &mut outcomes,
    );
    if let Some(profile) = profiles.first().filter(|_| selected("latency")) {
        let setups = latency_setups(mode, profile, &medians(&outcomes));
        run_all(
            &setups,
            runs,
            rsyslog.as_ref(),
            ticks_per_second,
            &mut outcomes,
        );
    }
    let runs = outcomes;
    let outcomes = medians(&runs);
    let rsyslog = rsyslog.as_ref();
    // Only the parts that ran replace their sections (`GYGES_BENCH_E2E_CASES=delivery,crash`
    // leaves the main e2e section of the day as it was).
    if !outcomes.is_empty() {
        write_section(&mut section, &machine, &outcomes, &notes, rsyslog, mode);
        cpu_variance(&mut section, &runs);
        section.publish();
    }
    delivery::run_part(mode, &profiles, ticks_per_second);
}

/// What was measured and how: knobs set, load, placement, method.
fn write_method(section: &mut Section, machine: &common::Machine, outcomes: &[Outcome]) {
    let poll_gap = outcomes
        .iter()
        .map(|outcome| outcome.poll_gap_us)
        .fold(0.0, f64::max);
    for knob in [
        "GYGES_BENCH_E2E_CASES",
        "GYGES_BENCH_E2E_GLOBAL",
        "GYGES_BENCH_E2E_OUTPUT",
        "GYGES_BENCH_E2E_LATENCY_RATES",
        "GYGES_BENCH_E2E_DELIVERY_PROFILE",
    ] {
        if let Ok(value) = std::env::var(knob) {
            section.line(format!("**Set for this run: `{knob}={value}`.**\n"));
        }
    }
    section.line(format!(
        "Load average when the runs ended: {} (the line above gives it when they began); other \
         work on a shared machine takes cores from gyges, flood and the tailer alike.\n",
        common::load_average()
    ));
    section.line(format!(
        "The release `gyges run` on a config written per case (FileOutput `flush_interval = 1` \
         ms, everything else default), under the tuning profile named; `gyges flood` as a \
         separate process, pinned to a core no gyges is pinned to when there is one (the `flood` \
         column), else left to the scheduler. This machine has {} core(s): {}. The bench's \
         own tailer (reading the output back, one thread) shares the machine too.\n",
        machine.cores,
        if machine.cores <= 2 {
            "under dev-2core gyges, flood and the tailer share both cores; under single-core \
             flood has core 1 to itself (with the tailer)"
        } else {
            "flood runs on a core of its own"
        },
    ));
    section.line(format!(
        "Rates are measured at the output file: records that arrived, from flood's start to the \
         poll that found the last one. Latency: poll time minus the record's send time (Heka \
         Timestamp / `ts=`), resolution = mean gap between polls, at most {poll_gap:.0} µs in \
         these runs; at full load it includes the time records queue in flood's socket. CPU is \
         utime+stime of the daemon process(es), per GB delivered; case 4 sums both gyges' CPU \
         and RSS.\n"
    ));
    section.line(
        "Every setup runs `runs` times, round by round (each round runs every setup once), and \
         its row is the median run: by rate at full load, by p99 under a fixed rate. Brackets \
         give the lowest and highest run; lost and dup are summed over the runs and peak RSS is \
         the largest. Targets are judged on the median.\n",
    );
}

/// What a row's label adds for a [`Setup::held`] run.
fn held_label(setup: &Setup) -> &'static str {
    if setup.held {
        " (flush_on_idle = false)"
    } else {
        ""
    }
}

/// The rate-limited runs.
fn write_latency(section: &mut Section, outcomes: &[Outcome]) {
    let loaded: Vec<&Outcome> = outcomes.iter().filter(|o| o.setup.rate.is_some()).collect();
    if !loaded.is_empty() {
        section.line(
            "### Latency under load (flood --rate at 50 % of the median rate above, same profile)\n",
        );
        let mut table = Table::new(&COLUMNS);
        for outcome in &loaded {
            let mut row = outcome_row(outcome);
            row[0] = format!(
                "{} @ {}/s{}",
                row[0],
                common::si(outcome.setup.rate.unwrap_or(0) as f64, 2),
                held_label(&outcome.setup)
            );
            table.row(row);
        }
        section.table(&table);
        let max_line: Vec<String> = loaded
            .iter()
            .map(|outcome| {
                format!(
                    "{}{}: max {}",
                    outcome.setup.case.label(),
                    held_label(&outcome.setup),
                    format_ns(outcome.max_ns)
                )
            })
            .collect();
        section.line(format!("Largest latency seen: {}.\n", max_line.join("; ")));
    }
}

fn write_section(
    section: &mut Section,
    machine: &common::Machine,
    outcomes: &[Outcome],
    notes: &[String],
    rsyslog: Option<&Rsyslog>,
    mode: Mode,
) {
    write_method(section, machine, outcomes);
    let mut table = Table::new(&COLUMNS);
    for outcome in outcomes
        .iter()
        .filter(|outcome| outcome.setup.rate.is_none())
    {
        table.row(outcome_row(outcome));
    }
    section.table(&table);
    match rsyslog {
        Some(rsyslog) => section.line(format!(
            "rsyslog row: {} (Debian's package unpacked by `scripts/install-rsyslog.sh`), \
             `bench/rsyslog.conf`: imtcp → omfile `%rawmsg%\\n` (case 2's stream), \
             `bench/rsyslog-syslog.conf`: imtcp (octet counting) → omfile `%msg%\\n` (case 5's), \
             default queues; not pinned.\n",
            rsyslog.version()
        )),
        None if mode == Mode::Smoke => {}
        None => section.line(
            "rsyslog row: **skipped**, rsyslog is not installed (run \
             `scripts/install-rsyslog.sh`, then `cargo bench --bench e2e`).\n",
        ),
    }
    write_latency(section, outcomes);
    routing_cost(section, outcomes);
    tls_cost(section, outcomes);
    scrape_cost(section, outcomes);
    targets(section, outcomes, rsyslog.is_some());
    for note in notes {
        section.line(note);
    }
}
