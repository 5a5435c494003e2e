//! TcpInput: one SO_REUSEPORT listener per ingest core; each accepted connection is read,
//! split, decoded and routed on that core.

use std::net::SocketAddr;
use std::rc::Rc;

use futures_lite::AsyncReadExt;
use glommio::net::{TcpListener, TcpStream};

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::limits;
use crate::message::now_ns;
use crate::runtime::shard::Shard;
use crate::splitter::{SplitterStats, StreamBuffer};
use crate::telemetry::Metric;

/// Binds the input's address on this core.
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub fn bind(address: SocketAddr, receive_buffer: Option<usize>) -> std::io::Result<TcpListener> {
    gyges_io_uring::socket::tcp_listener(address, receive_buffer)
}

/// Accepts connections until the core stops, serving each on its own task.
pub async fn serve(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    listener: TcpListener,
    max_connections: usize,
) {
    let open = Rc::new(std::cell::Cell::new(0usize));
    while !shard.stop.is_stopping() {
        let accepted = futures_lite::future::or(async { Some(listener.accept().await) }, async {
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
}

async fn read_connection(shard: &Shard, input: &InputContext, mut stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|address| address.to_string())
        .unwrap_or_default();
    if let InputPlanKeepAlive::Some(idle) = keep_alive(input) {
        let _ = gyges_io_uring::socket::set_keepalive(&stream, Some(idle));
    }
    let meta = input.line_meta(peer);
    let mut splitter = input.splitter();
    let mut published = SplitterStats::default();
    let capacity =
        input.max_message_size + limits::FRAME_OVERHEAD_BYTES_MAX + shard.read_buffer_bytes;
    let mut buffer = StreamBuffer::new(capacity);
    while !shard.stop.is_stopping() {
        let read = {
            let spare = buffer.spare_mut();
            if spare.is_empty() {
                // The splitter bounds every record below the buffer's size, so a full buffer
                // with no record in it is a bug; reading into nothing would look like EOF.
                tracing::error!(input = %input.plan.name, "read buffer full with no record; closing");
                break;
            }
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
                    record,
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
        publish_splitter_stats(
            &splitter.stats,
            &mut published,
            &shard.telemetry,
            shard.core,
            input.plugin,
        );
        shard.ship_full().await;
        glommio::yield_if_needed().await;
    }
    publish_splitter_stats(
        &splitter.stats,
        &mut published,
        &shard.telemetry,
        shard.core,
        input.plugin,
    );
}

enum InputPlanKeepAlive {
    Some(std::time::Duration),
    None,
}

fn keep_alive(input: &InputContext) -> InputPlanKeepAlive {
    match input.plan.kind {
        crate::config::plan::InputKind::Tcp {
            keep_alive: Some(idle),
            ..
        } => InputPlanKeepAlive::Some(idle),
        _ => InputPlanKeepAlive::None,
    }
}
