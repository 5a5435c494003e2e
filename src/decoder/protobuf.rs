//! ProtobufDecoder: checks that a record is a Heka message and returns the lazy view over it.
//!
//! Only the top level is scanned (one pass over tags and lengths) and the required headers are
//! checked; fields are read later, and only if something asks for them.

use crate::message::view::DecodeError;
use crate::message::ProtoView;

/// Checks `record` and returns its view.
///
/// # Errors
/// The record is not a valid Heka message: see [`DecodeError`].
#[inline]
pub fn decode(record: &[u8]) -> Result<ProtoView<'_>, DecodeError> {
    let view = ProtoView::new(record);
    view.validate()?;
    Ok(view)
}

/// `ProtobufDecoder` as configured: it has no options.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProtobufDecoder {
    #[serde(rename = "type")]
    _type: Option<String>,
}

/// The ProtobufDecoder kind.
#[derive(Debug, Clone, Copy)]
pub struct ProtobufDecoderKind;

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<std::sync::Arc<dyn super::DecoderKind>> =
    crate::component::Registration {
        type_names: &["ProtobufDecoder"],
        plan: |section, _| {
            section.parse::<RawProtobufDecoder>()?;
            Ok(std::sync::Arc::new(ProtobufDecoderKind))
        },
    };

impl super::DecoderKind for ProtobufDecoderKind {
    fn type_name(&self) -> &'static str {
        "ProtobufDecoder"
    }

    fn build(&self, _: &super::DecoderBuild<'_>) -> Result<Box<dyn super::Decoder>, String> {
        Ok(Box::new(ProtobufDecoderKind))
    }
}

impl super::Decoder for ProtobufDecoderKind {
    #[inline]
    fn decode(
        &mut self,
        record: &[u8],
        context: &mut super::DecodeContext<'_>,
    ) -> Result<(), &'static str> {
        let view = decode(record).map_err(|error| error.code())?;
        context
            .router
            .route(&crate::message::MessageView::Proto(view));
        Ok(())
    }

    /// A line's Payload is checked as a Heka message; a message is one already.
    fn decode_message(
        &mut self,
        message: &crate::message::MessageView<'_>,
        _: &mut super::DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        use crate::message::MessageView;
        let bytes = match message {
            MessageView::Proto(view) => view.bytes(),
            MessageView::Line(line) => decode(line.payload).map_err(|error| error.code())?.bytes(),
        };
        crate::filter::push_record(out, bytes);
        Ok(())
    }
}
