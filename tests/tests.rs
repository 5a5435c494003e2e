//! End-to-end tests against the built `gyges` binary and the real engine on loopback: one
//! harness, one module per topic. Helpers live in `util`.

mod util;

/// The pipeline spine: ingest, routing, delivery, bad input, config errors, shutdown.
mod pipeline;

/// Zero allocations per record on the data path (a counting global allocator).
mod alloc;

/// `gyges matcher`: exit codes, output, message file forms.
mod matcher_cli;

/// The matcher's data path allocates nothing per message.
mod matcher_alloc;

/// The Heka tools: `gyges cat`, `gyges inject`, `gyges flood`.
mod tools;

/// The Lua sandbox through the library API: filters, decoders, encoders, limits.
#[cfg(feature = "lua")]
mod sandbox;

/// Filters on their host core through the daemon.
#[cfg(feature = "lua")]
mod filters;

/// SandboxManagerFilter and `gyges sandbox`: signed loads, replace, unload, restart, refusals.
#[cfg(feature = "lua")]
mod sandbox_manager;

/// `gyges queue` on files the disk queue wrote.
mod queue_tool;

/// The built-in aggregations (statsd, StatAccumInput, CounterFilter, CarbonOutput) through the
/// daemon.
mod stats;

/// A loopback HTTP/1.1 server that answers like Elasticsearch (or anything else), for the
/// HTTP output tests.
mod http_receiver;

/// HttpOutput: requests, retries, InfluxDB, delivery classes, config errors.
mod http_output;

/// ElasticSearchOutput: bulk bodies, per-item answers, retries, kill -9, TLS, config errors.
mod elasticsearch;

/// UdpOutput: one datagram per message over UDP and Unix datagram sockets.
mod udp_output;

/// FilePollingInput: a file read whole at every tick, split, decoded, and a missing file.
mod file_polling;

/// SmtpOutput against an SMTP server on loopback: mails, send_interval, retries, refusals.
mod smtp;

/// AMQPOutput and AMQPInput against a RabbitMQ node of their own on loopback.
#[cfg(feature = "amqp")]
mod amqp;

/// KafkaOutput and KafkaInput against tansu, a Kafka-compatible broker, on loopback.
#[cfg(feature = "kafka")]
mod kafka;

/// The bench programs' shared report code (`bench/common`), compiled here for its tests.
#[path = "../bench/common/mod.rs"]
mod bench_common;

/// The report's dates, slugs, sections and tables.
mod bench_report;

/// Durable outputs: kill -9 and restart mid-stream, a TcpOutput receiver that is down.
mod durable;

/// Durable outputs whose queue fills: `full_action` block, drop and shutdown through the daemon,
/// by `max_buffer_size` and by `min_disk_free` on a small tmpfs.
mod durable_full;

/// Soak and overload, short forms (`scripts/soak.sh` runs the long ones): kill -9 on durable
/// routes, a stalled destination, idle and slow-loris connections, a disk that fills.
mod soak;

/// Delivery classes: best_effort drops for a stuck receiver, memory pushes back; config errors.
mod delivery;

/// Durable filters: kill -9 and restart mid-stream, a clean stop that leaves a backlog.
#[cfg(feature = "lua")]
mod durable_filters;

/// SyslogInput and SyslogDecoder through the daemon, fed by util-linux `logger` and rsyslog's omfwd.
mod syslog;

/// TLS on TcpInput and TcpOutput: `openssl s_client`, gyges → gyges, client_auth, config errors.
mod tls;

/// HMAC-signed framing on outputs (`[name.signer]`): verified, refused with a wrong key, tampered.
mod signer;

/// HttpListenInput through the daemon, with curl, Python's http.client and raw sockets.
mod http_listen;

/// LogstreamerInput through the daemon: logrotate rotations, journal resume, priority.
mod logstreamer;

/// Gaps closed after review: a panic on one core stops the daemon with status 1; Lua decoders
/// keep preserved state per core; acknowledgement marks need a hello and are paced.
mod hardening;

/// FluentForwardInput and FluentForwardOutput: fluent-logger, the recorded mode fixtures, acks,
/// the shared_key handshake, heartbeats, a gyges → gyges round trip.
mod fluent;

/// ESJsonEncoder, ESLogstashV0Encoder and SchemaInfluxLineEncoder through the daemon.
mod encoders;

/// The operator endpoint (`/metrics`, `/health`, `/report`) and `gyges top`.
mod ops;

/// PayloadRegexDecoder, ScribbleDecoder, MultiDecoder and PayloadJsonDecoder through the daemon.
mod decoders;

/// The dashboard page in headless chromium, with DashboardOutput's circular-buffer graphs.
#[cfg(feature = "lua")]
mod dashboard;

/// A config directory written as Heka users wrote theirs (Heka's plugin and option names, one
/// file per concern): it validates with one line per difference, and it runs.
#[cfg(all(feature = "lua", feature = "kafka", feature = "amqp"))]
mod heka_configs;
