//! The config as written: serde structs with Heka's section and option names.
//!
//! Every struct denies unknown keys, so a typo stops startup with an error naming the key.
//! Field docs are the user docs. Values are checked for sense in [`super::plan`], not here.

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
    /// Whether queue segments are written with `O_DIRECT` where the file system takes it
    /// (default false).
    pub queue_direct_io: Option<bool>,
    /// `HOST:PORT` of the operator's HTTP endpoint (`/metrics`, `/health`, `/report`); unset
    /// serves none (the embedded default config sets `127.0.0.1:4352`).
    pub http_address: Option<String>,
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
