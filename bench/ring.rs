//! Ring hand-off between two pinned cores: how many items per second an rtrb SPSC ring moves
//! from a producer thread on one core to a consumer thread on another, and how many bytes per
//! second for 300-byte records, one record per slot versus the engine's ring of ~256 KiB
//! batches: `gyges::runtime::ring::ring` with 16 slots, pushed through a `BatchProducer` and
//! popped through a `BatchConsumer`, with their wake-up checks, as the engine uses them (with
//! and without the return ring recycling buffers).
//!
//! Both threads spin while the ring is full or empty (yielding after a while, so a shared core
//! still makes progress; the engine's tasks would park instead), start together at a barrier, and the clock stops when the consumer
//! has the last item. The consumer checks that items arrive in order and counts any that do
//! not. Each case runs 3 times and the median run is reported. Run with
//! `cargo bench --bench ring`; the figures go to the `ring` section of the report.
//!
//! Target (issue 5): at least 20 M messages/s through one ingest→filter ring for small
//! records. The report states the margin or the miss; nothing here asserts it.

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::Instant;

use common::{si, Mode, Section, Table};
use gyges::limits::{BATCH_BYTES_DEFAULT, RING_SLOTS_DEFAULT};
use gyges::output::Batch;
use gyges::runtime::ring::{ring, BatchConsumer, BatchProducer, TryPushError};

/// Bytes of one record in the record cases (the size the issue names).
const RECORD_BYTES: usize = 300;
/// Items moved per chunk in the chunked case.
const CHUNK_ITEMS: usize = 256;
/// Spins on a full or empty ring before a thread yields its core.
const SPINS_BEFORE_YIELD: u32 = 1 << 12;
/// The target for one ring, messages per second.
const RING_MESSAGES_PER_SECOND_TARGET: f64 = 20e6;

/// Where the two threads run.
#[derive(Clone, Copy, Debug)]
struct Placement {
    producer: Option<core_affinity::CoreId>,
    consumer: Option<core_affinity::CoreId>,
}

impl Placement {
    fn detect() -> Placement {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        match cores.as_slice() {
            [first, second, ..] => Placement {
                producer: Some(*first),
                consumer: Some(*second),
            },
            [only] => Placement {
                producer: Some(*only),
                consumer: Some(*only),
            },
            [] => Placement {
                producer: None,
                consumer: None,
            },
        }
    }

    fn describe(&self) -> String {
        match (self.producer, self.consumer) {
            (Some(producer), Some(consumer)) if producer.id != consumer.id => format!(
                "producer pinned to core {}, consumer to core {}",
                producer.id, consumer.id
            ),
            (Some(core), Some(_)) => {
                format!("one core only: both threads pinned to core {}", core.id)
            }
            _ => "cores unknown: threads not pinned".into(),
        }
    }
}

/// Waits a little while a ring is full or empty.
struct Backoff {
    spins: u32,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { spins: 0 }
    }

    fn wait(&mut self) {
        if self.spins < SPINS_BEFORE_YIELD {
            self.spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }

    fn reset(&mut self) {
        self.spins = 0;
    }
}

fn pin(core: Option<core_affinity::CoreId>) {
    if let Some(core) = core {
        // An unpinned thread still measures something; the section says where threads ran.
        let _ = core_affinity::set_for_current(core);
    }
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
struct Run {
    seconds: f64,
    /// Items that arrived out of order (must be 0).
    out_of_order: u64,
}

/// Runs `producer` and `consumer` on their cores, started together; the clock is the
/// consumer's.
fn two_threads(
    placement: Placement,
    producer: impl FnOnce() + Send,
    consumer: impl FnOnce() -> u64 + Send,
) -> Run {
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let barrier = &barrier;
        scope.spawn(move || {
            pin(placement.producer);
            barrier.wait();
            producer();
        });
        let consuming = scope.spawn(move || {
            pin(placement.consumer);
            barrier.wait();
            let started = Instant::now();
            let out_of_order = consumer();
            Run {
                seconds: started.elapsed().as_secs_f64(),
                out_of_order,
            }
        });
        consuming.join().unwrap_or_default()
    })
}

/// One u64 per push and per pop.
fn single_u64(placement: Placement, slots: usize, count: u64) -> Run {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(slots);
    two_threads(
        placement,
        move || {
            let mut backoff = Backoff::new();
            let mut next = 0;
            while next < count {
                match producer.push(next) {
                    Ok(()) => {
                        next += 1;
                        backoff.reset();
                    }
                    Err(_) => backoff.wait(),
                }
            }
        },
        move || {
            let (mut backoff, mut expected, mut out_of_order) = (Backoff::new(), 0u64, 0u64);
            while expected < count {
                match consumer.pop() {
                    Ok(value) => {
                        out_of_order += u64::from(value != expected);
                        expected += 1;
                        backoff.reset();
                    }
                    Err(_) => backoff.wait(),
                }
            }
            out_of_order
        },
    )
}

/// u64s moved in chunks of up to `CHUNK_ITEMS`.
fn chunked_u64(placement: Placement, slots: usize, count: u64) -> Run {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<u64>::new(slots);
    two_threads(
        placement,
        move || {
            let mut backoff = Backoff::new();
            let mut next = 0u64;
            while next < count {
                let room = producer
                    .slots()
                    .min(CHUNK_ITEMS)
                    .min((count - next) as usize);
                match producer.write_chunk_uninit(room) {
                    Ok(chunk) if room > 0 => {
                        let written = chunk.fill_from_iter(next..);
                        next += written as u64;
                        backoff.reset();
                    }
                    _ => backoff.wait(),
                }
            }
        },
        move || {
            let (mut backoff, mut expected, mut out_of_order) = (Backoff::new(), 0u64, 0u64);
            while expected < count {
                let ready = consumer.slots().min(CHUNK_ITEMS);
                match consumer.read_chunk(ready) {
                    Ok(chunk) if ready > 0 => {
                        let (first, second) = chunk.as_slices();
                        for value in first.iter().chain(second) {
                            out_of_order += u64::from(*value != expected);
                            expected += 1;
                        }
                        chunk.commit_all();
                        backoff.reset();
                    }
                    _ => backoff.wait(),
                }
            }
            out_of_order
        },
    )
}

/// A 300-byte record whose first 8 bytes are its sequence number.
fn numbered_record(template: &[u8; RECORD_BYTES], seq: u64) -> [u8; RECORD_BYTES] {
    let mut record = *template;
    record[..8].copy_from_slice(&seq.to_le_bytes());
    record
}

fn record_seq(record: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&record[..8]);
    u64::from_le_bytes(bytes)
}

/// One 300-byte record per slot; the consumer appends each to a 256 KiB staging buffer, as
/// an owner core building its write would.
fn single_records(placement: Placement, slots: usize, count: u64) -> Run {
    let (mut producer, mut consumer) = rtrb::RingBuffer::<[u8; RECORD_BYTES]>::new(slots);
    let template = [b'r'; RECORD_BYTES];
    two_threads(
        placement,
        move || {
            let mut backoff = Backoff::new();
            let mut next = 0;
            while next < count {
                match producer.push(numbered_record(&template, next)) {
                    Ok(()) => {
                        next += 1;
                        backoff.reset();
                    }
                    Err(_) => backoff.wait(),
                }
            }
        },
        move || {
            let mut staging = Vec::with_capacity(BATCH_BYTES_DEFAULT + RECORD_BYTES);
            let (mut backoff, mut expected, mut out_of_order) = (Backoff::new(), 0u64, 0u64);
            while expected < count {
                match consumer.pop() {
                    Ok(record) => {
                        out_of_order += u64::from(record_seq(&record) != expected);
                        expected += 1;
                        staging.extend_from_slice(&record);
                        if staging.len() >= BATCH_BYTES_DEFAULT {
                            black_box(&staging);
                            staging.clear();
                        }
                        backoff.reset();
                    }
                    Err(_) => backoff.wait(),
                }
            }
            out_of_order
        },
    )
}

/// The engine's way: the producer encodes (copies) records into a `Batch` of about
/// `BATCH_BYTES_DEFAULT`, pushes it through a `BatchProducer` into a ring of
/// `RING_SLOTS_DEFAULT` batches, and the consumer takes each batch whole through a
/// `BatchConsumer` (it would hand it to `write_at`), checks the first record's number and
/// drops it. When `recycle` is set the producer fills the buffers the consumer gives back over
/// the return ring (`fresh_batch`, `recycle`), so no buffer is allocated per hand-off.
fn batches(placement: Placement, count: u64, recycle: bool) -> Run {
    let (producer, consumer) = ring(RING_SLOTS_DEFAULT);
    let records_per_batch = (BATCH_BYTES_DEFAULT / RECORD_BYTES) as u64;
    let template = [b'b'; RECORD_BYTES];
    two_threads(
        placement,
        move || {
            // Made here: a `BatchProducer` belongs to the core (thread) that ships.
            let producer = BatchProducer::new(producer);
            let mut backoff = Backoff::new();
            let mut next = 0;
            while next < count {
                let records = records_per_batch.min(count - next);
                let mut batch = if recycle {
                    producer.fresh_batch(BATCH_BYTES_DEFAULT)
                } else {
                    Batch::with_capacity(BATCH_BYTES_DEFAULT)
                };
                for seq in next..next + records {
                    batch
                        .bytes
                        .extend_from_slice(&numbered_record(&template, seq));
                }
                batch.messages = records;
                let mut pending = batch;
                loop {
                    match producer.try_push(pending) {
                        Ok(()) => break,
                        Err(TryPushError::Full(back)) => {
                            pending = back;
                            backoff.wait();
                        }
                        // The consumer only leaves once it has every record.
                        Err(TryPushError::Abandoned(_)) => return,
                    }
                }
                backoff.reset();
                next += records;
            }
        },
        move || {
            let mut consumer = BatchConsumer::new(vec![consumer]);
            let (mut backoff, mut expected, mut out_of_order) = (Backoff::new(), 0u64, 0u64);
            while expected < count {
                match consumer.try_pop() {
                    Some((batch, source)) => {
                        let first = batch.bytes.get(..8).map_or(u64::MAX, record_seq);
                        out_of_order += u64::from(first != expected);
                        expected += batch.messages;
                        black_box(batch.bytes.len());
                        if recycle {
                            consumer.recycle(source, batch.bytes);
                        }
                        backoff.reset();
                    }
                    None => backoff.wait(),
                }
            }
            out_of_order
        },
    )
}

/// The median of `passes` runs (by time), with the out-of-order items summed over all of them.
fn median(passes: usize, mut run: impl FnMut() -> Run) -> Run {
    let mut runs: Vec<Run> = (0..passes.max(1)).map(|_| run()).collect();
    let out_of_order = runs.iter().map(|run| run.out_of_order).sum();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    Run {
        seconds: runs[(runs.len() - 1) / 2].seconds,
        out_of_order,
    }
}

fn main() {
    let mode = Mode::detect();
    let passes = mode.pick(3, 3, 1);
    let u64_count = mode.pick(50_000_000u64, 5_000_000, 100_000);
    let record_count = mode.pick(10_000_000u64, 1_000_000, 20_000);
    let placement = Placement::detect();
    let mut section = Section::new("ring", "Ring hand-off between two pinned cores", mode);
    section.line(format!(
        "rtrb SPSC ring, {}; spin then yield on full or empty; median of {passes} runs; the clock is \
         the consumer's, from a shared start barrier to the last item. `ns/item` is wall time \
         per item, not CPU time.\n",
        placement.describe()
    ));
    let mut table = Table::new(&[
        "case",
        "slots",
        "items",
        "M items/s",
        "GB/s",
        "ns/item",
        "out of order",
    ]);
    fn add(table: &mut Table, name: &str, slots: usize, items: u64, bytes: u64, run: Run) -> f64 {
        let seconds = run.seconds.max(1e-9);
        table.row(vec![
            name.into(),
            slots.to_string(),
            items.to_string(),
            format!("{:.1}", items as f64 / seconds / 1e6),
            if bytes > 0 {
                format!("{:.2}", bytes as f64 / seconds / 1e9)
            } else {
                "–".into()
            },
            format!("{:.1}", seconds / items as f64 * 1e9),
            run.out_of_order.to_string(),
        ]);
        items as f64 / seconds
    }
    let u64s = median(passes, || single_u64(placement, 4096, u64_count));
    add(
        &mut table,
        "u64, one per push/pop",
        4096,
        u64_count,
        0,
        u64s,
    );
    let chunks = median(passes, || chunked_u64(placement, 4096, u64_count));
    let chunk_name = format!("u64, chunks of {CHUNK_ITEMS}");
    add(&mut table, &chunk_name, 4096, u64_count, 0, chunks);
    let record_bytes = record_count * RECORD_BYTES as u64;
    let singles = median(passes, || single_records(placement, 1024, record_count));
    let single_rate = add(
        &mut table,
        "300 B records, one per slot",
        1024,
        record_count,
        record_bytes,
        singles,
    );
    let fresh = median(passes, || batches(placement, record_count, false));
    add(
        &mut table,
        "300 B records in 256 KiB Batches, new Batch each",
        RING_SLOTS_DEFAULT,
        record_count,
        record_bytes,
        fresh,
    );
    let recycled = median(passes, || batches(placement, record_count, true));
    let batch_rate = add(
        &mut table,
        "300 B records in 256 KiB Batches, recycled (engine)",
        RING_SLOTS_DEFAULT,
        record_count,
        record_bytes,
        recycled,
    );
    section.table(&table);
    for (what, rate) in [
        ("one record per slot", single_rate),
        ("the engine's batch ring (recycled buffers)", batch_rate),
    ] {
        let ratio = rate / RING_MESSAGES_PER_SECOND_TARGET;
        let verdict = if ratio >= 1.0 {
            format!("met, {ratio:.1}x the target")
        } else {
            format!("missed by {:.0} %", (1.0 - ratio) * 100.0)
        };
        section.line(format!(
            "- Target ≥ 20 M msgs/s per ring for small (300 B) records, {what}: {} msgs/s, \
             {verdict}.",
            si(rate, 1)
        ));
    }
    section.publish();
}
