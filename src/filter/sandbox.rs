//! SandboxFilter: a Lua filter (Heka's most used plugin), as a synchronous struct the
//! runtime drives on the filter's core.
//!
//! The runtime calls [`SandboxFilter::process_message`] for each matching message and
//! [`SandboxFilter::timer_event`] every `ticker_interval` seconds; injected messages arrive in
//! the caller's sink as records ([`crate::sandbox::injected_records`]), already stamped as
//! Heka stamps a filter's messages: Type prefixed `heka.sandbox.`, Logger the filter's name,
//! Hostname the daemon's. Injections are capped per call (`max_process_inject`,
//! `max_timer_inject`); passing a cap terminates the filter.
//!
//! Once a call returns [`Terminated`], the runtime routes [`SandboxFilter::termination_message`]
//! (Heka's `heka.sandbox-terminated`), counts what is left in the filter's ring as dropped and
//! drops the filter; every other plugin carries on.

use crate::message::MessageView;
use crate::sandbox::{
    CallStatus, HostInfo, Sandbox, SandboxConfig, SandboxError, SandboxKind, SandboxStats,
    Terminated,
};

/// A Lua filter.
#[derive(Debug)]
pub struct SandboxFilter {
    sandbox: Sandbox,
    ticker_interval_s: u64,
    timer_event_on_shutdown: bool,
    can_exit: bool,
}

impl SandboxFilter {
    /// Loads the script; see [`Sandbox::new`].
    ///
    /// # Errors
    /// As [`Sandbox::new`]; also when `ticker_interval` is set but the script has no
    /// `timer_event`.
    pub fn new(
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Result<SandboxFilter, SandboxError> {
        let sandbox = Sandbox::new(SandboxKind::Filter, name, config, host_info)?;
        if (config.ticker_interval > 0 || config.timer_event_on_shutdown)
            && !sandbox.has_function("timer_event")
        {
            return Err(SandboxError::MissingFunction {
                path: config.filename.clone(),
                function: "timer_event",
            });
        }
        Ok(SandboxFilter {
            sandbox,
            ticker_interval_s: config.ticker_interval,
            timer_event_on_shutdown: config.timer_event_on_shutdown,
            can_exit: config.can_exit.unwrap_or(true),
        })
    }

    /// Hands one message to `process_message`. Injections are appended to `sink`.
    ///
    /// # Errors
    /// [`Terminated`] when the filter stopped (now or earlier).
    pub fn process_message(
        &mut self,
        record: &MessageView<'_>,
        sink: &mut Vec<u8>,
    ) -> Result<CallStatus, Terminated> {
        self.sandbox.process_message(record, sink)
    }

    /// Calls `timer_event(ns)`. Injections are appended to `sink`.
    ///
    /// # Errors
    /// [`Terminated`] when the filter stopped (now or earlier).
    pub fn timer_event(&mut self, ns: i64, sink: &mut Vec<u8>) -> Result<(), Terminated> {
        self.sandbox.timer_event(ns, sink)
    }

    /// Clean shutdown: a last `timer_event` if `timer_event_on_shutdown`, then the state is
    /// saved if `preserve_data`.
    ///
    /// # Errors
    /// [`SandboxError::Preservation`] if the state cannot be saved. A terminated last
    /// `timer_event` is not an error: the state is then simply not saved.
    pub fn shutdown(&mut self, now_ns: i64, sink: &mut Vec<u8>) -> Result<(), SandboxError> {
        if self.timer_event_on_shutdown && self.sandbox.termination_reason().is_none() {
            let _ = self.sandbox.timer_event(now_ns, sink);
        }
        self.sandbox.preserve()
    }

    /// Seconds between timer events (0: none).
    pub fn ticker_interval_s(&self) -> u64 {
        self.ticker_interval_s
    }

    /// Whether the daemon may go on without this filter.
    pub fn can_exit(&self) -> bool {
        self.can_exit
    }

    /// The counters.
    pub fn stats(&self) -> &SandboxStats {
        self.sandbox.stats()
    }

    /// The script's last error string.
    pub fn last_error(&self) -> &str {
        self.sandbox.last_error()
    }

    /// Heka's `heka.sandbox-terminated` message for this filter, once terminated.
    pub fn termination_message(&self) -> Option<Vec<u8>> {
        self.sandbox.termination_message()
    }
}

/// The SandboxFilter kind: a section's name and its sandbox config.
#[derive(Debug, Clone)]
pub struct SandboxFilterKind {
    config: Box<SandboxConfig>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::FilterPlan> =
    crate::component::Registration {
        type_names: &["SandboxFilter"],
        plan: |section, context| {
            let (common, own) = super::plan::split_common(section)?;
            let matcher = common.message_matcher.clone();
            let signer = common.message_signer.clone();
            let delivery = super::plan::delivery(section, context, common)?;
            let config = crate::sandbox::plan::sandbox_config(&own, &[])?;
            let kind = crate::sandbox::SandboxKind::Filter;
            crate::sandbox::plan::check_script(section, kind, &config, context.global)?;
            let kind = SandboxFilterKind {
                config: Box::new(config),
            };
            let kind = std::sync::Arc::new(kind);
            let selects = (matcher.as_deref(), signer.as_deref());
            super::plan::filter_plan(section, context, selects, delivery, kind)
        },
    };

impl super::FilterKind for SandboxFilterKind {
    fn type_name(&self) -> &'static str {
        "SandboxFilter"
    }

    fn build(&self, build: &super::FilterBuild<'_>) -> Result<Box<dyn super::Filter>, String> {
        let host = crate::sandbox::plan::host_info(build.global);
        SandboxFilter::new(build.name, &self.config, &host)
            .map(|filter| Box::new(filter) as Box<dyn super::Filter>)
            .map_err(|error| error.to_string())
    }
}

impl super::Filter for SandboxFilter {
    fn process(
        &mut self,
        message: &MessageView<'_>,
        emitted: &mut super::Emitted,
    ) -> super::Outcome {
        match self.process_message(message, &mut emitted.inject) {
            Ok(CallStatus::Failed) => super::Outcome::Failed,
            Ok(_) => super::Outcome::Ok,
            Err(_) => super::Outcome::Terminated(self.termination_message().unwrap_or_default()),
        }
    }

    fn timer(&mut self, now_ns: i64, emitted: &mut super::Emitted) -> super::Outcome {
        match self.timer_event(now_ns, &mut emitted.inject) {
            Ok(()) => super::Outcome::Ok,
            Err(_) => super::Outcome::Terminated(self.termination_message().unwrap_or_default()),
        }
    }

    fn shutdown(&mut self, now_ns: i64, emitted: &mut super::Emitted) {
        if let Err(error) = SandboxFilter::shutdown(self, now_ns, &mut emitted.inject) {
            tracing::error!(%error, "filter shutdown failed");
        }
    }

    fn sandbox_usage(&self) -> Option<super::SandboxUsage> {
        Some(usage_of(self.stats()))
    }

    fn ticker_interval(&self) -> Option<std::time::Duration> {
        match self.ticker_interval_s() {
            0 => None,
            seconds => Some(std::time::Duration::from_secs(seconds)),
        }
    }
}

/// A sandbox's counters as the gauges its host publishes.
pub fn usage_of(stats: &SandboxStats) -> super::SandboxUsage {
    super::SandboxUsage {
        memory_bytes: stats.memory_bytes as u64,
        instructions_max: stats.instructions_max,
        output_bytes_max: stats.output_bytes_max as u64,
    }
}
