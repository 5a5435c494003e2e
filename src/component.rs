//! The component contract: how a plugin kind plugs into gyges.
//!
//! Every input, output, decoder, encoder and filter kind lives in one module of its stage
//! (`src/input/tcp.rs`, `src/output/file.rs`, …). That module owns three things:
//! 1. its **raw config**: a serde struct with Heka's option names, `deny_unknown_fields`;
//! 2. its **validated plan**: a type implementing its stage's kind trait
//!    ([`crate::input::InputKind`], [`crate::output::OutputKind`],
//!    [`crate::decoder::DecoderKind`], [`crate::encoder::EncoderKind`],
//!    [`crate::filter::FilterKind`]), built once at startup from a config section;
//! 3. its **per-core build**: the kind trait's build method, run on every core that needs it,
//!    which returns what that core wires in (an output's target, flush policy, tasks and close
//!    hook; an input's tasks; a decoder, encoder or filter instance).
//!
//! A stage's `mod.rs` holds the trait and one registry, a slice of [`Registration`]s. Adding a
//! plugin kind is its own module plus one line in that registry; nothing in `config/` or
//! `runtime/` names a plugin kind.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use crate::config::plan::GlobalPlan;
use crate::config::{ConfigError, Section};

/// A boxed future that stays on its core: what the kind traits' per-core builds return.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Lets a plan's kind be looked at as its concrete type (tests, `gyges validate`): every kind
/// trait has it as a supertrait, and every `'static` type has it.
pub trait AsAny {
    /// `self` as [`std::any::Any`], to `downcast_ref` to the kind's type.
    fn as_any(&self) -> &dyn std::any::Any;
}

impl<T: std::any::Any> AsAny for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Finds a filter's index by its section name (a StatAccumInput a decoder or a filter feeds).
pub type FilterIndex<'a> = &'a dyn Fn(&str) -> Option<usize>;

/// What a plugin's planner may read besides its own section: every section by name (to
/// resolve a splitter, decoder or encoder it names) and the global plan.
pub struct PlanContext<'a> {
    /// Every section of the config, by section name, to look up the splitter, decoder or
    /// encoder a plugin names.
    pub sections: &'a BTreeMap<&'a str, &'a Section>,
    /// The checked `[hekad]` settings and core layout.
    pub global: &'a GlobalPlan,
}

/// One registry line: the Heka type names a kind answers to, and its planner.
pub struct Registration<P> {
    /// The `type` values (or section names) that select this kind.
    pub type_names: &'static [&'static str],
    /// Checks the section and builds the kind's plan.
    pub plan: fn(&Section, &PlanContext<'_>) -> Result<P, ConfigError>,
}

impl<P> Registration<P> {
    /// The registration in `registry` answering to `type_name`, if any.
    pub fn find<'r>(registry: &'r [Registration<P>], type_name: &str) -> Option<&'r Self> {
        registry
            .iter()
            .find(|registration| registration.type_names.contains(&type_name))
    }
}

/// The stage a plugin belongs to, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// An input: receives bytes from the network (`src/input/`).
    Input,
    /// A decoder: turns a split record into a message (`src/decoder/`).
    Decoder,
    /// A filter: reads matched messages and may inject new ones (`src/filter/`).
    Filter,
    /// An encoder: turns a message into an output's bytes (`src/encoder/`).
    Encoder,
    /// An output: writes encoded messages to their destination (`src/output/`).
    Output,
}

impl Stage {
    /// The stage's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Input => "input",
            Stage::Decoder => "decoder",
            Stage::Filter => "filter",
            Stage::Encoder => "encoder",
            Stage::Output => "output",
        }
    }
}

/// Why a core could not start: a typed error naming the core and the plugin.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A plugin could not be built or bound on a core.
    #[error("core {cpu}: {} [{plugin}]: {message}", stage.name())]
    Plugin {
        /// The core (CPU number) the plugin failed on.
        cpu: usize,
        /// The stage of the failed plugin.
        stage: Stage,
        /// The plugin's section name in the config.
        plugin: String,
        /// What went wrong, for the operator.
        message: String,
    },
    /// The executor of a core could not be started.
    #[error("cannot start the executor for core {cpu}: {message}")]
    Executor {
        /// The core (CPU number) whose executor failed to start.
        cpu: usize,
        /// What went wrong, for the operator.
        message: String,
    },
}

impl StartupError {
    /// A plugin's failure on core `cpu`.
    pub fn plugin(cpu: usize, stage: Stage, plugin: &str, message: impl Into<String>) -> Self {
        StartupError::Plugin {
            cpu,
            stage,
            plugin: plugin.to_string(),
            message: message.into(),
        }
    }

    /// The plugin section the error names, if it names one.
    pub fn plugin_name(&self) -> Option<&str> {
        match self {
            StartupError::Plugin { plugin, .. } => Some(plugin),
            StartupError::Executor { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_startup_error_names_the_core_the_stage_and_the_plugin() {
        let error = StartupError::plugin(3, Stage::Output, "file_out", "cannot open /x: denied");
        assert_eq!(
            error.to_string(),
            "core 3: output [file_out]: cannot open /x: denied"
        );
        assert_eq!(error.plugin_name(), Some("file_out"));
    }

    #[test]
    fn a_registry_finds_a_kind_by_any_of_its_type_names() {
        fn plan(_: &Section, _: &PlanContext<'_>) -> Result<u8, ConfigError> {
            Ok(1)
        }
        let registry = [
            Registration {
                type_names: &["A"],
                plan,
            },
            Registration {
                type_names: &["B", "C"],
                plan,
            },
        ];
        let found = Registration::find(&registry, "C").map(|found| found.type_names);
        assert_eq!(found, Some(&["B", "C"][..]));
        assert!(Registration::find(&registry, "D").is_none());
    }
}
