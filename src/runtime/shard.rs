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
    pub async fn ship_idle(&self) {
        let now = Instant::now();
        loop {
            let ready = self.router.borrow_mut().take_idle(now);
            let Some(ready) = ready else { return };
            self.ship(ready).await;
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
    /// much, whatever the traffic.
    pub async fn tick(self: Rc<Self>) {
        while !self.stop.is_stopping() {
            let asleep = Instant::now();
            futures_lite::future::or(glommio::timer::sleep(TICK), self.stop.wait()).await;
            let late = asleep.elapsed().saturating_sub(TICK);
            let late_ns = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
            self.telemetry.record_stall(self.core, late_ns);
            self.ship_due().await;
        }
    }
}
