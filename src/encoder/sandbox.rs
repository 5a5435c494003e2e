//! SandboxEncoder: a Lua encoder, one state per core, as a synchronous struct.
//!
//! Heka's encoder semantics: the output is what the script last passed to `inject_payload`
//! (the payload text itself) or `inject_message` (the message's protobuf bytes); returning 0
//! without injecting outputs the message's protobuf (after any `write_message`); returning
//! -2 outputs nothing; another negative value is a counted failure; a positive value or an
//! error terminates the encoder.

use crate::message::MessageView;
use crate::sandbox::{
    CallStatus, HostInfo, Sandbox, SandboxConfig, SandboxError, SandboxKind, SandboxStats,
    Terminated,
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

/// A Lua encoder, one per core. With `preserve_data`, its state is restored from this core's
/// own file at start and saved there when it is dropped at a clean stop (the runtime drops
/// each core's encoders once the core has stopped), or earlier by [`SandboxEncoder::shutdown`].
#[derive(Debug)]
pub struct SandboxEncoder {
    sandbox: Sandbox,
    /// The state was saved by [`SandboxEncoder::shutdown`]: dropping it saves nothing more.
    saved: bool,
}

impl SandboxEncoder {
    /// Loads the script off any core (tests, tools); see [`Sandbox::new`]. Preserved data is
    /// the plugin's one file, `<name>.data`.
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn new(
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Result<SandboxEncoder, SandboxError> {
        Self::on_core(name, config, host_info, None)
    }

    /// Loads the script for the core in row `core_row`; preserved data is that core's
    /// (`<name>.<core row>.data`, see `docs/sandbox.md`).
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn on_core(
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
        core_row: Option<usize>,
    ) -> Result<SandboxEncoder, SandboxError> {
        let sandbox =
            Sandbox::new_on_core(SandboxKind::Encoder, name, config, host_info, core_row)?;
        Ok(SandboxEncoder {
            sandbox,
            saved: false,
        })
    }

    /// Encodes one message into `out` (cleared first).
    ///
    /// # Errors
    /// [`Terminated`] when the encoder stopped (now or earlier); `out` is then empty.
    pub fn encode(
        &mut self,
        record: &MessageView<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Encoded, Terminated> {
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
                self.sandbox
                    .host()
                    .with_message(|message| out.extend_from_slice(message));
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

    /// Saves the state if `preserve_data` (at clean shutdown; dropping does it otherwise).
    ///
    /// # Errors
    /// [`SandboxError::Preservation`].
    pub fn shutdown(&mut self) -> Result<(), SandboxError> {
        self.saved = true;
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
        self.sandbox.termination_message()
    }
}

impl Drop for SandboxEncoder {
    /// Saves the state at a clean stop. Not while a panic unwinds the core, nor on a core
    /// where a plugin task panicked: that state is not trusted, and the last clean save stays.
    fn drop(&mut self) {
        let panicked = std::thread::panicking() || crate::runtime::failure::core_panicked();
        if self.saved || panicked {
            return;
        }
        if let Err(error) = self.sandbox.preserve() {
            tracing::error!(encoder = self.sandbox.name(), %error, "cannot save preserved data");
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::proto::Message;
    use crate::message::ProtoView;
    use crate::sandbox::tests::{sample, Harness};

    fn encode(script: &str, bytes: &[u8]) -> (Result<Encoded, Terminated>, Vec<u8>) {
        let harness = Harness::new();
        let config = harness.config("encoder", script);
        let mut encoder =
            SandboxEncoder::new("Enc", &config, &harness.host).expect("encoder loads");
        let mut out = b"stale".to_vec();
        let result = encoder.encode(&MessageView::Proto(ProtoView::new(bytes)), &mut out);
        (result, out)
    }

    #[test]
    fn the_last_injection_is_the_output() {
        let script = r#"
            function process_message()
                inject_payload("txt", "", "first")
                add_to_payload("second ", read_message("Fields[status]"))
                inject_payload()
                return 0
            end
        "#;
        assert_eq!(
            encode(script, &sample()),
            (Ok(Encoded::Bytes), b"second 200".to_vec())
        );
        let script = r#"
            function process_message()
                inject_message({Type = "t", Payload = read_message("Payload"), Timestamp = 1})
                return 0
            end
        "#;
        let (result, out) = encode(script, &sample());
        assert_eq!(result, Ok(Encoded::Bytes));
        let message = Message::decode(&out[..]).unwrap();
        assert_eq!(
            message.r#type.as_deref(),
            Some("t"),
            "encoders are not stamped like filters"
        );
        assert_eq!(message.payload.as_deref(), Some("GET / 200"));
    }

    #[test]
    fn no_injection_outputs_the_possibly_rewritten_message() {
        let (result, out) = encode("function process_message() return 0 end", &sample());
        assert_eq!((result, out), (Ok(Encoded::Bytes), sample()));
        let script = "function process_message() write_message('Payload', 'changed') return 0 end";
        let (result, out) = encode(script, &sample());
        assert_eq!(result, Ok(Encoded::Bytes));
        assert_eq!(
            Message::decode(&out[..]).unwrap().payload.as_deref(),
            Some("changed")
        );
    }

    #[test]
    fn skip_failure_and_termination() {
        let (result, out) = encode("function process_message() return -2 end", &sample());
        assert_eq!((result, out.is_empty()), (Ok(Encoded::Skipped), true));
        let (result, out) = encode("function process_message() return -1 end", &sample());
        assert_eq!((result, out.is_empty()), (Ok(Encoded::Failed), true));
        let (result, out) = encode("function process_message() error('x') end", &sample());
        assert!(result.is_err() && out.is_empty());
    }
}

/// The SandboxEncoder kind: a section's name and its sandbox config.
#[derive(Debug, Clone)]
pub struct SandboxEncoderKind {
    name: String,
    config: Box<SandboxConfig>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<std::sync::Arc<dyn super::EncoderKind>> =
    crate::component::Registration {
        type_names: &["SandboxEncoder"],
        plan: |section, context| {
            let config = crate::sandbox::plan::sandbox_config(section, &[])?;
            let kind = crate::sandbox::SandboxKind::Encoder;
            crate::sandbox::plan::check_script(section, kind, &config, context.global)?;
            Ok(std::sync::Arc::new(SandboxEncoderKind {
                name: section.name.clone(),
                config: Box::new(config),
            }))
        },
    };

impl super::EncoderKind for SandboxEncoderKind {
    fn type_name(&self) -> &'static str {
        "SandboxEncoder"
    }

    fn sandboxed(&self) -> bool {
        true
    }

    fn build(
        &self,
        global: &crate::config::plan::GlobalPlan,
        core_row: Option<usize>,
    ) -> Result<Box<dyn super::Encode>, String> {
        let host = crate::sandbox::plan::host_info(global);
        let encoder = SandboxEncoder::on_core(&self.name, &self.config, &host, core_row)
            .map_err(|error| error.to_string())?;
        Ok(Box::new(SandboxEncode {
            encoder,
            scratch: Vec::new(),
        }))
    }
}

/// A Lua encoder on one core, and the scratch buffer it writes into.
struct SandboxEncode {
    encoder: SandboxEncoder,
    scratch: Vec<u8>,
}

impl super::Encode for SandboxEncode {
    /// Runs the script and appends its bytes (framed if asked). A terminated encoder fails
    /// every message from then on; the caller counts the failures.
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        framing: super::Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, super::EncodeFailed> {
        match self.encoder.encode(message, &mut self.scratch) {
            Ok(Encoded::Bytes) if matches!(framing, super::Framing::Heka(_)) => {
                let super::Framing::Heka(signer) = framing else {
                    return Err(super::EncodeFailed);
                };
                let before = out.len();
                crate::message::framing::write_frame(out, &self.scratch, signer)
                    .map_err(|_| super::EncodeFailed)?;
                Ok(out.len() - before)
            }
            Ok(Encoded::Bytes) => {
                out.extend_from_slice(&self.scratch);
                Ok(self.scratch.len())
            }
            Ok(Encoded::Skipped) => Ok(0),
            Ok(Encoded::Failed) | Err(_) => Err(super::EncodeFailed),
        }
    }

    fn sandbox_usage(&self) -> Option<crate::filter::SandboxUsage> {
        Some(crate::filter::sandbox::usage_of(self.encoder.stats()))
    }
}
