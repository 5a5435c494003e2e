//! The per-core router: every output's matcher is evaluated here, on the ingest core, against
//! the lazy view; a match encodes the message into that output's batch on this core.

use std::sync::Arc;
use std::time::Instant;

use crate::matcher::MatcherSet;
use crate::message::MessageView;
use crate::output::{Batch, ShipTo, Sink};
use crate::telemetry::{Metric, Telemetry};

/// One core's matchers and sinks, one of each per output, in plan order.
pub struct Router {
    matchers: MatcherSet,
    matched: Vec<bool>,
    sinks: Vec<Sink>,
    telemetry: Arc<Telemetry>,
    core: usize,
}

impl Router {
    /// A router over `sinks`, whose matchers are `matchers` in the same order.
    pub fn new(
        matchers: MatcherSet,
        sinks: Vec<Sink>,
        telemetry: Arc<Telemetry>,
        core: usize,
    ) -> Router {
        assert_eq!(matchers.len(), sinks.len(), "one matcher per sink");
        let matched = vec![false; sinks.len()];
        Router {
            matchers,
            matched,
            sinks,
            telemetry,
            core,
        }
    }

    /// Routes one message to every output whose matcher accepts it.
    #[inline]
    pub fn route(&mut self, message: &MessageView<'_>) {
        self.matchers.evaluate(message, &mut self.matched);
        for (sink, matched) in self.sinks.iter_mut().zip(&self.matched) {
            if *matched {
                self.telemetry
                    .add(self.core, sink.plugin, Metric::Matched, 1);
                sink.accept(message, &self.telemetry, self.core);
            }
        }
    }

    /// Takes the first batch that is full (or, with `due`, whose flush policy is due).
    pub fn take_ready(&mut self, due: Option<Instant>) -> Option<(Batch, ShipTo, usize)> {
        for sink in &mut self.sinks {
            let ready = match due {
                None => sink.is_full(),
                Some(now) => sink.is_full() || sink.is_due(now),
            };
            if ready {
                if let Some((batch, to)) = sink.take() {
                    return Some((batch, to, sink.plugin));
                }
            }
        }
        None
    }

    /// Takes the first non-empty batch.
    pub fn take_any(&mut self) -> Option<(Batch, ShipTo, usize)> {
        self.sinks
            .iter_mut()
            .find_map(|sink| sink.take().map(|(batch, to)| (batch, to, sink.plugin)))
    }

    /// Drops every sink, releasing ring producers so owners see this core finish.
    pub fn clear(&mut self) {
        self.sinks.clear();
        self.matched.clear();
    }
}
