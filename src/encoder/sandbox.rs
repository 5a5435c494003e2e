//! SandboxEncoder: a Lua encoder, one state per core, as a synchronous struct.
//!
//! Heka's encoder semantics: the output is what the script last passed to `inject_payload`
//! (the payload text itself) or `inject_message` (the message's protobuf bytes); returning 0
//! without injecting outputs the message's protobuf (after any `write_message`); returning
//! -2 outputs nothing; another negative value is a counted failure; a positive value or an
//! error terminates the encoder.

use crate::message::MessageView;
use crate::sandbox::{
    terminated_message, CallStatus, HostInfo, Sandbox, SandboxConfig, SandboxError, SandboxKind,
    SandboxStats, Terminated,
};

/// What one message encoded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoded {
    /// `out` holds the bytes to write.
    Bytes,
    /// Nothing to write (-2).
    Skipped,
    /// A failure, counted; `out` is empty.
    Failed,
}

/// A Lua encoder.
#[derive(Debug)]
pub struct SandboxEncoder {
    sandbox: Sandbox,
}

impl SandboxEncoder {
    /// Loads the script; see [`Sandbox::new`].
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn new(
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Result<SandboxEncoder, SandboxError> {
        Ok(SandboxEncoder { sandbox: Sandbox::new(SandboxKind::Encoder, name, config, host_info)? })
    }

    /// Encodes one message into `out` (cleared first).
    ///
    /// # Errors
    /// [`Terminated`] when the encoder stopped (now or earlier); `out` is then empty.
    pub fn encode(&mut self, record: &MessageView<'_>, out: &mut Vec<u8>) -> Result<Encoded, Terminated> {
        out.clear();
        let status = match self.sandbox.process_message(record, out) {
            Ok(status) => status,
            Err(terminated) => {
                out.clear();
                return Err(terminated);
            }
        };
        match status {
            CallStatus::Ok if self.sandbox.host().encoder_output() => Ok(Encoded::Bytes),
            CallStatus::Ok => {
                out.clear();
                self.sandbox.host().with_message(|message| out.extend_from_slice(message));
                Ok(Encoded::Bytes)
            }
            CallStatus::Skipped => {
                out.clear();
                Ok(Encoded::Skipped)
            }
            CallStatus::Failed => {
                out.clear();
                Ok(Encoded::Failed)
            }
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

    /// Heka's `heka.sandbox-terminated` message for this encoder, once terminated.
    pub fn termination_message(&self) -> Option<Vec<u8>> {
        let reason = self.sandbox.termination_reason()?;
        Some(terminated_message(self.sandbox.name(), reason, self.sandbox.stats()))
    }
}
