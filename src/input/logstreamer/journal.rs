//! The journal: where each stream's reading stands, so a restart resumes there.
//!
//! One file per stream, `<journal_directory>/<input>/<stream>.journal` (the stream name with
//! every byte outside `[A-Za-z0-9._-]` written as `%XX`), one line:
//!
//! ```text
//! logstreamer 1 device=<u64> inode=<u64> head_bytes=<u64> head_crc=<u32> offset=<u64>
//!   modified_ns=<i64> path=<the rest of the line>
//! ```
//!
//! The file is identified by its device and inode *and* the CRC-32C of its first `head_bytes`
//! bytes (up to [`crate::limits::LOGSTREAMER_HEAD_BYTES`]): an inode reused by a new file, or a
//! file truncated and rewritten, has other first bytes. `offset` is the byte after the last
//! record routed; `modified_ns` is the file's modification time then, which tells older files
//! from newer ones when the journaled file is gone. A journal is written to a temporary file,
//! synced and renamed over the old one, so a reader sees the old line or the new one, never a
//! mix. A line that does not parse is ignored with a warning (the stream then starts as if it
//! had no journal).

use std::io;
use std::path::{Path, PathBuf};

use glommio::io::OpenOptions;

/// What identifies a file across restarts and renames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// The device the file is on.
    pub device: u64,
    /// Its inode.
    pub inode: u64,
    /// How many of its first bytes `head_crc` covers.
    pub head_bytes: u64,
    /// CRC-32C of its first `head_bytes` bytes.
    pub head_crc: u32,
}

/// A stream's journaled position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The file read.
    pub identity: Identity,
    /// The byte after the last record routed.
    pub offset: u64,
    /// The file's modification time when it was journaled, in nanoseconds since the epoch.
    pub modified_ns: i64,
    /// Its path then (for operators; files are found by identity).
    pub path: PathBuf,
}

const MAGIC: &str = "logstreamer 1";

impl Position {
    /// The journal line.
    pub fn encode(&self) -> String {
        let identity = &self.identity;
        format!(
            "{MAGIC} device={} inode={} head_bytes={} head_crc={} offset={} modified_ns={} path={}\n",
            identity.device,
            identity.inode,
            identity.head_bytes,
            identity.head_crc,
            self.offset,
            self.modified_ns,
            self.path.display()
        )
    }

    /// Parses a journal line; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Position> {
        let line = text.strip_suffix('\n')?;
        let rest = line.strip_prefix(MAGIC)?.strip_prefix(' ')?;
        let (fields, path) = rest.split_once(" path=")?;
        let mut values = fields.split(' ');
        let mut next = |key: &str| {
            let (name, value) = values.next()?.split_once('=')?;
            (name == key).then_some(value)
        };
        let device = next("device")?.parse().ok()?;
        let inode = next("inode")?.parse().ok()?;
        let head_bytes = next("head_bytes")?.parse().ok()?;
        let head_crc = next("head_crc")?.parse().ok()?;
        let offset = next("offset")?.parse().ok()?;
        let modified_ns = next("modified_ns")?.parse().ok()?;
        if values.next().is_some() {
            return None;
        }
        Some(Position {
            identity: Identity {
                device,
                inode,
                head_bytes,
                head_crc,
            },
            offset,
            modified_ns,
            path: PathBuf::from(path),
        })
    }
}

/// The journal file of `stream` in `dir` (the input's journal directory).
pub fn path(dir: &Path, stream: &str) -> PathBuf {
    dir.join(format!("{}.journal", path_component(stream)))
}

/// `name` as one file name: every byte outside `[A-Za-z0-9._-]` as `%XX`, and a leading `.`
/// too (so neither `.` nor `..` can come out).
pub fn path_component(name: &str) -> String {
    let mut text = String::with_capacity(name.len() + 8);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"._-".contains(&byte) {
            text.push(char::from(byte));
        } else {
            text.push_str(&format!("%{byte:02X}"));
        }
    }
    if text.starts_with('.') {
        text.replace_range(0..1, "%2E");
    }
    text
}

/// Reads a journal at startup: `Ok(None)` when there is none or it does not parse (logged).
///
/// # Errors
/// The file exists but cannot be read.
pub fn read(path: &Path) -> io::Result<Option<Position>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let position = Position::decode(&text);
    if position.is_none() {
        tracing::warn!(journal = %path.display(), "journal does not parse; ignored");
    }
    Ok(position)
}

/// Writes `position` as the journal at `path`: a temporary file, synced, renamed over it.
///
/// # Errors
/// Any I/O error, with the path.
pub async fn write(path: &Path, position: &Position) -> io::Result<()> {
    let temp = path.with_extension("journal.tmp");
    let context = |what: &str, error: glommio::GlommioError<()>| {
        io::Error::other(format!("{what} {}: {error}", temp.display()))
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(&temp)
        .await
        .map_err(|error| context("create", error))?;
    let text = position.encode().into_bytes();
    let length = text.len();
    let written = file
        .write_at(text, 0)
        .await
        .map_err(|error| context("write", error))?;
    if written < length {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short journal write",
        ));
    }
    file.fdatasync()
        .await
        .map_err(|error| context("sync", error))?;
    file.close()
        .await
        .map_err(|error| context("close", error))?;
    glommio::io::rename(&temp, path)
        .await
        .map_err(|error| context("rename", error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn position(offset: u64, path: &str) -> Position {
        Position {
            identity: Identity {
                device: 2049,
                inode: 1_234_567,
                head_bytes: offset.min(1024),
                head_crc: 0xDEAD_BEEF,
            },
            offset,
            modified_ns: 1_764_633_600_000_000_000,
            path: PathBuf::from(path),
        }
    }

    #[test]
    fn a_line_reads_back_and_damage_is_refused() {
        let original = position(4096, "/var/log/app log.1");
        let line = original.encode();
        assert_eq!(Position::decode(&line), Some(original));
        for damaged in [
            &line[..line.len() - 1],
            &line[1..],
            "logstreamer 2 device=1 inode=1 head_bytes=0 head_crc=0 offset=0 modified_ns=0 path=x\n",
            "logstreamer 1 device=1 inode=x head_bytes=0 head_crc=0 offset=0 modified_ns=0 path=x\n",
            "logstreamer 1 inode=1 device=1 head_bytes=0 head_crc=0 offset=0 modified_ns=0 path=x\n",
            "",
        ] {
            assert_eq!(Position::decode(damaged), None, "{damaged:?}");
        }
    }

    #[test]
    fn journal_names_stay_in_their_directory() {
        let dir = Path::new("/j");
        assert_eq!(path(dir, "web-access"), Path::new("/j/web-access.journal"));
        assert_eq!(path(dir, "../x/y"), Path::new("/j/%2E.%2Fx%2Fy.journal"));
        assert_eq!(path(dir, ".."), Path::new("/j/%2E..journal"));
        assert_ne!(path(dir, "a/b"), path(dir, "a_b"));
    }

    proptest! {
        #[test]
        fn any_position_round_trips(offset in any::<u64>(), path in "[^\n]{0,40}") {
            let original = position(offset, &path);
            prop_assert_eq!(Position::decode(&original.encode()), Some(original));
        }

        #[test]
        fn any_text_parses_or_is_refused_without_panic(text in "\\PC{0,120}") {
            let _ = Position::decode(&text);
        }
    }
}
