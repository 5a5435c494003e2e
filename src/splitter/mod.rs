//! TEMPORARY: replaced by the stages branch at merge. Token splitting and Heka framing without
//! resync subtleties, enough to run the runtime end to end.

use crate::config::plan::SplitterPlan;

#[derive(Debug, Default, Clone, Copy)]
pub struct SplitterStats {
    pub discarded_bytes: u64,
    pub oversize_records: u64,
    pub auth_failures: u64,
}

pub struct Splitter {
    plan: SplitterPlan,
    max: usize,
    pub stats: SplitterStats,
}

impl Splitter {
    pub fn from_plan(
        plan: &SplitterPlan,
        max_message_size: usize,
        _signers: &[(String, Vec<u8>)],
    ) -> Splitter {
        Splitter {
            plan: plan.clone(),
            max: max_message_size,
            stats: SplitterStats::default(),
        }
    }
}

pub struct StreamBuffer {
    bytes: Vec<u8>,
    start: usize,
    end: usize,
}

impl StreamBuffer {
    pub fn new(capacity: usize) -> StreamBuffer {
        StreamBuffer {
            bytes: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }
    pub fn spare_mut(&mut self) -> &mut [u8] {
        if self.start > 0 {
            self.bytes.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.bytes[self.end..]
    }
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
    pub fn take_rest(&mut self) -> Option<&[u8]> {
        if self.start == self.end {
            return None;
        }
        let start = self.start;
        self.start = self.end;
        Some(&self.bytes[start..self.end])
    }
    pub fn commit(&mut self, count: usize) {
        self.end += count;
    }
    pub fn next_record(&mut self, splitter: &mut Splitter) -> Option<&[u8]> {
        let window = &self.bytes[self.start..self.end];
        match splitter.plan {
            SplitterPlan::Token { delimiter, .. } => {
                let at = memchr::memchr(delimiter, window)?;
                let start = self.start;
                self.start += at + 1;
                Some(&self.bytes[start..start + at + 1])
            }
            SplitterPlan::HekaFrame { .. } => {
                if window.len() < 3 || window[0] != 0x1e {
                    return None;
                }
                let header_len = usize::from(window[1]);
                if window.len() < 3 + header_len {
                    return None;
                }
                let mut pos = 3;
                let _ = crate::message::wire::read_key(&window[2..], &mut pos);
                let mut at = 1;
                let length = crate::message::wire::read_varint(&window[2..], &mut at)? as usize;
                if length > splitter.max {
                    return None;
                }
                let total = 3 + header_len + length;
                if window.len() < total {
                    return None;
                }
                let start = self.start + 3 + header_len;
                self.start += total;
                Some(&self.bytes[start..start + length])
            }
            SplitterPlan::Null => {
                if window.is_empty() {
                    return None;
                }
                let start = self.start;
                self.start = self.end;
                Some(&self.bytes[start..self.end])
            }
        }
    }
}
