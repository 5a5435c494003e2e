//! The global section (`[hekad]` or `[gyges]`) and the tuning profile, resolved: cores and
//! their roles, placement, and every engine-wide bound.

use std::path::PathBuf;
use std::time::Duration;

use super::plan::Overrides;
use super::raw;
use super::tuning::{Profile, Role};
use super::{ConfigError, Section};
use crate::limits;
use crate::matcher::Dialect;

/// The names the global section may have.
pub const GLOBAL_SECTIONS: [&str; 2] = ["hekad", "gyges"];

/// The global section, resolved.
#[derive(Debug, Clone)]
pub struct GlobalPlan {
    /// Largest message accepted, in bytes (`max_message_size`, default 64 KiB); a longer record
    /// is dropped and counted.
    pub max_message_size: usize,
    /// Times a message may be injected again by filters (`max_message_loops`) before it is
    /// dropped and counted.
    pub max_message_loops: u32,
    /// Messages one sandbox `process_message` call may inject (`max_process_inject`); a call
    /// that injects more is terminated.
    pub max_process_inject: u32,
    /// Messages one sandbox `timer_event` call may inject (`max_timer_inject`); a call that
    /// injects more is terminated.
    pub max_timer_inject: u32,
    /// Where state lives: queues and sandbox preservation (`base_dir`, default `./gyges-data`).
    pub base_dir: PathBuf,
    /// Read-only assets such as Lua scripts and modules (`share_dir`; by default the first of
    /// [`SHARE_DIR_DEFAULTS`] that exists).
    pub share_dir: PathBuf,
    /// The hostname stamped on messages gyges creates (`hostname`, default the machine's).
    pub hostname: String,
    /// The file `gyges run` writes its process id to (`pid_file`); `None` writes none.
    pub pid_file: Option<PathBuf>,
    /// The dialect every `message_matcher` is compiled in (`matcher_dialect`, default `heka`).
    pub dialect: Dialect,
    /// The cores that run an executor, in order.
    pub cores: Vec<usize>,
    /// The cores that bind inputs (a subset of `cores`).
    pub ingest_cores: Vec<usize>,
    /// The core that owns single-writer outputs unless placed elsewhere.
    pub output_core: usize,
    /// The core that hosts filters unless placed elsewhere.
    pub filter_core: usize,
    /// Every core with the filter role, and every core with the output role.
    pub filter_cores: Vec<usize>,
    /// Every core with the output role in the tuning profile, in order (empty without one).
    pub output_cores: Vec<usize>,
    /// The tuning profile in force: its file and description.
    pub tuning: Option<(String, String)>,
    /// Cores named by the plan that are not online on this machine (only with
    /// `allow_offline_cores`; `gyges run` refuses them).
    pub offline_cores: Vec<usize>,
    /// Plugin section name → hosting core, from the tuning profile.
    pub placement: std::collections::BTreeMap<String, usize>,
    /// io_uring registered buffer memory per executor, in bytes (`io_memory`, default 1 MiB).
    pub io_memory_bytes: usize,
    /// io_uring submission ring depth per executor, in entries (`ring_depth`, default 128).
    pub ring_depth: usize,
    /// Slots in each cross-core ring, in batches (`ring_slots`); when a ring is full its
    /// producer stops reading until the consumer catches up.
    pub ring_slots: usize,
    /// Bytes an output batch holds before it is written or handed over (`batch_size`).
    pub batch_bytes: usize,
    /// Bytes read from a socket at once, on top of room for the largest record
    /// (`read_buffer_size`).
    pub read_buffer_bytes: usize,
    /// SO_RCVBUF of listening sockets, in bytes (`socket_receive_buffer`); `None` keeps the
    /// kernel's.
    pub socket_receive_buffer_bytes: Option<usize>,
    /// Time between throughput lines in the log (`stats_interval`); `None` (set to 0) logs none.
    pub stats_interval: Option<Duration>,
    /// Where the operator's HTTP endpoint listens (`http_address`); `None` serves none.
    pub http_address: Option<std::net::SocketAddr>,
    /// The queue options of the global section (`queue_dir`, `sync`, ...).
    pub queue: crate::queue::config::QueueGlobal,
    /// Where durable outputs keep their disk queues.
    pub queue_dir: PathBuf,
}

/// Reads the tuning profile named by `--tuning` or `[gyges] tuning`, if any.
pub(crate) fn load_profile(
    raw: &raw::Global,
    section: Option<&Section>,
    origin: &str,
    overrides: &Overrides,
) -> Result<Option<(String, Profile)>, ConfigError> {
    let path = match (&overrides.tuning, &raw.tuning) {
        (Some(path), _) => path.clone(),
        (None, Some(path)) => PathBuf::from(path),
        (None, None) => return Ok(None),
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|error| {
        let message = format!("cannot read tuning profile {shown}: {error}");
        match (section, overrides.tuning.is_none()) {
            (Some(section), true) => section.error(Some("tuning"), message),
            _ => ConfigError::file(origin, message),
        }
    })?;
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        ConfigError::file(&shown, format!("TOML syntax: {}", error.message()))
    })?;
    let document_section = Section {
        file: shown.clone(),
        name: "profile".into(),
        table,
    };
    let profile: Profile = document_section.parse().map_err(|mut error| {
        // Name the profile's own section: the first component of the key path.
        if let Some(key) = error.key.take() {
            let (head, rest) = key.split_once('.').unwrap_or((key.as_str(), ""));
            error.section = Some(
                head.trim_end_matches(|c: char| c == ']' || c.is_ascii_digit() || c == '[')
                    .to_string(),
            );
            error.key = Some(if rest.is_empty() {
                head.to_string()
            } else {
                rest.to_string()
            });
        }
        error
    })?;
    Ok(Some((shown, profile)))
}

/// Where a global setting came from, for errors: the global section (or the config's origin
/// when it has none) or the tuning profile.
struct Origin<'a> {
    section: Option<&'a Section>,
    origin: &'a str,
    profile: Option<&'a (String, Profile)>,
}

impl Origin<'_> {
    /// An error about `key` of the global section.
    fn global(&self, key: &str, message: String) -> ConfigError {
        match self.section {
            Some(section) => section.error(Some(key), message),
            None => ConfigError::file(self.origin, message),
        }
    }

    /// An error about `key` of the profile's `[[core]]` tables (or of the global section
    /// when there is no profile).
    fn profile(&self, key: &str, message: String) -> ConfigError {
        match self.profile {
            Some((file, _)) => ConfigError {
                file: file.clone(),
                section: Some("core".into()),
                key: Some(key.into()),
                message,
            },
            None => self.global(key, message),
        }
    }
}

/// The cores and their roles, resolved.
struct CoreLayout {
    cores: Vec<usize>,
    ingest_cores: Vec<usize>,
    output_core: usize,
    filter_core: usize,
    filter_cores: Vec<usize>,
    output_cores: Vec<usize>,
    offline: Vec<usize>,
}

/// Every core in order, the roles of each, and those not online here.
type CoresAndRoles = (Vec<usize>, Vec<Vec<Role>>, Vec<usize>);

/// The cores named by `cores`, the profile or the machine, with their roles, and those of them
/// not online here.
fn cores_and_roles(
    raw: &raw::Global,
    overrides: &Overrides,
    at: &Origin<'_>,
) -> Result<CoresAndRoles, ConfigError> {
    let profile = at.profile;
    let error = |key: &str, message: String| at.global(key, message);
    let profile_error = |key: &str, message: String| at.profile(key, message);
    let online = online_cores();
    let (cores, roles): (Vec<usize>, Vec<Vec<Role>>) = match (&raw.cores, profile) {
        (Some(cores), _) => (
            cores.clone(),
            cores.iter().map(|_| vec![Role::Ingest]).collect(),
        ),
        (None, Some((_, profile))) => {
            if profile.core.is_empty() {
                return Err(profile_error("cpu", "the profile names no cores".into()));
            }
            profile
                .core
                .iter()
                .map(|core| (core.cpu, core.roles.clone()))
                .unzip()
        }
        (None, None) => (
            online.clone(),
            online.iter().map(|_| vec![Role::Ingest]).collect(),
        ),
    };
    if cores.is_empty() {
        return Err(error("cores", "the list is empty".into()));
    }
    let offline: Vec<usize> = cores
        .iter()
        .copied()
        .filter(|core| !online.contains(core))
        .collect();
    if !offline.is_empty() && !overrides.allow_offline_cores {
        let message = format!("cores {offline:?} are not online here (online: {online:?})");
        return Err(if raw.cores.is_some() {
            error("cores", message)
        } else {
            profile_error("cpu", message)
        });
    }
    let mut unique = cores.clone();
    unique.sort_unstable();
    unique.dedup();
    if unique.len() != cores.len() {
        return Err(if raw.cores.is_some() {
            error("cores", "a core is listed twice".into())
        } else {
            profile_error("cpu", "a core is listed twice".into())
        });
    }
    Ok((cores, roles, offline))
}

/// Resolves `cores`, `output_core` and the profile's roles and placement.
fn core_layout(
    raw: &raw::Global,
    overrides: &Overrides,
    at: &Origin<'_>,
) -> Result<CoreLayout, ConfigError> {
    let profile = at.profile;
    let error = |key: &str, message: String| at.global(key, message);
    let profile_error = |key: &str, message: String| at.profile(key, message);
    let (cores, roles, offline) = cores_and_roles(raw, overrides, at)?;
    let with_role = |role: Role| -> Vec<usize> {
        cores
            .iter()
            .zip(&roles)
            .filter(|(_, roles)| roles.contains(&role))
            .map(|(core, _)| *core)
            .collect()
    };
    let ingest_cores = with_role(Role::Ingest);
    if ingest_cores.is_empty() {
        return Err(profile_error("roles", "no core has the ingest role".into()));
    }
    let output_core = match raw.output_core {
        Some(core) if cores.contains(&core) => core,
        Some(core) => {
            return Err(error(
                "output_core",
                format!("core {core} is not in `cores`"),
            ))
        }
        None => with_role(Role::Output)
            .first()
            .copied()
            .or_else(|| cores.last().copied())
            .ok_or_else(|| error("cores", "the list is empty".into()))?,
    };
    let filter_core = with_role(Role::Filter)
        .first()
        .copied()
        .unwrap_or(output_core);
    let (filter_cores, output_cores) = (with_role(Role::Filter), with_role(Role::Output));
    if let Some((file, profile)) = profile {
        if let Some((name, core)) = profile
            .placement
            .iter()
            .find(|(_, core)| !cores.contains(core))
        {
            return Err(ConfigError {
                file: file.clone(),
                section: Some("placement".into()),
                key: Some(name.clone()),
                message: format!("core {core} is not one of the profile's cores {cores:?}"),
            });
        }
    }
    Ok(CoreLayout {
        cores,
        ingest_cores,
        output_core,
        filter_core,
        filter_cores,
        output_cores,
        offline,
    })
}

/// The engine's numeric settings, each checked against its bounds in [`limits`]; a value from
/// the global section wins over the tuning profile's.
struct EngineBounds {
    max_message_loops: u32,
    max_process_inject: u32,
    max_timer_inject: u32,
    io_memory_bytes: usize,
    ring_depth: usize,
    ring_slots: usize,
    batch_bytes: usize,
    read_buffer_bytes: usize,
    socket_receive_buffer_bytes: Option<usize>,
    stats_interval: Option<Duration>,
}

/// `value` (or `default`) if it lies in `min..=max`.
fn bounded(
    at: &Origin<'_>,
    key: &str,
    value: Option<u64>,
    (default, min, max): (usize, usize, usize),
) -> Result<usize, ConfigError> {
    let value = value.unwrap_or(default as u64);
    if value < min as u64 || value > max as u64 {
        return Err(at.global(key, format!("{value} is outside {min}..={max}")));
    }
    Ok(value as usize)
}

fn engine_bounds(raw: &raw::Global, at: &Origin<'_>) -> Result<EngineBounds, ConfigError> {
    use limits::*;
    let from_profile = |raw_value: Option<u64>, pick: fn(&Profile) -> Option<u64>| {
        raw_value.or_else(|| at.profile.and_then(|(_, profile)| pick(profile)))
    };
    let loops = raw.max_message_loops.map(u64::from);
    let process_inject = raw.max_process_inject.map(u64::from);
    let timer_inject = raw.max_timer_inject.map(u64::from);
    let io_memory = from_profile(raw.io_memory, |profile| profile.executor.io_memory);
    let ring_depth = from_profile(raw.ring_depth, |profile| profile.executor.ring_depth);
    let ring_slots = from_profile(raw.ring_slots, |profile| profile.rings.slots);
    let batch_size = from_profile(raw.batch_size, |profile| profile.io.batch_size);
    let read_buffer = from_profile(raw.read_buffer_size, |profile| profile.io.read_buffer_size);
    let receive_buffer = from_profile(raw.socket_receive_buffer, |profile| {
        profile.io.socket_receive_buffer
    });
    let receive_bounds = (
        0,
        SOCKET_RECEIVE_BUFFER_BYTES_MIN,
        SOCKET_RECEIVE_BUFFER_BYTES_MAX,
    );
    let socket_receive_buffer_bytes = match receive_buffer {
        None => None,
        Some(bytes) => Some(bounded(
            at,
            "socket_receive_buffer",
            Some(bytes),
            receive_bounds,
        )?),
    };
    let stats_bounds = (
        STATS_INTERVAL_SECONDS_DEFAULT,
        0,
        STATS_INTERVAL_SECONDS_MAX,
    );
    let stats_interval = match bounded(at, "stats_interval", raw.stats_interval, stats_bounds)? {
        0 => None,
        seconds => Some(Duration::from_secs(seconds as u64)),
    };
    let inject_bounds = |default| (default, 0, INJECT_PER_CALL_MAX);
    Ok(EngineBounds {
        max_message_loops: bounded(
            at,
            "max_message_loops",
            loops,
            (MESSAGE_LOOPS_DEFAULT, 1, MESSAGE_LOOPS_MAX),
        )? as u32,
        max_process_inject: bounded(
            at,
            "max_process_inject",
            process_inject,
            inject_bounds(PROCESS_INJECT_DEFAULT),
        )? as u32,
        max_timer_inject: bounded(
            at,
            "max_timer_inject",
            timer_inject,
            inject_bounds(TIMER_INJECT_DEFAULT),
        )? as u32,
        io_memory_bytes: bounded(
            at,
            "io_memory",
            io_memory,
            (IO_MEMORY_BYTES_DEFAULT, 0, IO_MEMORY_BYTES_MAX),
        )?,
        ring_depth: bounded(
            at,
            "ring_depth",
            ring_depth,
            (IO_RING_DEPTH_DEFAULT, IO_RING_DEPTH_MIN, IO_RING_DEPTH_MAX),
        )?,
        ring_slots: bounded(
            at,
            "ring_slots",
            ring_slots,
            (RING_SLOTS_DEFAULT, RING_SLOTS_MIN, RING_SLOTS_MAX),
        )?,
        batch_bytes: bounded(
            at,
            "batch_size",
            batch_size,
            (BATCH_BYTES_DEFAULT, BATCH_BYTES_MIN, BATCH_BYTES_MAX),
        )?,
        read_buffer_bytes: bounded(
            at,
            "read_buffer_size",
            read_buffer,
            (
                READ_BUFFER_BYTES_DEFAULT,
                READ_BUFFER_SETTING_BYTES_MIN,
                READ_BUFFER_BYTES_MAX,
            ),
        )?,
        socket_receive_buffer_bytes,
        stats_interval,
    })
}

pub(crate) fn global_plan(
    raw: &raw::Global,
    section: Option<&Section>,
    origin: &str,
    overrides: &Overrides,
    profile: Option<&(String, Profile)>,
) -> Result<GlobalPlan, ConfigError> {
    let at = Origin {
        section,
        origin,
        profile,
    };
    let error = |key: &str, message: String| at.global(key, message);
    let max_message_size = raw
        .max_message_size
        .unwrap_or(limits::MESSAGE_BYTES_DEFAULT as u64);
    if !(limits::MESSAGE_BYTES_MIN as u64..=limits::MESSAGE_BYTES_CEILING as u64)
        .contains(&max_message_size)
    {
        return Err(error(
            "max_message_size",
            format!(
                "{max_message_size} is outside {}..={} bytes",
                limits::MESSAGE_BYTES_MIN,
                limits::MESSAGE_BYTES_CEILING
            ),
        ));
    }
    let dialect = match raw.matcher_dialect.as_deref() {
        None => Dialect::default(),
        Some(name) => name.parse().map_err(|_| {
            error(
                "matcher_dialect",
                format!("`{name}` is not `heka` or `lsb`"),
            )
        })?,
    };
    let layout = core_layout(raw, overrides, &at)?;
    let hostname = raw.hostname.clone().unwrap_or_else(local_hostname);
    let bounds = engine_bounds(raw, &at)?;
    let base_dir = PathBuf::from(raw.base_dir.as_deref().unwrap_or("./gyges-data"));
    let http_address = match raw.http_address.as_deref() {
        None => None,
        Some(text) => Some(text.parse().map_err(|_| {
            error(
                "http_address",
                format!("`{text}` is not an IP address and port, such as 127.0.0.1:4352"),
            )
        })?),
    };
    let queue = crate::queue::config::QueueGlobal {
        queue_dir: raw.queue_dir.clone(),
        sync: raw.sync,
        checkpoint_interval: raw.checkpoint_interval,
        min_disk_free: raw.min_disk_free,
        direct_io: raw.queue_direct_io,
    };
    Ok(GlobalPlan {
        max_message_size: max_message_size as usize,
        max_message_loops: bounds.max_message_loops,
        max_process_inject: bounds.max_process_inject,
        max_timer_inject: bounds.max_timer_inject,
        share_dir: match raw.share_dir.as_deref() {
            Some(share_dir) => PathBuf::from(share_dir),
            None => default_share_dir(SHARE_DIR_DEFAULTS),
        },
        hostname,
        pid_file: raw.pid_file.as_ref().map(PathBuf::from),
        dialect,
        cores: layout.cores,
        ingest_cores: layout.ingest_cores,
        output_core: layout.output_core,
        filter_core: layout.filter_core,
        filter_cores: layout.filter_cores,
        output_cores: layout.output_cores,
        tuning: profile.map(|(file, profile)| {
            (
                file.clone(),
                profile.description.clone().unwrap_or_default(),
            )
        }),
        offline_cores: layout.offline,
        placement: profile
            .map(|(_, profile)| profile.placement.clone())
            .unwrap_or_default(),
        io_memory_bytes: bounds.io_memory_bytes,
        ring_depth: bounds.ring_depth,
        ring_slots: bounds.ring_slots,
        batch_bytes: bounds.batch_bytes,
        read_buffer_bytes: bounds.read_buffer_bytes,
        socket_receive_buffer_bytes: bounds.socket_receive_buffer_bytes,
        stats_interval: bounds.stats_interval,
        http_address,
        queue_dir: queue.queue_dir(&base_dir),
        base_dir,
        queue,
    })
}

/// The cores this process may run on.
pub fn online_cores() -> Vec<usize> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|core| core.id)
        .collect();
    if cores.is_empty() {
        cores.push(0);
    }
    cores.sort_unstable();
    cores
}

fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Where a config that sets no `share_dir` looks for its Lua scripts and modules, in order:
/// gyges's own directory, then Heka's, so that a machine with Heka's packaged scripts and
/// `lua_modules` runs their configs unchanged.
pub const SHARE_DIR_DEFAULTS: &[&str] = &["/usr/share/gyges", "/usr/share/heka"];

/// The first of `candidates` that is a directory, or the first when none is.
pub fn default_share_dir(candidates: &[&str]) -> PathBuf {
    candidates
        .iter()
        .map(PathBuf::from)
        .find(|candidate| candidate.is_dir())
        .unwrap_or_else(|| PathBuf::from(candidates.first().copied().unwrap_or(".")))
}
