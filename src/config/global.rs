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
    pub max_message_size: usize,
    pub max_message_loops: u32,
    pub max_process_inject: u32,
    pub max_timer_inject: u32,
    pub base_dir: PathBuf,
    pub share_dir: PathBuf,
    pub hostname: String,
    pub pid_file: Option<PathBuf>,
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
    pub output_cores: Vec<usize>,
    /// The tuning profile in force: its file and description.
    pub tuning: Option<(String, String)>,
    /// Cores named by the plan that are not online on this machine (only with
    /// `allow_offline_cores`; `gyges run` refuses them).
    pub offline_cores: Vec<usize>,
    /// Plugin section name → hosting core, from the tuning profile.
    pub placement: std::collections::BTreeMap<String, usize>,
    pub io_memory_bytes: usize,
    pub ring_depth: usize,
    pub ring_slots: usize,
    pub batch_bytes: usize,
    pub read_buffer_bytes: usize,
    pub socket_receive_buffer_bytes: Option<usize>,
    pub stats_interval: Option<Duration>,
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

pub(crate) fn global_plan(
    raw: &raw::Global,
    section: Option<&Section>,
    origin: &str,
    overrides: &Overrides,
    profile: Option<&(String, Profile)>,
) -> Result<GlobalPlan, ConfigError> {
    let error = |key: &str, message: String| match section {
        Some(section) => section.error(Some(key), message),
        None => ConfigError::file(origin, message),
    };
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
    let online = online_cores();
    let profile_error = |key: &str, message: String| match profile {
        Some((file, _)) => ConfigError {
            file: file.clone(),
            section: Some("core".into()),
            key: Some(key.into()),
            message,
        },
        None => error(key, message),
    };
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
            .unwrap_or(*cores.last().unwrap_or(&0)),
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
    let bounded = |key: &str, value: Option<u64>, default: usize, min: usize, max: usize| {
        let value = value.map_or(default as u64, |value| value);
        if value < min as u64 || value > max as u64 {
            return Err(error(key, format!("{value} is outside {min}..={max}")));
        }
        Ok(value as usize)
    };
    let hostname = raw.hostname.clone().unwrap_or_else(local_hostname);
    let from_profile = |raw_value: Option<u64>, pick: fn(&Profile) -> Option<u64>| {
        raw_value.or_else(|| profile.and_then(|(_, profile)| pick(profile)))
    };
    let io_memory = from_profile(raw.io_memory, |profile| profile.executor.io_memory);
    let ring_depth = from_profile(raw.ring_depth, |profile| profile.executor.ring_depth);
    let ring_slots = from_profile(raw.ring_slots, |profile| profile.rings.slots);
    let batch_size = from_profile(raw.batch_size, |profile| profile.io.batch_size);
    let read_buffer_size =
        from_profile(raw.read_buffer_size, |profile| profile.io.read_buffer_size);
    let socket_receive_buffer = from_profile(raw.socket_receive_buffer, |profile| {
        profile.io.socket_receive_buffer
    });
    let base_dir = PathBuf::from(raw.base_dir.as_deref().unwrap_or("./gyges-data"));
    let queue = crate::queue::config::QueueGlobal {
        queue_dir: raw.queue_dir.clone(),
        sync: raw.sync,
        checkpoint_interval: raw.checkpoint_interval,
        min_disk_free: raw.min_disk_free,
    };
    Ok(GlobalPlan {
        max_message_size: max_message_size as usize,
        max_message_loops: bounded(
            "max_message_loops",
            raw.max_message_loops.map(u64::from),
            limits::MESSAGE_LOOPS_DEFAULT,
            1,
            limits::MESSAGE_LOOPS_MAX,
        )? as u32,
        max_process_inject: bounded(
            "max_process_inject",
            raw.max_process_inject.map(u64::from),
            limits::PROCESS_INJECT_DEFAULT,
            0,
            limits::INJECT_PER_CALL_MAX,
        )? as u32,
        max_timer_inject: bounded(
            "max_timer_inject",
            raw.max_timer_inject.map(u64::from),
            limits::TIMER_INJECT_DEFAULT,
            0,
            limits::INJECT_PER_CALL_MAX,
        )? as u32,
        share_dir: PathBuf::from(raw.share_dir.as_deref().unwrap_or("/usr/share/gyges")),
        hostname,
        pid_file: raw.pid_file.as_ref().map(PathBuf::from),
        dialect,
        cores,
        ingest_cores,
        output_core,
        filter_core,
        filter_cores,
        output_cores,
        tuning: profile.map(|(file, profile)| {
            (
                file.clone(),
                profile.description.clone().unwrap_or_default(),
            )
        }),
        offline_cores: offline,
        placement: profile
            .map(|(_, profile)| profile.placement.clone())
            .unwrap_or_default(),
        io_memory_bytes: bounded(
            "io_memory",
            io_memory,
            limits::IO_MEMORY_BYTES_DEFAULT,
            0,
            limits::IO_MEMORY_BYTES_MAX,
        )?,
        ring_depth: bounded(
            "ring_depth",
            ring_depth,
            limits::IO_RING_DEPTH_DEFAULT,
            limits::IO_RING_DEPTH_MIN,
            limits::IO_RING_DEPTH_MAX,
        )?,
        ring_slots: bounded(
            "ring_slots",
            ring_slots,
            limits::RING_SLOTS_DEFAULT,
            limits::RING_SLOTS_MIN,
            limits::RING_SLOTS_MAX,
        )?,
        batch_bytes: bounded(
            "batch_size",
            batch_size,
            limits::BATCH_BYTES_DEFAULT,
            limits::BATCH_BYTES_MIN,
            limits::BATCH_BYTES_MAX,
        )?,
        read_buffer_bytes: bounded(
            "read_buffer_size",
            read_buffer_size,
            limits::READ_BUFFER_BYTES_DEFAULT,
            limits::READ_BUFFER_SETTING_BYTES_MIN,
            limits::READ_BUFFER_BYTES_MAX,
        )?,
        socket_receive_buffer_bytes: match socket_receive_buffer {
            None => None,
            Some(bytes) => Some(bounded(
                "socket_receive_buffer",
                Some(bytes),
                0,
                limits::SOCKET_RECEIVE_BUFFER_BYTES_MIN,
                limits::SOCKET_RECEIVE_BUFFER_BYTES_MAX,
            )?),
        },
        stats_interval: match bounded(
            "stats_interval",
            raw.stats_interval,
            limits::STATS_INTERVAL_SECONDS_DEFAULT,
            0,
            limits::STATS_INTERVAL_SECONDS_MAX,
        )? {
            0 => None,
            seconds => Some(Duration::from_secs(seconds as u64)),
        },
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

