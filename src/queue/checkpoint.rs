//! Consumer checkpoints: one small text file per consumer per source queue, replaced
//! atomically.
//!
//! ```text
//! <source dir>/<consumer>.cp       one line, ASCII:
//!   "gyges-checkpoint 1 segment=<base> offset=<bytes> seq=<n> crc32c=<8 hex digits>\n"
//!   segment: the base of the segment holding the position; offset: bytes into it;
//!   seq: the sequence number of the next record; crc32c: of everything before " crc32c=".
//! ```
//!
//! The consumer name is kept as is when it is made of `[A-Za-z0-9_-]` (and `.` after the first
//! byte); any other byte is written `%XX`, so every name maps to one safe file name and back.
//!
//! Writing ([`store`]): the line goes to `<consumer>.cp.tmp`, which is synced, then renamed
//! over `<consumer>.cp`, then the directory is synced. A crash leaves either the old or the new
//! checkpoint, never a mixture; a file that fails to parse or to check is reported as
//! corrupt and recovery falls back to the oldest retained segment (duplicates beat loss).

use std::io;
use std::path::{Path, PathBuf};

use glommio::io::OpenOptions;

use super::segment::sync_dir;
use super::{Position, QueueError};

/// The suffix of checkpoint files.
pub const SUFFIX: &str = ".cp";
/// The suffix of a checkpoint being written.
pub const TEMP_SUFFIX: &str = ".cp.tmp";
/// The longest checkpoint file accepted; a real one is under 100 bytes.
pub const FILE_BYTES_MAX: usize = 256;
/// The longest consumer name accepted (before escaping), so that the escaped name plus
/// `.cp.tmp` stays within the 255-byte file name limit.
pub const NAME_BYTES_MAX: usize = 80;

const MAGIC: &str = "gyges-checkpoint 1";

/// Why a checkpoint file was not usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The file is larger than [`FILE_BYTES_MAX`] bytes.
    #[error("the file is larger than a checkpoint can be")]
    TooLarge,
    /// The text is not a `gyges-checkpoint 1` line with segment, offset, seq and crc32c.
    #[error("not a gyges checkpoint (bad format)")]
    Format,
    /// The CRC32C at the end of the line does not match the text before it.
    #[error("the checksum does not match")]
    Checksum,
}

impl CheckpointError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            CheckpointError::TooLarge => "too_large",
            CheckpointError::Format => "format",
            CheckpointError::Checksum => "checksum",
        }
    }
}

/// The text of a checkpoint at `position`.
pub fn encode(position: Position) -> String {
    let body = format!(
        "{MAGIC} segment={} offset={} seq={}",
        position.segment, position.offset, position.seq
    );
    let crc = crc32c::crc32c(body.as_bytes());
    format!("{body} crc32c={crc:08x}\n")
}

/// Parses and checks a checkpoint file's bytes.
///
/// # Errors
/// The bytes are not exactly what [`encode`] writes, or the checksum differs.
pub fn decode(bytes: &[u8]) -> Result<Position, CheckpointError> {
    if bytes.len() > FILE_BYTES_MAX {
        return Err(CheckpointError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| CheckpointError::Format)?;
    let line = text.strip_suffix('\n').ok_or(CheckpointError::Format)?;
    let (body, crc) = line
        .rsplit_once(" crc32c=")
        .ok_or(CheckpointError::Format)?;
    if crc.len() != 8 {
        return Err(CheckpointError::Format);
    }
    let crc = u32::from_str_radix(crc, 16).map_err(|_| CheckpointError::Format)?;
    if crc32c::crc32c(body.as_bytes()) != crc {
        return Err(CheckpointError::Checksum);
    }
    let fields = body
        .strip_prefix(MAGIC)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(CheckpointError::Format)?;
    let mut values = [0u64; 3];
    let mut parts = fields.split(' ');
    for (value, key) in values.iter_mut().zip(["segment=", "offset=", "seq="]) {
        let part = parts.next().ok_or(CheckpointError::Format)?;
        let digits = part.strip_prefix(key).ok_or(CheckpointError::Format)?;
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(CheckpointError::Format);
        }
        *value = digits.parse().map_err(|_| CheckpointError::Format)?;
    }
    if parts.next().is_some() {
        return Err(CheckpointError::Format);
    }
    Ok(Position::from_array(values))
}

fn is_plain(byte: u8, first: bool) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || (byte == b'.' && !first)
}

/// The checkpoint file name of `consumer`.
pub fn file_name(consumer: &str) -> String {
    let mut name = String::with_capacity(consumer.len() + SUFFIX.len());
    for (index, &byte) in consumer.as_bytes().iter().enumerate() {
        if is_plain(byte, index == 0) {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("%{byte:02X}"));
        }
    }
    name.push_str(SUFFIX);
    name
}

/// The consumer whose checkpoint file is called `name`, or `None` for any other file.
pub fn consumer_name(name: &str) -> Option<String> {
    let escaped = name.strip_suffix(SUFFIX)?;
    let bytes = escaped.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let hex = escaped.get(index + 1..index + 3)?;
            if !hex.bytes().all(|digit| digit.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else if is_plain(byte, index == 0) {
            out.push(byte);
            index += 1;
        } else {
            return None;
        }
    }
    let consumer = String::from_utf8(out).ok()?;
    // Only the canonical spelling counts, so one consumer never has two files.
    (!consumer.is_empty() && file_name(&consumer) == name).then_some(consumer)
}

/// The path of `consumer`'s checkpoint in `dir`.
pub fn path(dir: &Path, consumer: &str) -> PathBuf {
    dir.join(file_name(consumer))
}

/// Reads `consumer`'s checkpoint: `Ok(None)` when there is none.
///
/// # Errors
/// The file exists but cannot be read (a parse failure is `Ok(Some(Err(_)))`).
pub fn load(dir: &Path, consumer: &str) -> io::Result<Option<Result<Position, CheckpointError>>> {
    let path = path(dir, consumer);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(decode(&bytes))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Replaces `consumer`'s checkpoint with `position`: temp file, sync, rename, directory sync.
/// With `sync` false the two syncs are skipped (`sync = "none"`).
///
/// # Errors
/// Any step failed; the previous checkpoint is then still in place.
pub async fn store(
    dir: &Path,
    consumer: &str,
    position: Position,
    sync: bool,
) -> Result<(), QueueError> {
    let target = path(dir, consumer);
    let temp = dir.join(format!("{}{}", consumer_stem(consumer), TEMP_SUFFIX));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .buffered_open(&temp)
        .await
        .map_err(|error| QueueError::io("create checkpoint", &temp, error.into()))?;
    let text = encode(position).into_bytes();
    let length = text.len();
    let written = file
        .write_at(text, 0)
        .await
        .map_err(|error| QueueError::io("write checkpoint", &temp, error.into()))?;
    if written < length {
        let error = io::Error::new(io::ErrorKind::WriteZero, "short checkpoint write");
        return Err(QueueError::io("write checkpoint", &temp, error));
    }
    if sync {
        file.fdatasync()
            .await
            .map_err(|error| QueueError::io("fdatasync checkpoint", &temp, error.into()))?;
    }
    file.close()
        .await
        .map_err(|error| QueueError::io("close checkpoint", &temp, error.into()))?;
    glommio::io::rename(&temp, &target)
        .await
        .map_err(|error| QueueError::io("rename checkpoint", &target, error.into()))?;
    if sync {
        sync_dir(dir).await?;
    }
    Ok(())
}

fn consumer_stem(consumer: &str) -> String {
    let name = file_name(consumer);
    name[..name.len() - SUFFIX.len()].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_format_is_one_checked_line() {
        let position = Position {
            segment: 120,
            offset: 4567,
            seq: 130,
        };
        let text = encode(position);
        assert!(text.starts_with("gyges-checkpoint 1 segment=120 offset=4567 seq=130 crc32c="));
        assert_eq!(decode(text.as_bytes()), Ok(position));
        let damaged = text.replace("4567", "4568");
        assert_eq!(decode(damaged.as_bytes()), Err(CheckpointError::Checksum));
        let seeds: &[(&[u8], CheckpointError)] = &[
            (b"", CheckpointError::Format),
            (b"gyges-checkpoint 1 segment=1\n", CheckpointError::Format),
            (&[0xff; 10], CheckpointError::Format),
            (&[b'1'; 300], CheckpointError::TooLarge),
            (text.trim_end().as_bytes(), CheckpointError::Format),
        ];
        for (bytes, expected) in seeds {
            assert_eq!(decode(bytes), Err(*expected));
        }
    }

    #[test]
    fn names_escape_to_safe_file_names() {
        let seeds = [
            ("FileOutput", "FileOutput.cp"),
            ("tcp.out-2", "tcp.out-2.cp"),
            (".hidden", "%2Ehidden.cp"),
            ("a/b", "a%2Fb.cp"),
            ("..", "%2E..cp"),
            ("é", "%C3%A9.cp"),
        ];
        for (consumer, file) in seeds {
            assert_eq!(file_name(consumer), file);
            assert_eq!(consumer_name(file).as_deref(), Some(consumer));
        }
        for stranger in ["x.log", "a%2fb.cp", "a%zz.cp", ".cp", "a b.cp", "%2.cp"] {
            assert_eq!(consumer_name(stranger), None, "{stranger}");
        }
    }

    proptest! {
        #[test]
        fn any_name_round_trips(name in "\\PC{1,30}") {
            let file = file_name(&name);
            prop_assert!(!file.contains('/') && !file.starts_with('.'));
            prop_assert_eq!(consumer_name(&file), Some(name));
        }

        #[test]
        fn any_position_round_trips(segment: u64, offset: u64, seq: u64) {
            let position = Position { segment, offset, seq };
            prop_assert_eq!(decode(encode(position).as_bytes()), Ok(position));
        }
    }
}
