//! What every output's plan has besides its destination: a matcher, an encoder, framing (signed
//! with `[name.signer]`), a delivery class and a disk queue. Each output kind's planner reads its own section and calls
//! [`output_plan`] with these.

use std::sync::Arc;

use super::OutputKind;
use crate::component::PlanContext;
use crate::config::delivery::{delivery_class, durable_options, DeliveryClass};
use crate::config::plan::OutputPlan;
use crate::config::{ConfigError, Section};
use crate::encoder::EncoderKind;

/// Which encoder an output uses.
pub enum EncoderChoice<'a> {
    /// The section or type named by `encoder`, or else `default`.
    Named {
        /// The `encoder` key as written; `None` when the section has none.
        name: Option<&'a str>,
        /// The kind's default encoder section or type name.
        default: &'static str,
    },
    /// The kind's own encoder (CarbonOutput's lines).
    Fixed(Arc<dyn EncoderKind>),
}

/// The keys every output section may have besides its kind's own (Heka's common output
/// options, and gyges's delivery keys).
pub const COMMON_KEYS: &[&str] = &[
    "type",
    "message_matcher",
    "message_signer",
    "encoder",
    "use_framing",
    "signer",
    "ticker_interval",
    "can_exit",
    "retries",
    "use_buffering",
    "delivery",
    "buffering",
];

/// The common output keys, as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommon {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The messages this output receives (Heka's default, `FALSE`, is none).
    pub message_matcher: Option<String>,
    /// Heka's filter on the signer that signed a message; not supported yet: refused (signing
    /// what the output sends is `[name.signer]`).
    pub message_signer: Option<String>,
    /// `[name.signer]`: sign every frame the output writes (needs `use_framing`).
    pub signer: Option<RawSigner>,
    /// Encoder section or type name (each kind has its default).
    pub encoder: Option<String>,
    /// Heka-frame each record (each kind has its default).
    pub use_framing: Option<bool>,
    /// Accepted for Heka compatibility: outputs have no timer of their own in gyges.
    pub ticker_interval: Option<u64>,
    /// Accepted for Heka compatibility: an output stopping alone never stops the daemon.
    pub can_exit: Option<bool>,
    /// Heka's `[name.retries]`, checked and otherwise unused (`config::heka_keys`).
    pub retries: Option<crate::config::heka_keys::RawRetries>,
    /// Keep what is routed here in a disk queue until it is delivered (default false).
    pub use_buffering: Option<bool>,
    /// `"memory"` (default), `"best_effort"` or `"durable"` (the same as `use_buffering =
    /// true`); see `docs/delivery.md`.
    pub delivery: Option<String>,
    /// The disk queue's options (with `use_buffering`).
    pub buffering: Option<crate::queue::config::Buffering>,
}

/// `[name.signer]`: the HMAC signer of an output's frames, with the keys of Heka's
/// message-signing config (`name`, `hmac_hash`, `hmac_key`, `version`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigner {
    /// The signer's name, written in each header (`hmac_signer`); also spelled `signer`.
    #[serde(alias = "signer")]
    pub name: String,
    /// `md5` (default, as in Heka) or `sha1`.
    pub hmac_hash: Option<String>,
    /// The shared secret (at most `HMAC_KEY_BYTES_MAX` bytes).
    pub hmac_key: String,
    /// The key version, written in each header (`hmac_key_version`, default 0); also spelled
    /// `key_version`. A receiver looks the key up as `<name>_<version>`.
    #[serde(alias = "key_version")]
    pub version: Option<u32>,
}

/// The signer `[name.signer]` describes.
///
/// # Errors
/// An unknown `hmac_hash`, a key too long, a name too long for a frame header.
pub fn signer(
    section: &Section,
    raw: &RawSigner,
) -> Result<crate::message::framing::Signer, ConfigError> {
    use crate::message::framing::{HashFunction, Signer, SignerError};
    let hash = match raw.hmac_hash.as_deref() {
        None => HashFunction::Md5,
        Some(name) => HashFunction::from_name(name).ok_or_else(|| {
            section.error(
                Some("signer.hmac_hash"),
                format!("`{name}` is not md5 or sha1"),
            )
        })?,
    };
    Signer::new(
        &raw.name,
        raw.version.unwrap_or(0),
        hash,
        raw.hmac_key.as_bytes(),
    )
    .map_err(|error| {
        let key = match error {
            SignerError::KeyTooLong { .. } => "signer.hmac_key",
            _ => "signer.name",
        };
        section.error(Some(key), error.to_string())
    })
}

/// Splits an output section into its common keys, parsed, and a section of the rest (the
/// kind's own options, which the kind parses with its own `deny_unknown_fields` struct).
///
/// # Errors
/// A common key of the wrong type.
pub fn split_common(section: &Section) -> Result<(RawCommon, Section), ConfigError> {
    section.split_common(COMMON_KEYS)
}

/// The options every output shares: its common keys, with the kind's defaults.
pub struct Common<'a> {
    /// `message_matcher` as written; `None` compiles Heka's default, `FALSE`.
    pub message_matcher: Option<&'a str>,
    /// `message_signer`: only messages this signer signed reach the output.
    pub message_signer: Option<&'a str>,
    /// `[name.signer]`, the signer of every frame; `None` writes unsigned frames.
    pub signer: Option<&'a RawSigner>,
    /// The encoder the output uses.
    pub encoder: EncoderChoice<'a>,
    /// Heka-frame each encoded message (`use_framing`, its default already applied).
    pub use_framing: bool,
    /// `use_buffering` as written: `true` means durable delivery; `None` leaves `delivery`.
    pub use_buffering: Option<bool>,
    /// `delivery` as written (`memory`, `best_effort` or `durable`); `None` means `memory`
    /// unless `use_buffering`.
    pub delivery: Option<&'a str>,
    /// The `[name.buffering]` disk queue options; `None` takes the defaults, and setting it
    /// without durable delivery is refused.
    pub buffering: Option<&'a crate::queue::config::Buffering>,
    /// Whether this kind can deliver from a disk queue.
    pub durable_available: bool,
}

impl RawCommon {
    /// The common options with a kind's defaults: its encoder and framing, and whether it
    /// can deliver from a disk queue.
    pub fn with_defaults(
        &self,
        default_encoder: &'static str,
        default_framing: bool,
        durable_available: bool,
    ) -> Common<'_> {
        Common {
            message_matcher: self.message_matcher.as_deref(),
            message_signer: self.message_signer.as_deref(),
            signer: self.signer.as_ref(),
            encoder: EncoderChoice::Named {
                name: self.encoder.as_deref(),
                default: default_encoder,
            },
            use_framing: self.use_framing.unwrap_or(default_framing),
            use_buffering: self.use_buffering,
            delivery: self.delivery.as_deref(),
            buffering: self.buffering.as_ref(),
            durable_available,
        }
    }
}

/// The plan of an output with `common` options; `kind` makes the kind's plan once it is known
/// whether the output is durable (an acknowledging TcpOutput needs its disk queue).
///
/// # Errors
/// A bad matcher, encoder or delivery, or `message_signer`.
pub fn output_plan(
    section: &Section,
    context: &PlanContext<'_>,
    common: Common<'_>,
    kind: impl FnOnce(bool) -> Result<Arc<dyn OutputKind>, ConfigError>,
) -> Result<OutputPlan, ConfigError> {
    let message_signer = section.message_signer(common.message_signer)?;
    let signer = match common.signer {
        Some(_) if !common.use_framing => {
            return Err(section.error(
                Some("signer"),
                "signing needs use_framing = true: the signature is in each frame's header",
            ));
        }
        Some(raw) => Some(Arc::new(signer(section, raw)?)),
        None => None,
    };
    let (delivery, durable) = if common.durable_available {
        durable_options(
            section,
            context.global,
            common.use_buffering,
            common.delivery,
            common.buffering,
        )?
    } else {
        let class = delivery_class(section, common.use_buffering, common.delivery, false)?;
        (class, None)
    };
    let encoder = match common.encoder {
        EncoderChoice::Named { name, default } => {
            crate::encoder::resolve(section, context, name, default)?
        }
        EncoderChoice::Fixed(encoder) => encoder,
    };
    let matcher = section.matcher(common.message_matcher, context.global)?;
    Ok(OutputPlan {
        name: section.name.clone(),
        owner_core: section.owner_core(context.global),
        matcher,
        message_signer,
        encoder,
        use_framing: common.use_framing,
        signer,
        kind: kind(durable.is_some())?,
        delivery,
        durable,
    })
}

/// Checks that `delivery` is `memory`, for an output that writes synchronously.
///
/// # Errors
/// Any other class.
pub fn memory_only(section: &Section, plan: &OutputPlan, why: &str) -> Result<(), ConfigError> {
    if plan.delivery != DeliveryClass::Memory {
        return Err(section.error(Some("delivery"), why.to_string()));
    }
    Ok(())
}
