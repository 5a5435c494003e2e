//! What every output's plan has besides its destination: a matcher, an encoder, framing, a
//! delivery class and a disk queue. Each output kind's planner reads its own section and calls
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

/// The options every output shares, as its section wrote them.
pub struct Common<'a> {
    /// `message_matcher` as written; `None` compiles Heka's default, `FALSE`.
    pub message_matcher: Option<&'a str>,
    /// Whether the section sets `message_signer`, which is refused (not supported yet).
    pub message_signer: bool,
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

/// The plan of an output of `kind` with `common` options.
///
/// # Errors
/// A bad matcher, encoder or delivery, or `message_signer`.
pub fn output_plan(
    section: &Section,
    context: &PlanContext<'_>,
    common: Common<'_>,
    kind: Arc<dyn OutputKind>,
) -> Result<OutputPlan, ConfigError> {
    section.refuse_signer(common.message_signer)?;
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
    Ok(OutputPlan {
        name: section.name.clone(),
        owner_core: section.owner_core(context.global),
        matcher: section.matcher(common.message_matcher, context.global)?,
        encoder,
        use_framing: common.use_framing,
        kind,
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
