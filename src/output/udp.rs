//! Datagram delivery: UdpOutput, and CarbonOutput with `protocol = "udp"`. Each core sends
//! from its own socket (`docs/udp_output.md`).
//!
//! - **UdpOutput** sends each encoded message as one datagram, over UDP or a Unix datagram
//!   socket (`net = "unixgram"`). Inside gyges a batch keeps each encoding behind a 4-byte
//!   length ([`super::length_framed`]), so the sender can cut the batch back into messages;
//!   the length never leaves the process. A message that encodes to more than
//!   `max_message_size` is dropped and counted as an encode failure, as Heka dropped it.
//! - **CarbonOutput** sends its lines cut at line boundaries into datagrams of at most
//!   `datagram_bytes_max` ([`UdpSender`]).
//!
//! Datagrams have no backpressure and no acknowledgement: a send that fails is counted as an
//! error and its messages as dropped, whatever the delivery class. A disk queue could commit
//! only on the kernel taking the datagram, which protects nothing past this host, so
//! `delivery = "durable"` is refused.

use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::net::UdpSocket;

use super::length_framed::{encodings, LengthFramedKind};
use super::tcp::{RECONNECT_DELAY_MAX, RECONNECT_DELAY_MIN};
use super::{Batch, Opened, OutputCore, OutputKind, Writers};
use crate::component::{LocalBoxFuture, PlanContext, Registration};
use crate::config::plan::OutputPlan;
use crate::config::{ConfigError, Section};
use crate::limits::{UDP_OUTPUT_MESSAGE_BYTES_MAX, UNIXGRAM_OUTPUT_MESSAGE_BYTES_MAX};
use crate::runtime::backoff::Backoff;
use crate::stats::carbon::datagrams;
use crate::telemetry::{Metric, Telemetry};

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["UdpOutput"],
    plan: plan_udp_output,
};

/// `UdpOutput`'s own keys (the common output keys are in [`super::plan::RawCommon`]).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUdpOutput {
    /// `udp` (default), `udp4`, `udp6` or `unixgram`.
    pub net: Option<String>,
    /// `host:port`, or a socket path with `unixgram`.
    pub address: String,
    /// The local address to send from (`host:port`; UDP only).
    pub local_address: Option<String>,
    /// Bytes of one encoded message at most; a longer one is dropped (default 65507).
    pub max_message_size: Option<u64>,
}

/// Which socket a UdpOutput sends from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    /// UDP, over IPv4 or IPv6 as the address resolves.
    Udp,
    /// UDP over IPv4 only.
    Udp4,
    /// UDP over IPv6 only.
    Udp6,
    /// A Unix datagram socket; the address is a path.
    Unixgram,
}

/// UdpOutput, planned.
#[derive(Debug, Clone)]
pub struct UdpOutputKind {
    /// The socket family.
    pub net: Net,
    /// Where datagrams go: `host:port` (resolved on each core when it opens) or a path.
    pub address: String,
    /// The address each core's socket binds to (`local_address`); any port when unset.
    pub local_address: Option<SocketAddr>,
}

fn plan_udp_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawUdpOutput = own.parse()?;
    let net = match raw.net.as_deref() {
        None | Some("udp") => Net::Udp,
        Some("udp4") => Net::Udp4,
        Some("udp6") => Net::Udp6,
        Some("unixgram") => Net::Unixgram,
        Some(other) => {
            return Err(section.error(
                Some("net"),
                format!("`{other}` is not udp, udp4, udp6 or unixgram"),
            ))
        }
    };
    let local_address = match (&raw.local_address, net) {
        (None, _) => None,
        (Some(_), Net::Unixgram) => {
            return Err(section.error(
                Some("local_address"),
                "applies to UDP only; a unixgram sender is unnamed",
            ))
        }
        (Some(local), _) => Some(section.address("local_address", local)?),
    };
    if raw.address.is_empty() {
        return Err(section.error(Some("address"), "must not be empty"));
    }
    if net != Net::Unixgram {
        // A host name is resolved by each core when it opens.
        section.destination("address", &raw.address)?;
    }
    let bytes_max = match net {
        Net::Unixgram => UNIXGRAM_OUTPUT_MESSAGE_BYTES_MAX,
        _ => UDP_OUTPUT_MESSAGE_BYTES_MAX,
    };
    let max_message_size = match raw.max_message_size {
        None => UDP_OUTPUT_MESSAGE_BYTES_MAX,
        Some(size) if (1..=bytes_max as u64).contains(&size) => size as usize,
        Some(size) => {
            return Err(section.error(
                Some("max_message_size"),
                format!("{size} is outside 1 to {bytes_max} (the largest datagram)"),
            ))
        }
    };
    let default = common.with_defaults("ProtobufEncoder", false, false);
    let encoder = match default.encoder {
        super::plan::EncoderChoice::Named { name, default } => {
            crate::encoder::resolve(section, context, name, default)?
        }
        super::plan::EncoderChoice::Fixed(encoder) => encoder,
    };
    let common = super::plan::Common {
        encoder: super::plan::EncoderChoice::Fixed(Arc::new(LengthFramedKind::new(
            encoder,
            max_message_size,
        ))),
        ..default
    };
    let kind = UdpOutputKind {
        net,
        address: raw.address.clone(),
        local_address,
    };
    let mut plan = super::plan::output_plan(section, context, common, |_| Ok(Arc::new(kind)))?;
    // Its sockets are per core; it has no single writer of its own.
    plan.owner_core = context.global.output_core;
    Ok(plan)
}

impl OutputKind for UdpOutputKind {
    fn type_name(&self) -> &'static str {
        "UdpOutput"
    }

    fn describe(&self, _: &OutputPlan) -> String {
        let net = match self.net {
            Net::Udp => "udp",
            Net::Udp4 => "udp4",
            Net::Udp6 => "udp6",
            Net::Unixgram => "unixgram",
        };
        format!("{net} {} (one socket per core)", self.address)
    }

    fn writers(&self) -> Writers {
        Writers::EveryCore
    }

    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            let sender = DatagramSender {
                kind: self.clone(),
                name: core.output.name.clone(),
                socket: Lazy::new(),
                drop_when_full: core.best_effort(),
            };
            // Tried now so that a receiver that resolves is ready for the first batch; one
            // that does not is a warning, and tried again with each batch after a backoff.
            sender.socket();
            Ok(Opened::plain(Rc::new(sender)))
        })
    }
}

impl UdpOutputKind {
    /// This core's socket: for `unixgram`, a non-blocking std socket (a receiver whose queue
    /// is full is waited for on a timer, [`DatagramSender::send_unix`]); for UDP, the address
    /// resolved for `net` and a socket bound to `local_address` or any port.
    fn open_socket(&self) -> std::io::Result<Socket> {
        match self.net {
            Net::Unixgram => UnixDatagram::unbound()
                .and_then(|socket| socket.set_nonblocking(true).map(|()| socket))
                .map(|socket| Socket::Unix(socket, PathBuf::from(&self.address))),
            net => self.udp_socket(net),
        }
    }

    /// Resolves the address for `net` and binds this core's socket.
    fn udp_socket(&self, net: Net) -> std::io::Result<Socket> {
        let wanted = |address: &SocketAddr| match net {
            Net::Udp4 => address.is_ipv4(),
            Net::Udp6 => address.is_ipv6(),
            _ => true,
        };
        let target = self
            .address
            .to_socket_addrs()?
            .find(wanted)
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "resolves to no address of this net",
                )
            })?;
        let local = match self.local_address {
            Some(local) => local,
            None if target.is_ipv6() => SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)),
            None => SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0)),
        };
        let socket = UdpSocket::bind(local).map_err(std::io::Error::from)?;
        Ok(Socket::Udp(socket, target))
    }
}

/// One core's socket and where its datagrams go.
enum Socket {
    Udp(UdpSocket, SocketAddr),
    Unix(UnixDatagram, PathBuf),
}

/// How long a datagram waits for room at a Unix receiver whose queue is full, between tries.
const UNIX_FULL_WAIT: Duration = Duration::from_millis(1);
/// Tries of one datagram at a full Unix receiver before it is dropped and counted (about a
/// second): a receiver that has stopped reading cannot hold the core for longer.
const UNIX_FULL_TRIES_MAX: u32 = 1000;

/// A socket opened when first needed: an attempt that fails (a name that does not resolve
/// yet, a socket that cannot be bound) is a warning, and the next waits a backoff.
struct Lazy<T> {
    socket: RefCell<Option<Rc<T>>>,
    /// The wait between attempts, doubling per failure.
    retry: RefCell<Backoff>,
    /// When the next attempt may be made.
    next_try: Cell<Instant>,
}

impl<T> Lazy<T> {
    fn new() -> Lazy<T> {
        Lazy {
            socket: RefCell::new(None),
            retry: RefCell::new(Backoff::new(RECONNECT_DELAY_MIN, RECONNECT_DELAY_MAX)),
            next_try: Cell::new(Instant::now()),
        }
    }

    /// The socket, opened now with `open` if it is not yet and the backoff allows an attempt;
    /// a failure is logged for the output `name` and the `address`.
    fn get(
        &self,
        name: &str,
        address: &str,
        open: impl FnOnce() -> std::io::Result<T>,
    ) -> Option<Rc<T>> {
        if let Some(socket) = &*self.socket.borrow() {
            return Some(socket.clone());
        }
        let now = Instant::now();
        if now < self.next_try.get() {
            return None;
        }
        match open() {
            Ok(socket) => {
                let socket = Rc::new(socket);
                *self.socket.borrow_mut() = Some(socket.clone());
                self.retry.borrow_mut().reset();
                Some(socket)
            }
            Err(error) => {
                let wait = self.retry.borrow_mut().step();
                self.next_try.set(now + wait);
                tracing::warn!(
                    output = %name,
                    "{address}: {error}; datagrams are dropped and counted until it opens, next try in {wait:?}",
                );
                None
            }
        }
    }
}

/// One core's UdpOutput socket, opened when first needed.
struct DatagramSender {
    kind: UdpOutputKind,
    /// The output's name, for its warnings.
    name: String,
    /// Opened when the address resolves and a socket is bound.
    socket: Lazy<Socket>,
    /// `delivery = "best_effort"`: a datagram a full Unix receiver cannot take is dropped at
    /// once rather than waited for.
    drop_when_full: bool,
}

impl DatagramSender {
    /// The socket, opened now if it is not yet and the backoff allows an attempt.
    fn socket(&self) -> Option<Rc<Socket>> {
        let kind = &self.kind;
        self.socket
            .get(&self.name, &kind.address, || kind.open_socket())
    }

    async fn send(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let (mut sent, mut sent_bytes, mut failed) = (0, 0, 0);
        let Some(socket) = self.socket() else {
            let messages = encodings(&batch.bytes).count() as u64;
            telemetry.add(core, plugin, Metric::Errors, messages);
            telemetry.add(core, plugin, Metric::Dropped, messages);
            return;
        };
        for encoding in encodings(&batch.bytes) {
            let result = match &*socket {
                Socket::Udp(socket, target) => socket
                    .send_to(encoding, *target)
                    .await
                    .map_err(std::io::Error::from),
                Socket::Unix(socket, path) => self.send_unix(socket, encoding, path).await,
            };
            match result {
                Ok(_) => {
                    sent += 1;
                    sent_bytes += encoding.len() as u64;
                }
                Err(_) => failed += 1,
            }
        }
        if failed > 0 {
            telemetry.add(core, plugin, Metric::Errors, failed);
            telemetry.add(core, plugin, Metric::Dropped, failed);
        }
        telemetry.add(core, plugin, Metric::Sent, sent);
        telemetry.add(core, plugin, Metric::SentBytes, sent_bytes);
    }
}

impl DatagramSender {
    /// Sends one datagram to a Unix receiver. A full receiver queue is waited for (memory
    /// delivery) up to [`UNIX_FULL_TRIES_MAX`] tries, or not at all (best effort).
    async fn send_unix(
        &self,
        socket: &UnixDatagram,
        datagram: &[u8],
        path: &std::path::Path,
    ) -> std::io::Result<usize> {
        let mut tries = 0;
        loop {
            match socket.send_to(datagram, path) {
                Err(error)
                    if error.kind() == std::io::ErrorKind::WouldBlock
                        && !self.drop_when_full
                        && tries < UNIX_FULL_TRIES_MAX =>
                {
                    tries += 1;
                    glommio::timer::sleep(UNIX_FULL_WAIT).await;
                }
                result => return result,
            }
        }
    }
}

impl super::Destination for DatagramSender {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> LocalBoxFuture<'a, ()> {
        Box::pin(self.send(batch, telemetry, core, plugin))
    }
}

/// One core's CarbonOutput socket toward one destination, opened when first needed: a host
/// name that does not resolve yet (or a socket that cannot be bound) is a warning, its batches
/// are dropped and counted, and it is tried again after a backoff, as UdpOutput does.
pub struct UdpSender {
    address: String,
    /// The output's name, for its warnings.
    name: String,
    datagram_bytes_max: usize,
    /// Opened when the address resolves and a socket is bound.
    socket: Lazy<(UdpSocket, SocketAddr)>,
}

impl UdpSender {
    /// A sender to `address` (`host:port`, resolved when the socket opens), for the output
    /// `name`; tries to open its socket at once.
    pub fn new(address: &str, name: &str, datagram_bytes_max: usize) -> UdpSender {
        let sender = UdpSender {
            address: address.to_string(),
            name: name.to_string(),
            datagram_bytes_max,
            socket: Lazy::new(),
        };
        sender.socket();
        sender
    }

    /// Resolves the address and binds an ephemeral local socket of its family.
    fn open(&self) -> std::io::Result<(UdpSocket, SocketAddr)> {
        let target = self.address.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "address resolves to nothing")
        })?;
        let local = if target.is_ipv6() {
            SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
        } else {
            SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
        };
        let socket = UdpSocket::bind(local).map_err(std::io::Error::from)?;
        Ok((socket, target))
    }

    /// The socket, opened now if it is not yet and the backoff allows an attempt.
    fn socket(&self) -> Option<Rc<(UdpSocket, SocketAddr)>> {
        self.socket.get(&self.name, &self.address, || self.open())
    }

    /// Sends a batch of lines as datagrams.
    pub async fn send(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let Some(socket) = self.socket() else {
            telemetry.add(core, plugin, Metric::Errors, 1);
            telemetry.add(core, plugin, Metric::Dropped, batch.messages);
            return;
        };
        let (socket, target) = &*socket;
        let mut failed = false;
        for datagram in datagrams(&batch.bytes, self.datagram_bytes_max) {
            if socket.send_to(datagram, *target).await.is_err() {
                failed = true;
            }
        }
        if failed {
            telemetry.add(core, plugin, Metric::Errors, 1);
            telemetry.add(core, plugin, Metric::Dropped, batch.messages);
        } else {
            telemetry.add(core, plugin, Metric::Sent, batch.messages);
            telemetry.add(core, plugin, Metric::SentBytes, batch.bytes.len() as u64);
        }
    }
}

impl super::Destination for UdpSender {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> crate::component::LocalBoxFuture<'a, ()> {
        Box::pin(self.send(batch, telemetry, core, plugin))
    }
}
