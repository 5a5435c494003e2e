//! FileOutput's writer: appends batches to one file through io_uring.
//!
//! One writer per file, on the core that owns the file. Batches from this core's tasks and
//! from other cores' rings are written at offsets reserved in arrival order, so concurrent
//! writes never overlap and the file has no holes once they complete.

use std::cell::Cell;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

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
