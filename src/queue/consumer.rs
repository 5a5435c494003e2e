//! The one queue consumer: how every durable route reads a source queue back and hands it to
//! its destination, whatever that destination is.
//!
//! A [`Consumer`] owns everything about consuming one core row's queue that is not about the
//! destination: waiting for the row to publish its handle on the route's
//! [`super::HandleBoard`], opening the route's reader, reading batches of records, committing
//! what the destination took, checkpointing by cadence, retrying from the last commit after a
//! failure (with a [`Backoff`]), and the stop protocol. The destination is a [`Deliver`]: a
//! file write or a TCP send (`output/durable.rs`), an acknowledged send whose commits arrive
//! later (`output/acked.rs`), or a durable filter's lane processing (`runtime/durable_filters.rs`).
//!
//! A consumer is driven in one of two ways:
//! - **As its own task**, [`Consumer::run`] (outputs): step, wait when idle, retry after a
//!   failure, until the stop protocol says it is finished.
//! - **Step by step** from a host loop (durable filters): [`Consumer::step`] does one bounded
//!   piece of work and never waits for records; the host does its other work between steps
//!   and runs its own stop protocol.
//!
//! One step: if the last read is not delivered yet, offer it again ([`Delivered::Part`] keeps
//! it); else, if the destination has room and the queue has records, read a batch (at most the
//! queue's `read_bytes`) and offer it; else, if the destination holds sent records awaiting
//! acknowledgement, wait a little for it to [`Deliver::settle`]. A read the destination took
//! ([`Delivered::Done`]) is committed at its end at once; one it only sent
//! ([`Delivered::Sent`]) is committed up to where `settle` later says. Commits reach the
//! checkpoint every `checkpoint_interval` (or `cursor_update_count` records) and at close.
//!
//! A failure (a read that fails, a destination that refuses) rewinds the reader to the last
//! commit: what was read and not committed is offered again, so delivery is at least once and
//! never skips. [`Consumer::run`] waits between tries, 50 ms doubling to 2 s.
//!
//! Stop protocol ([`Consumer::stop_check`], deterministic: the caller passes the time). Once
//! the core is stopping, the consumer is [`Finish::Drained`] when the queue's writer is closed,
//! nothing is left to read, and the destination holds nothing unacknowledged; it is
//! [`Finish::DeadlinePassed`] once [`DRAIN_TIMEOUT`] has passed since it first saw the stop.
//! Either way [`Consumer::close`] then checkpoints what was committed; what is left stays on
//! disk for the next start.

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::board::HandleBoard;
use super::{Position, QueueError, QueueHandle, ReadBatch, Reader};
use crate::runtime::backoff::Backoff;
use crate::runtime::stop::LocalStop;
use crate::telemetry::{Metric, Telemetry};

use crate::limits::DRAIN_TIMEOUT;
/// Shortest and longest wait before a failed step is tried again.
const RETRY_DELAY_MIN: Duration = Duration::from_millis(50);
const RETRY_DELAY_MAX: Duration = Duration::from_secs(2);
/// How long a task-driven consumer waits for records before it ticks its checkpoint.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How long one wait for acknowledgements lasts before the consumer looks at its queue and the
/// stop flag again.
const SETTLE_WAIT: Duration = Duration::from_millis(20);
/// Shortest and longest wait when the queue says it has records but none is whole yet (one
/// still being written, or damage the reader skips): waiting, not spinning, leaves the core to
/// its other tasks, the stop watcher among them.
const STALL_WAIT_MIN: Duration = Duration::from_millis(1);
const STALL_WAIT_MAX: Duration = Duration::from_millis(16);
/// Shortest and longest wait between looks at the board for the row's handle.
const OPEN_POLL_MIN: Duration = Duration::from_millis(1);
const OPEN_POLL_MAX: Duration = Duration::from_millis(50);
/// How long a consumer waits for its row to publish its queue at startup.
const OPEN_WAIT_MAX: Duration = Duration::from_secs(30);

/// What a destination did with the records it was offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// All of them are delivered: the consumer commits the end of the read now.
    Done,
    /// All of them are sent, not yet acknowledged: [`Deliver::settle`] says later up to where
    /// they may be committed.
    Sent,
    /// Only some: the consumer offers the same records again on its next step.
    Part,
}

/// A destination for a queue's records.
///
/// Futures of a consumer never leave their core (glommio), hence plain `async fn`s.
#[allow(async_fn_in_trait)]
pub trait Deliver {
    /// Why a delivery failed: logged and counted by the consumer, which then rewinds.
    type Error: fmt::Display;

    /// Delivers the records of a read (or, after [`Delivered::Part`], the rest of them).
    ///
    /// # Errors
    /// The destination refused or was lost; nothing of this read counts as delivered.
    async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, Self::Error>;

    /// [`Deliver::deliver`] for a destination that may take the batch's bytes
    /// ([`ReadBatch::take_handed`]) instead of copying them. Only a destination that never
    /// answers [`Delivered::Part`] may take them: the consumer re-offers a partly delivered
    /// batch as it is. After a failure the consumer reads the records again from the queue.
    ///
    /// # Errors
    /// As [`Deliver::deliver`].
    async fn deliver_owned(&mut self, records: &mut ReadBatch) -> Result<Delivered, Self::Error> {
        self.deliver(records).await
    }

    /// Whether it takes another read now (an acknowledging sender with a full window does
    /// not).
    fn has_room(&self) -> bool {
        true
    }

    /// Whether nothing it sent awaits acknowledgement.
    fn is_settled(&self) -> bool {
        true
    }

    /// Waits at most `wait` for acknowledgements (zero: takes those already there without
    /// waiting); returns the queue position up to which everything is acknowledged, if that
    /// moved.
    ///
    /// # Errors
    /// The destination was lost, or did not acknowledge in time.
    async fn settle(&mut self, wait: Duration) -> Result<Option<Position>, Self::Error> {
        let _ = wait;
        Ok(None)
    }

    /// A failure lost what was in flight: forget it (the consumer rewinds to the last commit).
    async fn reset(&mut self) {}

    /// The consumer is finished: release the destination.
    async fn close(&mut self) {}
}

/// What one [`Consumer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Records were delivered (in part, or sent) or acknowledgements committed.
    Progress,
    /// Nothing to do: no records to read (or no room for them) and nothing in flight.
    Idle,
    /// The queue has records but none is whole yet: try again shortly.
    Stalled,
    /// It waited for acknowledgements, and none came.
    Waited,
    /// The queue is not open (its row has not published it yet, or it never will).
    Closed,
}

/// Why a step failed.
#[derive(Debug)]
pub enum StepError<E> {
    /// Reading the queue failed.
    Read(QueueError),
    /// The destination failed to take the records.
    Deliver(E),
}

impl<E: fmt::Display> fmt::Display for StepError<E> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Read(error) => write!(formatter, "queue read failed: {error}"),
            StepError::Deliver(error) => write!(formatter, "delivery failed: {error}"),
        }
    }
}

/// Why a consumer stopped (see the stop protocol in the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The writer is closed and everything was delivered.
    Drained,
    /// The stop's deadline passed; the rest stays on disk.
    DeadlinePassed,
    /// The queue never opened (logged).
    NeverOpened,
}

/// Where a consumer stands with its queue.
enum State {
    /// The row has not published its queue yet; waiting since then.
    Waiting { since: Instant },
    Open {
        handle: QueueHandle,
        reader: Box<Reader>,
    },
    /// Given up: the queue never opened, or the reader could not be opened (logged).
    Gone,
}

/// The consumer of one core row's queue of one durable route.
pub struct Consumer {
    board: Arc<HandleBoard>,
    row: usize,
    state: State,
    records: ReadBatch,
    /// The last read is not wholly delivered yet.
    held: bool,
    stall: Backoff,
    /// When this consumer first saw its core stopping.
    stopping_since: Option<Instant>,
}

impl Consumer {
    /// The consumer of core row `row`'s queue on `board` (reading as the board's route).
    pub fn new(board: Arc<HandleBoard>, row: usize) -> Consumer {
        Consumer {
            board,
            row,
            state: State::Waiting {
                since: Instant::now(),
            },
            records: ReadBatch::new(),
            held: false,
            stall: Backoff::new(STALL_WAIT_MIN, STALL_WAIT_MAX),
            stopping_since: None,
        }
    }

    /// Opens the reader if the row has published its queue, without waiting. Returns whether
    /// the reader is open. Gives up (logged) when `now` is more than [`OPEN_WAIT_MAX`] past
    /// the consumer's creation and the queue is still not published.
    pub fn try_open(&mut self, now: Instant) -> bool {
        if let State::Waiting { since } = self.state {
            self.state = match self.board.get(self.row) {
                Some(handle) => match Reader::open(&handle, self.board.name()) {
                    Ok(reader) => State::Open {
                        handle,
                        reader: Box::new(reader),
                    },
                    Err(error) => {
                        tracing::error!(queue = %handle.dir().display(), %error,
                            "cannot open the queue reader");
                        State::Gone
                    }
                },
                None if now.saturating_duration_since(since) > OPEN_WAIT_MAX => {
                    tracing::error!(route = %self.board.name(), row = self.row,
                        "the core's queue never opened");
                    State::Gone
                }
                None => return false,
            };
        }
        matches!(self.state, State::Open { .. })
    }

    /// Whether it has given up on its queue.
    pub fn is_gone(&self) -> bool {
        matches!(self.state, State::Gone)
    }

    /// The queue's handle, once open.
    pub fn handle(&self) -> Option<&QueueHandle> {
        match &self.state {
            State::Open { handle, .. } => Some(handle),
            _ => None,
        }
    }

    /// Whether there is something to deliver: the rest of the last read, or published records.
    pub fn has_data(&mut self) -> bool {
        match &mut self.state {
            State::Open { reader, .. } => self.held || reader.has_data(),
            _ => false,
        }
    }

    /// Does one bounded piece of work (see the module docs); never waits for records.
    ///
    /// # Errors
    /// The read or the delivery failed. Call [`Consumer::rewind`] (and reset the destination)
    /// before the next step.
    pub async fn step<D: Deliver>(
        &mut self,
        destination: &mut D,
    ) -> Result<Step, StepError<D::Error>> {
        let State::Open { handle, reader } = &mut self.state else {
            return Ok(Step::Closed);
        };
        if !self.held {
            if destination.has_room() && reader.has_data() {
                // Take the acknowledgements already there before sending more, so that the
                // commits (and with them the checkpoint) follow close behind what the
                // destination holds: a lost connection then sends again only what is really
                // unacknowledged, not a whole window.
                if !destination.is_settled() {
                    let acknowledged = destination
                        .settle(Duration::ZERO)
                        .await
                        .map_err(StepError::Deliver)?;
                    if let Some(position) = acknowledged {
                        commit(reader, handle, position).await;
                    }
                }
                let count = reader
                    .read(&mut self.records)
                    .await
                    .map_err(StepError::Read)?;
                if count == 0 {
                    return Ok(Step::Stalled);
                }
                self.held = true;
                self.stall.reset();
            } else if !destination.is_settled() {
                return match destination.settle(SETTLE_WAIT).await {
                    Ok(Some(position)) => {
                        commit(reader, handle, position).await;
                        Ok(Step::Progress)
                    }
                    Ok(None) => Ok(Step::Waited),
                    Err(error) => Err(StepError::Deliver(error)),
                };
            } else {
                return Ok(Step::Idle);
            }
        }
        match destination
            .deliver_owned(&mut self.records)
            .await
            .map_err(StepError::Deliver)?
        {
            Delivered::Done => {
                self.held = false;
                commit(reader, handle, self.records.end()).await;
            }
            Delivered::Sent => self.held = false,
            Delivered::Part => {}
        }
        Ok(Step::Progress)
    }

    /// After a failure: forgets the last read and moves the reader back to the last commit,
    /// so that everything not committed is offered again.
    pub fn rewind(&mut self) {
        self.held = false;
        if let State::Open { reader, .. } = &mut self.state {
            reader.rewind();
        }
    }

    /// Checkpoints if one is due by time (an idle consumer's cadence).
    pub async fn tick(&mut self) {
        if let State::Open { handle, reader } = &mut self.state {
            if let Err(error) = reader.tick().await {
                tracing::warn!(queue = %handle.dir().display(), %error, "checkpoint failed");
            }
        }
    }

    /// Waits up to [`IDLE_WAIT`] for records; ticks the checkpoint if none came.
    async fn idle(&mut self) {
        let State::Open { reader, .. } = &mut self.state else {
            return;
        };
        if !reader.wait(IDLE_WAIT).await {
            self.tick().await;
        }
    }

    /// The stop protocol, at time `now`, for a core that is `stopping` and a destination that
    /// is `settled` (nothing unacknowledged). `None`: keep going.
    pub fn stop_check(&mut self, stopping: bool, settled: bool, now: Instant) -> Option<Finish> {
        if !stopping {
            return None;
        }
        let since = *self.stopping_since.get_or_insert(now);
        let drained = match &mut self.state {
            State::Open { handle, reader } => {
                handle.is_closed() && !self.held && !reader.has_data() && settled
            }
            State::Waiting { .. } => false,
            State::Gone => return Some(Finish::NeverOpened),
        };
        if drained {
            return Some(Finish::Drained);
        }
        (now.saturating_duration_since(since) > DRAIN_TIMEOUT).then_some(Finish::DeadlinePassed)
    }

    /// When the stop's deadline passes, if the consumer has seen the stop.
    fn deadline(&self) -> Option<Instant> {
        self.stopping_since.map(|since| since + DRAIN_TIMEOUT)
    }

    /// Checkpoints what was committed and releases the reader.
    pub async fn close(self) {
        if let State::Open { handle, reader } = self.state {
            if let Err(error) = reader.close().await {
                tracing::error!(queue = %handle.dir().display(), %error,
                    "final checkpoint failed");
            }
        }
    }

    /// Waits for the row's queue to be published and opens the reader; gives up when it never
    /// is, or when the core stopped more than [`DRAIN_TIMEOUT`] ago.
    async fn wait_open(&mut self, stop: &LocalStop) -> bool {
        let mut poll = Backoff::new(OPEN_POLL_MIN, OPEN_POLL_MAX);
        loop {
            let now = Instant::now();
            if self.try_open(now) {
                return true;
            }
            if self.is_gone() || self.stop_check(stop.is_stopping(), true, now).is_some() {
                return false;
            }
            poll.wait().await;
        }
    }

    /// Runs the consumer as its own task: delivers to `destination` until the stop protocol
    /// finishes it, then closes the destination and checkpoints. Failed steps are counted in
    /// `errors` (`Metric::Errors` of that telemetry row and plugin), logged once per run of
    /// failures, and retried from the last commit after a backoff.
    pub async fn run<D: Deliver>(
        mut self,
        mut destination: D,
        stop: Rc<LocalStop>,
        errors: (Arc<Telemetry>, usize, usize),
    ) -> Finish {
        let (telemetry, core, plugin) = errors;
        if !self.wait_open(&stop).await {
            return Finish::NeverOpened;
        }
        let mut retry = Backoff::new(RETRY_DELAY_MIN, RETRY_DELAY_MAX);
        let mut failing = false;
        let finish = loop {
            glommio::yield_if_needed().await;
            let settled = destination.is_settled();
            if let Some(finish) = self.stop_check(stop.is_stopping(), settled, Instant::now()) {
                break finish;
            }
            match self.step(&mut destination).await {
                Ok(Step::Progress) => {
                    failing = false;
                    retry.reset();
                }
                Ok(Step::Waited) => {}
                Ok(Step::Stalled) => self.stall.wait().await,
                Ok(Step::Idle) => self.idle().await,
                Ok(Step::Closed) => break Finish::NeverOpened,
                Err(error) => {
                    if !failing {
                        let queue = self
                            .handle()
                            .map(|handle| handle.dir().display().to_string());
                        tracing::warn!(queue = queue.unwrap_or_default(), %error,
                            "durable delivery failed; retrying from the last commit");
                    }
                    failing = true;
                    telemetry.add(core, plugin, Metric::Errors, 1);
                    self.rewind();
                    destination.reset().await;
                    match self.deadline() {
                        Some(deadline) => retry.wait_until(deadline).await,
                        None => retry.wait().await,
                    }
                }
            }
        };
        destination.close().await;
        self.close().await;
        finish
    }
}

async fn commit(reader: &mut Reader, handle: &QueueHandle, position: Position) {
    if let Err(error) = reader.commit(position).await {
        tracing::warn!(queue = %handle.dir().display(), %error, "checkpoint failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{QueueOptions, Writer};

    use crate::testing::run_local as run;

    use crate::testing::small_queue_options as options;

    /// A destination that keeps what it is given, or refuses everything.
    #[derive(Default)]
    struct Keep {
        records: Vec<Vec<u8>>,
        refuse: bool,
    }

    impl Deliver for Keep {
        type Error = &'static str;

        async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, &'static str> {
            if self.refuse {
                return Err("refused");
            }
            self.records.extend(records.iter().map(<[u8]>::to_vec));
            Ok(Delivered::Done)
        }
    }

    /// A destination that sends and is acknowledged only when the test says so.
    #[derive(Default)]
    struct Acknowledged {
        sent: Vec<Position>,
        acknowledge: bool,
    }

    impl Deliver for Acknowledged {
        type Error = &'static str;

        async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, &'static str> {
            self.sent.push(records.end());
            Ok(Delivered::Sent)
        }

        fn has_room(&self) -> bool {
            self.sent.len() < 2
        }

        fn is_settled(&self) -> bool {
            self.sent.is_empty()
        }

        async fn settle(&mut self, _: Duration) -> Result<Option<Position>, &'static str> {
            match self.acknowledge {
                true => Ok(self.sent.drain(..).next_back()),
                false => Ok(None),
            }
        }

        async fn reset(&mut self) {
            self.sent.clear();
        }
    }

    async fn open(root: &std::path::Path) -> (Writer, Arc<HandleBoard>) {
        let writer = Writer::open(&root.join("q"), &options(), &["out".to_string()])
            .await
            .expect("open the queue");
        let board = HandleBoard::new("out", 1);
        (writer, board)
    }

    /// What a fresh reader of the queue finds: the records from its checkpoint on.
    async fn left_on_disk(root: &std::path::Path) -> Vec<Vec<u8>> {
        let (writer, _) = open(root).await;
        let mut reader = Reader::open(&writer.handle(), "out").expect("reader");
        let mut records = ReadBatch::new();
        let mut left = Vec::new();
        while reader.has_data() {
            reader.read(&mut records).await.expect("read");
            left.extend(records.iter().map(<[u8]>::to_vec));
        }
        drop(reader);
        writer.close().await.expect("close");
        left
    }

    /// Writer closed after the stop: the consumer drains what is left, is `Drained`, and its
    /// checkpoint holds the end, so a restart replays nothing.
    #[test]
    fn a_stopped_consumer_drains_a_closed_queue_then_checkpoints() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        run(async move {
            let (mut writer, board) = open(&root).await;
            let mut consumer = Consumer::new(board.clone(), 0);
            let now = Instant::now();
            assert!(!consumer.try_open(now), "not published yet");
            assert_eq!(consumer.stop_check(false, true, now), None);
            board.publish(0, writer.handle());
            assert!(consumer.try_open(now));
            let mut keep = Keep::default();
            assert_eq!(consumer.step(&mut keep).await.ok(), Some(Step::Idle));
            writer
                .append_batch([&b"one"[..], b"two"])
                .await
                .expect("append");
            // The stop arrives with records queued and the writer still open.
            assert_eq!(consumer.stop_check(true, true, now), None);
            assert_eq!(consumer.step(&mut keep).await.ok(), Some(Step::Progress));
            assert!(!consumer.has_data());
            assert_eq!(
                consumer.stop_check(true, true, now),
                None,
                "caught up, but the writer is open: more may come"
            );
            writer.append_batch([&b"three"[..]]).await.expect("append");
            writer.close().await.expect("close");
            assert_eq!(
                consumer.stop_check(true, true, now),
                None,
                "one record left"
            );
            assert_eq!(consumer.step(&mut keep).await.ok(), Some(Step::Progress));
            assert_eq!(consumer.stop_check(true, true, now), Some(Finish::Drained));
            consumer.close().await;
            assert_eq!(keep.records, [&b"one"[..], b"two", b"three"]);
            assert!(
                left_on_disk(&root).await.is_empty(),
                "the end was checkpointed"
            );
        });
    }

    /// A destination that keeps refusing: once the deadline has passed since the stop the
    /// consumer finishes, and every record is still on disk for the next start.
    #[test]
    fn past_the_deadline_a_consumer_leaves_the_rest_on_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        run(async move {
            let (mut writer, board) = open(&root).await;
            board.publish(0, writer.handle());
            writer
                .append_batch([&b"a"[..], b"b"])
                .await
                .expect("append");
            writer.close().await.expect("close");
            let mut consumer = Consumer::new(board, 0);
            let stopped = Instant::now();
            assert!(consumer.try_open(stopped));
            let mut refusing = Keep {
                refuse: true,
                ..Keep::default()
            };
            assert_eq!(consumer.stop_check(true, true, stopped), None);
            assert!(matches!(
                consumer.step(&mut refusing).await,
                Err(StepError::Deliver("refused"))
            ));
            consumer.rewind();
            assert!(consumer.has_data(), "rewound to the last commit");
            let before = stopped + DRAIN_TIMEOUT;
            assert_eq!(
                consumer.stop_check(true, true, before),
                None,
                "not past yet"
            );
            let after = before + Duration::from_millis(1);
            assert_eq!(
                consumer.stop_check(true, true, after),
                Some(Finish::DeadlinePassed)
            );
            consumer.close().await;
            assert_eq!(left_on_disk(&root).await, [&b"a"[..], b"b"]);
        });
    }

    /// Sent records wait for acknowledgement: the consumer is not drained while they do, the
    /// window bounds what it reads, and a failure sends everything unacknowledged again.
    #[test]
    fn sent_records_are_committed_on_acknowledgement_and_resent_after_a_failure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        run(async move {
            let options = QueueOptions {
                read_bytes: crate::limits::QUEUE_IO_BYTES_MIN,
                ..options()
            };
            let mut writer = Writer::open(&root.join("q"), &options, &["out".to_string()])
                .await
                .expect("open the queue");
            let board = HandleBoard::new("out", 1);
            board.publish(0, writer.handle());
            let big = vec![7u8; crate::limits::QUEUE_IO_BYTES_MIN];
            for _ in 0..3 {
                writer.append_batch([big.as_slice()]).await.expect("append");
            }
            writer.close().await.expect("close");
            let mut consumer = Consumer::new(board, 0);
            let now = Instant::now();
            assert!(consumer.try_open(now));
            let mut sender = Acknowledged::default();
            assert_eq!(consumer.step(&mut sender).await.ok(), Some(Step::Progress));
            assert_eq!(consumer.step(&mut sender).await.ok(), Some(Step::Progress));
            assert_eq!(
                sender.sent.len(),
                2,
                "one read per record, read_bytes is one record"
            );
            // The window is full: the consumer waits for acknowledgements instead of reading.
            assert_eq!(consumer.step(&mut sender).await.ok(), Some(Step::Waited));
            let settled = sender.is_settled();
            assert_eq!(
                consumer.stop_check(true, settled, now),
                None,
                "two unacknowledged"
            );
            // The connection is lost: rewind, and the same records go again.
            consumer.rewind();
            sender.reset().await;
            sender.acknowledge = true;
            assert_eq!(consumer.step(&mut sender).await.ok(), Some(Step::Progress));
            assert_eq!(sender.sent.len(), 1);
            // Acknowledgements already there are taken before the next send: the window holds
            // only what is really unacknowledged.
            assert_eq!(consumer.step(&mut sender).await.ok(), Some(Step::Progress));
            assert_eq!(
                sender.sent.len(),
                1,
                "the first was committed before the second went"
            );
            assert_eq!(consumer.step(&mut sender).await.ok(), Some(Step::Progress));
            assert!(!consumer.has_data(), "all three sent");
            // Nothing left to read: wait for the last acknowledgement.
            assert_eq!(consumer.step(&mut sender).await.ok(), Some(Step::Progress));
            let settled = sender.is_settled();
            assert_eq!(
                consumer.stop_check(true, settled, now),
                Some(Finish::Drained)
            );
            consumer.close().await;
            assert!(left_on_disk(&root).await.is_empty());
        });
    }

    /// The task-driven loop, end to end, without a stop deadline in play: it delivers what was
    /// queued before and after it started and finishes `Drained` once the writer closes.
    #[test]
    fn run_delivers_everything_then_finishes_drained() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        run(async move {
            let (mut writer, board) = open(&root).await;
            board.publish(0, writer.handle());
            writer.append_batch([&b"before"[..]]).await.expect("append");
            let stop = LocalStop::new();
            let telemetry = Telemetry::new(1, vec!["out".into()]);
            let keep = Rc::new(std::cell::RefCell::new(Vec::new()));
            struct Shared(Rc<std::cell::RefCell<Vec<Vec<u8>>>>);
            impl Deliver for Shared {
                type Error = &'static str;
                async fn deliver(
                    &mut self,
                    records: &ReadBatch,
                ) -> Result<Delivered, &'static str> {
                    self.0
                        .borrow_mut()
                        .extend(records.iter().map(<[u8]>::to_vec));
                    Ok(Delivered::Done)
                }
            }
            let task = glommio::spawn_local(Consumer::new(board, 0).run(
                Shared(keep.clone()),
                stop.clone(),
                (telemetry.clone(), 0, 0),
            ));
            writer.append_batch([&b"after"[..]]).await.expect("append");
            stop.raise();
            writer.close().await.expect("close");
            assert_eq!(task.await, Finish::Drained);
            assert_eq!(*keep.borrow(), [&b"before"[..], b"after"]);
            assert_eq!(telemetry.get(0, 0, Metric::Errors), 0);
            assert!(left_on_disk(&root).await.is_empty());
        });
    }
}
