//! FileOutput's writer: appends batches to one file through io_uring.
//!
//! One writer per file, on the core that owns the file. Batches from this core's tasks and
//! from other cores' rings are written at offsets reserved in arrival order, so concurrent
//! writes never overlap and the file has no holes once they complete.

use std::cell::Cell;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions};

use super::Batch;
use crate::telemetry::{Metric, Telemetry};

/// The single writer of one file.
pub struct FileWriter {
    file: BufferedFile,
    /// Where the next batch goes.
    offset: Cell<u64>,
    /// Writes issued and not yet completed.
    in_flight: Cell<usize>,
}

impl FileWriter {
    /// Opens (creating, appending) `path`, creating its folder with `folder_perm`.
    ///
    /// # Errors
    /// The folder or file cannot be created or opened.
    pub async fn open(path: &Path, perm: u32, folder_perm: u32) -> std::io::Result<FileWriter> {
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
        Ok(FileWriter {
            file,
            offset: Cell::new(offset),
            in_flight: Cell::new(0),
        })
    }

    /// Appends a batch. An error (including a short write) drops the batch and counts it.
    pub async fn write(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let length = batch.bytes.len() as u64;
        let offset = self.offset.get();
        self.offset.set(offset + length);
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
        let length = bytes.len() as u64;
        let offset = self.offset.get();
        self.offset.set(offset + length);
        self.in_flight.set(self.in_flight.get() + 1);
        let result = self.write_all_at(bytes, offset).await;
        self.in_flight.set(self.in_flight.get() - 1);
        result
    }

    async fn write_all_at(&self, bytes: Vec<u8>, offset: u64) -> std::io::Result<()> {
        let length = bytes.len();
        // The write takes the buffer, so a short write cannot be resumed without a copy of
        // every batch. On a regular file a short write means the disk is full; it is reported
        // as an error, like the failure that follows it would be.
        let written = self
            .file
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
    /// Octal file mode (default `644`).
    pub perm: Option<String>,
    /// Octal mode of created folders (default `700`).
    pub folder_perm: Option<String>,
    /// Only 0 (no rotation) is supported yet.
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
    /// The mode the file is created with (`perm`, octal, default `644`).
    pub perm: u32,
    /// The mode of folders created on the way to the file (`folder_perm`, octal, default `700`).
    pub folder_perm: u32,
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
    section.refuse(
        "rotation_interval",
        raw.rotation_interval.is_some_and(|hours| hours != 0),
        "file rotation is not supported yet; only 0 is accepted",
    )?;
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
    let kind = FileOutputKind {
        per_core: raw.path.contains("%{core}"),
        path: raw.path,
        flush_interval: std::time::Duration::from_millis(flush_interval_ms),
        flush_count,
        flush_either,
        perm: octal("perm", raw.perm.as_deref(), 0o644)?,
        folder_perm: octal("folder_perm", raw.folder_perm.as_deref(), 0o700)?,
    };
    // As Heka documents it: framed by default when the encoder is ProtobufEncoder (the
    // default), so that the file can be read back (`gyges cat`); unframed otherwise.
    let protobuf = crate::encoder::type_of(context, common.encoder.as_deref(), "ProtobufEncoder")
        == "ProtobufEncoder";
    let common = common.with_defaults("ProtobufEncoder", protobuf, true);
    super::plan::output_plan(section, context, common, |_| Ok(std::sync::Arc::new(kind)))
}

impl FileOutputKind {
    /// Opens this core's file (`%{core}` is this core's CPU).
    async fn open_writer(&self, core: &super::OutputCore<'_>) -> Result<Rc<FileWriter>, String> {
        let path = self.path.replace("%{core}", &core.cpu.to_string());
        FileWriter::open(path.as_ref(), self.perm, self.folder_perm)
            .await
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
        if self.per_core {
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
/// an io_uring write needs).
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
