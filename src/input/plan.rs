//! What every input's plan has besides its transport: a splitter, a decoder, HMAC signers
//! and the decode-failure options. Each input kind's planner reads its own section and calls
//! [`input_plan`] with these.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::InputKind;
use crate::component::PlanContext;
use crate::config::plan::{InputPlan, SplitterPlan};
use crate::config::{ConfigError, Section};

/// One HMAC key: `[name.signer.<signer>_<version>] hmac_key = "…"`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerKey {
    /// The shared secret a signed message's HMAC is checked with (`hmac_key`).
    pub hmac_key: String,
}

/// The keys every input section may have besides its kind's own.
pub const COMMON_KEYS: &[&str] = &[
    "type",
    "net",
    "splitter",
    "decoder",
    "signer",
    "synchronous_decode",
    "send_decode_failures",
    "log_decode_failures",
    "can_exit",
    "ticker_interval",
    "retries",
];

/// The common input keys, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommon {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The address family: `tcp`, `tcp4`, `tcp6` (or `udp`…), checked against the kind.
    pub net: Option<String>,
    /// Splitter section or type name (each kind has its default).
    pub splitter: Option<String>,
    /// Decoder section or type name (default: ProtobufDecoder after Heka framing, else none).
    pub decoder: Option<String>,
    /// Heka's per-input HMAC keys: `[name.signer.<signer>_<version>] hmac_key = "…"`.
    pub signer: Option<BTreeMap<String, SignerKey>>,
    /// Accepted for Heka compatibility; decoding is always synchronous in gyges.
    pub synchronous_decode: Option<bool>,
    /// Send records that fail to decode on as plain-payload messages (default false).
    pub send_decode_failures: Option<bool>,
    /// Log each decode failure (default true).
    pub log_decode_failures: Option<bool>,
    /// Accepted for Heka compatibility: an input stopping alone never stops the daemon.
    pub can_exit: Option<bool>,
    /// Accepted for Heka compatibility: these inputs run no timer in gyges.
    pub ticker_interval: Option<u64>,
    /// Heka's `[name.retries]`, checked and otherwise unused (`config::heka_keys`).
    pub retries: Option<crate::config::heka_keys::RawRetries>,
}

/// Splits an input section into its common keys, parsed, and a section of the rest (the
/// kind's own options, which the kind parses with its own `deny_unknown_fields` struct).
///
/// # Errors
/// A common key of the wrong type.
pub fn split_common(section: &Section) -> Result<(RawCommon, Section), ConfigError> {
    section.split_common(COMMON_KEYS)
}

impl RawCommon {
    /// The common options with a kind's default splitter and the `net` values it accepts.
    pub fn with_defaults(
        &self,
        default_splitter: &'static str,
        nets: &'static [&'static str],
    ) -> Common<'_> {
        Common {
            splitter: self.splitter.as_deref(),
            default_splitter,
            decoder: self.decoder.as_deref(),
            signer: self.signer.as_ref(),
            net: self.net.as_deref(),
            nets,
            log_decode_failures: self.log_decode_failures,
            send_decode_failures: self.send_decode_failures,
        }
    }
}

/// The options every input shares, with its kind's defaults.
pub struct Common<'a> {
    /// Splitter section or type name, and the kind's default.
    pub splitter: Option<&'a str>,
    /// The splitter used when `splitter` is `None`.
    pub default_splitter: &'static str,
    /// Decoder section or type name (none: the splitter's default decoder).
    pub decoder: Option<&'a str>,
    /// The `[name.signer.<signer>_<version>]` keys; `None` when the section has none, and
    /// signed messages then fail authentication unless the splitter skips it.
    pub signer: Option<&'a BTreeMap<String, SignerKey>>,
    /// `net`, and the values this kind accepts for it.
    pub net: Option<&'a str>,
    /// The `net` values this kind accepts; any other is refused.
    pub nets: &'static [&'static str],
    /// `log_decode_failures` as written; `None` means true.
    pub log_decode_failures: Option<bool>,
    /// `send_decode_failures` as written; `None` means false.
    pub send_decode_failures: Option<bool>,
}

/// The plan of an input of `kind` with `common` options.
///
/// # Errors
/// A bad `net`, an unknown splitter or decoder, a bad signer key.
pub fn input_plan(
    section: &Section,
    context: &PlanContext<'_>,
    common: Common<'_>,
    kind: Arc<dyn InputKind>,
) -> Result<InputPlan, ConfigError> {
    if let Some(net) = common.net {
        if !common.nets.contains(&net) {
            let message = format!("`{net}` is not one of {:?}", common.nets);
            return Err(section.error(Some("net"), message));
        }
    }
    let splitter = splitter(section, context, common.splitter, common.default_splitter)?;
    let decoder = crate::decoder::resolve(section, context, common.decoder, &splitter)?;
    let verifier = verifier(section, context, &common, &splitter)?;
    Ok(InputPlan {
        name: section.name.clone(),
        kind,
        splitter,
        decoder,
        verifier: Arc::new(verifier),
        log_decode_failures: common.log_decode_failures.unwrap_or(true),
        send_decode_failures: common.send_decode_failures.unwrap_or(false),
    })
}

/// The input's HMAC keys: its own `[name.signer.*]` tables and those of its
/// HekaFramingSplitter's section (where Heka's docs put them). A key name in both must carry
/// the same key.
///
/// # Errors
/// A malformed key name or key, or one name with two keys; the error names the section that
/// holds the bad table and `signer`.
fn verifier(
    section: &Section,
    context: &PlanContext<'_>,
    common: &Common<'_>,
    splitter: &SplitterPlan,
) -> Result<crate::message::framing::Verifier, ConfigError> {
    let no_signers = BTreeMap::new();
    let mut keys: BTreeMap<&str, &[u8]> = common
        .signer
        .unwrap_or(&no_signers)
        .iter()
        .map(|(name, key)| (name.as_str(), key.hmac_key.as_bytes()))
        .collect();
    if let SplitterPlan::HekaFrame { signers, .. } = splitter {
        let at = common
            .splitter
            .and_then(|name| context.sections.get(name).copied())
            .unwrap_or(section);
        let own = signers
            .iter()
            .map(|(name, key)| (name.as_str(), key.as_bytes()));
        crate::message::framing::Verifier::new(own)
            .map_err(|error| at.error(Some("signer"), error.to_string()))?;
        for (name, key) in signers {
            if let Some(other) = keys.insert(name.as_str(), key.as_bytes()) {
                if other != key.as_bytes() {
                    let message = format!(
                        "`{name}` has another key in [{}]; one signer and version, one key",
                        section.name
                    );
                    return Err(at.error(Some("signer"), message));
                }
            }
        }
    }
    crate::message::framing::Verifier::new(keys)
        .map_err(|error| section.error(Some("signer"), error.to_string()))
}

/// The splitter an input names: a section of that name, or a splitter type with its defaults.
fn splitter(
    section: &Section,
    context: &PlanContext<'_>,
    name: Option<&str>,
    default: &str,
) -> Result<SplitterPlan, ConfigError> {
    let name = name.unwrap_or(default);
    match context.sections.get(name) {
        Some(splitter_section) => crate::splitter::plan::plan(splitter_section),
        None => crate::splitter::plan::default(name)
            .ok_or_else(|| section.error(Some("splitter"), format!("no splitter named `{name}`"))),
    }
}
