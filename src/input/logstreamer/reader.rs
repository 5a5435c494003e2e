//! One ingest core's LogstreamerInput task: the streams this core owns, read in turn.
//!
//! Each turn, a stream first checks that its file was not truncated (below), then reads its
//! current file from where it stands, up to
//! [`LOGSTREAMER_TURN_BYTES`], in reads of [`LOGSTREAMER_READ_BYTES`] into its bounded
//! [`StreamBuffer`], splitting and routing every record. At the end of its file it checks,
//! once per `check_data_interval`:
//!
//! - **Truncation** (copytruncate): the open file is shorter than what was read, or its first
//!   bytes changed. The rotated copy (another file of the stream whose first bytes are the
//!   same and which is at least as long) is read on from the same offset to its end, then the
//!   truncated file from its start. With no such copy the file is read again from its start,
//!   and a warning says lines may be lost.
//! - **Replacement** (rotation by rename): the path now names another file, or none. The open
//!   file is read to its end one more interval later (an application that has not reopened
//!   its log yet may still write to it), then the next file of the stream is read from its
//!   start. A rescan runs at once, so the new file is found without waiting for
//!   `rescan_interval`.
//! - **A newer file** in the stream (a file that matched since, a dated name): the same, read
//!   after the current one is finished.
//!
//! The journal ([`super::journal`]) is written every
//! [`crate::limits::LOGSTREAMER_JOURNAL_INTERVAL`] and at stop, after [`Shard::settle`]: every
//! record before the journaled offset has then been shipped to its outputs and, where the
//! route is durable, appended to the disk queue.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use glommio::io::{BufferedFile, OpenOptions};

use super::journal::{self, Identity, Position};
use super::scan::{nanos, FoundFile};
use super::LogstreamerKind;
use crate::input::{deliver_record, publish_splitter_stats, InputContext};
use crate::limits::{
    LOGSTREAMER_HEAD_BYTES, LOGSTREAMER_JOURNAL_INTERVAL, LOGSTREAMER_READ_BYTES,
    LOGSTREAMER_STREAMS_MAX, LOGSTREAMER_TURN_BYTES, TAIL_ZEROS_WAIT,
};
use crate::message::{now_ns, LineMeta};
use crate::runtime::failure::{self, PluginTask};
use crate::runtime::shard::{InputGuard, Shard};
use crate::splitter::{Splitter, StreamBuffer};
use crate::telemetry::Metric;

/// The file a stream is reading.
struct Current {
    path: PathBuf,
    file: BufferedFile,
    identity: Identity,
    modified_ns: i64,
    /// Bytes of the file read into `buffer`.
    read_offset: u64,
    splitter: Splitter,
    buffer: StreamBuffer,
    /// The end of the file was reached after its path was seen naming another file, or a newer
    /// file appeared: one more interval's reading, then the next file.
    leaving: bool,
    /// A zero byte this stream stopped reading at, and when it first saw it: a write still in
    /// flight ([`hold_at_zeros`]).
    zeros: Option<(u64, Instant)>,
}

impl Current {
    /// The byte after the last record routed.
    fn consumed(&self) -> u64 {
        self.read_offset - self.buffer.pending().len() as u64
    }

    fn position(&self) -> Position {
        Position {
            identity: self.identity,
            offset: self.consumed(),
            modified_ns: self.modified_ns,
            path: self.path.clone(),
        }
    }
}

/// One stream this core owns.
struct Stream {
    name: String,
    meta: LineMeta,
    journal_path: PathBuf,
    /// Its files at the last scan, oldest first.
    files: Vec<FoundFile>,
    current: Option<Current>,
    /// With no current file: start at the first file modified at or after this (a journaled
    /// file that is gone); `None`: at the first file.
    resume_after_ns: Option<i64>,
    /// The position last written to the journal.
    journaled: Option<Position>,
}

/// This core's streams of one LogstreamerInput.
pub struct CoreStreams {
    kind: LogstreamerKind,
    slot: usize,
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    streams: BTreeMap<String, Stream>,
    last_scan: Option<Instant>,
    rescan_now: bool,
}

/// How much of `read` (the bytes at `offset` of a stream's file) the stream takes now. A
/// writer that appends with several writes in flight (a FileOutput written by every core, or
/// with writes in flight) leaves a range that reads as zeros until its write completes, while
/// later ranges already hold their records. So a stream stops before the first zero byte and
/// reads from there again later (`zeros` remembers where, and since when); once the same zero
/// has stood for [`TAIL_ZEROS_WAIT`], the zeros are the file's own bytes (a writer that
/// died, or a file that holds zeros) and the whole read is taken.
fn hold_at_zeros(
    zeros: &mut Option<(u64, Instant)>,
    offset: u64,
    read: &[u8],
    now: Instant,
) -> usize {
    let Some(at) = memchr::memchr(0, read) else {
        *zeros = None;
        return read.len();
    };
    let zero = offset + at as u64;
    match *zeros {
        Some((held, since)) if held == zero => {
            if now.duration_since(since) < TAIL_ZEROS_WAIT {
                return at;
            }
            *zeros = None;
            read.len()
        }
        _ => {
            *zeros = Some((zero, now));
            at
        }
    }
}

/// A stable hash of a stream name (FNV-1a), so every core agrees on each stream's owner.
pub fn stream_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether the ingest core at `slot` of `cores` reads the stream `name`.
pub fn owns(name: &str, slot: usize, cores: usize) -> bool {
    cores > 0 && stream_hash(name) % cores as u64 == slot as u64
}

impl CoreStreams {
    /// This core's share of `kind`'s streams; `slot` is its place among the ingest cores.
    pub fn new(
        kind: &LogstreamerKind,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        slot: usize,
    ) -> CoreStreams {
        CoreStreams {
            kind: kind.clone(),
            slot,
            shard: shard.clone(),
            input,
            streams: BTreeMap::new(),
            last_scan: None,
            rescan_now: true,
        }
    }

    fn count_error(&self) {
        let (core, plugin) = (self.shard.core, self.input.plugin);
        self.shard.telemetry.add(core, plugin, Metric::Errors, 1);
    }

    /// Scans the directory and takes up this core's streams: new ones from their journal,
    /// known ones get the new file lists.
    async fn rescan(&mut self) {
        let kind = &self.kind;
        let result = self.scan();
        self.last_scan = Some(Instant::now());
        self.rescan_now = false;
        if let Some(error) = &result.error {
            tracing::warn!(input = %kind.name, %error, "cannot scan the log directory");
        }
        if result.truncated {
            tracing::warn!(input = %kind.name, "log_directory has too many entries; some not seen");
        }
        let cores = kind.ingest_cores.len();
        for (name, files) in result.streams {
            if !owns(&name, self.slot, cores) {
                continue;
            }
            if let Some(stream) = self.streams.get_mut(&name) {
                stream.files = files;
                continue;
            }
            if self.streams.len() >= LOGSTREAMER_STREAMS_MAX {
                self.count_error();
                tracing::warn!(input = %kind.name, stream = %name, max = LOGSTREAMER_STREAMS_MAX, "too many streams on this core; not read");
                continue;
            }
            let stream = self.open_stream(&name, files).await;
            self.streams.insert(name, stream);
        }
    }

    fn scan(&self) -> super::scan::ScanResult {
        let kind = &self.kind;
        kind.file_match.scan(
            &kind.log_directory,
            &kind.name,
            kind.oldest_duration,
            SystemTime::now(),
        )
    }

    /// A stream seen for the first time: where its journal says, or its start.
    async fn open_stream(&self, name: &str, files: Vec<FoundFile>) -> Stream {
        let kind = &self.kind;
        let journal_path = journal::path(&kind.journal_directory, name);
        let journaled = journal::read(&journal_path).unwrap_or_else(|error| {
            tracing::warn!(input = %kind.name, journal = %journal_path.display(), %error, "cannot read the journal");
            None
        });
        let mut stream = Stream {
            name: name.to_string(),
            meta: LineMeta {
                type_: b"logfile".as_slice().into(),
                logger: name.as_bytes().into(),
                hostname: kind.hostname.as_bytes().into(),
            },
            journal_path,
            files,
            current: None,
            resume_after_ns: None,
            journaled: journaled.clone(),
        };
        match journaled {
            Some(position) => self.resume(&mut stream, name, &position).await,
            None if kind.initial_tail => {
                if let Some(newest) = stream.files.last().cloned() {
                    stream.current = self.open_at(&newest).await;
                    if let Some(current) = stream.current.as_mut() {
                        let size = open_size(&current.file);
                        current.read_offset = size;
                    }
                }
            }
            None => {}
        }
        stream
    }

    /// Finds the journaled file among the stream's files: by its inode and first bytes, or
    /// (copytruncate while gyges was stopped) by its first bytes alone.
    async fn resume(&self, stream: &mut Stream, name: &str, position: &Position) {
        let wanted = position.identity;
        let same_inode =
            |file: &&FoundFile| (file.device, file.inode) == (wanted.device, wanted.inode);
        let mut candidates: Vec<FoundFile> =
            stream.files.iter().filter(same_inode).cloned().collect();
        if wanted.head_bytes > 0 {
            let others = stream.files.iter().filter(|file| !same_inode(file));
            candidates.extend(others.cloned());
        }
        for file in candidates {
            let Some(mut current) = self.open_at(&file).await else {
                continue;
            };
            let size = open_size(&current.file);
            let head = read_head(&current.file, wanted.head_bytes).await;
            if size >= position.offset && head.map(|(_, crc)| crc) == Some(wanted.head_crc) {
                current.read_offset = position.offset;
                tracing::info!(input = %self.kind.name, stream = %name, file = %current.path.display(), offset = position.offset, "resuming from the journal");
                stream.current = Some(current);
                return;
            }
        }
        tracing::warn!(input = %self.kind.name, stream = %name, file = %position.path.display(), "the journaled file is gone; reading the files modified since");
        stream.resume_after_ns = Some(position.modified_ns);
    }

    /// Opens `found` at offset 0 with a fresh splitter and buffer, checking it is still the
    /// file the scan saw (`None` otherwise, or on an error, which is logged and counted).
    async fn open_at(&self, found: &FoundFile) -> Option<Current> {
        let file = match OpenOptions::new()
            .read(true)
            .buffered_open(&found.path)
            .await
        {
            Ok(file) => file,
            Err(error) => {
                self.count_error();
                tracing::warn!(input = %self.kind.name, file = %found.path.display(), %error, "cannot open");
                return None;
            }
        };
        // The file opened, not the path (which a rotation may have moved since the scan).
        let metadata = open_metadata(&file)?;
        if (metadata.dev(), metadata.ino()) != (found.device, found.inode) {
            return None;
        }
        let (head_bytes, head_crc) = read_head(&file, LOGSTREAMER_HEAD_BYTES as u64).await?;
        let (splitter, buffer) = self.input.stream_parts(LOGSTREAMER_READ_BYTES)?;
        Some(Current {
            path: found.path.clone(),
            file,
            identity: Identity {
                device: found.device,
                inode: found.inode,
                head_bytes,
                head_crc,
            },
            modified_ns: metadata.modified().map(nanos).unwrap_or(found.modified_ns),
            read_offset: 0,
            splitter,
            buffer,
            leaving: false,
            zeros: None,
        })
    }

    /// The file a stream with no current file starts with.
    fn first_file(stream: &Stream) -> Option<FoundFile> {
        let after = stream.resume_after_ns.unwrap_or(i64::MIN);
        stream
            .files
            .iter()
            .find(|file| file.modified_ns >= after)
            .cloned()
    }

    /// One turn of one stream; whether it read or moved on.
    async fn step(&mut self, name: &str) -> bool {
        let Some(mut stream) = self.streams.remove(name) else {
            return false;
        };
        if stream.current.is_none() {
            if let Some(first) = Self::first_file(&stream) {
                stream.current = self.open_at(&first).await;
            }
        }
        let truncated = match stream.current.as_mut() {
            Some(current) => Self::was_truncated(current).await,
            None => false,
        };
        let progressed = if truncated {
            self.truncated(&mut stream).await;
            true
        } else if stream.current.is_some() {
            match self.read_turn(&mut stream).await {
                0 => self.at_end(&mut stream).await,
                _ => true,
            }
        } else {
            false
        };
        self.streams.insert(name.to_string(), stream);
        progressed
    }

    /// Reads and routes up to [`LOGSTREAMER_TURN_BYTES`]; the bytes read.
    async fn read_turn(&mut self, stream: &mut Stream) -> usize {
        let Some(current) = stream.current.as_mut() else {
            return 0;
        };
        let shard = self.shard.clone();
        let mut total = 0usize;
        while total < LOGSTREAMER_TURN_BYTES && !shard.stop.is_stopping() {
            let spare = current.buffer.spare_mut().len().min(LOGSTREAMER_READ_BYTES);
            let read = match current.file.read_at(current.read_offset, spare).await {
                Ok(read) => read,
                Err(error) => {
                    self.count_error();
                    tracing::warn!(input = %self.kind.name, file = %current.path.display(), %error, "read failed");
                    break;
                }
            };
            let got = read.len();
            let count = hold_at_zeros(
                &mut current.zeros,
                current.read_offset,
                &read,
                Instant::now(),
            );
            if count == 0 {
                break;
            }
            current.buffer.spare_mut()[..count].copy_from_slice(&read[..count]);
            current.buffer.commit(count);
            current.read_offset += count as u64;
            current.leaving = false;
            total += count;
            let (core, plugin) = (shard.core, self.input.plugin);
            shard
                .telemetry
                .add(core, plugin, Metric::BytesRead, count as u64);
            route_pending(&shard, &self.input, current, &stream.meta);
            if got < spare || count < got {
                // The end of the file for now (see `Shard::ship_idle`).
                shard.ship_idle().await;
            } else {
                shard.ship_full().await;
            }
            if count < got {
                break;
            }
            glommio::yield_if_needed().await;
        }
        total
    }

    /// Whether the current file was truncated (it is shorter than what was read, or its first
    /// bytes changed); if not, its identity takes in more of its first bytes while it is young.
    async fn was_truncated(current: &mut Current) -> bool {
        let size = open_size(&current.file);
        let head = read_head(&current.file, LOGSTREAMER_HEAD_BYTES as u64).await;
        let prefix_same = match &head {
            Some(_) if current.identity.head_bytes == 0 => true,
            Some((bytes, crc)) if *bytes == current.identity.head_bytes => {
                *crc == current.identity.head_crc
            }
            Some(_) => {
                let old = read_head(&current.file, current.identity.head_bytes).await;
                old.map(|(_, crc)| crc) == Some(current.identity.head_crc)
            }
            None => false,
        };
        if size < current.read_offset || !prefix_same {
            return true;
        }
        if let Some((head_bytes, head_crc)) = head {
            current.identity.head_bytes = head_bytes;
            current.identity.head_crc = head_crc;
        }
        false
    }

    /// At the end of the current file: replacement, or a newer file (module docs).
    async fn at_end(&mut self, stream: &mut Stream) -> bool {
        let Some(current) = stream.current.as_mut() else {
            return false;
        };
        if current.zeros.is_some() {
            // A write to this file is still in flight: not its end yet.
            return false;
        }
        let metadata = std::fs::metadata(&current.path);
        if let Ok(metadata) = &metadata {
            if metadata.ino() == current.identity.inode {
                current.modified_ns = metadata.modified().map(nanos).unwrap_or(0);
            }
        }
        let replaced = match &metadata {
            Ok(metadata) => {
                (metadata.dev(), metadata.ino())
                    != (current.identity.device, current.identity.inode)
            }
            Err(_) => true,
        };
        if replaced && !current.leaving {
            self.rescan_now = true;
        }
        if successor(stream).is_none() {
            return false;
        }
        let Some(current) = stream.current.as_mut() else {
            return false;
        };
        if !current.leaving {
            current.leaving = true;
            return false;
        }
        // Moving on: the successor is taken from a fresh scan, since names shift with every
        // rotation, and the current file is kept until the next one is open.
        self.refresh_files(stream);
        let Some(next) = successor(stream) else {
            return false;
        };
        let Some(opened) = self.open_at(&next).await else {
            self.rescan_now = true;
            return false;
        };
        self.finish_file(stream, opened);
        true
    }

    /// This stream's files, from a scan now.
    fn refresh_files(&self, stream: &mut Stream) {
        if let Some(files) = self.scan().streams.remove(&stream.name) {
            stream.files = files;
        }
    }

    /// The current file is done: its final record (as the splitter is configured), then
    /// `next`, from its start.
    fn finish_file(&mut self, stream: &mut Stream, next: Current) {
        let Some(mut current) = stream.current.replace(next) else {
            return;
        };
        if let Some(record) = current.buffer.finish(&mut current.splitter) {
            let shard = &self.shard;
            let mut router = shard.router.borrow_mut();
            let mut uuids = shard.uuids.borrow_mut();
            let (telemetry, core) = (&shard.telemetry, shard.core);
            deliver_record(
                record.bytes,
                &self.input,
                &stream.meta,
                now_ns(),
                &mut uuids,
                &mut router,
                telemetry,
                core,
            );
        }
        publish_splitter_stats(
            &mut current.splitter,
            &self.shard.telemetry,
            self.shard.core,
            self.input.plugin,
        );
        tracing::debug!(input = %self.kind.name, from = %current.path.display(), inode = current.identity.inode, "finished; next file");
    }

    /// The current file was truncated: read its rotated copy on, or the file from its start.
    async fn truncated(&mut self, stream: &mut Stream) {
        self.refresh_files(stream);
        let Some(current) = stream.current.as_mut() else {
            return;
        };
        let identity = current.identity;
        let consumed = current.consumed();
        let copies = stream
            .files
            .iter()
            .filter(|file| file.inode != identity.inode);
        for copy in copies.cloned().collect::<Vec<_>>() {
            let Some(candidate) = self.open_at(&copy).await else {
                continue;
            };
            let size = open_size(&candidate.file);
            let head = read_head(&candidate.file, identity.head_bytes).await;
            if identity.head_bytes > 0
                && size >= consumed
                && head.map(|(_, crc)| crc) == Some(identity.head_crc)
            {
                tracing::info!(input = %self.kind.name, file = %current.path.display(), copy = %copy.path.display(), "truncated; reading on in its copy");
                current.path = candidate.path;
                current.file = candidate.file;
                current.identity = candidate.identity;
                current.modified_ns = candidate.modified_ns;
                current.leaving = false;
                return;
            }
        }
        self.count_error();
        tracing::warn!(input = %self.kind.name, file = %current.path.display(), offset = consumed, "truncated and no copy found; reading it from its start (lines written before the truncation may be lost)");
        let found = FoundFile {
            path: current.path.clone(),
            device: identity.device,
            inode: identity.inode,
            modified_ns: current.modified_ns,
            sort: Vec::new(),
        };
        stream.current = self.open_at(&found).await;
    }

    /// Writes the journal of every stream that moved, once what it routed is settled.
    async fn write_journals(&mut self) {
        let moved: Vec<(String, Position)> = self
            .streams
            .iter()
            .filter_map(|(name, stream)| {
                let position = stream.current.as_ref()?.position();
                (stream.journaled.as_ref() != Some(&position)).then(|| (name.clone(), position))
            })
            .collect();
        if moved.is_empty() {
            return;
        }
        self.shard.settle().await;
        for (name, position) in moved {
            let Some(stream) = self.streams.get_mut(&name) else {
                continue;
            };
            match journal::write(&stream.journal_path, &position).await {
                Ok(()) => stream.journaled = Some(position),
                Err(error) => {
                    let journal = stream.journal_path.display().to_string();
                    self.count_error();
                    tracing::warn!(input = %self.kind.name, %journal, %error, "cannot write the journal");
                }
            }
        }
    }
}

/// The file after the current one in its stream's order: the next by the scan's order, or,
/// when the current file is no longer in the list, the first other file modified since.
fn successor(stream: &Stream) -> Option<FoundFile> {
    let current = stream.current.as_ref()?;
    let identity = current.identity;
    let is_current =
        |file: &FoundFile| (file.device, file.inode) == (identity.device, identity.inode);
    match stream.files.iter().position(is_current) {
        Some(index) => stream.files.get(index + 1).cloned(),
        None => stream
            .files
            .iter()
            .find(|file| !is_current(file) && file.modified_ns >= current.modified_ns)
            .cloned(),
    }
}

/// Splits and routes every complete record in the stream's buffer.
fn route_pending(shard: &Shard, input: &InputContext, current: &mut Current, meta: &LineMeta) {
    let mut router = shard.router.borrow_mut();
    let mut uuids = shard.uuids.borrow_mut();
    let now = now_ns();
    while let Some(record) = current.buffer.next_record(&mut current.splitter) {
        deliver_record(
            record.bytes,
            input,
            meta,
            now,
            &mut uuids,
            &mut router,
            &shard.telemetry,
            shard.core,
        );
    }
    publish_splitter_stats(
        &mut current.splitter,
        &shard.telemetry,
        shard.core,
        input.plugin,
    );
}

/// The metadata of the open file itself. glommio's `file_size` stats the file's *path*,
/// which after a rename names another file; `/proc/self/fd/N` is the open file whatever its
/// name now.
fn open_metadata(file: &BufferedFile) -> Option<std::fs::Metadata> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    std::fs::metadata(format!("/proc/self/fd/{fd}")).ok()
}

/// The size of the open file (0 when it cannot be known).
fn open_size(file: &BufferedFile) -> u64 {
    open_metadata(file).map_or(0, |metadata| metadata.len())
}

/// The length and CRC-32C of the first `bytes` bytes of `file` (fewer if it is shorter, and
/// none from its first zero byte on); `None` on a read error.
async fn read_head(file: &BufferedFile, bytes: u64) -> Option<(u64, u32)> {
    if bytes == 0 {
        return Some((0, crc32c::crc32c(&[])));
    }
    let read = file.read_at(0, bytes as usize).await.ok()?;
    // A range still being written reads as zeros (`hold_at_zeros`): the head ends before them,
    // and takes in what fills them once the file's head grows.
    let head = memchr::memchr(0, &read).map_or(&read[..], |at| &read[..at]);
    Some((head.len() as u64, crc32c::crc32c(head)))
}

/// Runs this core's share of the input until the core stops, then writes the journal a last
/// time; `guard` keeps the core's stop waiting for that.
pub async fn run(core: CoreStreams, guard: InputGuard) {
    let plugin = failure::register_plugin(&core.input.plan.name);
    let task = async move {
        run_streams(core).await;
        drop(guard);
    };
    PluginTask::quiet(plugin, task).await;
}

async fn run_streams(mut core: CoreStreams) {
    let shard = core.shard.clone();
    let mut last_journal = Instant::now();
    while !shard.stop.is_stopping() {
        let rescan_due = core
            .last_scan
            .is_none_or(|last| last.elapsed() >= core.kind.rescan_interval);
        if core.rescan_now || rescan_due {
            core.rescan().await;
        }
        let names: Vec<String> = core.streams.keys().cloned().collect();
        let mut progressed = false;
        for name in names {
            if shard.stop.is_stopping() {
                break;
            }
            progressed |= core.step(&name).await;
        }
        if last_journal.elapsed() >= LOGSTREAMER_JOURNAL_INTERVAL {
            core.write_journals().await;
            last_journal = Instant::now();
        }
        if !progressed && !core.rescan_now {
            let wait = glommio::timer::sleep(core.kind.check_data_interval);
            futures_lite::future::or(wait, shard.stop.wait()).await;
        }
        glommio::yield_if_needed().await;
    }
    core.write_journals().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stream_has_exactly_one_owner_and_streams_spread() {
        for cores in 1..=8 {
            let mut per_core = vec![0usize; cores];
            for index in 0..1000 {
                let name = format!("host-{index}-access");
                let owners: Vec<usize> = (0..cores)
                    .filter(|&slot| owns(&name, slot, cores))
                    .collect();
                assert_eq!(owners.len(), 1, "{name} on {cores} cores: {owners:?}");
                per_core[owners[0]] += 1;
            }
            // FNV-1a spreads these names: no core gets less than half its share.
            let share = 1000 / cores;
            assert!(
                per_core.iter().all(|&count| count >= share / 2),
                "{per_core:?}"
            );
        }
        assert!(!owns("x", 0, 0), "no ingest core owns anything");
        // FNV-1a's published test vectors.
        assert_eq!(stream_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stream_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_stream_stops_at_zeros_and_takes_them_once_they_have_stood_for_the_wait() {
        let start = Instant::now();
        let later = |millis| start + std::time::Duration::from_millis(millis);
        let mut zeros = None;
        // No zero: all of it, and nothing is held.
        assert_eq!(hold_at_zeros(&mut zeros, 0, b"abc\n", start), 4);
        assert_eq!(zeros, None);
        // Records, then a range not written yet: the records only.
        let read = b"ab\n\0\0\0cd\n";
        assert_eq!(hold_at_zeros(&mut zeros, 100, read, start), 3);
        assert_eq!(zeros, Some((103, start)));
        // Read again from the zeros: still held, until the wait has passed.
        let again = &read[3..];
        assert_eq!(hold_at_zeros(&mut zeros, 103, again, later(10)), 0);
        let wait = TAIL_ZEROS_WAIT.as_millis() as u64;
        assert_eq!(hold_at_zeros(&mut zeros, 103, again, later(wait - 1)), 0);
        assert_eq!(
            zeros,
            Some((103, start)),
            "the wait runs from the first sight"
        );
        // The write completed meanwhile: no zero left, all of it.
        assert_eq!(hold_at_zeros(&mut zeros, 103, b"xy\ncd\n", later(20)), 6);
        assert_eq!(zeros, None);
        // Zeros that stay (a writer that died): taken whole once they stood for the wait.
        assert_eq!(hold_at_zeros(&mut zeros, 200, b"\0\0z\n", later(0)), 0);
        assert_eq!(hold_at_zeros(&mut zeros, 200, b"\0\0z\n", later(wait)), 4);
        assert_eq!(zeros, None);
        // A zero elsewhere starts its own wait.
        assert_eq!(hold_at_zeros(&mut zeros, 300, b"q\0", later(wait)), 1);
        assert_eq!(zeros, Some((301, later(wait))));
    }
}
