//! The sending side of acknowledged forwarding: a durable TcpOutput with `ack = true` delivers
//! its queue to a receiver that acknowledges what it has queued, and commits its cursor only
//! on acknowledgement. The protocol is in `docs/ack.md`; the frames are
//! [`crate::message::ack`]; the receiving side is TcpInput's (`src/input/tcp.rs`).
//!
//! One [`Consumer`] task per source queue, like every durable output (see [`super::durable`]);
//! this module is its destination:
//! - **Connect.** Send a hello and wait up to `ack_timeout` for the welcome. A receiver that
//!   does not answer (Heka, or a gyges too old to know the protocol) is delivered to as an
//!   unacknowledged durable output is: commit after the write.
//! - **Send.** Each queue read (one or more records) is written followed by a mark with the
//!   next sequence number, up to [`ACK_WINDOW_BATCHES`] marks ahead of the oldest ack.
//! - **Commit.** An ack for mark `n` commits the queue position after batch `n` (acks are
//!   cumulative). The checkpoint follows the commit as for any consumer.
//! - **Lose the connection** (an error, the receiver closing, or no ack for `ack_timeout`):
//!   the consumer rewinds the reader to the last commit and, after a backoff, the next send
//!   reconnects. What was sent but not acknowledged is sent again: the receiver may get
//!   duplicates, never a gap.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::tls::Transport;

use crate::config::plan::TcpPlan;
use crate::limits::{ACK_TIMEOUT_MS_DEFAULT, ACK_WINDOW_BATCHES};
use crate::message::ack::{self, Control};
use crate::queue::{Consumer, Deliver, Delivered, HandleBoard, Position, ReadBatch};
use crate::runtime::stop::LocalStop;
use crate::telemetry::{Metric, Telemetry};

/// Bytes read from the receiver at once; acks are a dozen bytes each.
const INBOX_READ_BYTES: usize = 4096;
/// How long a poll for acknowledgements that found bytes waiting lets the read take (a TLS
/// record may not be whole yet).
const POLL_READ_WAIT: Duration = Duration::from_millis(1);

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
    stream: Transport,
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
        let mut stream = super::tcp::connect(plan).await?;
        stream
            .tcp()
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

    /// Reads what the receiver sent, waiting at most `wait` (zero: only what is already there,
    /// without waiting). Returns whether anything came.
    async fn receive(&mut self, wait: Duration) -> Result<bool, SessionError> {
        let wait = if wait.is_zero() {
            if !gyges_sys::socket::readable(self.stream.tcp()) {
                return Ok(false);
            }
            // Bytes are there; a TLS record may still be partial, so allow a moment.
            POLL_READ_WAIT
        } else {
            wait
        };
        self.stream
            .tcp()
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
        self.stream.close().await;
    }
}

/// The acknowledged sender: a [`Deliver`] destination for the queue [`Consumer`], with at most
/// one connection to the receiver.
struct Sender {
    plan: TcpPlan,
    /// How long the hello waits for its welcome, and a sent batch for its ack.
    timeout: Duration,
    session: Option<Session>,
    /// The last session opened did not speak the protocol, and that was logged.
    told_unacked: bool,
    telemetry: Arc<Telemetry>,
    core: usize,
    plugin: usize,
}

impl Sender {
    /// The open session, or a new one.
    async fn session(&mut self) -> Result<&mut Session, SessionError> {
        if self.session.is_none() {
            let opened = Session::open(&self.plan, self.timeout).await?;
            if !opened.acked && !self.told_unacked {
                tracing::warn!(address = %self.plan.address, timeout = ?self.timeout,
                    "the receiver did not answer the acknowledgement hello; \
                     sending without acknowledgements");
            }
            self.told_unacked = !opened.acked;
            self.session = Some(opened);
        }
        self.session.as_mut().ok_or(SessionError::Closed)
    }
}

/// Writes the records of a read, as they were queued.
async fn send(stream: &mut Transport, records: &ReadBatch) -> std::io::Result<()> {
    for record in records.iter() {
        stream.write_all(record).await?;
    }
    Ok(())
}

impl Deliver for Sender {
    type Error = SessionError;

    /// Sends a read: marked, to be committed on its ack; or, to a receiver that does not
    /// acknowledge, written and committed at once.
    async fn deliver(&mut self, records: &ReadBatch) -> Result<Delivered, SessionError> {
        let (telemetry, core, plugin) = (self.telemetry.clone(), self.core, self.plugin);
        let bytes: usize = records.iter().map(<[u8]>::len).sum();
        let session = self.session().await?;
        if !session.acked {
            if gyges_sys::socket::peer_closed(session.stream.tcp()) {
                return Err(SessionError::Closed);
            }
            send(&mut session.stream, records).await?;
            telemetry.add(core, plugin, Metric::SentBytes, bytes as u64);
            telemetry.add(core, plugin, Metric::Sent, records.message_count());
            return Ok(Delivered::Done);
        }
        let seq = session.next_seq;
        session.next_seq += 1;
        send(&mut session.stream, records).await?;
        let mut mark = Vec::with_capacity(ack::CONTROL_BYTES_MAX);
        Control::Mark { seq }.encode(&mut mark);
        session.stream.write_all(&mark).await?;
        if session.pending.is_empty() {
            session.waiting_since = Instant::now();
        }
        session.pending.push_back(Pending {
            seq,
            end: records.end(),
            messages: records.message_count(),
        });
        telemetry.add(core, plugin, Metric::SentBytes, bytes as u64);
        Ok(Delivered::Sent)
    }

    fn has_room(&self) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.pending.len() < ACK_WINDOW_BATCHES)
    }

    fn is_settled(&self) -> bool {
        self.session
            .as_ref()
            .is_none_or(|session| session.pending.is_empty())
    }

    /// Reads acks for up to `wait`; an ack commits up to the end of the batch it names.
    async fn settle(&mut self, wait: Duration) -> Result<Option<Position>, SessionError> {
        let Some(session) = self.session.as_mut() else {
            return Ok(None);
        };
        session.receive(wait).await?;
        if let Some((acked, messages)) = session.take_acked()? {
            self.telemetry.add(self.core, self.plugin, Metric::Acks, 1);
            self.telemetry
                .add(self.core, self.plugin, Metric::Sent, messages);
            session.waiting_since = Instant::now();
            return Ok(Some(acked.end));
        }
        if session.waiting_since.elapsed() > self.timeout {
            return Err(SessionError::AckTimeout(self.timeout));
        }
        Ok(None)
    }

    /// The connection is lost with what it had not acknowledged; the consumer rewinds, so
    /// that goes again on the next connection.
    async fn reset(&mut self) {
        if let Some(lost) = self.session.take() {
            lost.close().await;
        }
    }

    async fn close(&mut self) {
        self.reset().await;
    }
}

/// Delivers core row `source_row`'s queue to the receiver of `plan`, acknowledged when the
/// receiver speaks the protocol, until the core stops and the queue is closed and delivered
/// (or the drain deadline has passed since the stop).
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
    let sender = Sender {
        plan,
        timeout,
        session: None,
        told_unacked: false,
        telemetry: telemetry.clone(),
        core,
        plugin,
    };
    Consumer::new(board, source_row)
        .run(sender, stop, (telemetry, core, plugin))
        .await;
}
