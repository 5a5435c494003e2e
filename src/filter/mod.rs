//! Filters: stages that read routed messages and inject new ones, on the core that owns
//! their state (see `runtime::filters` for how messages reach that core).
//!
//! A filter is driven synchronously: [`Filter::process`] for each message its matcher chose,
//! [`Filter::timer`] every `ticker_interval`, [`Filter::shutdown`] once at a clean stop.
//! Injected messages are appended to the caller's sink as records (`u32` little-endian
//! length, then Heka protobuf), which the runtime routes again on this core.

#[cfg(feature = "lua")]
pub mod sandbox;

use std::time::Duration;

use crate::config::plan::{FilterKind, FilterPlan, GlobalPlan};
use crate::message::MessageView;

/// What one call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// A non-fatal failure, counted.
    Failed,
    /// The filter stopped for good; the message to route says why (Heka's
    /// `heka.sandbox-terminated`).
    Terminated(Vec<u8>),
}

/// One filter of any kind.
pub enum Filter {
    #[cfg(feature = "lua")]
    Sandbox(Box<sandbox::SandboxFilter>),
}

impl Filter {
    /// Builds the filter a plan names, on the core that hosts it.
    ///
    /// # Errors
    /// The filter cannot start (for a Lua filter: its script does not load).
    pub fn build(plan: &FilterPlan, global: &GlobalPlan) -> Result<Filter, String> {
        match &plan.kind {
            #[cfg(feature = "lua")]
            FilterKind::Sandbox(config) => {
                let host = crate::config::plan::sandbox_host_info(global);
                sandbox::SandboxFilter::new(&plan.name, config, &host)
                    .map(|filter| Filter::Sandbox(Box::new(filter)))
                    .map_err(|error| error.to_string())
            }
        }
    }

    /// Processes one message.
    pub fn process(&mut self, message: &MessageView<'_>, inject: &mut Vec<u8>) -> Outcome {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => match filter.process_message(message, inject) {
                Ok(crate::sandbox::CallStatus::Failed) => Outcome::Failed,
                Ok(_) => Outcome::Ok,
                Err(_) => Outcome::Terminated(filter.termination_message().unwrap_or_default()),
            },
        }
    }

    /// Runs the periodic event.
    pub fn timer(&mut self, now_ns: i64, inject: &mut Vec<u8>) -> Outcome {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => match filter.timer_event(now_ns, inject) {
                Ok(()) => Outcome::Ok,
                Err(_) => Outcome::Terminated(filter.termination_message().unwrap_or_default()),
            },
        }
    }

    /// The clean-stop hook (a last timer event if configured, state preservation).
    pub fn shutdown(&mut self, now_ns: i64, inject: &mut Vec<u8>) {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => {
                if let Err(error) = filter.shutdown(now_ns, inject) {
                    tracing::error!(%error, "filter shutdown failed");
                }
            }
        }
    }

    /// Time between timer events, if any.
    pub fn ticker_interval(&self) -> Option<Duration> {
        match self {
            #[cfg(feature = "lua")]
            Filter::Sandbox(filter) => match filter.ticker_interval_s() {
                0 => None,
                seconds => Some(Duration::from_secs(seconds)),
            },
        }
    }
}

/// Iterates the records that a call appended to the caller's sink: each record is a
/// little-endian `u32` length followed by that many bytes of Heka protobuf.
pub fn injected_records(sink: &[u8]) -> InjectedRecords<'_> {
    InjectedRecords { rest: sink }
}

/// Iterator returned by [`injected_records`]. A truncated tail ends the iteration.
pub struct InjectedRecords<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for InjectedRecords<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (length, rest) = self.rest.split_first_chunk::<4>()?;
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            self.rest = &[];
            return None;
        }
        let (record, rest) = rest.split_at(length);
        self.rest = rest;
        Some(record)
    }
}

/// Appends `record` to `sink` in the [`injected_records`] framing.
pub fn push_record(sink: &mut Vec<u8>, record: &[u8]) {
    sink.extend_from_slice(&(record.len() as u32).to_le_bytes());
    sink.extend_from_slice(record);
}
