//! UdpInput: one SO_REUSEPORT socket per ingest core; each datagram is split (NullSplitter by
//! default: the datagram is the record), decoded and routed on that core.

use std::net::SocketAddr;
use std::rc::Rc;

use glommio::net::UdpSocket;

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::config::plan::InputKind;
use crate::message::now_ns;
use crate::runtime::shard::Shard;
use crate::telemetry::Metric;

/// The largest UDP payload.
const DATAGRAM_BYTES_MAX: usize = 65_535;

/// Binds the input's address on this core.
///
/// # Errors
/// The address cannot be bound.
pub fn bind(address: SocketAddr, receive_buffer: Option<usize>) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind(address).map_err(std::io::Error::from)?;
    if let Some(bytes) = receive_buffer {
        gyges_io_uring::socket::set_receive_buffer(&socket, bytes)?;
    }
    Ok(socket)
}

/// Receives datagrams until the core stops.
pub async fn serve(shard: Rc<Shard>, input: Rc<InputContext>, socket: UdpSocket) {
    let _guard = shard.connection_opened();
    let set_hostname = matches!(
        input.plan.kind,
        InputKind::Udp {
            set_hostname: true,
            ..
        }
    );
    let Some((mut splitter, mut buffer)) = input.stream_parts(DATAGRAM_BYTES_MAX) else {
        return;
    };
    let mut last_sender: Option<SocketAddr> = None;
    let mut meta = input.line_meta(String::new());
    while !shard.stop.is_stopping() {
        // Each datagram is a stream of its own: a record cannot span datagrams (the buffer is
        // left empty by `finish` below).
        let received = {
            let spare = &mut buffer.spare_mut()[..DATAGRAM_BYTES_MAX];
            futures_lite::future::or(async { Some(socket.recv_from(spare).await) }, async {
                shard.stop.wait().await;
                None
            })
            .await
        };
        let (count, sender) = match received {
            None => break,
            Some(Ok(received)) => received,
            Some(Err(error)) => {
                tracing::debug!(input = %input.plan.name, %error, "receive failed");
                continue;
            }
        };
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::BytesRead, count as u64);
        if set_hostname && last_sender != Some(sender) {
            meta = input.line_meta(sender.to_string());
            last_sender = Some(sender);
        }
        buffer.commit(count);
        {
            let mut router = shard.router.borrow_mut();
            let mut uuids = shard.uuids.borrow_mut();
            let (telemetry, core, now) = (&shard.telemetry, shard.core, now_ns());
            let mut deliver = |bytes: &[u8]| {
                deliver_record(
                    bytes,
                    &input,
                    &meta,
                    now,
                    &mut uuids,
                    &mut router,
                    telemetry,
                    core,
                )
            };
            while let Some(record) = buffer.next_record(&mut splitter) {
                deliver(record.bytes);
            }
            if let Some(record) = buffer.finish(&mut splitter) {
                deliver(record.bytes);
            }
        }
        publish_splitter_stats(&mut splitter, &shard.telemetry, shard.core, input.plugin);
        shard.ship_full().await;
        glommio::yield_if_needed().await;
    }
}
