//! Encodings behind their lengths: how an output whose owner sends each message on its own
//! (a datagram, a mail, an AMQP publish, a dashboard record) keeps message boundaries inside a
//! batch. The sink encodes each message behind a 4-byte little-endian length
//! ([`LengthFramedKind`], or [`push`] for an encoder of its own), and the destination cuts the
//! batch back with [`encodings`]. The length never leaves the process.

use std::sync::Arc;

use crate::config::plan::GlobalPlan;
use crate::encoder::{Encode, EncodeFailed, EncoderKind, Framing};
use crate::message::MessageView;

/// Bytes of the length before each encoding.
pub const LENGTH_BYTES: usize = 4;

/// The configured encoder, each encoding behind its length; an encoding longer than
/// `bytes_max` fails (the sink counts it as an encode failure).
#[derive(Debug)]
pub struct LengthFramedKind {
    inner: Arc<dyn EncoderKind>,
    bytes_max: usize,
}

impl LengthFramedKind {
    /// `inner`'s encodings, each behind its length, none longer than `bytes_max` (at most
    /// `u32::MAX`).
    pub fn new(inner: Arc<dyn EncoderKind>, bytes_max: usize) -> LengthFramedKind {
        let bytes_max = bytes_max.min(u32::MAX as usize);
        LengthFramedKind { inner, bytes_max }
    }
}

impl EncoderKind for LengthFramedKind {
    fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }

    fn sandboxed(&self) -> bool {
        self.inner.sandboxed()
    }

    fn build(
        &self,
        global: &GlobalPlan,
        core_row: Option<usize>,
    ) -> Result<Box<dyn Encode>, String> {
        Ok(Box::new(LengthFramed {
            inner: self.inner.build(global, core_row)?,
            bytes_max: self.bytes_max,
        }))
    }
}

struct LengthFramed {
    inner: Box<dyn Encode>,
    bytes_max: usize,
}

impl Encode for LengthFramed {
    fn sandbox_usage(&self) -> Option<crate::filter::SandboxUsage> {
        self.inner.sandbox_usage()
    }

    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        framing: Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed> {
        let start = out.len();
        out.extend_from_slice(&[0; LENGTH_BYTES]);
        match self.inner.encode_into(message, framing, out) {
            Ok(0) => {
                out.truncate(start);
                Ok(0)
            }
            Ok(bytes) if bytes <= self.bytes_max => {
                // bytes_max is at most u32::MAX (see `new`).
                let length = (bytes as u32).to_le_bytes();
                out[start..start + LENGTH_BYTES].copy_from_slice(&length);
                Ok(bytes + LENGTH_BYTES)
            }
            Ok(_) | Err(EncodeFailed) => {
                out.truncate(start);
                Err(EncodeFailed)
            }
        }
    }
}

/// Appends `encoding` behind its length; returns the bytes appended.
///
/// # Errors
/// An encoding longer than `u32::MAX` bytes.
pub fn push(out: &mut Vec<u8>, encoding: &[u8]) -> Result<usize, EncodeFailed> {
    let length = u32::try_from(encoding.len()).map_err(|_| EncodeFailed)?;
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(encoding);
    Ok(LENGTH_BYTES + encoding.len())
}

/// The encodings of a batch (or of a disk-queue record, which is a batch); a truncated tail
/// yields nothing.
pub fn encodings(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (length, tail) = rest.split_first_chunk::<LENGTH_BYTES>()?;
        let (encoding, tail) = tail.split_at_checked(u32::from_le_bytes(*length) as usize)?;
        rest = tail;
        Some(encoding)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoder::payload::{PayloadEncoder, PayloadOptions};
    use crate::message::view::ProtoView;

    fn message(payload: &str) -> Vec<u8> {
        use prost::Message as _;
        crate::message::proto::Message {
            uuid: vec![7; 16],
            timestamp: 1,
            payload: Some(payload.into()),
            ..crate::message::proto::Message::default()
        }
        .encode_to_vec()
    }

    fn encoder(bytes_max: usize) -> LengthFramed {
        let payload = PayloadEncoder::new(&PayloadOptions::default(), 1 << 20).expect("encoder");
        LengthFramed {
            inner: Box::new(crate::encoder::Encoder::Payload(payload)),
            bytes_max,
        }
    }

    #[test]
    fn a_batch_is_cut_back_into_its_encodings() {
        let mut encoder = encoder(64);
        let mut batch = Vec::new();
        for payload in ["one", "", "three", "x"] {
            let bytes = message(payload);
            let view = MessageView::Proto(ProtoView::new(&bytes));
            encoder
                .encode_into(&view, Framing::None, &mut batch)
                .expect("fits");
        }
        let encodings: Vec<&[u8]> = encodings(&batch).collect();
        assert_eq!(
            encodings,
            [&b"one\n"[..], b"\n", b"three\n", b"x\n"],
            "one encoding per message, lengths left behind"
        );
    }

    #[test]
    fn an_encoding_over_the_limit_is_refused_and_leaves_nothing() {
        let mut encoder = encoder(4);
        let mut batch = Vec::new();
        let fits = message("abc");
        let long = message("abcd");
        let view = |bytes| MessageView::Proto(ProtoView::new(bytes));
        assert_eq!(
            encoder.encode_into(&view(&fits), Framing::None, &mut batch),
            Ok(4 + LENGTH_BYTES)
        );
        let before = batch.clone();
        assert_eq!(
            encoder.encode_into(&view(&long), Framing::None, &mut batch),
            Err(EncodeFailed)
        );
        assert_eq!(batch, before);
        assert_eq!(encodings(&batch).count(), 1);
    }

    #[test]
    fn a_truncated_batch_yields_only_whole_encodings() {
        let mut batch = vec![3, 0, 0, 0];
        batch.extend_from_slice(b"abc");
        batch.extend_from_slice(&[9, 0, 0, 0, b'z']);
        assert_eq!(encodings(&batch).collect::<Vec<_>>(), [&b"abc"[..]]);
    }
}
