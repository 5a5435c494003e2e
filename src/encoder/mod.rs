//! TEMPORARY: replaced by the stages branch at merge.

use crate::config::plan::EncoderPlan;
use crate::message::{encode_line, MessageView, StrHeader};

#[derive(Debug)]
pub struct EncodeError;

pub struct Encoder {
    plan: EncoderPlan,
}

impl Encoder {
    pub fn from_plan(plan: &EncoderPlan) -> Encoder {
        Encoder { plan: plan.clone() }
    }

    pub fn encode(
        &mut self,
        message: &MessageView<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match (&self.plan, message) {
            (EncoderPlan::Protobuf, MessageView::Proto(view)) => {
                out.extend_from_slice(view.bytes())
            }
            (EncoderPlan::Protobuf, MessageView::Line(line)) => encode_line(line, out),
            (
                EncoderPlan::Payload {
                    append_newlines, ..
                },
                message,
            ) => {
                let payload = message.str_header(StrHeader::Payload).ok_or(EncodeError)?;
                out.extend_from_slice(payload);
                if *append_newlines {
                    out.push(b'\n');
                }
            }
        }
        Ok(())
    }
}

/// Frames `out[start..]` in place.
pub fn frame_in_place(out: &mut Vec<u8>, start: usize) {
    let length = out.len() - start;
    let mut header = vec![0x1e, 0, 0x08];
    crate::message::wire::put_varint(&mut header, length as u64);
    header[1] = (header.len() - 2) as u8;
    header.push(0x1f);
    out.splice(start..start, header);
}
