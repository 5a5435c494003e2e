//! The sending side of acknowledged forwarding: a durable TcpOutput with `ack = true` delivers
//! its queue to a receiver that acknowledges what it has queued, and commits its cursor only
//! on acknowledgement. The protocol is in `docs/ack.md`; the frames are
//! [`crate::message::ack`]; the receiving side is TcpInput's (`src/input/tcp.rs`).
//!
//! One consumer task per source queue, like every durable output (see [`super::durable`]):
//! - **Connect.** Send a hello and wait up to `ack_timeout` for the welcome. A receiver that
//!   does not answer (Heka, or a gyges too old to know the protocol) is delivered to as an
//!   unacknowledged durable output is: commit after the write.
//! - **Send.** Each queue read (one or more records) is written followed by a mark with the
//!   next sequence number, up to [`ACK_WINDOW_BATCHES`] marks ahead of the oldest ack.
//! - **Commit.** An ack for mark `n` commits the queue position after batch `n` (acks are
//!   cumulative). The checkpoint follows the commit as for any consumer.
//! - **Lose the connection** (an error, the receiver closing, or no ack for `ack_timeout`):
//!   reconnect with backoff and rewind the reader to the last commit. What was sent but not
//!   acknowledged is sent again: the receiver may get duplicates, never a gap.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::durable::{open_reader, HandleBoard, DRAIN_TIMEOUT};
use crate::config::plan::TcpPlan;
use crate::limits::{ACK_TIMEOUT_MS_DEFAULT, ACK_WINDOW_BATCHES};
use crate::message::ack::{self, Control};
use crate::queue::{Position, QueueHandle, ReadBatch, Reader};
use crate::runtime::stop::LocalStop;
use crate::telemetry::{Metric, Telemetry};

/// Shortest and longest wait before reconnecting.
const RETRY_DELAY_MIN: Duration = Duration::from_millis(50);
const RETRY_DELAY_MAX: Duration = Duration::from_secs(2);
/// How long one wait for acknowledgements lasts before the task looks at its queue and the
/// stop flag again.
const ACK_POLL: Duration = Duration::from_millis(20);
/// How long the task waits for records before it ticks its checkpoint.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// Bytes read from the receiver at once; acks are a dozen bytes each.
const INBOX_READ_BYTES: usize = 4096;

/// A batch sent and not yet acknowledged.
struct Pending {
    seq: u64,
    /// The queue position after the batch: committed when it is acknowledged.
    end: Position,
    /// The messages its records say they hold: counted as sent when it is acknowledged.
    messages: u64,
}

/// One connection to the receiver.
struct Session {
    stream: TcpStream,
    /// The receiver welcomed the hello: batches are marked and committed on ack.
    acked: bool,
    next_seq: u64,
    pending: VecDeque<Pending>,
    /// When the oldest pending batch started waiting (reset by every ack).
    waiting_since: Instant,
    /// Bytes from the receiver not parsed yet.
    inbox: Vec<u8>,
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the receiver closed the connection")]
    Closed,
    #[error("no acknowledgement within {0:?}")]
    AckTimeout(Duration),
    #[error("the receiver sent something that is not an acknowledgement")]
    Protocol,
}

impl Session {
    /// Connects, says hello and waits up to `timeout` for the welcome.
    async fn open(plan: &TcpPlan, timeout: Duration) -> Result<Session, SessionError> {
        let mut stream = super::tcp::connect(&plan.address, plan.keep_alive).await?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(std::io::Error::from)?;
        let mut hello = Vec::with_capacity(ack::CONTROL_BYTES_MAX);
        Control::Hello {
            version: ack::VERSION,
        }
        .encode(&mut hello);
        stream.write_all(&hello).await?;
        let mut session = Session {
            stream,
            acked: false,
            next_seq: 1,
            pending: VecDeque::with_capacity(ACK_WINDOW_BATCHES),
            waiting_since: Instant::now(),
            inbox: Vec::with_capacity(INBOX_READ_BYTES),
        };
        let deadline = Instant::now() + timeout;
        loop {
            match ack::parse(&session.inbox) {
                ack::Parsed::Control {
                    control: Control::Welcome { .. },
                    bytes,
                } => {
                    session.inbox.drain(..bytes);
                    session.acked = true;
                    return Ok(session);
                }
                ack::Parsed::Control { .. } | ack::Parsed::Not => {
                    return Err(SessionError::Protocol)
                }
                ack::Parsed::Incomplete => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !session.receive(left).await? {
                // No answer: a receiver that does not speak the protocol.
                return Ok(session);
            }
        }
    }

    /// Reads what the receiver sent, waiting at most `wait`. Returns whether anything came.
    async fn receive(&mut self, wait: Duration) -> Result<bool, SessionError> {
        self.stream
            .set_read_timeout(Some(wait))
            .map_err(std::io::Error::from)?;
        let start = self.inbox.len();
        self.inbox.resize(start + INBOX_READ_BYTES, 0);
        let read = self.stream.read(&mut self.inbox[start..]).await;
        let count = match read {
            Ok(0) => {
                self.inbox.truncate(start);
                return Err(SessionError::Closed);
            }
            Ok(count) => count,
            Err(error) if error.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(error) => {
                self.inbox.truncate(start);
                return Err(error.into());
            }
        };
        self.inbox.truncate(start + count);
        Ok(count > 0)
    }

    /// The newest batch acknowledged by what is in the inbox, if any, and the messages of
    /// every batch acknowledged; consumes the acks.
    fn take_acked(&mut self) -> Result<Option<(Pending, u64)>, SessionError> {
        let mut at = 0;
        let mut newest = None;
        let mut messages = 0;
        loop {
            match ack::parse(&self.inbox[at..]) {
                ack::Parsed::Control {
                    control: Control::Ack { seq },
                    bytes,
                } => {
                    at += bytes;
                    while self.pending.front().is_some_and(|oldest| oldest.seq <= seq) {
                        newest = self.pending.pop_front();
                        messages += newest.as_ref().map_or(0, |batch| batch.messages);
                    }
                }
                ack::Parsed::Incomplete => break,
                ack::Parsed::Control { .. } | ack::Parsed::Not => {
                    return Err(SessionError::Protocol)
                }
            }
        }
        self.inbox.drain(..at);
        Ok(newest.map(|batch| (batch, messages)))
    }

    async fn close(mut self) {
        let _ = self.stream.close().await;
    }
}

/// What one consumer task works with.
struct Consumer {
    handle: QueueHandle,
    reader: Reader,
    records: ReadBatch,
    /// Bytes of the records read last.
    bytes: usize,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
}

impl Consumer {
    /// Reads the next records. Returns false when there were none.
    async fn read(&mut self) -> Result<bool, SessionError> {
        let count = self
            .reader
            .read(&mut self.records)
            .await
            .map_err(|error| std::io::Error::other(error.to_string()))?;
        if count == 0 {
            return Ok(false);
        }
        self.bytes = self.records.iter().map(<[u8]>::len).sum();
        Ok(true)
    }

    /// Writes the records read last, as they were queued.
    async fn send(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        for record in self.records.iter() {
            stream.write_all(record).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, position: Position) {
        if let Err(error) = self.reader.commit(position).await {
            tracing::warn!(queue = %self.handle.dir().display(), %error, "checkpoint failed");
        }
    }

    async fn idle(&mut self) {
        if !self.reader.wait(IDLE_WAIT).await {
            if let Err(error) = self.reader.tick().await {
                tracing::warn!(queue = %self.handle.dir().display(), %error, "checkpoint failed");
            }
        }
    }

    /// One step of an acknowledged session: send a batch if the window has room and there is
    /// one, else wait a little for acks, else wait for records.
    async fn step_acked(
        &mut self,
        session: &mut Session,
        timeout: Duration,
    ) -> Result<(), SessionError> {
        if session.pending.len() < ACK_WINDOW_BATCHES && self.reader.has_data() {
            if !self.read().await? {
                // Published but not whole yet (or damage being skipped): do not spin.
                glommio::timer::sleep(Duration::from_millis(1)).await;
                return Ok(());
            }
            let seq = session.next_seq;
            session.next_seq += 1;
            self.send(&mut session.stream).await?;
            let mut mark = Vec::with_capacity(ack::CONTROL_BYTES_MAX);
            Control::Mark { seq }.encode(&mut mark);
            session.stream.write_all(&mark).await?;
            if session.pending.is_empty() {
                session.waiting_since = Instant::now();
            }
            session.pending.push_back(Pending {
                seq,
                end: self.records.end(),
                messages: self.records.message_count(),
            });
            self.telemetry
                .add(self.core, self.plugin, Metric::SentBytes, self.bytes as u64);
            return Ok(());
        }
        if session.pending.is_empty() {
            self.idle().await;
            return Ok(());
        }
        session.receive(ACK_POLL).await?;
        if let Some((acked, messages)) = session.take_acked()? {
            self.telemetry.add(self.core, self.plugin, Metric::Acks, 1);
            self.telemetry
                .add(self.core, self.plugin, Metric::Sent, messages);
            session.waiting_since = Instant::now();
            self.commit(acked.end).await;
        } else if session.waiting_since.elapsed() > timeout {
            return Err(SessionError::AckTimeout(timeout));
        }
        Ok(())
    }

    /// One step of a session with a receiver that does not acknowledge: write, then commit.
    async fn step_unacked(&mut self, session: &mut Session) -> Result<(), SessionError> {
        if !self.reader.has_data() {
            self.idle().await;
            return Ok(());
        }
        if gyges_io_uring::socket::peer_closed(&session.stream) {
            return Err(SessionError::Closed);
        }
        if !self.read().await? {
            glommio::timer::sleep(Duration::from_millis(1)).await;
            return Ok(());
        }
        self.send(&mut session.stream).await?;
        self.telemetry
            .add(self.core, self.plugin, Metric::SentBytes, self.bytes as u64);
        let messages = self.records.message_count();
        self.telemetry
            .add(self.core, self.plugin, Metric::Sent, messages);
        let end = self.records.end();
        self.commit(end).await;
        Ok(())
    }
}

/// Delivers core row `source_row`'s queue to the receiver of `plan`, acknowledged when the
/// receiver speaks the protocol, until the core stops and the queue is closed and delivered
/// (or [`DRAIN_TIMEOUT`] has passed since the stop).
pub async fn run_consumer(
    board: Arc<HandleBoard>,
    source_row: usize,
    plan: TcpPlan,
    stop: Rc<LocalStop>,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
) {
    let timeout = plan
        .ack
        .unwrap_or(Duration::from_millis(ACK_TIMEOUT_MS_DEFAULT));
    let Some((handle, reader)) = open_reader(&board, source_row, &stop).await else {
        return;
    };
    let mut consumer = Consumer {
        handle,
        reader,
        records: ReadBatch::new(),
        bytes: 0,
        telemetry,
        core,
        plugin,
    };
    let mut session: Option<Session> = None;
    let mut delay = RETRY_DELAY_MIN;
    let mut stopping_since: Option<Instant> = None;
    let mut told_unacked = false;
    loop {
        glommio::yield_if_needed().await;
        if stop.is_stopping() {
            let since = *stopping_since.get_or_insert_with(Instant::now);
            let delivered = session
                .as_ref()
                .is_none_or(|session| session.pending.is_empty());
            if (consumer.handle.is_closed() && !consumer.reader.has_data() && delivered)
                || since.elapsed() > DRAIN_TIMEOUT
            {
                break;
            }
        }
        let result = match session.as_mut() {
            None if !consumer.reader.has_data() => {
                consumer.idle().await;
                continue;
            }
            None => match Session::open(&plan, timeout).await {
                Ok(opened) => {
                    if !opened.acked && !told_unacked {
                        tracing::warn!(address = %plan.address, ?timeout,
                            "the receiver did not answer the acknowledgement hello; \
                             sending without acknowledgements");
                    }
                    told_unacked = !opened.acked;
                    session = Some(opened);
                    Ok(())
                }
                Err(error) => Err(error),
            },
            Some(current) if current.acked => consumer.step_acked(current, timeout).await,
            Some(current) => consumer.step_unacked(current).await,
        };
        match result {
            Ok(()) => delay = RETRY_DELAY_MIN,
            Err(error) => {
                if delay == RETRY_DELAY_MIN {
                    tracing::warn!(address = %plan.address, %error,
                        "acknowledged delivery failed; reconnecting and sending again \
                         what was not acknowledged");
                }
                consumer.telemetry.add(core, plugin, Metric::Errors, 1);
                if let Some(lost) = session.take() {
                    lost.close().await;
                }
                // Whatever was read and not committed goes again, on the next connection.
                consumer.reader.rewind();
                glommio::timer::sleep(delay).await;
                delay = (delay * 2).min(RETRY_DELAY_MAX);
            }
        }
    }
    if let Some(session) = session.take() {
        session.close().await;
    }
    let Consumer { handle, reader, .. } = consumer;
    if let Err(error) = reader.close().await {
        tracing::error!(queue = %handle.dir().display(), %error, "final checkpoint failed");
    }
}
