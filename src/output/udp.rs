//! Datagram delivery (CarbonOutput with `protocol = "udp"`): each core sends its batches from
//! its own socket, cut at line boundaries into datagrams of at most `datagram_bytes_max`.
//! UDP has no backpressure and no delivery guarantee: a send that fails is counted as an
//! error and its messages as dropped.

use std::net::{SocketAddr, ToSocketAddrs};

use glommio::net::UdpSocket;

use super::Batch;
use crate::stats::carbon::datagrams;
use crate::telemetry::{Metric, Telemetry};

/// One core's socket toward one destination.
pub struct UdpSender {
    socket: UdpSocket,
    target: SocketAddr,
    datagram_bytes_max: usize,
}

impl UdpSender {
    /// Binds an ephemeral local socket for sending to `address`.
    ///
    /// # Errors
    /// The address does not resolve, or no socket can be bound.
    pub fn new(address: &str, datagram_bytes_max: usize) -> std::io::Result<UdpSender> {
        let target = address.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "address resolves to nothing")
        })?;
        let local: SocketAddr = if target.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "local address"))?;
        let socket = UdpSocket::bind(local).map_err(std::io::Error::from)?;
        Ok(UdpSender {
            socket,
            target,
            datagram_bytes_max,
        })
    }

    /// Sends a batch of lines as datagrams.
    pub async fn send(&self, batch: Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let mut failed = false;
        for datagram in datagrams(&batch.bytes, self.datagram_bytes_max) {
            if self.socket.send_to(datagram, self.target).await.is_err() {
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
