//! What a source queue's files are worth at open, and the repairs that make them consistent.
//!
//! Rules, applied by [`recover`] before the writer appends anything:
//! 1. **Torn tail.** The tail segment is read to its end. Everything after the last intact
//!    record (one whose framing and CRC32C check) is a torn write from a crash: it is cut off
//!    (`ftruncate`), counted in bytes and frames, and logged. Fewer than
//!    [`segment::PADDING_BYTES_MAX`] zeros there are the padding of the last direct write
//!    ([`SegmentFile`]): cut too, but not counted or logged as damage. Damage *followed* by intact
//!    records is not a torn tail: it is kept, counted, and skipped by readers, so no intact
//!    record is ever cut.
//! 2. **Missing or corrupt checkpoint.** The consumer starts at the oldest retained segment:
//!    duplicates beat loss.
//! 3. **Checkpoint into a deleted segment.** The consumer moves to the start of the next
//!    retained segment (Heka shut down here instead).
//! 4. **Checkpoint past the data** (the data was lost in a power loss but the checkpoint was
//!    not, or a torn tail was cut): the consumer moves to the end of the data, before the writer
//!    appends, so it cannot skip the records written next.
//! 5. **Forgotten consumers.** A checkpoint whose consumer is not in the list given at open is
//!    deleted (and logged): a consumer removed from the config never pins the queue.
//!
//! Repaired checkpoints are written back at once. Sealed segments are not read at open (that
//! would cost a read of the whole queue); damage there is found and skipped by readers.
//! [`inspect`] computes the same verdicts read-only, for `gyges queue` on a stopped daemon.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use glommio::io::OpenOptions;

use super::checkpoint::{self, CheckpointError};
use super::record::{self, Step};
use super::segment::{self, SegmentFile, SegmentInfo, Segments};
use super::{Position, QueueError};

/// What the scan of a tail segment found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailScan {
    /// The file's length before any repair.
    pub file_bytes: u64,
    /// The end of the last intact record: where appending resumes.
    pub valid_bytes: u64,
    /// Intact records.
    pub records: u64,
    /// Damaged bytes followed by intact records (kept; readers skip them).
    pub corrupt_bytes: u64,
    /// Bytes after the last intact record (cut), padding aside.
    pub torn_bytes: u64,
    /// Zeros after the last intact record, fewer than [`segment::PADDING_BYTES_MAX`]: the
    /// padding of a direct write's last block, cut without counting as damage.
    pub padding_bytes: u64,
    /// Frames that start in the torn bytes, counted by their headers.
    pub torn_records: u64,
}

/// A request for bytes from a scan: read `length` bytes at `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ReadRequest {
    offset: u64,
    length: usize,
}

/// Walks a file chunk by chunk, whatever reads the chunks (glommio at open, std in
/// [`inspect`]). Memory is bounded by one chunk or one record, whichever is larger.
struct TailScanner {
    scan: TailScan,
    chunk_bytes: usize,
    /// Where the current run of damage started, if one is open.
    damage_from: Option<u64>,
    /// Whether a byte other than zero was skipped since the last intact record.
    damage_not_zeros: bool,
}

impl TailScanner {
    fn new(file_bytes: u64, chunk_bytes: usize) -> (TailScanner, Option<ReadRequest>) {
        let scanner = TailScanner {
            scan: TailScan {
                file_bytes,
                ..TailScan::default()
            },
            chunk_bytes,
            damage_from: None,
            damage_not_zeros: false,
        };
        let first = (file_bytes > 0).then_some(ReadRequest {
            offset: 0,
            length: chunk_bytes,
        });
        (scanner, first)
    }

    /// Takes the bytes read for a request; returns the next request, or `None` when done.
    fn feed(&mut self, bytes: &[u8], offset: u64) -> Option<ReadRequest> {
        let complete = offset + bytes.len() as u64 >= self.scan.file_bytes;
        let mut at = 0;
        loop {
            match record::step(bytes, at, complete) {
                Step::Record { next, .. } => {
                    if let Some(from) = self.damage_from.take() {
                        self.scan.corrupt_bytes += offset + at as u64 - from;
                    }
                    self.damage_not_zeros = false;
                    self.scan.records += 1;
                    self.scan.valid_bytes = offset + next as u64;
                    at = next;
                }
                Step::Skip { next } => {
                    self.damage_from.get_or_insert(offset + at as u64);
                    self.damage_not_zeros |= bytes[at..next].iter().any(|&byte| byte != 0);
                    at = next;
                }
                Step::NeedMore { at, needed } => {
                    return Some(ReadRequest {
                        offset: offset + at as u64,
                        length: needed.max(self.chunk_bytes),
                    });
                }
                Step::End if complete => {
                    self.finish(bytes, offset);
                    return None;
                }
                Step::End => {
                    return Some(ReadRequest {
                        offset: offset + bytes.len() as u64,
                        length: self.chunk_bytes,
                    });
                }
            }
        }
    }

    fn finish(&mut self, last_chunk: &[u8], offset: u64) {
        let scan = &mut self.scan;
        let after = scan.file_bytes - scan.valid_bytes;
        // Padding follows a record, is zeros only, and ends the file at a block's end (blocks
        // are multiples of 512 bytes).
        let padding = scan.valid_bytes > 0
            && after < segment::PADDING_BYTES_MAX
            && scan.file_bytes % 512 == 0
            && !self.damage_not_zeros;
        if padding {
            scan.padding_bytes = after;
            return;
        }
        scan.torn_bytes = after;
        if scan.torn_bytes > 0 {
            let from = scan.valid_bytes.saturating_sub(offset) as usize;
            scan.torn_records = record::count_frames(last_chunk.get(from..).unwrap_or(&[])).max(1);
        }
    }
}

/// How a consumer's starting position was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointState {
    /// The checkpoint was read and points into the data.
    Loaded,
    /// There was no checkpoint: the oldest retained segment.
    Missing,
    /// The checkpoint was damaged: the oldest retained segment.
    Corrupt(CheckpointError),
    /// The checkpoint pointed into a segment that no longer exists: the next one.
    MovedToNextSegment {
        /// Where the checkpoint pointed.
        from: Position,
    },
    /// The checkpoint pointed past the data: the end of the data.
    ClampedToEnd {
        /// Where the checkpoint pointed.
        from: Position,
    },
}

impl CheckpointState {
    /// A short description for logs and `gyges queue`.
    pub fn describe(&self) -> String {
        match self {
            CheckpointState::Loaded => "ok".into(),
            CheckpointState::Missing => "none: starts at the oldest segment".into(),
            CheckpointState::Corrupt(error) => {
                format!("corrupt ({error}): starts at the oldest segment")
            }
            CheckpointState::MovedToNextSegment { from } => {
                format!(
                    "segment {} is gone: moves to the next segment",
                    from.segment
                )
            }
            CheckpointState::ClampedToEnd { from } => format!(
                "points past the data (segment {} offset {}): moves to the end",
                from.segment, from.offset
            ),
        }
    }
}

/// The start of segment `segment`.
fn start_of(segment: SegmentInfo) -> Position {
    Position {
        segment: segment.base,
        offset: 0,
        seq: segment.base,
    }
}

/// Where a consumer starts, given what its checkpoint file held. `segments` is never empty and
/// its tail's length is the recovered one; `next_seq` is the writer's next sequence number.
pub fn resolve(
    stored: Option<Result<Position, CheckpointError>>,
    segments: &Segments,
    next_seq: u64,
) -> (Position, CheckpointState) {
    let (Some(oldest), Some(tail)) = (segments.oldest(), segments.tail()) else {
        return (Position::default(), CheckpointState::Missing);
    };
    let end = Position {
        segment: tail.base,
        offset: tail.bytes,
        seq: next_seq,
    };
    let stored = match stored {
        None => return (start_of(oldest), CheckpointState::Missing),
        Some(Err(error)) => return (start_of(oldest), CheckpointState::Corrupt(error)),
        Some(Ok(stored)) => stored,
    };
    let (position, state) = match segments.get(stored.segment) {
        Some(segment) if stored.offset <= segment.bytes => {
            let seq_end = segments
                .next_after(segment.base)
                .map_or(next_seq, |next| next.base);
            let seq = stored.seq.clamp(segment.base, seq_end);
            (Position { seq, ..stored }, CheckpointState::Loaded)
        }
        Some(segment) if segment.base == tail.base => {
            (end, CheckpointState::ClampedToEnd { from: stored })
        }
        Some(segment) => match segments.next_after(segment.base) {
            Some(next) => (
                start_of(next),
                CheckpointState::ClampedToEnd { from: stored },
            ),
            None => (end, CheckpointState::ClampedToEnd { from: stored }),
        },
        None => match segments.next_after(stored.segment) {
            Some(next) => (
                start_of(next),
                CheckpointState::MovedToNextSegment { from: stored },
            ),
            None => (end, CheckpointState::ClampedToEnd { from: stored }),
        },
    };
    (normalize(segments, position), state)
}

/// A position at the very end of a sealed segment is the start of the next one.
pub fn normalize(segments: &Segments, position: Position) -> Position {
    match (
        segments.get(position.segment),
        segments.next_after(position.segment),
    ) {
        (Some(segment), Some(next)) if position.offset >= segment.bytes => start_of(next),
        _ => position,
    }
}

/// Everything [`recover`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// What the scan of the tail segment found, and what it cut.
    pub tail: TailScan,
    /// Each consumer given at open, with how its position was found.
    pub checkpoints: Vec<(String, CheckpointState)>,
    /// Consumers whose checkpoint was deleted because they were not given at open.
    pub forgotten: Vec<String>,
    /// Whether the queue was created empty.
    pub created: bool,
}

/// A source queue, recovered and ready for its writer.
#[derive(Debug)]
pub struct Recovered {
    /// The retained segments, oldest first, with the tail's length after repair.
    pub segments: Segments,
    /// The sequence number the next appended record gets.
    pub next_seq: u64,
    /// The starting position of each consumer given at open, in the same order.
    pub positions: Vec<Position>,
    /// Everything recovery found and did, for logs and counters.
    pub report: RecoveryReport,
}

/// Checks and repairs the source queue in `dir` (creating it if needed) for `consumers`.
///
/// # Errors
/// A file could not be listed, read, cut or written. The queue is then not opened.
pub async fn recover(
    dir: &Path,
    consumers: &[String],
    chunk_bytes: usize,
    sync: bool,
) -> Result<Recovered, QueueError> {
    std::fs::create_dir_all(dir).map_err(|error| QueueError::io("create directory", dir, error))?;
    remove_temp_files(dir)?;
    let mut report = RecoveryReport::default();
    let mut list = segment::list(dir).map_err(|error| QueueError::io("list", dir, error))?;
    if list.is_empty() {
        SegmentFile::create(dir, 0, false).await?.close().await?;
        if sync {
            segment::sync_dir(dir).await?;
        }
        list.push(SegmentInfo { base: 0, bytes: 0 });
        report.created = true;
    }
    let mut segments = Segments::new(list);
    let tail = segments.tail().unwrap_or(SegmentInfo { base: 0, bytes: 0 });
    report.tail = repair_tail(dir, tail, chunk_bytes, sync).await?;
    segments.set_tail_bytes(report.tail.valid_bytes);
    let next_seq = tail.base + report.tail.records;

    report.forgotten = forget_strangers(dir, consumers)?;
    let mut positions = Vec::with_capacity(consumers.len());
    for consumer in consumers {
        let stored = checkpoint::load(dir, consumer).map_err(|error| {
            QueueError::io("read checkpoint", &checkpoint::path(dir, consumer), error)
        })?;
        let existed = stored.is_some();
        let (position, state) = resolve(stored, &segments, next_seq);
        if state != CheckpointState::Loaded || !existed {
            log_checkpoint(dir, consumer, &state);
            checkpoint::store(dir, consumer, position, sync).await?;
        }
        positions.push(position);
        report.checkpoints.push((consumer.clone(), state));
    }
    Ok(Recovered {
        segments,
        next_seq,
        positions,
        report,
    })
}

fn log_checkpoint(dir: &Path, consumer: &str, state: &CheckpointState) {
    let queue = dir.display();
    match state {
        CheckpointState::Loaded => {}
        CheckpointState::Missing => {
            let message = "no checkpoint: the consumer starts at the oldest segment";
            tracing::info!(%queue, consumer, "{message}")
        }
        _ => tracing::warn!(%queue, consumer, "checkpoint {}", state.describe()),
    }
}

async fn repair_tail(
    dir: &Path,
    tail: SegmentInfo,
    chunk_bytes: usize,
    sync: bool,
) -> Result<TailScan, QueueError> {
    let path = segment::path(dir, tail.base);
    let io_error = |op, error: glommio::GlommioError<()>| QueueError::io(op, &path, error.into());
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .buffered_open(&path)
        .await
        .map_err(|error| io_error("open tail segment", error))?;
    let file_bytes = file
        .file_size()
        .await
        .map_err(|error| io_error("stat tail segment", error))?;
    let (mut scanner, mut request) = TailScanner::new(file_bytes, chunk_bytes);
    while let Some(next) = request {
        let bytes = file
            .read_at(next.offset, next.length)
            .await
            .map_err(|error| io_error("read tail segment", error))?;
        request = scanner.feed(&bytes, next.offset);
    }
    let scan = scanner.scan;
    if scan.torn_bytes > 0 || scan.padding_bytes > 0 {
        file.truncate(scan.valid_bytes)
            .await
            .map_err(|error| io_error("cut the torn tail of", error))?;
        if sync {
            file.fdatasync()
                .await
                .map_err(|error| io_error("fdatasync", error))?;
        }
    }
    if scan.padding_bytes > 0 {
        tracing::debug!(
            segment = %path.display(),
            padding_bytes = scan.padding_bytes,
            "cut the zeros that padded the last direct write of the tail segment"
        );
    }
    if scan.torn_bytes > 0 {
        tracing::warn!(
            segment = %path.display(),
            torn_bytes = scan.torn_bytes,
            torn_records = scan.torn_records,
            kept_bytes = scan.valid_bytes,
            "cut a torn record at the tail of the queue (a crash interrupted a write)"
        );
    }
    if scan.corrupt_bytes > 0 {
        tracing::warn!(
            segment = %path.display(),
            corrupt_bytes = scan.corrupt_bytes,
            "damaged bytes inside the tail segment; readers will skip them"
        );
    }
    file.close()
        .await
        .map_err(|error| io_error("close tail segment", error))?;
    Ok(scan)
}

fn remove_temp_files(dir: &Path) -> Result<(), QueueError> {
    for name in file_names(dir)? {
        if name.ends_with(checkpoint::TEMP_SUFFIX) {
            let path = dir.join(&name);
            std::fs::remove_file(&path)
                .map_err(|error| QueueError::io("remove temporary checkpoint", &path, error))?;
        }
    }
    Ok(())
}

/// Deletes the checkpoints of consumers not in `consumers`, returning their names.
fn forget_strangers(dir: &Path, consumers: &[String]) -> Result<Vec<String>, QueueError> {
    let mut forgotten = Vec::new();
    for name in file_names(dir)? {
        let Some(consumer) = checkpoint::consumer_name(&name) else {
            continue;
        };
        if consumers.contains(&consumer) {
            continue;
        }
        let path = dir.join(&name);
        std::fs::remove_file(&path)
            .map_err(|error| QueueError::io("remove checkpoint", &path, error))?;
        tracing::info!(
            queue = %dir.display(),
            consumer = %consumer,
            "forgot a consumer that is no longer configured; it holds no data any more"
        );
        forgotten.push(consumer);
    }
    forgotten.sort();
    Ok(forgotten)
}

fn file_names(dir: &Path) -> Result<Vec<String>, QueueError> {
    let entries = std::fs::read_dir(dir).map_err(|error| QueueError::io("list", dir, error))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| QueueError::io("list", dir, error))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// One consumer as [`inspect`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerInspection {
    /// The consumer's name, from its checkpoint file's name.
    pub name: String,
    /// What the checkpoint file says, if it parsed.
    pub stored: Option<Position>,
    /// Where the consumer would start if the queue were opened now.
    pub position: Position,
    /// How the starting position would be found if the queue were opened now.
    pub state: CheckpointState,
    /// Bytes from `position` to the end of the data.
    pub lag_bytes: u64,
    /// Records from `position` to the end of the data.
    pub lag_records: u64,
}

/// A source queue as found on disk, without changing anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// The source queue's directory.
    pub dir: PathBuf,
    /// The segments on disk, oldest first, with their sizes on disk.
    pub segments: Vec<SegmentInfo>,
    /// What a scan of the tail segment finds: intact records and torn bytes.
    pub tail: TailScan,
    /// The sequence number the next record would get.
    pub next_seq: u64,
    /// Every consumer with a checkpoint file in the directory, by name.
    pub consumers: Vec<ConsumerInspection>,
    /// Files that are neither segments nor checkpoints.
    pub other_files: Vec<String>,
}

impl Inspection {
    /// Bytes in the segments, as they are on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|segment| segment.bytes).sum()
    }

    /// Records that recovery would keep: from the oldest segment to the intact end.
    pub fn records(&self) -> u64 {
        self.segments
            .first()
            .map_or(0, |oldest| self.next_seq - oldest.base)
    }
}

/// Reads a source queue's directory with plain blocking I/O and reports what [`recover`] would
/// find, without repairing anything. Meant for a stopped daemon's files; on a running queue the
/// numbers are a moment's snapshot.
///
/// # Errors
/// The directory, a segment or a checkpoint cannot be read.
pub fn inspect(dir: &Path, chunk_bytes: usize) -> io::Result<Inspection> {
    let segments_found = segment::list(dir)?;
    let mut segments = Segments::new(segments_found.iter().copied());
    let mut tail_scan = TailScan::default();
    let mut next_seq = 0;
    if let Some(tail) = segments.tail() {
        let file = std::fs::File::open(segment::path(dir, tail.base))?;
        let (mut scanner, mut request) = TailScanner::new(tail.bytes, chunk_bytes);
        let mut buffer = Vec::new();
        while let Some(next) = request {
            buffer.resize(next.length, 0);
            let read = read_fully_at(&file, &mut buffer, next.offset)?;
            request = scanner.feed(&buffer[..read], next.offset);
        }
        tail_scan = scanner.scan;
        segments.set_tail_bytes(tail_scan.valid_bytes);
        next_seq = tail.base + tail_scan.records;
    }
    let mut consumers = Vec::new();
    let mut other_files = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for name in names {
        if segment::parse_file_name(&name).is_some() {
            continue;
        }
        let Some(consumer) = checkpoint::consumer_name(&name) else {
            other_files.push(name);
            continue;
        };
        let stored = checkpoint::load(dir, &consumer)?;
        let parsed = stored
            .as_ref()
            .and_then(|stored| stored.as_ref().ok().copied());
        let (position, state) = resolve(stored, &segments, next_seq);
        consumers.push(ConsumerInspection {
            lag_bytes: segments.bytes_after(position),
            lag_records: next_seq.saturating_sub(position.seq),
            name: consumer,
            stored: parsed,
            position,
            state,
        });
    }
    Ok(Inspection {
        dir: dir.to_path_buf(),
        segments: segments_found,
        tail: tail_scan,
        next_seq,
        consumers,
        other_files,
    })
}

fn read_fully_at(file: &std::fs::File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(messages: &[&[u8]]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for message in messages {
            record::encode(message, &mut bytes);
        }
        bytes
    }

    fn scan(bytes: &[u8], chunk: usize) -> TailScan {
        let (mut scanner, mut request) = TailScanner::new(bytes.len() as u64, chunk);
        while let Some(next) = request {
            let start = next.offset as usize;
            let end = (start + next.length).min(bytes.len());
            request = scanner.feed(&bytes[start..end], next.offset);
        }
        scanner.scan
    }

    #[test]
    fn scans_agree_whatever_the_chunk_size() {
        let messages: Vec<Vec<u8>> = (0..50u8).map(|n| vec![n; 1 + usize::from(n) * 7]).collect();
        let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let intact = records(&slices);
        let mut damaged = intact.clone();
        let middle = record::encoded_length(1) + 12;
        damaged[middle] ^= 0x55; // inside the second record
        let torn_length = damaged.len() - 5;
        damaged.truncate(torn_length);
        for chunk in [1, 7, 64, 1000, 1 << 20] {
            let whole = scan(&intact, chunk);
            assert_eq!(whole.records, 50, "chunk {chunk}");
            assert_eq!(whole.valid_bytes, intact.len() as u64);
            assert_eq!((whole.torn_bytes, whole.corrupt_bytes), (0, 0));
            let hurt = scan(&damaged, chunk);
            assert_eq!(hurt.records, 48, "chunk {chunk}: one damaged, one torn");
            assert_eq!(hurt.corrupt_bytes, record::encoded_length(8) as u64);
            let last = record::encoded_length(1 + 49 * 7) as u64;
            assert_eq!(hurt.torn_bytes, last - 5);
            assert_eq!(hurt.valid_bytes, torn_length as u64 - (last - 5));
        }
        assert_eq!(scan(&[], 64), TailScan::default());
        let garbage = scan(&[0u8; 100], 64);
        assert_eq!(
            (garbage.valid_bytes, garbage.torn_bytes, garbage.records),
            (0, 100, 0)
        );
    }

    /// Zeros after the last record up to a block's end are a direct write's padding, cut
    /// without counting as torn; zeros that do not end at a block's end, a byte other than
    /// zero, or a block of zeros or more are torn, whatever the chunk size.
    #[test]
    fn zeros_to_a_block_end_are_padding_and_anything_else_is_torn() {
        let intact = records(&[b"first message", b"second message"]);
        let padded_to = |end: usize| {
            let mut bytes = intact.clone();
            bytes.resize(end, 0);
            bytes
        };
        for chunk in [1, 7, 64, 1 << 20] {
            let padded = scan(&padded_to(512), chunk);
            assert_eq!(padded.records, 2, "chunk {chunk}");
            assert_eq!(padded.valid_bytes, intact.len() as u64);
            assert_eq!(padded.padding_bytes, 512 - intact.len() as u64);
            assert_eq!((padded.torn_bytes, padded.torn_records), (0, 0));

            let unaligned = scan(&padded_to(500), chunk);
            assert_eq!(unaligned.padding_bytes, 0, "chunk {chunk}");
            assert_eq!(unaligned.torn_bytes, 500 - intact.len() as u64);

            let mut dirty = padded_to(512);
            dirty[400] = 7;
            let dirty = scan(&dirty, chunk);
            assert_eq!(dirty.padding_bytes, 0, "chunk {chunk}");
            assert_eq!(dirty.torn_bytes, 512 - intact.len() as u64);

            let block = segment::PADDING_BYTES_MAX as usize;
            let long = scan(
                &padded_to(intact.len().next_multiple_of(512) + block),
                chunk,
            );
            assert_eq!(long.padding_bytes, 0, "chunk {chunk}");
            assert!(long.torn_bytes >= segment::PADDING_BYTES_MAX);
        }
    }

    fn segments() -> Segments {
        Segments::new([
            SegmentInfo {
                base: 10,
                bytes: 100,
            },
            SegmentInfo {
                base: 20,
                bytes: 100,
            },
            SegmentInfo {
                base: 40,
                bytes: 60,
            },
        ])
    }

    #[test]
    fn checkpoint_resolution_rules() {
        let segments = segments();
        let next_seq = 46;
        let at = |segment, offset, seq| Position {
            segment,
            offset,
            seq,
        };
        type Stored = Option<Result<Position, CheckpointError>>;
        let cases: Vec<(Stored, Position, CheckpointState)> = vec![
            (None, at(10, 0, 10), CheckpointState::Missing),
            (
                Some(Err(CheckpointError::Checksum)),
                at(10, 0, 10),
                CheckpointState::Corrupt(CheckpointError::Checksum),
            ),
            (
                Some(Ok(at(20, 50, 25))),
                at(20, 50, 25),
                CheckpointState::Loaded,
            ),
            (
                Some(Ok(at(20, 100, 40))),
                at(40, 0, 40),
                CheckpointState::Loaded,
            ),
            (
                Some(Ok(at(0, 70, 5))),
                at(10, 0, 10),
                CheckpointState::MovedToNextSegment { from: at(0, 70, 5) },
            ),
            (
                Some(Ok(at(15, 7, 17))),
                at(20, 0, 20),
                CheckpointState::MovedToNextSegment {
                    from: at(15, 7, 17),
                },
            ),
            (
                Some(Ok(at(40, 90, 50))),
                at(40, 60, 46),
                CheckpointState::ClampedToEnd {
                    from: at(40, 90, 50),
                },
            ),
            (
                Some(Ok(at(99, 0, 99))),
                at(40, 60, 46),
                CheckpointState::ClampedToEnd {
                    from: at(99, 0, 99),
                },
            ),
            (
                Some(Ok(at(10, 500, 12))),
                at(20, 0, 20),
                CheckpointState::ClampedToEnd {
                    from: at(10, 500, 12),
                },
            ),
            // A sequence number that disagrees with its segment is pulled into range.
            (
                Some(Ok(at(20, 10, 3))),
                at(20, 10, 20),
                CheckpointState::Loaded,
            ),
        ];
        for (stored, position, state) in cases {
            assert_eq!(
                resolve(stored, &segments, next_seq),
                (position, state),
                "{stored:?}"
            );
        }
    }
}
