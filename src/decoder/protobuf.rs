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
