//! The disk queue's throughput: appends of ~300-byte records in 256 KiB batches under each sync
//! policy, read-back from the page cache, and a writer with a reader keeping up (segments
//! deleted as it goes), against framing into memory with no I/O as the baseline.
//!
//! `cargo bench --bench queue`; `GYGES_BENCH_QUICK=1` for a short run; `GYGES_BENCH_DIR` to
//! choose the directory (default `target/bench-queue`, on the disk the build is on, because
//! tmpfs would make every fsync free). Prints a table and writes
//! `bench/results/<hostname>-<YYYY-MM-DD>-queue.md`.

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gyges::queue::{record, FullAction, QueueOptions, ReadBatch, Reader, SyncPolicy, Writer};
use hdrhistogram::Histogram;

/// Message bytes; with the 11 bytes of framing and checksum each record is 300 bytes.
const MESSAGE_BYTES: usize = 289;
/// Bytes of messages per appended batch (the runtime's default batch size).
const BATCH_BYTES: usize = 256 * 1024;

struct Settings {
    /// Bytes of records appended per measurement.
    total_bytes: u64,
    dir: PathBuf,
}

/// One measured run.
struct Row {
    name: String,
    records: u64,
    bytes_written: u64,
    seconds: f64,
    fsyncs: u64,
    /// Latency of one `append_batch` (or one read), microseconds.
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

impl Row {
    fn mb_per_s(&self) -> f64 {
        self.bytes_written as f64 / self.seconds / 1e6
    }

    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    fn bytes_per_message(&self) -> f64 {
        self.bytes_written as f64 / self.records.max(1) as f64
    }

    fn fsyncs_per_s(&self) -> f64 {
        self.fsyncs as f64 / self.seconds
    }
}

/// Passes of every row (round by round: each pass runs every row once); a row's figures are
/// its median pass by MB/s, with the lowest and highest beside it.
const PASSES: usize = 3;

/// Every row once: the memory baseline, append then read back under each sync policy, and a
/// writer with a reader keeping up.
fn one_pass(settings: &Settings, batch: &[Vec<u8>]) -> Vec<Row> {
    let mut rows = vec![memory_baseline(settings, batch)];
    let settings = Settings {
        total_bytes: settings.total_bytes,
        dir: settings.dir.clone(),
    };
    let batch = batch.to_vec();
    let results = glommio::LocalExecutorBuilder::default()
        .io_memory(0)
        .make()
        .expect("an executor")
        .run(async move {
            // Warm-up, not measured: the first files and pages of a run cost more.
            let warm_up = Settings {
                total_bytes: 16 << 20,
                dir: settings.dir.clone(),
            };
            append_then_read(&warm_up, SyncPolicy::None, &batch).await;
            let mut rows = Vec::new();
            let mut reads = Vec::new();
            for sync in [
                SyncPolicy::None,
                SyncPolicy::Interval,
                SyncPolicy::EveryBatch,
            ] {
                let (append, read) = append_then_read(&settings, sync, &batch).await;
                println!("{}: {:.0} MB/s", append.name, append.mb_per_s());
                rows.push(append);
                reads.push(read);
            }
            rows.push(keeping_up(&settings, &batch).await);
            rows.extend(reads);
            rows
        });
    rows.extend(results);
    rows
}

/// For each row, the median of the passes by MB/s and the (lowest, highest) MB/s.
fn median_rows(runs: Vec<Vec<Row>>) -> Vec<(Row, (f64, f64))> {
    let rows = runs.first().map_or(0, Vec::len);
    let mut columns: Vec<Vec<Row>> = (0..rows).map(|_| Vec::new()).collect();
    for run in runs {
        for (column, row) in columns.iter_mut().zip(run) {
            column.push(row);
        }
    }
    columns
        .into_iter()
        .map(|mut column| {
            column.sort_by(|a, b| a.mb_per_s().total_cmp(&b.mb_per_s()));
            let range = (column[0].mb_per_s(), column[column.len() - 1].mb_per_s());
            let middle = (column.len() - 1) / 2;
            (column.swap_remove(middle), range)
        })
        .collect()
}

fn messages() -> Vec<Vec<u8>> {
    let count = BATCH_BYTES / MESSAGE_BYTES;
    (0..count)
        .map(|index| {
            let mut message = (index as u64).to_le_bytes().to_vec();
            message.extend((8..MESSAGE_BYTES).map(|at| (at * 7 + index) as u8));
            message
        })
        .collect()
}

fn options(sync: SyncPolicy) -> QueueOptions {
    QueueOptions {
        max_file_size: 64 * 1024 * 1024,
        max_buffer_size: 0,
        min_disk_free: 0,
        full_action: FullAction::Block,
        sync,
        ..QueueOptions::default()
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

fn row(
    name: &str,
    records: u64,
    bytes: u64,
    elapsed: Duration,
    fsyncs: u64,
    h: &Histogram<u64>,
) -> Row {
    Row {
        name: name.into(),
        records,
        bytes_written: bytes,
        seconds: elapsed.as_secs_f64(),
        fsyncs,
        p50_us: h.value_at_quantile(0.5),
        p99_us: h.value_at_quantile(0.99),
        max_us: h.max(),
    }
}

/// Framing into a buffer with no I/O: what the memory path does with a batch.
fn memory_baseline(settings: &Settings, batch: &[Vec<u8>]) -> Row {
    let mut buffer = Vec::with_capacity(BATCH_BYTES * 2);
    let mut latencies = histogram();
    let (mut records, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    while bytes < settings.total_bytes {
        let one = Instant::now();
        buffer.clear();
        for message in batch {
            record::encode(message, &mut buffer);
        }
        std::hint::black_box(&buffer);
        latencies.saturating_record(one.elapsed().as_micros() as u64);
        records += batch.len() as u64;
        bytes += buffer.len() as u64;
    }
    row(
        "memory: frame + CRC32C, no I/O",
        records,
        bytes,
        started.elapsed(),
        0,
        &latencies,
    )
}

/// Appends `total_bytes` with `sync`, then reads it all back with one consumer.
async fn append_then_read(settings: &Settings, sync: SyncPolicy, batch: &[Vec<u8>]) -> (Row, Row) {
    let dir = settings.dir.join(format!("{sync:?}"));
    let _ = std::fs::remove_dir_all(&dir);
    let consumers = vec!["bench".to_string()];
    let mut writer = Writer::open(&dir, &options(sync), &consumers)
        .await
        .expect("open");
    let mut latencies = histogram();
    let started = Instant::now();
    while writer.counters().appended_bytes < settings.total_bytes {
        let one = Instant::now();
        writer
            .append_batch(batch.iter().map(Vec::as_slice))
            .await
            .expect("append");
        writer.tick().await.expect("tick");
        latencies.saturating_record(one.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed();
    let counters = writer.counters();
    let name = format!("append, sync = {}", policy_name(sync));
    let append = row(
        &name,
        counters.appended_records,
        counters.appended_bytes,
        elapsed,
        counters.fsyncs,
        &latencies,
    );

    let mut reader = Reader::open(&writer.handle(), "bench").expect("reader");
    let mut read_batch = ReadBatch::new();
    let mut latencies = histogram();
    let (mut records, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    loop {
        let one = Instant::now();
        let count = reader.read(&mut read_batch).await.expect("read");
        if count == 0 {
            break;
        }
        for message in read_batch.iter() {
            bytes += record::encoded_length(message.len()) as u64;
            std::hint::black_box(message);
        }
        records += count as u64;
        reader.commit(read_batch.end()).await.expect("commit");
        latencies.saturating_record(one.elapsed().as_micros() as u64);
    }
    let elapsed = started.elapsed();
    assert_eq!(records, counters.appended_records, "every record read back");
    let name = format!("read back (page cache), after sync = {}", policy_name(sync));
    let read = row(&name, records, bytes, elapsed, 0, &latencies);
    reader.close().await.expect("close reader");
    writer.close().await.expect("close writer");
    let _ = std::fs::remove_dir_all(&dir);
    (append, read)
}

/// A writer and a reader that keeps up, on one core, with checkpoints and segment deletion:
/// the steady state of a durable route.
async fn keeping_up(settings: &Settings, batch: &[Vec<u8>]) -> Row {
    let dir = settings.dir.join("keeping-up");
    let _ = std::fs::remove_dir_all(&dir);
    let consumers = vec!["bench".to_string()];
    let mut options = options(SyncPolicy::Interval);
    options.max_buffer_size = 256 * 1024 * 1024;
    let mut writer = Writer::open(&dir, &options, &consumers)
        .await
        .expect("open");
    let handle = writer.handle();
    let target = settings.total_bytes;
    let consumer = glommio::spawn_local(async move {
        let mut reader = Reader::open(&handle, "bench").expect("reader");
        let mut read_batch = ReadBatch::new();
        let mut records = 0u64;
        while !handle_done(&reader, target) {
            let count = reader.read(&mut read_batch).await.expect("read");
            if count == 0 {
                reader.wait(Duration::from_millis(100)).await;
                continue;
            }
            records += count as u64;
            reader.commit(read_batch.end()).await.expect("commit");
            glommio::yield_if_needed().await;
        }
        reader.close().await.expect("close reader");
        records
    });
    let mut latencies = histogram();
    let started = Instant::now();
    while writer.counters().appended_bytes < target {
        let one = Instant::now();
        writer
            .append_batch(batch.iter().map(Vec::as_slice))
            .await
            .expect("append");
        writer.tick().await.expect("tick");
        latencies.saturating_record(one.elapsed().as_micros() as u64);
        glommio::yield_if_needed().await;
    }
    let records_read = consumer.await;
    let elapsed = started.elapsed();
    writer.tick().await.expect("tick");
    let counters = writer.counters();
    assert_eq!(
        records_read, counters.appended_records,
        "the reader got everything"
    );
    let name = "append + reader keeping up, sync = interval".to_string();
    let result = row(
        &name,
        counters.appended_records,
        counters.appended_bytes,
        elapsed,
        counters.fsyncs,
        &latencies,
    );
    writer.close().await.expect("close writer");
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Whether a reader has consumed everything the writer will write.
fn handle_done(reader: &Reader, target_bytes: u64) -> bool {
    // Segments are 64 MiB and every byte is a record of the same size: the reader is done when
    // its committed sequence number covers `target_bytes` worth of records.
    let record_bytes = record::encoded_length(MESSAGE_BYTES) as u64;
    let per_batch = (BATCH_BYTES / MESSAGE_BYTES) as u64;
    let batches = target_bytes.div_ceil(record_bytes * per_batch);
    reader.committed().seq >= batches * per_batch
}

fn policy_name(sync: SyncPolicy) -> &'static str {
    match sync {
        SyncPolicy::None => "none",
        SyncPolicy::Interval => "interval",
        SyncPolicy::EveryBatch => "every_batch",
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

/// The file system type and device of the mount that holds `path`.
fn file_system(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.len() >= 3 && path.starts_with(fields[1])).then(|| {
                (
                    fields[1].len(),
                    format!("{} on {} ({})", fields[2], fields[1], fields[0]),
                )
            })
        })
        .max()
        .map_or_else(|| "unknown".into(), |(_, text)| text)
}

/// Today's date, UTC, as YYYY-MM-DD (days-to-civil conversion, proleptic Gregorian).
fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn table(rows: &[(Row, (f64, f64))]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| run | records | MB/s (min–max) | records/s | bytes written/msg | fsyncs/s \
         | batch p50 µs | batch p99 µs | max µs |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (row, (lowest, highest)) in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} ({lowest:.0}–{highest:.0}) | {:.0} | {:.1} | {:.1} | {} | {} | {} |",
            row.name,
            row.records,
            row.mb_per_s(),
            row.records_per_s(),
            row.bytes_per_message(),
            row.fsyncs_per_s(),
            row.p50_us,
            row.p99_us,
            row.max_us
        );
    }
    out
}

fn main() {
    // Under `cargo test` (no `--bench` argument) a bench only has to prove it still runs.
    if common::Mode::detect() == common::Mode::Smoke {
        std::env::set_var("GYGES_BENCH_QUICK", "1");
    }
    let quick = std::env::var("GYGES_BENCH_QUICK").is_ok_and(|value| value != "0");
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var_os("GYGES_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target/bench-queue"));
    std::fs::create_dir_all(&dir).expect("create the bench directory");
    let settings = Settings {
        total_bytes: if quick { 32 << 20 } else { 512 << 20 },
        dir: dir.clone(),
    };
    let machine = format!(
        "- date: {}\n- host: {}\n- CPU: {} ({} cores online)\n- kernel: {}\n\
         - queue directory: {} on {}\n",
        today(),
        read_trimmed("/proc/sys/kernel/hostname"),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, usize::from),
        read_trimmed("/proc/sys/kernel/osrelease"),
        dir.display(),
        file_system(&dir)
    );
    let parameters = format!(
        "- records: {} bytes ({MESSAGE_BYTES}-byte messages + {} bytes of framing and CRC32C)\n\
         - batch: {} messages ({} KiB) per append_batch; segments of 64 MiB; \
         checkpoint_interval 1 s\n\
         - bytes per run: {} MiB{}\n",
        record::encoded_length(MESSAGE_BYTES),
        record::encoded_length(MESSAGE_BYTES) - MESSAGE_BYTES,
        BATCH_BYTES / MESSAGE_BYTES,
        BATCH_BYTES / 1024,
        settings.total_bytes >> 20,
        if quick { " (GYGES_BENCH_QUICK)" } else { "" }
    );
    println!("queue bench\n{machine}{parameters}");
    let batch = messages();
    let passes = if quick { 1 } else { PASSES };
    let mut runs: Vec<Vec<Row>> = Vec::new();
    for pass in 0..passes {
        println!("pass {}/{passes}", pass + 1);
        runs.push(one_pass(&settings, &batch));
    }
    let rows = median_rows(runs);
    let table = table(&rows);
    println!("\n{table}");
    let _ = std::fs::remove_dir_all(&dir);
    let rows: Vec<Row> = rows.into_iter().map(|(row, _)| row).collect();

    let memory = rows[0].mb_per_s();
    let ratios: String = rows[1..]
        .iter()
        .map(|row| {
            format!(
                "- {}: {:.0}% of the memory baseline\n",
                row.name,
                100.0 * row.mb_per_s() / memory
            )
        })
        .collect();
    let report = format!(
        "# Disk queue bench\n\n{machine}{parameters}\n{table}\n{ratios}\n\
         Each row is the median of {passes} passes by MB/s (run round by round), with the \
         lowest and highest pass beside it. \
         MB/s and bytes written per message count record bytes (framing and checksum included). \
         Batch latencies are per `append_batch` call (with its `tick`), or per read for the \
         read-back rows. Read-back reads what the append run left in the page cache.\n"
    );
    // One dated report for every bench: this bench's section of it (bench/common).
    let mode = common::Mode::detect();
    let mut section = common::Section::new("queue", "Disk queue", mode);
    section.line(&report);
    section.publish();
}
