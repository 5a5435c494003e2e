//! A durable TcpOutput whose receiver is down, so that its queue fills, through the real
//! daemon: one test per `full_action`, and one where the disk (a small tmpfs with
//! `min_disk_free`), not `max_buffer_size`, is the limit.
//!
//! The queues are tiny (`max_buffer_size` 64 KiB, segments of 16 KiB, the smallest batches) so
//! that a few thousand messages fill them.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::durable::{sequences_in, CHUNK_MESSAGES};
use crate::util::*;

/// The framed messages numbered `first..first + count`.
fn numbered(first: usize, count: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for sequence in first..first + count {
        bytes.extend(frame(&numbered_message(
            sequence as i64,
            &format!("message {sequence}"),
        )));
    }
    bytes
}

/// A forwarder: TcpInput on `sender_port`, a durable TcpOutput to `receiver_port` with a tiny
/// queue (`max_buffer_size` bytes; 0: only `min_disk_free`). `global` adds lines to the global
/// section.
fn forwarder_config(
    (sender_port, receiver_port): (u16, u16),
    action: &str,
    (global, max_buffer_size): (&str, u64),
) -> String {
    format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nbatch_size = 4096\n\
         max_message_size = 1024\nsocket_receive_buffer = 65536\n{global}\n\
         [TcpInput]\naddress = \"127.0.0.1:{sender_port}\"\n\
         [TcpOutput]\nmessage_matcher = \"TRUE\"\naddress = \"127.0.0.1:{receiver_port}\"\n\
         delivery = \"durable\"\n\
         [TcpOutput.buffering]\nmax_file_size = 16384\nmax_buffer_size = {max_buffer_size}\n\
         full_action = \"{action}\"\n"
    )
}

/// The bytes of each connection a [`Receiver`] accepted, in accept order.
type Connections = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

/// A plain TCP receiver on a fixed port: keeps every byte each connection sent, readable
/// while the connections are open.
struct Receiver {
    connections: Connections,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the receiver port");
        listener.set_nonblocking(true).expect("nonblocking");
        let connections: Connections = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (connections, stop) = (connections.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let Ok((mut stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                    let bytes: Arc<Mutex<Vec<u8>>> = Arc::default();
                    connections.lock().unwrap().push(bytes.clone());
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        let mut buffer = vec![0; 64 * 1024];
                        while !stop.load(Ordering::Acquire) {
                            match stream.read(&mut buffer) {
                                Ok(0) => return,
                                Ok(read) => {
                                    bytes.lock().unwrap().extend_from_slice(&buffer[..read])
                                }
                                Err(error)
                                    if matches!(
                                        error.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
            })
        };
        Receiver {
            connections,
            stop,
            accept: Some(accept),
        }
    }

    /// The numbers of every whole message received so far, duplicates included.
    fn sequences(&self) -> Vec<i64> {
        let connections = self.connections.lock().unwrap().clone();
        connections
            .iter()
            .flat_map(|bytes| sequences_in(&bytes.lock().unwrap()))
            .collect()
    }

    fn distinct(&self) -> BTreeSet<i64> {
        self.sequences().into_iter().collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Sends the messages numbered `first..first + count` on one connection, `CHUNK_MESSAGES` per
/// write, counting in `written` the messages whose write returned. Errors end the send (a
/// daemon that shut down).
fn send_counted(
    port: u16,
    first: usize,
    count: usize,
    written: Arc<AtomicUsize>,
) -> JoinHandle<std::io::Result<()>> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        let mut at = first;
        while at < first + count {
            let chunk = CHUNK_MESSAGES.min(first + count - at);
            stream.write_all(&numbered(at, chunk))?;
            written.fetch_add(chunk, Ordering::AcqRel);
            at += chunk;
        }
        stream.shutdown(Shutdown::Write)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest)?;
        Ok(())
    })
}

/// Waits until `value` has not changed for `quiet`, at most `timeout`; returns the value.
fn wait_until_still(
    timeout: Duration,
    quiet: Duration,
    what: &str,
    mut value: impl FnMut() -> usize,
    explain: impl Fn() -> String,
) -> usize {
    let deadline = Instant::now() + timeout;
    let (mut last, mut since) = (value(), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = value();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            explain()
        );
    }
}

/// `block`: the queue fills, gyges stops reading and the sender's writes stop progressing;
/// nothing is dropped; once the receiver is up, every message arrives.
#[test]
fn full_queue_block_pushes_back_and_loses_nothing() {
    const TOTAL: usize = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let (sender_port, receiver_port) = (free_port(), free_port());
    let config = forwarder_config(
        (sender_port, receiver_port),
        "block",
        ("min_disk_free = 0", 65536),
    );
    let mut forwarder = Daemon::start(dir.path(), &config, &[sender_port]);
    let written = Arc::new(AtomicUsize::new(0));
    let sender = send_counted(sender_port, 0, TOTAL, written.clone());

    // Pushed back: the sender stalls well before the end (a 64 KiB queue and the socket
    // buffers hold far less than TOTAL messages).
    let stalled_at = wait_until_still(
        Duration::from_secs(60),
        Duration::from_secs(2),
        "the sender to be pushed back",
        || written.load(Ordering::Acquire),
        || forwarder.stderr(),
    );
    assert!(
        stalled_at < TOTAL,
        "the sender never stalled: {stalled_at} of {TOTAL} written\n{}",
        forwarder.stderr()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        written.load(Ordering::Acquire),
        stalled_at,
        "a blocked queue must stop gyges reading"
    );

    let receiver = Receiver::start(receiver_port);
    wait_for_or_explain(
        Duration::from_secs(120),
        "every number at the receiver",
        || receiver.distinct().len() >= TOTAL,
        || {
            format!(
                "{} of {TOTAL} arrived, {} written\n{}",
                receiver.distinct().len(),
                written.load(Ordering::Acquire),
                forwarder.stderr()
            )
        },
    );
    sender
        .join()
        .expect("sender thread")
        .expect("every write went through");
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    let distinct = receiver.distinct();
    assert_eq!(distinct.len(), TOTAL);
    assert_eq!(distinct.last(), Some(&(TOTAL as i64 - 1)));
    assert_eq!(forwarder.counter("TcpOutput.dropped_total"), 0);
    let sent = forwarder.counter("TcpOutput.sent_total");
    assert_eq!(
        sent,
        receiver.sequences().len() as u64,
        "sent_total counts every message delivered"
    );
    println!("block: the sender stalled at {stalled_at} of {TOTAL} messages; all arrived");
}

/// `drop`: what does not fit is dropped and counted; the daemon keeps serving, and once the
/// receiver is back what was queued and what is sent later arrive.
#[test]
fn full_queue_drop_counts_and_keeps_serving() {
    const FIRST: usize = 5_000;
    const LATER: usize = 1_000;
    const LATER_CHUNK: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let (sender_port, receiver_port) = (free_port(), free_port());
    let config = forwarder_config(
        (sender_port, receiver_port),
        "drop",
        ("min_disk_free = 0", 65536),
    );
    let mut forwarder = Daemon::start(dir.path(), &config, &[sender_port]);
    let written = Arc::new(AtomicUsize::new(0));
    send_counted(sender_port, 0, FIRST, written.clone())
        .join()
        .expect("sender thread")
        .expect("gyges keeps reading when it drops");
    std::thread::sleep(Duration::from_millis(500));

    let receiver = Receiver::start(receiver_port);
    // What was queued arrives (then nothing more from the first send).
    let queued = wait_until_still(
        Duration::from_secs(30),
        Duration::from_secs(2),
        "the queued messages to arrive",
        || receiver.distinct().len(),
        || forwarder.stderr(),
    );
    assert!(queued > 0, "nothing queued\n{}", forwarder.stderr());
    assert!(queued < FIRST, "the queue was never full");

    // Then paced sends, each well within the queue, each arriving before the next is sent
    // (a burst larger than the queue could be dropped even with the receiver up).
    for first in (FIRST..FIRST + LATER).step_by(LATER_CHUNK) {
        send_counted(sender_port, first, LATER_CHUNK, Arc::default())
            .join()
            .expect("sender thread")
            .expect("the daemon still serves");
        wait_for_or_explain(
            Duration::from_secs(30),
            "the later messages at the receiver",
            || {
                let distinct = receiver.distinct();
                (first..first + LATER_CHUNK).all(|sequence| distinct.contains(&(sequence as i64)))
            },
            || {
                let distinct = receiver.distinct();
                let later = distinct.iter().filter(|&&n| n >= FIRST as i64).count();
                format!(
                    "{later} later messages arrived ({} in all)\n{}",
                    distinct.len(),
                    forwarder.stderr()
                )
            },
        );
    }
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    let distinct = receiver.distinct();
    let from_first = distinct.iter().filter(|&&n| n < FIRST as i64).count() as u64;
    let dropped = forwarder.counter("TcpOutput.dropped_total");
    assert_eq!(
        forwarder.counter("TcpInput.records_total"),
        (FIRST + LATER) as u64
    );
    assert_eq!(
        from_first + dropped,
        FIRST as u64,
        "every message of the first send arrived or was counted as dropped"
    );
    assert_eq!(
        forwarder.counter("TcpOutput.sent_total"),
        receiver.sequences().len() as u64
    );
    println!("drop: {dropped} of {FIRST} dropped, {from_first} queued and delivered");
}

/// Checks the one error a full queue with `shutdown` logs: the output, the limit and its
/// value, the queue directory.
fn assert_full_error(stderr: &str, limit: &str, queue_dir: &Path) {
    let line = stderr
        .lines()
        .find(|line| line.contains("ERROR") && line.contains("full_action is"))
        .unwrap_or_else(|| panic!("no full-queue error logged:\n{stderr}"));
    assert!(line.contains("output [TcpOutput]"), "{line}");
    assert!(line.contains(limit), "{line}");
    assert!(
        line.contains(&queue_dir.join("TcpOutput").display().to_string()),
        "{line}"
    );
    let errors = stderr
        .lines()
        .filter(|line| line.contains("ERROR") && line.contains("full_action is"))
        .count();
    assert!(errors <= 2, "one error per core's queue at most:\n{stderr}");
}

/// Runs a forwarder whose queue fills with `full_action = "shutdown"`: it must exit non-zero
/// with the error; restarted with the receiver up, it delivers what was queued.
fn shutdown_then_restart(
    dir: &Path,
    global: (&str, u64),
    queue_dir: &Path,
    limit: &str,
    first: usize,
) {
    let (sender_port, receiver_port) = (free_port(), free_port());
    let config = forwarder_config((sender_port, receiver_port), "shutdown", global);
    let mut forwarder = Daemon::start(dir, &config, &[sender_port]);
    let written = Arc::new(AtomicUsize::new(0));
    // The daemon stops in the middle: the send may fail, which is fine.
    let sender = send_counted(sender_port, 0, first, written.clone());
    let status = forwarder.wait_exit(Duration::from_secs(60));
    let _ = sender.join();
    let stderr = forwarder.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_full_error(&stderr, limit, queue_dir);
    let read = forwarder.counter("TcpInput.records_total");
    let dropped = forwarder.counter("TcpOutput.dropped_total");
    assert!(dropped > 0, "{stderr}");
    let queued = read - dropped;
    assert!(queued > 0, "{stderr}");

    let receiver = Receiver::start(receiver_port);
    forwarder.restart(&[sender_port]);
    wait_for_or_explain(
        Duration::from_secs(60),
        "what was queued at the receiver",
        || receiver.distinct().len() as u64 >= queued,
        || {
            format!(
                "{} of {queued} arrived\n{}",
                receiver.distinct().len(),
                forwarder.stderr()
            )
        },
    );
    assert!(forwarder.stop().success(), "{}", forwarder.stderr());
    let distinct = receiver.distinct();
    assert_eq!(distinct.len() as u64, queued, "exactly what was accepted");
    assert!(distinct.iter().all(|&n| n >= 0 && n < first as i64));
    assert_eq!(
        forwarder.counter("TcpOutput.sent_total"),
        receiver.sequences().len() as u64
    );
    println!(
        "shutdown ({limit}): {read} read, {queued} queued and delivered after the restart, \
         {dropped} dropped"
    );
}

/// `shutdown` by `max_buffer_size`.
#[test]
fn full_queue_shutdown_stops_the_daemon_and_keeps_what_it_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("gyges-data/queue");
    shutdown_then_restart(
        dir.path(),
        ("min_disk_free = 0", 65536),
        &queue_dir,
        "max_buffer_size is 65536",
        5_000,
    );
}

/// A tmpfs mounted for one test, unmounted when dropped (also when the test fails).
pub(crate) struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    pub(crate) fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|error| error.to_string())?;
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|error| format!("cannot run mount: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|status| status.success());
        if !unmounted {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// `shutdown` by `min_disk_free` on a real small disk: a 16 MiB tmpfs that must keep 12 MiB
/// free, and `max_buffer_size = 0`, so the disk is the only limit. About 6 MB of messages eat
/// into the 4 MiB the queue may use.
#[test]
fn full_disk_shutdown_by_min_disk_free_on_a_small_tmpfs() {
    let dir = tempfile::tempdir().unwrap();
    let queue_dir = dir.path().join("small-disk");
    // Unmounted when dropped, after the daemon (started and stopped inside the call below).
    let _mount = match Tmpfs::mount(&queue_dir, "16m") {
        Ok(mount) => mount,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs here: {why}");
            return;
        }
    };
    let global = format!(
        "min_disk_free = {}\nqueue_dir = \"{}\"",
        12 << 20,
        queue_dir.display()
    );
    shutdown_then_restart(
        dir.path(),
        (&global, 0),
        &queue_dir,
        "min_disk_free is 12582912",
        60_000,
    );
}
