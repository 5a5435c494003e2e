//! The control protocol of a SandboxManagerFilter, as Heka's `heka-sbmgr` spoke it: what a
//! control message asks, and the config of a filter to load. Pure: the manager does the work.
//!
//! A control message (Type `heka.control.sandbox` by the manager's default matcher):
//!
//! | part | load | unload |
//! |---|---|---|
//! | `Fields[action]` | `"load"` | `"unload"` |
//! | `Fields[config]` | the TOML of one SandboxFilter section | - |
//! | `Fields[name]` | - | the name of the filter (its section name) |
//! | Payload | the Lua source | - |
//! | Timestamp | within [`CONTROL_MESSAGE_AGE_MAX`] of the manager's clock | same |
//!
//! Anything else is refused with a [`Refusal`], which the manager counts and logs.

use std::path::PathBuf;

use crate::config::Document;
use crate::limits::{CONTROL_MESSAGE_AGE_MAX, LOADED_FILTER_NAME_BYTES_MAX};
use crate::message::{FieldValue, MessageView, StrHeader};
use crate::sandbox::SandboxConfig;

/// What a control message asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// Load (or replace) the filter `config` describes, running `source`.
    Load {
        /// The TOML of one SandboxFilter section.
        config: &'a str,
        /// The Lua source.
        source: &'a [u8],
    },
    /// Unload the filter named so.
    Unload {
        /// Its section name.
        name: &'a str,
    },
}

/// Why a control message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The Timestamp is too far from now.
    #[error("its Timestamp is more than 5 s from now (a replayed or delayed command)")]
    Stale,
    /// No `Fields[action]`, or not a string.
    #[error("it has no string Fields[action]")]
    NoAction,
    /// An action other than `load` and `unload`.
    #[error("Fields[action] is neither `load` nor `unload`")]
    UnknownAction,
    /// A load without `Fields[config]`.
    #[error("a load needs the filter's TOML in Fields[config]")]
    NoConfig,
    /// An unload without `Fields[name]`.
    #[error("an unload needs the filter's name in Fields[name]")]
    NoName,
    /// The filter's config is not acceptable; the message says why.
    #[error("the filter's config: {0}")]
    BadConfig(String),
    /// Every slot holds another filter.
    #[error("every one of the manager's max_filters slots is in use")]
    Full,
    /// No loaded filter has that name.
    #[error("no filter of that name is loaded")]
    NotLoaded,
    /// The script did not load; the message is the sandbox's.
    #[error("the filter did not start: {0}")]
    NotStarted(String),
    /// The manager could not write its working directory.
    #[error("the working directory: {0}")]
    Storage(String),
}

impl Refusal {
    /// A low-cardinality label for logs.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Stale => "stale",
            Refusal::NoAction => "no_action",
            Refusal::UnknownAction => "unknown_action",
            Refusal::NoConfig => "no_config",
            Refusal::NoName => "no_name",
            Refusal::BadConfig(_) => "bad_config",
            Refusal::Full => "max_filters",
            Refusal::NotLoaded => "not_loaded",
            Refusal::NotStarted(_) => "not_started",
            Refusal::Storage(_) => "storage",
        }
    }
}

/// The string value of `Fields[name]` (a string or bytes field), if it is UTF-8.
fn string_field<'a>(message: &MessageView<'a>, name: &[u8]) -> Option<&'a str> {
    match message.field(name, 0)?.value(0)? {
        FieldValue::String(bytes) | FieldValue::Bytes(bytes) => std::str::from_utf8(bytes).ok(),
        _ => None,
    }
}

/// Reads a control message received at `now_ns`.
///
/// # Errors
/// The [`Refusal`] saying what is wrong with it.
pub fn parse<'a>(message: &MessageView<'a>, now_ns: i64) -> Result<Command<'a>, Refusal> {
    let timestamp = message.timestamp().unwrap_or(0);
    let age_max = CONTROL_MESSAGE_AGE_MAX.as_nanos() as i64;
    if now_ns.saturating_sub(timestamp).saturating_abs() >= age_max {
        return Err(Refusal::Stale);
    }
    match string_field(message, b"action").ok_or(Refusal::NoAction)? {
        "load" => {
            let config = string_field(message, b"config").ok_or(Refusal::NoConfig)?;
            let source = message.str_header(StrHeader::Payload).unwrap_or_default();
            Ok(Command::Load { config, source })
        }
        "unload" => {
            let name = string_field(message, b"name").ok_or(Refusal::NoName)?;
            Ok(Command::Unload { name })
        }
        _ => Err(Refusal::UnknownAction),
    }
}

/// Whether `name` may name a loaded filter: it becomes part of file names.
pub fn is_valid_name(name: &str) -> bool {
    let allowed = |byte: u8| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-';
    !name.is_empty() && name.len() <= LOADED_FILTER_NAME_BYTES_MAX && name.bytes().all(allowed)
}

/// The limits a manager gives every filter it loads, whatever their config says (as Heka's
/// manager did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of Lua state.
    pub memory_limit: usize,
    /// Instructions per call.
    pub instruction_limit: u64,
    /// Bytes of output per injected message.
    pub output_limit: usize,
    /// Where `require` finds Lua modules.
    pub module_directory: Option<std::path::PathBuf>,
}

/// A filter to load: its section name, its matcher and its sandbox config.
#[derive(Debug)]
pub struct Loadable {
    /// The section name (the manager runs it as `<manager>-<name>`).
    pub name: String,
    /// Its `message_matcher` (Heka's default, `FALSE`, when absent).
    pub matcher: Option<String>,
    /// Its sandbox config, with the manager's limits and `script` as its file.
    pub config: SandboxConfig,
}

/// The keys a loaded filter's section may have besides the sandbox options.
const LOADED_COMMON_KEYS: &[&str] = &["type", "message_matcher"];
/// Keys a loaded filter may not have: what it would need from the plan (a disk queue, a
/// signer, a ring policy) is fixed when the manager's slots are planned.
const LOADED_REFUSED_KEYS: &[&str] = &[
    "message_signer",
    "use_buffering",
    "ring_full_action",
    "delivery",
    "buffering",
    "retries",
];

/// Reads the TOML of one SandboxFilter section (the `filename` in it is ignored: the script
/// is `script_of(section name)`), and applies the manager's `limits`.
///
/// # Errors
/// [`Refusal::BadConfig`]: not exactly one section, not a SandboxFilter, a bad name, a key
/// a loaded filter may not have, or a bad sandbox option.
pub fn loadable(
    text: &str,
    script_of: impl Fn(&str) -> PathBuf,
    limits: &Limits,
) -> Result<Loadable, Refusal> {
    let bad = |message: String| Refusal::BadConfig(message);
    let mut document = Document::default();
    crate::config::add_text(&mut document, "<control message>", text)
        .map_err(|error| bad(error.to_string()))?;
    let [section] = document.sections.as_slice() else {
        return Err(bad("it must hold exactly one [section]".into()));
    };
    let type_name = section
        .plugin_type()
        .map_err(|error| bad(error.to_string()))?;
    if type_name != "SandboxFilter" {
        return Err(bad(format!("type `{type_name}` is not SandboxFilter")));
    }
    if !is_valid_name(&section.name) {
        return Err(bad(format!(
            "the name `{}` is not 1 to {LOADED_FILTER_NAME_BYTES_MAX} of [A-Za-z0-9_-]",
            section.name
        )));
    }
    if let Some(key) = LOADED_REFUSED_KEYS
        .iter()
        .find(|key| section.table.contains_key(**key))
    {
        return Err(bad(format!("`{key}` is not supported on a loaded filter")));
    }
    let matcher = match section.table.get("message_matcher") {
        None => None,
        Some(toml::Value::String(matcher)) => Some(matcher.clone()),
        Some(_) => return Err(bad("`message_matcher` must be a string".into())),
    };
    let script = script_of(&section.name);
    let mut own = section.clone();
    own.table.insert(
        "filename".into(),
        toml::Value::String(script.display().to_string()),
    );
    let mut config = crate::sandbox::plan::sandbox_config(&own, LOADED_COMMON_KEYS)
        .map_err(|error| bad(error.to_string()))?;
    config.memory_limit = limits.memory_limit;
    config.instruction_limit = limits.instruction_limit;
    config.output_limit = limits.output_limit;
    config.module_directory = limits.module_directory.clone();
    config.filename = script;
    Ok(Loadable {
        name: section.name.clone(),
        matcher,
        config,
    })
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use crate::message::proto::{Field, Message};
    use crate::message::ProtoView;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn control(timestamp: i64, fields: &[(&str, &str)], payload: &str) -> Vec<u8> {
        let fields = fields.iter().map(|(name, value)| Field {
            name: (*name).into(),
            value_string: vec![(*value).into()],
            ..Field::default()
        });
        Message {
            uuid: vec![0; 16],
            timestamp,
            r#type: Some("heka.control.sandbox".into()),
            payload: Some(payload.into()),
            fields: fields.collect(),
            ..Message::default()
        }
        .encode_to_vec()
    }

    fn parsed(bytes: &[u8], now: i64) -> Result<Command<'_>, Refusal> {
        parse(&MessageView::Proto(ProtoView::new(bytes)), now)
    }

    #[test]
    fn commands_and_refusals() {
        let load = control(NOW, &[("action", "load"), ("config", "[a]")], "src");
        let expected = Command::Load {
            config: "[a]",
            source: b"src",
        };
        assert_eq!(parsed(&load, NOW + 1), Ok(expected));
        let unload = control(NOW, &[("action", "unload"), ("name", "a")], "");
        assert_eq!(parsed(&unload, NOW), Ok(Command::Unload { name: "a" }));
        let seconds = 1_000_000_000;
        assert_eq!(parsed(&load, NOW + 5 * seconds), Err(Refusal::Stale));
        assert_eq!(parsed(&load, NOW - 5 * seconds), Err(Refusal::Stale));
        assert!(parsed(&load, NOW + 4 * seconds).is_ok());
        let cases = [
            (control(NOW, &[], ""), Refusal::NoAction),
            (
                control(NOW, &[("action", "run")], ""),
                Refusal::UnknownAction,
            ),
            (control(NOW, &[("action", "load")], ""), Refusal::NoConfig),
            (control(NOW, &[("action", "unload")], ""), Refusal::NoName),
        ];
        for (bytes, refusal) in cases {
            assert_eq!(parsed(&bytes, NOW), Err(refusal));
        }
    }

    fn limits() -> Limits {
        Limits {
            memory_limit: 1 << 20,
            instruction_limit: 1000,
            output_limit: 2048,
            module_directory: None,
        }
    }

    #[test]
    fn a_loadable_config_takes_the_manager_limits_and_the_script() {
        let text = "[counter]\ntype = \"SandboxFilter\"\nmessage_matcher = \"TRUE\"\n\
                    filename = \"elsewhere.lua\"\nmemory_limit = 99999999\nticker_interval = 2\n";
        let script = |name: &str| PathBuf::from(format!("/w/m-{name}.lua"));
        let loaded = loadable(text, script, &limits()).unwrap();
        assert_eq!(loaded.name, "counter");
        assert_eq!(loaded.matcher.as_deref(), Some("TRUE"));
        assert_eq!(loaded.config.memory_limit, 1 << 20);
        assert_eq!(loaded.config.instruction_limit, 1000);
        assert_eq!(loaded.config.ticker_interval, 2);
        assert_eq!(loaded.config.filename, PathBuf::from("/w/m-counter.lua"));
    }

    #[test]
    fn bad_loadable_configs_are_refused_with_the_reason() {
        let script = |_: &str| PathBuf::from("/w/x.lua");
        let cases = [
            (
                "[a]\ntype = \"SandboxFilter\"\n[b]\ntype = \"SandboxFilter\"\n",
                "exactly one",
            ),
            ("[a]\ntype = \"FileOutput\"\n", "not SandboxFilter"),
            ("[\"../a\"]\ntype = \"SandboxFilter\"\n", "is not 1 to"),
            (
                "[a]\ntype = \"SandboxFilter\"\nuse_buffering = true\n",
                "use_buffering",
            ),
            ("[a]\ntype = \"SandboxFilter\"\nbogus = 1\n", "bogus"),
            (
                "[a]\ntype = \"SandboxFilter\"\nmessage_matcher = 3\n",
                "must be a string",
            ),
            ("not toml [", "TOML syntax"),
        ];
        for (text, expected) in cases {
            match loadable(text, script, &limits()) {
                Err(Refusal::BadConfig(message)) => {
                    assert!(message.contains(expected), "{text}: {message}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn names_are_file_safe() {
        assert!(is_valid_name("counter_1-a"));
        for name in [
            "",
            "a/b",
            "..",
            "a b",
            &"x".repeat(LOADED_FILTER_NAME_BYTES_MAX + 1),
        ] {
            assert!(!is_valid_name(name), "{name}");
        }
    }
}
