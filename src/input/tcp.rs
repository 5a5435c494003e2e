//! TcpInput: one SO_REUSEPORT listener per ingest core; each accepted connection is read,
//! split, decoded and routed on that core.

use std::net::SocketAddr;
use std::rc::Rc;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use gyges_io_uring::socket::Listener;

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::config::plan::InputKind;
use crate::message::{ack, now_ns};
use crate::runtime::shard::Shard;
use crate::telemetry::Metric;

/// Binds the input's address on this core.
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub fn bind(address: SocketAddr, receive_buffer: Option<usize>) -> std::io::Result<Listener> {
    gyges_io_uring::socket::tcp_listener(address, receive_buffer)
}

/// Accepts connections until the core stops, serving each on its own task.
pub async fn serve(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    listener: Listener,
    max_connections: usize,
) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    while !shard.stop.is_stopping() {
        let accepted =
            futures_lite::future::or(async { Some(listener.listener.accept().await) }, async {
                shard.stop.wait().await;
                None
            })
            .await;
        let stream = match accepted {
            None => break,
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                tracing::warn!(input = %input.plan.name, %error, "accept failed");
                glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if open.get() >= max_connections {
            tracing::warn!(input = %input.plan.name, max_connections, "connection limit reached; closing");
            drop(stream);
            continue;
        }
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::Connections, 1);
        open.set(open.get() + 1);
        let guard = shard.connection_opened();
        let (shard, input, open) = (shard.clone(), input.clone(), open.clone());
        glommio::spawn_local(async move {
            read_connection(&shard, &input, stream).await;
            open.set(open.get() - 1);
            drop(guard);
        })
        .detach();
    }
    // Leave the SO_REUSEPORT group now, so new connections go to whoever still listens.
    listener.stop();
}

async fn read_connection(shard: &Shard, input: &InputContext, mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|address| address.to_string())
        .unwrap_or_default();
    if let InputKind::Tcp {
        keep_alive: Some(idle),
        ..
    } = input.plan.kind
    {
        let _ = gyges_io_uring::socket::set_keepalive(&stream, Some(idle));
    }
    let meta = input.line_meta(peer);
    let Some((mut splitter, mut buffer)) = input.stream_parts(shard.read_buffer_bytes) else {
        return;
    };
    while !shard.stop.is_stopping() {
        let read = {
            let spare = buffer.spare_mut();
            futures_lite::future::or(async { Some(stream.read(spare).await) }, async {
                shard.stop.wait().await;
                None
            })
            .await
        };
        let count = match read {
            None | Some(Ok(0)) => break,
            Some(Ok(count)) => count,
            Some(Err(error)) => {
                tracing::debug!(input = %input.plan.name, %error, "connection read failed");
                break;
            }
        };
        buffer.commit(count);
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::BytesRead, count as u64);
        {
            let mut router = shard.router.borrow_mut();
            let mut uuids = shard.uuids.borrow_mut();
            let now = now_ns();
            while let Some(record) = buffer.next_record(&mut splitter) {
                deliver_record(
                    record.bytes,
                    input,
                    &meta,
                    now,
                    &mut uuids,
                    &mut router,
                    &shard.telemetry,
                    shard.core,
                );
            }
        }
        publish_splitter_stats(&mut splitter, &shard.telemetry, shard.core, input.plugin);
        if let Some(requests) = splitter.take_requests() {
            if let Err(error) = answer(shard, input, &mut stream, requests).await {
                tracing::debug!(input = %input.plan.name, %error, "acknowledgement failed");
                break;
            }
        }
        shard.ship_full().await;
        glommio::yield_if_needed().await;
    }
    // The stream ended: a final record without its delimiter is delivered or counted as
    // discarded, as the splitter is configured.
    if let Some(record) = buffer.finish(&mut splitter) {
        let mut router = shard.router.borrow_mut();
        let mut uuids = shard.uuids.borrow_mut();
        let (telemetry, core) = (&shard.telemetry, shard.core);
        deliver_record(
            record.bytes,
            input,
            &meta,
            now_ns(),
            &mut uuids,
            &mut router,
            telemetry,
            core,
        );
    }
    publish_splitter_stats(&mut splitter, &shard.telemetry, shard.core, input.plugin);
    // Say goodbye now. Left to the descriptor's last reference, the FIN can leave after this
    // process has exited (io_uring releases its file references late), and a sender that
    // checks for a closed peer before writing would write into a dead connection meanwhile.
    let _ = stream.shutdown(std::net::Shutdown::Both).await;
}

/// Answers an acknowledging sender (`docs/ack.md`): a hello gets a welcome; a mark gets its ack
/// once everything read before it has been shipped and, for durable routes, appended to this
/// core's queues.
async fn answer(
    shard: &Shard,
    input: &InputContext,
    stream: &mut TcpStream,
    requests: ack::Requests,
) -> std::io::Result<()> {
    let mut reply = Vec::with_capacity(2 * ack::CONTROL_BYTES_MAX);
    if requests.hello.is_some() {
        ack::Control::Welcome {
            version: ack::VERSION,
        }
        .encode(&mut reply);
    }
    if let Some(seq) = requests.mark {
        shard.settle().await;
        ack::Control::Ack { seq }.encode(&mut reply);
        shard
            .telemetry
            .add(shard.core, input.plugin, Metric::Acks, 1);
    }
    stream.write_all(&reply).await
}
