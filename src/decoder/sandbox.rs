//! SandboxDecoder: a Lua decoder, one state per ingest core, as a synchronous struct.
//!
//! Heka's decoder semantics: every `inject_message` produces one message; headers the
//! script leaves unset (Timestamp, Type, Logger, Hostname, Severity, Pid) are copied from the
//! record being decoded and the Uuid is new; `write_message` mutates the record; returning 0
//! without injecting passes the (possibly mutated) record on. A negative return is a decode
//! failure: what was injected during the call is discarded. A positive return or an error
//! terminates the decoder (Heka stopped the whole daemon; gyges stops only this plugin).

use crate::message::MessageView;
use crate::sandbox::{
    push_record, terminated_message, CallStatus, HostInfo, Sandbox, SandboxConfig, SandboxError,
    SandboxKind, SandboxStats, Terminated,
};

/// What one record decoded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Pass the record on unchanged; nothing was appended.
    Original,
    /// This many messages were appended to the output as records (a mutated original
    /// counts as one).
    Messages(u32),
    /// The script reported a failure (its message is in [`SandboxDecoder::last_error`]);
    /// nothing was appended.
    Failed,
}

/// A Lua decoder.
#[derive(Debug)]
pub struct SandboxDecoder {
    sandbox: Sandbox,
}

impl SandboxDecoder {
    /// Loads the script; see [`Sandbox::new`].
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn new(
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Result<SandboxDecoder, SandboxError> {
        Ok(SandboxDecoder { sandbox: Sandbox::new(SandboxKind::Decoder, name, config, host_info)? })
    }

    /// Decodes one record, appending the resulting messages to `out` as records
    /// ([`crate::sandbox::injected_records`]).
    ///
    /// # Errors
    /// [`Terminated`] when the decoder stopped (now or earlier); `out` is left as it was.
    pub fn decode(&mut self, record: &MessageView<'_>, out: &mut Vec<u8>) -> Result<Decoded, Terminated> {
        let start = out.len();
        let injected_before = self.sandbox.stats().inject_message_count;
        let status = match self.sandbox.process_message(record, out) {
            Ok(status) => status,
            Err(terminated) => {
                out.truncate(start);
                return Err(terminated);
            }
        };
        let injected = (self.sandbox.stats().inject_message_count - injected_before) as u32;
        match status {
            CallStatus::Failed | CallStatus::Skipped => {
                out.truncate(start);
                Ok(Decoded::Failed)
            }
            CallStatus::Ok if injected > 0 => Ok(Decoded::Messages(injected)),
            CallStatus::Ok if self.sandbox.host().mutated() => {
                self.sandbox.host().with_message(|message| push_record(out, message));
                Ok(Decoded::Messages(1))
            }
            CallStatus::Ok => Ok(Decoded::Original),
        }
    }

    /// Saves the state if `preserve_data` (call at clean shutdown).
    ///
    /// # Errors
    /// [`SandboxError::Preservation`].
    pub fn shutdown(&mut self) -> Result<(), SandboxError> {
        self.sandbox.preserve()
    }

    /// The counters.
    pub fn stats(&self) -> &SandboxStats {
        self.sandbox.stats()
    }

    /// The script's last error string.
    pub fn last_error(&self) -> &str {
        self.sandbox.last_error()
    }

    /// Heka's `heka.sandbox-terminated` message for this decoder, once terminated.
    pub fn termination_message(&self) -> Option<Vec<u8>> {
        let reason = self.sandbox.termination_reason()?;
        Some(terminated_message(self.sandbox.name(), reason, self.sandbox.stats()))
    }
}
