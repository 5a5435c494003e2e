//! The validated plan the runtime starts from: every value checked, every name resolved,
//! every matcher compiled, every bound set. Built once at startup.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use super::raw;
use super::tuning::{Profile, Role};
use super::{by_name, ConfigError, Document, Section};
use crate::limits;
use crate::matcher::{self, Dialect, Program};

/// Settings given on the command line, which win over the config.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub tuning: Option<PathBuf>,
    /// Accept cores that are not online here (`gyges validate` of another machine's profile).
    pub allow_offline_cores: bool,
}

/// Everything the runtime needs, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    pub origin: String,
    pub global: GlobalPlan,
    pub inputs: Vec<InputPlan>,
    pub outputs: Vec<OutputPlan>,
    pub filters: Vec<FilterPlan>,
    /// Heka options present but ignored, logged once at startup.
    pub ignored_options: Vec<&'static str>,
}

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

/// One input.
#[derive(Debug, Clone)]
pub struct InputPlan {
    pub name: String,
    pub kind: InputKind,
    pub splitter: SplitterPlan,
    pub decoder: DecoderPlan,
    /// The HMAC keys of `[name.signer.<signer>_<version>]`, shared by the input's connections.
    pub verifier: std::sync::Arc<crate::message::framing::Verifier>,
    pub log_decode_failures: bool,
    pub send_decode_failures: bool,
}

/// The transport of an input.
#[derive(Debug, Clone)]
pub enum InputKind {
    Tcp {
        address: SocketAddr,
        max_connections: usize,
        keep_alive: Option<Duration>,
    },
    Udp {
        address: SocketAddr,
        set_hostname: bool,
    },
}

/// A splitter, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitterPlan {
    Token {
        delimiter: u8,
        count: usize,
        deliver_incomplete_final: bool,
    },
    HekaFrame {
        skip_authentication: bool,
    },
    Null,
}

/// A decoder, resolved.
#[derive(Debug, Clone)]
pub enum DecoderPlan {
    /// The record becomes the Payload of a message the input fills in.
    None,
    Protobuf,
    /// StatsdInput's parser: each datagram's stats go to the StatAccumInput named
    /// `accumulator`, on its core.
    Statsd {
        accumulator: String,
        datagram_bytes_max: usize,
    },
    /// A Lua decoder: one Lua state per ingest core. It reads the message the record makes
    /// without a decoder (Payload = the record).
    #[cfg(feature = "lua")]
    Sandbox {
        name: String,
        config: Box<crate::sandbox::SandboxConfig>,
    },
}

/// An encoder, resolved.
#[derive(Debug, Clone)]
pub enum EncoderPlan {
    Protobuf,
    Payload {
        append_newlines: bool,
        prefix_ts: bool,
        ts_format: String,
        ts_from_message: bool,
    },
    /// A Lua encoder: one Lua state per core that writes the output.
    #[cfg(feature = "lua")]
    Sandbox {
        name: String,
        config: Box<crate::sandbox::SandboxConfig>,
    },
    /// CarbonOutput's graphite plaintext lines, from `heka.statmetric` messages.
    Carbon,
}

/// What a filter does when the ring to its core is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingFull {
    /// The ingest cores wait (and stop reading their sockets): nothing is lost.
    Block,
    /// The message is dropped and counted; ingest never waits for this filter.
    Drop,
}

/// One filter, hosted on one core.
#[derive(Debug, Clone)]
pub struct FilterPlan {
    pub name: String,
    pub matcher: Program,
    /// The core whose state it is.
    pub host_core: usize,
    pub ring_full: RingFull,
    pub kind: FilterKind,
    /// With `use_buffering` (or `delivery = "durable"`): each core's disk queue for this
    /// filter's records, instead of the lane ring.
    pub durable: Option<crate::queue::QueueOptions>,
}

/// The kinds of filter.
#[derive(Debug, Clone)]
pub enum FilterKind {
    #[cfg(feature = "lua")]
    Sandbox(Box<crate::sandbox::SandboxConfig>),
    /// CounterFilter: reports every `interval`.
    Counter { interval: Duration },
    /// StatFilter: metrics sent to the StatAccumInput named `accumulator`.
    Stat {
        metrics: Vec<crate::stats::stat_filter::MetricSettings>,
        accumulator: String,
    },
    /// StatAccumInput, hosted like a filter (its matcher never matches).
    StatAccum(crate::stats::AccumulatorSettings),
}

/// One output.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    pub name: String,
    /// The core that writes it, when it has a single writer.
    pub owner_core: usize,
    pub matcher: Program,
    pub encoder: EncoderPlan,
    pub use_framing: bool,
    pub kind: OutputKind,
    /// How batches reach the destination (`delivery`).
    pub delivery: DeliveryClass,
    /// With `use_buffering` (`delivery = "durable"`): each core's disk queue for this output.
    pub durable: Option<crate::queue::QueueOptions>,
}

/// An output's delivery class (`delivery`; see `docs/delivery.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClass {
    /// Bounded memory; a full destination makes the ingest cores wait (backpressure).
    Memory,
    /// Bounded memory; a batch that finds its destination full is dropped and counted, so an
    /// ingest core never waits on the destination.
    BestEffort,
    /// A disk queue per core (`use_buffering = true`), delivered at least once.
    Durable,
}

impl DeliveryClass {
    /// The config value naming it.
    pub fn name(self) -> &'static str {
        match self {
            DeliveryClass::Memory => "memory",
            DeliveryClass::BestEffort => "best_effort",
            DeliveryClass::Durable => "durable",
        }
    }
}

/// Where an output delivers.
#[derive(Debug, Clone)]
pub enum OutputKind {
    File(FilePlan),
    Tcp(TcpPlan),
    /// Datagrams of at most `datagram_bytes_max`, each holding whole lines.
    Udp {
        address: String,
        datagram_bytes_max: usize,
    },
    Log,
}

/// FileOutput, resolved.
#[derive(Debug, Clone)]
pub struct FilePlan {
    /// The path, with `%{core}` still in it when `per_core`.
    pub path: String,
    /// Each core writes its own file; otherwise the output core owns the one file.
    pub per_core: bool,
    pub flush_interval: Duration,
    pub flush_count: u64,
    /// `OR` rather than `AND`.
    pub flush_either: bool,
    pub perm: u32,
    pub folder_perm: u32,
}

/// TcpOutput, resolved.
#[derive(Debug, Clone)]
pub struct TcpPlan {
    pub address: String,
    pub reconnect_after: u64,
    pub buffer_bytes: usize,
    pub keep_alive: Option<Duration>,
    /// `ack = true`: how long to wait for the receiver's welcome and for each
    /// acknowledgement (`ack_timeout`).
    pub ack: Option<Duration>,
}

const GLOBAL_SECTIONS: [&str; 2] = ["hekad", "gyges"];

/// Builds the plan from a loaded document.
///
/// # Errors
/// The first problem found, with its file, section and key.
pub fn build(document: &Document, overrides: &Overrides) -> Result<Plan, ConfigError> {
    let sections = by_name(document);
    let globals: Vec<&Section> = GLOBAL_SECTIONS
        .iter()
        .filter_map(|name| sections.get(name).copied())
        .collect();
    if globals.len() > 1 {
        return Err(globals[1].error(None, "give either [hekad] or [gyges], not both"));
    }
    let (global_raw, global_section) = match globals.first() {
        Some(section) => (section.parse::<raw::Global>()?, Some(*section)),
        None => (raw::Global::default(), None),
    };
    let profile = load_profile(&global_raw, global_section, &document.origin, overrides)?;
    let global = global_plan(
        &global_raw,
        global_section,
        &document.origin,
        overrides,
        profile.as_ref(),
    )?;
    let mut plan = Plan {
        origin: document.origin.clone(),
        ignored_options: global_raw.ignored_present(),
        global,
        inputs: Vec::new(),
        outputs: Vec::new(),
        filters: Vec::new(),
    };
    for section in &document.sections {
        if GLOBAL_SECTIONS.contains(&section.name.as_str()) {
            continue;
        }
        let type_ = section.plugin_type()?;
        match type_ {
            "TcpInput" | "UdpInput" => {
                plan.inputs
                    .push(input_plan(section, &sections, &plan.global)?)
            }
            "FileOutput" | "TcpOutput" | "LogOutput" => {
                plan.outputs
                    .push(output_plan(section, &sections, &plan.global)?)
            }
            // Referenced by name from inputs and outputs; checked there, and parsed here so an
            // unused but broken section still fails.
            "TokenSplitter" | "HekaFramingSplitter" | "NullSplitter" => {
                splitter_plan(section)?;
            }
            "ProtobufDecoder" => {
                section.parse::<raw::ProtobufDecoder>()?;
            }
            "ProtobufEncoder" | "PayloadEncoder" => {
                encoder_plan(section)?;
            }
            "SandboxDecoder" | "SandboxEncoder" => {
                sandbox_config(section, &[])?;
            }
            "SandboxFilter" => plan.filters.push(filter_plan(section, &plan.global)?),
            "CounterFilter" | "StatFilter" | "StatAccumInput" => {
                plan.filters.push(stats_filter_plan(section, &plan.global)?)
            }
            "StatsdInput" => plan.inputs.push(statsd_input_plan(section)?),
            "CarbonOutput" => plan
                .outputs
                .push(carbon_output_plan(section, &plan.global)?),
            other => {
                let key = section.table.contains_key("type").then_some("type");
                return Err(section.error(key, format!("unknown plugin type `{other}`")));
            }
        }
    }
    if plan.inputs.is_empty() {
        return Err(ConfigError::file(
            &document.origin,
            "no inputs are configured",
        ));
    }
    check_accumulators(&plan, &sections)?;
    if let Some((file, _)) = &plan.global.tuning {
        let known = |name: &str| document.sections.iter().any(|section| section.name == name);
        if let Some(name) = plan.global.placement.keys().find(|name| !known(name)) {
            return Err(ConfigError {
                file: file.clone(),
                section: Some("placement".into()),
                key: Some(name.clone()),
                message: "no plugin section has this name in the config".into(),
            });
        }
    }
    Ok(plan)
}

/// Reads the tuning profile named by `--tuning` or `[gyges] tuning`, if any.
fn load_profile(
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

fn global_plan(
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
        max_message_loops: raw.max_message_loops.unwrap_or(4),
        max_process_inject: raw.max_process_inject.unwrap_or(1),
        max_timer_inject: raw.max_timer_inject.unwrap_or(10),
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
        ring_depth: bounded("ring_depth", ring_depth, 128, 8, 4096)?,
        ring_slots: bounded(
            "ring_slots",
            ring_slots,
            limits::RING_SLOTS_DEFAULT,
            2,
            limits::RING_SLOTS_MAX,
        )?,
        batch_bytes: bounded(
            "batch_size",
            batch_size,
            limits::BATCH_BYTES_DEFAULT,
            4096,
            limits::BATCH_BYTES_MAX,
        )?,
        read_buffer_bytes: bounded(
            "read_buffer_size",
            read_buffer_size,
            limits::READ_BUFFER_BYTES_DEFAULT,
            4096,
            limits::READ_BUFFER_BYTES_MAX,
        )?,
        socket_receive_buffer_bytes: match socket_receive_buffer {
            None => None,
            Some(bytes) => Some(bounded(
                "socket_receive_buffer",
                Some(bytes),
                0,
                4096,
                1 << 30,
            )?),
        },
        stats_interval: match raw.stats_interval.unwrap_or(10) {
            0 => None,
            seconds => Some(Duration::from_secs(seconds)),
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

fn resolve(section: &Section, key: &str, address: &str) -> Result<SocketAddr, ConfigError> {
    let mut addresses = address
        .to_socket_addrs()
        .map_err(|error| section.error(Some(key), format!("`{address}`: {error}")))?;
    addresses
        .next()
        .ok_or_else(|| section.error(Some(key), format!("`{address}` resolves to nothing")))
}

fn input_plan(
    section: &Section,
    sections: &std::collections::BTreeMap<&str, &Section>,
    global: &GlobalPlan,
) -> Result<InputPlan, ConfigError> {
    let _ = global;
    let (kind, splitter_name, decoder_name, signer, tls, log_failures, send_failures, net) =
        if section.plugin_type()? == "TcpInput" {
            let raw: raw::TcpInput = section.parse()?;
            let max_connections = raw
                .max_connections
                .unwrap_or(limits::CONNECTIONS_PER_CORE_DEFAULT as u64);
            if max_connections == 0 || max_connections > limits::CONNECTIONS_PER_CORE_MAX as u64 {
                return Err(section.error(
                    Some("max_connections"),
                    format!(
                        "{max_connections} is outside 1..={}",
                        limits::CONNECTIONS_PER_CORE_MAX
                    ),
                ));
            }
            let keep_alive = match (raw.keep_alive, raw.keep_alive_period) {
                (Some(true), period) => Some(Duration::from_secs(period.unwrap_or(7200))),
                _ => None,
            };
            let kind = InputKind::Tcp {
                address: resolve(section, "address", &raw.address)?,
                max_connections: max_connections as usize,
                keep_alive,
            };
            let splitter = raw.splitter.unwrap_or_else(|| "HekaFramingSplitter".into());
            (
                kind,
                splitter,
                raw.decoder,
                raw.signer,
                raw.use_tls,
                raw.log_decode_failures,
                raw.send_decode_failures,
                raw.net,
            )
        } else {
            let raw: raw::UdpInput = section.parse()?;
            let kind = InputKind::Udp {
                address: resolve(section, "address", &raw.address)?,
                set_hostname: raw.set_hostname.unwrap_or(true),
            };
            let splitter = raw.splitter.unwrap_or_else(|| "NullSplitter".into());
            (
                kind,
                splitter,
                raw.decoder,
                raw.signer,
                None,
                raw.log_decode_failures,
                raw.send_decode_failures,
                raw.net,
            )
        };
    if tls == Some(true) {
        return Err(section.error(Some("use_tls"), "TLS is not supported yet"));
    }
    if let Some(net) = net {
        let valid: &[&str] = match kind {
            InputKind::Tcp { .. } => &["tcp", "tcp4", "tcp6"],
            InputKind::Udp { .. } => &["udp", "udp4", "udp6"],
        };
        if !valid.contains(&net.as_str()) {
            return Err(section.error(Some("net"), format!("`{net}` is not one of {valid:?}")));
        }
    }
    let splitter = match sections.get(splitter_name.as_str()) {
        Some(splitter_section) => splitter_plan(splitter_section)?,
        None => default_splitter(&splitter_name).ok_or_else(|| {
            section.error(
                Some("splitter"),
                format!("no splitter named `{splitter_name}`"),
            )
        })?,
    };
    let decoder = match decoder_name.as_deref() {
        None => match splitter {
            SplitterPlan::HekaFrame { .. } => DecoderPlan::Protobuf,
            _ => DecoderPlan::None,
        },
        Some("") => DecoderPlan::None,
        Some(name) => {
            let type_ = match sections.get(name) {
                Some(decoder_section) => {
                    let type_ = decoder_section.plugin_type()?;
                    if type_ == "ProtobufDecoder" {
                        decoder_section.parse::<raw::ProtobufDecoder>()?;
                    }
                    type_.to_string()
                }
                None => name.to_string(),
            };
            match type_.as_str() {
                "ProtobufDecoder" => DecoderPlan::Protobuf,
                #[cfg(feature = "lua")]
                "SandboxDecoder" => match sections.get(name) {
                    Some(decoder_section) => DecoderPlan::Sandbox {
                        name: name.to_string(),
                        config: Box::new(sandbox_config(decoder_section, &[])?),
                    },
                    None => {
                        return Err(section
                            .error(Some("decoder"), "a SandboxDecoder needs its own section"))
                    }
                },
                _ => {
                    return Err(section.error(Some("decoder"), format!("no decoder named `{name}`")))
                }
            }
        }
    };
    let signers = signer.unwrap_or_default();
    let keys = signers
        .iter()
        .map(|(name, key)| (name.as_str(), key.hmac_key.as_bytes()));
    let verifier = crate::message::framing::Verifier::new(keys)
        .map_err(|error| section.error(Some("signer"), error.to_string()))?;
    Ok(InputPlan {
        name: section.name.clone(),
        kind,
        splitter,
        decoder,
        verifier: std::sync::Arc::new(verifier),
        log_decode_failures: log_failures.unwrap_or(true),
        send_decode_failures: send_failures.unwrap_or(false),
    })
}

fn default_splitter(type_: &str) -> Option<SplitterPlan> {
    Some(match type_ {
        "TokenSplitter" => SplitterPlan::Token {
            delimiter: b'\n',
            count: 1,
            deliver_incomplete_final: false,
        },
        "HekaFramingSplitter" => SplitterPlan::HekaFrame {
            skip_authentication: false,
        },
        "NullSplitter" => SplitterPlan::Null,
        _ => return None,
    })
}

fn splitter_plan(section: &Section) -> Result<SplitterPlan, ConfigError> {
    Ok(match section.plugin_type()? {
        "TokenSplitter" => {
            let raw: raw::TokenSplitter = section.parse()?;
            let delimiter = match raw.delimiter.as_deref() {
                None => b'\n',
                Some(text) if text.len() == 1 => text.as_bytes()[0],
                Some(text) => {
                    return Err(
                        section.error(Some("delimiter"), format!("`{text}` is not one byte"))
                    )
                }
            };
            let count = raw.count.unwrap_or(1);
            if count == 0 || count > 1024 {
                return Err(section.error(Some("count"), format!("{count} is outside 1..=1024")));
            }
            SplitterPlan::Token {
                delimiter,
                count: count as usize,
                deliver_incomplete_final: raw.deliver_incomplete_final.unwrap_or(false),
            }
        }
        "HekaFramingSplitter" => {
            let raw: raw::HekaFramingSplitter = section.parse()?;
            if raw.use_message_bytes == Some(false) {
                return Err(section.error(
                    Some("use_message_bytes"),
                    "only true is supported: a framed record is a protobuf message",
                ));
            }
            SplitterPlan::HekaFrame {
                skip_authentication: raw.skip_authentication.unwrap_or(false),
            }
        }
        "NullSplitter" => {
            section.parse::<raw::NullSplitter>()?;
            SplitterPlan::Null
        }
        other => return Err(section.error(Some("type"), format!("`{other}` is not a splitter"))),
    })
}

fn encoder_plan(section: &Section) -> Result<EncoderPlan, ConfigError> {
    Ok(match section.plugin_type()? {
        #[cfg(feature = "lua")]
        "SandboxEncoder" => EncoderPlan::Sandbox {
            name: section.name.clone(),
            config: Box::new(sandbox_config(section, &[])?),
        },
        "ProtobufEncoder" => {
            section.parse::<raw::ProtobufEncoder>()?;
            EncoderPlan::Protobuf
        }
        "PayloadEncoder" => {
            let raw: raw::PayloadEncoder = section.parse()?;
            EncoderPlan::Payload {
                append_newlines: raw.append_newlines.unwrap_or(true),
                prefix_ts: raw.prefix_ts.unwrap_or(false),
                ts_format: raw
                    .ts_format
                    .unwrap_or_else(|| "[%Y/%b/%d:%H:%M:%S %z]".into()),
                ts_from_message: raw.ts_from_message.unwrap_or(true),
            }
        }
        other => return Err(section.error(Some("type"), format!("`{other}` is not an encoder"))),
    })
}

fn resolve_encoder(
    section: &Section,
    sections: &std::collections::BTreeMap<&str, &Section>,
    name: Option<&str>,
    default: &str,
    global: &GlobalPlan,
) -> Result<EncoderPlan, ConfigError> {
    let plan = resolve_encoder_plan(section, sections, name, default)?;
    // Build one now, so a bad option (a ts_format gyges cannot render) fails at startup.
    crate::output::build_encoder(&plan, global).map_err(|error| {
        let encoder_section = sections
            .get(name.unwrap_or(default))
            .copied()
            .unwrap_or(section);
        let key = if encoder_section.name == section.name {
            "encoder"
        } else {
            "ts_format"
        };
        encoder_section.error(Some(key), error.to_string())
    })?;
    Ok(plan)
}

fn resolve_encoder_plan(
    section: &Section,
    sections: &std::collections::BTreeMap<&str, &Section>,
    name: Option<&str>,
    default: &str,
) -> Result<EncoderPlan, ConfigError> {
    let name = name.unwrap_or(default);
    match sections.get(name) {
        Some(encoder_section) => encoder_plan(encoder_section),
        None => match name {
            "ProtobufEncoder" => Ok(EncoderPlan::Protobuf),
            "PayloadEncoder" => Ok(EncoderPlan::Payload {
                append_newlines: true,
                prefix_ts: false,
                ts_format: "[%Y/%b/%d:%H:%M:%S %z]".into(),
                ts_from_message: true,
            }),
            _ => Err(section.error(Some("encoder"), format!("no encoder named `{name}`"))),
        },
    }
}

/// The core that writes a single-writer output: its placement, or the default output core.
fn owner_core(section: &Section, global: &GlobalPlan) -> usize {
    global
        .placement
        .get(&section.name)
        .copied()
        .unwrap_or(global.output_core)
}

fn compile_matcher(
    section: &Section,
    expression: Option<&str>,
    dialect: Dialect,
) -> Result<Program, ConfigError> {
    // Heka's default matches nothing.
    let expression = expression.unwrap_or("FALSE");
    matcher::compile(expression, dialect)
        .map_err(|error| section.error(Some("message_matcher"), error.to_string()))
}

/// The delivery class `delivery` names (default `memory`), checked against `use_buffering`
/// (`true` is `durable`) and against what the output can do (`durable_available`).
fn delivery_class(
    section: &Section,
    use_buffering: Option<bool>,
    delivery: Option<&str>,
    durable_available: bool,
) -> Result<DeliveryClass, ConfigError> {
    let named = match delivery {
        None => None,
        Some("memory") => Some(DeliveryClass::Memory),
        Some("best_effort") => Some(DeliveryClass::BestEffort),
        Some("durable") => Some(DeliveryClass::Durable),
        Some(other) => {
            return Err(section.error(
                Some("delivery"),
                format!("`{other}` is not \"memory\", \"best_effort\" or \"durable\""),
            ))
        }
    };
    if let (Some(buffer), Some(class)) = (use_buffering, named) {
        if buffer != (class == DeliveryClass::Durable) {
            return Err(section.error(
                Some("delivery"),
                "contradicts use_buffering; set only one of them",
            ));
        }
    }
    let class = match (named, use_buffering) {
        (Some(class), _) => class,
        (None, Some(true)) => DeliveryClass::Durable,
        (None, _) => DeliveryClass::Memory,
    };
    if class == DeliveryClass::Durable && !durable_available {
        let key = if named.is_some() {
            "delivery"
        } else {
            "use_buffering"
        };
        return Err(section.error(
            Some(key),
            "durable delivery is not available for this output type",
        ));
    }
    Ok(class)
}

/// The delivery class of a FileOutput or TcpOutput and, for `durable`, its disk queue options.
/// A `[name.buffering]` table on an output that does not buffer is an error: it would silently
/// do nothing.
fn durable_options(
    section: &Section,
    global: &GlobalPlan,
    use_buffering: Option<bool>,
    delivery: Option<&str>,
    buffering: Option<&crate::queue::config::Buffering>,
) -> Result<(DeliveryClass, Option<crate::queue::QueueOptions>), ConfigError> {
    let class = delivery_class(section, use_buffering, delivery, true)?;
    if class != DeliveryClass::Durable {
        if buffering.is_some() {
            return Err(section.error(
                Some("buffering"),
                "is set but delivery is not durable; set delivery = \"durable\" or remove it",
            ));
        }
        return Ok((class, None));
    }
    // One queue record holds one shipped batch: a full batch plus the message that overflowed
    // it, plus framing.
    let record_bytes = (global.batch_bytes + global.max_message_size + DURABLE_RECORD_SLACK_BYTES)
        .min(limits::MESSAGE_BYTES_CEILING);
    let default_buffering = crate::queue::config::Buffering::default();
    let buffering = buffering.unwrap_or(&default_buffering);
    crate::queue::config::resolve(&global.queue, buffering, record_bytes)
        .map(|options| (class, Some(options)))
        .map_err(|error| {
            let key = match error.key {
                "buffering" => "buffering".to_string(),
                key => format!("buffering.{key}"),
            };
            section.error(Some(&key), error.message)
        })
}

/// A TcpOutput's `ack` and `ack_timeout`: the timeout when acknowledgements are asked for.
/// They need a durable output (the sender commits on acknowledgement) and framing (control
/// frames are frames).
fn ack_plan(
    section: &Section,
    raw: &raw::TcpOutput,
    durable: bool,
    use_framing: bool,
) -> Result<Option<Duration>, ConfigError> {
    if raw.ack != Some(true) {
        if raw.ack_timeout.is_some() {
            return Err(section.error(
                Some("ack_timeout"),
                "is set but ack is not true; set ack = true or remove it",
            ));
        }
        return Ok(None);
    }
    if !durable {
        return Err(section.error(
            Some("ack"),
            "needs use_buffering = true: the sender keeps what is not acknowledged in its queue",
        ));
    }
    if !use_framing {
        return Err(section.error(
            Some("ack"),
            "needs use_framing = true: acknowledgements are asked for with Heka frames",
        ));
    }
    let millis = raw.ack_timeout.unwrap_or(limits::ACK_TIMEOUT_MS_DEFAULT);
    if !(limits::ACK_TIMEOUT_MS_MIN..=limits::ACK_TIMEOUT_MS_MAX).contains(&millis) {
        return Err(section.error(
            Some("ack_timeout"),
            format!(
                "{millis} is outside {}..={} milliseconds",
                limits::ACK_TIMEOUT_MS_MIN,
                limits::ACK_TIMEOUT_MS_MAX
            ),
        ));
    }
    Ok(Some(Duration::from_millis(millis)))
}

/// Framing and encoder overhead allowed on top of a batch and one message in a queue record.
const DURABLE_RECORD_SLACK_BYTES: usize = 4096;

/// `message_signer` is not supported yet: refused wherever a plugin has it.
fn refuse_signer(section: &Section, set: bool) -> Result<(), ConfigError> {
    unsupported(
        section,
        "message_signer",
        set,
        "message_signer is not supported yet",
    )
}

fn unsupported(section: &Section, key: &str, set: bool, message: &str) -> Result<(), ConfigError> {
    if set {
        return Err(section.error(Some(key), message.to_string()));
    }
    Ok(())
}

fn output_plan(
    section: &Section,
    sections: &std::collections::BTreeMap<&str, &Section>,
    global: &GlobalPlan,
) -> Result<OutputPlan, ConfigError> {
    match section.plugin_type()? {
        "FileOutput" => {
            let raw: raw::FileOutput = section.parse()?;
            let (delivery, durable) = durable_options(
                section,
                global,
                raw.use_buffering,
                raw.delivery.as_deref(),
                raw.buffering.as_ref(),
            )?;
            refuse_signer(section, raw.message_signer.is_some())?;
            unsupported(
                section,
                "rotation_interval",
                raw.rotation_interval.is_some_and(|hours| hours != 0),
                "file rotation is not supported yet; only 0 is accepted",
            )?;
            let flush_either = match raw.flush_operator.as_deref() {
                None | Some("AND") => false,
                Some("OR") => true,
                Some(other) => {
                    return Err(section.error(
                        Some("flush_operator"),
                        format!("`{other}` is not AND or OR"),
                    ))
                }
            };
            if raw.path.is_empty() {
                return Err(section.error(Some("path"), "is empty"));
            }
            let octal = |key: &str, text: Option<&str>, default: u32| match text {
                None => Ok(default),
                Some(text) => u32::from_str_radix(text, 8)
                    .ok()
                    .filter(|mode| *mode <= 0o7777)
                    .ok_or_else(|| {
                        section.error(Some(key), format!("`{text}` is not an octal mode"))
                    }),
            };
            let flush_interval_ms = raw.flush_interval.unwrap_or(1000);
            if flush_interval_ms > 3_600_000 {
                return Err(section.error(Some("flush_interval"), "more than an hour (in ms)"));
            }
            Ok(OutputPlan {
                name: section.name.clone(),
                owner_core: owner_core(section, global),
                matcher: compile_matcher(section, raw.message_matcher.as_deref(), global.dialect)?,
                encoder: resolve_encoder(
                    section,
                    sections,
                    raw.encoder.as_deref(),
                    "ProtobufEncoder",
                    global,
                )?,
                use_framing: raw.use_framing.unwrap_or(false),
                kind: OutputKind::File(FilePlan {
                    per_core: raw.path.contains("%{core}"),
                    path: raw.path,
                    flush_interval: Duration::from_millis(flush_interval_ms),
                    flush_count: raw.flush_count.unwrap_or(1),
                    flush_either,
                    perm: octal("perm", raw.perm.as_deref(), 0o644)?,
                    folder_perm: octal("folder_perm", raw.folder_perm.as_deref(), 0o700)?,
                }),
                delivery,
                durable,
            })
        }
        "TcpOutput" => {
            let raw: raw::TcpOutput = section.parse()?;
            let (delivery, durable) = durable_options(
                section,
                global,
                raw.use_buffering,
                raw.delivery.as_deref(),
                raw.buffering.as_ref(),
            )?;
            refuse_signer(section, raw.message_signer.is_some())?;
            unsupported(
                section,
                "use_tls",
                raw.use_tls == Some(true),
                "TLS is not supported yet",
            )?;
            unsupported(
                section,
                "local_address",
                raw.local_address.is_some(),
                "local_address is not supported yet",
            )?;
            resolve(section, "address", &raw.address)?;
            let buffer_bytes = raw
                .buffer_size
                .unwrap_or(limits::TCP_OUTPUT_BUFFER_BYTES_DEFAULT as u64);
            if buffer_bytes < global.batch_bytes as u64
                || buffer_bytes > limits::TCP_OUTPUT_BUFFER_BYTES_MAX as u64
            {
                return Err(section.error(
                    Some("buffer_size"),
                    format!(
                        "{buffer_bytes} is outside {}..={} (at least one batch)",
                        global.batch_bytes,
                        limits::TCP_OUTPUT_BUFFER_BYTES_MAX
                    ),
                ));
            }
            let keep_alive = match raw.keep_alive {
                Some(true) => Some(Duration::from_secs(raw.keep_alive_period.unwrap_or(7200))),
                _ => None,
            };
            let use_framing = raw.use_framing.unwrap_or(true);
            let ack = ack_plan(section, &raw, durable.is_some(), use_framing)?;
            Ok(OutputPlan {
                name: section.name.clone(),
                owner_core: owner_core(section, global),
                matcher: compile_matcher(section, raw.message_matcher.as_deref(), global.dialect)?,
                encoder: resolve_encoder(
                    section,
                    sections,
                    raw.encoder.as_deref(),
                    "ProtobufEncoder",
                    global,
                )?,
                use_framing,
                kind: OutputKind::Tcp(TcpPlan {
                    address: raw.address,
                    reconnect_after: raw.reconnect_after.unwrap_or(0),
                    buffer_bytes: buffer_bytes as usize,
                    keep_alive,
                    ack,
                }),
                delivery,
                durable,
            })
        }
        _ => {
            let raw: raw::LogOutput = section.parse()?;
            refuse_signer(section, raw.message_signer.is_some())?;
            // stdout is written synchronously: LogOutput cannot drop instead of waiting.
            if delivery_class(section, None, raw.delivery.as_deref(), false)?
                != DeliveryClass::Memory
            {
                return Err(section.error(
                    Some("delivery"),
                    "LogOutput writes stdout synchronously; only \"memory\" is available",
                ));
            }
            Ok(OutputPlan {
                name: section.name.clone(),
                owner_core: owner_core(section, global),
                matcher: compile_matcher(section, raw.message_matcher.as_deref(), global.dialect)?,
                encoder: resolve_encoder(
                    section,
                    sections,
                    raw.encoder.as_deref(),
                    "PayloadEncoder",
                    global,
                )?,
                use_framing: raw.use_framing.unwrap_or(false),
                kind: OutputKind::Log,
                delivery: DeliveryClass::Memory,
                durable: None,
            })
        }
    }
}

/// The keys every filter section may have besides its plugin's own.
const FILTER_COMMON_KEYS: &[&str] = &[
    "type",
    "message_matcher",
    "message_signer",
    "use_buffering",
    "ring_full_action",
    "delivery",
    "buffering",
];

/// Parses a sandbox plugin's section into its sandbox config, after taking out the keys in
/// `common` (read by the caller).
#[cfg(feature = "lua")]
fn sandbox_config(
    section: &Section,
    common: &[&str],
) -> Result<crate::sandbox::SandboxConfig, ConfigError> {
    let mut own = section.clone();
    own.table.retain(|key, _| {
        let key: &str = key;
        key != "type" && !common.contains(&key)
    });
    let config: crate::sandbox::SandboxConfig = own.parse()?;
    if config.script_type != "lua" {
        return Err(section.error(Some("script_type"), "only `lua` is supported"));
    }
    Ok(config)
}

#[cfg(not(feature = "lua"))]
fn sandbox_config(section: &Section, _common: &[&str]) -> Result<(), ConfigError> {
    Err(section.error(
        Some("type"),
        "this gyges was built without the `lua` feature",
    ))
}

fn filter_plan(section: &Section, global: &GlobalPlan) -> Result<FilterPlan, ConfigError> {
    let string = |key: &str| -> Result<Option<&str>, ConfigError> {
        match section.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(section.error(Some(key), "expected a string")),
        }
    };
    refuse_signer(section, section.table.contains_key("message_signer"))?;
    let (ring_full, durable) = filter_delivery(section, global)?;
    let matcher = compile_matcher(section, string("message_matcher")?, global.dialect)?;
    let host_core = global
        .placement
        .get(&section.name)
        .copied()
        .unwrap_or(global.filter_core);
    #[cfg(feature = "lua")]
    let kind = FilterKind::Sandbox(Box::new(sandbox_config(section, FILTER_COMMON_KEYS)?));
    #[cfg(not(feature = "lua"))]
    let kind = {
        sandbox_config(section, FILTER_COMMON_KEYS)?;
        unreachable!("sandbox_config fails without the lua feature")
    };
    Ok(FilterPlan {
        name: section.name.clone(),
        matcher,
        host_core,
        ring_full,
        kind,
        durable,
    })
}

/// A filter's delivery keys: `delivery` (`"memory"`, `"best_effort"` or `"durable"`),
/// `ring_full_action` (`"block"` or `"drop"`), `use_buffering` and the `[name.buffering]` table.
/// `delivery` is a shorthand: `"memory"` is `ring_full_action = "block"`, `"best_effort"` is
/// `"drop"`, `"durable"` is `use_buffering = true`; a key that says otherwise is an error naming
/// it, and so is a durable filter with `ring_full_action = "drop"` (a full disk queue does what
/// `buffering.full_action` says).
fn filter_delivery(
    section: &Section,
    global: &GlobalPlan,
) -> Result<(RingFull, Option<crate::queue::QueueOptions>), ConfigError> {
    let string = |key: &str| -> Result<Option<&str>, ConfigError> {
        match section.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(section.error(Some(key), "expected a string")),
        }
    };
    let use_buffering = match section.table.get("use_buffering") {
        None => None,
        Some(toml::Value::Boolean(value)) => Some(*value),
        Some(_) => return Err(section.error(Some("use_buffering"), "expected true or false")),
    };
    let ring_full = match string("ring_full_action")? {
        None => None,
        Some("block") => Some(RingFull::Block),
        Some("drop") => Some(RingFull::Drop),
        Some(other) => {
            return Err(section.error(
                Some("ring_full_action"),
                format!("`{other}` is not block or drop"),
            ))
        }
    };
    // (durable, the ring_full_action it implies)
    let by_delivery = match string("delivery")? {
        None => None,
        Some("memory") => Some((false, Some(RingFull::Block))),
        Some("best_effort") => Some((false, Some(RingFull::Drop))),
        Some("durable") => Some((true, None)),
        Some(other) => {
            return Err(section.error(
                Some("delivery"),
                format!("`{other}` is not \"memory\", \"best_effort\" or \"durable\""),
            ))
        }
    };
    if let Some((durable, implied)) = by_delivery {
        if use_buffering.is_some_and(|buffer| buffer != durable) {
            return Err(section.error(
                Some("delivery"),
                "contradicts use_buffering; set only one of them",
            ));
        }
        if implied.is_some() && ring_full.is_some() && implied != ring_full {
            return Err(section.error(
                Some("delivery"),
                "contradicts ring_full_action; set only one of them",
            ));
        }
    }
    let durable = use_buffering
        .or(by_delivery.map(|(durable, _)| durable))
        .unwrap_or(false);
    if durable && ring_full == Some(RingFull::Drop) {
        return Err(section.error(
            Some("ring_full_action"),
            "a durable filter has no ring; set buffering.full_action = \"drop\" instead",
        ));
    }
    let buffering = match section.table.get("buffering") {
        None => None,
        Some(value) => Some(
            value
                .clone()
                .try_into::<crate::queue::config::Buffering>()
                .map_err(|error| section.error(Some("buffering"), error.to_string()))?,
        ),
    };
    let (_, options) = durable_options(section, global, Some(durable), None, buffering.as_ref())?;
    let ring_full = ring_full
        .or(by_delivery.and_then(|(_, implied)| implied))
        .unwrap_or(RingFull::Block);
    Ok((ring_full, options))
}

/// What a Lua sandbox needs to know about the daemon.
#[cfg(feature = "lua")]
pub fn sandbox_host_info(global: &GlobalPlan) -> crate::sandbox::HostInfo {
    crate::sandbox::HostInfo {
        hostname: global.hostname.clone(),
        pid: std::process::id() as i32,
        base_dir: global.base_dir.clone(),
        share_dir: global.share_dir.clone(),
        max_process_inject: global.max_process_inject,
        max_timer_inject: global.max_timer_inject,
    }
}

fn stats_error(
    section: &Section,
) -> impl Fn(crate::stats::config::StatsConfigError) -> ConfigError + '_ {
    move |error| section.error(Some(&error.key), error.message)
}

/// CounterFilter, StatFilter and StatAccumInput, all hosted like filters.
fn stats_filter_plan(section: &Section, global: &GlobalPlan) -> Result<FilterPlan, ConfigError> {
    use crate::stats::config;
    let (matcher, kind) = match section.plugin_type()? {
        "CounterFilter" => {
            let settings = section
                .parse::<config::CounterFilter>()?
                .settings()
                .map_err(stats_error(section))?;
            refuse_signer(section, settings.message_signer.is_some())?;
            let interval = Duration::from_secs(settings.ticker_interval_seconds.max(1));
            (
                Some(settings.message_matcher),
                FilterKind::Counter { interval },
            )
        }
        "StatFilter" => {
            let settings = section
                .parse::<config::StatFilter>()?
                .settings()
                .map_err(stats_error(section))?;
            refuse_signer(section, settings.message_signer.is_some())?;
            let kind = FilterKind::Stat {
                metrics: settings.metrics,
                accumulator: settings.stat_accum_name,
            };
            (settings.message_matcher, kind)
        }
        _ => {
            let settings = section
                .parse::<config::StatAccumInput>()?
                .settings()
                .map_err(stats_error(section))?;
            (Some("FALSE".to_string()), FilterKind::StatAccum(settings))
        }
    };
    Ok(FilterPlan {
        name: section.name.clone(),
        matcher: compile_matcher(section, matcher.as_deref(), global.dialect)?,
        host_core: global
            .placement
            .get(&section.name)
            .copied()
            .unwrap_or(global.filter_core),
        ring_full: RingFull::Block,
        kind,
        durable: None,
    })
}

fn statsd_input_plan(section: &Section) -> Result<InputPlan, ConfigError> {
    let settings = section
        .parse::<crate::stats::config::StatsdInput>()?
        .settings()
        .map_err(stats_error(section))?;
    let verifier = crate::message::framing::Verifier::new(std::iter::empty())
        .map_err(|error| section.error(None, error.to_string()))?;
    Ok(InputPlan {
        name: section.name.clone(),
        kind: InputKind::Udp {
            address: resolve(section, "address", &settings.address)?,
            set_hostname: false,
        },
        splitter: SplitterPlan::Null,
        decoder: DecoderPlan::Statsd {
            accumulator: settings.stat_accum_name,
            datagram_bytes_max: settings.datagram_bytes_max,
        },
        verifier: std::sync::Arc::new(verifier),
        log_decode_failures: true,
        send_decode_failures: false,
    })
}

fn carbon_output_plan(section: &Section, global: &GlobalPlan) -> Result<OutputPlan, ConfigError> {
    use crate::stats::carbon::CarbonProtocol;
    let raw: crate::stats::config::CarbonOutput = section.parse()?;
    unsupported(
        section,
        "use_buffering",
        raw.use_buffering == Some(true),
        "durable buffering is not available yet; remove it or set it to false",
    )?;
    let delivery = delivery_class(section, raw.use_buffering, raw.delivery.as_deref(), false)?;
    let settings = raw.settings().map_err(stats_error(section))?;
    refuse_signer(section, settings.message_signer.is_some())?;
    let carbon = settings.carbon;
    resolve(section, "address", &carbon.address)?;
    let kind = match carbon.protocol {
        CarbonProtocol::Tcp => OutputKind::Tcp(TcpPlan {
            address: carbon.address,
            reconnect_after: 0,
            buffer_bytes: limits::TCP_OUTPUT_BUFFER_BYTES_DEFAULT,
            keep_alive: carbon.tcp_keep_alive.then_some(Duration::from_secs(7200)),
            ack: None,
        }),
        CarbonProtocol::Udp => OutputKind::Udp {
            address: carbon.address,
            datagram_bytes_max: carbon.datagram_bytes_max,
        },
    };
    // Heka's default: the StatAccumInput's rollups.
    let matcher = settings
        .message_matcher
        .unwrap_or_else(|| "Type == 'heka.statmetric'".into());
    Ok(OutputPlan {
        name: section.name.clone(),
        owner_core: global.output_core,
        matcher: compile_matcher(section, Some(&matcher), global.dialect)?,
        encoder: EncoderPlan::Carbon,
        use_framing: false,
        kind,
        delivery,
        durable: None,
    })
}

/// Every StatsdInput and StatFilter names a StatAccumInput that exists.
fn check_accumulators(
    plan: &Plan,
    sections: &std::collections::BTreeMap<&str, &Section>,
) -> Result<(), ConfigError> {
    let is_accumulator = |name: &str| {
        plan.filters
            .iter()
            .any(|filter| filter.name == name && matches!(filter.kind, FilterKind::StatAccum(_)))
    };
    let named = plan
        .inputs
        .iter()
        .filter_map(|input| match &input.decoder {
            DecoderPlan::Statsd { accumulator, .. } => {
                Some((input.name.as_str(), accumulator.as_str()))
            }
            _ => None,
        })
        .chain(plan.filters.iter().filter_map(|filter| match &filter.kind {
            FilterKind::Stat { accumulator, .. } => {
                Some((filter.name.as_str(), accumulator.as_str()))
            }
            _ => None,
        }));
    for (name, accumulator) in named {
        if !is_accumulator(accumulator) {
            let message = format!("no StatAccumInput section named `{accumulator}`");
            return Err(match sections.get(name) {
                Some(section) => section.error(Some("stat_accum_name"), message),
                None => ConfigError::file(&plan.origin, message),
            });
        }
    }
    Ok(())
}
