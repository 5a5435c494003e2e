//! Soak and overload (`docs/soak.md`): kill -9 on durable routes, a stalled destination under
//! more senders than the cores can take, idle and slow-loris connections beside busy ones, and
//! a disk that fills. Each test is the short form, a few seconds; `GYGES_SOAK=long` (what
//! `scripts/soak.sh` sets) runs the long form of the same code. Every test prints one line
//! starting with `SOAK ` that the script collects.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::durable::{
    assert_at_least_once, chunk_bytes, sequences_in, tally, KillingSender, CHUNK_MESSAGES,
};
use crate::durable_full::Tmpfs;
use crate::util::*;

/// Whether the long form runs (`GYGES_SOAK=long`).
fn long() -> bool {
    std::env::var("GYGES_SOAK").is_ok_and(|value| value == "long")
}

/// The short form's value, or the long form's.
fn pick<T>(short: T, long_form: T) -> T {
    if long() {
        long_form
    } else {
        short
    }
}

/// Bytes a queue reader reads at once (`QUEUE_READ_BYTES_DEFAULT`): what one delivery that a
/// kill interrupts may carry, and so may be delivered again.
const READ_BYTES: usize = gyges::limits::QUEUE_READ_BYTES_DEFAULT;

/// How often commits reach the checkpoint without a sync (`QUEUE_CHECKPOINT_UNSYNCED_INTERVAL`).
const UNSYNCED: Duration = gyges::limits::QUEUE_CHECKPOINT_UNSYNCED_INTERVAL;

/// The resident set of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn pid_of(daemon: &Daemon) -> u32 {
    daemon.child.as_ref().expect("running").id()
}

/// Samples a process's RSS every 50 ms until dropped; keeps the peak.
struct RssWatch {
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssWatch {
    fn start(pid: u32) -> RssWatch {
        let peak = Arc::new(AtomicUsize::new(rss_bytes(pid) as usize));
        let done = Arc::new(AtomicBool::new(false));
        let (thread_peak, thread_done) = (peak.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            while !thread_done.load(Ordering::Acquire) {
                thread_peak.fetch_max(rss_bytes(pid) as usize, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        RssWatch {
            peak,
            done,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Acquire) as u64
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

// --- kill -9 ---------------------------------------------------------------------------------

/// TcpInput into a durable FileOutput writing `path`, with the default `checkpoint_interval`
/// (1 s): the route killed in the first soak, and the receiver of the acknowledged chain.
fn durable_file_config(port: u16, path: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{path}\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n\
         use_buffering = true\n\
         [FileOutput.buffering]\nmax_file_size = 4194304\nmax_buffer_size = 268435456\n"
    )
}

/// Framed bytes of one test message (they differ by a few digits at most).
fn frame_bytes() -> usize {
    chunk_bytes(0).len() / CHUNK_MESSAGES
}

/// The kill points: `kills` of them, spread over the middle of `chunks`.
fn kill_points(chunks: usize, kills: usize) -> Vec<usize> {
    (1..=kills)
        .map(|kill| chunks * kill / (kills + 1))
        .collect()
}

/// gyges with a durable FileOutput, killed with -9 and restarted again and again while numbered
/// messages stream in: every number is in the file, and what the file holds twice beyond what
/// the sender itself sent again stays within one read and one unsynced checkpoint interval per
/// kill. Before commits reached the checkpoint between its synced writes, each kill replayed
/// up to a whole `checkpoint_interval` (a second) of delivered messages.
#[test]
fn a_durable_file_route_killed_again_and_again_loses_nothing_and_replays_little() {
    let kills = pick(4, 10);
    let chunks = pick(80, 600);
    let total = chunks * CHUNK_MESSAGES;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &durable_file_config(port, "out.log"), &[port]);
    let started = Instant::now();
    let sender = KillingSender::start(port, chunks);
    for kill_after in kill_points(chunks, kills) {
        sender.kill_after(kill_after, &mut daemon, &[port], Duration::from_millis(100));
    }
    let (failures, resent, sends) = sender.finish_counting();
    let seconds = started.elapsed().as_secs_f64();
    let output = dir.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(60),
        "every number in the output",
        || tally(&sequences_in(&std::fs::read(&output).unwrap_or_default())).len() >= total,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = tally(&sequences_in(&std::fs::read(&output).unwrap()));
    let duplicates = assert_at_least_once(&counts, total, "durable FileOutput");
    // What the file holds more often than the sender sent it whole: the queue's replays (and
    // the part of a chunk a kill cut short, which the sender sends again).
    let replayed: u64 = counts
        .iter()
        .map(|(&sequence, &count)| count.saturating_sub(sends[sequence as usize / CHUNK_MESSAGES]))
        .sum();
    let rate = total as f64 / seconds;
    // Per kill: the read being written when the kill came, what was committed since the last
    // unsynced checkpoint, and a chunk cut short; twice that, for a loaded machine's late
    // timers.
    let per_read = (READ_BYTES / frame_bytes()) as f64;
    let per_kill = per_read + rate * UNSYNCED.as_secs_f64() + CHUNK_MESSAGES as f64;
    let bound = kills as f64 * 2.0 * per_kill;
    println!(
        "SOAK kill-file | {kills} kills of gyges (durable FileOutput), {total} messages at \
         {rate:.0} msg/s, 0 lost, {duplicates} duplicates: {resent} resent by the sender, \
         {replayed} replayed by the queue ({:.0} per kill; bound {:.0} per kill), \
         {failures} failed connections retried",
        replayed as f64 / kills as f64,
        bound / kills as f64
    );
    assert!(
        replayed as f64 <= bound,
        "{replayed} replayed in {kills} kills, more than {bound:.0}"
    );
}

fn acknowledging_forwarder_config(port: u16, receiver_port: u16) -> String {
    format!(
        "[hekad]\nstats_interval = 0\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [TcpOutput]\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         use_buffering = true\nack = true\nack_timeout = 2000\n\
         [TcpOutput.buffering]\nmax_file_size = 4194304\nmax_buffer_size = 268435456\n"
    )
}

/// Counts the flood numbers in a file that only grows, reading only what was added since the
/// last look.
struct FileScanner {
    offset: u64,
    carry: Vec<u8>,
    seen: Mutex<Seen>,
}

impl FileScanner {
    fn new(numbers: usize) -> FileScanner {
        FileScanner {
            offset: 0,
            carry: Vec::new(),
            seen: Mutex::new(Seen {
                counts: vec![0; numbers],
                ..Seen::default()
            }),
        }
    }

    /// Reads what `path` gained; returns how many of `0..total` were seen.
    fn poll(&mut self, path: &Path, total: usize) -> usize {
        use std::io::{Seek, SeekFrom};
        if let Ok(mut file) = std::fs::File::open(path) {
            let _ = file.seek(SeekFrom::Start(self.offset));
            let mut added = Vec::new();
            if file.read_to_end(&mut added).is_ok() {
                self.offset += added.len() as u64;
                scan_sequences(&mut self.carry, &added, &self.seen);
            }
        }
        self.seen.lock().unwrap().arrived_in(0..total)
    }
}

/// gyges → gyges with `ack = true` at full line rate (flood senders into the forwarder, as
/// fast as the chain takes them), the receiver (a durable FileOutput) killed with -9 again and
/// again: every number arrives, and the duplicates per kill stay within what the receiver may
/// have appended and not yet acknowledged (about one of the forwarder's reads, at most its
/// window of reads) plus the receiver's own replay (one read, one unsynced checkpoint interval).
#[test]
fn an_acknowledged_chain_whose_receiver_is_killed_loses_nothing_and_replays_little() {
    let kills = pick(4, 10);
    let total = pick(600_000, 10_000_000);
    let interval = pick(Duration::from_millis(300), Duration::from_secs(3));
    let (forwarder_dir, receiver_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (forwarder_port, receiver_port) = (free_port(), free_port());
    let mut receiver = Daemon::start(
        receiver_dir.path(),
        &durable_file_config(receiver_port, "in.log"),
        &[receiver_port],
    );
    let mut forwarder = Daemon::start(
        forwarder_dir.path(),
        &acknowledging_forwarder_config(forwarder_port, receiver_port),
        &[forwarder_port],
    );
    let started = Instant::now();
    let sender = std::thread::spawn(move || flood(forwarder_port, 0, total, 4, None));
    for _ in 0..kills {
        std::thread::sleep(interval);
        receiver.kill();
        std::thread::sleep(Duration::from_millis(100));
        receiver.restart(&[receiver_port]);
    }
    sender.join().expect("flood");
    let output = receiver_dir.path().join("in.log");
    let mut scanner = FileScanner::new(total);
    let deadline = Instant::now() + Duration::from_secs(pick(60, 600));
    while scanner.poll(&output, total) < total {
        assert!(
            Instant::now() < deadline,
            "{} of {total} arrived\n{}",
            scanner.poll(&output, total),
            receiver.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let seconds = started.elapsed().as_secs_f64();
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    scanner.poll(&output, total);
    let (duplicates, strangers) = {
        let seen = scanner.seen.lock().unwrap();
        (seen.duplicates, seen.strangers)
    };
    assert_eq!(strangers, 0, "numbers that were never sent");
    let rate = total as f64 / seconds;
    // Flood's heka records are about 300 bytes.
    let per_read = (READ_BYTES / 300) as f64;
    // Per kill: what the receiver had appended and not yet acknowledged (at most the
    // forwarder's window of reads), the read its FileOutput was writing, and what it had
    // committed since its last unsynced checkpoint (twice, for late timers).
    let window = gyges::limits::ACK_WINDOW_BATCHES as f64;
    let per_kill = (window + 1.0) * per_read + 2.0 * rate * UNSYNCED.as_secs_f64();
    let bound = kills as f64 * per_kill;
    println!(
        "SOAK kill-acked | {kills} kills of the receiver of an acknowledged chain, {total} \
         messages at {rate:.0} msg/s (4 flood senders), 0 lost, {duplicates} duplicates \
         ({:.0} per kill, {:.2} % of the messages; bound {:.0} per kill)",
        duplicates as f64 / kills as f64,
        100.0 * duplicates as f64 / total as f64,
        bound / kills as f64
    );
    assert!(
        duplicates as f64 <= bound,
        "{duplicates} duplicates in {kills} kills, more than {bound:.0}"
    );
}

// --- a receiver that stalls ------------------------------------------------------------------

/// How many times each flood sequence number arrived.
#[derive(Default)]
struct Seen {
    counts: Vec<u8>,
    duplicates: u64,
    strangers: u64,
}

impl Seen {
    fn record(&mut self, seq: u64) {
        match self.counts.get_mut(seq as usize) {
            Some(0) => self.counts[seq as usize] = 1,
            Some(count) => {
                *count = count.saturating_add(1);
                self.duplicates += 1;
            }
            None => self.strangers += 1,
        }
    }

    fn arrived_in(&self, range: std::ops::Range<usize>) -> usize {
        self.counts[range]
            .iter()
            .filter(|&&count| count > 0)
            .count()
    }
}

/// The length of `seq=` and the ten digits after it, in a flood record's payload.
const SEQ_TEXT_BYTES: usize = 14;

/// Counts the `seq=<10 digits>` of flood records in a byte stream, whatever the framing, as
/// the bytes arrive; `carry` holds the tail of the last chunk (too short for a whole number).
fn scan_sequences(carry: &mut Vec<u8>, chunk: &[u8], seen: &Mutex<Seen>) {
    carry.extend_from_slice(chunk);
    let mut seen = seen.lock().unwrap();
    let mut at = 0;
    while at + SEQ_TEXT_BYTES <= carry.len() {
        let window = &carry[at..at + SEQ_TEXT_BYTES];
        if window.starts_with(b"seq=") && window[4..].iter().all(u8::is_ascii_digit) {
            let digits = std::str::from_utf8(&window[4..]).unwrap();
            seen.record(digits.parse().unwrap());
            at += SEQ_TEXT_BYTES;
        } else {
            at += 1;
        }
    }
    // Every position before `at` was looked at; what is left is too short for a number.
    carry.drain(..at);
}

/// A TCP receiver that counts flood numbers, and stops reading while told to stall.
struct StallingReceiver {
    stalled: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    bytes: Arc<AtomicUsize>,
}

impl StallingReceiver {
    fn start(port: u16, numbers: usize) -> StallingReceiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver");
        let stalled = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen {
            counts: vec![0; numbers],
            ..Seen::default()
        }));
        let bytes = Arc::new(AtomicUsize::new(0));
        let (thread_stalled, thread_seen, thread_bytes) =
            (stalled.clone(), seen.clone(), bytes.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (stalled, seen, bytes) = (
                    thread_stalled.clone(),
                    thread_seen.clone(),
                    thread_bytes.clone(),
                );
                std::thread::spawn(move || {
                    let mut buffer = vec![0u8; 256 * 1024];
                    let mut carry = Vec::new();
                    loop {
                        if stalled.load(Ordering::Acquire) {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        match stream.read(&mut buffer) {
                            Ok(0) | Err(_) => return,
                            Ok(count) => {
                                bytes.fetch_add(count, Ordering::AcqRel);
                                scan_sequences(&mut carry, &buffer[..count], &seen);
                            }
                        }
                    }
                });
            }
        });
        StallingReceiver {
            stalled,
            seen,
            bytes,
        }
    }

    fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Release);
    }

    fn arrived_in(&self, range: std::ops::Range<usize>) -> usize {
        self.seen.lock().unwrap().arrived_in(range)
    }

    fn duplicates_and_strangers(&self) -> (u64, u64) {
        let seen = self.seen.lock().unwrap();
        (seen.duplicates, seen.strangers)
    }

    /// Waits until no byte came for `quiet`.
    fn wait_quiet(&self, quiet: Duration, limit: Duration) {
        let deadline = Instant::now() + limit;
        let mut last = self.bytes.load(Ordering::Acquire);
        let mut since = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            let now = self.bytes.load(Ordering::Acquire);
            if now != last {
                last = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return;
            }
        }
    }
}

/// Runs `gyges flood` (heka records) to `port`: `count` numbers from `first`.
fn flood(port: u16, first: usize, count: usize, connections: usize, rate: Option<u64>) {
    let mut command = gyges();
    command
        .args(["flood", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--format", "heka", "--count", &count.to_string()])
        .args(["--connections", &connections.to_string()])
        .args(["--first-seq", &first.to_string()]);
    if let Some(rate) = rate {
        command.args(["--rate", &rate.to_string()]);
    }
    let output = command.output().expect("run gyges flood");
    assert!(
        output.status.success(),
        "flood failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn stalling_config(port: u16, receiver_port: u16, delivery: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [Out]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\n\
         address = \"127.0.0.1:{receiver_port}\"\ndelivery = \"{delivery}\"\n"
    )
}

/// Flood senders per overload run: four times the two cores, each sending as fast as it can.
const OVERLOAD_SENDERS: usize = 8;

/// What a stalled destination may make gyges hold, beyond its resident set when the overload
/// starts (2 cores): the cross-core rings (2 × 2 pairs × `RING_SLOTS_DEFAULT` ×
/// `BATCH_BYTES_DEFAULT` = 16 MiB), the TcpOutput queues (2 × `TCP_OUTPUT_BUFFER_BYTES_DEFAULT`
/// = 16 MiB), a read buffer per sender connection (8 × 64 KiB), the batches being filled (2
/// cores × 2 × 256 KiB); plus the allocator's slack: one `MALLOC_TRIM_THRESHOLD_BYTES` (16 MiB,
/// set by `gyges run`), the free memory glibc keeps at the top of an arena before giving it back.
fn overload_rss_bound() -> u64 {
    use gyges::limits::*;
    let cores = 2;
    let rings = cores * cores * RING_SLOTS_DEFAULT * BATCH_BYTES_DEFAULT;
    let tcp = cores * TCP_OUTPUT_BUFFER_BYTES_DEFAULT;
    let reads = OVERLOAD_SENDERS * READ_BUFFER_BYTES_DEFAULT;
    let batches = cores * 2 * BATCH_BYTES_DEFAULT;
    (rings + tcp + reads + batches + MALLOC_TRIM_THRESHOLD_BYTES) as u64
}

/// One overload run of `delivery` against a receiver that stalls: rounds of a flood of
/// `OVERLOAD_SENDERS` connections, the receiver not reading for the first `stall` of each and
/// then reading until it caught up, for at least `duration`. Returns (messages sent, arrived, duplicates, dropped, RSS growth peak,
/// seconds).
fn overload(delivery: &str, duration: Duration, stall: Duration, round: usize) -> Overload {
    let dir = tempfile::tempdir().unwrap();
    let (port, receiver_port) = (free_port(), free_port());
    let rounds_max = (duration.as_secs_f64() / stall.as_secs_f64()).ceil() as usize * 4 + 1;
    let tail = 10_000;
    let numbers = rounds_max * round + tail;
    let receiver = StallingReceiver::start(receiver_port, numbers);
    let mut daemon = Daemon::start(
        dir.path(),
        &stalling_config(port, receiver_port, delivery),
        &[port],
    );
    std::thread::sleep(Duration::from_millis(200));
    let base_rss = rss_bytes(pid_of(&daemon));
    let watch = RssWatch::start(pid_of(&daemon));
    let started = Instant::now();
    let mut sent = 0;
    while sent == 0 || started.elapsed() < duration {
        assert!(
            sent + round <= rounds_max * round,
            "more rounds than planned"
        );
        receiver.stall(true);
        let flood_thread = std::thread::spawn(move || {
            flood(port, sent, round, OVERLOAD_SENDERS, None);
        });
        std::thread::sleep(stall);
        receiver.stall(false);
        flood_thread.join().expect("flood");
        // The destination reads again until it caught up, before the next stall.
        receiver.wait_quiet(Duration::from_millis(200), Duration::from_secs(60));
        sent += round;
    }
    let seconds = started.elapsed().as_secs_f64();
    // Recovery: once the backlog is through, a paced stream arrives whole.
    receiver.wait_quiet(Duration::from_millis(500), Duration::from_secs(60));
    flood(port, sent, tail, 1, Some(50_000));
    wait_for_or_explain(
        Duration::from_secs(30),
        "the paced stream after the stall",
        || receiver.arrived_in(sent..sent + tail) == tail,
        || daemon.stderr(),
    );
    let peak = watch.peak();
    drop(watch);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    receiver.wait_quiet(Duration::from_millis(300), Duration::from_secs(10));
    let (duplicates, strangers) = receiver.duplicates_and_strangers();
    assert_eq!(strangers, 0, "numbers that were never sent");
    Overload {
        sent,
        arrived: receiver.arrived_in(0..sent),
        duplicates,
        dropped: daemon.counter("Out.dropped_total"),
        base_rss,
        peak_rss: peak,
        seconds,
    }
}

struct Overload {
    sent: usize,
    arrived: usize,
    duplicates: u64,
    dropped: u64,
    base_rss: u64,
    peak_rss: u64,
    seconds: f64,
}

impl Overload {
    fn summary(&self, delivery: &str) -> String {
        format!(
            "{delivery}: {} messages from {OVERLOAD_SENDERS} senders in {:.0} s, {} arrived, \
             {} dropped (counted), {} duplicates; RSS {:.1} MiB at the start, peak {:.1} MiB \
             (+{:.1} MiB; bound +{:.1} MiB); recovered: a paced stream after the stall arrived \
             whole",
            self.sent,
            self.seconds,
            self.arrived,
            self.dropped,
            self.duplicates,
            mib(self.base_rss),
            mib(self.peak_rss),
            mib(self.peak_rss.saturating_sub(self.base_rss)),
            mib(overload_rss_bound()),
        )
    }

    fn assert_rss_bounded(&self) {
        assert!(
            self.peak_rss <= self.base_rss + overload_rss_bound(),
            "RSS grew from {:.1} to {:.1} MiB, more than the bound +{:.1} MiB",
            mib(self.base_rss),
            mib(self.peak_rss),
            mib(overload_rss_bound())
        );
    }
}

/// More senders than the cores can take and a destination that stops reading: with `memory`,
/// gyges pushes back on the senders and everything arrives once the destination reads again,
/// with RSS within the bound of its rings and buffers; with `best_effort` it drops and counts,
/// and what arrived plus what was counted is exactly what was sent. Both recover by themselves.
#[test]
fn an_overloaded_daemon_with_a_stalled_destination_stays_bounded_and_counts_every_message() {
    let duration = pick(Duration::from_secs(1), Duration::from_secs(600));
    let stall = pick(Duration::from_millis(1000), Duration::from_secs(10));
    let round = pick(100_000, 1_000_000);

    let memory = overload("memory", duration, stall, round);
    println!("SOAK overload-memory | {}", memory.summary("memory"));
    assert_eq!(memory.arrived, memory.sent, "memory lost messages");
    assert_eq!(memory.dropped, 0, "memory dropped messages");
    assert_eq!(memory.duplicates, 0, "memory delivered twice");
    memory.assert_rss_bounded();

    let best_effort = overload("best_effort", duration, stall, round);
    println!(
        "SOAK overload-best-effort | {}",
        best_effort.summary("best_effort")
    );
    assert_eq!(
        best_effort.arrived as u64 + best_effort.dropped,
        best_effort.sent as u64,
        "best_effort: arrived + dropped must be exactly what was sent"
    );
    assert!(best_effort.dropped > 0, "the stall should have cost drops");
    assert_eq!(best_effort.duplicates, 0);
    best_effort.assert_rss_bounded();
}

// --- idle and slow-loris connections ---------------------------------------------------------

/// Sends `count` numbered flood records on `connections` connections and returns the rate.
fn timed_flood(port: u16, first: usize, count: usize, connections: usize) -> f64 {
    let started = Instant::now();
    flood(port, first, count, connections, None);
    count as f64 / started.elapsed().as_secs_f64()
}

/// Lines in `path` (PayloadEncoder writes one per message).
fn lines_in(path: &Path) -> usize {
    std::fs::read(path)
        .unwrap_or_default()
        .iter()
        .filter(|&&byte| byte == b'\n')
        .count()
}

/// Thousands of idle connections and slow-loris senders (a byte of a frame header every
/// second, never a whole frame) beside two busy ones: the busy rate stays within a generous
/// margin of the rate without them, in the same run, and every busy message arrives.
#[test]
fn idle_and_slow_loris_connections_do_not_slow_the_busy_ones() {
    let idle = pick(1000, 10_000);
    let loris = pick(50, 500);
    let busy = pick(500_000, 5_000_000);
    let per_core = (idle + loris) / 2 + 256;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "[hekad]\nstats_interval = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\nmax_connections = {per_core}\n\
         [Out]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"out.log\"\n\
         encoder = \"PayloadEncoder\"\n"
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    let output = dir.path().join("out.log");
    let alone = timed_flood(port, 0, busy, 2);
    let rss_before = rss_bytes(pid_of(&daemon));

    let idle_streams: Vec<TcpStream> = (0..idle)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("idle connection"))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let loris_thread = {
        let stop = stop.clone();
        let mut streams: Vec<TcpStream> = (0..loris)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("slow-loris connection"))
            .collect();
        std::thread::spawn(move || {
            // A frame header that never ends: separator, a large header length, then a byte a
            // second of a header field.
            let header = [0x1e_u8, 0x7f, 0x08, 0x80, 0x80, 0x80, 0x01];
            let mut at = 0;
            while !stop.load(Ordering::Acquire) {
                for stream in &mut streams {
                    let _ = stream.write_all(&[header[at % header.len()]]);
                }
                at += 1;
                std::thread::sleep(Duration::from_secs(1));
            }
            streams.len()
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let rss_with = rss_bytes(pid_of(&daemon));
    let beside = timed_flood(port, busy, busy, 2);
    stop.store(true, Ordering::Release);
    let lorises = loris_thread.join().expect("slow-loris");
    wait_for_or_explain(
        Duration::from_secs(30),
        "every busy message in the file",
        || lines_in(&output) >= 2 * busy,
        || daemon.stderr(),
    );
    drop(idle_streams);
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let refused = daemon.counter("TcpInput.refused_connections_total");
    println!(
        "SOAK idle-loris | busy rate alone {alone:.0} msg/s, beside {idle} idle and {lorises} \
         slow-loris connections {beside:.0} msg/s ({:.0} %); RSS {:.1} MiB before them, \
         {:.1} MiB with them ({:.1} KiB per connection); {refused} refused",
        100.0 * beside / alone,
        mib(rss_before),
        mib(rss_with),
        rss_with.saturating_sub(rss_before) as f64 / 1024.0 / (idle + lorises) as f64
    );
    assert_eq!(lines_in(&output), 2 * busy, "busy messages lost or doubled");
    assert_eq!(
        refused, 0,
        "connections within max_connections were refused"
    );
    assert!(
        beside >= alone * 0.5,
        "busy rate fell from {alone:.0} to {beside:.0} msg/s beside idle connections"
    );
}

// --- a disk that fills -----------------------------------------------------------------------

/// A durable TcpOutput whose receiver is down, its queue on a 16 MiB tmpfs that must keep 12
/// MiB free, `full_action = "drop"`: when the disk fills mid-run gyges keeps serving, drops and
/// counts what does not fit; when the receiver comes up the queue drains to it, and what
/// arrived plus what was counted dropped is exactly what was sent.
#[test]
fn a_disk_that_fills_mid_run_keeps_to_full_action() {
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("small-disk");
    let _mount = match Tmpfs::mount(&queue_dir, "16m") {
        Ok(mount) => mount,
        Err(why) => {
            println!("SOAK disk-full | skipped: cannot mount a tmpfs here: {why}");
            return;
        }
    };
    let (port, receiver_port) = (free_port(), free_port());
    let config = format!(
        "[hekad]\nstats_interval = 0\nmin_disk_free = {}\nqueue_dir = \"{}\"\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [Out]\ntype = \"TcpOutput\"\nmessage_matcher = \"TRUE\"\n\
         address = \"127.0.0.1:{receiver_port}\"\nuse_buffering = true\n\
         [Out.buffering]\nmax_file_size = 1048576\nmax_buffer_size = 0\nfull_action = \"drop\"\n",
        12 << 20,
        queue_dir.display()
    );
    let mut daemon = Daemon::start(dir.path(), &config, &[port]);
    // About 9 MB of 300-byte records into the 4 MiB the queue may use.
    let first = 30_000;
    let tail = 5_000;
    flood(port, 0, first, 2, Some(100_000));
    wait_for_or_explain(
        Duration::from_secs(20),
        "the full disk to be reported",
        || daemon.stderr().contains("durable queue refused a batch"),
        || daemon.stderr(),
    );
    // Still serving: a connection is accepted and read.
    send_tcp(port, b"");
    let receiver = StallingReceiver::start(receiver_port, first + tail);
    receiver.wait_quiet(Duration::from_millis(1000), Duration::from_secs(60));
    let drained = receiver.arrived_in(0..first);
    flood(port, first, tail, 1, Some(50_000));
    wait_for_or_explain(
        Duration::from_secs(30),
        "the stream after the disk had room again",
        || receiver.arrived_in(first..first + tail) == tail,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let dropped = daemon.counter("Out.dropped_total");
    let arrived = receiver.arrived_in(0..first + tail);
    println!(
        "SOAK disk-full | 16 MiB tmpfs, min_disk_free 12 MiB, full_action = drop: {first} \
         messages sent while the receiver was down, {dropped} dropped (counted), {drained} \
         delivered from the queue when it came back; then {tail} more arrived whole"
    );
    assert!(dropped > 0, "the disk should have filled");
    assert!(drained > 0, "the queue should have held some");
    assert_eq!(
        arrived as u64 + dropped,
        (first + tail) as u64,
        "arrived + dropped must be exactly what was sent"
    );
}
