//! UdpInput: one SO_REUSEPORT socket per ingest core; each datagram is split (NullSplitter by
//! default: the datagram is the record), decoded and routed on that core.
//!
//! A receive error is counted (`errors_total`) and logged at most once per [`LOG_INTERVAL`];
//! consecutive errors back off ([`RECEIVE_RETRY_MIN`] doubling to [`RECEIVE_RETRY_MAX`]), so a
//! socket that fails on every call does not spin the core, and the first datagram received
//! starts the backoff again from its minimum.
//!
//! Each receive first tries a non-blocking receive (glommio's, before it waits on io_uring);
//! when no datagram is queued, the core ships on idle ([`Shard::ship_idle`]) before it waits,
//! as TcpInput does after a short read, so a lone datagram does not wait for its output's
//! `flush_interval`. This costs no system call beyond the receive itself.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::net::UdpSocket;

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::message::now_ns;
use crate::runtime::backoff::Backoff;
use crate::runtime::failure::{self, PluginTask};
use crate::runtime::router::Router;
use crate::runtime::shard::Shard;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};
use crate::telemetry::Metric;

/// The largest UDP payload.
const DATAGRAM_BYTES_MAX: usize = 65_535;
/// The first and the longest wait after a receive error, while errors follow each other.
pub const RECEIVE_RETRY_MIN: Duration = Duration::from_millis(1);
/// The longest wait after a receive error: consecutive errors double the wait up to this.
pub const RECEIVE_RETRY_MAX: Duration = Duration::from_secs(1);

/// What a socket's receive loop does about errors: how long to wait before receiving again,
/// and when to log.
#[derive(Debug)]
pub struct ReceiveErrors {
    backoff: Backoff,
    log: LogLimit,
}

impl ReceiveErrors {
    /// No error yet.
    pub fn new() -> ReceiveErrors {
        ReceiveErrors {
            backoff: Backoff::new(RECEIVE_RETRY_MIN, RECEIVE_RETRY_MAX),
            log: LogLimit::new(LOG_INTERVAL),
        }
    }

    /// Notes a failed receive at `now`: returns the wait before the next one and, when a log
    /// line is due, the number of errors it reports.
    pub fn failed(&mut self, now: Instant) -> (Duration, Option<u64>) {
        (self.backoff.step(), self.log.note(now))
    }

    /// Notes a successful receive: the next error waits the minimum again.
    pub fn succeeded(&mut self) {
        self.backoff.reset();
    }
}

impl Default for ReceiveErrors {
    fn default() -> Self {
        ReceiveErrors::new()
    }
}

/// Binds the input's address on this core.
///
/// # Errors
/// The address cannot be bound.
pub fn bind(address: SocketAddr, receive_buffer: Option<usize>) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(address).map_err(std::io::Error::from)?;
    if let Some(bytes) = receive_buffer {
        gyges_sys::socket::set_receive_buffer(&socket, bytes)?;
    }
    Ok(socket)
}

/// Receives datagrams until the core stops. With `set_hostname`, each message's Hostname is
/// its sender's address.
pub async fn serve(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    socket: UdpSocket,
    set_hostname: bool,
) {
    let plugin = failure::register_plugin(&input.plan.name);
    let receive = receive_loop(shard, input, socket, (set_hostname, plugin));
    PluginTask::quiet(plugin, receive).await;
}

async fn receive_loop(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    socket: UdpSocket,
    (set_hostname, plugin): (bool, failure::PluginId),
) {
    let _guard = shard.connection_opened();
    let Some((mut splitter, mut buffer)) = input.stream_parts(DATAGRAM_BYTES_MAX) else {
        return;
    };
    let mut last_sender: Option<SocketAddr> = None;
    let mut meta = input.line_meta(String::new());
    let mut errors = ReceiveErrors::new();
    let mut first_datagram = true;
    while !shard.stop.is_stopping() {
        // Each datagram is a stream of its own: a record cannot span datagrams (the buffer is
        // left empty by `finish` below).
        let received = {
            let spare = &mut buffer.spare_mut()[..DATAGRAM_BYTES_MAX];
            let mut receive = std::pin::pin!(socket.recv_from(spare));
            // The first poll tries a non-blocking receive: pending means no datagram is
            // queued, so what waits in a partly filled batch need not.
            match futures_lite::future::poll_once(receive.as_mut()).await {
                Some(received) => Some(received),
                None => {
                    shard.ship_idle().await;
                    futures_lite::future::or(async { Some(receive.await) }, async {
                        shard.stop.wait().await;
                        None
                    })
                    .await
                }
            }
        };
        let (count, sender) = match received {
            None => break,
            Some(Ok(received)) => received,
            Some(Err(error)) => {
                shard
                    .telemetry
                    .add(shard.core, input.plugin, Metric::Errors, 1);
                let (wait, log) = errors.failed(Instant::now());
                if let Some(failures) = log {
                    tracing::warn!(input = %input.plan.name, %error, failures, "receive failed");
                }
                futures_lite::future::or(glommio::timer::sleep(wait), shard.stop.wait()).await;
                continue;
            }
        };
        errors.succeeded();
        if first_datagram {
            first_datagram = false;
            failure::fault_point(plugin);
        }
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::BytesRead, count as u64);
        if set_hostname && last_sender != Some(sender) {
            meta = input.line_meta(super::canonical(sender).to_string());
            last_sender = Some(sender);
        }
        buffer.commit(count);
        {
            let mut router = shard.router.borrow_mut();
            let mut uuids = shard.uuids.borrow_mut();
            let (telemetry, core, now) = (&shard.telemetry, shard.core, now_ns());
            let signers = router.wants_signers();
            let mut deliver = |bytes: &[u8], signer: Option<&[u8]>, router: &mut Router| {
                if signers {
                    router.set_signer(signer);
                }
                deliver_record(
                    bytes, &input, &meta, now, &mut uuids, router, telemetry, core,
                )
            };
            while let Some(record) = buffer.next_record(&mut splitter) {
                let signer = record.signer.and_then(|id| splitter.signer_name(id));
                deliver(record.bytes, signer, &mut router);
            }
            if let Some(record) = buffer.finish(&mut splitter) {
                deliver(record.bytes, None, &mut router);
            }
            if signers {
                router.set_signer(None);
            }
        }
        publish_splitter_stats(&mut splitter, &shard.telemetry, shard.core, input.plugin);
        shard.ship_full().await;
        glommio::yield_if_needed().await;
    }
}

/// `UdpInput`: receives datagrams on every ingest core.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUdpInput {
    /// `host:port` to receive datagrams on.
    pub address: String,
    /// Put the sender's address in Hostname (default true in gyges).
    pub set_hostname: Option<bool>,
}

/// UdpInput, planned.
#[derive(Debug, Clone)]
pub struct UdpInputKind {
    /// The resolved `address` every ingest core binds with SO_REUSEPORT.
    pub address: SocketAddr,
    /// Whether a message made without a decoder gets its sender's address as Hostname
    /// (`set_hostname`); when false Hostname stays empty.
    pub set_hostname: bool,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::InputPlan> =
    crate::component::Registration {
        type_names: &["UdpInput"],
        plan: |section, context| {
            let (common, own) = super::plan::split_common(section)?;
            let raw: RawUdpInput = own.parse()?;
            let kind = UdpInputKind {
                address: section.address("address", &raw.address)?,
                set_hostname: raw.set_hostname.unwrap_or(true),
            };
            let common = common.with_defaults("NullSplitter", &["udp", "udp4", "udp6"]);
            super::plan::input_plan(section, context, common, std::sync::Arc::new(kind))
        },
    };

impl super::InputKind for UdpInputKind {
    fn type_name(&self) -> &'static str {
        "UdpInput"
    }

    fn describe(&self) -> String {
        format!("udp {}", self.address)
    }

    fn datagrams(&self) -> bool {
        true
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        let socket = bind(self.address, receive_buffer)?;
        let serving = serve(shard.clone(), input, socket, self.set_hostname);
        glommio::spawn_local(serving).detach();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_errors_back_off_and_log_rarely_and_success_resets() {
        let start = Instant::now();
        let mut errors = ReceiveErrors::new();
        let mut waits = Vec::new();
        let mut lines = Vec::new();
        // A socket failing on every call for about a minute of waits.
        let mut now = start;
        for _ in 0..70 {
            let (wait, log) = errors.failed(now);
            waits.push(wait);
            lines.extend(log);
            now += wait;
        }
        assert_eq!(waits[0], RECEIVE_RETRY_MIN);
        assert_eq!(waits[1], RECEIVE_RETRY_MIN * 2);
        assert!(
            waits.windows(2).all(|pair| pair[1] >= pair[0]),
            "never shorter"
        );
        assert_eq!(*waits.last().unwrap(), RECEIVE_RETRY_MAX, "capped");
        // About 60 s of failures: a line every 5 s at most, and every error counted in one.
        let seconds = now.duration_since(start).as_secs();
        assert!(
            lines.len() as u64 <= seconds / LOG_INTERVAL.as_secs() + 1,
            "{lines:?}"
        );
        assert_eq!(lines.iter().sum::<u64>() + errors.log.pending(), 70);
        // One datagram received: the next error waits the minimum again.
        errors.succeeded();
        assert_eq!(errors.failed(now).0, RECEIVE_RETRY_MIN);
    }
}
