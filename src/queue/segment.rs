//! Segment files: `<N>.log`, append-only, where `N` is the sequence number of the segment's
//! first record.
//!
//! Naming a segment after its first record's sequence number (as Kafka names its log
//! segments) means the record count of every sealed segment is the difference between two
//! names, and a consumer's lag in records is a subtraction: no index file, no scan of old
//! segments at startup. Names are plain decimal (`0.log`, `183412.log`), compared as numbers.
//!
//! A segment is written by one writer only, through one [`SegmentFile`]; it is sealed when the
//! next record would take it past `max_file_size` (a record larger than that gets a segment of
//! its own). Sealed segments never change again, except that recovery may find them damaged.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, DmaFile, OpenOptions};

use super::{Position, QueueError};

/// The file name of the segment whose first record has sequence number `base`.
pub fn file_name(base: u64) -> String {
    format!("{base}.log")
}

/// The path of segment `base` in `dir`.
pub fn path(dir: &Path, base: u64) -> PathBuf {
    dir.join(file_name(base))
}

/// The base of a segment file name, or `None` for any other name. Leading zeros are refused so
/// that each base has exactly one name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !canonical {
        return None;
    }
    digits.parse().ok()
}

/// One retained segment as the writer and the inspector see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The sequence number of its first record (its name).
    pub base: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Lists the segments of `dir`, oldest first. Other files are ignored, and so is a segment
/// deleted between the directory's listing and its metadata (the writer prunes consumed
/// segments while readers list).
///
/// # Errors
/// The directory or a segment's metadata cannot be read.
pub fn list(dir: &Path) -> io::Result<Vec<SegmentInfo>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(base) = entry.file_name().to_str().and_then(parse_file_name) else {
            continue;
        };
        let metadata = match entry.metadata() {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => return Err(error),
        };
        if metadata.is_file() {
            segments.push(SegmentInfo {
                base,
                bytes: metadata.len(),
            });
        }
    }
    segments.sort_by_key(|segment| segment.base);
    Ok(segments)
}

/// The retained segments of one source queue, oldest first; the last one is the tail being
/// appended to. Never empty once a queue is open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Segments {
    list: VecDeque<SegmentInfo>,
}

impl Segments {
    /// The segments in `list`, which must be sorted by base with no base twice.
    ///
    /// # Panics
    /// If `list` is not strictly increasing: a bug in the caller ([`list`] sorts).
    pub fn new(list: impl IntoIterator<Item = SegmentInfo>) -> Segments {
        let list: VecDeque<SegmentInfo> = list.into_iter().collect();
        assert!(list
            .iter()
            .zip(list.iter().skip(1))
            .all(|(older, newer)| older.base < newer.base));
        Segments { list }
    }

    /// The segments, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &SegmentInfo> {
        self.list.iter()
    }

    /// The number of retained segments.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether no segment is retained.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The oldest retained segment, the first to be deleted; `None` when there is none.
    pub fn oldest(&self) -> Option<SegmentInfo> {
        self.list.front().copied()
    }

    /// The newest segment, the one being appended to; `None` when there is none.
    pub fn tail(&self) -> Option<SegmentInfo> {
        self.list.back().copied()
    }

    /// The segment whose first record is `base`; `None` when no segment starts there.
    pub fn get(&self, base: u64) -> Option<SegmentInfo> {
        let index = self.list.binary_search_by_key(&base, |s| s.base).ok()?;
        self.list.get(index).copied()
    }

    /// The oldest segment whose base is greater than `base`.
    pub fn next_after(&self, base: u64) -> Option<SegmentInfo> {
        let index = self.list.partition_point(|segment| segment.base <= base);
        self.list.get(index).copied()
    }

    /// Bytes held by every retained segment.
    pub fn total_bytes(&self) -> u64 {
        self.list.iter().map(|segment| segment.bytes).sum()
    }

    /// Bytes from `position` to the end of the data: a consumer's lag in bytes.
    pub fn bytes_after(&self, position: Position) -> u64 {
        self.list
            .iter()
            .filter(|segment| segment.base >= position.segment)
            .map(|segment| {
                if segment.base == position.segment {
                    segment.bytes.saturating_sub(position.offset)
                } else {
                    segment.bytes
                }
            })
            .sum()
    }

    /// Whether a consumer whose checkpoint is `position` no longer needs segment `segment`.
    pub fn is_passed(&self, segment: SegmentInfo, position: Position) -> bool {
        let is_tail = self.tail().map(|tail| tail.base) == Some(segment.base);
        segment.base < position.segment
            || (!is_tail && segment.base == position.segment && position.offset >= segment.bytes)
    }

    /// Adds a new tail.
    ///
    /// # Panics
    /// If its base is not greater than the current tail's: a bug in the writer.
    pub fn push(&mut self, segment: SegmentInfo) {
        assert!(self.tail().is_none_or(|tail| tail.base < segment.base));
        self.list.push_back(segment);
    }

    /// Removes the oldest segment from the list (the caller deletes its file); `None` when empty.
    pub fn pop_oldest(&mut self) -> Option<SegmentInfo> {
        self.list.pop_front()
    }

    /// Records the tail's new length.
    pub fn set_tail_bytes(&mut self, bytes: u64) {
        if let Some(tail) = self.list.back_mut() {
            tail.bytes = bytes;
        }
    }
}

/// The most zeros a directly written tail segment ends in past its data: less than one block,
/// and `O_DIRECT` blocks (a device's logical block) are at most 4 KiB.
pub const PADDING_BYTES_MAX: u64 = 4096;

/// How the tail segment's bytes reach the file.
enum SegmentIo {
    /// Through the page cache: where the file system refuses `O_DIRECT` (see [`SegmentFile`]).
    Buffered(BufferedFile),
    /// `O_DIRECT`: each append writes whole blocks straight to the device, starting with the
    /// block the previous append left partly filled (`carry` holds its bytes) and padding the
    /// last block with zeros. The file is cut back to `length` when it is sealed or closed.
    Direct {
        file: DmaFile,
        carry: Vec<u8>,
        /// Whether the file runs past `length` (zeros after the last byte written).
        padded: bool,
    },
}

/// The tail segment, open for appending.
///
/// Asked for (`queue_direct_io`), appends go around the page cache (`O_DIRECT`) where the file
/// system takes it: a segment is
/// written once and read back only by a consumer that fell behind its hand-off, so copying
/// every byte into the page cache, writing it back, and freeing the pages when the segment is
/// deleted was most of what a durable route cost on top of a memory one. While a segment is
/// the tail its file may end in up to one block of zeros past `length`; readers stop at the
/// published end, [`SegmentFile::seal`] cuts the zeros, and recovery cuts them after a crash
/// without counting them as torn (see [`super::recovery`]).
pub struct SegmentFile {
    /// The sequence number of the segment's first record, which names the file.
    pub base: u64,
    path: PathBuf,
    io: SegmentIo,
    /// A second, read-only descriptor of the same file: `fdatasync` through it runs in a
    /// background task while appends go on through `io`.
    syncer: Rc<BufferedFile>,
    /// Where the next write goes: the end of the bytes written so far.
    pub length: u64,
}

impl SegmentFile {
    /// Creates segment `base` in `dir`; it must not exist yet. `direct` asks for `O_DIRECT`.
    ///
    /// # Errors
    /// The file exists or cannot be created.
    pub async fn create(dir: &Path, base: u64, direct: bool) -> Result<SegmentFile, QueueError> {
        let path = path(dir, base);
        let io = open_io(&path, 0, true, direct).await?;
        let syncer = open_syncer(&path).await?;
        Ok(SegmentFile {
            base,
            path,
            io,
            syncer,
            length: 0,
        })
    }

    /// Opens existing segment `base` for appending at `length` (recovery has checked that
    /// everything before `length` is intact and cut what followed). `direct` asks for
    /// `O_DIRECT`.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub async fn open(
        dir: &Path,
        base: u64,
        length: u64,
        direct: bool,
    ) -> Result<SegmentFile, QueueError> {
        let path = path(dir, base);
        let io = open_io(&path, length, false, direct).await?;
        let syncer = open_syncer(&path).await?;
        Ok(SegmentFile {
            base,
            path,
            io,
            syncer,
            length,
        })
    }

    /// Appends the bytes of `pending` at the end and empties it, keeping its capacity where
    /// it can. On error nothing counts as written: the next write goes to the same offset and
    /// overwrites whatever part of the bytes reached the file.
    ///
    /// # Errors
    /// The write failed or was short (a full disk).
    pub async fn append(&mut self, pending: &mut Vec<u8>) -> Result<(), QueueError> {
        let length = pending.len();
        let written = match &mut self.io {
            SegmentIo::Buffered(file) => {
                // glommio's buffered write takes the buffer it writes.
                let bytes = std::mem::replace(pending, Vec::with_capacity(pending.capacity()));
                file.write_at(bytes, self.length).await
            }
            SegmentIo::Direct {
                file,
                carry,
                padded,
            } => {
                let written = append_direct(file, carry, self.length, pending).await;
                pending.clear();
                *padded = !carry.is_empty();
                written
            }
        };
        let written = written
            .map_err(|error| QueueError::io("append to segment", &self.path, error.into()))?;
        if written < length {
            let error = io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {length} bytes (disk full?)"),
            );
            return Err(QueueError::io("append to segment", &self.path, error));
        }
        self.length += length as u64;
        Ok(())
    }

    /// Cuts the zeros that pad the last block of a directly written segment, so that the file
    /// is exactly `length` bytes: done before the segment is sealed or closed, since readers
    /// take a sealed segment's end from its file.
    ///
    /// # Errors
    /// The file cannot be cut.
    pub async fn seal(&mut self) -> Result<(), QueueError> {
        let SegmentIo::Direct { file, padded, .. } = &mut self.io else {
            return Ok(());
        };
        if *padded {
            file.truncate(self.length)
                .await
                .map_err(|error| QueueError::io("cut the padding of", &self.path, error.into()))?;
            *padded = false;
        }
        Ok(())
    }

    /// `fdatasync`: what was appended survives a power loss once this returns.
    ///
    /// # Errors
    /// The sync failed; the data may not be on the device.
    pub async fn sync(&self) -> Result<(), QueueError> {
        self.syncer
            .fdatasync()
            .await
            .map_err(|error| QueueError::io("fdatasync segment", &self.path, error.into()))
    }

    /// A future that syncs what was appended so far, to run in the background: it holds its
    /// own descriptor, so appends may go on meanwhile.
    pub fn sync_in_background(
        &self,
    ) -> impl std::future::Future<Output = Result<(), QueueError>> + 'static {
        let (syncer, path) = (self.syncer.clone(), self.path.clone());
        async move {
            syncer
                .fdatasync()
                .await
                .map_err(|error| QueueError::io("fdatasync segment", &path, error.into()))
        }
    }

    /// Closes the file, cutting its padding first ([`SegmentFile::seal`]).
    ///
    /// # Errors
    /// The cut or the close failed.
    pub async fn close(mut self) -> Result<(), QueueError> {
        self.seal().await?;
        let closed = match self.io {
            SegmentIo::Buffered(file) => file.close().await,
            SegmentIo::Direct { file, .. } => file.close().await,
        };
        closed.map_err(|error| QueueError::io("close segment", &self.path, error.into()))
    }
}

/// Opens the segment at `path` for appending at `length`: with `direct`, `O_DIRECT` where the
/// file system takes it; through the page cache otherwise. `create` makes a new file.
async fn open_io(
    path: &Path,
    length: u64,
    create: bool,
    direct: bool,
) -> Result<SegmentIo, QueueError> {
    if !direct {
        return open_buffered(path, create).await;
    }
    let direct = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(create)
        .dma_open(path)
        .await;
    let refused = match direct {
        Ok(file) if file.alignment() > PADDING_BYTES_MAX => {
            // Blocks larger than recovery knows to be padding: write through the page cache.
            file.close()
                .await
                .map_err(|error| QueueError::io("close segment", path, error.into()))?;
            io::Error::from(io::ErrorKind::InvalidInput)
        }
        Ok(file) => {
            let carry = read_carry(path, length, file.alignment())
                .map_err(|error| QueueError::io("read the last block of", path, error))?;
            // Recovery cut any padding: the file ends at `length`.
            return Ok(SegmentIo::Direct {
                file,
                carry,
                padded: false,
            });
        }
        Err(error) => io::Error::from(error),
    };
    if refused.kind() != io::ErrorKind::InvalidInput {
        return Err(QueueError::io(open_op(create), path, refused));
    }
    // O_DIRECT is set after the open: a file created for it exists now, empty.
    tracing::debug!(segment = %path.display(), %refused, "O_DIRECT refused; writing through the page cache");
    open_buffered(path, false).await
}

/// Opens the segment at `path` for writing through the page cache; `create` makes a new file.
async fn open_buffered(path: &Path, create: bool) -> Result<SegmentIo, QueueError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(create)
        .buffered_open(path)
        .await
        .map_err(|error| QueueError::io(open_op(create), path, error.into()))?;
    Ok(SegmentIo::Buffered(file))
}

/// What an open of a segment was doing, for its error.
fn open_op(create: bool) -> &'static str {
    if create {
        "create segment"
    } else {
        "open segment"
    }
}

/// The bytes of the block that `length` ends inside: `align_down(length)..length`.
fn read_carry(path: &Path, length: u64, alignment: u64) -> io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let start = length - length % alignment;
    let mut carry = vec![0; (length - start) as usize];
    if !carry.is_empty() {
        std::fs::File::open(path)?.read_exact_at(&mut carry, start)?;
    }
    Ok(carry)
}

/// One direct append of `bytes` at `length`: rewrites the partly filled block (`carry`) with
/// the new bytes after it, pads to the block size, and on success keeps the new last partial
/// block in `carry` (in place: its capacity never passes one block). Returns how many of the
/// new bytes were written.
async fn append_direct(
    file: &DmaFile,
    carry: &mut Vec<u8>,
    length: u64,
    bytes: &[u8],
) -> glommio::Result<usize, ()> {
    let alignment = file.alignment();
    debug_assert_eq!(carry.len() as u64, length % alignment);
    let start = length - carry.len() as u64;
    let used = carry.len() + bytes.len();
    let mut buffer = file.alloc_dma_buffer(file.align_up(used as u64) as usize);
    let out = buffer.as_bytes_mut();
    out[..carry.len()].copy_from_slice(carry);
    out[carry.len()..used].copy_from_slice(bytes);
    out[used..].fill(0);
    let written = file.write_at(buffer, start).await?;
    let written_new = written.saturating_sub(carry.len()).min(bytes.len());
    if written_new == bytes.len() {
        // The new partial block is the last `next_carry` bytes of carry + bytes.
        let next_carry = ((length + bytes.len() as u64) % alignment) as usize;
        if next_carry <= bytes.len() {
            carry.clear();
        } else {
            carry.drain(..used - next_carry);
        }
        carry.extend_from_slice(&bytes[bytes.len().saturating_sub(next_carry)..]);
    }
    Ok(written_new)
}

async fn open_syncer(path: &Path) -> Result<Rc<BufferedFile>, QueueError> {
    let file = OpenOptions::new()
        .read(true)
        .buffered_open(path)
        .await
        .map_err(|error| QueueError::io("open segment", path, error.into()))?;
    Ok(Rc::new(file))
}

/// `fsync` of a directory, so that files created or renamed in it survive a power loss.
///
/// # Errors
/// The directory cannot be opened or synced.
pub async fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    let directory = glommio::io::Directory::open(dir)
        .await
        .map_err(|error| QueueError::io("open directory", dir, error.into()))?;
    directory
        .sync()
        .await
        .map_err(|error| QueueError::io("fsync directory", dir, error.into()))?;
    directory
        .close()
        .await
        .map_err(|error| QueueError::io("close directory", dir, error.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        for base in [0u64, 1, 17, u64::MAX] {
            assert_eq!(parse_file_name(&file_name(base)), Some(base));
        }
        for name in [
            "",
            ".log",
            "01.log",
            "1.log.tmp",
            "a.log",
            "1.cp",
            "-1.log",
            "1 .log",
        ] {
            assert_eq!(parse_file_name(name), None, "{name:?}");
        }
        assert_eq!(parse_file_name("99999999999999999999999.log"), None);
    }

    #[test]
    fn lag_and_passing() {
        let segments = Segments::new([
            SegmentInfo {
                base: 0,
                bytes: 100,
            },
            SegmentInfo {
                base: 10,
                bytes: 200,
            },
            SegmentInfo {
                base: 30,
                bytes: 50,
            },
        ]);
        let at = |segment, offset| Position {
            segment,
            offset,
            seq: 0,
        };
        assert_eq!(segments.total_bytes(), 350);
        assert_eq!(segments.bytes_after(at(0, 0)), 350);
        assert_eq!(segments.bytes_after(at(10, 150)), 100);
        assert_eq!(segments.bytes_after(at(30, 50)), 0);
        assert_eq!(segments.next_after(0).map(|s| s.base), Some(10));
        assert_eq!(segments.next_after(5).map(|s| s.base), Some(10));
        assert_eq!(segments.next_after(30), None);
        let first = segments.oldest().unwrap();
        assert!(!segments.is_passed(first, at(0, 99)));
        assert!(segments.is_passed(first, at(0, 100)), "read to its end");
        assert!(segments.is_passed(first, at(10, 0)));
        let tail = segments.tail().unwrap();
        assert!(
            !segments.is_passed(tail, at(30, 50)),
            "the tail is never passed"
        );
    }
}
