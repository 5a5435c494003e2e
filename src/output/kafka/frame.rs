//! The frame KafkaOutput's encoder puts before each encoding inside a batch (value length,
//! key, topic), and the iterator that cuts a batch back into records on the owner core.

use std::sync::Arc;

use super::{check_topic, Variable};
use crate::config::plan::GlobalPlan;
use crate::encoder::{Encode, EncodeFailed, EncoderKind, Framing};
use crate::limits::{KAFKA_KEY_BYTES_MAX, KAFKA_MESSAGE_BYTES_MAX, KAFKA_TOPIC_BYTES_MAX};
use crate::message::MessageView;

/// One message of a batch: its topic (`None`: the output's), key and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framed<'a> {
    /// The `topic_variable` value, if the output has one.
    pub topic: Option<&'a [u8]>,
    /// The `hash_variable` value, if the output has one.
    pub key: Option<&'a [u8]>,
    /// The encoding.
    pub value: &'a [u8],
}

/// Bytes of a message's frame inside a batch: value length (u32), key length (u16), topic
/// length (u16), little-endian; a length of `u16::MAX` means none.
const FRAME_BYTES: usize = 8;
pub(super) const ABSENT: u16 = u16::MAX;
const _: () = assert!(KAFKA_KEY_BYTES_MAX < ABSENT as usize);
const _: () = assert!(KAFKA_TOPIC_BYTES_MAX < ABSENT as usize);
const _: () = assert!(KAFKA_MESSAGE_BYTES_MAX <= u32::MAX as usize);

/// The messages of a KafkaOutput batch (or of a queue record, which is a batch); a truncated
/// tail yields nothing.
pub fn framed(bytes: &[u8]) -> impl Iterator<Item = Framed<'_>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (frame, tail) = rest.split_first_chunk::<FRAME_BYTES>()?;
        let value_len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        let key_len = u16::from_le_bytes([frame[4], frame[5]]);
        let topic_len = u16::from_le_bytes([frame[6], frame[7]]);
        let length = |len: u16| if len == ABSENT { 0 } else { len as usize };
        let (key, tail) = tail.split_at_checked(length(key_len))?;
        let (topic, tail) = tail.split_at_checked(length(topic_len))?;
        let (value, tail) = tail.split_at_checked(value_len)?;
        rest = tail;
        Some(Framed {
            topic: (topic_len != ABSENT).then_some(topic),
            key: (key_len != ABSENT).then_some(key),
            value,
        })
    })
}

/// KafkaOutput's encoder: the configured one, each encoding behind its frame.
#[derive(Debug)]
pub struct KafkaEncoderKind {
    pub(super) inner: Arc<dyn EncoderKind>,
    pub(super) bytes_max: usize,
    pub(super) topic_variable: Option<Variable>,
    pub(super) hash_variable: Option<Variable>,
}

impl KafkaEncoderKind {
    /// `inner` framed for a KafkaOutput with no variables (the bench's and tests' encoder).
    pub fn plain(inner: Arc<dyn EncoderKind>, bytes_max: usize) -> KafkaEncoderKind {
        KafkaEncoderKind {
            inner,
            bytes_max,
            topic_variable: None,
            hash_variable: None,
        }
    }
}

impl EncoderKind for KafkaEncoderKind {
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
        Ok(Box::new(KafkaEncoder {
            inner: self.inner.build(global, core_row)?,
            bytes_max: self.bytes_max,
            topic_variable: self.topic_variable.clone(),
            hash_variable: self.hash_variable.clone(),
        }))
    }
}

struct KafkaEncoder {
    inner: Box<dyn Encode>,
    bytes_max: usize,
    topic_variable: Option<Variable>,
    hash_variable: Option<Variable>,
}

impl Encode for KafkaEncoder {
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
        out.extend_from_slice(&[0; FRAME_BYTES]);
        let result = self.encode_framed(message, framing, out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }
}

impl KafkaEncoder {
    fn encode_framed(
        &mut self,
        message: &MessageView<'_>,
        framing: Framing<'_>,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<usize, EncodeFailed> {
        let mut key_len = ABSENT;
        if let Some(variable) = &self.hash_variable {
            let from = out.len();
            // A message without the variable hashes as the empty key.
            variable.render(message, out);
            out.truncate(from + (out.len() - from).min(KAFKA_KEY_BYTES_MAX));
            key_len = (out.len() - from) as u16;
        }
        let mut topic_len = ABSENT;
        if let Some(variable) = &self.topic_variable {
            let from = out.len();
            if !variable.render(message, out) || check_topic(&out[from..]).is_err() {
                return Err(EncodeFailed);
            }
            topic_len = (out.len() - from) as u16;
        }
        let value = self.inner.encode_into(message, framing, out)?;
        if value == 0 {
            out.truncate(start);
            return Ok(0);
        }
        if value > self.bytes_max {
            return Err(EncodeFailed);
        }
        out[start..start + 4].copy_from_slice(&(value as u32).to_le_bytes());
        out[start + 4..start + 6].copy_from_slice(&key_len.to_le_bytes());
        out[start + 6..start + 8].copy_from_slice(&topic_len.to_le_bytes());
        Ok(out.len() - start)
    }
}

/// The topic of `message`: its own, or the output's.
pub(super) fn topic_of<'a>(message: &Framed<'a>, fixed: Option<&'a str>) -> Option<&'a str> {
    match message.topic {
        // Checked ASCII by the encoder.
        Some(topic) => std::str::from_utf8(topic).ok(),
        None => fixed,
    }
}
