//! Heka stream framing: the one owner of the frame format, its header and its HMAC signing.
//!
//! Every Heka byte stream (TCP, framed files, queue files) is a run of frames:
//!
//! ```text
//! struct Frame {
//!     record_separator: u8,          // 0x1E
//!     header_length: u8,             // H, 1..=255
//!     header: [u8; H],               // a Header protobuf; its first byte is 0x08
//!     unit_separator: u8,            // 0x1F
//!     message: [u8; message_length], // normally a Message protobuf
//! }
//! struct Header {                    // protobuf field numbers
//!     message_length: uint32 = 1,    // required, written first
//!     hmac_hash_function: enum = 3,  // MD5 = 0 (the default, so senders omit it), SHA1 = 1
//!     hmac_signer: string = 4,
//!     hmac_key_version: uint32 = 5,
//!     hmac: bytes = 6,               // HMAC(key, message bytes only)
//! }
//! ```
//!
//! Reading ([`parse_header`]) never allocates and never panics. A header is accepted when the
//! unit separator sits at `2 + H`, the protobuf is well formed, it starts with message_length
//! (0x08), and message_length is in `1..=MESSAGE_BYTES_CEILING`. A header claiming more than
//! the configured `max_message_size` but no more than the ceiling is *well formed*: the
//! splitter drops that one record and stays in sync. Anything else is corrupt and the caller
//! resynchronises byte by byte (see `docs/framing.md`).
//!
//! Writing ([`write_frame`], [`begin_frame`]) appends to a caller-owned batch: the header for a
//! message of known length goes first and the caller appends the message in place, so no
//! temporary copy is made. A signed header has a fixed size for a given length, so its digest
//! is patched in once the message bytes are there.
//!
//! Authentication ([`Verifier`]) follows Heka: a frame without `hmac` is accepted unsigned; a
//! frame with `hmac` is accepted only if `"<signer>_<version>"` names a configured key and the
//! digest matches (constant-time compare); otherwise it is rejected and the caller drops it.

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::wire::{self, WIRE_LEN, WIRE_VARINT};
use crate::limits::{FRAME_HEADER_BYTES_MAX, HMAC_KEY_BYTES_MAX, MESSAGE_BYTES_CEILING};
use crate::limits::{FRAME_OVERHEAD_BYTES_MAX, SIGNER_KEYS_MAX};

/// The byte that opens every frame.
pub const RECORD_SEPARATOR: u8 = 0x1E;
/// The byte between the header and the message.
pub const UNIT_SEPARATOR: u8 = 0x1F;
/// The first header byte: the key of field 1 (message_length) as a varint.
const HEADER_FIRST_BYTE: u8 = 0x08;
/// Bytes of the longest digest (SHA-1).
const DIGEST_BYTES_MAX: usize = 20;

/// The digest a signer uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashFunction {
    /// HMAC-MD5, header value 0 and Heka's default.
    Md5,
    /// HMAC-SHA1, header value 1.
    Sha1,
}

impl HashFunction {
    /// Parses `md5` or `sha1` (any case).
    pub fn from_name(name: &str) -> Option<HashFunction> {
        if name.eq_ignore_ascii_case("md5") {
            Some(HashFunction::Md5)
        } else if name.eq_ignore_ascii_case("sha1") {
            Some(HashFunction::Sha1)
        } else {
            None
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            HashFunction::Md5 => "md5",
            HashFunction::Sha1 => "sha1",
        }
    }

    /// The number the header carries.
    fn wire(self) -> u64 {
        match self {
            HashFunction::Md5 => 0,
            HashFunction::Sha1 => 1,
        }
    }

    /// Bytes of a digest.
    pub fn digest_bytes(self) -> usize {
        match self {
            HashFunction::Md5 => 16,
            HashFunction::Sha1 => 20,
        }
    }
}

/// A decoded frame header, borrowing its strings from the window it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader<'a> {
    /// H: bytes of the header protobuf.
    pub header_bytes: usize,
    /// Bytes of the message that follows the header.
    pub message_length: u32,
    /// The raw hash function number; 0 (MD5) when absent. See [`FrameHeader::hash_function`].
    pub hmac_hash_function: u64,
    /// The signer's name; empty when absent.
    pub hmac_signer: &'a [u8],
    /// The key version; 0 when absent.
    pub hmac_key_version: u32,
    /// The digest, when the frame is signed.
    pub hmac: Option<&'a [u8]>,
}

impl FrameHeader<'_> {
    /// Where the message starts, counted from the record separator.
    #[inline]
    pub fn message_start(&self) -> usize {
        3 + self.header_bytes
    }

    /// Bytes of the whole frame.
    #[inline]
    pub fn frame_bytes(&self) -> usize {
        self.message_start() + self.message_length as usize
    }

    /// The hash function, or `None` for a number this schema does not define.
    pub fn hash_function(&self) -> Option<HashFunction> {
        match self.hmac_hash_function {
            0 => Some(HashFunction::Md5),
            1 => Some(HashFunction::Sha1),
            _ => None,
        }
    }
}

/// Why the bytes at a record separator are not a frame header. Each one means "resync".
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The first byte is not 0x1E.
    #[error("the frame does not start with the record separator 0x1E")]
    NoRecordSeparator,
    /// The header length byte H is 0.
    #[error("the header length byte is 0")]
    EmptyHeader,
    /// The header's first byte is not 0x08, the key of message_length.
    #[error("the header does not start with message_length (0x08)")]
    NotMessageLengthFirst,
    /// The byte after the header (at `2 + H`) is not 0x1F.
    #[error("no unit separator 0x1F after the header")]
    NoUnitSeparator,
    /// The header protobuf is truncated or has a bad key, varint or length.
    #[error("the header protobuf is malformed")]
    Malformed,
    /// A known header field has a wire type other than its schema's.
    #[error("a header field has the wrong wire type")]
    WrongWireType,
    /// message_length is 0: Heka frames hold at least one byte.
    #[error("the header's message_length is 0")]
    EmptyMessage,
    /// message_length is above [`MESSAGE_BYTES_CEILING`], too large to be trusted.
    #[error("the header's message_length {message_length} is above the 64 MiB ceiling")]
    AboveCeiling {
        /// The message_length the header claims.
        message_length: u64,
    },
}

impl HeaderError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            HeaderError::NoRecordSeparator => "no_record_separator",
            HeaderError::EmptyHeader => "empty_header",
            HeaderError::NotMessageLengthFirst => "not_length_first",
            HeaderError::NoUnitSeparator => "no_unit_separator",
            HeaderError::Malformed => "malformed",
            HeaderError::WrongWireType => "wire_type",
            HeaderError::EmptyMessage => "empty_message",
            HeaderError::AboveCeiling { .. } => "above_ceiling",
        }
    }
}

/// Reads the frame header at the start of `window`.
///
/// Returns `Ok(None)` when `window` ends before the header does (read more and call again),
/// `Ok(Some(header))` when a well-formed header is complete (the message may still be
/// incomplete: compare [`FrameHeader::frame_bytes`] with the window's length).
///
/// # Errors
/// The bytes are not a frame header; see [`HeaderError`]. The caller resyncs.
pub fn parse_header(window: &[u8]) -> Result<Option<FrameHeader<'_>>, HeaderError> {
    match window.first() {
        None => return Ok(None),
        Some(&RECORD_SEPARATOR) => {}
        Some(_) => return Err(HeaderError::NoRecordSeparator),
    }
    let Some(&length_byte) = window.get(1) else {
        return Ok(None);
    };
    let header_bytes = usize::from(length_byte);
    if header_bytes == 0 {
        return Err(HeaderError::EmptyHeader);
    }
    // Reject early on the first header byte: garbage is found without waiting for H bytes.
    match window.get(2) {
        None => return Ok(None),
        Some(&HEADER_FIRST_BYTE) => {}
        Some(_) => return Err(HeaderError::NotMessageLengthFirst),
    }
    let Some(&unit_separator) = window.get(2 + header_bytes) else {
        return Ok(None);
    };
    if unit_separator != UNIT_SEPARATOR {
        return Err(HeaderError::NoUnitSeparator);
    }
    decode_header(&window[2..2 + header_bytes]).map(Some)
}

/// Decodes a Header protobuf (without the framing bytes). Unknown fields are skipped; a field
/// that occurs twice reads as its last occurrence.
fn decode_header(bytes: &[u8]) -> Result<FrameHeader<'_>, HeaderError> {
    debug_assert!(bytes.len() <= FRAME_HEADER_BYTES_MAX);
    let mut header = FrameHeader {
        header_bytes: bytes.len(),
        message_length: 0,
        hmac_hash_function: 0,
        hmac_signer: &[],
        hmac_key_version: 0,
        hmac: None,
    };
    let mut message_length: u64 = 0;
    let mut pos = 0usize;
    while pos < bytes.len() {
        let (tag, wire_type) = wire::read_key(bytes, &mut pos).ok_or(HeaderError::Malformed)?;
        let expected = match tag {
            1 | 3 | 5 => WIRE_VARINT,
            4 | 6 => WIRE_LEN,
            _ => {
                wire::skip(bytes, &mut pos, wire_type).ok_or(HeaderError::Malformed)?;
                continue;
            }
        };
        if wire_type != expected {
            return Err(HeaderError::WrongWireType);
        }
        if expected == WIRE_LEN {
            let (start, end) = wire::read_len(bytes, &mut pos).ok_or(HeaderError::Malformed)?;
            if tag == 4 {
                header.hmac_signer = &bytes[start..end];
            } else {
                header.hmac = Some(&bytes[start..end]);
            }
            continue;
        }
        let value = wire::read_varint(bytes, &mut pos).ok_or(HeaderError::Malformed)?;
        match tag {
            1 => message_length = value,
            3 => header.hmac_hash_function = value,
            _ => {
                header.hmac_key_version =
                    u32::try_from(value).map_err(|_| HeaderError::Malformed)?
            }
        }
    }
    if message_length == 0 {
        return Err(HeaderError::EmptyMessage);
    }
    if message_length > MESSAGE_BYTES_CEILING as u64 {
        return Err(HeaderError::AboveCeiling { message_length });
    }
    // The ceiling is far below 4 GiB, so the conversion cannot fail.
    header.message_length = message_length as u32;
    Ok(header)
}

/// A digest, up to SHA-1's 20 bytes, on the stack.
#[derive(Clone, Copy, Debug)]
pub struct Digest {
    bytes: [u8; DIGEST_BYTES_MAX],
    len: usize,
}

impl Digest {
    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// An HMAC state with the key already absorbed; cloned per message, so keying costs once.
#[derive(Clone)]
enum KeyedMac {
    Md5(Hmac<Md5>),
    Sha1(Hmac<Sha1>),
}

impl KeyedMac {
    fn new(hash: HashFunction, key: &[u8]) -> KeyedMac {
        // HMAC accepts keys of any length, so the fallback (an all-zero key) is unreachable.
        match hash {
            HashFunction::Md5 => KeyedMac::Md5(
                Hmac::<Md5>::new_from_slice(key)
                    .unwrap_or_else(|_| Hmac::<Md5>::new(&Default::default())),
            ),
            HashFunction::Sha1 => KeyedMac::Sha1(
                Hmac::<Sha1>::new_from_slice(key)
                    .unwrap_or_else(|_| Hmac::<Sha1>::new(&Default::default())),
            ),
        }
    }

    fn digest(&self, message: &[u8]) -> Digest {
        let mut digest = Digest {
            bytes: [0; DIGEST_BYTES_MAX],
            len: 0,
        };
        match self {
            KeyedMac::Md5(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                let bytes = mac.finalize().into_bytes();
                digest.bytes[..bytes.len()].copy_from_slice(&bytes);
                digest.len = bytes.len();
            }
            KeyedMac::Sha1(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                let bytes = mac.finalize().into_bytes();
                digest.bytes[..bytes.len()].copy_from_slice(&bytes);
                digest.len = bytes.len();
            }
        }
        digest
    }
}

/// Why a signer or a verification key is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The signer's name would make a signed header longer than 255 bytes.
    #[error("signer name of {bytes} bytes makes the frame header exceed 255 bytes")]
    NameTooLong {
        /// Bytes of the signer's name.
        bytes: usize,
    },
    /// The HMAC key is longer than [`HMAC_KEY_BYTES_MAX`].
    #[error("HMAC key of {bytes} bytes is above the {HMAC_KEY_BYTES_MAX}-byte limit")]
    KeyTooLong {
        /// Bytes of the key.
        bytes: usize,
    },
    /// A verification key's name is not `<signer>_<version>` with a decimal version.
    #[error("signer key `{key}` is not `<signer>_<version>` with a decimal version")]
    BadKeyName {
        /// The key's name as configured.
        key: String,
    },
    /// Two verification keys have the same name.
    #[error("signer key `{key}` is given twice")]
    DuplicateKey {
        /// The key's name as configured.
        key: String,
    },
    /// More than [`SIGNER_KEYS_MAX`] verification keys are configured.
    #[error("more than {SIGNER_KEYS_MAX} signer keys")]
    TooManyKeys,
}

/// Signs the frames a sender writes: Heka's `[signer]` (`name`, `version`, `hmac_hash`,
/// `hmac_key`).
#[derive(Clone)]
pub struct Signer {
    name: Box<str>,
    version: u32,
    hash: HashFunction,
    mac: KeyedMac,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        formatter
            .debug_struct("Signer")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer.
    ///
    /// # Errors
    /// The name is so long that a signed header would not fit in 255 bytes, or the key is
    /// longer than `HMAC_KEY_BYTES_MAX`.
    pub fn new(
        name: &str,
        version: u32,
        hash: HashFunction,
        key: &[u8],
    ) -> Result<Signer, SignerError> {
        if key.len() > HMAC_KEY_BYTES_MAX {
            return Err(SignerError::KeyTooLong { bytes: key.len() });
        }
        let signer = Signer {
            name: name.into(),
            version,
            hash,
            mac: KeyedMac::new(hash, key),
        };
        if signer.header_bytes(MESSAGE_BYTES_CEILING) > FRAME_HEADER_BYTES_MAX {
            return Err(SignerError::NameTooLong { bytes: name.len() });
        }
        Ok(signer)
    }

    /// The signer's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The hash function.
    pub fn hash(&self) -> HashFunction {
        self.hash
    }

    /// The HMAC of `message` under this signer's key.
    pub fn sign(&self, message: &[u8]) -> Digest {
        self.mac.digest(message)
    }

    /// H for a signed header announcing `message_length` bytes.
    fn header_bytes(&self, message_length: usize) -> usize {
        let name = self.name.len();
        let digest = self.hash.digest_bytes();
        let hash_field = if self.hash == HashFunction::Md5 { 0 } else { 2 };
        1 + wire::varint_len(message_length as u64)
            + hash_field
            + 1
            + wire::varint_len(name as u64)
            + name
            + 1
            + wire::varint_len(u64::from(self.version))
            + 2
            + digest
    }
}

/// Why a frame could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The message is larger than [`MESSAGE_BYTES_CEILING`].
    #[error("a message of {bytes} bytes is above the 64 MiB frame ceiling")]
    MessageTooLarge {
        /// Bytes of the message.
        bytes: usize,
    },
    /// The message is empty: Heka frames hold at least one byte.
    #[error("a message of {bytes} bytes cannot be framed: Heka frames hold at least one byte")]
    EmptyMessage {
        /// Bytes of the message (always 0).
        bytes: usize,
    },
    /// The bytes appended after [`begin_frame`] are not the length its header announced.
    #[error("{written} message bytes were appended after a header announcing {announced}")]
    LengthMismatch {
        /// The message length the header announced.
        announced: usize,
        /// The message bytes actually appended.
        written: usize,
    },
}

impl FrameError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            FrameError::MessageTooLarge { .. } => "too_large",
            FrameError::EmptyMessage { .. } => "empty",
            FrameError::LengthMismatch { .. } => "length_mismatch",
        }
    }
}

/// Bytes of the framing (separators and header) around a message of `message_length` bytes.
pub fn frame_overhead_bytes(message_length: usize, signer: Option<&Signer>) -> usize {
    let header_bytes = match signer {
        None => 1 + wire::varint_len(message_length as u64),
        Some(signer) => signer.header_bytes(message_length),
    };
    3 + header_bytes
}

/// A frame whose header is written and whose message the caller is appending.
#[must_use = "a begun frame must be finished, or its signature is missing"]
#[derive(Debug)]
pub struct PendingFrame<'s> {
    /// Where the frame starts in the batch (its record separator).
    frame_at: usize,
    /// Where the message starts in the batch.
    message_at: usize,
    message_length: usize,
    /// Where the digest goes, for a signed frame.
    digest_at: usize,
    signer: Option<&'s Signer>,
}

impl PendingFrame<'_> {
    /// Where the message starts in the batch.
    pub fn message_start(&self) -> usize {
        self.message_at
    }

    /// Checks that exactly the announced bytes were appended and, for a signed frame, writes
    /// the digest.
    ///
    /// # Errors
    /// [`FrameError::LengthMismatch`] when the caller appended a different number of bytes; the
    /// partial frame is removed from `out` so the batch stays well formed.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let written = out.len().saturating_sub(self.message_at);
        if out.len() < self.message_at || written != self.message_length {
            out.truncate(self.frame_at);
            return Err(FrameError::LengthMismatch {
                announced: self.message_length,
                written,
            });
        }
        if let Some(signer) = self.signer {
            let digest = signer.sign(&out[self.message_at..]);
            let bytes = digest.as_bytes();
            out[self.digest_at..self.digest_at + bytes.len()].copy_from_slice(bytes);
        }
        Ok(())
    }
}

/// Appends the header of a frame for a message of `message_length` bytes, which the caller
/// appends next, then calls [`PendingFrame::finish`].
///
/// # Errors
/// The message is empty or above the 64 MiB ceiling.
pub fn begin_frame<'s>(
    out: &mut Vec<u8>,
    message_length: usize,
    signer: Option<&'s Signer>,
) -> Result<PendingFrame<'s>, FrameError> {
    if message_length == 0 {
        return Err(FrameError::EmptyMessage { bytes: 0 });
    }
    if message_length > MESSAGE_BYTES_CEILING {
        return Err(FrameError::MessageTooLarge {
            bytes: message_length,
        });
    }
    let overhead = frame_overhead_bytes(message_length, signer);
    debug_assert!(overhead <= FRAME_OVERHEAD_BYTES_MAX);
    out.reserve(overhead + message_length);
    let frame_at = out.len();
    out.push(RECORD_SEPARATOR);
    // `Signer::new` and the ceiling keep every header within 255 bytes.
    out.push((overhead - 3) as u8);
    wire::put_key(out, 1, WIRE_VARINT);
    wire::put_varint(out, message_length as u64);
    let mut digest_at = 0;
    if let Some(signer) = signer {
        if signer.hash != HashFunction::Md5 {
            wire::put_int(out, 3, signer.hash.wire() as i64);
        }
        wire::put_bytes(out, 4, signer.name.as_bytes());
        wire::put_int(out, 5, i64::from(signer.version));
        wire::put_key(out, 6, WIRE_LEN);
        let digest_bytes = signer.hash.digest_bytes();
        wire::put_varint(out, digest_bytes as u64);
        digest_at = out.len();
        out.resize(out.len() + digest_bytes, 0);
    }
    out.push(UNIT_SEPARATOR);
    let message_at = out.len();
    debug_assert_eq!(message_at - frame_at, overhead);
    Ok(PendingFrame {
        frame_at,
        message_at,
        message_length,
        digest_at,
        signer,
    })
}

/// Appends `message` as one frame, signed when `signer` is given.
///
/// # Errors
/// As [`begin_frame`].
pub fn write_frame(
    out: &mut Vec<u8>,
    message: &[u8],
    signer: Option<&Signer>,
) -> Result<(), FrameError> {
    let pending = begin_frame(out, message.len(), signer)?;
    out.extend_from_slice(message);
    pending.finish(out)
}

/// Names a verified signer: an index into the [`Verifier`] that checked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SignerId(u16);

/// The outcome of checking one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authentication {
    /// No `hmac` in the header: accepted, unsigned.
    Unsigned,
    /// The digest matched this key.
    Verified(SignerId),
    /// Drop the frame.
    Rejected(AuthError),
}

/// Why a signed frame was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The frame's `"<signer>_<version>"` names no configured key.
    #[error("no key for the frame's signer and version")]
    UnknownSigner,
    /// The frame's hash function number is neither MD5 (0) nor SHA1 (1).
    #[error("the frame names a hash function this schema does not define")]
    UnknownHashFunction,
    /// The frame's digest does not match the one computed with the signer's key.
    #[error("the HMAC does not match")]
    DigestMismatch,
}

impl AuthError {
    /// A low-cardinality label for counters.
    pub fn code(self) -> &'static str {
        match self {
            AuthError::UnknownSigner => "unknown_signer",
            AuthError::UnknownHashFunction => "unknown_hash",
            AuthError::DigestMismatch => "digest_mismatch",
        }
    }
}

/// One verification key, keyed both ways because the frame picks the hash function.
#[derive(Clone)]
struct VerifyKey {
    signer: Box<[u8]>,
    version: u32,
    md5: KeyedMac,
    sha1: KeyedMac,
}

/// The keys an input accepts signed frames from, by `"<signer>_<version>"` (Heka's
/// `[input.signer.<signer>_<version>] hmac_key = "…"`). Several versions of one signer may be
/// live at once, for key rotation.
#[derive(Clone, Default)]
pub struct Verifier {
    keys: Vec<VerifyKey>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Verifier {
    /// A verifier from `("<signer>_<version>", key)` pairs. The version is the decimal text
    /// after the last `_`, written as Heka writes it (no sign, no leading zeros), because the
    /// lookup key is rebuilt from the header exactly that way.
    ///
    /// # Errors
    /// A malformed or repeated key name, a key too long, or too many keys.
    pub fn new<'k>(
        keys: impl IntoIterator<Item = (&'k str, &'k [u8])>,
    ) -> Result<Verifier, SignerError> {
        let mut verifier = Verifier { keys: Vec::new() };
        for (name, key) in keys {
            if verifier.keys.len() == SIGNER_KEYS_MAX {
                return Err(SignerError::TooManyKeys);
            }
            if key.len() > HMAC_KEY_BYTES_MAX {
                return Err(SignerError::KeyTooLong { bytes: key.len() });
            }
            let bad = || SignerError::BadKeyName {
                key: name.to_string(),
            };
            let (signer, version_text) = name.rsplit_once('_').ok_or_else(bad)?;
            let version: u32 = version_text.parse().map_err(|_| bad())?;
            if version.to_string() != version_text {
                return Err(bad());
            }
            if verifier.find(signer.as_bytes(), version).is_some() {
                return Err(SignerError::DuplicateKey {
                    key: name.to_string(),
                });
            }
            verifier.keys.push(VerifyKey {
                signer: signer.as_bytes().into(),
                version,
                md5: KeyedMac::new(HashFunction::Md5, key),
                sha1: KeyedMac::new(HashFunction::Sha1, key),
            });
        }
        Ok(verifier)
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys (every signed frame is then rejected).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, signer: &[u8], version: u32) -> Option<usize> {
        self.keys
            .iter()
            .position(|key| key.version == version && *key.signer == *signer)
    }

    /// The signer name of a verified frame.
    pub fn signer_name(&self, id: SignerId) -> Option<&[u8]> {
        self.keys.get(usize::from(id.0)).map(|key| &*key.signer)
    }

    /// Checks `message` against its frame's header.
    pub fn authenticate(&self, header: &FrameHeader<'_>, message: &[u8]) -> Authentication {
        let Some(digest) = header.hmac else {
            return Authentication::Unsigned;
        };
        let Some(index) = self.find(header.hmac_signer, header.hmac_key_version) else {
            return Authentication::Rejected(AuthError::UnknownSigner);
        };
        let key = &self.keys[index];
        let expected = match header.hash_function() {
            Some(HashFunction::Md5) => key.md5.digest(message),
            Some(HashFunction::Sha1) => key.sha1.digest(message),
            None => return Authentication::Rejected(AuthError::UnknownHashFunction),
        };
        if bool::from(expected.as_bytes().ct_eq(digest)) {
            // SIGNER_KEYS_MAX keeps the index within u16.
            Authentication::Verified(SignerId(index as u16))
        } else {
            Authentication::Rejected(AuthError::DigestMismatch)
        }
    }
}

const _: () = assert!(SIGNER_KEYS_MAX <= u16::MAX as usize + 1);

#[cfg(test)]
mod tests;
