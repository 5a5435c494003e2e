//! Delivery classes, in one place: what `delivery`, `use_buffering`, `ring_full_action` and
//! `[name.buffering]` mean for an output or a filter, checked against each other.

use super::plan::GlobalPlan;
use super::{ConfigError, Section};
use crate::limits;

/// What a filter does when the ring to its core is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingFull {
    /// The ingest cores wait (and stop reading their sockets): nothing is lost.
    Block,
    /// The message is dropped and counted; ingest never waits for this filter.
    Drop,
}

/// An output's delivery class (`delivery`; see `docs/delivery.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClass {
    /// Bounded memory; a full destination makes the ingest cores wait (backpressure).
    Memory,
    /// Bounded memory; a batch that finds its destination full is dropped and counted, so an
    /// ingest core never waits on the destination.
    BestEffort,
    /// A disk queue per core (`use_buffering = true`), delivered at least once.
    Durable,
}

impl DeliveryClass {
    /// The config value naming it.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryClass::Memory => "memory",
            DeliveryClass::BestEffort => "best_effort",
            DeliveryClass::Durable => "durable",
        }
    }
}

/// The delivery class `delivery` names (default `memory`), checked against `use_buffering`
/// (`true` is `durable`) and against what the output can do (`durable_available`).
pub fn delivery_class(
    section: &Section,
    use_buffering: Option<bool>,
    delivery: Option<&str>,
    durable_available: bool,
) -> Result<DeliveryClass, ConfigError> {
    let named = match delivery {
        None => None,
        Some("memory") => Some(DeliveryClass::Memory),
        Some("best_effort") => Some(DeliveryClass::BestEffort),
        Some("durable") => Some(DeliveryClass::Durable),
        Some(other) => {
            return Err(section.error(
                Some("delivery"),
                format!("`{other}` is not \"memory\", \"best_effort\" or \"durable\""),
            ))
        }
    };
    if let (Some(buffer), Some(class)) = (use_buffering, named) {
        if buffer != (class == DeliveryClass::Durable) {
            return Err(section.error(
                Some("delivery"),
                "contradicts use_buffering; set only one of them",
            ));
        }
    }
    let class = match (named, use_buffering) {
        (Some(class), _) => class,
        (None, Some(true)) => DeliveryClass::Durable,
        (None, _) => DeliveryClass::Memory,
    };
    if class == DeliveryClass::Durable && !durable_available {
        let key = if named.is_some() {
            "delivery"
        } else {
            "use_buffering"
        };
        return Err(section.error(
            Some(key),
            "durable delivery is not available for this output type",
        ));
    }
    Ok(class)
}

/// The delivery class of a FileOutput or TcpOutput and, for `durable`, its disk queue options.
/// A `[name.buffering]` table on an output that does not buffer is an error: it would silently
/// do nothing.
pub fn durable_options(
    section: &Section,
    global: &GlobalPlan,
    use_buffering: Option<bool>,
    delivery: Option<&str>,
    buffering: Option<&crate::queue::config::Buffering>,
) -> Result<(DeliveryClass, Option<crate::queue::QueueOptions>), ConfigError> {
    let class = delivery_class(section, use_buffering, delivery, true)?;
    if class != DeliveryClass::Durable {
        if buffering.is_some() {
            return Err(section.error(
                Some("buffering"),
                "is set but delivery is not durable; set delivery = \"durable\" or remove it",
            ));
        }
        return Ok((class, None));
    }
    // One queue record holds one shipped batch: a full batch plus the message that overflowed
    // it, plus framing.
    let record_bytes =
        (global.batch_bytes + global.max_message_size + limits::DURABLE_RECORD_SLACK_BYTES)
            .min(limits::MESSAGE_BYTES_CEILING);
    let default_buffering = crate::queue::config::Buffering::default();
    let buffering = buffering.unwrap_or(&default_buffering);
    crate::queue::config::resolve(&global.queue, buffering, record_bytes)
        .map(|options| (class, Some(options)))
        .map_err(|error| {
            let key = match error.key {
                "buffering" => "buffering".to_string(),
                key => format!("buffering.{key}"),
            };
            section.error(Some(&key), error.message)
        })
}

/// The delivery keys every filter section may have, as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterDeliveryKeys {
    /// Keep the records routed to this filter in a disk queue per core (default false).
    pub use_buffering: Option<bool>,
    /// `"block"` (default) or `"drop"`: what a full ring toward the filter's core does.
    pub ring_full_action: Option<String>,
    /// `"memory"`, `"best_effort"` or `"durable"`: a shorthand for the two keys above.
    pub delivery: Option<String>,
    /// The disk queue's options (with `use_buffering`).
    pub buffering: Option<crate::queue::config::Buffering>,
}

/// A filter's delivery keys: `delivery` (`"memory"`, `"best_effort"` or `"durable"`),
/// `ring_full_action` (`"block"` or `"drop"`), `use_buffering` and the `[name.buffering]` table.
/// `delivery` is a shorthand: `"memory"` is `ring_full_action = "block"`, `"best_effort"` is
/// `"drop"`, `"durable"` is `use_buffering = true`; a key that says otherwise is an error naming
/// it, and so is a durable filter with `ring_full_action = "drop"` (a full disk queue does what
/// `buffering.full_action` says).
pub fn filter_delivery(
    section: &Section,
    global: &GlobalPlan,
    keys: &FilterDeliveryKeys,
) -> Result<(RingFull, Option<crate::queue::QueueOptions>), ConfigError> {
    let use_buffering = keys.use_buffering;
    let ring_full = match keys.ring_full_action.as_deref() {
        None => None,
        Some("block") => Some(RingFull::Block),
        Some("drop") => Some(RingFull::Drop),
        Some(other) => {
            return Err(section.error(
                Some("ring_full_action"),
                format!("`{other}` is not block or drop"),
            ))
        }
    };
    // (durable, the ring_full_action it implies)
    let by_delivery = match keys.delivery.as_deref() {
        None => None,
        Some("memory") => Some((false, Some(RingFull::Block))),
        Some("best_effort") => Some((false, Some(RingFull::Drop))),
        Some("durable") => Some((true, None)),
        Some(other) => {
            return Err(section.error(
                Some("delivery"),
                format!("`{other}` is not \"memory\", \"best_effort\" or \"durable\""),
            ))
        }
    };
    if let Some((durable, implied)) = by_delivery {
        if use_buffering.is_some_and(|buffer| buffer != durable) {
            return Err(section.error(
                Some("delivery"),
                "contradicts use_buffering; set only one of them",
            ));
        }
        if implied.is_some() && ring_full.is_some() && implied != ring_full {
            return Err(section.error(
                Some("delivery"),
                "contradicts ring_full_action; set only one of them",
            ));
        }
    }
    let durable = use_buffering
        .or(by_delivery.map(|(durable, _)| durable))
        .unwrap_or(false);
    if durable && ring_full == Some(RingFull::Drop) {
        return Err(section.error(
            Some("ring_full_action"),
            "a durable filter has no ring; set buffering.full_action = \"drop\" instead",
        ));
    }
    let (_, options) = durable_options(
        section,
        global,
        Some(durable),
        None,
        keys.buffering.as_ref(),
    )?;
    let ring_full = ring_full
        .or(by_delivery.and_then(|(_, implied)| implied))
        .unwrap_or(RingFull::Block);
    Ok((ring_full, options))
}
