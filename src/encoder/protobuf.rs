//! ProtobufEncoder: a message as Heka protobuf bytes.
//!
//! Bytes in, bytes out: a message that arrived as protobuf ([`MessageView::Proto`]) is written
//! as the exact bytes it arrived as, never decoded and re-encoded. A plain-line message
//! ([`MessageView::Line`]) is encoded field by field with [`encode_line`]. Pair it with
//! `use_framing = true` to send to another Heka or gyges.

use super::{check_message_bytes_max, EncoderError, EncoderStats};
use crate::message::{encode_line, encoded_line_len, MessageView};

/// Writes messages as protobuf.
#[derive(Debug)]
pub struct ProtobufEncoder {
    pub(super) message_bytes_max: usize,
    pub(super) stats: EncoderStats,
}

impl ProtobufEncoder {
    /// An encoder refusing framed messages above `message_bytes_max`.
    ///
    /// # Errors
    /// `message_bytes_max` outside `1..=MESSAGE_BYTES_CEILING`.
    pub fn new(message_bytes_max: usize) -> Result<ProtobufEncoder, EncoderError> {
        Ok(ProtobufEncoder {
            message_bytes_max: check_message_bytes_max(message_bytes_max)?,
            stats: EncoderStats::default(),
        })
    }

    #[inline]
    pub(super) fn prepare(&mut self, message: &MessageView<'_>) -> usize {
        match message {
            MessageView::Proto(view) => view.bytes().len(),
            MessageView::Line(line) => encoded_line_len(line),
        }
    }

    #[inline]
    pub(super) fn write(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        match message {
            MessageView::Proto(view) => out.extend_from_slice(view.bytes()),
            MessageView::Line(line) => encode_line(line, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost::Message as _;

    use super::*;
    use crate::encoder::Encoder;
    use crate::message::framing::{HashFunction, Signer, Verifier};
    use crate::message::{proto, LineMeta, LineView, ProtoView, UuidSource};
    use crate::splitter::{HekaFrameSplitter, Splitter, Step};

    fn sample() -> Vec<u8> {
        proto::Message {
            uuid: vec![9; 16],
            timestamp: 1_428_773_426_113_040_228,
            r#type: Some("TEST".into()),
            payload: Some("Test Payload".into()),
            severity: Some(6),
            ..proto::Message::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn protobuf_bytes_go_out_as_they_came_in() {
        // Deliberately non-canonical: Severity before Timestamp, and an unknown field 11.
        let mut bytes = Vec::new();
        crate::message::wire::put_bytes(&mut bytes, 1, &[3; 16]);
        crate::message::wire::put_int(&mut bytes, 5, 2);
        crate::message::wire::put_int(&mut bytes, 2, 77);
        crate::message::wire::put_int(&mut bytes, 11, 1);
        let mut encoder = Encoder::Protobuf(ProtobufEncoder::new(1024).unwrap());
        let mut out = b"batch:".to_vec();
        let written = encoder
            .encode(&MessageView::Proto(ProtoView::new(&bytes)), &mut out)
            .unwrap();
        assert_eq!(written, bytes.len());
        assert_eq!(&out[6..], bytes.as_slice());
        assert_eq!(encoder.stats().messages, 1);
    }

    #[test]
    fn lines_become_protobuf() {
        let meta = LineMeta {
            type_: (*b"t").into(),
            logger: (*b"in").into(),
            hostname: (*b"h").into(),
        };
        let line = LineView {
            payload: b"a line\n",
            uuid: UuidSource::with_seed(3).next_uuid(),
            timestamp: 5,
            meta: &meta,
        };
        let mut encoder = Encoder::Protobuf(ProtobufEncoder::new(1024).unwrap());
        let mut out = Vec::new();
        encoder.encode(&MessageView::Line(line), &mut out).unwrap();
        let decoded = proto::Message::decode(out.as_slice()).unwrap();
        assert_eq!(decoded.payload.as_deref(), Some("a line\n"));
        assert_eq!(decoded.logger.as_deref(), Some("in"));
        assert_eq!(decoded.timestamp, 5);
    }

    #[test]
    fn framed_round_trip_through_the_splitter() {
        let bytes = sample();
        let signer = Signer::new("ops", 4, HashFunction::Md5, b"key").unwrap();
        let meta = LineMeta::default();
        let line = LineView {
            payload: b"line",
            uuid: [1; 16],
            timestamp: 9,
            meta: &meta,
        };
        let mut encoder = Encoder::Protobuf(ProtobufEncoder::new(1024).unwrap());
        let mut out = Vec::new();
        encoder
            .encode_framed(&MessageView::Proto(ProtoView::new(&bytes)), None, &mut out)
            .unwrap();
        encoder
            .encode_framed(
                &MessageView::Proto(ProtoView::new(&bytes)),
                Some(&signer),
                &mut out,
            )
            .unwrap();
        encoder
            .encode_framed(&MessageView::Line(line), None, &mut out)
            .unwrap();
        assert_eq!(encoder.stats().bytes as usize, out.len());

        let verifier = Arc::new(Verifier::new([("ops_4", &b"key"[..])]).unwrap());
        let mut splitter =
            Splitter::HekaFrame(HekaFrameSplitter::new(verifier, false, 1024).unwrap());
        let mut window = out.as_slice();
        let mut records = Vec::new();
        while let Step::Record {
            start,
            end,
            consumed,
            signer,
        } = splitter.split(window)
        {
            records.push((window[start..end].to_vec(), signer.is_some()));
            window = &window[consumed..];
        }
        assert!(window.is_empty());
        assert_eq!(records[0], (bytes.clone(), false));
        assert_eq!(records[1], (bytes, true));
        let decoded = proto::Message::decode(records[2].0.as_slice()).unwrap();
        assert_eq!(decoded.payload.as_deref(), Some("line"));
    }

    #[test]
    fn framed_messages_above_the_limit_are_refused() {
        let bytes = sample();
        let mut encoder = Encoder::Protobuf(ProtobufEncoder::new(bytes.len() - 1).unwrap());
        let mut out = b"keep".to_vec();
        let error = encoder
            .encode_framed(&MessageView::Proto(ProtoView::new(&bytes)), None, &mut out)
            .unwrap_err();
        assert_eq!(
            error,
            crate::encoder::EncodeError::TooLarge {
                bytes: bytes.len(),
                max: bytes.len() - 1
            }
        );
        assert_eq!(out, b"keep");
        assert_eq!(encoder.stats().failures, 1);
    }
}

/// `ProtobufEncoder` as configured: it has no options.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtobufEncoder {
    #[serde(rename = "type")]
    _type: Option<String>,
}

/// The ProtobufEncoder kind.
#[derive(Debug, Clone, Copy)]
pub struct ProtobufEncoderKind;

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<std::sync::Arc<dyn super::EncoderKind>> =
    crate::component::Registration {
        type_names: &["ProtobufEncoder"],
        plan: |section, _| {
            section.parse::<RawProtobufEncoder>()?;
            Ok(std::sync::Arc::new(ProtobufEncoderKind))
        },
    };

impl super::EncoderKind for ProtobufEncoderKind {
    fn type_name(&self) -> &'static str {
        "ProtobufEncoder"
    }

    fn build(
        &self,
        global: &crate::config::plan::GlobalPlan,
        _: Option<usize>,
    ) -> Result<Box<dyn super::Encode>, String> {
        ProtobufEncoder::new(global.max_message_size)
            .map(|encoder| Box::new(super::Encoder::Protobuf(encoder)) as Box<dyn super::Encode>)
            .map_err(|error| error.to_string())
    }
}
