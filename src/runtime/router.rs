//! The per-core router: every output's matcher is evaluated here, on the ingest core, against
//! the lazy view; a match encodes the message into that output's batch on this core.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use super::filters::{FilterShared, Lane, LaneShip};
use crate::filter::slots::SlotCache;
use crate::matcher::MatcherSet;
use crate::message::MessageView;
use crate::output::{Batch, Sink, Target};
use crate::queue::DurableQueue;
use crate::telemetry::{Metric, Telemetry};

/// One filter as seen from one core: which lane its records take.
pub struct FilterRoute {
    /// Its plugin index in [`Telemetry`].
    pub plugin: usize,
    /// Its index among the plan's filters.
    pub index: u16,
    /// The lane toward its host core.
    pub lane: usize,
    /// `ring_full_action = "drop"`.
    pub drop_when_full: bool,
}

/// A batch ready to ship, and where.
pub enum Ready {
    /// A batch for an output: its destination and the output's telemetry plugin index.
    Output(Batch, Target, usize),
    /// A batch of filter records for a lane, and where it ships.
    Lane(Batch, LaneShip),
}

/// One core's matchers, output sinks and filter lanes. The matchers are the outputs' in plan
/// order, then the filters'.
pub struct Router {
    matchers: MatcherSet,
    matched: Vec<bool>,
    /// Each matcher's `message_signer`: such a destination only gets messages that signer
    /// signed (the same order as the matchers; empty when no destination sets one).
    signers: Vec<Option<Arc<str>>>,
    /// The verified signer of the record being routed, set by its input (`signed`), its name
    /// in a buffer reused from record to record; unsigned records and whatever a filter
    /// injects have none.
    signer: Vec<u8>,
    /// Whether `signer` holds the current record's signer.
    signed: bool,
    sinks: Vec<Sink>,
    filters: Vec<FilterRoute>,
    /// Dynamic slots (a SandboxManagerFilter's): each one's position among the filters and
    /// its matcher as published on its board, refreshed once per batch
    /// ([`Router::take_ready`]), not per message.
    dynamic: Vec<(usize, SlotCache)>,
    lanes: Vec<Lane>,
    shared: Arc<FilterShared>,
    telemetry: Arc<Telemetry>,
    core: usize,
}

impl Router {
    /// A router over `sinks` and `filters`, whose matchers are `matchers` in the same order.
    pub fn new(
        matchers: MatcherSet,
        sinks: Vec<Sink>,
        filters: Vec<FilterRoute>,
        lanes: Vec<Lane>,
        shared: Arc<FilterShared>,
        telemetry: Arc<Telemetry>,
        core: usize,
    ) -> Router {
        assert_eq!(
            matchers.len(),
            sinks.len() + filters.len(),
            "one matcher per sink and filter"
        );
        assert!(filters.iter().all(|route| route.lane < lanes.len()));
        let matched = vec![false; matchers.len()];
        Router {
            matchers,
            matched,
            signers: Vec::new(),
            signer: Vec::new(),
            signed: false,
            sinks,
            filters,
            dynamic: Vec::new(),
            lanes,
            shared,
            telemetry,
            core,
        }
    }

    /// The telemetry plugin index of filter `index`, if this core routes to it.
    pub fn filter_plugin(&self, index: u16) -> Option<usize> {
        let route = self.filters.iter().find(|route| route.index == index)?;
        Some(route.plugin)
    }

    /// The filter state shared by every core.
    pub fn shared(&self) -> &Arc<FilterShared> {
        &self.shared
    }

    /// Routes one message that an input read.
    #[inline]
    pub fn route(&mut self, message: &MessageView<'_>) {
        self.route_from_filter(message, 0, true);
    }

    /// Sets `message_signer` per destination, in matcher order. Without it (or with none
    /// set) the signer of a record is never looked at.
    ///
    /// # Panics
    /// If `signers` is not one per matcher.
    pub fn with_signers(mut self, signers: Vec<Option<Arc<str>>>) -> Router {
        assert_eq!(
            signers.len(),
            self.matched.len(),
            "one signer option per matcher"
        );
        if signers.iter().any(Option::is_some) {
            self.signers = signers;
        }
        self
    }

    /// Sets the dynamic slots: each one's filter position (its index among the plan's
    /// filters) and its matcher cache. Their static matchers should be `FALSE`: a slot
    /// matches what its cache holds.
    ///
    /// # Panics
    /// If a position is not one of the filters.
    pub fn with_dynamic(mut self, dynamic: Vec<(usize, SlotCache)>) -> Router {
        assert!(dynamic
            .iter()
            .all(|(position, _)| *position < self.filters.len()));
        self.dynamic = dynamic;
        self.refresh_dynamic();
        self
    }

    /// Reloads the dynamic slots' matchers whose board moved: one atomic load per slot.
    fn refresh_dynamic(&mut self) {
        for (_, cache) in &mut self.dynamic {
            cache.refresh();
        }
    }

    /// Whether any destination on this core sets `message_signer`: only then does an input
    /// need to name the signer of what it routes ([`Router::set_signer`]).
    #[inline]
    pub fn wants_signers(&self) -> bool {
        !self.signers.is_empty()
    }

    /// The verified signer of the records routed next, until set again; `None` for unsigned
    /// ones. An input that verifies signatures sets it per record when [`Router::wants_signers`].
    pub fn set_signer(&mut self, signer: Option<&[u8]>) {
        self.signed = signer.is_some();
        if let Some(name) = signer {
            if self.signer != name {
                self.signer.clear();
                self.signer.extend_from_slice(name);
            }
        }
    }

    /// Routes one message `loops` filter hops deep; with `to_filters` false only outputs get it.
    #[inline]
    pub fn route_from_filter(&mut self, message: &MessageView<'_>, loops: u8, to_filters: bool) {
        self.matchers.evaluate(message, &mut self.matched);
        let outputs = self.sinks.len();
        for (position, cache) in &self.dynamic {
            if let Some(matcher) = cache.matcher() {
                self.matched[outputs + position] = matcher.matches(message);
            }
        }
        if !self.signers.is_empty() {
            self.apply_signers(loops);
        }
        let (outputs, filters) = self.matched.split_at(self.sinks.len());
        for (sink, matched) in self.sinks.iter_mut().zip(outputs) {
            if *matched {
                self.telemetry
                    .add(self.core, sink.plugin, Metric::Matched, 1);
                sink.accept(message, &self.telemetry, self.core);
            }
        }
        if !to_filters {
            return;
        }
        for (route, matched) in self.filters.iter().zip(filters) {
            if !*matched {
                continue;
            }
            let lane = &mut self.lanes[route.lane];
            let terminated = self.shared.terminated[usize::from(route.index)]
                .load(std::sync::atomic::Ordering::Relaxed);
            if terminated || (route.drop_when_full && lane.is_congested()) {
                self.telemetry
                    .add(self.core, route.plugin, Metric::Dropped, 1);
                continue;
            }
            self.telemetry
                .add(self.core, route.plugin, Metric::Matched, 1);
            lane.push(route.index, loops, message);
        }
    }

    /// Keeps only the matches whose `message_signer` signed the record. A filter that
    /// refuses a record its matcher chose counts it (`rejected_total`): a SandboxManagerFilter
    /// shows so the control messages it did not act on.
    fn apply_signers(&mut self, loops: u8) {
        // A message a filter injects has no signer, as in Heka.
        let signer = (loops == 0 && self.signed).then_some(self.signer.as_slice());
        let outputs = self.sinks.len();
        for (index, (matched, required)) in self.matched.iter_mut().zip(&self.signers).enumerate() {
            let Some(required) = required else { continue };
            if *matched && signer != Some(required.as_bytes()) {
                *matched = false;
                if let Some(route) = index.checked_sub(outputs).map(|at| &self.filters[at]) {
                    self.telemetry
                        .add(self.core, route.plugin, Metric::Rejected, 1);
                }
            }
        }
    }

    /// Sends a stat record to the StatAccumInput with filter index `accumulator`, on its core.
    pub fn push_stat(&mut self, accumulator: u16, record: &[u8]) {
        let Some(route) = self.filters.iter().find(|route| route.index == accumulator) else {
            return;
        };
        self.telemetry
            .add(self.core, route.plugin, Metric::Matched, 1);
        self.lanes[route.lane].push_raw(accumulator, crate::filter::record::STAT_RECORD, record);
    }

    /// Takes the first batch that is full (or, with `due`, whose flush policy is due; a
    /// filter lane is due whenever it has anything).
    pub fn take_ready(&mut self, due: Option<Instant>) -> Option<Ready> {
        self.refresh_dynamic();
        for sink in &mut self.sinks {
            let ready = match due {
                None => sink.is_full(),
                Some(now) => sink.is_full() || sink.is_due(now),
            };
            if ready {
                if let Some((batch, to)) = sink.take() {
                    return Some(Ready::Output(batch, to, sink.plugin));
                }
            }
        }
        self.lanes
            .iter_mut()
            .filter(|lane| due.is_some() || lane.is_full())
            .find_map(|lane| lane.take().map(|(batch, to)| Ready::Lane(batch, to)))
    }

    /// Takes the first batch that is full, or that its flush policy ships once its input has
    /// read everything there was ([`crate::output::FlushPolicy::on_idle`]). Filter lanes
    /// wait for the tick as before.
    pub fn take_idle(&mut self, now: Instant) -> Option<Ready> {
        for sink in &mut self.sinks {
            if sink.is_full() || sink.ran_dry(now) {
                if let Some((batch, to)) = sink.take() {
                    return Some(Ready::Output(batch, to, sink.plugin));
                }
            }
        }
        self.lanes
            .iter_mut()
            .filter(|lane| lane.is_full())
            .find_map(|lane| lane.take().map(|(batch, to)| Ready::Lane(batch, to)))
    }

    /// The earliest time a batch held back by [`crate::limits::IDLE_SHIP_GAP`] becomes due
    /// ([`crate::output::Sink::idle_deadline`]), if any.
    pub fn idle_deadline(&self) -> Option<Instant> {
        self.sinks.iter().filter_map(Sink::idle_deadline).min()
    }

    /// Takes the first non-empty filter lane batch.
    pub fn take_lane(&mut self) -> Option<Ready> {
        self.lanes
            .iter_mut()
            .find_map(|lane| lane.take().map(|(batch, to)| Ready::Lane(batch, to)))
    }

    /// How many batches this core fills: one per sink and one per lane.
    pub fn batch_count(&self) -> usize {
        self.sinks.len() + self.lanes.len()
    }

    /// Takes the first non-empty batch.
    pub fn take_any(&mut self) -> Option<Ready> {
        let output = self.sinks.iter_mut().find_map(|sink| {
            sink.take()
                .map(|(batch, to)| Ready::Output(batch, to, sink.plugin))
        });
        output.or_else(|| self.take_lane())
    }

    /// Whether routing more now would make this core wait: an output's destination is full
    /// ([`Target::is_congested`]), or a filter that waits rather than drops has a full lane.
    /// An input that can refuse work (HttpListenInput's 503) asks before it routes.
    pub fn is_congested(&self) -> bool {
        let outputs = self.sinks.iter().any(|sink| sink.target.is_congested());
        outputs
            || self
                .filters
                .iter()
                .any(|route| !route.drop_when_full && self.lanes[route.lane].is_congested())
    }

    /// This core's queues of durable outputs and durable filters.
    pub fn durable_queues(&self) -> Vec<Rc<DurableQueue>> {
        let outputs = self.sinks.iter().filter_map(|sink| match &sink.target {
            Target::Durable(queue) => Some(queue.clone()),
            _ => None,
        });
        let filters = self
            .lanes
            .iter()
            .filter_map(|lane| lane.durable_queue().cloned());
        outputs.chain(filters).collect()
    }

    /// Drops every sink and lane, releasing ring producers so owners see this core finish.
    pub fn clear(&mut self) {
        self.sinks.clear();
        self.lanes.clear();
        self.filters.clear();
        self.dynamic.clear();
        self.matched.clear();
    }
}
