//! Durable filters through the daemon: a Lua filter with `use_buffering = true` that injects
//! one numbered message per input into a durable FileOutput. Killed with -9 mid-stream and
//! restarted, every number still arrives (duplicates counted); a clean stop leaves what the
//! filter had not read on disk for the next start; contradicting keys are refused.

use std::time::Duration;

use crate::durable::{assert_at_least_once, sequences_in, tally, KillingSender, CHUNK_MESSAGES};
use crate::util::*;

fn script() -> String {
    format!(
        "{}/tests/lua/numbered_injector.lua",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The filter `Numbered` (durable, `busy_ms` of CPU time per message) injects a
/// `numbered` message per `test` message; only those reach the durable `FileOutput`.
fn config(port: u16, busy_ms: u64) -> String {
    format!(
        "[hekad]\nstats_interval = 0\ncheckpoint_interval = 100\nmin_disk_free = 0\n\
         [TcpInput]\naddress = \"127.0.0.1:{port}\"\n\
         [Numbered]\ntype = \"SandboxFilter\"\nfilename = \"{script}\"\n\
         message_matcher = \"Type == 'test'\"\ninstruction_limit = 1000000000\nuse_buffering = true\n\
         [Numbered.config]\nbusy_ms = {busy_ms}\n\
         [Numbered.buffering]\nmax_file_size = 1048576\nmax_buffer_size = 67108864\n\
         [FileOutput]\nmessage_matcher = \"Type == 'heka.sandbox.numbered'\"\npath = \"out.log\"\n\
         encoder = \"ProtobufEncoder\"\nuse_framing = true\nflush_interval = 20\n\
         use_buffering = true\n",
        script = script()
    )
}

/// Bytes of segment files in each core row's queue of `queue`, by row.
fn queue_bytes_by_row(dir: &std::path::Path, queue: &str) -> Vec<u64> {
    let root = dir.join("gyges-data/queue").join(queue);
    let mut rows: Vec<(usize, u64)> = std::fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("{}: {error}", root.display()))
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let row: usize = entry.file_name().to_str()?.parse().ok()?;
            let bytes = std::fs::read_dir(entry.path())
                .ok()?
                .filter_map(Result::ok)
                .filter(|file| file.file_name().to_string_lossy().ends_with(".log"))
                .filter_map(|file| file.metadata().ok())
                .map(|metadata| metadata.len())
                .sum();
            Some((row, bytes))
        })
        .collect();
    rows.sort();
    rows.into_iter().map(|(_, bytes)| bytes).collect()
}

#[test]
fn a_durable_filter_and_output_survive_kill_9_and_restart() {
    const CHUNKS: usize = 60;
    const TOTAL: usize = CHUNKS * CHUNK_MESSAGES;
    const KILL_AFTER_CHUNKS: [usize; 3] = [12, 28, 44];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut daemon = Daemon::start(dir.path(), &config(port, 0), &[port]);

    let sender = KillingSender::start(port, CHUNKS);
    for kill_after in KILL_AFTER_CHUNKS {
        sender.kill_after(kill_after, &mut daemon, &[port], Duration::from_millis(100));
    }
    let (_, resent) = sender.finish();

    let output = dir.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(30),
        "every number in the output",
        || tally(&sequences_in(&std::fs::read(&output).unwrap_or_default())).len() >= TOTAL,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = tally(&sequences_in(&std::fs::read(&output).unwrap()));
    let duplicates = assert_at_least_once(&counts, TOTAL, "durable filter");
    println!(
        "durable filter: {TOTAL} messages, 3 kills, {resent} messages resent by the sender, \
         {duplicates} duplicates in the output"
    );
    // The filter read its records from disk: every core's queue has the filter's checkpoint.
    let rows = queue_bytes_by_row(dir.path(), "Numbered").len();
    for row in 0..rows {
        let checkpoint = dir
            .path()
            .join(format!("gyges-data/queue/Numbered/{row}/Numbered.cp"));
        assert!(checkpoint.exists(), "no {}", checkpoint.display());
    }
    // What the filter injected went into the queue of its own core (the last: the default
    // filter core) for the durable output, and into no other core's.
    let output_rows = queue_bytes_by_row(dir.path(), "FileOutput");
    let (host, others) = output_rows.split_last().expect("output queues");
    assert!(*host > 0, "{output_rows:?}");
    assert!(others.iter().all(|&bytes| bytes == 0), "{output_rows:?}");
}

/// Sends numbers `from..to`, a few per write with a pause between, so that they arrive in
/// many small lane batches (queue records) rather than one big one.
fn send_trickle(port: u16, from: i64, to: i64) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    for first in (from..to).step_by(5) {
        let bytes: Vec<u8> = (first..(first + 5).min(to))
            .flat_map(|n| frame(&numbered_message(n, "x")))
            .collect();
        stream.write_all(&bytes).expect("send");
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// `gyges queue -c` on the daemon's config: the lag (in records) of consumer `consumer` on
/// each of `queue`'s core rows.
fn lag_records(daemon: &Daemon, queue: &str, consumer: &str) -> Vec<u64> {
    let config = daemon.config.to_str().unwrap();
    let output = gyges()
        .args(["queue", "-c", config])
        .current_dir(&daemon.dir)
        .output()
        .expect("gyges queue");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let mut lags = Vec::new();
    let mut in_queue = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_queue = line.starts_with(&format!("{queue}/"));
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if in_queue && fields.first() == Some(&consumer) {
            let lag = fields
                .get(fields.len() - 2)
                .and_then(|lag| lag.parse().ok());
            lags.push(lag.unwrap_or_else(|| panic!("no lag in {line:?}:\n{text}")));
        }
    }
    assert!(!lags.is_empty(), "no {consumer} in {queue}:\n{text}");
    lags
}

#[test]
fn a_clean_stop_leaves_what_the_filter_has_not_read_for_the_next_start() {
    const TOTAL: i64 = 600;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // A slow filter: 40 ms of CPU per message (the process's: 20 to 40 ms of wall time here),
    // so most of the input is still queued when the stop comes and the 5 s drain at stop
    // cannot finish it.
    let mut daemon = Daemon::start(dir.path(), &config(port, 40), &[port]);
    send_trickle(port, 0, TOTAL);
    let output = dir.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(20),
        "the filter to start",
        || !sequences_in(&std::fs::read(&output).unwrap_or_default()).is_empty(),
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let first_run = tally(&sequences_in(&std::fs::read(&output).unwrap()));
    let left: u64 = lag_records(&daemon, "Numbered", "Numbered").iter().sum();
    assert!(
        (first_run.len() as i64) < TOTAL && left > 0,
        "{} processed, {left} queue records left\n{}",
        first_run.len(),
        daemon.stderr()
    );

    // The next start (a fast filter now) processes what was left. The clean stop checkpointed
    // every record the filter had finished; the one it was part way through, if any, is
    // processed again in full.
    std::fs::write(&daemon.config, config(port, 0)).unwrap();
    daemon.restart(&[port]);
    wait_for_or_explain(
        Duration::from_secs(20),
        "every number after the restart",
        || {
            tally(&sequences_in(&std::fs::read(&output).unwrap_or_default())).len()
                >= TOTAL as usize
        },
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = tally(&sequences_in(&std::fs::read(&output).unwrap()));
    let duplicates = assert_at_least_once(&counts, TOTAL as usize, "clean stop");
    println!(
        "durable filter, clean stop: {} of {TOTAL} in the output after the first run, {left} \
         filter queue records left for the next start, {duplicates} duplicates",
        first_run.len()
    );
    let left: u64 = lag_records(&daemon, "Numbered", "Numbered").iter().sum();
    assert_eq!(left, 0);
}

/// Appends `records` (queue record bytes, one message each) to core row 0's queue of filter
/// `Numbered` under `dir`, as a gyges of another format version might have left them.
fn plant_filter_queue_records(dir: &std::path::Path, records: Vec<Vec<u8>>) {
    let queue = dir.join("gyges-data/queue/Numbered/0");
    glommio::LocalExecutorBuilder::default()
        .io_memory(0)
        .make()
        .expect("an executor")
        .run(async move {
            let options = gyges::queue::QueueOptions {
                max_file_size: 1 << 20,
                min_disk_free: 0,
                ..gyges::queue::QueueOptions::default()
            };
            let mut writer = gyges::queue::Writer::open(&queue, &options, &["Numbered".into()])
                .await
                .expect("open the filter's queue");
            let counted = records.iter().map(|record| (record.as_slice(), 1));
            writer.append_counted(counted).await.expect("append");
            writer.close().await.expect("close");
        });
}

/// A queue record of the current format version holding one `test` message numbered `seq`.
fn filter_queue_record(version: u8, seq: i64) -> Vec<u8> {
    use gyges::filter::record;
    let mut lane_batch = Vec::new();
    record::encode_raw(&mut lane_batch, 0, 0, &numbered_message(seq, "x"));
    let mut queued = Vec::new();
    record::encode_queue_record(&mut queued, &lane_batch);
    queued[0] = version;
    queued
}

/// Queue records of an unknown format version are skipped and counted, logged once with the
/// queue's path, and never stop the filter from processing the records around them.
#[test]
fn filter_queue_records_of_an_unknown_version_are_skipped_counted_and_logged_once() {
    use gyges::filter::record::QUEUE_FORMAT_VERSION;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    plant_filter_queue_records(
        dir.path(),
        vec![
            filter_queue_record(QUEUE_FORMAT_VERSION + 98, 1),
            filter_queue_record(QUEUE_FORMAT_VERSION, 2),
            filter_queue_record(0, 3),
            filter_queue_record(QUEUE_FORMAT_VERSION, 4),
        ],
    );
    let mut daemon = Daemon::start(dir.path(), &config(port, 0), &[port]);
    let output = dir.path().join("out.log");
    wait_for_or_explain(
        Duration::from_secs(20),
        "the two readable records in the output",
        || tally(&sequences_in(&std::fs::read(&output).unwrap_or_default())).len() >= 2,
        || daemon.stderr(),
    );
    assert!(daemon.stop().success(), "{}", daemon.stderr());
    let counts = tally(&sequences_in(&std::fs::read(&output).unwrap()));
    let numbers: Vec<i64> = counts.keys().copied().collect();
    assert_eq!(
        numbers,
        [2, 4],
        "only the records of this version are processed"
    );
    let log = daemon.stderr();
    let reports: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("unknown format version"))
        .collect();
    assert_eq!(reports.len(), 1, "logged once per queue:\n{log}");
    assert!(
        reports[0].contains("Numbered/0"),
        "names the queue: {}",
        reports[0]
    );
    assert_eq!(daemon.counter("Numbered.decode_failures_total"), 2, "{log}");
    assert_eq!(daemon.counter("Numbered.dropped_total"), 2, "{log}");
    let left: u64 = lag_records(&daemon, "Numbered", "Numbered").iter().sum();
    assert_eq!(left, 0, "skipped records are committed with their read");
}

#[test]
fn contradicting_delivery_keys_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let filter = |keys: &str| {
        format!(
            "[TcpInput]\naddress = \"127.0.0.1:5565\"\n\
             [F]\ntype = \"SandboxFilter\"\nfilename = \"{}\"\nmessage_matcher = \"TRUE\"\n{keys}",
            script()
        )
    };
    for (keys, key, words) in [
        (
            "delivery = \"durable\"\nuse_buffering = false\n",
            "delivery",
            "contradicts use_buffering",
        ),
        (
            "delivery = \"memory\"\nring_full_action = \"drop\"\n",
            "delivery",
            "contradicts ring_full_action",
        ),
        (
            "delivery = \"best_effort\"\nring_full_action = \"block\"\n",
            "delivery",
            "contradicts ring_full_action",
        ),
        (
            "delivery = \"memory\"\nuse_buffering = true\n",
            "delivery",
            "contradicts use_buffering",
        ),
        (
            "use_buffering = true\nring_full_action = \"drop\"\n",
            "ring_full_action",
            "no ring",
        ),
        ("delivery = \"fast\"\n", "delivery", "is not"),
        (
            "[F.buffering]\nmax_file_size = 1048576\n",
            "buffering",
            "delivery is not durable",
        ),
        (
            "use_buffering = true\n[F.buffering]\nmax_file_size = 1\n",
            "buffering.max_file_size",
            "",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, filter(keys)).unwrap();
        let run = run_gyges(&["validate", "-c", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(1), "{keys}: {}", run.stderr);
        assert!(
            run.stderr.contains("[F]")
                && run.stderr.contains(&format!("`{key}`"))
                && run.stderr.contains(words),
            "{keys}: {}",
            run.stderr
        );
    }
    // The shorthands that agree are accepted.
    for keys in [
        "delivery = \"best_effort\"\nring_full_action = \"drop\"\n",
        "delivery = \"memory\"\n",
        "delivery = \"durable\"\nuse_buffering = true\n[F.buffering]\nfull_action = \"drop\"\n",
    ] {
        let path = dir.path().join("good.toml");
        std::fs::write(&path, filter(keys)).unwrap();
        let run = run_gyges(&["validate", "-c", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "{keys}: {}", run.stderr);
    }
}
