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
    push_record, CallStatus, HostInfo, Sandbox, SandboxConfig, SandboxError, SandboxKind,
    SandboxStats, Terminated,
};
use crate::telemetry::{Metric, SANDBOX_GAUGE_CALLS};

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

/// A Lua decoder, one per core. With `preserve_data`, its state is restored from this core's
/// own file at start and saved there when it is dropped at a clean stop (the runtime drops
/// each core's decoders once the core has stopped), or earlier by [`SandboxDecoder::shutdown`].
#[derive(Debug)]
pub struct SandboxDecoder {
    sandbox: Sandbox,
    /// The state was saved by [`SandboxDecoder::shutdown`]: dropping it saves nothing more.
    saved: bool,
}

impl SandboxDecoder {
    /// Loads the script off any core (tests, tools); see [`Sandbox::new`]. Preserved data is
    /// the plugin's one file, `<name>.data`.
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn new(
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Result<SandboxDecoder, SandboxError> {
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
    ) -> Result<SandboxDecoder, SandboxError> {
        let sandbox =
            Sandbox::new_on_core(SandboxKind::Decoder, name, config, host_info, core_row)?;
        Ok(SandboxDecoder {
            sandbox,
            saved: false,
        })
    }

    /// Decodes one record, appending the resulting messages to `out` as records
    /// ([`crate::sandbox::injected_records`]).
    ///
    /// # Errors
    /// [`Terminated`] when the decoder stopped (now or earlier); `out` is left as it was.
    pub fn decode(
        &mut self,
        record: &MessageView<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Decoded, Terminated> {
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
                self.sandbox
                    .host()
                    .with_message(|message| push_record(out, message));
                Ok(Decoded::Messages(1))
            }
            CallStatus::Ok => Ok(Decoded::Original),
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

    /// Heka's `heka.sandbox-terminated` message for this decoder, once terminated.
    pub fn termination_message(&self) -> Option<Vec<u8>> {
        self.sandbox.termination_message()
    }
}

impl Drop for SandboxDecoder {
    /// Saves the state at a clean stop. Not while a panic unwinds the core, nor on a core
    /// where a plugin task panicked: that state is not trusted, and the last clean save stays.
    fn drop(&mut self) {
        let panicked = std::thread::panicking() || crate::runtime::failure::core_panicked();
        if self.saved || panicked {
            return;
        }
        if let Err(error) = self.sandbox.preserve() {
            tracing::error!(decoder = self.sandbox.name(), %error, "cannot save preserved data");
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::proto::Message;
    use crate::message::ProtoView;
    use crate::sandbox::injected_records;
    use crate::sandbox::tests::{sample, Harness};

    fn decoder(harness: &Harness, script: &str) -> SandboxDecoder {
        let config = harness.config("decoder", script);
        SandboxDecoder::new("Dec", &config, &harness.host).expect("decoder loads")
    }

    fn decode(
        decoder: &mut SandboxDecoder,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Decoded, Terminated> {
        decoder.decode(&MessageView::Proto(ProtoView::new(bytes)), out)
    }

    #[test]
    fn unset_headers_come_from_the_record() {
        let harness = Harness::new();
        let mut decoder = decoder(
            &harness,
            r#"
            function process_message()
                inject_message({Payload = "one"})
                inject_message({Payload = "two", Type = "custom", Severity = 1})
                return 0
            end
            "#,
        );
        let mut out = Vec::new();
        assert_eq!(
            decode(&mut decoder, &sample(), &mut out),
            Ok(Decoded::Messages(2))
        );
        let messages: Vec<Message> = injected_records(&out)
            .map(|r| Message::decode(r).unwrap())
            .collect();
        let original = Message::decode(&sample()[..]).unwrap();
        assert_eq!(messages[0].timestamp, original.timestamp);
        assert_eq!(messages[0].r#type, original.r#type);
        assert_eq!(messages[0].logger, original.logger);
        assert_eq!(messages[0].hostname, original.hostname);
        assert_eq!(messages[0].severity, original.severity);
        assert_eq!(messages[0].pid, original.pid);
        assert_ne!(messages[0].uuid, original.uuid);
        assert_eq!(messages[0].payload.as_deref(), Some("one"));
        assert_eq!(
            messages[1].r#type.as_deref(),
            Some("custom"),
            "set headers win"
        );
        assert_eq!(messages[1].severity, Some(1));
    }

    #[test]
    fn write_message_mutates_the_record_that_passes_on() {
        let harness = Harness::new();
        let mut decoder = decoder(
            &harness,
            r#"
            function process_message()
                local p = read_message("Payload")
                if p == "keep" then return 0 end
                write_message("Type", "rewritten")
                write_message("Severity", "2")
                write_message("Uuid", "00000000-0000-4000-8000-000000000001")
                write_message("Fields[status]", 404)
                write_message("Fields[status]", 201, "", 0, 1)
                write_message("Fields[new]", "value", "rep")
                write_message("Fields[tags]", nil)
                write_message("Fields[ok]", nil, "", 0, 0)
                assert(read_message("Type") == "rewritten", "reads see writes")
                assert(read_message("Fields[status]", 0, 1) == 201)
                assert(not pcall(write_message, "Fields[status]", 1, "", 5))
                assert(not pcall(write_message, "Bogus", 1))
                return 0
            end
            "#,
        );
        let mut out = Vec::new();
        let keep = Message {
            uuid: vec![1; 16],
            timestamp: 1,
            payload: Some("keep".into()),
            ..Message::default()
        };
        assert_eq!(
            decode(&mut decoder, &keep.encode_to_vec(), &mut out),
            Ok(Decoded::Original)
        );
        assert!(out.is_empty());
        assert_eq!(
            decode(&mut decoder, &sample(), &mut out),
            Ok(Decoded::Messages(1))
        );
        let message = Message::decode(injected_records(&out).next().unwrap()).unwrap();
        assert_eq!(message.r#type.as_deref(), Some("rewritten"));
        assert_eq!(message.severity, Some(2));
        assert_eq!(message.uuid[15], 1);
        let field = |name: &str| {
            message
                .fields
                .iter()
                .find(|field| field.name == name)
                .cloned()
        };
        assert_eq!(
            field("status").unwrap().value_integer,
            vec![404, 201],
            "integer fields stay integer"
        );
        assert_eq!(
            field("new").unwrap().value_string,
            vec!["value".to_string()]
        );
        assert_eq!(field("new").unwrap().representation.as_deref(), Some("rep"));
        let tags: Vec<_> = message
            .fields
            .iter()
            .filter(|field| field.name == "tags")
            .collect();
        assert_eq!(tags.len(), 1, "the first tags field was deleted");
        assert_eq!(tags[0].value_string, vec!["c".to_string()]);
        assert!(
            field("ok").unwrap().value_bool.is_empty(),
            "one value deleted"
        );
    }

    #[test]
    fn failures_discard_injections_and_fatal_codes_terminate() {
        let harness = Harness::new();
        let mut decoder = decoder(
            &harness,
            r#"
            function process_message()
                inject_message({Payload = "partial"})
                if read_message("Payload") == "fatal" then return 3, "corrupt state" end
                return -1, "bad line"
            end
            "#,
        );
        let mut out = b"earlier".to_vec();
        assert_eq!(
            decode(&mut decoder, &sample(), &mut out),
            Ok(Decoded::Failed)
        );
        assert_eq!(out, b"earlier", "the partial injection is discarded");
        let fatal = Message {
            uuid: vec![1; 16],
            timestamp: 1,
            payload: Some("fatal".into()),
            ..Message::default()
        };
        let terminated = decode(&mut decoder, &fatal.encode_to_vec(), &mut out).unwrap_err();
        assert_eq!(terminated.reason, "corrupt state");
        assert_eq!(out, b"earlier");
        assert!(decoder.termination_message().is_some());
    }
}

/// The SandboxDecoder kind: a section's name and its sandbox config.
#[derive(Debug, Clone)]
pub struct SandboxDecoderKind {
    name: String,
    config: Box<SandboxConfig>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<std::sync::Arc<dyn super::DecoderKind>> =
    crate::component::Registration {
        type_names: &["SandboxDecoder"],
        plan: |section, context| {
            let config = crate::sandbox::plan::sandbox_config(section, &[])?;
            let kind = crate::sandbox::SandboxKind::Decoder;
            crate::sandbox::plan::check_script(section, kind, &config, context.global)?;
            Ok(std::sync::Arc::new(SandboxDecoderKind {
                name: section.name.clone(),
                config: Box::new(config),
            }))
        },
    };

impl super::DecoderKind for SandboxDecoderKind {
    fn type_name(&self) -> &'static str {
        "SandboxDecoder"
    }

    fn sandboxed(&self) -> bool {
        true
    }

    fn build(&self, build: &super::DecoderBuild<'_>) -> Result<Box<dyn super::Decoder>, String> {
        let host = crate::sandbox::plan::host_info(build.global);
        let decoder = SandboxDecoder::on_core(&self.name, &self.config, &host, Some(build.row))
            .map_err(|error| error.to_string())?;
        Ok(Box::new(SandboxDecode {
            decoder,
            scratch: Vec::new(),
            calls: 0,
            memory_published: 0,
        }))
    }
}

/// A Lua decoder on one core, and the buffer its injected messages land in.
struct SandboxDecode {
    decoder: SandboxDecoder,
    scratch: Vec<u8>,
    /// Calls so far, wrapping: the gauges are published every [`SANDBOX_GAUGE_CALLS`].
    calls: u32,
    /// The memory this state last added to its input's gauge.
    memory_published: u64,
}

impl SandboxDecode {
    /// Publishes the state's use on the input's row of this core, after the first call and
    /// every [`SANDBOX_GAUGE_CALLS`]-th one. The row may show several states (the subs of a
    /// MultiDecoder): its memory is their sum (each adds its change since it last
    /// published), its maxima the largest of theirs.
    fn publish_usage(&mut self, context: &super::DecodeContext<'_>) {
        let due = self.calls & (SANDBOX_GAUGE_CALLS - 1) == 0;
        self.calls = self.calls.wrapping_add(1);
        if !due {
            return;
        }
        let usage = crate::filter::sandbox::usage_of(self.decoder.stats());
        let (telemetry, core, plugin) = (context.telemetry, context.core, context.plugin);
        let change = usage.memory_bytes.wrapping_sub(self.memory_published);
        telemetry.add(core, plugin, Metric::SandboxMemory, change);
        self.memory_published = usage.memory_bytes;
        let maxima = [
            (Metric::SandboxInstructionsMax, usage.instructions_max),
            (Metric::SandboxOutputMax, usage.output_bytes_max),
        ];
        for (metric, value) in maxima {
            if value > telemetry.get(core, plugin, metric) {
                telemetry.set(core, plugin, metric, value);
            }
        }
    }
}

impl super::Decoder for SandboxDecode {
    /// Runs the script on the message the record makes without a decoder, and routes what
    /// it injects (or the original, when it asks for that).
    fn decode(
        &mut self,
        record: &[u8],
        context: &mut super::DecodeContext<'_>,
    ) -> Result<(), &'static str> {
        use crate::message::MessageView;
        self.scratch.clear();
        let line = MessageView::Line(context.line(record));
        let decoded = self.decoder.decode(&line, &mut self.scratch);
        self.publish_usage(context);
        match decoded {
            Ok(Decoded::Original) => {
                context.router.route(&line);
                Ok(())
            }
            Ok(Decoded::Messages(_)) => {
                for message in crate::sandbox::injected_records(&self.scratch) {
                    match super::protobuf::decode(message) {
                        Ok(injected) => context.router.route(&MessageView::Proto(injected)),
                        Err(_) => context.telemetry.add(
                            context.core,
                            context.plugin,
                            crate::telemetry::Metric::DecodeFailures,
                            1,
                        ),
                    }
                }
                Ok(())
            }
            Ok(Decoded::Failed) => Err("sandbox_failed"),
            Err(_) => Err("sandbox_terminated"),
        }
    }

    /// Runs the script on `message`; what it injects (or `message`, when it asks for the
    /// original) is appended to `out`.
    fn decode_message(
        &mut self,
        message: &crate::message::MessageView<'_>,
        context: &mut super::DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let decoded = self.decoder.decode(message, out);
        self.publish_usage(context);
        match decoded {
            Ok(Decoded::Original) => {
                super::push_message(out, message);
                Ok(())
            }
            Ok(Decoded::Messages(_)) => Ok(()),
            Ok(Decoded::Failed) => Err("sandbox_failed"),
            Err(_) => Err("sandbox_terminated"),
        }
    }
}
