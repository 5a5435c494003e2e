//! MultiDecoder: several decoders on one record, in the order `subs` names them.
//!
//! - `cascade_strategy = "first-wins"` (the default): each sub in turn decodes the record
//!   until one succeeds; that sub routes what it made. None succeeding is a decode failure.
//! - `cascade_strategy = "all"`: the first sub decodes the record, each next sub decodes each
//!   message the one before it made ([`Decoder::decode_message`]); a message a sub fails on
//!   passes on unchanged. What the last sub made is routed, if any sub succeeded; none
//!   succeeding is a decode failure.
//!
//! A sub is any decoder kind, by section name (or type name, with its defaults), MultiDecoder
//! included up to `MULTI_DECODER_DEPTH_MAX` levels, never in a cycle. Per core: each sub is
//! built on the core, and the chain's two buffers are reused record after record.

use std::sync::Arc;

use serde::Deserialize;

use super::{DecodeContext, Decoder, DecoderBuild, DecoderKind, KINDS};
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::filter::injected_records;
use crate::limits::{
    MULTI_DECODER_CHAIN_BYTES_MAX, MULTI_DECODER_DEPTH_MAX, MULTI_DECODER_SUBS_MAX,
};
use crate::message::{MessageView, ProtoView};

/// `MultiDecoder` as configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMultiDecoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The decoders, by section name, in the order they are tried or chained.
    #[serde(default)]
    subs: Vec<String>,
    /// `first-wins` (the default) or `all`.
    cascade_strategy: Option<String>,
    /// Log each sub's failure (at debug level).
    #[serde(default)]
    log_sub_errors: bool,
}

/// How the subs are applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cascade {
    /// The first sub that succeeds decodes the record.
    FirstWins,
    /// Every sub decodes what the one before it made.
    All,
}

/// The MultiDecoder kind: its subs' plans.
#[derive(Debug, Clone)]
pub struct MultiDecoderKind {
    name: Arc<str>,
    subs: Vec<(Arc<str>, Arc<dyn DecoderKind>)>,
    cascade: Cascade,
    log_sub_errors: bool,
}

impl MultiDecoderKind {
    /// How the subs are applied.
    pub fn cascade(&self) -> Cascade {
        self.cascade
    }

    /// The subs' names and kinds, in order.
    pub fn subs(&self) -> impl Iterator<Item = (&str, &'static str)> + '_ {
        self.subs
            .iter()
            .map(|(name, kind)| (&name[..], kind.type_name()))
    }
}

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn DecoderKind>> = Registration {
    type_names: &["MultiDecoder"],
    plan: plan_multi,
};

fn plan_multi(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<Arc<dyn DecoderKind>, ConfigError> {
    let raw = section.parse::<RawMultiDecoder>()?;
    let cascade = match raw.cascade_strategy.as_deref() {
        None | Some("first-wins") => Cascade::FirstWins,
        Some("all") => Cascade::All,
        Some(other) => {
            let message = format!("`{other}`: the strategies are `first-wins` and `all`");
            return Err(section.error(Some("cascade_strategy"), message));
        }
    };
    if raw.subs.is_empty() || raw.subs.len() > MULTI_DECODER_SUBS_MAX {
        let message = format!("a MultiDecoder names 1 to {MULTI_DECODER_SUBS_MAX} subs");
        return Err(section.error(Some("subs"), message));
    }
    check_nesting(section, context, &mut vec![section.name.clone()])?;
    let mut subs = Vec::with_capacity(raw.subs.len());
    for name in &raw.subs {
        let (sub, synthetic) = match context.sections.get(name.as_str()) {
            Some(sub) => ((*sub).clone(), false),
            None => (Section::synthetic(section, name), true),
        };
        let type_name = if synthetic {
            name.as_str()
        } else {
            sub.plugin_type()?
        };
        let Some(registration) = Registration::find(KINDS, type_name) else {
            return Err(section.error(Some("subs"), format!("no decoder named `{name}`")));
        };
        let kind = (registration.plan)(&sub, context).map_err(|error| {
            if synthetic {
                section.error(
                    Some("subs"),
                    format!("`{name}` needs its own section: {error}"),
                )
            } else {
                error
            }
        })?;
        subs.push((Arc::from(name.as_str()), kind));
    }
    Ok(Arc::new(MultiDecoderKind {
        name: section.name.as_str().into(),
        subs,
        cascade,
        log_sub_errors: raw.log_sub_errors,
    }))
}

/// Refuses a MultiDecoder that names itself through its subs, or nests deeper than
/// [`MULTI_DECODER_DEPTH_MAX`]; `path` is the chain of MultiDecoders from the outermost.
fn check_nesting(
    section: &Section,
    context: &PlanContext<'_>,
    path: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let subs = section.table.get("subs").and_then(toml::Value::as_array);
    for name in subs.into_iter().flatten().filter_map(toml::Value::as_str) {
        let Some(sub) = context.sections.get(name) else {
            continue;
        };
        let is_multi = sub.table.get("type").and_then(toml::Value::as_str) == Some("MultiDecoder");
        if !is_multi {
            continue;
        }
        let root = &path[0];
        let origin = context
            .sections
            .get(root.as_str())
            .copied()
            .unwrap_or(section);
        if path.iter().any(|seen| seen == name) {
            let message = format!("`{name}` contains itself: {} → {name}", path.join(" → "));
            return Err(origin.error(Some("subs"), message));
        }
        if path.len() >= MULTI_DECODER_DEPTH_MAX {
            let max = MULTI_DECODER_DEPTH_MAX;
            let message = format!(
                "MultiDecoders nest at most {max} deep: {} → {name}",
                path.join(" → ")
            );
            return Err(origin.error(Some("subs"), message));
        }
        path.push(name.to_string());
        check_nesting(sub, context, path)?;
        path.pop();
    }
    Ok(())
}

impl DecoderKind for MultiDecoderKind {
    fn type_name(&self) -> &'static str {
        "MultiDecoder"
    }

    fn sandboxed(&self) -> bool {
        self.subs.iter().any(|(_, kind)| kind.sandboxed())
    }

    fn build(&self, build: &DecoderBuild<'_>) -> Result<Box<dyn Decoder>, String> {
        let mut subs = Vec::with_capacity(self.subs.len());
        for (name, kind) in &self.subs {
            let decoder = kind
                .build(build)
                .map_err(|error| format!("sub `{name}`: {error}"))?;
            subs.push((name.clone(), decoder));
        }
        Ok(Box::new(MultiDecoder {
            name: self.name.clone(),
            subs,
            cascade: self.cascade,
            log_sub_errors: self.log_sub_errors,
            current: Vec::new(),
            next: Vec::new(),
        }))
    }
}

/// One core's MultiDecoder: its subs, and the chain's two buffers.
struct MultiDecoder {
    name: Arc<str>,
    subs: Vec<(Arc<str>, Box<dyn Decoder>)>,
    cascade: Cascade,
    log_sub_errors: bool,
    current: Vec<u8>,
    next: Vec<u8>,
}

impl MultiDecoder {
    fn sub_failed(&self, sub: &str, code: &'static str) {
        if self.log_sub_errors {
            tracing::debug!(decoder = %self.name, sub, code, "sub decoder failed");
        }
    }

    /// Runs the `all` chain on `message`; what the last sub made is left in `self.current`.
    ///
    /// # Errors
    /// No sub succeeded, or the chain outgrew [`MULTI_DECODER_CHAIN_BYTES_MAX`].
    fn chain(
        &mut self,
        message: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
    ) -> Result<(), &'static str> {
        let mut current = std::mem::take(&mut self.current);
        let mut next = std::mem::take(&mut self.next);
        current.clear();
        let mut succeeded = false;
        let mut outcome = Ok(());
        for index in 0..self.subs.len() {
            next.clear();
            if index == 0 {
                succeeded |= self.step(index, message, context, &mut next);
            } else {
                for record in injected_records(&current) {
                    let view = MessageView::Proto(ProtoView::new(record));
                    succeeded |= self.step(index, &view, context, &mut next);
                }
            }
            std::mem::swap(&mut current, &mut next);
            if current.len() > MULTI_DECODER_CHAIN_BYTES_MAX {
                outcome = Err("chain_too_large");
                break;
            }
        }
        if outcome.is_ok() && !succeeded {
            outcome = Err("no_sub_decoded");
        }
        self.current = current;
        self.next = next;
        outcome
    }

    /// Sub `index` decodes `message` into `out`; a failure passes `message` on unchanged.
    /// Whether the sub succeeded.
    fn step(
        &mut self,
        index: usize,
        message: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> bool {
        let (name, sub) = &mut self.subs[index];
        match sub.decode_message(message, context, out) {
            Ok(()) => true,
            Err(code) => {
                let name = name.clone();
                self.sub_failed(&name, code);
                super::push_message(out, message);
                false
            }
        }
    }
}

impl Decoder for MultiDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        context: &mut DecodeContext<'_>,
    ) -> Result<(), &'static str> {
        match self.cascade {
            Cascade::FirstWins => {
                for index in 0..self.subs.len() {
                    match self.subs[index].1.decode(record, context) {
                        Ok(()) => return Ok(()),
                        Err(code) => self.sub_failed(&self.subs[index].0, code),
                    }
                }
                Err("no_sub_decoded")
            }
            Cascade::All => {
                let line = MessageView::Line(context.line(record));
                self.chain(&line, context)?;
                super::route_records(&self.current, context);
                Ok(())
            }
        }
    }

    fn decode_message(
        &mut self,
        message: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        match self.cascade {
            Cascade::FirstWins => {
                for index in 0..self.subs.len() {
                    let start = out.len();
                    match self.subs[index].1.decode_message(message, context, out) {
                        Ok(()) => return Ok(()),
                        Err(code) => {
                            out.truncate(start);
                            self.sub_failed(&self.subs[index].0, code);
                        }
                    }
                }
                Err("no_sub_decoded")
            }
            Cascade::All => {
                self.chain(message, context)?;
                out.extend_from_slice(&self.current);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use crate::decoder::testing::Harness;
    use crate::message::proto::Message;

    const SUBS: &str = "[num]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '^(?P<n>\\d+)$'\n\
         [num.message_fields]\nType = \"number\"\nn = \"%n%\"\n\
         [word]\ntype = \"PayloadRegexDecoder\"\nmatch_regex = '^(?P<w>[a-z]+)$'\n\
         [word.message_fields]\nType = \"word\"\n\
         [tag]\ntype = \"ScribbleDecoder\"\n[tag.message_fields]\nenv = \"prod\"\n";

    fn decode(multi: &str, line: &[u8]) -> Result<Vec<Message>, &'static str> {
        let kind = Harness::plan(&format!("{multi}{SUBS}"), "multi").expect("plans");
        let mut harness = Harness::new();
        let messages = harness.decode(&kind, line)?;
        Ok(messages
            .iter()
            .map(|bytes| Message::decode(&bytes[..]).unwrap())
            .collect())
    }

    fn fields(message: &Message) -> Vec<&str> {
        message
            .fields
            .iter()
            .map(|field| field.name.as_str())
            .collect()
    }

    #[test]
    fn first_wins_takes_the_first_sub_that_decodes() {
        let multi =
            "[multi]\ntype = \"MultiDecoder\"\nsubs = [\"num\", \"word\"]\nlog_sub_errors = true\n";
        assert_eq!(
            decode(multi, b"42").unwrap()[0].r#type.as_deref(),
            Some("number")
        );
        assert_eq!(
            decode(multi, b"abc").unwrap()[0].r#type.as_deref(),
            Some("word")
        );
        assert_eq!(decode(multi, b"4a").unwrap_err(), "no_sub_decoded");
    }

    #[test]
    fn all_chains_each_sub_on_the_one_before() {
        let multi = "[multi]\ntype = \"MultiDecoder\"\nsubs = [\"num\", \"tag\"]\ncascade_strategy = \"all\"\n";
        let messages = decode(multi, b"42").unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].r#type.as_deref(), Some("number"));
        assert_eq!(fields(&messages[0]), vec!["n", "env"]);
        // `num` fails on a word: the line passes on unchanged to `tag`, which succeeds.
        let messages = decode(multi, b"abc").unwrap();
        assert_eq!(messages[0].r#type.as_deref(), Some("tcp_in"));
        assert_eq!(fields(&messages[0]), vec!["env"]);
        let multi = "[multi]\ntype = \"MultiDecoder\"\nsubs = [\"num\", \"word\"]\ncascade_strategy = \"all\"\n";
        assert_eq!(decode(multi, b"4a").unwrap_err(), "no_sub_decoded");
    }

    #[test]
    fn multi_decoders_nest() {
        let multi = "[multi]\ntype = \"MultiDecoder\"\nsubs = [\"inner\", \"tag\"]\ncascade_strategy = \"all\"\n\
                     [inner]\ntype = \"MultiDecoder\"\nsubs = [\"num\", \"word\"]\n";
        let messages = decode(multi, b"abc").unwrap();
        assert_eq!(messages[0].r#type.as_deref(), Some("word"));
        assert_eq!(fields(&messages[0]), vec!["env"]);
    }

    #[cfg(feature = "lua")]
    #[test]
    fn a_sandbox_sub_chains_like_any_other() {
        let mut script = tempfile::Builder::new().suffix(".lua").tempfile().unwrap();
        let source = "function process_message()\n\
                      local p = read_message(\"Payload\")\n\
                      if p == \"skip\" then return -1 end\n\
                      inject_message({Type = \"lua\", Payload = p, Fields = {n = 1}})\n\
                      inject_message({Type = \"lua2\", Payload = p})\n\
                      return 0\nend\n";
        std::io::Write::write_all(&mut script, source.as_bytes()).unwrap();
        let multi = format!(
            "[multi]\ntype = \"MultiDecoder\"\nsubs = [\"lua\", \"tag\"]\ncascade_strategy = \"all\"\n\
             [lua]\ntype = \"SandboxDecoder\"\nfilename = \"{}\"\n",
            script.path().display()
        );
        let messages = decode(&multi, b"hello").unwrap();
        assert_eq!(messages.len(), 2, "both injected messages are tagged");
        assert_eq!(messages[0].r#type.as_deref(), Some("lua"));
        assert_eq!(fields(&messages[0]), vec!["n", "env"]);
        assert_eq!(messages[1].r#type.as_deref(), Some("lua2"));
        assert_eq!(fields(&messages[1]), vec!["env"]);
        let messages = decode(&multi, b"skip").unwrap();
        assert_eq!(messages.len(), 1, "the failing script passes the line on");
        assert_eq!(messages[0].r#type.as_deref(), Some("tcp_in"));
    }

    #[test]
    fn a_protobuf_sub_reads_the_record_as_a_heka_message() {
        let kind = Harness::plan(
            "[multi]\ntype = \"MultiDecoder\"\nsubs = [\"ProtobufDecoder\", \"tag\"]\n\
             cascade_strategy = \"all\"\n[tag]\ntype = \"ScribbleDecoder\"\n\
             [tag.message_fields]\nenv = \"prod\"\n",
            "multi",
        )
        .expect("plans");
        let original = Message {
            uuid: vec![5; 16],
            timestamp: 9,
            r#type: Some("app".into()),
            ..Message::default()
        };
        let mut harness = Harness::new();
        let messages = harness.decode(&kind, &original.encode_to_vec()).unwrap();
        let message = Message::decode(&messages[0][..]).unwrap();
        assert_eq!(message.uuid, vec![5; 16]);
        assert_eq!(message.r#type.as_deref(), Some("app"));
        assert_eq!(fields(&message), vec!["env"]);
    }
}
