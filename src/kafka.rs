//! What KafkaOutput (`output/kafka/`) and KafkaInput (`input/kafka.rs`) share: the broker
//! list, TLS, librdkafka's logging, and where the client's own threads run.
//!
//! The client is librdkafka (the `rdkafka` crate), built from the sources the crate vendors
//! rather than linked against the distribution's (`docs/kafka.md` says why). librdkafka runs
//! threads of its own (one main thread, one per broker): they must not compete with the ingest
//! cores. The high-level API has no hook to place them, but a thread inherits the CPU set of
//! the thread that creates it, and librdkafka creates its threads from the client's creator
//! (and from its own main thread, which inherits the same set). So [`create_on`] builds every
//! client on a short-lived thread confined to the output cores of the tuning profile: every
//! thread of that client then runs on those CPUs, and the gyges core that asked for the client
//! keeps its own pinning.

use std::fmt;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::KafkaError;

use crate::config::plan::GlobalPlan;
use crate::config::{ConfigError, Section};

/// The broker connection options of a Kafka section: `addrs` and `use_tls` with `[name.tls]`.
#[derive(Debug, Clone)]
pub struct Brokers {
    /// `host:port,host:port`, as librdkafka's `bootstrap.servers` takes them.
    pub bootstrap: String,
    /// `use_tls`: the files librdkafka reads; `None` is plain TCP.
    pub tls: Option<KafkaTls>,
    /// `id`: the client id the brokers see (default `gyges`).
    pub client_id: String,
}

/// TLS toward the brokers, by file (librdkafka reads them itself, with OpenSSL).
#[derive(Debug, Clone, Default)]
pub struct KafkaTls {
    /// `tls.root_cafile`: the CA the brokers' certificates are verified against.
    pub root_cafile: Option<String>,
    /// `tls.cert_file`: a client certificate, for brokers that ask for one.
    pub cert_file: Option<String>,
    /// `tls.key_file`: the key of `cert_file`.
    pub key_file: Option<String>,
}

/// Checks `addrs` (each `host:port`; names are resolved by librdkafka when it connects, with
/// retries) and the TLS options.
///
/// # Errors
/// No address, an address that is not `host:port`, a TLS option librdkafka cannot honour.
pub fn brokers(
    section: &Section,
    addrs: &[String],
    (use_tls, tls): (Option<bool>, Option<&crate::tls::RawTls>),
    client_id: Option<&str>,
) -> Result<Brokers, ConfigError> {
    if addrs.is_empty() {
        return Err(section.error(Some("addrs"), "needs at least one broker `host:port`"));
    }
    if addrs.len() > crate::limits::KAFKA_BROKERS_MAX {
        let max = crate::limits::KAFKA_BROKERS_MAX;
        return Err(section.error(Some("addrs"), format!("more than {max} brokers")));
    }
    for address in addrs {
        if address.contains(',') {
            return Err(section.error(Some("addrs"), format!("`{address}` holds a comma")));
        }
        section.destination("addrs", address)?;
    }
    let tls = match (use_tls == Some(true), tls) {
        (true, raw) => Some(kafka_tls(section, raw)?),
        (false, Some(_)) => {
            tracing::warn!(section = %section.name, "[{}.tls] is ignored: use_tls is not true", section.name);
            None
        }
        (false, None) => None,
    };
    let client_id = client_id.unwrap_or("gyges");
    if client_id.is_empty() || !client_id.is_ascii() {
        return Err(section.error(Some("id"), "a client id is non-empty ASCII"));
    }
    Ok(Brokers {
        bootstrap: addrs.join(","),
        tls,
        client_id: client_id.to_string(),
    })
}

/// The `[name.tls]` keys librdkafka can honour: the CA, a client certificate and its key.
fn kafka_tls(section: &Section, raw: Option<&crate::tls::RawTls>) -> Result<KafkaTls, ConfigError> {
    let none = crate::tls::RawTls::default();
    let raw = raw.unwrap_or(&none);
    let unsupported = [
        ("tls.server_name", raw.server_name.is_some()),
        ("tls.client_auth", raw.client_auth.is_some()),
        ("tls.client_cafile", raw.client_cafile.is_some()),
        ("tls.ciphers", raw.ciphers.is_some()),
        (
            "tls.prefer_server_ciphers",
            raw.prefer_server_ciphers.is_some(),
        ),
        ("tls.min_version", raw.min_version.is_some()),
        ("tls.max_version", raw.max_version.is_some()),
    ];
    for (key, set) in unsupported {
        section.refuse(
            key,
            set,
            "not available toward Kafka brokers: librdkafka's TLS takes root_cafile, \
             cert_file and key_file",
        )?;
    }
    section.refuse(
        "tls.insecure_skip_verify",
        raw.insecure_skip_verify == Some(true),
        "only false is accepted: gyges always verifies the brokers' certificates",
    )?;
    if raw.cert_file.is_some() != raw.key_file.is_some() {
        let key = if raw.cert_file.is_some() {
            "tls.key_file"
        } else {
            "tls.cert_file"
        };
        return Err(section.error(Some(key), "cert_file and key_file go together"));
    }
    for (key, path) in [
        ("tls.root_cafile", &raw.root_cafile),
        ("tls.cert_file", &raw.cert_file),
        ("tls.key_file", &raw.key_file),
    ] {
        if let Some(path) = path {
            std::fs::metadata(path)
                .map_err(|error| section.error(Some(key), format!("`{path}`: {error}")))?;
        }
    }
    Ok(KafkaTls {
        root_cafile: raw.root_cafile.clone(),
        cert_file: raw.cert_file.clone(),
        key_file: raw.key_file.clone(),
    })
}

impl Brokers {
    /// A librdkafka config with the brokers, the client id and TLS set.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("client.id", &self.client_id)
            .set_log_level(RDKafkaLogLevel::Info);
        if let Some(tls) = &self.tls {
            config
                .set("security.protocol", "ssl")
                .set("enable.ssl.certificate.verification", "true");
            if let Some(path) = &tls.root_cafile {
                config.set("ssl.ca.location", path);
            }
            if let Some(path) = &tls.cert_file {
                config.set("ssl.certificate.location", path);
            }
            if let Some(path) = &tls.key_file {
                config.set("ssl.key.location", path);
            }
        }
        config
    }
}

/// The CPUs librdkafka's threads may run on: the tuning profile's output cores, or else the
/// core that owns single-writer outputs.
pub fn client_cpus(global: &GlobalPlan) -> Vec<usize> {
    if global.output_cores.is_empty() {
        vec![global.output_core]
    } else {
        global.output_cores.clone()
    }
}

/// Runs `make` (which creates a librdkafka client) on a thread confined to `cpus`, so that
/// every thread the client starts is confined to them too; waits for it and returns the client.
///
/// # Errors
/// The CPU set cannot be taken, or `make` failed.
pub fn create_on<T: Send>(
    cpus: &[usize],
    make: impl FnOnce() -> Result<T, KafkaError> + Send,
) -> Result<T, String> {
    std::thread::scope(|scope| {
        let creator = std::thread::Builder::new()
            .name("gyges-kafka-new".into())
            .spawn_scoped(scope, || {
                gyges_sys::thread::set_current_affinity(cpus).map_err(|error| {
                    format!("cannot confine the client to CPUs {cpus:?}: {error}")
                })?;
                make().map_err(|error| error.to_string())
            })
            .map_err(|error| format!("cannot start the client's creator thread: {error}"))?;
        creator
            .join()
            .unwrap_or_else(|_| Err("the client's creator thread panicked".into()))
    })
}

/// librdkafka's log lines and global errors, as gyges's, named by the plugin.
///
/// librdkafka reconnects by itself (with its own backoff), so a broker that is down is a
/// warning, repeated at most as often as librdkafka retries it.
pub struct Logged {
    /// The plugin's section name.
    pub name: String,
}

impl fmt::Debug for Logged {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Logged")
            .field("name", &self.name)
            .finish()
    }
}

impl ClientContext for Logged {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, line: &str) {
        let name = &self.name;
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => {
                tracing::warn!(plugin = %name, facility, "librdkafka: {line}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(plugin = %name, facility, "librdkafka: {line}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(plugin = %name, facility, "librdkafka: {line}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(plugin = %self.name, %error, "kafka: {reason}; librdkafka retries");
    }
}
