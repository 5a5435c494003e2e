//! Tuning profiles: the per-core pinning and sizing an operator picks for a machine.
//!
//! A profile names each core's roles, the sizes of rings, buffers and batches, the executor's
//! io_uring settings, and which core hosts which single-writer output or filter. It is chosen
//! by `[gyges] tuning = "FILE"` or `gyges run --tuning FILE`; values in `[gyges]` win over the
//! profile, so a config can still pin one knob. See `tuning/README.md`.
//!
//! ```toml
//! [[core]]
//! cpu = 0
//! roles = ["ingest"]
//! [[core]]
//! cpu = 1
//! roles = ["ingest", "filter", "output"]
//!
//! [executor]            # per core
//! io_memory = 1048576
//! ring_depth = 128
//! [rings]
//! slots = 16            # batches per (core, owner) ring
//! [io]
//! read_buffer_size = 65536
//! socket_receive_buffer = 4194304
//! batch_size = 262144
//! [placement]           # plugin section name = cpu
//! FileOutput = 1
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

/// A core's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Binds every input's address and reads, splits, decodes and routes.
    Ingest,
    /// Hosts aggregating filters.
    Filter,
    /// Owns single-writer outputs.
    Output,
}

/// One core of a profile.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreProfile {
    /// The CPU number to pin this core's executor to; it must be online unless
    /// `allow_offline_cores`.
    pub cpu: usize,
    /// The jobs this core does; at least one core of a profile must have `ingest`.
    pub roles: Vec<Role>,
    /// NUMA node, for the reader's benefit and for `gyges validate`.
    pub numa_node: Option<usize>,
}

/// Executor settings per core.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorProfile {
    /// io_uring registered buffer memory per executor, in bytes; `None` leaves `[gyges]
    /// io_memory` or its default.
    pub io_memory: Option<u64>,
    /// io_uring submission ring depth per executor, in entries; `None` leaves `[gyges]
    /// ring_depth` or its default.
    pub ring_depth: Option<u64>,
}

/// Cross-core ring sizes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingProfile {
    /// Slots in each cross-core ring, in batches; `None` leaves `[gyges] ring_slots` or its
    /// default.
    pub slots: Option<u64>,
}

/// Socket and batching sizes.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoProfile {
    /// Bytes read from a socket at once, on top of room for the largest record; `None` leaves
    /// `[gyges] read_buffer_size` or its default.
    pub read_buffer_size: Option<u64>,
    /// SO_RCVBUF of listening sockets, in bytes; `None` leaves `[gyges] socket_receive_buffer`
    /// or the kernel's.
    pub socket_receive_buffer: Option<u64>,
    /// Bytes an output batch holds before it is written or handed over; `None` leaves
    /// `[gyges] batch_size` or its default.
    pub batch_size: Option<u64>,
}

/// A whole profile.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A one-line description, shown by `gyges validate`.
    pub description: Option<String>,
    /// The `[[core]]` tables: the cores to run on, in order, with their roles; must not be
    /// empty unless `[gyges] cores` is set.
    pub core: Vec<CoreProfile>,
    /// The `[executor]` table: io_uring settings for every core.
    #[serde(default)]
    pub executor: ExecutorProfile,
    /// The `[rings]` table: cross-core ring sizes.
    #[serde(default)]
    pub rings: RingProfile,
    /// The `[io]` table: socket and batching sizes.
    #[serde(default)]
    pub io: IoProfile,
    /// Plugin section name → the cpu that hosts it (single-writer outputs, filters).
    #[serde(default)]
    pub placement: BTreeMap<String, usize>,
}
