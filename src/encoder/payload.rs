//! PayloadEncoder: a message's Payload, as text.
//!
//! Options (Heka's names and defaults):
//! - `append_newlines` (true): write `\n` after every payload. A TokenSplitter keeps its
//!   delimiter in the record, so a line read by one and written by this encoder ends in two
//!   newlines, exactly as in Heka.
//! - `prefix_ts` (false): write a timestamp before the payload, formatted by `ts_format`
//!   (default `[%Y/%b/%d:%H:%M:%S %z]`; a space is appended when the format does not end with
//!   one, as Heka does). Formats are the strftime subset of [`super::strftime`], in UTC.
//! - `ts_from_message` (true): take that time from the message's Timestamp rather than now.
//!
//! A message without a Payload encodes to nothing (Heka wrote an empty line) and is counted
//! in `empty_messages`. The formatted prefix is cached per second, so a stream of messages
//! formats its timestamp once a second, not once a message.

use super::strftime::TsFormat;
use super::{check_message_bytes_max, EncoderError, EncoderStats};
use crate::message::{now_ns, MessageView, StrHeader};

/// The encoder's options, as Heka names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayloadOptions {
    /// Write `\n` after every payload (`append_newlines`, default true).
    pub append_newlines: bool,
    /// Write a timestamp formatted by `ts_format` before every payload (`prefix_ts`, default
    /// false).
    pub prefix_ts: bool,
    /// The strftime format of that timestamp, in UTC (`ts_format`, default
    /// `[%Y/%b/%d:%H:%M:%S %z]`); a space is appended when it does not end with one.
    pub ts_format: String,
    /// Take the timestamp from the message's Timestamp rather than the time of encoding
    /// (`ts_from_message`, default true).
    pub ts_from_message: bool,
}

impl Default for PayloadOptions {
    /// Heka's defaults.
    fn default() -> Self {
        PayloadOptions {
            append_newlines: true,
            prefix_ts: false,
            ts_format: "[%Y/%b/%d:%H:%M:%S %z]".into(),
            ts_from_message: true,
        }
    }
}

/// The formatted timestamp prefix, cached for the second it was formatted for.
#[derive(Debug)]
struct TsPrefix {
    format: TsFormat,
    from_message: bool,
    text: Vec<u8>,
    second: Option<i64>,
}

impl TsPrefix {
    fn update(&mut self, timestamp_ns: i64) {
        let second = timestamp_ns.div_euclid(1_000_000_000);
        if self.second != Some(second) {
            self.text.clear();
            self.format.format(second, &mut self.text);
            self.second = Some(second);
        }
    }
}

/// Writes messages' payloads.
#[derive(Debug)]
pub struct PayloadEncoder {
    append_newlines: bool,
    prefix: Option<TsPrefix>,
    pub(super) message_bytes_max: usize,
    pub(super) stats: EncoderStats,
}

impl PayloadEncoder {
    /// An encoder with `options`, refusing framed messages above `message_bytes_max`.
    ///
    /// # Errors
    /// An unsupported `ts_format` (checked even when `prefix_ts` is off, so a typo is found
    /// before it is switched on), or `message_bytes_max` outside `1..=MESSAGE_BYTES_CEILING`.
    pub fn new(
        options: &PayloadOptions,
        message_bytes_max: usize,
    ) -> Result<PayloadEncoder, EncoderError> {
        let mut text = options.ts_format.clone();
        if !text.ends_with(' ') {
            text.push(' ');
        }
        let format = TsFormat::new(&text)?;
        let prefix = options.prefix_ts.then(|| TsPrefix {
            format,
            from_message: options.ts_from_message,
            text: Vec::with_capacity(4 * text.len() + 32),
            second: None,
        });
        Ok(PayloadEncoder {
            append_newlines: options.append_newlines,
            prefix,
            message_bytes_max: check_message_bytes_max(message_bytes_max)?,
            stats: EncoderStats::default(),
        })
    }

    #[inline]
    pub(super) fn prepare(&mut self, message: &MessageView<'_>) -> usize {
        let Some(payload) = message.str_header(StrHeader::Payload) else {
            return 0;
        };
        let prefix = match &mut self.prefix {
            None => 0,
            Some(prefix) => {
                // A message without a Timestamp is invalid; the epoch makes that visible.
                let timestamp_ns = if prefix.from_message {
                    message.timestamp().unwrap_or(0)
                } else {
                    now_ns()
                };
                prefix.update(timestamp_ns);
                prefix.text.len()
            }
        };
        prefix + payload.len() + usize::from(self.append_newlines)
    }

    /// Appends what `prepare` measured; `prepare` must have been called for this message.
    #[inline]
    pub(super) fn write(&mut self, message: &MessageView<'_>, out: &mut Vec<u8>) {
        let Some(payload) = message.str_header(StrHeader::Payload) else {
            return;
        };
        if let Some(prefix) = &self.prefix {
            out.extend_from_slice(&prefix.text);
        }
        out.extend_from_slice(payload);
        if self.append_newlines {
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use prost::Message as _;

    use super::*;
    use crate::encoder::{EncodeError, Encoder, EncoderError};
    use crate::message::framing::Verifier;
    use crate::message::{proto, LineMeta, LineView, ProtoView};
    use crate::splitter::{HekaFrameSplitter, Splitter, Step, TokenSplitter};

    fn encoder(options: PayloadOptions) -> Encoder {
        Encoder::Payload(PayloadEncoder::new(&options, 1024).unwrap())
    }

    fn message(payload: Option<&str>) -> Vec<u8> {
        proto::Message {
            uuid: vec![1; 16],
            timestamp: 1_428_773_426_113_040_228,
            payload: payload.map(str::to_string),
            ..proto::Message::default()
        }
        .encode_to_vec()
    }

    fn encode(encoder: &mut Encoder, bytes: &[u8]) -> String {
        let mut out = Vec::new();
        encoder
            .encode(&MessageView::Proto(ProtoView::new(bytes)), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn payloads_with_and_without_newlines() {
        let mut default = encoder(PayloadOptions::default());
        assert_eq!(encode(&mut default, &message(Some("hello"))), "hello\n");
        assert_eq!(encode(&mut default, &message(Some(""))), "\n");
        let mut bare = encoder(PayloadOptions {
            append_newlines: false,
            ..PayloadOptions::default()
        });
        assert_eq!(encode(&mut bare, &message(Some("hello"))), "hello");
        // An empty payload without a newline is nothing at all.
        assert_eq!(encode(&mut bare, &message(Some(""))), "");
        assert_eq!(bare.stats().empty_messages, 1);
    }

    #[test]
    fn no_payload_is_nothing_and_counted() {
        let mut encoder = encoder(PayloadOptions::default());
        assert_eq!(encode(&mut encoder, &message(None)), "");
        let mut out = Vec::new();
        let bytes = message(None);
        assert_eq!(
            encoder.encode_framed(&MessageView::Proto(ProtoView::new(&bytes)), None, &mut out),
            Ok(0)
        );
        assert!(out.is_empty(), "no frame for nothing");
        assert_eq!(encoder.stats().empty_messages, 2);
        assert_eq!(encoder.stats().messages, 0);
    }

    #[test]
    fn timestamp_prefixes() {
        let options = PayloadOptions {
            prefix_ts: true,
            ..PayloadOptions::default()
        };
        let mut from_message = encoder(options.clone());
        assert_eq!(
            encode(&mut from_message, &message(Some("hi"))),
            "[2015/Apr/11:17:30:26 +0000] hi\n"
        );
        let mut iso = encoder(PayloadOptions {
            ts_format: "%FT%TZ ".into(),
            ..options.clone()
        });
        assert_eq!(
            encode(&mut iso, &message(Some("hi"))),
            "2015-04-11T17:30:26Z hi\n"
        );
        // Now, rather than the message's time: this year, whatever the message says.
        let mut now = encoder(PayloadOptions {
            ts_format: "%Y".into(),
            ts_from_message: false,
            ..options
        });
        let year = 1970 + now_ns() / 1_000_000_000 / 31_556_952;
        let text = encode(&mut now, &message(Some("hi")));
        assert!(
            text == format!("{year} hi\n") || text == format!("{} hi\n", year + 1),
            "{text}"
        );
    }

    #[test]
    fn a_bad_format_is_refused_even_when_off() {
        let options = PayloadOptions {
            ts_format: "%Q".into(),
            ..PayloadOptions::default()
        };
        assert!(matches!(
            PayloadEncoder::new(&options, 1024),
            Err(EncoderError::TsFormat(_))
        ));
    }

    #[test]
    fn token_lines_keep_their_newline_as_in_heka() {
        let stream = b"first\nsecond\n";
        let mut splitter = Splitter::Token(TokenSplitter::lines(1024).unwrap());
        let mut encoder = encoder(PayloadOptions::default());
        let meta = LineMeta::default();
        let mut window = &stream[..];
        let mut out = Vec::new();
        while let Step::Record {
            start,
            end,
            consumed,
            ..
        } = splitter.split(window)
        {
            let line = LineView {
                payload: &window[start..end],
                uuid: [0; 16],
                timestamp: 0,
                meta: &meta,
            };
            encoder.encode(&MessageView::Line(line), &mut out).unwrap();
            window = &window[consumed..];
        }
        assert_eq!(out, b"first\n\nsecond\n\n");
    }

    #[test]
    fn framed_payloads_round_trip_through_the_splitter() {
        let options = PayloadOptions {
            prefix_ts: true,
            ..PayloadOptions::default()
        };
        let mut encoder = Encoder::Payload(PayloadEncoder::new(&options, 40).unwrap());
        let mut out = Vec::new();
        for payload in ["one", "two", "a payload far too long for forty bytes"] {
            let bytes = message(Some(payload));
            let result =
                encoder.encode_framed(&MessageView::Proto(ProtoView::new(&bytes)), None, &mut out);
            if payload.len() > 10 {
                assert_eq!(result, Err(EncodeError::TooLarge { bytes: 68, max: 40 }));
            } else {
                assert!(result.is_ok());
            }
        }
        let mut splitter = Splitter::HekaFrame(
            HekaFrameSplitter::new(Arc::new(Verifier::default()), false, 64).unwrap(),
        );
        let mut window = out.as_slice();
        let mut records = Vec::new();
        while let Step::Record {
            start,
            end,
            consumed,
            ..
        } = splitter.split(window)
        {
            records.push(String::from_utf8(window[start..end].to_vec()).unwrap());
            window = &window[consumed..];
        }
        assert_eq!(
            records,
            [
                "[2015/Apr/11:17:30:26 +0000] one\n",
                "[2015/Apr/11:17:30:26 +0000] two\n"
            ]
        );
    }
}

/// `PayloadEncoder` as configured.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPayloadEncoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// Append `\n` after each payload (default true).
    append_newlines: Option<bool>,
    /// Prefix each payload with a timestamp (default false).
    prefix_ts: Option<bool>,
    /// strftime-style format of that prefix.
    ts_format: Option<String>,
    /// Take the prefix time from the message's Timestamp rather than now.
    ts_from_message: Option<bool>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<std::sync::Arc<dyn super::EncoderKind>> =
    crate::component::Registration {
        type_names: &["PayloadEncoder"],
        plan: plan_payload,
    };

fn plan_payload(
    section: &crate::config::Section,
    context: &crate::component::PlanContext<'_>,
) -> Result<std::sync::Arc<dyn super::EncoderKind>, crate::config::ConfigError> {
    let raw: RawPayloadEncoder = section.parse()?;
    let defaults = PayloadOptions::default();
    let options = PayloadOptions {
        append_newlines: raw.append_newlines.unwrap_or(defaults.append_newlines),
        prefix_ts: raw.prefix_ts.unwrap_or(defaults.prefix_ts),
        ts_format: raw.ts_format.unwrap_or(defaults.ts_format),
        ts_from_message: raw.ts_from_message.unwrap_or(defaults.ts_from_message),
    };
    // Built once here so that a format gyges cannot render fails at startup, naming the key.
    PayloadEncoder::new(&options, context.global.max_message_size)
        .map_err(|error| section.error(Some("ts_format"), error.to_string()))?;
    Ok(std::sync::Arc::new(options))
}

impl super::EncoderKind for PayloadOptions {
    fn type_name(&self) -> &'static str {
        "PayloadEncoder"
    }

    fn build(
        &self,
        global: &crate::config::plan::GlobalPlan,
        _: Option<usize>,
    ) -> Result<Box<dyn super::Encode>, String> {
        PayloadEncoder::new(self, global.max_message_size)
            .map(|encoder| Box::new(super::Encoder::Payload(encoder)) as Box<dyn super::Encode>)
            .map_err(|error| error.to_string())
    }
}
