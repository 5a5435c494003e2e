//! What AMQPOutput (`output/amqp.rs`) and AMQPInput (`input/amqp.rs`) share: the broker URL,
//! the exchange to declare, and connecting off the ingest cores.
//!
//! The client is lapin (`docs/amqp.md` says why). lapin runs threads of its own: an I/O loop
//! per connection, the reactor that wakes it, and the executor its connection handshake runs
//! on. Each of them inherits the CPU set of the thread that starts it, and they all start
//! while a connection is made, so [`connect`] makes every connection on a short-lived thread
//! confined to the tuning profile's output cores (as the Kafka client is, [`crate::kafka`]).
//! The gyges core that asked waits for that thread on a timer, never blocking; lapin's
//! futures (publish, confirm, ack, the consumer stream) are then polled from the core's own
//! glommio tasks: their wakers work on any executor.

use std::time::Duration;

use lapin::options::{ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::FieldTable;
use lapin::uri::{AMQPScheme, AMQPUri};
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use crate::config::plan::GlobalPlan;
use crate::config::{ConfigError, Section};

/// The broker and the exchange of an AMQP section.
#[derive(Debug, Clone)]
pub struct Broker {
    /// `url`, as written (it may hold a password: never logged; see [`Broker::shown`]).
    pub url: String,
    /// `host:port/vhost`, what logs and `gyges validate` show.
    pub shown: String,
    /// `exchange`.
    pub exchange: String,
    /// `exchange_type`: `direct`, `fanout`, `topic` or `headers`.
    pub exchange_type: String,
    /// `exchange_durability`.
    pub exchange_durable: bool,
    /// `exchange_auto_delete`.
    pub exchange_auto_delete: bool,
    /// The CPUs lapin's threads run on.
    pub client_cpus: Vec<usize>,
    /// `amqps://`: TLS toward the broker.
    pub tls: Option<BrokerTls>,
}

/// TLS toward the broker (`amqps://`).
#[derive(Clone)]
pub struct BrokerTls {
    /// `tls.root_cafile`'s PEM certificates, trusted beside the system's CAs.
    pub roots: Option<String>,
}

impl std::fmt::Debug for BrokerTls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("BrokerTls")
            .field("roots", &self.roots.as_ref().map(String::len))
            .finish()
    }
}

/// Checks `url`, `exchange`, `exchange_type` and `tls` of `section`.
///
/// # Errors
/// A URL lapin cannot parse (or `amqps://`, which this build does not speak), an empty
/// exchange, an exchange type that is not one of AMQP's four, a `[name.tls]` table.
pub fn broker(
    section: &Section,
    global: &GlobalPlan,
    url: &str,
    (exchange, exchange_type): (&str, &str),
    (durable, auto_delete): (Option<bool>, Option<bool>),
    tls: Option<&crate::tls::RawTls>,
) -> Result<Broker, ConfigError> {
    let parsed: AMQPUri = url
        .parse()
        .map_err(|error| section.error(Some("url"), format!("not an AMQP URL: {error}")))?;
    let tls = match (parsed.scheme == AMQPScheme::AMQPS, tls) {
        (true, tls) => Some(broker_tls(section, tls.cloned().unwrap_or_default())?),
        (false, Some(_)) => {
            tracing::warn!(
                section = %section.name,
                "[{}.tls] is ignored: url is not amqps://",
                section.name
            );
            None
        }
        (false, None) => None,
    };
    if exchange.is_empty() || exchange.len() > crate::limits::AMQP_NAME_BYTES_MAX {
        return Err(section.error(Some("exchange"), "an exchange name is 1 to 255 bytes"));
    }
    if !matches!(exchange_type, "direct" | "fanout" | "topic" | "headers") {
        return Err(section.error(
            Some("exchange_type"),
            format!("`{exchange_type}` is not direct, fanout, topic or headers"),
        ));
    }
    let shown = format!(
        "{}:{}/{}",
        parsed.authority.host, parsed.authority.port, parsed.vhost
    );
    Ok(Broker {
        url: url.to_string(),
        shown,
        exchange: exchange.to_string(),
        exchange_type: exchange_type.to_string(),
        exchange_durable: durable.unwrap_or(false),
        exchange_auto_delete: auto_delete.unwrap_or(true),
        client_cpus: crate::kafka::client_cpus(global),
        tls,
    })
}

/// Plans `amqps://`: the broker is verified against the system's CAs plus `tls.root_cafile`
/// (lapin's rustls connector takes no other settings), and its name must be the URL's host.
///
/// # Errors
/// A `[name.tls]` key lapin cannot honour, an unreadable `root_cafile` or one without
/// certificates.
fn broker_tls(section: &Section, raw: crate::tls::RawTls) -> Result<BrokerTls, ConfigError> {
    let unsupported = [
        ("cert_file", raw.cert_file.is_some()),
        ("key_file", raw.key_file.is_some()),
        ("server_name", raw.server_name.is_some()),
        ("ciphers", raw.ciphers.is_some()),
        ("min_version", raw.min_version.is_some()),
        ("max_version", raw.max_version.is_some()),
        ("client_auth", raw.client_auth.is_some()),
        ("client_cafile", raw.client_cafile.is_some()),
        ("prefer_server_ciphers", raw.prefer_server_ciphers.is_some()),
        (
            "insecure_skip_verify",
            raw.insecure_skip_verify == Some(true),
        ),
    ];
    for (key, set) in unsupported {
        section.refuse(
            &format!("tls.{key}"),
            set,
            "not available toward AMQP brokers: the connection verifies the broker against \
             the system's CAs and tls.root_cafile, by the URL's host, and sends no client \
             certificate (docs/amqp.md)",
        )?;
    }
    let roots = match raw.root_cafile.as_deref() {
        None => None,
        Some(path) => {
            let key = Some("tls.root_cafile");
            let pem = std::fs::read_to_string(path)
                .map_err(|error| section.error(key, format!("cannot read `{path}`: {error}")))?;
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(section.error(key, format!("no PEM certificate in `{path}`")));
            }
            Some(pem)
        }
    };
    Ok(BrokerTls { roots })
}

/// Checks an AMQP name (routing key, queue) against the protocol's short-string bound.
///
/// # Errors
/// Longer than 255 bytes.
pub fn short_string(section: &Section, key: &str, value: &str) -> Result<(), ConfigError> {
    if value.len() > crate::limits::AMQP_NAME_BYTES_MAX {
        return Err(section.error(Some(key), "is longer than 255 bytes"));
    }
    Ok(())
}

/// A connection and one channel on it, with the exchange declared.
pub struct Link {
    /// Kept so the connection lives as long as the channel.
    pub connection: Connection,
    /// The channel publishes or consumes go through.
    pub channel: Channel,
    /// The consumer [`Prepare`] started, for an input.
    pub consumer: Option<lapin::Consumer>,
}

impl Link {
    /// Whether the connection and the channel are still usable.
    pub fn is_up(&self) -> bool {
        self.connection.status().connected() && self.channel.status().connected()
    }
}

/// What [`connect`] runs on the channel, once it is open, before handing it back: an input
/// declares and binds its queue and starts consuming.
pub type Prepare = Box<dyn FnOnce(Channel) -> Preparing + Send>;

/// The future of a [`Prepare`].
pub type Preparing = std::pin::Pin<
    Box<dyn std::future::Future<Output = lapin::Result<Option<lapin::Consumer>>> + Send>,
>;

/// Connects to `broker` on a thread confined to the client CPUs, opens a channel (with
/// publisher confirms when `confirms`), declares the exchange and runs `prepare` on the
/// channel. The calling core waits on a timer, never blocking.
///
/// # Errors
/// The thread cannot start, or the broker refused or could not be reached (the message says
/// which).
pub async fn connect(
    broker: &Broker,
    name: &str,
    confirms: bool,
    prepare: Option<Prepare>,
) -> Result<Link, String> {
    let url = broker.url.clone();
    let tls = broker.tls.as_ref().map(|tls| OwnedTLSConfig {
        identity: None,
        cert_chain: tls.roots.clone(),
    });
    let cpus = broker.client_cpus.clone();
    let exchange = broker.exchange.clone();
    let kind = match broker.exchange_type.as_str() {
        "direct" => ExchangeKind::Direct,
        "fanout" => ExchangeKind::Fanout,
        "topic" => ExchangeKind::Topic,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.to_string()),
    };
    let options = ExchangeDeclareOptions {
        durable: broker.exchange_durable,
        auto_delete: broker.exchange_auto_delete,
        ..ExchangeDeclareOptions::default()
    };
    let connection_name = format!("gyges {name}");
    let thread = std::thread::Builder::new()
        .name("gyges-amqp-new".into())
        .spawn(move || -> Result<Link, String> {
            gyges_sys::thread::set_current_affinity(&cpus)
                .map_err(|error| format!("cannot confine the client to CPUs {cpus:?}: {error}"))?;
            futures_lite::future::block_on(async move {
                let properties =
                    ConnectionProperties::default().with_connection_name(connection_name.into());
                let connection = match tls {
                    Some(tls) => {
                        // lapin's connector builds its rustls config with the process's
                        // default provider: ring, as everywhere else in gyges.
                        let _ = rustls::crypto::ring::default_provider().install_default();
                        Connection::connect_with_config(&url, properties, tls).await
                    }
                    None => Connection::connect(&url, properties).await,
                }
                .map_err(|error| format!("connect: {error}"))?;
                let channel = connection
                    .create_channel()
                    .await
                    .map_err(|error| format!("channel: {error}"))?;
                if confirms {
                    channel
                        .confirm_select(ConfirmSelectOptions::default())
                        .await
                        .map_err(|error| format!("confirm.select: {error}"))?;
                }
                channel
                    .exchange_declare(&exchange, kind, options, FieldTable::default())
                    .await
                    .map_err(|error| format!("exchange.declare `{exchange}`: {error}"))?;
                let consumer = match prepare {
                    Some(prepare) => prepare(channel.clone())
                        .await
                        .map_err(|error| format!("queue setup: {error}"))?,
                    None => None,
                };
                Ok(Link {
                    connection,
                    channel,
                    consumer,
                })
            })
        })
        .map_err(|error| format!("cannot start the connecting thread: {error}"))?;
    while !thread.is_finished() {
        glommio::timer::sleep(Duration::from_millis(5)).await;
    }
    thread
        .join()
        .unwrap_or_else(|_| Err("the connecting thread panicked".into()))
}

/// Closes `link` on a thread of its own (the broker may take its time to answer).
pub fn close(link: Link) {
    let closing = std::thread::Builder::new()
        .name("gyges-amqp-close".into())
        .spawn(move || {
            futures_lite::future::block_on(async move {
                let _ = link.channel.close(200, "gyges stops").await;
                let _ = link.connection.close(200, "gyges stops").await;
            })
        });
    if let Err(error) = closing {
        tracing::debug!(%error, "amqp: the connection is dropped without a close");
    }
}
