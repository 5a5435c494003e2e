//! Splitters as configured: Heka's splitter sections, read into a [`SplitterPlan`] that each
//! connection's [`super::Splitter`] is built from. Splitters stay an enum (not a registry of
//! kinds): they run per record on the hottest path, and dispatch by `match` inlines there.

use serde::Deserialize;

use crate::config::{ConfigError, Section};
use crate::limits;

/// A splitter, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitterPlan {
    /// TokenSplitter: a record ends after `count` delimiter bytes.
    Token {
        /// The byte that ends a record (`delimiter`, default `\n`), kept in the record.
        delimiter: u8,
        /// Delimiters per record (`count`, 1 to `TOKEN_COUNT_MAX`, default 1).
        count: usize,
        /// Deliver the bytes after the last delimiter as a record when the stream ends
        /// (`deliver_incomplete_final`, default false; a datagram input always does).
        deliver_incomplete_final: bool,
    },
    /// HekaFramingSplitter: each record is one Heka stream frame's message.
    HekaFrame {
        /// Pass signed frames without checking their HMAC (`skip_authentication`, default
        /// false); checked frames that fail are dropped and counted.
        skip_authentication: bool,
        /// The HMAC keys of the splitter section's `[name.signer.<signer>_<version>]` tables,
        /// as Heka's docs place them: they join the keys of each input that uses the section.
        /// Validated when an input is planned (the error then names this section's `signer`).
        signers: std::collections::BTreeMap<String, String>,
    },
    /// NullSplitter: each read (a datagram) is one record.
    Null,
    /// SyslogSplitter: RFC 6587 octet counting or newline framing, decided per connection.
    /// Only a SyslogInput over TCP uses it; it has no section type of its own.
    Syslog,
}

/// Whether `type_name` names a splitter.
pub fn is_splitter(type_name: &str) -> bool {
    default(type_name).is_some()
}

/// `TokenSplitter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSplitter {
    /// The plugin type (`type`), `TokenSplitter`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub _type: Option<String>,
    /// One byte (default `"\n"`).
    pub delimiter: Option<String>,
    /// Delimiters per record (default 1).
    pub count: Option<u64>,
    /// Accepted for Heka compatibility and ignored: an oversize record is always dropped.
    pub keep_truncated: Option<bool>,
    /// Accepted for Heka compatibility and ignored.
    pub use_message_bytes: Option<bool>,
    /// Accepted for Heka compatibility and ignored: buffers are sized from `max_message_size`.
    pub min_buffer_size: Option<u64>,
    /// Deliver the bytes after the last delimiter as a record when the stream ends (default
    /// false).
    pub deliver_incomplete_final: Option<bool>,
}

/// `HekaFramingSplitter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HekaFramingSplitter {
    /// The plugin type (`type`), `HekaFramingSplitter`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub _type: Option<String>,
    /// Pass signed frames without checking their HMAC (default false).
    pub skip_authentication: Option<bool>,
    /// Only `true` (the default) is accepted: a framed record is a protobuf message.
    pub use_message_bytes: Option<bool>,
    /// Accepted for Heka compatibility and ignored: an oversize record is always dropped.
    pub keep_truncated: Option<bool>,
    /// Accepted for Heka compatibility and ignored: buffers are sized from `max_message_size`.
    pub min_buffer_size: Option<u64>,
    /// Accepted for Heka compatibility and ignored.
    pub deliver_incomplete_final: Option<bool>,
    /// HMAC keys: `[name.signer.<signer>_<version>] hmac_key = "…"`.
    pub signer: Option<std::collections::BTreeMap<String, crate::input::plan::SignerKey>>,
}

/// `NullSplitter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullSplitter {
    /// The plugin type (`type`), `NullSplitter`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub _type: Option<String>,
    /// Accepted for Heka compatibility and ignored.
    pub use_message_bytes: Option<bool>,
    /// Accepted for Heka compatibility and ignored: an oversize record is always dropped.
    pub keep_truncated: Option<bool>,
    /// Accepted for Heka compatibility and ignored: buffers are sized from `max_message_size`.
    pub min_buffer_size: Option<u64>,
    /// Accepted for Heka compatibility and ignored.
    pub deliver_incomplete_final: Option<bool>,
}

/// The splitter a type name stands for with its default options.
pub fn default(type_: &str) -> Option<SplitterPlan> {
    Some(match type_ {
        "TokenSplitter" => SplitterPlan::Token {
            delimiter: b'\n',
            count: 1,
            deliver_incomplete_final: false,
        },
        "HekaFramingSplitter" => SplitterPlan::HekaFrame {
            skip_authentication: false,
            signers: std::collections::BTreeMap::new(),
        },
        "NullSplitter" => SplitterPlan::Null,
        _ => return None,
    })
}

/// Reads a splitter section.
///
/// # Errors
/// An unknown key, or a value out of range.
pub fn plan(section: &Section) -> Result<SplitterPlan, ConfigError> {
    Ok(match section.plugin_type()? {
        "TokenSplitter" => {
            let raw: TokenSplitter = section.parse()?;
            let delimiter = match raw.delimiter.as_deref() {
                None => b'\n',
                Some(text) if text.len() == 1 => text.as_bytes()[0],
                Some(text) => {
                    return Err(
                        section.error(Some("delimiter"), format!("`{text}` is not one byte"))
                    )
                }
            };
            let count = raw.count.unwrap_or(1);
            if count == 0 || count > limits::TOKEN_COUNT_MAX as u64 {
                return Err(section.error(
                    Some("count"),
                    format!("{count} is outside 1..={}", limits::TOKEN_COUNT_MAX),
                ));
            }
            SplitterPlan::Token {
                delimiter,
                count: count as usize,
                deliver_incomplete_final: raw.deliver_incomplete_final.unwrap_or(false),
            }
        }
        "HekaFramingSplitter" => {
            let raw: HekaFramingSplitter = section.parse()?;
            if raw.use_message_bytes == Some(false) {
                return Err(section.error(
                    Some("use_message_bytes"),
                    "only true is supported: a framed record is a protobuf message",
                ));
            }
            let signers = raw.signer.unwrap_or_default().into_iter();
            SplitterPlan::HekaFrame {
                skip_authentication: raw.skip_authentication.unwrap_or(false),
                signers: signers.map(|(name, key)| (name, key.hmac_key)).collect(),
            }
        }
        "NullSplitter" => {
            section.parse::<NullSplitter>()?;
            SplitterPlan::Null
        }
        other => return Err(section.error(Some("type"), format!("`{other}` is not a splitter"))),
    })
}
