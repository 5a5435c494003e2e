//! One core: its router, its inputs' tasks, its ticker, and the batches it ships.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::notify::LocalNotify;
use super::ring::{Abandoned, Batch};
use super::router::{Ready, Router};
use super::stop::LocalStop;
use crate::message::UuidSource;
use crate::telemetry::{Metric, Telemetry};

/// How often each core checks its sinks' flush policies.
pub const TICK: Duration = Duration::from_millis(1);

/// The state one core's tasks share. Lives on that core only.
pub struct Shard {
    /// This core's row in [`Telemetry`] (its position in the plan's core list).
    pub core: usize,
    /// The CPU it is pinned to.
    pub cpu: usize,
    /// The counters every core writes its own row of.
    pub telemetry: Arc<Telemetry>,
    /// This core's matchers, output sinks and filter lanes.
    pub router: RefCell<Router>,
    /// This core's UUID generator, for plain-line records (which arrive without one).
    pub uuids: RefCell<UuidSource>,
    /// Raised when this core must stop; inputs and the ticker wait on it.
    pub stop: Rc<LocalStop>,
    /// Bytes a stream input reads at once (the global `read_buffer_size`).
    pub read_buffer_bytes: usize,
    open_inputs: Rc<Cell<usize>>,
    inputs_changed: Rc<LocalNotify>,
    /// When the ticker must wake for a batch held back by [`crate::limits::IDLE_SHIP_GAP`],
    /// earlier than its next tick ([`Router::idle_deadline`]).
    idle_at: Cell<Option<Instant>>,
    /// Wakes the ticker when `idle_at` moves earlier.
    idle_armed: LocalNotify,
}

/// Which task ships: a core's inputs (which wait for room in a full local inbox) or the
/// filter host (which must not: it empties that inbox).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shipper {
    Core,
    Host,
}

/// Counts one open connection or socket while it lives.
pub struct InputGuard {
    open_inputs: Rc<Cell<usize>>,
    inputs_changed: Rc<LocalNotify>,
}

impl Drop for InputGuard {
    fn drop(&mut self) {
        self.open_inputs.set(self.open_inputs.get() - 1);
        self.inputs_changed.notify();
    }
}

impl Shard {
    /// A shard routing through `router`.
    pub fn new(
        core: usize,
        cpu: usize,
        telemetry: Arc<Telemetry>,
        router: Router,
        stop: Rc<LocalStop>,
        read_buffer_bytes: usize,
    ) -> Shard {
        Shard {
            core,
            cpu,
            telemetry,
            router: RefCell::new(router),
            uuids: RefCell::new(UuidSource::new()),
            stop,
            read_buffer_bytes,
            open_inputs: Rc::new(Cell::new(0)),
            inputs_changed: LocalNotify::new(),
            idle_at: Cell::new(None),
            idle_armed: LocalNotify::default(),
        }
    }

    /// Registers an open connection or socket until the guard is dropped.
    pub fn connection_opened(&self) -> InputGuard {
        self.open_inputs.set(self.open_inputs.get() + 1);
        InputGuard {
            open_inputs: self.open_inputs.clone(),
            inputs_changed: self.inputs_changed.clone(),
        }
    }

    /// Waits until every connection and socket of this core has closed.
    pub async fn inputs_closed(&self) {
        while self.open_inputs.get() > 0 {
            self.inputs_changed
                .wait_timeout(Duration::from_millis(10))
                .await;
        }
    }

    async fn ship(&self, ready: Ready) {
        self.ship_as(ready, Shipper::Core).await;
    }

    /// Ships one batch. The filter host never waits for room in its own inbox (it is the
    /// one that empties it): see [`super::filters::LaneShip::ship`].
    async fn ship_as(&self, ready: Ready, shipper: Shipper) {
        match ready {
            Ready::Output(batch, target, plugin) => {
                target.ship(batch, &self.telemetry, self.core, plugin).await;
            }
            Ready::Lane(batch, to) => {
                let shared = self.router.borrow().shared().clone();
                let wait_for_room = shipper == Shipper::Core;
                if let Err(Abandoned(batch)) = to.ship(batch, &shared, wait_for_room).await {
                    self.count_lane_drops(&batch);
                }
            }
        }
    }

    /// Counts the records of a lane batch whose host core has gone as dropped, each against
    /// its filter.
    fn count_lane_drops(&self, batch: &Batch) {
        let router = self.router.borrow();
        for record in crate::filter::record::decode(&batch.bytes) {
            if let Some(plugin) = router.filter_plugin(record.filter) {
                self.telemetry.add(self.core, plugin, Metric::Dropped, 1);
            }
        }
    }

    /// Ships every full batch, waiting while destinations are full (backpressure).
    pub async fn ship_full(&self) {
        loop {
            let ready = self.router.borrow_mut().take_ready(None);
            let Some(ready) = ready else { return };
            self.ship(ready).await;
        }
    }

    /// What an input calls once it has read everything its source had (a short socket read,
    /// the end of a log file): ships
    /// every full batch, and the partly filled ones whose output ships on idle
    /// ([`crate::output::FlushPolicy::on_idle`]).
    ///
    /// A batch it holds back because its output shipped less than
    /// [`crate::limits::IDLE_SHIP_GAP`] ago ships when the gap ends: the ticker is woken for
    /// it then, rather than at its next tick (up to [`TICK`] later).
    pub async fn ship_idle(&self) {
        let now = Instant::now();
        loop {
            let ready = self.router.borrow_mut().take_idle(now);
            let Some(ready) = ready else { break };
            self.ship(ready).await;
        }
        let deadline = self.router.borrow().idle_deadline();
        if let Some(deadline) = deadline {
            if self.idle_at.get().is_none_or(|armed| deadline < armed) {
                self.idle_at.set(Some(deadline));
                self.idle_armed.notify();
            }
        }
    }

    /// Ships every batch that has anything now, each at most once: batches filled while
    /// this runs wait for the next ship.
    pub async fn ship_present(&self) {
        let batches = self.router.borrow().batch_count();
        for _ in 0..batches {
            let ready = self.router.borrow_mut().take_any();
            let Some(ready) = ready else { return };
            self.ship(ready).await;
        }
    }

    /// Ships every batch whose flush policy is due.
    pub async fn ship_due(&self) {
        let now = Instant::now();
        loop {
            let ready = self.router.borrow_mut().take_ready(Some(now));
            let Some(ready) = ready else { return };
            self.ship(ready).await;
        }
    }

    /// Ships every filter lane that has anything.
    pub async fn ship_lanes(&self) {
        loop {
            let ready = self.router.borrow_mut().take_lane();
            let Some(ready) = ready else { return };
            self.ship(ready).await;
        }
    }

    /// [`Shard::ship_full`] for the filter host task.
    pub async fn ship_full_from_host(&self) {
        loop {
            let ready = self.router.borrow_mut().take_ready(None);
            let Some(ready) = ready else { return };
            self.ship_as(ready, Shipper::Host).await;
        }
    }

    /// [`Shard::ship_lanes`] for the filter host task.
    pub async fn ship_lanes_from_host(&self) {
        loop {
            let ready = self.router.borrow_mut().take_lane();
            let Some(ready) = ready else { return };
            self.ship_as(ready, Shipper::Host).await;
        }
    }

    /// Ships everything, whatever the policies say (shutdown).
    pub async fn ship_all(&self) {
        loop {
            let ready = self.router.borrow_mut().take_any();
            let Some(ready) = ready else { return };
            self.ship(ready).await;
        }
    }

    /// Ships everything, then waits until what went to durable queues is appended: what this
    /// core had routed before the call is then as safe as its route makes it. An
    /// acknowledgement to a sender waits for this.
    pub async fn settle(&self) {
        self.ship_all().await;
        let queues = self.router.borrow().durable_queues();
        for queue in queues {
            queue.settled().await;
        }
    }

    /// Ships due batches every [`TICK`] until the core stops, and records how late each tick
    /// ran as this core's stall ([`Telemetry::record_stall`]): a task that holds the core (a
    /// long batch, a Lua compile) or a CPU taken by another process delays the tick by as
    /// much, whatever the traffic. Between ticks it also wakes when a batch held back by the
    /// idle gap becomes due ([`Shard::ship_idle`]); those wake-ups are not ticks and record
    /// no stall.
    pub async fn tick(self: Rc<Self>) {
        let mut next_tick = Instant::now() + TICK;
        while !self.stop.is_stopping() {
            let wake_at = wake_at(next_tick, self.idle_at.get());
            let sleep = glommio::timer::sleep(wake_at.saturating_duration_since(Instant::now()));
            let woken = futures_lite::future::or(sleep, self.idle_armed.wait());
            futures_lite::future::or(woken, self.stop.wait()).await;
            let now = Instant::now();
            if now >= next_tick {
                let late = now.saturating_duration_since(next_tick);
                let late_ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
                self.telemetry.record_stall(self.core, late_ns);
            } else if self.idle_at.get().is_none_or(|at| now < at) {
                // Woken to sleep until an earlier deadline.
                continue;
            }
            self.idle_at.set(None);
            self.ship_due().await;
            // A held batch whose gap has not ended yet (shipping took less than the gap).
            let deadline = self.router.borrow().idle_deadline();
            if self.idle_at.get().is_none() {
                self.idle_at.set(deadline);
            }
            if now >= next_tick {
                next_tick = Instant::now() + TICK;
            }
        }
    }
}

/// When the ticker wakes: at its next tick, or earlier when a held batch's gap ends then.
fn wake_at(next_tick: Instant, idle_at: Option<Instant>) -> Instant {
    idle_at.map_or(next_tick, |at| at.min(next_tick))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::LocalBoxFuture;
    use crate::matcher::{Dialect, MatcherSet};
    use crate::message::{MessageView, ProtoView};
    use crate::output::{Destination, FlushPolicy, Sink, Target};
    use crate::runtime::filters::FilterShared;
    use crate::testing::OneByte;

    /// Records when each batch arrived and how many messages it held.
    #[derive(Default)]
    struct Recorder(RefCell<Vec<(Instant, u64)>>);

    impl Destination for Recorder {
        fn ship<'a>(
            &'a self,
            batch: Batch,
            _: &'a Telemetry,
            _: usize,
            _: usize,
        ) -> LocalBoxFuture<'a, ()> {
            self.0.borrow_mut().push((Instant::now(), batch.messages));
            Box::pin(async {})
        }
    }

    /// One core routing every message to one output that ships only on idle (its
    /// `flush_interval` is ten minutes).
    fn shard_with_one_output(recorder: Rc<Recorder>) -> Rc<Shard> {
        let telemetry = Telemetry::new(1, vec!["out".to_string()]);
        let policy = FlushPolicy {
            interval: Duration::from_secs(600),
            count: 1,
            either: true,
            on_idle: true,
        };
        let sink = Sink::new(
            0,
            Box::new(OneByte),
            false,
            (1 << 20, 1024),
            policy,
            Target::Direct(recorder),
        );
        let matcher = crate::matcher::compile("TRUE", Dialect::Heka).expect("matcher");
        let router = Router::new(
            MatcherSet::new(vec![matcher]),
            vec![sink],
            Vec::new(),
            Vec::new(),
            FilterShared::new(0),
            telemetry.clone(),
            0,
        );
        Rc::new(Shard::new(0, 0, telemetry, router, LocalStop::new(), 4096))
    }

    /// A batch an input leaves idle right after its output shipped is held for the gap, the
    /// ticker is armed for the moment the gap ends, and it ships then, not before.
    #[test]
    fn a_batch_held_by_the_idle_gap_arms_the_ticker_and_ships_after_the_gap() {
        crate::testing::run_local(async {
            let recorder = Rc::new(Recorder::default());
            let shard = shard_with_one_output(recorder.clone());
            let message = MessageView::Proto(ProtoView::new(&[]));
            glommio::timer::sleep(crate::limits::IDLE_SHIP_GAP).await;
            shard.router.borrow_mut().route(&message);
            shard.ship_idle().await;
            let first = recorder.0.borrow()[0].0;
            assert_eq!(shard.idle_at.get(), None, "shipped at once: nothing held");

            shard.router.borrow_mut().route(&message);
            shard.router.borrow_mut().route(&message);
            shard.ship_idle().await;
            assert_eq!(recorder.0.borrow().len(), 1, "within the gap: held");
            let armed = shard.idle_at.get().expect("the ticker is armed");
            // The gap runs from the moment the first batch was taken, just before it arrived.
            let gap = crate::limits::IDLE_SHIP_GAP;
            assert!(
                armed > first && armed <= first + gap,
                "armed for the gap's end"
            );

            let ticker = glommio::spawn_local(shard.clone().tick());
            while recorder.0.borrow().len() < 2 {
                glommio::timer::sleep(Duration::from_micros(50)).await;
            }
            let (second, messages) = recorder.0.borrow()[1];
            assert_eq!(messages, 2, "the held batch, whole");
            assert!(second >= armed, "not before the gap ended");
            shard.stop.raise();
            ticker.await;
            assert_eq!(shard.idle_at.get(), None, "nothing left to wake for");
        });
    }

    #[test]
    fn the_ticker_wakes_for_a_held_batch_before_its_next_tick() {
        let now = Instant::now();
        let tick = now + TICK;
        let gap_ends = now + crate::limits::IDLE_SHIP_GAP;
        assert_eq!(wake_at(tick, None), tick, "nothing held: the tick");
        assert_eq!(
            wake_at(tick, Some(gap_ends)),
            gap_ends,
            "the gap ends first"
        );
        let later = tick + TICK;
        assert_eq!(wake_at(tick, Some(later)), tick, "the tick comes first");
    }
}
