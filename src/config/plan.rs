//! The validated plan the runtime starts from: every value checked, every name resolved,
//! every matcher compiled, every bound set. Built once at startup.
//!
//! [`build`] reads the global section ([`super::global`]), then hands every other section to
//! the kind its type names in the stages' registries ([`crate::input::KINDS`],
//! [`crate::output::KINDS`], [`crate::filter::KINDS`], and for sections only referred to by
//! name, the splitter, decoder and encoder registries). Nothing here names a plugin kind.

use std::path::PathBuf;
use std::sync::Arc;

use super::global::{global_plan, load_profile, GLOBAL_SECTIONS};
use super::heka_keys::{self, Stage};
use super::{by_name, raw, ConfigError, Document, Section};
use crate::component::{PlanContext, Registration};
use crate::decoder::DecoderKind;
use crate::encoder::EncoderKind;
use crate::filter::FilterKind;
use crate::input::InputKind;
use crate::matcher::Program;
use crate::output::OutputKind;

pub use super::delivery::{DeliveryClass, RingFull};
pub use super::global::{online_cores, GlobalPlan};
pub use crate::output::tcp::TcpPlan;
pub use crate::splitter::plan::SplitterPlan;

/// Settings given on the command line, which win over the config.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// The tuning profile given by `--tuning`, which wins over `[gyges] tuning`; `None` leaves
    /// the config's choice.
    pub tuning: Option<PathBuf>,
    /// Accept cores that are not online here (`gyges validate` of another machine's profile).
    pub allow_offline_cores: bool,
}

/// Everything the runtime needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What was loaded (a file, a directory or the embedded default), for messages.
    pub origin: String,
    /// The global section (`[hekad]` or `[gyges]`) and the tuning profile, resolved.
    pub global: GlobalPlan,
    /// Every input section, in config order; never empty.
    pub inputs: Vec<InputPlan>,
    /// Every output section, in config order.
    pub outputs: Vec<OutputPlan>,
    /// Every filter section, in config order; [`Plan::filter_index`] finds one by name.
    pub filters: Vec<FilterPlan>,
    /// Heka options present but ignored, logged once at startup.
    pub ignored_options: Vec<&'static str>,
    /// Heka plugin keys present that gyges treats its own way, one startup line each.
    pub notices: Vec<super::heka_keys::Notice>,
}

impl Plan {
    /// The index of the filter named `name`, if any.
    pub fn filter_index(&self, name: &str) -> Option<usize> {
        self.filters.iter().position(|filter| filter.name == name)
    }
}

/// One input: its kind, and what every input has (splitter, decoder, signers).
#[derive(Debug, Clone)]
pub struct InputPlan {
    /// The input's section name, used in logs and metric labels.
    pub name: String,
    /// The input kind's own plan (its address, connections, ...), which builds it per core.
    pub kind: Arc<dyn InputKind>,
    /// How the input cuts its byte stream into records (`splitter`, or the kind's default).
    pub splitter: SplitterPlan,
    /// `None`: the record becomes the Payload of a message the input fills in.
    pub decoder: Option<Arc<dyn DecoderKind>>,
    /// The HMAC keys of `[name.signer.<signer>_<version>]`, shared by the input's connections.
    pub verifier: Arc<crate::message::framing::Verifier>,
    /// Log each record the decoder refuses, at debug level (`log_decode_failures`, default
    /// true).
    pub log_decode_failures: bool,
    /// Route a record the decoder refuses on as a message whose Payload is the record
    /// (`send_decode_failures`, default false); when false it is only counted.
    pub send_decode_failures: bool,
}

/// One filter, hosted on one core.
#[derive(Debug, Clone)]
pub struct FilterPlan {
    /// The filter's section name, used in logs and metric labels.
    pub name: String,
    /// The compiled `message_matcher` selecting the messages it reads (`FALSE` when absent).
    pub matcher: Program,
    /// `message_signer`: when set, only messages whose Heka frame was signed by this signer
    /// and verified by the input reach it.
    pub message_signer: Option<Arc<str>>,
    /// The core whose state it is.
    pub host_core: usize,
    /// What an ingest core does when the ring to `host_core` is full (`ring_full_action`).
    pub ring_full: RingFull,
    /// The filter kind's own plan, which builds the filter on its host core.
    pub kind: Arc<dyn FilterKind>,
    /// With `use_buffering` (or `delivery = "durable"`): each core's disk queue for this
    /// filter's records, instead of the lane ring.
    pub durable: Option<crate::queue::QueueOptions>,
}

/// One output: its kind, and what every output has (matcher, encoder, delivery).
#[derive(Debug, Clone)]
pub struct OutputPlan {
    /// The output's section name, used in logs and metric labels.
    pub name: String,
    /// The core that writes it, when it has a single writer.
    pub owner_core: usize,
    /// The compiled `message_matcher` selecting the messages it writes (`FALSE` when absent).
    pub matcher: Program,
    /// `message_signer`: when set, only messages whose Heka frame was signed by this signer
    /// and verified by the input reach it.
    pub message_signer: Option<Arc<str>>,
    /// The encoder that turns each message into bytes (`encoder`, or the kind's default).
    pub encoder: Arc<dyn EncoderKind>,
    /// Whether each encoded message is preceded by a Heka stream frame header (`use_framing`).
    pub use_framing: bool,
    /// Signs each frame with HMAC (`[name.signer]`, Heka's `name`, `hmac_hash`, `hmac_key`,
    /// `version`); only with `use_framing`.
    pub signer: Option<Arc<crate::message::framing::Signer>>,
    /// The output kind's own plan (its destination), which builds it per core.
    pub kind: Arc<dyn OutputKind>,
    /// How batches reach the destination (`delivery`).
    pub delivery: DeliveryClass,
    /// With `use_buffering` (`delivery = "durable"`): each core's disk queue for this output.
    pub durable: Option<crate::queue::QueueOptions>,
}

/// Sections other plugins refer to by name: checked here too, so that an unused but broken
/// section still fails.
fn check_referenced(
    section: &Section,
    context: &PlanContext<'_>,
) -> Option<Result<(), ConfigError>> {
    let type_name = match section.plugin_type() {
        Ok(type_name) => type_name,
        Err(error) => return Some(Err(error)),
    };
    if crate::splitter::plan::is_splitter(type_name) {
        return Some(crate::splitter::plan::plan(section).map(drop));
    }
    if let Some(registration) = Registration::find(crate::decoder::KINDS, type_name) {
        return Some((registration.plan)(section, context).map(drop));
    }
    if let Some(registration) = Registration::find(crate::encoder::KINDS, type_name) {
        return Some((registration.plan)(section, context).map(drop));
    }
    None
}

/// Heka served its dashboard from DashboardOutput's `address` (default `:4352`, every
/// interface). With no `http_address` in the global section, that address becomes the operator
/// endpoint's, so a Heka config's dashboard is where it was (`docs/dashboard.md`).
///
/// # Errors
/// An `address` that is not a listen address.
fn dashboard_address(document: &Document) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    let dashboard = document.sections.iter().find(|section| {
        !GLOBAL_SECTIONS.contains(&section.name.as_str())
            && section.plugin_type().ok() == Some("DashboardOutput")
    });
    let Some(section) = dashboard else {
        return Ok(None);
    };
    let address = section.string("address")?.unwrap_or(":4352");
    section.address("address", address).map(Some)
}

/// Builds the plan from a loaded document.
///
/// # Errors
/// The first problem found, with its file, section and key.
pub fn build(document: &Document, overrides: &Overrides) -> Result<Plan, ConfigError> {
    let sections = by_name(document);
    let globals: Vec<&Section> = GLOBAL_SECTIONS
        .iter()
        .filter_map(|name| sections.get(name).copied())
        .collect();
    if globals.len() > 1 {
        return Err(globals[1].error(None, "give either [hekad] or [gyges], not both"));
    }
    let (global_raw, global_section) = match globals.first() {
        Some(section) => (section.parse::<raw::Global>()?, Some(*section)),
        None => (raw::Global::default(), None),
    };
    let profile = load_profile(&global_raw, global_section, &document.origin, overrides)?;
    let global = global_plan(
        &global_raw,
        global_section,
        &document.origin,
        overrides,
        profile.as_ref(),
    )?;
    let mut global = global;
    if global.http_address.is_none() {
        global.http_address = dashboard_address(document)?;
    }
    let mut plan = Plan {
        origin: document.origin.clone(),
        ignored_options: global_raw.ignored_present(),
        notices: Vec::new(),
        global,
        inputs: Vec::new(),
        outputs: Vec::new(),
        filters: Vec::new(),
    };
    for section in &document.sections {
        if GLOBAL_SECTIONS.contains(&section.name.as_str()) {
            continue;
        }
        let context = PlanContext {
            sections: &sections,
            global: &plan.global,
        };
        let type_name = section.plugin_type()?;
        if let Some(registration) = Registration::find(crate::input::KINDS, type_name) {
            let input = (registration.plan)(section, &context)?;
            plan.inputs.push(input);
            let notices = heka_keys::notices(section, Stage::Input, type_name);
            plan.notices.extend(notices);
        } else if let Some(registration) = Registration::find(crate::output::KINDS, type_name) {
            let output = (registration.plan)(section, &context)?;
            plan.outputs.push(output);
            let notices = heka_keys::notices(section, Stage::Output, type_name);
            plan.notices.extend(notices);
        } else if let Some(registration) = Registration::find(crate::filter::KINDS, type_name) {
            let filter = (registration.plan)(section, &context)?;
            let slots = filter.kind.dynamic_slots(&filter);
            plan.filters.push(filter);
            plan.filters.extend(slots);
            let notices = heka_keys::notices(section, Stage::Filter, type_name);
            plan.notices.extend(notices);
        } else if let Some(checked) = check_referenced(section, &context) {
            checked?;
        } else {
            let key = section.table.contains_key("type").then_some("type");
            return Err(section.error(key, format!("unknown plugin type `{type_name}`")));
        }
    }
    if plan.inputs.is_empty() {
        return Err(ConfigError::file(
            &document.origin,
            "no inputs are configured",
        ));
    }
    check_accumulators(&plan, &sections)?;
    check_placement(&plan, document)?;
    Ok(plan)
}

/// Every tuning-profile placement names a plugin section of the config.
fn check_placement(plan: &Plan, document: &Document) -> Result<(), ConfigError> {
    let Some((file, _)) = &plan.global.tuning else {
        return Ok(());
    };
    let known = |name: &str| document.sections.iter().any(|section| section.name == name);
    match plan.global.placement.keys().find(|name| !known(name)) {
        Some(name) => Err(ConfigError {
            file: file.clone(),
            section: Some("placement".into()),
            key: Some(name.clone()),
            message: "no plugin section has this name in the config".into(),
        }),
        None => Ok(()),
    }
}

/// Every plugin that sends stats (a StatsdInput's decoder, a StatFilter) names a
/// StatAccumInput that exists.
fn check_accumulators(
    plan: &Plan,
    sections: &std::collections::BTreeMap<&str, &Section>,
) -> Result<(), ConfigError> {
    let is_accumulator = |name: &str| {
        plan.filters
            .iter()
            .any(|filter| filter.name == name && filter.kind.accumulates_stats())
    };
    let from_inputs = plan.inputs.iter().filter_map(|input| {
        let decoder = input.decoder.as_ref()?;
        Some((input.name.as_str(), decoder.stat_accumulator()?))
    });
    let from_filters = plan
        .filters
        .iter()
        .filter_map(|filter| Some((filter.name.as_str(), filter.kind.stat_accumulator()?)));
    for (name, accumulator) in from_inputs.chain(from_filters) {
        if !is_accumulator(accumulator) {
            let message = format!("no StatAccumInput section named `{accumulator}`");
            return Err(match sections.get(name) {
                Some(section) => section.error(Some("stat_accum_name"), message),
                None => ConfigError::file(&plan.origin, message),
            });
        }
    }
    Ok(())
}
