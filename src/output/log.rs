//! LogOutput: encoded messages to standard output, for debugging.

use std::io::Write;

use super::Batch;
use crate::telemetry::{Metric, Telemetry};

/// Writes a batch to stdout. Blocking, which is acceptable for a debugging output.
pub fn write(batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&batch.bytes).and_then(|()| stdout.flush()) {
        Ok(()) => {
            telemetry.add(core, plugin, Metric::Sent, batch.messages);
            telemetry.add(core, plugin, Metric::SentBytes, batch.bytes.len() as u64);
        }
        Err(_) => {
            telemetry.add(core, plugin, Metric::Errors, 1);
            telemetry.add(core, plugin, Metric::Dropped, batch.messages);
        }
    }
}

/// `LogOutput`'s own keys: none (the common output keys are in [`super::plan::RawCommon`]);
/// any other key is an error naming it.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogOutput {}

/// LogOutput, planned: it has no options of its own.
#[derive(Debug, Clone, Copy)]
pub struct LogOutputKind;

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::OutputPlan> =
    crate::component::Registration {
        type_names: &["LogOutput"],
        plan: |section, context| {
            let (common, own) = super::plan::split_common(section)?;
            own.parse::<RawLogOutput>()?;
            let common = common.with_defaults("PayloadEncoder", false, false);
            let plan = super::plan::output_plan(section, context, common, |_| {
                Ok(std::sync::Arc::new(LogOutputKind))
            })?;
            // stdout is written synchronously: LogOutput cannot drop instead of waiting.
            let why = "LogOutput writes stdout synchronously; only \"memory\" is available";
            super::plan::memory_only(section, &plan, why)?;
            Ok(plan)
        },
    };

impl super::OutputKind for LogOutputKind {
    fn type_name(&self) -> &'static str {
        "LogOutput"
    }

    fn describe(&self, _: &crate::config::plan::OutputPlan) -> String {
        "stdout".into()
    }

    fn writers(&self) -> super::Writers {
        super::Writers::EveryCore
    }

    fn open<'a>(
        &'a self,
        _: &'a super::OutputCore<'a>,
    ) -> crate::component::LocalBoxFuture<'a, Result<super::Opened, String>> {
        Box::pin(async { Ok(super::Opened::plain(std::rc::Rc::new(LogOutputKind))) })
    }
}

impl super::Destination for LogOutputKind {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> crate::component::LocalBoxFuture<'a, ()> {
        write(batch, telemetry, core, plugin);
        Box::pin(async {})
    }
}
