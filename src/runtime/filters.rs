//! Filter lanes and filter hosts: how messages reach the core that owns a filter's state.
//!
//! Every core evaluates every filter's matcher itself, on the lazy view. A match is appended,
//! as a filter record, to this core's *lane* toward the filter's host core: one lane per
//! (core, host core) pair, shipped in batches over an rtrb SPSC ring (or, when the filter
//! lives on this very core, into the host's local inbox). Records travel as Heka protobuf,
//! the form the filter reads them in, so nothing is decoded twice.
//!
//! The record format (and the stat-record flag) is [`crate::filter::record`]'s.
//!
//! The host task on the filter's core runs the filters, calls their timers, and routes what
//! they inject again on that core, against every output and filter matcher, one loop deeper;
//! past `max_message_loops` an injected message is dropped and counted (Heka's loop guard).
//!
//! A full lane: for a `ring_full_action = "block"` filter (the default) the producing core
//! waits, and so stops reading its sockets; for `"drop"` the record is dropped and counted.
//! The host parks while it has nothing to do: a push into one of its lane rings (or its
//! inbox) wakes it at once (see [`super::ring`]); durable queues, timers and the end of the
//! run are looked at when it wakes, at least every [`HOST_IDLE_WAIT_MAX`]. Lane buffers go
//! back to the core that filled them once their records are processed.
//! A terminated filter's records are counted as dropped, on the ingest cores (which see its
//! flag) and on the host (for what was already in flight).
//!
//! A durable filter's lane ships into this core's disk queue for it instead of a ring; the
//! host reads the queues back (see [`super::durable_filters`]).
//!
//! Stopping: each core, once its inputs are closed and its lanes shipped, counts itself done;
//! hosts keep going until every core is done, no filter record is in flight anywhere and no
//! durable filter's queue has records to read (or [`crate::limits::DRAIN_TIMEOUT`]
//! has passed), then run each filter's shutdown hook (whose injections go to outputs only) and
//! ship.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backoff::Backoff;
use super::durable_filters::{DurableSource, FilterQueue};
use super::notify::LocalNotify;
use super::ring::{Abandoned, BatchConsumer, BatchProducer};
use super::shard::Shard;
use crate::filter::record::{self, FilterRecord, STAT_RECORD};
use crate::filter::{injected_records, Emitted, Filter, Outcome};
use crate::limits::DRAIN_TIMEOUT;
use crate::message::{MessageView, ProtoView};
use crate::output::Batch;
use crate::queue::DurableQueue;
use crate::telemetry::{Metric, Telemetry};

/// Bytes of one filter batch: small, so filters see messages within about a tick.
pub const FILTER_BATCH_BYTES: usize = 64 * 1024;
/// The first and the longest idle wait of a host with nothing to do, between looks at its
/// durable queues, timers and the end of the run (a ring or inbox push wakes it at once).
pub const HOST_IDLE_WAIT_MIN: Duration = Duration::from_micros(100);
/// See [`HOST_IDLE_WAIT_MIN`].
pub const HOST_IDLE_WAIT_MAX: Duration = Duration::from_millis(2);
/// One process call in this many is timed for `process_nanoseconds_total`.
const PROCESS_TIMING_SAMPLE: u64 = 16;

/// What every core shares about filters.
#[derive(Debug)]
pub struct FilterShared {
    /// Per filter: it has terminated; ingest cores stop sending it records.
    pub terminated: Vec<AtomicBool>,
    /// Filter records shipped and not yet processed, over all lanes.
    pub in_flight: AtomicI64,
    /// Cores whose inputs are closed and whose lanes are shipped.
    pub cores_done: AtomicUsize,
    /// Durable filter queues whose consumer has records to read.
    pub durable_busy: AtomicUsize,
    /// Raised once by the first host that finds everything quiet after every core is done:
    /// durable consumers then stop reading, and hosts leave once nothing is in flight.
    pub finishing: AtomicBool,
}

impl FilterShared {
    /// State for `filters` filters.
    pub fn new(filters: usize) -> Arc<FilterShared> {
        Arc::new(FilterShared {
            terminated: (0..filters).map(|_| AtomicBool::new(false)).collect(),
            in_flight: AtomicI64::new(0),
            cores_done: AtomicUsize::new(0),
            durable_busy: AtomicUsize::new(0),
            finishing: AtomicBool::new(false),
        })
    }
}

/// A host core's inbox for records from its own core.
#[derive(Default)]
pub struct Inbox {
    batches: RefCell<VecDeque<Batch>>,
    /// Notified when a batch arrives: wakes the parked host.
    arrived: LocalNotify,
    /// Notified when a batch leaves: wakes a lane waiting for room.
    room: LocalNotify,
}

impl Inbox {
    fn pop(&self) -> Option<Batch> {
        let batch = self.batches.borrow_mut().pop_front()?;
        self.room.notify();
        Some(batch)
    }

    fn push(&self, batch: Batch) {
        self.batches.borrow_mut().push_back(batch);
        self.arrived.notify();
    }

    fn len(&self) -> usize {
        self.batches.borrow().len()
    }
}

/// Where a lane's batches go.
pub enum LaneTarget {
    /// The host is this core: batches go into its inbox.
    Local(Rc<Inbox>),
    /// The host is another core: batches go over this SPSC ring.
    Ring(Rc<BatchProducer>),
    /// This core's disk queue for one durable filter.
    Durable(Rc<FilterQueue>),
}

/// One core's lane toward one host core.
pub struct Lane {
    batch: Batch,
    target: LaneTarget,
    slots: usize,
}

impl Lane {
    /// A lane shipping to `target`, which holds at most `slots` batches.
    pub fn new(target: LaneTarget, slots: usize) -> Lane {
        Lane {
            batch: Batch::with_capacity(FILTER_BATCH_BYTES),
            target,
            slots,
        }
    }

    /// This core's queue for a durable filter, when the lane ships to one.
    pub fn durable_queue(&self) -> Option<&Rc<DurableQueue>> {
        match &self.target {
            LaneTarget::Durable(queue) => Some(queue.queue()),
            LaneTarget::Local(_) | LaneTarget::Ring(_) => None,
        }
    }

    /// Whether the destination is full right now (for `drop` filters).
    pub fn is_congested(&self) -> bool {
        match &self.target {
            LaneTarget::Local(inbox) => inbox.len() >= self.slots,
            LaneTarget::Ring(producer) => producer.is_congested(),
            // Durable filters have no `drop` lane: a full queue does its `full_action`.
            LaneTarget::Durable(_) => false,
        }
    }

    /// Appends one message for filter `filter` at loop depth `loops`.
    #[inline]
    pub fn push(&mut self, filter: u16, loops: u8, message: &MessageView<'_>) {
        record::encode(&mut self.batch.bytes, filter, loops, message);
        self.batch.messages += 1;
    }

    /// Appends a raw record (a stat record) for filter `filter`.
    pub fn push_raw(&mut self, filter: u16, flags: u8, message: &[u8]) {
        record::encode_raw(&mut self.batch.bytes, filter, flags, message);
        self.batch.messages += 1;
    }

    /// Whether the batch should ship now.
    pub fn is_full(&self) -> bool {
        self.batch.bytes.len() >= FILTER_BATCH_BYTES
    }

    /// Takes the batch and where it goes, if it has anything.
    pub fn take(&mut self) -> Option<(Batch, LaneShip)> {
        if self.batch.is_empty() {
            return None;
        }
        let fresh = match &self.target {
            LaneTarget::Ring(producer) => producer.fresh_batch(FILTER_BATCH_BYTES),
            LaneTarget::Local(_) | LaneTarget::Durable(_) => {
                Batch::with_capacity(FILTER_BATCH_BYTES)
            }
        };
        let batch = std::mem::replace(&mut self.batch, fresh);
        let to = match &self.target {
            LaneTarget::Local(inbox) => LaneShip::Local(inbox.clone(), self.slots),
            LaneTarget::Ring(producer) => LaneShip::Ring(producer.clone()),
            LaneTarget::Durable(queue) => LaneShip::Durable(queue.clone()),
        };
        Some((batch, to))
    }
}

/// A lane batch's destination, detached so the router can be used while it ships.
pub enum LaneShip {
    /// Into the host's inbox on this core, which holds at most this many batches.
    Local(Rc<Inbox>, usize),
    /// Over the ring to the host core.
    Ring(Rc<BatchProducer>),
    /// Into this core's disk queue for one durable filter.
    Durable(Rc<FilterQueue>),
}

impl LaneShip {
    /// Delivers a batch, waiting while the destination is full; with `wait_for_room` false
    /// a batch for the local inbox goes in at once (the host task ships so: it is the one
    /// that empties its inbox, and waiting there would wait for itself while the inputs of
    /// its core refill every slot it frees). The inbox then holds at most one batch per lane
    /// of the host's core over its `slots`.
    ///
    /// # Errors
    /// [`Abandoned`], with the batch, when the host core has gone: its records are no longer
    /// in flight, and the caller counts them as dropped.
    pub async fn ship(
        self,
        batch: Batch,
        shared: &FilterShared,
        wait_for_room: bool,
    ) -> Result<(), Abandoned> {
        let producer = match self {
            // Queued records are not in flight: they wait on disk, and their consumers say
            // when they have something to read (see `durable_filters`).
            LaneShip::Durable(queue) => {
                queue.ship(batch).await;
                return Ok(());
            }
            LaneShip::Local(inbox, slots) => {
                shared
                    .in_flight
                    .fetch_add(batch.messages as i64, Ordering::AcqRel);
                // The host is on this core: its pops notify `room`, so no wake can be lost.
                while wait_for_room && inbox.len() >= slots {
                    inbox.room.wait().await;
                }
                inbox.push(batch);
                return Ok(());
            }
            LaneShip::Ring(producer) => producer,
        };
        let messages = batch.messages as i64;
        shared.in_flight.fetch_add(messages, Ordering::AcqRel);
        let pushed = producer.push(batch).await;
        if pushed.is_err() {
            shared.in_flight.fetch_sub(messages, Ordering::AcqRel);
        }
        pushed
    }
}

/// One filter living on this core.
pub struct Hosted {
    /// The filter itself.
    pub filter: Box<dyn Filter>,
    /// Its index among the plan's filters (and in [`FilterShared::terminated`]).
    pub index: usize,
    /// Its plugin index in [`Telemetry`].
    pub plugin: usize,
    /// The filter's section name in the config, for logs.
    pub name: String,
    next_tick: Option<Instant>,
    terminated: bool,
    /// Calls so far, for sampling the timing.
    calls: u64,
}

impl Hosted {
    /// Wraps a built filter.
    pub fn new(filter: Box<dyn Filter>, index: usize, plugin: usize, name: String) -> Hosted {
        let next_tick = filter
            .ticker_interval()
            .map(|interval| Instant::now() + interval);
        Hosted {
            filter,
            index,
            plugin,
            name,
            next_tick,
            terminated: false,
            calls: 0,
        }
    }
}

/// Everything a host core needs to run its filters.
pub struct Host {
    /// Indexed by filter index; `None` for filters hosted elsewhere.
    pub filters: Vec<Option<Hosted>>,
    /// The lane rings from every other core.
    pub consumers: BatchConsumer,
    /// Batches from lanes on this very core.
    pub inbox: Rc<Inbox>,
    /// One per (durable filter hosted here, core row): its queue's consumer.
    pub durable: Vec<DurableSource>,
    /// The number of cores in the plan: the host runs until every one of them is done.
    pub cores: usize,
    /// Heka's `max_message_loops`: how many times an injected message may be routed back to filters
    /// before it is dropped.
    pub max_loops: u32,
}

impl Host {
    /// Whether filter `index` (hosted here) has terminated.
    pub fn is_terminated(&self, index: usize) -> bool {
        matches!(self.filters.get(index), Some(Some(hosted)) if hosted.terminated)
    }

    /// The telemetry plugin index of filter `index`, if hosted here (else 0).
    pub fn plugin_of(&self, index: usize) -> usize {
        match self.filters.get(index) {
            Some(Some(hosted)) => hosted.plugin,
            _ => 0,
        }
    }
}

/// Routes the records a filter injected, one loop deeper than `loops`.
fn route_injected(
    shard: &Shard,
    hosted: &Hosted,
    emitted: &Emitted,
    loops: u8,
    max_loops: u32,
    to_filters: bool,
) {
    let telemetry: &Telemetry = &shard.telemetry;
    let mut router = shard.router.borrow_mut();
    for (accumulator, record) in emitted.stat_records() {
        router.push_stat(accumulator, record);
    }
    for record in injected_records(&emitted.inject) {
        telemetry.add(shard.core, hosted.plugin, Metric::Injected, 1);
        if u32::from(loops) + 1 > max_loops {
            telemetry.add(shard.core, hosted.plugin, Metric::Dropped, 1);
            continue;
        }
        match crate::decoder::protobuf::decode(record) {
            Ok(view) => router.route_from_filter(&MessageView::Proto(view), loops + 1, to_filters),
            Err(_) => telemetry.add(shard.core, hosted.plugin, Metric::DecodeFailures, 1),
        }
    }
}

fn apply_outcome(shard: &Shard, hosted: &mut Hosted, shared: &FilterShared, outcome: Outcome) {
    let (telemetry, core) = (&shard.telemetry, shard.core);
    match outcome {
        Outcome::Ok => {}
        Outcome::Failed => telemetry.add(core, hosted.plugin, Metric::ProcessFailures, 1),
        Outcome::Dropped => telemetry.add(core, hosted.plugin, Metric::Dropped, 1),
        Outcome::Terminated(message) => {
            hosted.terminated = true;
            shared.terminated[hosted.index].store(true, Ordering::Release);
            telemetry.add(core, hosted.plugin, Metric::Terminations, 1);
            if let Ok(view) = crate::decoder::protobuf::decode(&message) {
                shard
                    .router
                    .borrow_mut()
                    .route_from_filter(&MessageView::Proto(view), 0, true);
            }
        }
    }
}

/// Runs the filter records in `bytes` through their filters and routes what they inject. With
/// `only`, every record is for that filter, whatever index it carries (a durable filter's
/// queue may hold records written under another configuration).
pub(super) fn process_records(
    shard: &Shard,
    host: &mut Host,
    shared: &FilterShared,
    bytes: &[u8],
    only: Option<u16>,
    emitted: &mut Emitted,
) {
    for FilterRecord {
        filter: index,
        loops,
        message,
    } in record::decode(bytes)
    {
        let index = only.unwrap_or(index);
        let Some(Some(hosted)) = host.filters.get_mut(usize::from(index)) else {
            continue;
        };
        if hosted.terminated {
            shard
                .telemetry
                .add(shard.core, hosted.plugin, Metric::Dropped, 1);
            continue;
        }
        emitted.clear();
        // Time one call in PROCESS_TIMING_SAMPLE, as Heka sampled (two clock reads per
        // message would cost a cheap filter a sixth of its time); the total is scaled.
        hosted.calls += 1;
        let started = (hosted.calls % PROCESS_TIMING_SAMPLE == 0).then(Instant::now);
        let outcome = if loops & STAT_RECORD != 0 {
            hosted.filter.add_stat(message)
        } else {
            let view = MessageView::Proto(ProtoView::new(message));
            hosted.filter.process(&view, emitted)
        };
        let telemetry = &shard.telemetry;
        if outcome != Outcome::Dropped {
            telemetry.add(shard.core, hosted.plugin, Metric::Processed, 1);
        }
        if let Some(started) = started {
            let nanos = started.elapsed().as_nanos() as u64 * PROCESS_TIMING_SAMPLE;
            telemetry.add(shard.core, hosted.plugin, Metric::ProcessNanos, nanos);
        }
        route_injected(
            shard,
            hosted,
            emitted,
            loops & !STAT_RECORD,
            host.max_loops,
            true,
        );
        apply_outcome(shard, hosted, shared, outcome);
    }
}

/// Processes a batch, ships what its filters injected toward other filters, and only then
/// counts the batch as done, so the in-flight count never dips to zero in between. Returns the
/// batch's buffer, to recycle.
async fn handle_batch(
    shard: &Shard,
    host: &mut Host,
    shared: &FilterShared,
    batch: Batch,
    emitted: &mut Emitted,
) -> Vec<u8> {
    process_records(shard, host, shared, &batch.bytes, None, emitted);
    shard.ship_lanes_from_host().await;
    shared
        .in_flight
        .fetch_sub(batch.messages as i64, Ordering::AcqRel);
    shard.ship_full_from_host().await;
    batch.bytes
}

fn run_timers(shard: &Shard, host: &mut Host, shared: &FilterShared, emitted: &mut Emitted) {
    let now = Instant::now();
    for hosted in host.filters.iter_mut().flatten() {
        let Some(due) = hosted.next_tick else {
            continue;
        };
        if now < due || hosted.terminated {
            continue;
        }
        let interval = hosted
            .filter
            .ticker_interval()
            .unwrap_or(Duration::from_secs(1));
        hosted.next_tick = Some(due + interval);
        emitted.clear();
        let outcome = hosted.filter.timer(crate::message::now_ns(), emitted);
        route_injected(shard, hosted, emitted, 0, host.max_loops, true);
        apply_outcome(shard, hosted, shared, outcome);
    }
}

/// Heka's InChanLength and InChanCapacity for each filter on this core: the batches waiting
/// in the rings (and local inbox) toward this core, and what they can hold; and each Lua
/// filter's Memory, MaxInstructions and MaxOutput.
fn publish_ring_gauges(shard: &Shard, host: &Host) {
    let waiting = host.consumers.waiting() + host.inbox.len();
    let capacity = host.consumers.capacity();
    for hosted in host.filters.iter().flatten() {
        if let Some(usage) = hosted.filter.sandbox_usage() {
            usage.publish(&shard.telemetry, shard.core, hosted.plugin);
        }
        shard.telemetry.set(
            shard.core,
            hosted.plugin,
            Metric::RingLength,
            waiting as u64,
        );
        shard.telemetry.set(
            shard.core,
            hosted.plugin,
            Metric::RingCapacity,
            capacity as u64,
        );
    }
}

/// Once every core is done: raises [`FilterShared::finishing`] when nothing is in flight and no
/// durable queue has records to read, or when durable consumers have had [`DRAIN_TIMEOUT`]
/// since every core was done (what they have not read stays queued for the next start).
pub(super) fn raise_finishing_when_quiet(shared: &FilterShared, everyone_done_since: Instant) {
    if shared.finishing.load(Ordering::SeqCst) || shared.in_flight.load(Ordering::SeqCst) > 0 {
        return;
    }
    let durable_idle = shared.durable_busy.load(Ordering::SeqCst) == 0;
    if durable_idle || everyone_done_since.elapsed() > DRAIN_TIMEOUT {
        tracing::debug!(durable_idle, "filters finishing");
        shared.finishing.store(true, Ordering::SeqCst);
    }
}

/// Runs this core's filters (ring batches, local inbox, durable queues, timers) until filters
/// are finishing (see [`raise_finishing_when_quiet`]) and nothing is in flight, then their
/// shutdown hooks.
pub async fn run_host(shard: Rc<Shard>, mut host: Host, shared: Arc<FilterShared>) {
    let mut emitted = Emitted::default();
    let mut idle = Backoff::new(HOST_IDLE_WAIT_MIN, HOST_IDLE_WAIT_MAX);
    let mut sources = std::mem::take(&mut host.durable);
    let mut everyone_done_since: Option<Instant> = None;
    loop {
        let mut moved = false;
        while let Some((batch, source)) = host.consumers.try_pop() {
            let bytes = handle_batch(&shard, &mut host, &shared, batch, &mut emitted).await;
            host.consumers.recycle(source, bytes);
            moved = true;
            glommio::yield_if_needed().await;
        }
        while let Some(batch) = host.inbox.pop() {
            handle_batch(&shard, &mut host, &shared, batch, &mut emitted).await;
            moved = true;
            glommio::yield_if_needed().await;
        }
        for source in &mut sources {
            moved |= source.poll(&shard, &mut host, &shared, &mut emitted).await;
            glommio::yield_if_needed().await;
        }
        run_timers(&shard, &mut host, &shared, &mut emitted);
        publish_ring_gauges(&shard, &host);
        if shared.cores_done.load(Ordering::Acquire) >= host.cores {
            let since = *everyone_done_since.get_or_insert_with(|| {
                tracing::debug!(core = shard.core, "every core is done");
                Instant::now()
            });
            raise_finishing_when_quiet(&shared, since);
        }
        if moved {
            idle.reset();
            continue;
        }
        // Sequentially consistent, paired with the durable sources' reservations.
        if super::durable_filters::hosts_may_leave(&shared) {
            break;
        }
        if host.inbox.len() > 0 {
            continue;
        }
        // Parks until a lane ring or the inbox has a batch; the wait bounds how late durable
        // queues, timers and the end of the run are looked at.
        let arrived = host.inbox.arrived.wait();
        futures_lite::future::or(host.consumers.park(idle.step()), arrived).await;
    }
    for source in sources {
        source.close(&shared).await;
    }
    let now = crate::message::now_ns();
    for hosted in host.filters.iter_mut().flatten() {
        if hosted.terminated {
            continue;
        }
        emitted.clear();
        hosted.filter.shutdown(now, &mut emitted);
        emitted.stats.clear();
        // Filters are stopping everywhere: what a shutdown hook injects goes to outputs only.
        route_injected(&shard, hosted, &emitted, 0, host.max_loops, false);
    }
    shard.ship_all().await;
}
