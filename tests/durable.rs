//! Durable outputs through the daemon: kill -9 in the middle of a stream and restart, and a
//! TcpOutput whose receiver is down for a while. Every message arrives at least once.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

/// Messages per connection; a failed connection's whole chunk is sent again.
pub(crate) const CHUNK_MESSAGES: usize = 500;

/// The framed bytes of chunk `chunk`: messages `chunk * CHUNK_MESSAGES ..`.
pub(crate) fn chunk_bytes(chunk: usize) -> Vec<u8> {
    let first = chunk * CHUNK_MESSAGES;
    let mut bytes = Vec::new();
    for sequence in first..first + CHUNK_MESSAGES {
        let payload = format!("message {sequence}");
        bytes.extend(frame(&numbered_message(sequence as i64, &payload)));
    }
    bytes
}

/// Sends one chunk on a new connection and waits until the daemon has read all of it and
/// closed its side.
pub(crate) fn send_chunk(port: u16, bytes: &[u8]) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(bytes)?;
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    Ok(())
}

/// The `seq` of every whole, decodable frame in `bytes`. Unlike `read_frames` this resyncs
/// over anything else: a write cut by kill -9 may leave a partial frame behind.
pub(crate) fn sequences_in(bytes: &[u8]) -> Vec<i64> {
    let mut sequences = Vec::new();
    let mut at = 0;
    while at + 3 <= bytes.len() {
        let found = (|| {
            if bytes[at] != 0x1e {
                return None;
            }
            let header_length = usize::from(bytes[at + 1]);
            let header = bytes.get(at + 2..at + 2 + header_length)?;
            if header.first() != Some(&0x08) {
                return None;
            }
            let mut position = 1;
            let length = gyges::message::wire::read_varint(header, &mut position)? as usize;
            let start = at + 3 + header_length;
            if bytes.get(at + 2 + header_length) != Some(&0x1f) {
                return None;
            }
            let message = bytes.get(start..start.checked_add(length)?)?;
            Some((sequence_of(message)?, start + length))
        })();
        match found {
            Some((sequence, next)) => {
                sequences.push(sequence);
                at = next;
            }
            None => at += 1,
        }
    }
    sequences
}

/// How many times each number arrived.
pub(crate) fn tally(sequences: &[i64]) -> BTreeMap<i64, u64> {
    let mut counts = BTreeMap::new();
    for &sequence in sequences {
        *counts.entry(sequence).or_insert(0) += 1;
    }
    counts
}

/// Asserts every number below `total` arrived and nothing else did; returns the duplicates.
pub(crate) fn assert_at_least_once(counts: &BTreeMap<i64, u64>, total: usize, what: &str) -> u64 {
    let missing: Vec<i64> = (0..total as i64)
        .filter(|sequence| !counts.contains_key(sequence))
        .collect();
    assert!(
        missing.is_empty(),
        "{what}: {} of {total} numbers never arrived, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let strangers = counts
        .keys()
        .filter(|&&sequence| sequence >= total as i64)
        .count();
    assert_eq!(strangers, 0, "{what}: numbers that were never sent");
    counts.values().map(|count| count - 1).sum()
}

fn durable_file_config(port: u16, path: &str) -> String {
    format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"{path}\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n\
         use_buffering = true\n\
         [FileOutput.buffering]\nmax_file_size = 1048576\nmax_buffer_size = 67108864\n"
    )
}

/// Chunks sent this long before a kill were read, batched and appended to the disk queue by
/// then (flush_interval is 20 ms); later ones may have been in the daemon's memory only, since
/// plain Heka framing has no acknowledgement, so they are sent again.
pub(crate) const UNACKNOWLEDGED_WINDOW: Duration = Duration::from_millis(300);

/// Numbered chunks sent to a daemon that is killed with -9 now and then. Every chunk goes in
/// order, each on its own connection, retried until it goes through; chunks completed shortly
/// before a kill ([`UNACKNOWLEDGED_WINDOW`]) are sent again, since plain Heka framing cannot say
/// whether the daemon had queued them.
pub(crate) struct KillingSender {
    completed: Arc<Mutex<Vec<(usize, Instant)>>>,
    resend: Arc<Mutex<Vec<usize>>>,
    sent: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
    chunks: usize,
}

impl KillingSender {
    /// Starts sending chunks `0..chunks` to `port`, paced so that kills land mid-stream.
    pub(crate) fn start(port: u16, chunks: usize) -> KillingSender {
        let completed: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::default();
        let resend: Arc<Mutex<Vec<usize>>> = Arc::default();
        let sent = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (thread_completed, thread_resend, thread_sent, thread_done) = (
            completed.clone(),
            resend.clone(),
            sent.clone(),
            done.clone(),
        );
        let thread = std::thread::spawn(move || {
            let mut failures = 0u64;
            let mut next = 0;
            loop {
                let chunk = match thread_resend.lock().unwrap().pop() {
                    Some(chunk) => chunk,
                    None if next < chunks => {
                        next += 1;
                        next - 1
                    }
                    None if thread_done.load(Ordering::Acquire) => return failures,
                    None => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                let bytes = chunk_bytes(chunk);
                while send_chunk(port, &bytes).is_err() {
                    failures += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                thread_completed
                    .lock()
                    .unwrap()
                    .push((chunk, Instant::now()));
                thread_sent.fetch_add(1, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        KillingSender {
            completed,
            resend,
            sent,
            done,
            thread,
            chunks,
        }
    }

    /// Waits until `chunks` chunks went, kills `daemon` with -9, queues the chunks completed
    /// just before for resending, and restarts it after `pause`.
    pub(crate) fn kill_after(
        &self,
        chunks: usize,
        daemon: &mut Daemon,
        ports: &[u16],
        pause: Duration,
    ) {
        wait_for(Duration::from_secs(60), "the sender to progress", || {
            self.sent.load(Ordering::Acquire) >= chunks
        });
        daemon.kill();
        let killed_at = Instant::now();
        let recent: Vec<usize> = self
            .completed
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, at)| killed_at.duration_since(*at) < UNACKNOWLEDGED_WINDOW)
            .map(|(chunk, _)| *chunk)
            .collect();
        self.resend.lock().unwrap().extend(recent);
        std::thread::sleep(pause);
        daemon.restart(ports);
    }

    /// Waits until every chunk went, then stops. Returns the failed connections retried and
    /// the messages sent again.
    pub(crate) fn finish(self) -> (u64, usize) {
        let (failures, resent, _) = self.finish_counting();
        (failures, resent)
    }

    /// [`KillingSender::finish`], with how many times each chunk was sent whole.
    pub(crate) fn finish_counting(self) -> (u64, usize, Vec<u64>) {
        wait_for(Duration::from_secs(120), "every chunk to be sent", || {
            self.sent.load(Ordering::Acquire) >= self.chunks
        });
        self.done.store(true, Ordering::Release);
        let failures = self.thread.join().expect("sender");
        let completed = self.completed.lock().unwrap();
        let resent = (completed.len() - self.chunks) * CHUNK_MESSAGES;
        let mut sends = vec![0; self.chunks];
        for (chunk, _) in completed.iter() {
            sends[*chunk] += 1;
        }
        (failures, resent, sends)
    }
}

#[test]
fn durable_file_output_survives_kill_9_and_restart() {
    const CHUNKS: usize = 100;
    const TOTAL: usize = CHUNKS * CHUNK_MESSAGES;
    const KILL_AFTER_CHUNKS: [usize; 3] = [20, 45, 70];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &durable_file_config(port, "out.log"), &[port]);

    let sender = KillingSender::start(port, CHUNKS);
    for kill_after in KILL_AFTER_CHUNKS {
        sender.kill_after(kill_after, &mut daemon, &[port], Duration::from_millis(200));
    }
    let (failures, resent) = sender.finish();

    let output = dir.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(30),
        "every number in the output",
        || {
            let counts = tally(&sequences_in(&std::fs::read(&output).unwrap_or_default()));
            counts.len() >= TOTAL
        },
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = tally(&sequences_in(&std::fs::read(&output).unwrap()));
    let duplicates = assert_at_least_once(&counts, TOTAL, "durable FileOutput");
    println!(
        "durable FileOutput: {TOTAL} messages, 3 kills, {failures} failed connections retried, \
         {resent} messages resent by the sender, {duplicates} duplicates in the output"
    );
    // The queue really was used: each core's source queue and its consumer's checkpoint.
    let queue = dir.path().join("gyges-data/queue/FileOutput/0");
    assert!(
        queue.join("FileOutput.cp").exists(),
        "no checkpoint in {}",
        queue.display()
    );
}

#[test]
fn durable_tcp_output_delivers_once_its_receiver_comes_back() {
    const TOTAL: usize = 10 * CHUNK_MESSAGES;
    let (sender_dir, receiver_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (sender_port, receiver_port) = (free_port(), free_port());
    let forwarder = format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{sender_port}\"\n\
         [TcpOutput]\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         delivery = \"durable\"\n"
    );
    let mut forwarder = Daemon::start(sender_dir.path(), &forwarder, &[sender_port]);
    for chunk in 0..TOTAL / CHUNK_MESSAGES {
        send_chunk(sender_port, &chunk_bytes(chunk)).expect("send to the forwarder");
    }
    // Queued on disk while the receiver is down; a kill -9 now must not lose it.
    std::thread::sleep(Duration::from_millis(500));
    forwarder.kill();
    forwarder.restart(&[sender_port]);
    std::thread::sleep(Duration::from_millis(300));

    let receiver_config = format!(
        "[hekad]\nstats_interval = 0\n[TcpInput]\naddress = \"127.0.0.1:{receiver_port}\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"in.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n"
    );
    let mut receiver = Daemon::start(receiver_dir.path(), &receiver_config, &[receiver_port]);
    let output = receiver_dir.path().join("in.log");
    wait_for_or_explain(
        Duration::from_secs(30),
        "every number at the receiver",
        || tally(&sequences_in(&std::fs::read(&output).unwrap_or_default())).len() >= TOTAL,
        || {
            format!(
                "forwarder:\n{}\nreceiver:\n{}",
                forwarder.stderr(),
                receiver.stderr()
            )
        },
    );
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let received = sequences_in(&std::fs::read(&output).unwrap());
    // In order per source core: one chunk is one connection, read by one core, so its
    // messages first arrive in the order they were sent (a replay may repeat a stretch).
    for chunk in 0..TOTAL / CHUNK_MESSAGES {
        let range = (chunk * CHUNK_MESSAGES) as i64..((chunk + 1) * CHUNK_MESSAGES) as i64;
        let mut seen = std::collections::BTreeSet::new();
        let order: Vec<i64> = received
            .iter()
            .copied()
            .filter(|sequence| range.contains(sequence) && seen.insert(*sequence))
            .collect();
        assert!(
            order.windows(2).all(|pair| pair[0] < pair[1]),
            "chunk {chunk} arrived out of order"
        );
    }
    let counts = tally(&received);
    let duplicates = assert_at_least_once(&counts, TOTAL, "durable TcpOutput");
    // The restarted forwarder delivered everything (the receiver was down before): its
    // sent_total counts each message it sent, from the records' message counts.
    assert_eq!(
        forwarder.counter("TcpOutput.sent_total"),
        received.len() as u64,
        "{}",
        forwarder.stderr()
    );
    println!(
        "durable TcpOutput: {TOTAL} messages through a receiver outage, {duplicates} duplicates"
    );
}

/// A receiver for the acknowledged chain: a durable FileOutput, so that what it acknowledged
/// survives its own kill -9.
fn acknowledging_receiver_config(port: u16) -> String {
    format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [FileOutput]\nmessage_matcher = \"TRUE\"\npath = \"in.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n\
         use_buffering = true\n\
         [FileOutput.buffering]\nmax_file_size = 1048576\nmax_buffer_size = 67108864\n"
    )
}

fn acknowledging_forwarder_config(port: u16, receiver_port: u16, ack_timeout_ms: u64) -> String {
    format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [TcpOutput]\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         use_buffering = true\nack = true\nack_timeout = {ack_timeout_ms}\n"
    )
}

/// gyges → gyges with `ack = true`, and the receiver killed with -9 again and again while the
/// stream flows: nothing the forwarder accepted is lost. Without acknowledgements, what the
/// receiver had read but not yet queued at each kill would be gone.
#[test]
fn acknowledged_chain_loses_nothing_when_the_receiver_is_killed() {
    const CHUNKS: usize = 60;
    const TOTAL: usize = CHUNKS * CHUNK_MESSAGES;
    const KILL_AFTER_CHUNKS: [usize; 4] = [10, 25, 40, 50];
    let (forwarder_dir, receiver_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (forwarder_port, receiver_port) = (free_port(), free_port());
    let mut receiver = Daemon::start(
        receiver_dir.path(),
        &acknowledging_receiver_config(receiver_port),
        &[receiver_port],
    );
    let mut forwarder = Daemon::start(
        forwarder_dir.path(),
        &acknowledging_forwarder_config(forwarder_port, receiver_port, 2000),
        &[forwarder_port],
    );
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let sent = sent.clone();
        std::thread::spawn(move || {
            for chunk in 0..CHUNKS {
                send_chunk(forwarder_port, &chunk_bytes(chunk)).expect("send to the forwarder");
                sent.fetch_add(1, Ordering::AcqRel);
                std::thread::sleep(Duration::from_millis(15));
            }
        })
    };
    let output = receiver_dir.path().join("in.log");
    let arrived = || tally(&sequences_in(&std::fs::read(&output).unwrap_or_default())).len();
    for kill_after in KILL_AFTER_CHUNKS {
        wait_for(Duration::from_secs(60), "the stream to progress", || {
            sent.load(Ordering::Acquire) >= kill_after
        });
        // Kill while the forwarder is still delivering, not after it caught up.
        receiver.kill();
        std::thread::sleep(Duration::from_millis(150));
        receiver.restart(&[receiver_port]);
    }
    sender.join().expect("sender");
    wait_for_or_explain(
        Duration::from_secs(60),
        "every number at the receiver",
        || arrived() >= TOTAL,
        || {
            format!(
                "{} of {TOTAL} arrived\nforwarder:\n{}\nreceiver:\n{}",
                arrived(),
                forwarder.stderr(),
                receiver.stderr()
            )
        },
    );
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    assert!(receiver.stop().success(), "{}", receiver.stderr());
    let counts = tally(&sequences_in(&std::fs::read(&output).unwrap()));
    let duplicates = assert_at_least_once(&counts, TOTAL, "acknowledged chain");
    let acks = forwarder.counter("TcpOutput.acks_total");
    assert!(acks > 0, "the forwarder counted no acknowledgement");
    let acked_messages = forwarder.counter("TcpOutput.sent_total");
    assert!(acked_messages > 0, "the forwarder counted nothing as sent");
    assert!(
        !forwarder
            .stderr()
            .contains("did not answer the acknowledgement hello"),
        "a gyges receiver must welcome the hello:\n{}",
        forwarder.stderr()
    );
    println!(
        "acknowledged chain: {TOTAL} messages, {} receiver kills, {acks} acknowledgements \
         counted at the last run, {duplicates} duplicates",
        KILL_AFTER_CHUNKS.len()
    );
}

/// A receiver that never answers the hello (as Heka's TcpInput does not): after `ack_timeout`
/// the forwarder sends unacknowledged, and everything arrives. The hello is the first thing on
/// the connection, and a Heka-framed reader skips it as a bad header.
#[test]
fn acknowledged_output_falls_back_for_a_receiver_that_does_not_answer() {
    const TOTAL: usize = 2 * CHUNK_MESSAGES;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (receiver, collected) = collect_listener(1);
    // One core, so one consumer and one connection to the collector.
    let config = acknowledging_forwarder_config(port, receiver.port(), 300).replacen(
        "[hekad]\n",
        "[hekad]\ncores = [0]\n",
        1,
    );
    let mut forwarder = Daemon::start(dir.path(), &config, &[port]);
    for chunk in 0..TOTAL / CHUNK_MESSAGES {
        send_chunk(port, &chunk_bytes(chunk)).expect("send to the forwarder");
    }
    // The receiver's connection ends when the forwarder stops.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    let stream = collected.join().expect("collector").concat();
    assert!(
        matches!(
            gyges::message::ack::parse(&stream),
            gyges::message::ack::Parsed::Control {
                control: gyges::message::ack::Control::Hello { .. },
                ..
            }
        ),
        "the connection starts with the hello"
    );
    let counts = tally(&sequences_in(&stream));
    let duplicates = assert_at_least_once(&counts, TOTAL, "unacknowledged fallback");
    assert_eq!(duplicates, 0);
    assert!(forwarder
        .stderr()
        .contains("did not answer the acknowledgement hello"));
}
