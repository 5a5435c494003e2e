//! The config as written: serde structs with Heka's section and option names.
//!
//! Every struct denies unknown keys, so a typo stops startup with an error naming the key.
//! Field docs are the user docs. Values are checked for sense in [`super::plan`], not here.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The global section, `[hekad]` or `[gyges]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// Largest message accepted, in bytes (default 64 KiB, at most 64 MiB).
    pub max_message_size: Option<u64>,
    /// Re-injection depth cap for messages injected by filters (default 4).
    pub max_message_loops: Option<u32>,
    /// Messages a sandbox filter may inject per process_message (default 1).
    pub max_process_inject: Option<u32>,
    /// Messages a sandbox filter may inject per timer_event (default 10).
    pub max_timer_inject: Option<u32>,
    /// Sandbox process_message time budget in ns (default 100000).
    pub max_process_duration: Option<u64>,
    /// Where state lives: queues, sandbox preservation (default `./gyges-data`).
    pub base_dir: Option<String>,
    /// Read-only assets such as Lua modules (default `/usr/share/gyges`).
    pub share_dir: Option<String>,
    /// The hostname stamped on messages gyges creates (default: the machine's).
    pub hostname: Option<String>,
    /// A file to write the process id to.
    pub pid_file: Option<String>,
    /// Matcher dialect: `heka` (default) or `lsb`.
    pub matcher_dialect: Option<String>,
    /// Cores to run on, e.g. `[0, 1]` (default: every online core).
    pub cores: Option<Vec<usize>>,
    /// The core that owns single-writer outputs and hosts filters (default: the last core).
    pub output_core: Option<usize>,
    /// io_uring registered buffer memory per executor, in bytes (default 1 MiB).
    pub io_memory: Option<u64>,
    /// io_uring submission ring depth per executor (default 128).
    pub ring_depth: Option<u64>,
    /// Slots in each cross-core ring, in batches (default 16).
    pub ring_slots: Option<u64>,
    /// Bytes one output batch holds before it is written or handed over (default 256 KiB).
    pub batch_size: Option<u64>,
    /// Read buffer per connection beyond the largest record, in bytes (default 64 KiB).
    pub read_buffer_size: Option<u64>,
    /// SO_RCVBUF for listening sockets in bytes (default: the kernel's).
    pub socket_receive_buffer: Option<u64>,
    /// Seconds between throughput summaries in the log; 0 turns them off (default 10).
    pub stats_interval: Option<u64>,
    /// Where durable outputs keep their disk queues (default `<base_dir>/queue`).
    pub queue_dir: Option<String>,
    /// When queue data is synced: `none`, `interval` (default) or `every_batch`.
    pub sync: Option<crate::queue::SyncPolicy>,
    /// Milliseconds between queue checkpoints and interval syncs (default 1000).
    pub checkpoint_interval: Option<u64>,
    /// Bytes that must stay free on the queue's disk; 0 turns the check off.
    pub min_disk_free: Option<u64>,
    /// A tuning profile file; see `tuning/README.md`.
    pub tuning: Option<String>,
    /// Accepted for Heka compatibility and ignored: gyges has no goroutines.
    pub maxprocs: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored: gyges has no pack pool.
    pub poolsize: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored: gyges has no channels.
    pub plugin_chansize: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored.
    pub sample_denominator: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored: gyges packs cannot leak.
    pub max_pack_idle: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored.
    pub full_buffer_max_retries: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored.
    pub log_flags: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored.
    pub cpuprof: Option<toml::Value>,
    /// Accepted for Heka compatibility and ignored.
    pub memprof: Option<toml::Value>,
}

impl Global {
    /// The Heka options present that gyges accepts but ignores, for a one-time log line.
    pub fn ignored_present(&self) -> Vec<&'static str> {
        let options = [
            ("maxprocs", self.maxprocs.is_some()),
            ("poolsize", self.poolsize.is_some()),
            ("plugin_chansize", self.plugin_chansize.is_some()),
            ("sample_denominator", self.sample_denominator.is_some()),
            ("max_pack_idle", self.max_pack_idle.is_some()),
            (
                "full_buffer_max_retries",
                self.full_buffer_max_retries.is_some(),
            ),
            ("log_flags", self.log_flags.is_some()),
            ("cpuprof", self.cpuprof.is_some()),
            ("memprof", self.memprof.is_some()),
        ];
        options
            .iter()
            .filter(|(_, present)| *present)
            .map(|(name, _)| *name)
            .collect()
    }
}

/// `TcpInput`: listens for TCP connections on every ingest core.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpInput {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// `host:port` to listen on.
    pub address: String,
    /// `tcp`, `tcp4` or `tcp6`.
    pub net: Option<String>,
    /// Splitter section name (default `HekaFramingSplitter`).
    pub splitter: Option<String>,
    /// Decoder section name (default `ProtobufDecoder` after Heka framing, none otherwise).
    pub decoder: Option<String>,
    /// TLS is not supported yet; only `false` is accepted.
    pub use_tls: Option<bool>,
    pub keep_alive: Option<bool>,
    /// Seconds.
    pub keep_alive_period: Option<u64>,
    /// Connections accepted per core at once (default 1024).
    pub max_connections: Option<u64>,
    /// Heka's per-input HMAC keys: `[name.signer.<signer>_<version>] hmac_key = "…"`.
    pub signer: Option<BTreeMap<String, SignerKey>>,
    /// Accepted; decoding is always synchronous in gyges.
    pub synchronous_decode: Option<bool>,
    /// Send records that fail to decode on as plain-payload messages.
    pub send_decode_failures: Option<bool>,
    /// Log each decode failure (rate-limited; default true).
    pub log_decode_failures: Option<bool>,
    /// Accepted for Heka compatibility: inputs may always stop on their own.
    pub can_exit: Option<bool>,
}

/// One HMAC key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerKey {
    pub hmac_key: String,
}

/// `UdpInput`: receives datagrams on every ingest core.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpInput {
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
    pub signer: Option<BTreeMap<String, SignerKey>>,
    pub synchronous_decode: Option<bool>,
    pub send_decode_failures: Option<bool>,
    pub log_decode_failures: Option<bool>,
    pub can_exit: Option<bool>,
}

/// `TokenSplitter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSplitter {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// One byte (default `"\n"`).
    pub delimiter: Option<String>,
    /// Delimiters per record (default 1).
    pub count: Option<u64>,
    pub keep_truncated: Option<bool>,
    pub use_message_bytes: Option<bool>,
    pub min_buffer_size: Option<u64>,
    pub deliver_incomplete_final: Option<bool>,
}

/// `HekaFramingSplitter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HekaFramingSplitter {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub skip_authentication: Option<bool>,
    pub use_message_bytes: Option<bool>,
    pub keep_truncated: Option<bool>,
    pub min_buffer_size: Option<u64>,
    pub deliver_incomplete_final: Option<bool>,
}

/// `NullSplitter`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NullSplitter {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub use_message_bytes: Option<bool>,
    pub keep_truncated: Option<bool>,
    pub min_buffer_size: Option<u64>,
    pub deliver_incomplete_final: Option<bool>,
}

/// `ProtobufDecoder`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtobufDecoder {
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// `ProtobufEncoder`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtobufEncoder {
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

/// `PayloadEncoder`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadEncoder {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Append `\n` after each payload (default true).
    pub append_newlines: Option<bool>,
    /// Prefix each payload with a timestamp (default false).
    pub prefix_ts: Option<bool>,
    /// strftime-style format of that prefix.
    pub ts_format: Option<String>,
    /// Take the prefix time from the message's Timestamp rather than now.
    pub ts_from_message: Option<bool>,
}

/// `FileOutput`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOutput {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub message_matcher: Option<String>,
    pub message_signer: Option<String>,
    /// File path; `%{core}` makes one file per core.
    pub path: String,
    /// Encoder section name (default `ProtobufEncoder`).
    pub encoder: Option<String>,
    /// Heka-frame each record (default false, as in Heka).
    pub use_framing: Option<bool>,
    /// Milliseconds between writes of a partly filled batch (default 1000).
    pub flush_interval: Option<u64>,
    /// Messages that make a batch worth writing (default 1).
    pub flush_count: Option<u64>,
    /// `AND` (default) or `OR`: how flush_interval and flush_count combine.
    pub flush_operator: Option<String>,
    /// Octal file mode (default `644`).
    pub perm: Option<String>,
    /// Octal mode of created folders (default `700`).
    pub folder_perm: Option<String>,
    /// Only 0 (no rotation) is supported yet.
    pub rotation_interval: Option<u64>,
    pub ticker_interval: Option<u64>,
    pub can_exit: Option<bool>,
    /// Keep what is routed here in a disk queue until it is delivered (default false).
    pub use_buffering: Option<bool>,
    /// `"memory"` (default), `"best_effort"` or `"durable"` (the same as `use_buffering =
    /// true`); see `docs/delivery.md`.
    pub delivery: Option<String>,
    /// The disk queue's options (with `use_buffering`).
    pub buffering: Option<crate::queue::config::Buffering>,
}

/// `TcpOutput`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpOutput {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub message_matcher: Option<String>,
    pub message_signer: Option<String>,
    /// `host:port` to send to.
    pub address: String,
    pub local_address: Option<String>,
    /// Encoder section name (default `ProtobufEncoder`).
    pub encoder: Option<String>,
    /// Heka-frame each record (default true).
    pub use_framing: Option<bool>,
    /// Reconnect after this many messages, to rebalance (default 0 = never).
    pub reconnect_after: Option<u64>,
    /// Bytes each core buffers while the receiver is unreachable (default 8 MiB);
    /// past that, messages are dropped and counted.
    pub buffer_size: Option<u64>,
    pub keep_alive: Option<bool>,
    pub keep_alive_period: Option<u64>,
    /// TLS is not supported yet; only `false` is accepted.
    pub use_tls: Option<bool>,
    pub ticker_interval: Option<u64>,
    pub can_exit: Option<bool>,
    /// Keep what is routed here in a disk queue until it is delivered (default false).
    pub use_buffering: Option<bool>,
    /// `"memory"` (default), `"best_effort"` or `"durable"` (the same as `use_buffering =
    /// true`); see `docs/delivery.md`.
    pub delivery: Option<String>,
    /// The disk queue's options (with `use_buffering`).
    pub buffering: Option<crate::queue::config::Buffering>,
    /// Ask the receiver to acknowledge what it has queued, and commit only then (gyges
    /// receivers; a Heka receiver is sent to unacknowledged). Needs `use_buffering`.
    pub ack: Option<bool>,
    /// Milliseconds to wait for the receiver's welcome and for each acknowledgement.
    pub ack_timeout: Option<u64>,
}

/// `LogOutput`: writes encoded messages to stdout.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogOutput {
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub message_matcher: Option<String>,
    pub message_signer: Option<String>,
    /// Encoder section name (default `PayloadEncoder`).
    pub encoder: Option<String>,
    pub use_framing: Option<bool>,
    pub ticker_interval: Option<u64>,
    pub can_exit: Option<bool>,
    /// Only `"memory"` (the default): stdout is written synchronously.
    pub delivery: Option<String>,
}
