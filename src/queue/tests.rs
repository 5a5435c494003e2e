//! Queue tests on real files: written by the code, damaged by the test, recovered; plus a
//! model of writer and readers against an in-memory list.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;

use super::recovery::CheckpointState;
use super::*;

use crate::testing::run_local as run;

/// Small segments and reads, so that a few hundred records cross many boundaries.
fn options() -> QueueOptions {
    QueueOptions {
        max_file_size: 4096,
        max_buffer_size: 0,
        min_disk_free: 0,
        full_action: FullAction::Block,
        sync: SyncPolicy::Interval,
        checkpoint_interval: Duration::from_secs(60),
        unsynced_checkpoint_interval: None,
        max_message_size: 1000,
        read_bytes: 1024,
        write_bytes: 2048,
        ..QueueOptions::default()
    }
}

/// Message `index`: its number, then `length - 8` bytes derived from it.
fn message(index: u64, length: usize) -> Vec<u8> {
    let mut bytes = index.to_le_bytes().to_vec();
    bytes.extend((0..length.saturating_sub(8)).map(|at| (index as usize * 31 + at) as u8));
    bytes
}

fn index_of(message: &[u8]) -> u64 {
    u64::from_le_bytes(message[..8].try_into().expect("8 bytes of index"))
}

fn names(consumers: &[&str]) -> Vec<String> {
    consumers.iter().map(|name| name.to_string()).collect()
}

async fn append_range(writer: &mut Writer, range: std::ops::Range<u64>, length: usize) {
    let messages: Vec<Vec<u8>> = range.map(|index| message(index, length)).collect();
    for chunk in messages.chunks(7) {
        let outcome = writer
            .append_batch(chunk.iter().map(Vec::as_slice))
            .await
            .expect("append");
        assert_eq!(outcome.appended, chunk.len() as u64);
    }
}

/// Reads everything published, committing as it goes; returns the messages' indexes.
async fn drain(reader: &mut Reader) -> Vec<u64> {
    let mut batch = ReadBatch::new();
    let mut seen = Vec::new();
    loop {
        let count = reader.read(&mut batch).await.expect("read");
        if count == 0 {
            return seen;
        }
        assert_eq!(count, batch.len());
        seen.extend(batch.iter().map(index_of));
        reader.commit(batch.end()).await.expect("commit");
    }
}

/// Reads and commits batch after batch until at least `count` messages were read; returns
/// their indexes. `batch` keeps the last batch read.
async fn read_committing(reader: &mut Reader, batch: &mut ReadBatch, count: usize) -> Vec<u64> {
    let mut read = Vec::new();
    while read.len() < count {
        reader.read(batch).await.unwrap();
        read.extend(batch.iter().map(index_of));
        reader.commit(batch.end()).await.unwrap();
    }
    read
}

fn segment_files(dir: &Path) -> Vec<u64> {
    segment::list(dir)
        .expect("list")
        .iter()
        .map(|s| s.base)
        .collect()
}

/// Reads a file the way a Heka stream reader does: header protobuf, then `message_length`
/// bytes, no checksum. Proves the segments stay plain Heka frames.
fn heka_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    use prost::Message as _;
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(bytes[at], 0x1E);
        let header_length = usize::from(bytes[at + 1]);
        let header =
            proto::Header::decode(&bytes[at + 2..at + 2 + header_length]).expect("a Heka header");
        assert_eq!(bytes[at + 2 + header_length], 0x1F);
        let start = at + 3 + header_length;
        let end = start + header.message_length as usize;
        frames.push(bytes[start..end].to_vec());
        at = end;
    }
    frames
}

use crate::message::proto;

/// A consumer that stops part way through a read batch commits the end of the last record it
/// handled (`ReadBatch::end_of`); the next reader starts right after it, in every segment.
#[test]
fn committing_part_of_a_batch_resumes_after_the_last_record_handled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let mut writer = Writer::open(&path, &options(), &names(&["out"]))
            .await
            .unwrap();
        append_range(&mut writer, 0..200, 60).await;
        let mut batch = ReadBatch::new();
        let mut next = 0u64;
        // Handle two records of each batch (one if it has one), then start a new reader.
        while next < 200 {
            let mut reader = Reader::open(&writer.handle(), "out").unwrap();
            let count = reader.read(&mut batch).await.unwrap();
            assert!(count > 0, "records left from {next}");
            assert_eq!(
                index_of(batch.get(0).unwrap()),
                next,
                "resumed where it stopped"
            );
            let handled = count.min(2);
            assert!(batch.end_of(count).is_none());
            assert_eq!(batch.end_of(count - 1), Some(batch.end()));
            let position = batch.end_of(handled - 1).unwrap();
            assert_eq!(position.seq, next + handled as u64);
            reader.commit(position).await.unwrap();
            next += handled as u64;
        }
        writer.close().await.unwrap();
    });
}

#[test]
fn round_trip_across_rotations_in_plain_heka_frames() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let mut writer = Writer::open(&path, &options(), &names(&["out"]))
            .await
            .unwrap();
        assert!(writer.recovery().created);
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let mut expected = Vec::new();
        for index in 0..300u64 {
            let length = 8 + (index as usize * 37) % 500;
            writer.append(&message(index, length)).await.unwrap();
            expected.push(index);
            if index % 50 == 49 {
                // Interleave reading and writing: the reader keeps up part of the time.
                let seen = drain(&mut reader).await;
                assert_eq!(seen, (index - 49..=index).collect::<Vec<_>>());
            }
        }
        let counters = writer.counters();
        assert_eq!(counters.appended_records, 300);
        assert!(counters.segments_created >= 10, "{counters:?}");
        assert_eq!(counters.consumers[0].lag_records, 0);
        assert_eq!(counters.consumers[0].lag_bytes, 0);
        reader.close().await.unwrap();
        writer.close().await.unwrap();
        // Segment names are their first record's sequence number; every file is Heka frames
        // (the open tail's may end in a direct write's padding: the queue is closed first).
        let mut all = Vec::new();
        for base in segment_files(&path) {
            let bytes = std::fs::read(segment::path(&path, base)).unwrap();
            let frames = heka_frames(&bytes);
            assert!(
                bytes.len() as u64 <= 4096,
                "segment {base} over max_file_size"
            );
            assert_eq!(index_of(&frames[0]), base);
            all.extend(frames.iter().map(|frame| index_of(frame)));
        }
        assert_eq!(all, expected);
    });
}

#[test]
fn a_crash_loses_nothing_and_replays_only_what_was_not_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["out"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        append_range(&mut writer, 0..100, 100).await;
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let mut batch = ReadBatch::new();
        let delivered = read_committing(&mut reader, &mut batch, 60).await;
        reader.checkpoint().await.unwrap();
        let checkpointed = delivered.len() as u64;
        reader.read(&mut batch).await.unwrap();
        reader.commit(batch.end()).await.unwrap(); // committed, never checkpointed
                                                   // kill -9: nothing is closed.
        drop(batch);
        drop(reader);
        drop(writer);

        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        assert_eq!(writer.next_seq(), 100);
        assert_eq!(writer.recovery().tail.torn_bytes, 0);
        assert_eq!(writer.recovery().checkpoints[0].1, CheckpointState::Loaded);
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        assert_eq!(reader.position().seq, checkpointed);
        append_range(&mut writer, 100..110, 100).await;
        let replayed = drain(&mut reader).await;
        assert_eq!(replayed, (checkpointed..110).collect::<Vec<_>>());
    });
}

/// A directly written tail ends in zeros up to its last block's end while it is open; sealed
/// segments, a closed queue and a queue recovered after a kill end at their last record, and
/// the kill's padding is cut without counting as torn. Through the page cache
/// (`direct_io = false`) no file is ever padded.
#[test]
fn a_direct_tail_is_padded_only_while_open_and_its_padding_never_counts_as_torn() {
    for direct_io in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(async move {
            let options = QueueOptions {
                direct_io,
                ..options()
            };
            let consumers = names(&["out"]);
            let file_length = |base| std::fs::metadata(segment::path(&path, base)).unwrap().len();
            let mut writer = Writer::open(&path, &options, &consumers).await.unwrap();
            append_range(&mut writer, 0..60, 100).await;
            let tail = writer.handle().shared.tail(Default::default());
            assert_ne!(tail.offset % 512, 0, "the records end inside a block");
            let open_length = file_length(tail.segment);
            let padded_length = if direct_io {
                tail.offset.next_multiple_of(512)
            } else {
                tail.offset
            };
            assert_eq!(open_length, padded_length, "direct_io = {direct_io}");
            let sealed: Vec<u64> = segment_files(&path)
                .into_iter()
                .filter(|&base| base != tail.segment)
                .collect();
            assert!(!sealed.is_empty());
            for base in sealed {
                let bytes = std::fs::read(segment::path(&path, base)).unwrap();
                assert!(
                    !heka_frames(&bytes).is_empty(),
                    "sealed {base} is whole frames"
                );
            }
            drop(writer); // kill -9: nothing is closed

            let mut writer = Writer::open(&path, &options, &consumers).await.unwrap();
            let scan = writer.recovery().tail;
            assert_eq!((scan.torn_bytes, scan.torn_records), (0, 0));
            assert_eq!(scan.padding_bytes, open_length - tail.offset);
            assert_eq!(writer.counters().torn_records_cut, 0);
            assert_eq!(file_length(tail.segment), tail.offset);
            // Appends resume inside the block the kill left partly written.
            append_range(&mut writer, 60..70, 100).await;
            let mut reader = Reader::open(&writer.handle(), "out").unwrap();
            assert_eq!(drain(&mut reader).await, (0..70).collect::<Vec<_>>());
            reader.close().await.unwrap();
            let tail = writer.handle().shared.tail(Default::default());
            writer.close().await.unwrap();
            assert_eq!(
                file_length(tail.segment),
                tail.offset,
                "closing cuts the padding"
            );
        });
    }
}

/// Between the synced checkpoints of `checkpoint_interval` (a minute here), commits reach the
/// checkpoint file unsynced every `unsynced_checkpoint_interval`: a kill -9 then replays only
/// what was committed after the last unsynced checkpoint, not everything since the last synced
/// one (here: nothing was ever synced, and nothing is replayed).
#[test]
fn a_kill_replays_only_what_was_committed_after_the_last_unsynced_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["out"]);
        let unsynced = Duration::from_millis(20);
        let options = QueueOptions {
            unsynced_checkpoint_interval: Some(unsynced),
            ..options()
        };
        let mut writer = Writer::open(&path, &options, &consumers).await.unwrap();
        append_range(&mut writer, 0..100, 100).await;
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let mut batch = ReadBatch::new();
        let delivered = read_committing(&mut reader, &mut batch, 60).await;
        glommio::timer::sleep(unsynced + Duration::from_millis(5)).await;
        reader.tick().await.unwrap(); // due by the unsynced cadence only
        let checkpointed = delivered.len() as u64;
        assert_eq!(reader.committed().seq, checkpointed);
        // kill -9: nothing is closed.
        drop(batch);
        drop(reader);
        drop(writer);

        let writer = Writer::open(&path, &options, &consumers).await.unwrap();
        assert_eq!(writer.recovery().checkpoints[0].1, CheckpointState::Loaded);
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        assert_eq!(
            reader.position().seq,
            checkpointed,
            "the unsynced checkpoint survived the kill"
        );
        let replayed = drain(&mut reader).await;
        assert_eq!(replayed, (checkpointed..100).collect::<Vec<_>>());
        writer.close().await.unwrap();
    });
}

#[test]
fn a_torn_tail_is_cut_counted_and_appending_resumes_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["out"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        append_range(&mut writer, 0..20, 120).await;
        let tail = writer.handle().shared.tail(Default::default());
        writer.close().await.unwrap();
        let tail_path = segment::path(&path, tail.segment);
        let length = std::fs::metadata(&tail_path).unwrap().len();
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&tail_path)
            .unwrap();
        file.set_len(length - 3).unwrap(); // mid-record, as a crash mid-write leaves it

        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        let scan = writer.recovery().tail;
        let record_length = record::encoded_length(120) as u64;
        assert_eq!(scan.torn_bytes, record_length - 3);
        assert_eq!(scan.torn_records, 1);
        assert_eq!(writer.counters().torn_records_cut, 1);
        assert_eq!(writer.next_seq(), 19);
        assert_eq!(
            std::fs::metadata(&tail_path).unwrap().len(),
            length - record_length
        );
        writer.append(&message(1000, 120)).await.unwrap();
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let mut expected: Vec<u64> = (0..19).collect();
        expected.push(1000);
        assert_eq!(drain(&mut reader).await, expected);
    });
}

#[test]
fn garbage_after_the_last_record_is_cut_but_damage_before_intact_records_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["out"]);
        let mut options = options();
        options.max_file_size = 1 << 20;
        let mut writer = Writer::open(&path, &options, &consumers).await.unwrap();
        append_range(&mut writer, 0..10, 50).await;
        writer.close().await.unwrap();
        let tail_path = segment::path(&path, 0);
        let mut bytes = std::fs::read(&tail_path).unwrap();
        let record_length = record::encoded_length(50);
        bytes[4 * record_length + 20] ^= 0x40; // inside record 4's message
        bytes.extend_from_slice(&[0u8; 700]); // a power loss extended the file with zeros
        std::fs::write(&tail_path, &bytes).unwrap();

        let mut writer = Writer::open(&path, &options, &consumers).await.unwrap();
        let scan = writer.recovery().tail;
        assert_eq!(scan.torn_bytes, 700);
        assert_eq!(scan.corrupt_bytes, record_length as u64);
        assert_eq!(scan.records, 9);
        assert_eq!(
            writer.counters().corrupt_bytes_at_open,
            record_length as u64
        );
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let seen = drain(&mut reader).await;
        assert_eq!(seen, vec![0, 1, 2, 3, 5, 6, 7, 8, 9]);
        let counters = writer.counters();
        assert_eq!(
            counters.consumers[0].corrupt_bytes_skipped,
            record_length as u64
        );
        writer.append(&message(10, 50)).await.unwrap();
        assert_eq!(drain(&mut reader).await, vec![10]);
    });
}

#[test]
fn missing_and_corrupt_checkpoints_fall_back_to_the_oldest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["fast", "slow"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        append_range(&mut writer, 0..200, 100).await;
        let mut fast = Reader::open(&writer.handle(), "fast").unwrap();
        assert_eq!(drain(&mut fast).await.len(), 200);
        fast.close().await.unwrap();
        let mut slow = Reader::open(&writer.handle(), "slow").unwrap();
        let mut batch = ReadBatch::new();
        while slow.position().seq < 120 {
            slow.read(&mut batch).await.unwrap();
            slow.commit(batch.end()).await.unwrap();
        }
        let slow_at = slow.committed();
        slow.close().await.unwrap();
        writer.tick().await.unwrap();
        let oldest = segment_files(&path)[0];
        assert!(
            oldest > 0 && oldest <= slow_at.seq,
            "segments before `slow` are gone"
        );
        writer.close().await.unwrap();

        // Damage `fast`'s checkpoint and lose `slow`'s.
        let fast_path = checkpoint::path(&path, "fast");
        let text = std::fs::read_to_string(&fast_path).unwrap();
        std::fs::write(&fast_path, text.replace("seq=", "seq=9")).unwrap();
        std::fs::remove_file(checkpoint::path(&path, "slow")).unwrap();

        let writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        let states: Vec<_> = writer
            .recovery()
            .checkpoints
            .iter()
            .map(|c| c.1.clone())
            .collect();
        assert!(
            matches!(states[0], CheckpointState::Corrupt(_)),
            "{states:?}"
        );
        assert_eq!(states[1], CheckpointState::Missing);
        let counters = writer.counters();
        assert_eq!(
            (counters.checkpoints_corrupt, counters.checkpoints_missing),
            (1, 1)
        );
        for name in ["fast", "slow"] {
            let mut reader = Reader::open(&writer.handle(), name).unwrap();
            assert_eq!(drain(&mut reader).await, (oldest..200).collect::<Vec<_>>());
        }
        // The repaired checkpoints were written back and parse again.
        assert!(checkpoint::load(&path, "fast").unwrap().unwrap().is_ok());
    });
}

#[test]
fn a_checkpoint_into_a_deleted_segment_moves_to_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["ahead", "behind"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        append_range(&mut writer, 0..200, 100).await;
        let segments = segment_files(&path);
        assert!(segments.len() >= 5);
        let (gone, after) = (segments[2], segments[3]);
        let mut ahead = Reader::open(&writer.handle(), "ahead").unwrap();
        let mut batch = ReadBatch::new();
        while ahead.position().seq < gone + 3 {
            ahead.read(&mut batch).await.unwrap();
            ahead.commit(batch.end()).await.unwrap();
        }
        assert_eq!(ahead.committed().segment, gone);
        ahead.close().await.unwrap();
        writer.close().await.unwrap();
        std::fs::remove_file(segment::path(&path, gone)).unwrap();

        let writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        let state = &writer.recovery().checkpoints[0].1;
        assert!(
            matches!(state, CheckpointState::MovedToNextSegment { from } if from.segment == gone),
            "{state:?}"
        );
        let mut ahead = Reader::open(&writer.handle(), "ahead").unwrap();
        assert_eq!(drain(&mut ahead).await, (after..200).collect::<Vec<_>>());
        // A reader crossing the hole counts the records it cannot have.
        let mut behind = Reader::open(&writer.handle(), "behind").unwrap();
        let seen = drain(&mut behind).await;
        let expected: Vec<u64> = (0..gone).chain(after..200).collect();
        assert_eq!(seen, expected);
        assert_eq!(writer.counters().consumers[1].lost_records, after - gone);
    });
}

#[test]
fn segments_are_deleted_only_once_every_consumer_has_passed_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["fast", "slow"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        append_range(&mut writer, 0..300, 100).await;
        let created = segment_files(&path).len();
        let mut fast = Reader::open(&writer.handle(), "fast").unwrap();
        drain(&mut fast).await;
        fast.checkpoint().await.unwrap();
        writer.tick().await.unwrap();
        assert_eq!(
            segment_files(&path).len(),
            created,
            "`slow` still needs them all"
        );

        let mut slow = Reader::open(&writer.handle(), "slow").unwrap();
        let mut batch = ReadBatch::new();
        while slow.position().seq < 150 {
            slow.read(&mut batch).await.unwrap();
            slow.commit(batch.end()).await.unwrap();
        }
        writer.tick().await.unwrap();
        assert_eq!(
            segment_files(&path).len(),
            created,
            "committed is not checkpointed"
        );
        slow.checkpoint().await.unwrap();
        writer.tick().await.unwrap();
        let left = segment_files(&path);
        assert!(left.len() < created);
        assert_eq!(left[0], slow.committed().segment);
        let counters = writer.counters();
        assert_eq!(counters.segments_deleted as usize, created - left.len());
        assert_eq!(
            counters.consumers[1].lag_records,
            300 - slow.committed().seq
        );
        assert_eq!(
            counters.consumers[1].lag_bytes,
            counters.retained_bytes - slow.committed().offset
        );

        drain(&mut slow).await;
        slow.checkpoint().await.unwrap();
        writer.tick().await.unwrap();
        assert_eq!(segment_files(&path).len(), 1, "only the tail is left");
        assert_eq!(writer.counters().retained_segments, 1);
    });
}

fn full_options(action: FullAction) -> QueueOptions {
    QueueOptions {
        max_buffer_size: 8192,
        full_action: action,
        ..options()
    }
}

#[test]
fn full_action_drop_drops_and_counts_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let mut writer = Writer::open(&path, &full_options(FullAction::Drop), &names(&["out"]))
            .await
            .unwrap();
        let messages: Vec<Vec<u8>> = (0..100).map(|index| message(index, 200)).collect();
        let outcome = writer
            .append_batch(messages.iter().map(Vec::as_slice))
            .await
            .unwrap();
        let fit = 8192 / record::encoded_length(200) as u64;
        assert_eq!(outcome.appended, fit);
        assert_eq!(outcome.dropped, 100 - fit);
        let counters = writer.counters();
        assert_eq!(counters.dropped_full_records, 100 - fit);
        assert!(counters.retained_bytes <= 8192);
        // Once the consumer has read and checkpointed, there is room again.
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        assert_eq!(drain(&mut reader).await, (0..fit).collect::<Vec<_>>());
        reader.checkpoint().await.unwrap();
        writer.tick().await.unwrap();
        let outcome = writer.append(&message(500, 200)).await.unwrap();
        assert_eq!((outcome.appended, outcome.dropped), (1, 0));
    });
}

#[test]
fn full_action_shutdown_stops_with_an_error_naming_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let options = full_options(FullAction::Shutdown);
        let mut writer = Writer::open(&path, &options, &names(&["out"]))
            .await
            .unwrap();
        let messages: Vec<Vec<u8>> = (0..100).map(|index| message(index, 200)).collect();
        let error = writer
            .append_batch(messages.iter().map(Vec::as_slice))
            .await
            .unwrap_err();
        let fit = 8192 / record::encoded_length(200) as u64;
        match error {
            QueueError::Full {
                reason: FullReason::BufferSize { max, .. },
                appended,
            } => assert_eq!((max, appended), (8192, fit)),
            other => panic!("expected Full, got {other}"),
        }
        assert_eq!(writer.next_seq(), fit, "what fit is in the queue");
        // The disk limit: more free space demanded than any disk has.
        drop(writer);
        let options = QueueOptions {
            max_buffer_size: 0,
            min_disk_free: u64::MAX / 2,
            ..options
        };
        let mut writer = Writer::open(&path, &options, &names(&["out"]))
            .await
            .unwrap();
        let error = writer.append(&message(0, 10)).await.unwrap_err();
        assert!(
            matches!(
                error,
                QueueError::Full {
                    reason: FullReason::DiskFree { .. },
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("min_disk_free"));
    });
}

#[test]
fn full_action_block_waits_for_the_consumer_then_stops_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let mut writer = Writer::open(&path, &full_options(FullAction::Block), &names(&["out"]))
            .await
            .unwrap();
        let handle = writer.handle();
        let consumer = glommio::spawn_local({
            let handle = handle.clone();
            async move {
                let mut reader = Reader::open(&handle, "out").unwrap();
                let mut batch = ReadBatch::new();
                let mut seen = Vec::new();
                while seen.len() < 300 {
                    if reader.read(&mut batch).await.unwrap() == 0 {
                        reader.wait(Duration::from_millis(50)).await;
                        continue;
                    }
                    seen.extend(batch.iter().map(index_of));
                    glommio::timer::sleep(Duration::from_millis(1)).await; // a slow consumer
                    reader.commit(batch.end()).await.unwrap();
                }
                reader.close().await.unwrap();
                seen
            }
        });
        let messages: Vec<Vec<u8>> = (0..300).map(|index| message(index, 200)).collect();
        let outcome = writer
            .append_batch(messages.iter().map(Vec::as_slice))
            .await
            .unwrap();
        assert_eq!((outcome.appended, outcome.dropped), (300, 0));
        assert_eq!(consumer.await, (0..300).collect::<Vec<_>>());
        let counters = writer.counters();
        assert!(counters.blocked_waits > 0, "{counters:?}");
        assert!(counters.retained_bytes <= 8192);

        // Nobody reads any more: the queue fills, and a stop request ends the wait.
        let stopper = glommio::spawn_local(async move {
            glommio::timer::sleep(Duration::from_millis(30)).await;
            handle.stop_blocking();
        });
        let more: Vec<Vec<u8>> = (300..400).map(|index| message(index, 200)).collect();
        let error = writer
            .append_batch(more.iter().map(Vec::as_slice))
            .await
            .unwrap_err();
        assert!(
            matches!(error, QueueError::Stopped { appended } if appended > 0),
            "{error}"
        );
        stopper.await;
    });
}

#[test]
fn removed_consumers_are_forgotten_and_laggards_are_moved_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let mut writer = Writer::open(&path, &options(), &names(&["kept", "removed"]))
            .await
            .unwrap();
        append_range(&mut writer, 0..100, 100).await;
        writer.close().await.unwrap();
        assert!(checkpoint::path(&path, "removed").exists());

        let mut options = options();
        options.max_consumer_lag = 3 * 4096;
        let mut writer = Writer::open(&path, &options, &names(&["kept"]))
            .await
            .unwrap();
        assert_eq!(writer.recovery().forgotten, vec!["removed".to_string()]);
        assert!(!checkpoint::path(&path, "removed").exists());
        assert_eq!(writer.counters().consumers_forgotten, 1);

        // `kept` never reads: past max_consumer_lag it is moved on, and the rest is deleted.
        append_range(&mut writer, 100..400, 100).await;
        writer.tick().await.unwrap();
        let counters = writer.counters();
        let kept = &counters.consumers[0];
        assert!(kept.dropped_lag_records > 0, "{kept:?}");
        assert!(kept.lag_bytes <= 3 * 4096, "{kept:?}");
        assert!(counters.retained_bytes <= 3 * 4096 + 4096);
        let first = segment_files(&path)[0];
        assert_eq!(kept.dropped_lag_records, first);
        let mut reader = Reader::open(&writer.handle(), "kept").unwrap();
        assert_eq!(drain(&mut reader).await, (first..400).collect::<Vec<_>>());

        // A consumer forgotten while running holds nothing and its reader stops.
        writer.forget_consumer("kept").await.unwrap();
        let mut batch = ReadBatch::new();
        assert!(matches!(
            reader.read(&mut batch).await,
            Err(QueueError::ConsumerRemoved(_))
        ));
        append_range(&mut writer, 400..500, 100).await;
        writer.tick().await.unwrap();
        assert_eq!(segment_files(&path).len(), 1);
    });
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let twice = Writer::open(&path, &options(), &names(&["a", "a"])).await;
        assert!(matches!(twice, Err(QueueError::Options(ref m)) if m.contains("twice")));
        let bad = QueueOptions {
            max_buffer_size: 5000,
            ..options()
        };
        assert!(Writer::open(&path, &bad, &[]).await.is_err());
        let small_reads = QueueOptions {
            read_bytes: 512,
            ..options()
        };
        let mut writer = Writer::open(&path, &small_reads, &names(&["a"]))
            .await
            .unwrap();
        assert!(matches!(
            Reader::open(&writer.handle(), "b"),
            Err(QueueError::UnknownConsumer(_))
        ));
        let reader = Reader::open(&writer.handle(), "a").unwrap();
        assert!(matches!(
            Reader::open(&writer.handle(), "a"),
            Err(QueueError::ConsumerBusy(_))
        ));
        drop(reader);
        assert!(
            Reader::open(&writer.handle(), "a").is_ok(),
            "released on drop"
        );
        let outcome = writer
            .append_batch([&b""[..], &[7u8; 1001][..], &[7u8; 20][..]])
            .await
            .unwrap();
        assert_eq!((outcome.appended, outcome.rejected), (1, 2));
        // A record larger than a read is read whole.
        writer.append(&message(9, 1000)).await.unwrap();
        let mut reader = Reader::open(&writer.handle(), "a").unwrap();
        let mut batch = ReadBatch::new();
        assert_eq!(reader.read(&mut batch).await.unwrap(), 1);
        assert_eq!(batch.get(0), Some(&[7u8; 20][..]));
        assert_eq!(reader.read(&mut batch).await.unwrap(), 1);
        assert_eq!(batch.get(0).map(<[u8]>::len), Some(1000));
    });
}

#[test]
fn the_inspector_sees_what_recovery_would_do_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let inner = path.clone();
    run(async move {
        let mut writer = Writer::open(&inner, &options(), &names(&["out", "idle"]))
            .await
            .unwrap();
        append_range(&mut writer, 0..100, 100).await;
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let mut batch = ReadBatch::new();
        while reader.position().seq < 40 {
            reader.read(&mut batch).await.unwrap();
            reader.commit(batch.end()).await.unwrap();
        }
        reader.close().await.unwrap();
        writer.close().await.unwrap();
    });
    let tail = *segment_files(&path).last().unwrap();
    let tail_path = segment::path(&path, tail);
    let length = std::fs::metadata(&tail_path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tail_path)
        .unwrap()
        .set_len(length - 1)
        .unwrap();
    let inspection = recovery::inspect(&path, 1024).unwrap();
    assert_eq!(inspection.next_seq, 99, "the torn record does not count");
    assert_eq!(inspection.tail.torn_records, 1);
    assert_eq!(inspection.records(), 99);
    let out = &inspection.consumers[1];
    assert_eq!(out.name, "out");
    assert_eq!(out.state, CheckpointState::Loaded);
    assert_eq!(out.lag_records, 99 - out.position.seq);
    assert!(out.position.seq >= 40);
    let idle = &inspection.consumers[0];
    assert_eq!(idle.lag_records, 99);
    assert_eq!(
        idle.lag_bytes,
        inspection.bytes() - inspection.tail.torn_bytes
    );
    assert_eq!(
        std::fs::metadata(&tail_path).unwrap().len(),
        length - 1,
        "inspection changes nothing"
    );
}

/// One step of the model test.
#[derive(Clone, Debug)]
enum Op {
    /// Append messages of these lengths as one batch.
    Append(Vec<usize>),
    /// Consumer reads one batch.
    Read(usize),
    /// Consumer commits what it has read.
    Commit(usize),
    /// Consumer writes its checkpoint.
    Checkpoint(usize),
    /// Writer's periodic work: sync, deletion.
    Tick,
    /// kill -9 and restart.
    Crash,
    /// Clean stop and restart.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(prop_oneof![9 => 8usize..300, 1 => 600usize..1000], 1..12)
            .prop_map(Op::Append),
        4 => (0usize..2).prop_map(Op::Read),
        3 => (0usize..2).prop_map(Op::Commit),
        2 => (0usize..2).prop_map(Op::Checkpoint),
        2 => Just(Op::Tick),
        1 => Just(Op::Crash),
        1 => Just(Op::Restart),
    ]
}

/// What a consumer has done, in the model.
#[derive(Clone, Copy, Debug, Default)]
struct ModelConsumer {
    /// The next index it will be handed.
    next: u64,
    /// Read, not yet committed: the end of its last batch.
    read_end: Option<(u64, Position)>,
    committed: u64,
    checkpointed: u64,
}

async fn model_case(
    path: std::path::PathBuf,
    sync: SyncPolicy,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let consumers = names(&["a", "b"]);
    let options = QueueOptions {
        max_file_size: 1024,
        sync,
        read_bytes: 512,
        ..options()
    };
    let mut appended = 0u64;
    let mut model = [ModelConsumer::default(); 2];
    let mut writer = Writer::open(&path, &options, &consumers).await.unwrap();
    let mut readers: Vec<Reader> = consumers
        .iter()
        .map(|name| Reader::open(&writer.handle(), name).unwrap())
        .collect();
    let mut batch = ReadBatch::new();
    for op in ops {
        match op {
            Op::Append(lengths) => {
                let messages: Vec<Vec<u8>> = lengths
                    .iter()
                    .enumerate()
                    .map(|(at, &length)| message(appended + at as u64, length))
                    .collect();
                let outcome = writer
                    .append_batch(messages.iter().map(Vec::as_slice))
                    .await
                    .unwrap();
                prop_assert_eq!(outcome.appended, lengths.len() as u64);
                appended += lengths.len() as u64;
            }
            Op::Read(index) => {
                let count = readers[index].read(&mut batch).await.unwrap() as u64;
                let state = &mut model[index];
                prop_assert_eq!(
                    count == 0,
                    state.next == appended,
                    "read {} at {}",
                    count,
                    state.next
                );
                let seen: Vec<u64> = batch.iter().map(index_of).collect();
                let expected: Vec<u64> = (state.next..state.next + count).collect();
                prop_assert_eq!(seen, expected, "in order, no gap, no duplicate");
                for (at, bytes) in batch.iter().enumerate() {
                    let length = bytes.len();
                    prop_assert_eq!(bytes, &message(state.next + at as u64, length)[..]);
                }
                state.next += count;
                if count > 0 {
                    state.read_end = Some((state.next, batch.end()));
                }
            }
            Op::Commit(index) => {
                if let Some((next, end)) = model[index].read_end.take() {
                    readers[index].commit(end).await.unwrap();
                    model[index].committed = next;
                }
            }
            Op::Checkpoint(index) => {
                readers[index].checkpoint().await.unwrap();
                model[index].checkpointed = model[index].committed;
            }
            Op::Tick => writer.tick().await.unwrap(),
            Op::Crash | Op::Restart => {
                let clean = matches!(op, Op::Restart);
                if clean {
                    for (reader, state) in readers.drain(..).zip(model.iter_mut()) {
                        reader.close().await.unwrap();
                        state.checkpointed = state.committed;
                    }
                    writer.close().await.unwrap();
                } else {
                    readers.clear();
                    drop(writer);
                }
                writer = Writer::open(&path, &options, &consumers).await.unwrap();
                prop_assert_eq!(writer.next_seq(), appended, "nothing accepted is lost");
                prop_assert_eq!(writer.recovery().tail.torn_bytes, 0);
                readers = consumers
                    .iter()
                    .map(|name| Reader::open(&writer.handle(), name).unwrap())
                    .collect();
                for (reader, state) in readers.iter().zip(model.iter_mut()) {
                    // At least once: resume from the checkpoint, replaying what followed it.
                    prop_assert_eq!(reader.position().seq, state.checkpointed);
                    state.next = state.checkpointed;
                    state.committed = state.checkpointed;
                    state.read_end = None;
                }
            }
        }
        let counters = writer.counters();
        for (index, state) in model.iter().enumerate() {
            prop_assert_eq!(
                counters.consumers[index].lag_records,
                appended - state.committed
            );
        }
        // Whatever was deleted, every consumer's checkpoint is still readable.
        let oldest = segment_files(&path)[0];
        prop_assert!(model.iter().all(|state| state.checkpointed >= oldest));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn writer_and_readers_match_a_model(
        sync in prop_oneof![
            Just(SyncPolicy::None),
            Just(SyncPolicy::Interval),
            Just(SyncPolicy::EveryBatch)
        ],
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        run(model_case(path, sync, ops))?;
    }
}

#[test]
fn a_reader_on_another_core_sees_every_record_in_order() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<QueueHandle>();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (sender, receiver) = std::sync::mpsc::channel::<QueueHandle>();
    let writer_thread = glommio::LocalExecutorBuilder::default()
        .io_memory(0)
        .spawn(move || async move {
            let mut writer = Writer::open(&path, &options(), &names(&["remote"]))
                .await
                .unwrap();
            sender.send(writer.handle()).unwrap();
            for chunk in 0..100u64 {
                append_range(&mut writer, chunk * 20..chunk * 20 + 20, 100).await;
                writer.tick().await.unwrap();
                glommio::timer::sleep(Duration::from_micros(200)).await;
            }
            writer.close().await.unwrap();
        })
        .unwrap();
    let reader_thread = glommio::LocalExecutorBuilder::default()
        .io_memory(0)
        .spawn(move || async move {
            let handle = receiver.recv().unwrap();
            let mut reader = Reader::open(&handle, "remote").unwrap();
            let mut batch = ReadBatch::new();
            let mut seen = Vec::new();
            while seen.len() < 2000 {
                if reader.read(&mut batch).await.unwrap() == 0 {
                    reader.wait(Duration::from_millis(10)).await;
                    continue;
                }
                seen.extend(batch.iter().map(index_of));
                reader.commit(batch.end()).await.unwrap();
            }
            reader.close().await.unwrap();
            seen
        })
        .unwrap();
    writer_thread.join().unwrap();
    let seen = reader_thread.join().unwrap();
    assert_eq!(seen, (0..2000).collect::<Vec<_>>());
}

#[test]
fn each_sync_policy_syncs_what_it_promises() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let mut fsyncs = Vec::new();
        for sync in [
            SyncPolicy::None,
            SyncPolicy::Interval,
            SyncPolicy::EveryBatch,
        ] {
            let queue = path.join(format!("{sync:?}"));
            let options = QueueOptions {
                sync,
                checkpoint_interval: Duration::from_millis(10),
                ..options()
            };
            let mut writer = Writer::open(&queue, &options, &names(&["out"]))
                .await
                .unwrap();
            append_range(&mut writer, 0..140, 100).await; // 20 batches, 3 rotations
            let counters = writer.counters();
            assert_eq!(counters.segments_created, 3);
            glommio::timer::sleep(Duration::from_millis(15)).await;
            writer.tick().await.unwrap();
            writer.sync().await.unwrap();
            let after = writer.counters().fsyncs;
            fsyncs.push((counters.fsyncs, after));
            writer.close().await.unwrap();
        }
        // none: only the explicit sync. interval: each sealed segment and its directory, in the
        // background, then the tail at the tick. every_batch: every write (20 batches, 3 of
        // them written in two parts around a rotation) and the directory at each rotation.
        assert_eq!(fsyncs[0], (0, 1));
        assert_eq!(fsyncs[1], (6, 8));
        assert_eq!(fsyncs[2], (23 + 3, 27));
    });
}

#[test]
fn rewind_reads_again_what_was_read_but_not_committed_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["out"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        append_range(&mut writer, 0..200, 100).await;
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let mut batch = ReadBatch::new();
        let committed = read_committing(&mut reader, &mut batch, 30).await;
        // Read on past several segment boundaries without committing, then rewind.
        let mut uncommitted = 0;
        while uncommitted < 80 {
            uncommitted += reader.read(&mut batch).await.unwrap();
        }
        assert!(reader.position().segment > reader.committed().segment);
        reader.rewind();
        assert_eq!(reader.position(), reader.committed());
        let rest = drain(&mut reader).await;
        let first = committed.len() as u64;
        assert_eq!(rest, (first..200).collect::<Vec<_>>());
    });
}

/// Appends `index` as one owned record (the hand-off path of a durable route's batches).
async fn append_owned(writer: &mut Writer, index: u64, length: usize) {
    let outcome = writer
        .append_owned(message(index, length), 1)
        .await
        .expect("append");
    assert_eq!(outcome.appended, 1);
}

/// A reader that keeps up takes each record from the writer's hand-off, across segment
/// rotations, and its positions are those of the segment: after a kill -9 the next reader
/// resumes from the checkpoint and reads from the segment exactly what was not checkpointed.
#[test]
fn handed_records_are_committed_as_read_and_a_kill_resumes_from_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["out"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        assert!(writer.hand_off_to("out", 4));
        assert!(!writer.hand_off_to("nobody", 4));
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        let mut batch = ReadBatch::new();
        let mut checkpointed = 0;
        for index in 0..60 {
            append_owned(&mut writer, index, 300).await;
            assert!(reader.has_data(), "the new end is published");
            assert_eq!(reader.read(&mut batch).await.unwrap(), 1);
            assert!(batch.is_handed(), "record {index} was read back");
            assert_eq!(batch.iter().map(index_of).collect::<Vec<_>>(), [index]);
            assert_eq!(batch.get(0), Some(message(index, 300).as_slice()));
            assert_eq!((batch.count(0), batch.end().seq), (Some(1), index + 1));
            reader.commit(batch.end()).await.unwrap();
            if index == 39 {
                reader.checkpoint().await.unwrap();
                checkpointed = index + 1;
            }
        }
        assert!(!reader.has_data());
        let counters = writer.counters();
        assert!(counters.segments_created > 3, "rotations were crossed");
        assert_eq!(counters.consumers[0].handed_records, 60);
        assert_eq!(counters.consumers[0].read_records, 60);
        // kill -9: nothing is closed, the last 20 commits were never checkpointed.
        drop(batch);
        drop(reader);
        drop(writer);

        let writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        assert_eq!(writer.next_seq(), 60);
        let mut reader = Reader::open(&writer.handle(), "out").unwrap();
        assert_eq!(reader.position().seq, checkpointed);
        // No hand-off now: everything replayed comes from the segments, whole and in order.
        let mut batch = ReadBatch::new();
        let mut replayed = Vec::new();
        while reader.read(&mut batch).await.unwrap() > 0 {
            assert!(!batch.is_handed());
            for (at, record) in batch.iter().enumerate() {
                assert_eq!(record, message(index_of(record), 300).as_slice());
                assert_eq!(batch.count(at), Some(1));
            }
            replayed.extend(batch.iter().map(index_of));
        }
        assert_eq!(replayed, (checkpointed..60).collect::<Vec<_>>());
        drop(reader);
        writer.close().await.unwrap();
    });
}

/// A queue with one consumer, `out`, whose first `before` records (300 bytes each) were
/// appended before the writer hands records off to it (so they are only in the segments), and
/// its reader; the hand-off ring holds 4 records.
async fn handing_off_after(path: &Path, before: u64) -> (Writer, Reader) {
    let mut writer = Writer::open(path, &options(), &names(&["out"]))
        .await
        .unwrap();
    for index in 0..before {
        append_owned(&mut writer, index, 300).await;
    }
    assert!(writer.hand_off_to("out", 4));
    let reader = Reader::open(&writer.handle(), "out").unwrap();
    (writer, reader)
}

/// A consumer that lags falls back to reading the segments: the ring's overflow is read from
/// them, records the reader already read from them are dropped from the ring, and once it has
/// caught up it takes records from memory again. A rewind reads from the segments too. Every
/// record is delivered once, in order.
#[test]
fn a_lagging_reader_falls_back_to_the_segments_and_takes_handed_records_once_caught_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let (mut writer, mut reader) = handing_off_after(&path, 4).await;
        // 4..8 fill the ring; 8..20 find it full and stay in the segments only.
        for index in 4..20 {
            append_owned(&mut writer, index, 300).await;
        }
        let mut batch = ReadBatch::new();
        let (mut seen, mut handed) = (Vec::<u64>::new(), Vec::<u64>::new());
        while reader.read(&mut batch).await.unwrap() > 0 {
            let indexes: Vec<u64> = batch.iter().map(index_of).collect();
            if batch.is_handed() {
                handed.extend(&indexes);
            }
            seen.extend(indexes);
            reader.commit(batch.end()).await.unwrap();
        }
        assert_eq!(
            seen,
            (0..20).collect::<Vec<_>>(),
            "each record once, in order"
        );
        // Reads of 1024 bytes take 3 records: 0..3 from the segment, then 3..6 too (the
        // ring's oldest, 4, is ahead of 3); 4 and 5 are then dropped from the ring, 6 and 7
        // taken from it; the rest from the segments.
        assert_eq!(handed, [6, 7]);
        // Caught up: records come from memory again.
        append_owned(&mut writer, 20, 300).await;
        assert_eq!(reader.read(&mut batch).await.unwrap(), 1);
        assert!(batch.is_handed());
        assert_eq!(index_of(batch.get(0).unwrap()), 20);
        // Not committed, rewound (a failed delivery): read again, from the segment.
        append_owned(&mut writer, 21, 300).await;
        reader.rewind();
        let mut again = Vec::new();
        while reader.read(&mut batch).await.unwrap() > 0 {
            if index_of(batch.get(0).unwrap()) == 20 {
                assert!(
                    !batch.is_handed(),
                    "a rewound record is read from the segment"
                );
            }
            again.extend(batch.iter().map(index_of));
            reader.commit(batch.end()).await.unwrap();
        }
        assert_eq!(again, [20, 21]);
        assert_eq!(writer.counters().consumers[0].handed_records, 3);
        drop(reader);
        writer.close().await.unwrap();
    });
}

/// The hand-off ring belongs to the consumer, not to one reader: a reader dropped gives it
/// back, and the next reader of the consumer takes records from memory again.
#[test]
fn a_new_reader_of_the_consumer_takes_over_the_hand_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let consumers = names(&["out"]);
        let mut writer = Writer::open(&path, &options(), &consumers).await.unwrap();
        writer.hand_off_to("out", 4);
        let mut batch = ReadBatch::new();
        for index in 0..3 {
            let mut reader = Reader::open(&writer.handle(), "out").unwrap();
            append_owned(&mut writer, index, 300).await;
            assert_eq!(reader.read(&mut batch).await.unwrap(), 1);
            assert!(batch.is_handed());
            assert_eq!(index_of(batch.get(0).unwrap()), index);
            reader.commit(batch.end()).await.unwrap();
        }
        writer.close().await.unwrap();
    });
}

/// The segment files under `dir` that this process still holds open after they were deleted:
/// disk space the queue believes it gave back.
fn deleted_but_open(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_dir("/proc/self/fd")
        .expect("list /proc/self/fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| target.starts_with(&prefix) && target.ends_with(" (deleted)"))
        .collect()
}

/// A reader that reads its first segment from the file and then keeps up through the
/// hand-off never opens a file again; the segment it read is pruned after the checkpoint, and
/// its descriptor must be closed, or the pruned segment keeps its disk space (a full disk
/// then stays full after the consumer caught up).
#[test]
fn a_reader_that_moves_on_through_the_hand_off_closes_the_segment_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    run(async move {
        let (mut writer, mut reader) = handing_off_after(&path, 4).await;
        let mut batch = ReadBatch::new();
        assert!(reader.read(&mut batch).await.unwrap() > 0);
        assert!(!batch.is_handed(), "the first records come from the file");
        reader.commit(batch.end()).await.unwrap();
        while reader.read(&mut batch).await.unwrap() > 0 {
            reader.commit(batch.end()).await.unwrap();
        }
        for index in 4..60 {
            append_owned(&mut writer, index, 300).await;
            assert_eq!(reader.read(&mut batch).await.unwrap(), 1);
            assert!(batch.is_handed(), "record {index} came from the hand-off");
            reader.commit(batch.end()).await.unwrap();
        }
        reader.checkpoint().await.unwrap();
        writer.tick().await.unwrap();
        assert!(
            writer.counters().segments_deleted > 0,
            "segments were pruned"
        );
        // The closes of dropped files run with the executor's next I/O; this one is awaited.
        assert_eq!(deleted_but_open(&path), Vec::<String>::new());
        drop(reader);
        writer.close().await.unwrap();
    });
}
