//! FileOutput's writer: appends batches to one file through io_uring.
//!
//! Each batch is written whole at an offset reserved for it before the write starts, so
//! concurrent writes never overlap and the file has no holes once they complete. Who reserves:
//!
//! - one file written by every core ([`SharedOffset`]; a memory or best-effort FileOutput that
//!   does not rotate): each core writes its own batches into its own handle on the file, at
//!   ranges reserved with one atomic add on an offset all cores share. Nothing crosses a ring;
//! - otherwise the file has a single writer: the core of a `%{core}` file, or the output's
//!   owner core, which also writes the batches other cores hand over by ring (a rotating
//!   file, whose next file one core must open) or from their disk queues (durable).
//!
//! A write that has not completed leaves its range as a hole of zeros while later ranges
//! already hold their batches; a reader that tails the file must read such a range again
//! later, as the bench's tailer, the tests' frame reader, LogstreamerInput and `gyges cat
//! --tail` (`docs/logstreamer.md`) do. If the daemon dies meanwhile (or a write fails), the hole
//! stays: whole batches are missing, never part of a record, and the records around it are
//! whole. That holds for a single writer with several writes in flight too; with every core
//! writing, such a hole can also lie between batches of other cores. The writers keep their
//! offset in memory: a file truncated or moved away under a running daemon
//! is written on at the old offset (a sparse file from zero), whoever writes it.

use std::cell::{Cell, RefCell};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use glommio::io::{BufferedFile, OpenOptions};

use super::Batch;
use crate::telemetry::{Metric, Telemetry};

/// The end of a file every core appends to: each core's writer reserves the range of a whole
/// batch with one atomic add, so batches from different cores never overlap.
///
/// It lives in the output's plan, which every core shares; the first core to open the file
/// sets it to the file's size ([`SharedOffset::start_at`]).
#[derive(Debug)]
pub struct SharedOffset {
    /// The next free offset; [`SharedOffset::UNSET`] until a core has opened the file.
    next: AtomicU64,
}

impl SharedOffset {
    /// Before any core has opened the file.
    const UNSET: u64 = u64::MAX;

    /// An offset no core has started yet.
    pub fn new() -> SharedOffset {
        SharedOffset {
            next: AtomicU64::new(SharedOffset::UNSET),
        }
    }

    /// A core has opened the file and found `size` bytes in it. The first call sets where
    /// appending starts; later calls change nothing, since another core may already have
    /// reserved (and written) past the size they found.
    pub fn start_at(&self, size: u64) {
        let _ = self.next.compare_exchange(
            SharedOffset::UNSET,
            size,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Reserves `length` bytes and returns where they start. Every core calls
    /// [`SharedOffset::start_at`] before its first reservation, and both are read-modify-writes
    /// of the one atomic, so a reservation always sees a started offset.
    pub fn reserve(&self, length: u64) -> u64 {
        let start = self.next.fetch_add(length, Ordering::Relaxed);
        debug_assert!(start != SharedOffset::UNSET, "reserved before start_at");
        start
    }
}

impl Default for SharedOffset {
    fn default() -> SharedOffset {
        SharedOffset::new()
    }
}

/// Where a writer's next batch goes.
enum Offsets {
    /// This writer alone appends to its file.
    Own(Cell<u64>),
    /// Every core's writer appends to the one file.
    Shared(Arc<SharedOffset>),
}

impl Offsets {
    /// Reserves `length` bytes: where they go.
    fn reserve(&self, length: u64) -> u64 {
        match self {
            Offsets::Own(next) => {
                let start = next.get();
                next.set(start + length);
                start
            }
            Offsets::Shared(shared) => shared.reserve(length),
        }
    }
}

/// The writer of one file on one core: its single writer (with `rotation_interval`, of one
/// file per interval), or one of the writers of a file every core appends to.
pub struct FileWriter {
    /// The file batches go to now; a write in flight keeps the one it started on.
    file: RefCell<Rc<BufferedFile>>,
    /// Where the next batch goes.
    offset: Offsets,
    /// Writes issued and not yet completed.
    in_flight: Cell<usize>,
    /// `rotation_interval`: when the next file is opened, and its name.
    rotation: Option<Rotation>,
}

/// Rotation at every multiple of an interval since the epoch (UTC): the path is a strftime
/// format of the interval's start.
struct Rotation {
    path: crate::encoder::strftime::TsFormat,
    interval_seconds: i64,
    perm: u32,
    folder_perm: u32,
    /// The interval the open file belongs to.
    period: Cell<i64>,
}

impl FileWriter {
    /// Opens (creating, appending) `path`, creating its folder with `folder_perm`.
    ///
    /// # Errors
    /// The folder or file cannot be created or opened.
    pub async fn open(path: &Path, perm: u32, folder_perm: u32) -> std::io::Result<FileWriter> {
        let (file, offset) = open_file(path, perm, folder_perm).await?;
        Ok(FileWriter {
            file: RefCell::new(Rc::new(file)),
            offset: Offsets::Own(Cell::new(offset)),
            in_flight: Cell::new(0),
            rotation: None,
        })
    }

    /// Opens (creating, appending) `path` as one of the writers of a file every core appends
    /// to, reserving each batch's range from `shared`.
    ///
    /// # Errors
    /// The folder or file cannot be created or opened.
    pub async fn open_shared(
        path: &Path,
        perm: u32,
        folder_perm: u32,
        shared: Arc<SharedOffset>,
    ) -> std::io::Result<FileWriter> {
        let (file, size) = open_file(path, perm, folder_perm).await?;
        shared.start_at(size);
        Ok(FileWriter {
            file: RefCell::new(Rc::new(file)),
            offset: Offsets::Shared(shared),
            in_flight: Cell::new(0),
            rotation: None,
        })
    }

    /// Opens the file of the current interval of `interval_seconds` (at least 1), named by
    /// the strftime format `path`, and moves to the next file at each interval boundary (UTC).
    ///
    /// # Errors
    /// The format does not compile, or the file cannot be created or opened.
    pub async fn open_rotating(
        path: &str,
        interval_seconds: i64,
        perm: u32,
        folder_perm: u32,
    ) -> std::io::Result<FileWriter> {
        let format = crate::encoder::strftime::TsFormat::new(path)
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        let interval_seconds = interval_seconds.max(1);
        let period = crate::message::now_ns().div_euclid(1_000_000_000) / interval_seconds;
        let name = rotated_name(&format, period * interval_seconds);
        let (file, offset) = open_file(Path::new(&name), perm, folder_perm).await?;
        Ok(FileWriter {
            file: RefCell::new(Rc::new(file)),
            offset: Offsets::Own(Cell::new(offset)),
            in_flight: Cell::new(0),
            rotation: Some(Rotation {
                path: format,
                interval_seconds,
                perm,
                folder_perm,
                period: Cell::new(period),
            }),
        })
    }

    /// With rotation, opens the next interval's file once its boundary has passed. A failure
    /// is logged and the current file kept; the next write tries again.
    async fn rotate_if_due(&self) {
        let Some(rotation) = &self.rotation else {
            return;
        };
        let now = crate::message::now_ns().div_euclid(1_000_000_000);
        let period = now / rotation.interval_seconds;
        if period == rotation.period.get() {
            return;
        }
        // Claimed before the await, so a write meanwhile goes on to the current file.
        let previous = rotation.period.replace(period);
        let name = rotated_name(&rotation.path, period * rotation.interval_seconds);
        match open_file(Path::new(&name), rotation.perm, rotation.folder_perm).await {
            Ok((file, size)) => {
                *self.file.borrow_mut() = Rc::new(file);
                // A rotating writer is always the file's only writer.
                if let Offsets::Own(next) = &self.offset {
                    next.set(size);
                }
            }
            Err(error) => {
                rotation.period.set(previous);
                tracing::error!(%error, file = %name, "cannot open the next rotated file; writing on to the current one");
            }
        }
    }
}

fn rotated_name(format: &crate::encoder::strftime::TsFormat, seconds: i64) -> String {
    let mut name = Vec::new();
    format.format(seconds, &mut name);
    String::from_utf8_lossy(&name).into_owned()
}

/// Opens (creating, appending) `path`, creating its folder with `folder_perm`; returns the
/// file and its size.
async fn open_file(
    path: &Path,
    perm: u32,
    folder_perm: u32,
) -> std::io::Result<(BufferedFile, u64)> {
    {
        if let Some(folder) = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty())
        {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(folder_perm)
                .create(folder)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .mode(perm)
            .buffered_open(path)
            .await
            .map_err(std::io::Error::from)?;
        let offset = file.file_size().await.map_err(std::io::Error::from)?;
        Ok((file, offset))
    }
}

impl FileWriter {
    /// Appends a batch. An error (including a short write) drops the batch and counts it.
    pub async fn write(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        self.rotate_if_due().await;
        let length = batch.bytes.len() as u64;
        let offset = self.offset.reserve(length);
        self.in_flight.set(self.in_flight.get() + 1);
        let messages = batch.messages;
        let result = self.write_all_at(batch.bytes, offset).await;
        self.in_flight.set(self.in_flight.get() - 1);
        match result {
            Ok(()) => {
                telemetry.add(core, plugin, Metric::Sent, messages);
                telemetry.add(core, plugin, Metric::SentBytes, length);
            }
            Err(error) => {
                tracing::error!(%error, "file write failed; batch dropped");
                telemetry.add(core, plugin, Metric::Errors, 1);
                telemetry.add(core, plugin, Metric::Dropped, messages);
            }
        }
    }

    /// Appends `bytes` at the next offset and reports whether the whole write succeeded
    /// (durable delivery retries what failed). A failed write leaves its reserved range behind:
    /// a hole or a partial record that readers of the file resynchronise over.
    ///
    /// # Errors
    /// The write failed or was short.
    pub async fn append(&self, bytes: Vec<u8>) -> std::io::Result<()> {
        self.rotate_if_due().await;
        let length = bytes.len() as u64;
        let offset = self.offset.reserve(length);
        self.in_flight.set(self.in_flight.get() + 1);
        let result = self.write_all_at(bytes, offset).await;
        self.in_flight.set(self.in_flight.get() - 1);
        result
    }

    /// Whether [`FileWriter::start_append`] may be used: not for a rotating file, whose next
    /// file is opened by an `append`, which may wait.
    pub fn can_start_append(&self) -> bool {
        self.rotation.is_none()
    }

    /// Starts appending `bytes` now (see [`FileWriter::can_start_append`]): the offset is
    /// taken at once, so writes started one after the other land in that order whenever they
    /// complete. The future reports whether the whole write succeeded, as
    /// [`FileWriter::append`] does.
    pub fn start_append(
        self: &Rc<Self>,
        bytes: Vec<u8>,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + 'static {
        let offset = self.offset.reserve(bytes.len() as u64);
        self.in_flight.set(self.in_flight.get() + 1);
        let writer = Rc::clone(self);
        async move {
            let result = writer.write_all_at(bytes, offset).await;
            writer.in_flight.set(writer.in_flight.get() - 1);
            result
        }
    }

    async fn write_all_at(&self, bytes: Vec<u8>, offset: u64) -> std::io::Result<()> {
        let length = bytes.len();
        // The write takes the buffer, so a short write cannot be resumed without a copy of
        // every batch. On a regular file a short write means the disk is full; it is reported
        // as an error, like the failure that follows it would be.
        let file = Rc::clone(&self.file.borrow());
        let written = file
            .write_at(bytes, offset)
            .await
            .map_err(std::io::Error::from)?;
        if written < length {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {length} bytes (disk full?)"),
            ));
        }
        Ok(())
    }

    /// Writes issued and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.get()
    }
}

/// `FileOutput`'s own keys (the common output keys are in [`super::plan::RawCommon`]).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileOutput {
    /// File path; `%{core}` makes one file per core.
    pub path: String,
    /// Milliseconds between writes of a partly filled batch (default 1000).
    pub flush_interval: Option<u64>,
    /// Messages that make a batch worth writing (default 1).
    pub flush_count: Option<u64>,
    /// `AND` (default) or `OR`: how flush_interval and flush_count combine.
    pub flush_operator: Option<String>,
    /// Write a partly filled batch as soon as its input has nothing more to read (default
    /// true; false waits for `flush_interval` as Heka did).
    pub flush_on_idle: Option<bool>,
    /// Octal file mode (default `644`).
    pub perm: Option<String>,
    /// Octal mode of created folders (default `700`).
    pub folder_perm: Option<String>,
    /// Hours between new files: 0 (never, the default), 1, 4, 12 or 24; with rotation the
    /// path is a strftime format of the interval's start (UTC).
    pub rotation_interval: Option<u64>,
}

/// FileOutput, planned.
#[derive(Debug, Clone)]
pub struct FileOutputKind {
    /// The path, with `%{core}` still in it when `per_core`.
    pub path: String,
    /// Each core writes its own file; otherwise the output core owns the one file.
    pub per_core: bool,
    /// How long a partly filled batch may wait since the last write (`flush_interval`).
    pub flush_interval: std::time::Duration,
    /// Messages that make a partly filled batch worth writing (`flush_count`).
    pub flush_count: u64,
    /// `OR` rather than `AND`.
    pub flush_either: bool,
    /// `flush_on_idle`.
    pub flush_on_idle: bool,
    /// The mode the file is created with (`perm`, octal, default `644`).
    pub perm: u32,
    /// The mode of folders created on the way to the file (`folder_perm`, octal, default `700`).
    pub folder_perm: u32,
    /// `rotation_interval` in hours; 0 writes one file for ever.
    pub rotation_hours: u64,
    /// Set when every core appends to the one file itself (not `%{core}`, not rotating, not
    /// durable): the offset the cores reserve their batches' ranges from. `None` leaves the
    /// file to a single writer.
    pub shared_offset: Option<Arc<SharedOffset>>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::OutputPlan> =
    crate::component::Registration {
        type_names: &["FileOutput"],
        plan: plan_file_output,
    };

fn plan_file_output(
    section: &crate::config::Section,
    context: &crate::component::PlanContext<'_>,
) -> Result<crate::config::plan::OutputPlan, crate::config::ConfigError> {
    use crate::limits::{FLUSH_INTERVAL_MS_DEFAULT, FLUSH_INTERVAL_MS_MAX};
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawFileOutput = own.parse()?;
    let rotation_hours = raw.rotation_interval.unwrap_or(0);
    if ![0, 1, 4, 12, 24].contains(&rotation_hours) {
        let message = format!("{rotation_hours} is not 0, 1, 4, 12 or 24 (hours)");
        return Err(section.error(Some("rotation_interval"), message));
    }
    if rotation_hours != 0 {
        crate::encoder::strftime::TsFormat::new(&raw.path.replace("%{core}", "0"))
            .map_err(|error| section.error(Some("path"), error.to_string()))?;
    }
    let flush_either = match raw.flush_operator.as_deref() {
        None | Some("AND") => false,
        Some("OR") => true,
        Some(other) => {
            let message = format!("`{other}` is not AND or OR");
            return Err(section.error(Some("flush_operator"), message));
        }
    };
    if raw.path.is_empty() {
        return Err(section.error(Some("path"), "is empty"));
    }
    let octal = |key: &str, text: Option<&str>, default: u32| match text {
        None => Ok(default),
        Some(text) => u32::from_str_radix(text, 8)
            .ok()
            .filter(|mode| *mode <= 0o7777)
            .ok_or_else(|| section.error(Some(key), format!("`{text}` is not an octal mode"))),
    };
    let flush_interval_ms = raw.flush_interval.unwrap_or(FLUSH_INTERVAL_MS_DEFAULT);
    if flush_interval_ms > FLUSH_INTERVAL_MS_MAX {
        let message = format!("{flush_interval_ms} is above {FLUSH_INTERVAL_MS_MAX} ms");
        return Err(section.error(Some("flush_interval"), message));
    }
    let flush_count = raw.flush_count.unwrap_or(1);
    if !(1..=crate::limits::FLUSH_COUNT_MAX).contains(&flush_count) {
        let message = format!(
            "{flush_count} is outside 1..={}",
            crate::limits::FLUSH_COUNT_MAX
        );
        return Err(section.error(Some("flush_count"), message));
    }
    let per_core = raw.path.contains("%{core}");
    let kind = FileOutputKind {
        per_core,
        path: raw.path,
        flush_interval: std::time::Duration::from_millis(flush_interval_ms),
        flush_count,
        flush_either,
        flush_on_idle: raw.flush_on_idle.unwrap_or(true),
        perm: octal("perm", raw.perm.as_deref(), 0o644)?,
        folder_perm: octal("folder_perm", raw.folder_perm.as_deref(), 0o700)?,
        rotation_hours,
        shared_offset: None,
    };
    // As Heka documents it: framed by default when the encoder is ProtobufEncoder (the
    // default), so that the file can be read back (`gyges cat`); unframed otherwise.
    let protobuf = crate::encoder::type_of(context, common.encoder.as_deref(), "ProtobufEncoder")
        == "ProtobufEncoder";
    let common = common.with_defaults("ProtobufEncoder", protobuf, true);
    // A durable file is written by its owner from every core's disk queue, a rotating one by
    // the core that opens each next file; any other one file is appended to by every core.
    let plan_kind = |durable: bool| {
        let shared = !per_core && rotation_hours == 0 && !durable;
        let shared_offset = shared.then(|| Arc::new(SharedOffset::new()));
        Ok(Arc::new(FileOutputKind {
            shared_offset,
            ..kind
        }) as Arc<dyn super::OutputKind>)
    };
    super::plan::output_plan(section, context, common, plan_kind)
}

impl FileOutputKind {
    /// Opens this core's file (`%{core}` is this core's CPU).
    async fn open_writer(&self, core: &super::OutputCore<'_>) -> Result<Rc<FileWriter>, String> {
        let path = self.path.replace("%{core}", &core.cpu.to_string());
        let opened = if let Some(shared) = &self.shared_offset {
            FileWriter::open_shared(path.as_ref(), self.perm, self.folder_perm, shared.clone())
                .await
        } else if self.rotation_hours == 0 {
            FileWriter::open(path.as_ref(), self.perm, self.folder_perm).await
        } else {
            let seconds = self.rotation_hours as i64 * 3600;
            FileWriter::open_rotating(&path, seconds, self.perm, self.folder_perm).await
        };
        opened
            .map(Rc::new)
            .map_err(|error| format!("cannot open {path}: {error}"))
    }
}

impl super::OutputKind for FileOutputKind {
    fn type_name(&self) -> &'static str {
        "FileOutput"
    }

    fn describe(&self, output: &crate::config::plan::OutputPlan) -> String {
        let owner = output.owner_core;
        match (self.per_core, output.durable.is_some()) {
            (true, _) => format!("{} (one file per core)", self.path),
            (false, false) if self.shared_offset.is_some() => format!(
                "{} (every core appends its own batches at offsets they share)",
                self.path
            ),
            (false, true) => format!(
                "{} (written by core {owner} from every core's disk queue)",
                self.path
            ),
            (false, false) => {
                format!(
                    "{} (written by core {owner}, others hand over by ring)",
                    self.path
                )
            }
        }
    }

    fn writers(&self) -> super::Writers {
        if self.per_core || self.shared_offset.is_some() {
            super::Writers::EveryCore
        } else {
            super::Writers::Owner
        }
    }

    fn flush_policy(&self) -> super::FlushPolicy {
        super::FlushPolicy {
            interval: self.flush_interval,
            count: self.flush_count,
            either: self.flush_either,
            on_idle: self.flush_on_idle,
        }
    }

    fn open<'a>(
        &'a self,
        core: &'a super::OutputCore<'a>,
    ) -> crate::component::LocalBoxFuture<'a, Result<super::Opened, String>> {
        Box::pin(async move {
            let writer = self.open_writer(core).await?;
            let destination = FileDestination {
                writer,
                best_effort: core.best_effort(),
            };
            Ok(super::Opened::plain(Rc::new(destination)))
        })
    }

    fn open_durable<'a>(
        &'a self,
        core: &'a super::OutputCore<'a>,
        board: &'a std::sync::Arc<crate::queue::HandleBoard>,
    ) -> crate::component::LocalBoxFuture<'a, Result<Vec<glommio::task::JoinHandle<()>>, String>>
    {
        Box::pin(async move {
            // A `%{core}` file: each core delivers its own queue. One file: its owner delivers
            // every core's queue through its one writer.
            let rows: Vec<usize> = if self.per_core {
                vec![core.row]
            } else if core.output.owner_core == core.cpu {
                (0..core.plan.global.cores.len()).collect()
            } else {
                Vec::new()
            };
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let writer = self.open_writer(core).await?;
            let spawn =
                |row| super::durable::spawn_consumer(core, board, row, FileRecords(writer.clone()));
            Ok(rows.into_iter().map(spawn).collect())
        })
    }
}

/// Durable delivery into this core's file: a read's records, in one owned buffer (the one copy
/// an io_uring write needs); a record handed over in memory is written without that copy.
pub struct FileRecords(pub Rc<FileWriter>);

impl super::durable::WriteRecords for FileRecords {
    async fn write(
        &mut self,
        records: &crate::queue::ReadBatch,
        bytes: usize,
    ) -> std::io::Result<()> {
        let mut owned = Vec::with_capacity(bytes);
        for record in records.iter() {
            owned.extend_from_slice(record);
        }
        self.0.append(owned).await
    }

    /// Started at once, up to [`crate::limits::DURABLE_FILE_WRITES_IN_FLIGHT_MAX`] in flight;
    /// a handed record is written as it is (the write takes its buffer), a read is copied.
    fn start_write(
        &mut self,
        records: &mut crate::queue::ReadBatch,
        bytes: usize,
    ) -> Option<crate::component::LocalBoxFuture<'static, std::io::Result<()>>> {
        if !self.0.can_start_append() {
            return None;
        }
        let owned = records.take_handed().unwrap_or_else(|| {
            let mut owned = Vec::with_capacity(bytes);
            for record in records.iter() {
                owned.extend_from_slice(record);
            }
            owned
        });
        Some(Box::pin(self.0.start_append(owned)))
    }

    /// A record handed over in memory is written as it is: the write takes its buffer.
    async fn write_owned(
        &mut self,
        records: &mut crate::queue::ReadBatch,
        bytes: usize,
    ) -> std::io::Result<()> {
        match records.take_handed() {
            Some(owned) => self.0.append(owned).await,
            None => self.write(records, bytes).await,
        }
    }
}

/// A file this core writes itself. Best effort: at most
/// [`crate::limits::BEST_EFFORT_FILE_WRITES_IN_FLIGHT_MAX`] writes in flight, a batch that
/// would be one more is dropped and counted.
pub struct FileDestination {
    /// This core's open file.
    pub writer: Rc<FileWriter>,
    /// `delivery = "best_effort"`: drop a batch rather than exceed the writes in flight.
    pub best_effort: bool,
}

impl super::Destination for FileDestination {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> crate::component::LocalBoxFuture<'a, ()> {
        use crate::limits::BEST_EFFORT_FILE_WRITES_IN_FLIGHT_MAX as WRITES_MAX;
        Box::pin(async move {
            if self.best_effort && self.writer.in_flight() >= WRITES_MAX {
                telemetry.add(core, plugin, Metric::Dropped, batch.messages);
                return;
            }
            self.writer.write(batch, telemetry, core, plugin).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::{FileWriter, SharedOffset};
    use crate::testing::run_local as run;

    /// Reservations follow each other from the size the first opener found; a later opener's
    /// size changes nothing.
    #[test]
    fn a_shared_offset_starts_at_the_first_size_and_reserves_ranges_back_to_back() {
        let shared = SharedOffset::new();
        shared.start_at(100);
        assert_eq!(shared.reserve(10), 100);
        shared.start_at(0);
        assert_eq!(shared.reserve(5), 110);
        assert_eq!(shared.reserve(0), 115);
        assert_eq!(shared.reserve(1), 115);
        assert_eq!(shared.reserve(1), 116);
    }

    /// A batch of `lines` lines `<writer> <batch> <line>` padded to 40 bytes.
    fn numbered_batch(writer: usize, batch: usize, lines: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for line in 0..lines {
            let text = format!("{writer} {batch} {line}");
            bytes.extend_from_slice(format!("{text:<39}\n").as_bytes());
        }
        bytes
    }

    /// Two threads, each with its own executor and its own handle on one file that already
    /// holds a line, append batches of whole lines at offsets they share: once every write has
    /// completed the file holds the first line and then every line once, whole, with no hole.
    #[test]
    fn writers_on_two_threads_append_whole_batches_to_one_file_without_overlap() {
        const BATCHES: usize = 200;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.log");
        let first = format!("{:<39}\n", "already there");
        std::fs::write(&path, &first).expect("seed the file");
        let shared = Arc::new(SharedOffset::new());
        let threads: Vec<_> = (0..2)
            .map(|writer| {
                let (path, shared) = (path.clone(), shared.clone());
                std::thread::spawn(move || {
                    run(async move {
                        let file = FileWriter::open_shared(&path, 0o644, 0o700, shared)
                            .await
                            .expect("open");
                        for batch in 0..BATCHES {
                            // Batches of different sizes, so ranges do not line up.
                            let bytes = numbered_batch(writer, batch, 1 + batch % 7);
                            file.append(bytes).await.expect("write");
                        }
                    })
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("writer thread");
        }
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.starts_with(&first), "the file's first line was kept");
        let mut seen = std::collections::HashMap::new();
        for line in text[first.len()..].lines() {
            let fields: Vec<usize> = line
                .split_whitespace()
                .map(|field| field.parse().expect("a whole line, no zeros"))
                .collect();
            assert_eq!(fields.len(), 3, "{line:?}");
            *seen.entry((fields[0], fields[1], fields[2])).or_insert(0) += 1;
        }
        let expected: usize = (0..BATCHES).map(|batch| 1 + batch % 7).sum::<usize>() * 2;
        assert_eq!(seen.len(), expected, "every line once");
        assert!(seen.values().all(|count| *count == 1), "no line twice");
        assert_eq!(
            text.len(),
            first.len() + expected * 40,
            "no hole, no overlap"
        );
    }

    /// With a one-second interval, writes on either side of a boundary land in two files
    /// named by the path's strftime format, and nothing is lost.
    #[test]
    fn a_rotating_writer_opens_the_next_interval_file_at_the_boundary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let format = format!("{}/out-%Y%m%d-%H%M%S.log", dir.path().display());
        run(async move {
            // Start just after a second boundary, so the first two writes share a second.
            let into_second = crate::message::now_ns().rem_euclid(1_000_000_000) as u64;
            let to_next = std::time::Duration::from_nanos(1_000_000_000 - into_second);
            glommio::timer::sleep(to_next + std::time::Duration::from_millis(20)).await;
            let writer = FileWriter::open_rotating(&format, 1, 0o644, 0o700)
                .await
                .expect("open");
            writer.append(b"first\n".to_vec()).await.expect("write");
            writer.append(b"second\n".to_vec()).await.expect("write");
            glommio::timer::sleep(std::time::Duration::from_millis(1100)).await;
            writer.append(b"third\n".to_vec()).await.expect("write");
        });
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").path())
            .collect();
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("out-20") && name.ends_with(".log"),
            "{name}"
        );
        let contents: Vec<String> = files
            .iter()
            .map(|file| std::fs::read_to_string(file).expect("read"))
            .collect();
        assert_eq!(contents, ["first\nsecond\n", "third\n"]);
    }
}
