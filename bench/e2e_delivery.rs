//! The `delivery` section of the e2e bench: case 1's workload (framed protobuf over TCP into a
//! framed FileOutput, dev-2core, one connection) with the output's `delivery` set to
//! `memory`, `durable` (`sync = "interval"`) and `best_effort`, in the same run and
//! interleaved; then the same three at 50 % of the memory class's rate, for latency; then
//! kill -9 at scale: a few million numbered messages through a durable FileOutput while the
//! daemon is killed and restarted a few times.
//!
//! Figures besides those of every e2e run (`super::Outcome`):
//! - dropped: the output's `dropped_total` from the counters the daemon logs at exit;
//! - disk write B/msg: `write_bytes` of /proc/PID/io (bytes the daemon caused to be written
//!   to storage, counted when pages are dirtied: the output file and, for durable, the queue
//!   segments) over the run, per delivered message;
//! - queue B/msg and fsyncs/s: the `durable queue closed` lines the daemon logs at stop
//!   (`appended_bytes`, `fsyncs` of each core's queue writer), per delivered message and per
//!   second of the run. Checkpoint files (one fsynced rewrite per consumer per
//!   `checkpoint_interval`) are not in that count.
//!
//! The kill -9 part reuses what `tests/durable.rs` does: the sender sends chunks of numbered
//! messages, one connection each, and waits for the daemon to close it; chunks completed less
//! than `UNACKNOWLEDGED_WINDOW` before a kill may have been in the daemon's memory only (plain
//! Heka framing has no acknowledgement), so they are sent again. Lost must be 0; duplicates
//! are expected (at least once).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::common::{self, Mode, Section, Table};
use super::{Case, Daemon, Outcome, Profile, Setup, GYGES};

/// The throughput the durable class should keep, as a share of memory's, same run.
const DURABLE_RATIO_TARGET: f64 = 0.7;
/// A best-effort run is over when the output has not grown for this long after flood ended.
const BEST_EFFORT_SETTLE: Duration = Duration::from_secs(1);
/// See the module docs.
const UNACKNOWLEDGED_WINDOW: Duration = Duration::from_secs(1);
/// Bytes of one numbered heka record in the kill -9 part.
const CRASH_RECORD_BYTES: usize = 300;

/// An output's delivery class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Memory,
    Durable,
    BestEffort,
}

impl Class {
    const ALL: [Class; 3] = [Class::Memory, Class::Durable, Class::BestEffort];

    pub fn label(self) -> &'static str {
        match self {
            Class::Memory => "1 heka→file, memory",
            Class::Durable => "1 heka→file, durable",
            Class::BestEffort => "1 heka→file, best_effort",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Class::Memory => "memory",
            Class::Durable => "durable (sync = interval)",
            Class::BestEffort => "best_effort",
        }
    }

    /// The lines that set the class on output `output` (after its other keys).
    pub fn output_options(self, output: &str) -> String {
        match self {
            Class::Memory => "delivery = \"memory\"\n".into(),
            Class::BestEffort => "delivery = \"best_effort\"\n".into(),
            Class::Durable => {
                format!("delivery = \"durable\"\n[{output}.buffering]\nsync = \"interval\"\n")
            }
        }
    }

    /// How long a run waits for more output once flood is done, when the class may drop.
    pub fn settle(self) -> Option<Duration> {
        self.may_drop().then_some(BEST_EFFORT_SETTLE)
    }

    pub fn may_drop(self) -> bool {
        self == Class::BestEffort
    }
}

/// What the daemons of a run reported besides the output file.
#[derive(Clone, Debug, Default)]
pub struct DaemonFigures {
    /// `dropped_total` of every output.
    pub dropped: u64,
    pub queue_records: u64,
    pub queue_bytes: u64,
    pub fsyncs: u64,
    /// /proc/PID/io `write_bytes` over the run.
    pub disk_write_bytes: u64,
}

/// The value of `key=NUMBER` in a log line.
fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|value| {
            value
                .trim_matches(|c: char| !c.is_ascii_digit())
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

impl DaemonFigures {
    /// Sums the daemons' exit counters and queue lines.
    pub fn from_logs(logs: &[String], disk_write_bytes: u64) -> DaemonFigures {
        let mut figures = DaemonFigures {
            disk_write_bytes,
            ..DaemonFigures::default()
        };
        for line in logs.iter().flat_map(|log| log.lines()) {
            if line.contains("durable queue closed") {
                figures.queue_records += field(line, "appended_records");
                figures.queue_bytes += field(line, "appended_bytes");
                figures.fsyncs += field(line, "fsyncs");
            } else if let Some((_, value)) = line.split_once(".dropped_total ") {
                figures.dropped += value.trim().parse::<u64>().unwrap_or(0);
            }
        }
        figures
    }
}

/// `write_bytes` of /proc/PID/io, summed over `pids`.
pub fn disk_write_bytes(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/io")).ok())
        .filter_map(|io| {
            io.lines()
                .find_map(|line| line.strip_prefix("write_bytes:"))
                .and_then(|value| value.trim().parse::<u64>().ok())
        })
        .sum()
}

/// Runs the parts `GYGES_BENCH_E2E_CASES` selects (`delivery`, `crash`; default both) and
/// publishes their section.
pub fn run_part(mode: Mode, profiles: &[Profile], ticks_per_second: f64) {
    let (want_classes, want_crash) = (super::selected("delivery"), super::selected("crash"));
    if !want_classes && !want_crash {
        return;
    }
    let mut section = Section::with_command(
        "delivery",
        "cargo bench --bench e2e (GYGES_BENCH_E2E_CASES=delivery,crash for this section only)",
        "Delivery classes: memory, durable, best_effort; kill -9 at scale",
        mode,
    );
    section.line(format!(
        "Load average when the runs ended: {} (the line above gives it when they began). \
         Figures are medians of interleaved runs on a shared 2-core machine: compare the classes \
         with each other (same run), not with other days.\n",
        common::load_average()
    ));
    if want_classes {
        match class_profile(profiles) {
            Ok(Some(profile)) => classes(&mut section, mode, &profile, ticks_per_second),
            Ok(None) => {
                section.line("Delivery classes: **skipped**, no tuning profile runs here.\n")
            }
            Err(error) => section.line(format!("Delivery classes: **skipped**: {error}.\n")),
        }
    }
    if want_crash {
        crash(&mut section, mode);
    }
    section.publish();
}

/// The profile the classes run under: `GYGES_BENCH_E2E_DELIVERY_PROFILE` (a name in
/// `tuning/`, for experiments such as the queue's consumer on the ingest core under
/// `single-core`), else the first profile of the run.
fn class_profile(profiles: &[Profile]) -> Result<Option<Profile>, String> {
    match std::env::var("GYGES_BENCH_E2E_DELIVERY_PROFILE") {
        Ok(name) => Profile::load(&name)
            .map(Some)
            .map_err(|error| format!("profile {name}: {error}")),
        Err(_) => Ok(profiles.first().cloned()),
    }
}

/// The steady rate of the light-load runs, messages per second: a stream of events, far
/// below every class's capacity, so that latency is the path's own and not a backlog's.
const LIGHT_RATE: u64 = 20_000;

/// Which median runs [`best`] picks from: full load (no rate), half of memory's rate, or light load.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    Full,
    Half,
    Light,
}

fn load_of(outcome: &Outcome) -> Load {
    match outcome.setup.rate {
        None => Load::Full,
        Some(LIGHT_RATE) => Load::Light,
        Some(_) => Load::Half,
    }
}

fn best(outcomes: &[Outcome], class: Class, loaded: bool) -> Option<&Outcome> {
    let load = if loaded { Load::Half } else { Load::Full };
    best_at(outcomes, class, load)
}

fn best_at(outcomes: &[Outcome], class: Class, load: Load) -> Option<&Outcome> {
    outcomes
        .iter()
        .filter(|outcome| outcome.setup.case == Case::Class(class))
        .filter(|outcome| load_of(outcome) == load)
        .max_by(|a, b| a.messages_per_second().total_cmp(&b.messages_per_second()))
}

/// One setup per class: `count` messages, at `rate` when given.
fn class_setups(profile: &Profile, count: u64, rate: Option<u64>) -> Vec<Setup> {
    Class::ALL
        .iter()
        .map(|&class| Setup {
            case: Case::Class(class),
            profile: Some(profile.clone()),
            connections: 1,
            count,
            rate,
            held: false,
        })
        .collect()
}

fn classes(section: &mut Section, mode: Mode, profile: &Profile, ticks_per_second: f64) {
    let count = mode.pick(4_000_000u64, 300_000, 20_000);
    let rounds = super::runs_per_setup(mode);
    let mut outcomes = Vec::new();
    let setups = class_setups(profile, count, None);
    super::run_all(&setups, rounds, None, ticks_per_second, &mut outcomes);
    if mode != Mode::Smoke {
        if let Some(memory) = best(&super::medians(&outcomes), Class::Memory, false) {
            let rate = (memory.messages_per_second() / 2.0).max(1000.0) as u64;
            let seconds = mode.pick(3, 1, 1);
            let setups = class_setups(profile, (rate * seconds).max(10_000), Some(rate));
            super::run_all(&setups, rounds, None, ticks_per_second, &mut outcomes);
        }
        let seconds = mode.pick(5, 2, 1);
        let setups = class_setups(profile, LIGHT_RATE * seconds, Some(LIGHT_RATE));
        super::run_all(&setups, rounds, None, ticks_per_second, &mut outcomes);
    }
    write_classes(section, profile, count, rounds, &outcomes);
}

fn write_classes(
    section: &mut Section,
    profile: &Profile,
    count: u64,
    rounds: usize,
    runs: &[Outcome],
) {
    let outcomes = &super::medians(runs);
    section.line(format!(
        "### Delivery classes\n\nCase 1's workload ({count} framed 300 B protobuf messages, \
         one connection, `gyges flood`) into one framed FileOutput (`flush_interval = 1` ms) \
         with `delivery` set, under {}; {rounds} round(s) of the three classes interleaved, at \
         each load; the median run of each is shown (by rate at full load, by p99 under a fixed \
         rate), with the lowest and highest run's rate in brackets. Durable: the output's `[Out.buffering] sync = \"interval\"`, \
         every other queue option the default (checkpoint_interval 1 s). Latency: the tailer's \
         poll time minus the send time stamped by flood, as in the e2e section; `50 %` runs \
         send at half the memory class's best rate, the same rate for all three; `light` runs \
         send {LIGHT_RATE} messages/s, a stream of events far below every class's capacity. \
         Disk write \
         B/msg: /proc/PID/io `write_bytes` per delivered message (output file + queue). Queue \
         B/msg and fsyncs/s: the queue writers' own counters, logged at stop.\n",
        profile.name
    ));
    let memory = best(outcomes, Class::Memory, false).map(Outcome::messages_per_second);
    let mut table = Table::new(&[
        "class",
        "delivered",
        "dropped (full / 50 %)",
        "M msg/s (min–max)",
        "MB/s",
        "vs memory",
        "CPU s/GB",
        "p50 / p99 full load",
        "p50 / p99 at 50 %",
        "p50 / p99 light",
        "disk write B/msg",
        "queue B/msg",
        "fsyncs/s",
        "lost / dup",
    ]);
    for class in Class::ALL {
        let Some(full) = best(outcomes, class, false) else {
            continue;
        };
        let loaded = best(outcomes, class, true).map_or("—".to_string(), |outcome| {
            format!(
                "{} / {}",
                super::format_ns(outcome.p50_ns),
                super::format_ns(outcome.p99_ns)
            )
        });
        let delivered = full.delivered.max(1) as f64;
        let per_message = |bytes: u64| format!("{:.0}", bytes as f64 / delivered);
        let lost = if class.may_drop() {
            format!("(dropped) / {}", full.duplicates)
        } else {
            format!("{} / {}", full.lost, full.duplicates)
        };
        let mut status = String::new();
        if !full.complete {
            status.push_str(" INCOMPLETE");
        }
        if !full.clean_stop {
            status.push_str(" unclean-stop");
        }
        table.row(vec![
            format!("{}{status}", class.name()),
            full.delivered.to_string(),
            format!(
                "{} / {}",
                full.daemon.dropped,
                best(outcomes, class, true).map_or("—".into(), |o| o.daemon.dropped.to_string())
            ),
            match &full.spread {
                Some(spread) if spread.runs > 1 => format!(
                    "{:.2} ({:.2}–{:.2})",
                    full.messages_per_second() / 1e6,
                    spread.rate.0 / 1e6,
                    spread.rate.1 / 1e6
                ),
                _ => format!("{:.2}", full.messages_per_second() / 1e6),
            },
            format!("{:.0}", full.bytes_per_second() / 1e6),
            memory.map_or("—".into(), |memory| {
                format!(
                    "{:.0} %",
                    full.messages_per_second() / memory.max(1e-9) * 100.0
                )
            }),
            format!("{:.2}", full.cpu_seconds_per_gb()),
            format!(
                "{} / {}",
                super::format_ns(full.p50_ns),
                super::format_ns(full.p99_ns)
            ),
            loaded,
            best_at(outcomes, class, Load::Light).map_or("—".to_string(), |outcome| {
                format!(
                    "{} / {}",
                    super::format_ns(outcome.p50_ns),
                    super::format_ns(outcome.p99_ns)
                )
            }),
            per_message(full.daemon.disk_write_bytes),
            per_message(full.daemon.queue_bytes),
            format!("{:.1}", full.daemon.fsyncs as f64 / full.seconds.max(1e-9)),
            lost,
        ]);
    }
    section.table(&table);
    let durable = best(outcomes, Class::Durable, false).map(Outcome::messages_per_second);
    if let (Some(memory), Some(durable)) = (memory, durable) {
        let ratio = durable / memory.max(1e-9);
        section.line(format!(
            "- Durable end-to-end throughput ≥ 70 % of memory's, same run, `sync = \"interval\"` \
             (median run of each): {:.0} % → {}. Round by round (durable / memory run just \
             before it): {}.",
            ratio * 100.0,
            super::verdict(ratio, DURABLE_RATIO_TARGET, true),
            round_ratios(runs).join(", ")
        ));
    }
    if let Some(best_effort) = best(outcomes, Class::BestEffort, false) {
        let loaded = best(outcomes, Class::BestEffort, true);
        section.line(format!(
            "- best_effort: {} of {} delivered and {} dropped at full load (median run); {} dropped \
             at 50 % load. It drops only at a full ring to the owner core or at {} writes in \
             flight to a file a core writes itself, so it drops in bursts the owner core does \
             not absorb at once, where memory makes flood wait.\n",
            best_effort.delivered,
            best_effort.setup.count,
            best_effort.daemon.dropped,
            loaded.map_or("—".into(), |outcome| outcome.daemon.dropped.to_string()),
            gyges::limits::BEST_EFFORT_FILE_WRITES_IN_FLIGHT_MAX,
        ));
    }
}

/// Durable's rate over memory's, for each round of full-load runs, in run order.
fn round_ratios(outcomes: &[Outcome]) -> Vec<String> {
    let full: Vec<&Outcome> = outcomes.iter().filter(|o| o.setup.rate.is_none()).collect();
    full.windows(2)
        .filter(|pair| {
            pair[0].setup.case == Case::Class(Class::Memory)
                && pair[1].setup.case == Case::Class(Class::Durable)
        })
        .map(|pair| {
            let ratio = pair[1].messages_per_second() / pair[0].messages_per_second().max(1e-9);
            format!("{:.0} %", ratio * 100.0)
        })
        .collect()
}

// -------------------------------------------------------------------------------------------
// kill -9 at scale.

/// State shared between the sender thread and the killer.
struct CrashSender {
    completed: Mutex<Vec<(u64, Instant)>>,
    resend: Mutex<Vec<u64>>,
    sent_chunks: AtomicU64,
    failed_connections: AtomicU64,
    done: AtomicBool,
}

/// Sends chunk `chunk` on a new connection and waits for the daemon to close it.
fn send_chunk(port: u16, bytes: &[u8]) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(bytes)?;
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    Ok(())
}

fn crash_sender(port: u16, chunks: u64, chunk_messages: u64, state: &CrashSender) {
    let template = gyges::tools::flood::Template::heka(CRASH_RECORD_BYTES, [7; 16])
        .expect("a valid record size");
    let mut bytes = template.record.repeat(chunk_messages as usize);
    let mut next = 0;
    loop {
        let chunk = match state.resend.lock().expect("resend list").pop() {
            Some(chunk) => chunk,
            None if next < chunks => {
                next += 1;
                next - 1
            }
            None if state.done.load(Ordering::Acquire) => return,
            None => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let now = gyges::message::now_ns();
        template.patch_batch(&mut bytes, chunk * chunk_messages, 1, now);
        while send_chunk(port, &bytes).is_err() {
            state.failed_connections.fetch_add(1, Ordering::AcqRel);
            std::thread::sleep(Duration::from_millis(50));
        }
        state
            .completed
            .lock()
            .expect("completed list")
            .push((chunk, Instant::now()));
        state.sent_chunks.fetch_add(1, Ordering::AcqRel);
    }
}

fn crash_config(port: u16) -> String {
    format!(
        "[gyges]\nstats_interval = 0\nbase_dir = \"data\"\n\
         [FloodIn]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:{port}\"\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 1\n\
         delivery = \"durable\"\n[Out.buffering]\nsync = \"interval\"\n"
    )
}

fn start_crash_daemon(dir: &Path, port: u16, name: &str) -> Daemon {
    let mut command = Command::new(GYGES);
    command.arg("run").arg("-c").arg(dir.join("gyges.toml"));
    let mut daemon = Daemon::spawn(name, &mut command, dir);
    daemon.wait_for_port(port);
    daemon
}

/// Waits until `path` has not grown for `quiet` (at most `limit`).
fn wait_until_quiet(path: &Path, quiet: Duration, limit: Duration) {
    let started = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    while started.elapsed() < limit {
        let size = std::fs::metadata(path).map_or(0, |metadata| metadata.len());
        if size != last.0 {
            last = (size, Instant::now());
        } else if last.1.elapsed() > quiet {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every number in the framed file `path`, resyncing over anything that is not a record.
fn count_file(path: &Path, total: u64) -> super::Tally {
    let mut tally = super::Tally {
        check: gyges::tools::flood::SequenceCheck::new(0, total),
        latency: hdrhistogram::Histogram::new_with_bounds(1, super::LATENCY_NS_MAX, 3)
            .expect("valid histogram bounds"),
        bytes: 0,
        corrupt_bytes: 0,
        polls: 0,
        polling_seconds: 0.0,
    };
    let Ok(file) = std::fs::File::open(path) else {
        return tally;
    };
    let mut buffer = vec![0u8; 4 << 20];
    let mut offset = 0u64;
    loop {
        let read = std::os::unix::fs::FileExt::read_at(&file, &mut buffer, offset).unwrap_or(0);
        if read == 0 {
            break;
        }
        let now = gyges::message::now_ns();
        let consumed = super::consume(
            &buffer[..read],
            super::OutputFormat::Framed,
            now,
            true,
            &mut tally,
        );
        if consumed == 0 {
            break;
        }
        offset += consumed as u64;
    }
    tally
}

fn crash(section: &mut Section, mode: Mode) {
    let total = mode.pick(2_000_000u64, 200_000, 20_000);
    let chunk_messages = mode.pick(10_000u64, 5_000, 2_000);
    let kills = mode.pick(3u64, 3, 1);
    let chunks = total / chunk_messages;
    let dir = tempfile::Builder::new()
        .prefix("gyges-crash-")
        .tempdir()
        .expect("a temporary folder");
    let port = super::free_port();
    std::fs::write(dir.path().join("gyges.toml"), crash_config(port)).expect("write a config");
    let mut daemon = start_crash_daemon(dir.path(), port, "gyges");
    let state = Arc::new(CrashSender {
        completed: Mutex::default(),
        resend: Mutex::default(),
        sent_chunks: AtomicU64::new(0),
        failed_connections: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let started = Instant::now();
    let sender = {
        let state = state.clone();
        std::thread::spawn(move || crash_sender(port, chunks, chunk_messages, &state))
    };
    let mut resent_chunks = 0u64;
    for kill in 1..=kills {
        let at = chunks * kill / (kills + 1);
        while state.sent_chunks.load(Ordering::Acquire) < at {
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(daemon); // SIGKILL
        let killed_at = Instant::now();
        let recent: Vec<u64> = state
            .completed
            .lock()
            .expect("completed list")
            .iter()
            .filter(|(_, at)| killed_at.duration_since(*at) < UNACKNOWLEDGED_WINDOW)
            .map(|(chunk, _)| *chunk)
            .collect();
        resent_chunks += recent.len() as u64;
        state.resend.lock().expect("resend list").extend(recent);
        std::thread::sleep(Duration::from_millis(200));
        daemon = start_crash_daemon(dir.path(), port, &format!("gyges-{kill}"));
    }
    while state.sent_chunks.load(Ordering::Acquire) < chunks + resent_chunks {
        std::thread::sleep(Duration::from_millis(10));
    }
    state.done.store(true, Ordering::Release);
    let _ = sender.join();
    let output = dir.path().join("out.log");
    wait_until_quiet(&output, Duration::from_secs(2), Duration::from_secs(120));
    let seconds = started.elapsed().as_secs_f64();
    let clean_stop = daemon.stop();
    let tally = count_file(&output, total);
    let check = &tally.check;
    section.line(format!(
        "### kill -9 at scale (durable FileOutput)\n\n{total} numbered 300 B heka messages in \
         chunks of {chunk_messages}, one connection per chunk (the sender waits for the daemon \
         to close it), through a durable FileOutput (`sync = \"interval\"`, gyges on every \
         core); gyges killed with SIGKILL {kills} time(s), at evenly spaced points of the \
         stream, and started again 200 ms later. Duplicates come from the sender's resends \
         and from the queue replaying what was delivered after its last checkpoint; the \
         column after them is what the resends cannot explain (at least the replays). \
         Chunks completed less than {} ms before a kill \
         are sent again (plain Heka framing has no acknowledgement: they may have been in the \
         daemon's memory only). Then the output file is read whole, resyncing over anything \
         that is not a record (a kill may cut a write).\n",
        UNACKNOWLEDGED_WINDOW.as_millis()
    ));
    let mut table = Table::new(&[
        "messages",
        "kills",
        "resent by the sender",
        "failed connections",
        "distinct in output",
        "duplicates",
        "duplicates beyond the resends",
        "lost",
        "bad bytes skipped",
        "seconds",
        "clean last stop",
    ]);
    table.row(vec![
        total.to_string(),
        kills.to_string(),
        (resent_chunks * chunk_messages).to_string(),
        state.failed_connections.load(Ordering::Acquire).to_string(),
        (check.received - check.duplicates).to_string(),
        check.duplicates.to_string(),
        check
            .duplicates
            .saturating_sub(resent_chunks * chunk_messages)
            .to_string(),
        check.missing().to_string(),
        tally.corrupt_bytes.to_string(),
        format!("{seconds:.1}"),
        clean_stop.to_string(),
    ]);
    section.table(&table);
    section.line(format!(
        "- Lost must be 0: {} → {}.\n",
        check.missing(),
        if check.missing() == 0 && check.out_of_range == 0 {
            "**met**"
        } else {
            "**missed**"
        }
    ));
    println!(
        "e2e crash: {total} messages, {kills} kills, {} duplicates, {} lost",
        check.duplicates,
        check.missing()
    );
}
