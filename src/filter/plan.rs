//! What every filter's plan has besides its own options: a matcher, a host core and a
//! delivery (ring or disk queue). A filter kind's planner reads its own keys and calls
//! [`filter_plan`]; kinds that take Heka's common filter keys split them off with
//! [`split_common`] first.

use std::sync::Arc;

use serde::Deserialize;

use super::FilterKind;
use crate::component::PlanContext;
use crate::config::delivery::{filter_delivery, FilterDeliveryKeys, RingFull};
use crate::config::plan::FilterPlan;
use crate::config::{ConfigError, Section};

/// The keys every filter section may have besides its kind's own.
pub const COMMON_KEYS: &[&str] = &[
    "type",
    "message_matcher",
    "message_signer",
    "use_buffering",
    "ring_full_action",
    "delivery",
    "buffering",
    "retries",
];

/// The common filter keys, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Common {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The messages this filter sees (Heka's default, `FALSE`, is none).
    pub message_matcher: Option<String>,
    /// Only messages signed by this signer (verified at the input) reach the filter.
    pub message_signer: Option<String>,
    /// Keep the records routed to this filter in a disk queue per core (default false).
    pub use_buffering: Option<bool>,
    /// `"block"` (default) or `"drop"`: what a full ring toward the filter's core does.
    pub ring_full_action: Option<String>,
    /// `"memory"`, `"best_effort"` or `"durable"`: a shorthand for the two keys above.
    pub delivery: Option<String>,
    /// The disk queue's options (with `use_buffering`).
    pub buffering: Option<crate::queue::config::Buffering>,
    /// Heka's `[name.retries]`, checked and otherwise unused (`config::heka_keys`).
    pub retries: Option<crate::config::heka_keys::RawRetries>,
}

/// Splits a filter section into its common keys, parsed, and a section of the rest (the
/// kind's own options).
///
/// # Errors
/// A common key of the wrong type.
pub fn split_common(section: &Section) -> Result<(Common, Section), ConfigError> {
    section.split_common(COMMON_KEYS)
}

/// The delivery keys of `common`, resolved against each other.
///
/// # Errors
/// Contradicting keys, or bad `[name.buffering]` options.
pub fn delivery(
    section: &Section,
    context: &PlanContext<'_>,
    common: Common,
) -> Result<(RingFull, Option<crate::queue::QueueOptions>), ConfigError> {
    let keys = FilterDeliveryKeys {
        use_buffering: common.use_buffering,
        ring_full_action: common.ring_full_action,
        delivery: common.delivery,
        buffering: common.buffering,
    };
    filter_delivery(section, context.global, &keys)
}

/// The plan of a filter of `kind`, reading the messages that `matcher` matches (and, with
/// `message_signer`, that this signer signed), delivered as `delivery` says.
///
/// # Errors
/// The matcher does not compile.
pub fn filter_plan(
    section: &Section,
    context: &PlanContext<'_>,
    (matcher, message_signer): (Option<&str>, Option<&str>),
    (ring_full, durable): (RingFull, Option<crate::queue::QueueOptions>),
    kind: Arc<dyn FilterKind>,
) -> Result<FilterPlan, ConfigError> {
    Ok(FilterPlan {
        name: section.name.clone(),
        matcher: section.matcher(matcher, context.global)?,
        message_signer: section.message_signer(message_signer)?,
        host_core: section.host_core(context.global),
        ring_full,
        kind,
        durable,
    })
}
