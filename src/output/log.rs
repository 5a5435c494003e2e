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
