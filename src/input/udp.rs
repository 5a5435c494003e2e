//! UdpInput: one SO_REUSEPORT socket per ingest core; each datagram is split (NullSplitter by
//! default: the datagram is the record), decoded and routed on that core.

use std::net::SocketAddr;
use std::rc::Rc;

use glommio::net::UdpSocket;

use super::{deliver_record, publish_splitter_stats, InputContext};
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
/// With `set_hostname`, each message's Hostname is its sender's address.
pub async fn serve(
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    socket: UdpSocket,
    set_hostname: bool,
) {
    let _guard = shard.connection_opened();
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

/// `UdpInput`: receives datagrams on every ingest core.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUdpInput {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub address: String,
    /// `udp`, `udp4` or `udp6`.
    pub net: Option<String>,
    /// Splitter section name (default `NullSplitter`: one record per datagram).
    pub splitter: Option<String>,
    pub decoder: Option<String>,
    /// Put the sender's address in Hostname (default true in gyges).
    pub set_hostname: Option<bool>,
    pub signer: Option<std::collections::BTreeMap<String, super::plan::SignerKey>>,
    pub synchronous_decode: Option<bool>,
    pub send_decode_failures: Option<bool>,
    pub log_decode_failures: Option<bool>,
    pub can_exit: Option<bool>,
}


/// UdpInput, planned.
#[derive(Debug, Clone)]
pub struct UdpInputKind {
    pub address: SocketAddr,
    pub set_hostname: bool,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<crate::config::plan::InputPlan> =
    crate::component::Registration {
        type_names: &["UdpInput"],
        plan: |section, context| {
            let raw: RawUdpInput = section.parse()?;
            let kind = UdpInputKind {
                address: section.address("address", &raw.address)?,
                set_hostname: raw.set_hostname.unwrap_or(true),
            };
            let common = super::plan::Common {
                splitter: raw.splitter.as_deref(),
                default_splitter: "NullSplitter",
                decoder: raw.decoder.as_deref(),
                signer: raw.signer.as_ref(),
                net: raw.net.as_deref(),
                nets: &["udp", "udp4", "udp6"],
                log_decode_failures: raw.log_decode_failures,
                send_decode_failures: raw.send_decode_failures,
            };
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
