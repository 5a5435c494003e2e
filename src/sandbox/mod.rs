//! The Lua sandbox: one Lua 5.4 state running one Heka-compatible script under hard limits.
//!
//! What it owns: loading a script into a restricted environment ([`env`]), the Heka API the
//! script calls ([`api`], [`protobuf`], [`output`]), the built-in modules
//! ([`circular_buffer`], [`cjson`], lpeg from `gyges-sys`), preservation of global state
//! across restarts ([`preserve`]), and the per-sandbox counters ([`SandboxStats`]).
//! The three plugin types that drive a sandbox live with their stage:
//! `filter::sandbox`, `decoder::sandbox`, `encoder::sandbox`.
//!
//! The sandbox is a pure, synchronous library: the runtime hands it one record at a time and
//! gets back a status plus the messages the script injected, as protobuf records appended to a
//! caller-owned buffer (see [`injected_records`]). The Lua state is `!Send`: the runtime builds
//! the sandbox on the core that runs it, from a `Send + Clone` [`SandboxConfig`].
//!
//! Limits, enforced per call (`process_message`, `timer_event`) and while loading:
//! - memory: the Lua allocator refuses to grow past `memory_limit` (plus native circular
//!   buffer storage, charged against the same budget);
//! - instructions: a count hook fires every [`INSTRUCTION_HOOK_INTERVAL`] VM instructions and
//!   stops the call once `instruction_limit` is passed (so the limit is exact to within one
//!   interval);
//! - output: the `add_to_payload` buffer and every injected message are capped at
//!   `output_limit` bytes;
//! - injections: `max_process_inject` per `process_message` and `max_timer_inject` per
//!   `timer_event` for filters, [`DECODER_INJECT_PER_CALL_MAX`] for decoders.
//!
//! Invariant: any overrun, any uncaught Lua error and any fatal return code terminates this
//! sandbox and nothing else. Limit overruns cannot be caught by the script's own `pcall`.
//! A terminated sandbox refuses every further call with the same [`Terminated`] reason; its
//! owner emits [`terminated_message`] and drops it.

pub mod api;
pub mod bloom_filter;
pub mod circular_buffer;
pub mod cjson;
pub mod cuckoo_filter;
pub mod env;
pub mod hyperloglog;
pub mod native;
pub mod output;
pub mod pattern;
pub mod plan;
pub mod preserve;
pub mod protobuf;
pub mod rewrite;
pub mod struct_pack;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use mlua::{Function, Lua, Value};

use crate::message::{encode_line, wire, MessageView, UuidSource};
use api::Host;

/// Heka's default memory limit per sandbox.
pub const MEMORY_LIMIT_DEFAULT: usize = 8 * 1024 * 1024;
/// The largest memory limit a configuration may ask for.
pub const MEMORY_LIMIT_MAX: usize = 1024 * 1024 * 1024;
/// Heka's default instruction limit per call.
pub const INSTRUCTION_LIMIT_DEFAULT: u64 = 1_000_000;
/// The largest instruction limit a configuration may ask for.
pub const INSTRUCTION_LIMIT_MAX: u64 = 1_000_000_000;
/// The default output limit: Heka's 63 KiB, so that an injected message and its headers fit
/// in the 64 KiB `max_message_size`.
pub const OUTPUT_LIMIT_DEFAULT: usize = 63 * 1024;
/// The largest output limit a configuration may ask for.
pub const OUTPUT_LIMIT_MAX: usize = 64 * 1024 * 1024;
/// VM instructions between two runs of the instruction-count hook. The hook costs about a
/// hundred nanoseconds, so this keeps its overhead under 0.1 ns per instruction.
pub const INSTRUCTION_HOOK_INTERVAL: u32 = 1000;
/// Heka's `max_process_inject` default.
pub const MAX_PROCESS_INJECT_DEFAULT: u32 = 1;
/// Heka's `max_timer_inject` default.
pub const MAX_TIMER_INJECT_DEFAULT: u32 = 10;
/// Messages a decoder may inject for one record (Heka set no bound).
pub const DECODER_INJECT_PER_CALL_MAX: u32 = 1024;
/// Bytes of a termination reason or error message kept (lua_sandbox keeps 255).
pub const ERROR_MESSAGE_BYTES_MAX: usize = 255;
/// Calls between two timed samples of a call's duration (Heka samples 1 in 1000 at random;
/// a fixed stride is cheaper and as representative for averages).
pub const DURATION_SAMPLE_INTERVAL: u64 = 64;
/// The Logger of messages the daemon itself emits, as Heka's `hekad` did.
pub const DAEMON_LOGGER: &str = "hekad";

/// Which Heka plugin type the script implements; it decides which API functions exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SandboxKind {
    /// A Heka SandboxFilter: `process_message` per matched message, `timer_event` per tick;
    /// both may inject messages.
    Filter,
    /// A Heka SandboxDecoder: `process_message` turns one record into messages it injects.
    Decoder,
    /// A Heka SandboxEncoder: `process_message` turns one message into output bytes.
    Encoder,
}

impl SandboxKind {
    /// The lower-case name used in messages and logs.
    pub fn name(self) -> &'static str {
        match self {
            SandboxKind::Filter => "filter",
            SandboxKind::Decoder => "decoder",
            SandboxKind::Encoder => "encoder",
        }
    }
}

/// A value of the `[name.config]` table, read by the script with `read_config`.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigValue {
    /// A TOML string.
    String(String),
    /// A TOML boolean.
    Bool(bool),
    /// A TOML integer.
    Integer(i64),
    /// A TOML float.
    Float(f64),
    /// A TOML array: a Lua sequence (1-based) for the script.
    Array(Vec<ConfigValue>),
    /// A TOML table: a Lua table keyed by its names.
    Table(BTreeMap<String, ConfigValue>),
}

impl<'de> serde::Deserialize<'de> for ConfigValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ConfigValue;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string, boolean, integer, float, array or table")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut items: A,
            ) -> Result<ConfigValue, A::Error> {
                let mut values = Vec::new();
                while let Some(value) = items.next_element()? {
                    values.push(value);
                }
                Ok(ConfigValue::Array(values))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut entries: A,
            ) -> Result<ConfigValue, A::Error> {
                let mut table = BTreeMap::new();
                while let Some(key) = entries.next_key::<String>()? {
                    // A TOML date or time arrives as a one-key map under a private name.
                    if key.starts_with("$__toml_private") {
                        return Err(serde::de::Error::invalid_type(
                            serde::de::Unexpected::Other("a date or time"),
                            &self,
                        ));
                    }
                    table.insert(key, entries.next_value()?);
                }
                Ok(ConfigValue::Table(table))
            }
            fn visit_bool<E>(self, value: bool) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Bool(value))
            }
            fn visit_i64<E>(self, value: i64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Integer(value))
            }
            fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<ConfigValue, E> {
                i64::try_from(value)
                    .map(ConfigValue::Integer)
                    .map_err(|_| E::custom("integer does not fit in 64 signed bits"))
            }
            fn visit_f64<E>(self, value: f64) -> Result<ConfigValue, E> {
                Ok(ConfigValue::Float(value))
            }
            fn visit_str<E>(self, value: &str) -> Result<ConfigValue, E> {
                Ok(ConfigValue::String(value.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The options every sandboxed plugin takes (reference §4.3), plus the filter options.
/// Names are Heka's.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// The Lua script. A relative path is taken from the share directory.
    pub filename: PathBuf,
    /// Only `lua` exists.
    #[serde(default = "script_type_default")]
    pub script_type: String,
    /// Save the script's global data at clean shutdown and restore it at start.
    #[serde(default)]
    pub preserve_data: bool,
    /// Bytes the Lua state may use (default 8 MiB).
    #[serde(default = "memory_limit_default")]
    pub memory_limit: usize,
    /// VM instructions per `process_message` or `timer_event` call (default 1 M).
    #[serde(default = "instruction_limit_default")]
    pub instruction_limit: u64,
    /// Bytes of payload buffer and of any injected message (default 63 KiB).
    #[serde(default = "output_limit_default")]
    pub output_limit: usize,
    /// Where `require` finds plain Lua modules (default `<share_dir>/lua_modules`).
    #[serde(default)]
    pub module_directory: Option<PathBuf>,
    /// Values the script reads with `read_config`.
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    /// Filters: seconds between `timer_event` calls; 0 means none.
    #[serde(default)]
    pub ticker_interval: u64,
    /// Filters: call `timer_event` once more at shutdown.
    #[serde(default)]
    pub timer_event_on_shutdown: bool,
    /// Filters: whether the daemon may keep running once this plugin has stopped
    /// (Heka's default for SandboxFilter is true).
    #[serde(default)]
    pub can_exit: Option<bool>,
    /// Heka's sandbox profiler switch: accepted, and a startup line says gyges has none.
    #[serde(default)]
    pub profile: Option<bool>,
}

fn script_type_default() -> String {
    "lua".to_string()
}
fn memory_limit_default() -> usize {
    MEMORY_LIMIT_DEFAULT
}
fn instruction_limit_default() -> u64 {
    INSTRUCTION_LIMIT_DEFAULT
}
fn output_limit_default() -> usize {
    OUTPUT_LIMIT_DEFAULT
}

impl SandboxConfig {
    /// A configuration with Heka's defaults for `filename`.
    pub fn new(filename: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            filename: filename.into(),
            script_type: script_type_default(),
            preserve_data: false,
            memory_limit: MEMORY_LIMIT_DEFAULT,
            instruction_limit: INSTRUCTION_LIMIT_DEFAULT,
            output_limit: OUTPUT_LIMIT_DEFAULT,
            module_directory: None,
            config: BTreeMap::new(),
            ticker_interval: 0,
            timer_event_on_shutdown: false,
            can_exit: None,
            profile: None,
        }
    }

    /// Checks the limits and the script type.
    ///
    /// # Errors
    /// [`SandboxError::Config`] naming the option and the accepted range.
    pub fn validate(&self) -> Result<(), SandboxError> {
        if self.script_type != "lua" {
            return Err(SandboxError::Config(format!(
                "script_type `{}` is not supported (only `lua`)",
                self.script_type
            )));
        }
        let checks = [
            (
                "memory_limit",
                self.memory_limit as u64,
                MEMORY_LIMIT_MAX as u64,
            ),
            (
                "instruction_limit",
                self.instruction_limit,
                INSTRUCTION_LIMIT_MAX,
            ),
            (
                "output_limit",
                self.output_limit as u64,
                OUTPUT_LIMIT_MAX as u64,
            ),
        ];
        for (name, value, max) in checks {
            if value == 0 || value > max {
                return Err(SandboxError::Config(format!(
                    "{name} = {value} is out of range (1..={max}); gyges has no unlimited setting"
                )));
            }
        }
        let ticker_max = crate::limits::SANDBOX_TICKER_INTERVAL_SECONDS_MAX;
        if self.ticker_interval > ticker_max {
            return Err(SandboxError::Config(format!(
                "ticker_interval = {} is above {ticker_max} seconds (0 is no timer)",
                self.ticker_interval
            )));
        }
        if self.filename.as_os_str().is_empty() {
            return Err(SandboxError::Config("filename is empty".into()));
        }
        Ok(())
    }
}

/// What the daemon tells each sandbox about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct HostInfo {
    /// Hostname stamped on filter injections.
    pub hostname: String,
    /// The daemon's process id.
    pub pid: i32,
    /// Writable state (`<base_dir>/sandbox_preservation/<name>.data`).
    pub base_dir: PathBuf,
    /// Read-only assets: relative script names and the default module directory.
    pub share_dir: PathBuf,
    /// Messages a filter may inject per `process_message` (Heka default 1).
    pub max_process_inject: u32,
    /// Messages a filter may inject per `timer_event` (Heka default 10).
    pub max_timer_inject: u32,
}

impl Default for HostInfo {
    fn default() -> Self {
        HostInfo {
            hostname: "localhost".to_string(),
            pid: std::process::id() as i32,
            base_dir: PathBuf::from("/var/cache/hekad"),
            share_dir: PathBuf::from("/usr/share/heka"),
            max_process_inject: MAX_PROCESS_INJECT_DEFAULT,
            max_timer_inject: MAX_TIMER_INJECT_DEFAULT,
        }
    }
}

/// Why a sandbox could not be created or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// An option of the sandbox's configuration is out of range or missing; the text names it.
    #[error("sandbox configuration: {0}")]
    Config(String),
    /// The script file could not be read.
    #[error("cannot read script {path}: {source}")]
    Script {
        /// The script's path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The script raised an error or did not compile while it was loaded.
    #[error("script {path} failed to load: {message}")]
    Load {
        /// The script's path.
        path: PathBuf,
        /// Lua's error text.
        message: String,
    },
    /// The script loaded but does not define a function its plugin type needs.
    #[error("script {path} does not define {function}()")]
    MissingFunction {
        /// The script's path.
        path: PathBuf,
        /// The missing function's name, such as `process_message`.
        function: &'static str,
    },
    /// The preserved global state could not be written, read or restored.
    #[error("preserved state {path}: {message}")]
    Preservation {
        /// The preservation file's path.
        path: PathBuf,
        /// What went wrong, for the operator.
        message: String,
    },
    /// Any other error from the Lua runtime, as Lua's error text.
    #[error("Lua: {0}")]
    Lua(String),
}

impl SandboxError {
    /// A low-cardinality label for counters.
    pub fn code(&self) -> &'static str {
        match self {
            SandboxError::Config(_) => "config",
            SandboxError::Script { .. } => "script",
            SandboxError::Load { .. } => "load",
            SandboxError::MissingFunction { .. } => "missing_function",
            SandboxError::Preservation { .. } => "preservation",
            SandboxError::Lua(_) => "lua",
        }
    }
}

impl From<mlua::Error> for SandboxError {
    fn from(error: mlua::Error) -> Self {
        SandboxError::Lua(lua_error_text(&error))
    }
}

/// The sandbox stopped for good; `reason` is what Heka put in the termination payload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("sandbox terminated: {reason}")]
pub struct Terminated {
    /// What Heka put in the termination payload: the error or the limit that stopped the sandbox.
    pub reason: String,
}

/// The status of a call that did not terminate the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallStatus {
    /// Returned 0.
    Ok,
    /// Returned a negative code other than -2: a non-fatal failure, counted. The script's
    /// error string, if any, is in [`Sandbox::last_error`].
    Failed,
    /// Returned -2: nothing to output (encoders).
    Skipped,
}

/// Heka's per-sandbox counters (§7 report names in the field docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxStats {
    /// ProcessMessageCount.
    pub process_message_count: u64,
    /// ProcessMessageFailures.
    pub process_message_failures: u64,
    /// InjectMessageCount.
    pub inject_message_count: u64,
    /// Memory: bytes in use after the last call.
    pub memory_bytes: usize,
    /// MaxMemory.
    pub memory_bytes_max: usize,
    /// MaxInstructions (to within [`INSTRUCTION_HOOK_INTERVAL`]).
    pub instructions_max: u64,
    /// MaxOutput: the largest payload buffer or injected message, in bytes.
    pub output_bytes_max: usize,
    /// Sampled process_message calls and their total duration.
    pub process_message_samples: u64,
    /// Total duration of the sampled `process_message` calls, in nanoseconds.
    pub process_message_duration_ns_total: u64,
    /// Sampled timer_event calls and their total duration.
    pub timer_event_samples: u64,
    /// Total duration of the sampled `timer_event` calls, in nanoseconds.
    pub timer_event_duration_ns_total: u64,
}

impl SandboxStats {
    /// ProcessMessageAvgDuration in ns (0 before the first sample).
    pub fn process_message_avg_duration_ns(&self) -> u64 {
        self.process_message_duration_ns_total
            .checked_div(self.process_message_samples)
            .unwrap_or(0)
    }

    /// TimerEventAvgDuration in ns (0 before the first sample).
    pub fn timer_event_avg_duration_ns(&self) -> u64 {
        self.timer_event_duration_ns_total
            .checked_div(self.timer_event_samples)
            .unwrap_or(0)
    }

    /// The counters under their Heka report names, with Heka's representations.
    pub fn heka_fields(&self) -> [(&'static str, i64, &'static str); 9] {
        let int = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        [
            (
                "ProcessMessageCount",
                int(self.process_message_count),
                "count",
            ),
            (
                "ProcessMessageFailures",
                int(self.process_message_failures),
                "count",
            ),
            (
                "InjectMessageCount",
                int(self.inject_message_count),
                "count",
            ),
            ("Memory", int(self.memory_bytes as u64), "B"),
            ("MaxMemory", int(self.memory_bytes_max as u64), "B"),
            ("MaxInstructions", int(self.instructions_max), "count"),
            ("MaxOutput", int(self.output_bytes_max as u64), "B"),
            (
                "ProcessMessageAvgDuration",
                int(self.process_message_avg_duration_ns()),
                "ns",
            ),
            (
                "TimerEventAvgDuration",
                int(self.timer_event_avg_duration_ns()),
                "ns",
            ),
        ]
    }
}

pub use crate::filter::{injected_records, InjectedRecords};

/// Builds Heka's `heka.sandbox-terminated` message as protobuf bytes: Logger `hekad`,
/// Payload the reason, `Fields[plugin]` the plugin's name, plus the plugin's counters under
/// their report names (Heka added those only when it terminated a slow filter; gyges always
/// does, since they cost nothing and explain the termination).
pub fn terminated_message(name: &str, reason: &str, stats: &SandboxStats) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + reason.len());
    let uuid = UuidSource::new().next_uuid();
    wire::put_bytes(&mut out, 1, &uuid);
    wire::put_int(&mut out, 2, crate::message::now_ns());
    wire::put_bytes(&mut out, 3, b"heka.sandbox-terminated");
    wire::put_bytes(&mut out, 4, DAEMON_LOGGER.as_bytes());
    wire::put_bytes(&mut out, 6, reason.as_bytes());
    let mut field = Vec::with_capacity(64);
    protobuf::put_string_field(&mut field, &mut out, b"plugin", name.as_bytes(), b"");
    for (key, value, representation) in stats.heka_fields() {
        protobuf::put_integer_field(&mut field, &mut out, key.as_bytes(), value, representation);
    }
    out
}

/// The whole-state lifecycle of a sandbox.
#[derive(Debug)]
enum State {
    Running,
    Terminated(String),
}

/// One Lua state running one script.
pub struct Sandbox {
    lua: Lua,
    host: Rc<Host>,
    kind: SandboxKind,
    name: String,
    state: State,
    stats: SandboxStats,
    /// Where the state is saved, when `preserve_data` is on.
    preservation_path: Option<PathBuf>,
    /// The cached key of the entry points, so a call does not create a Lua string.
    process_message_key: mlua::LuaString,
    timer_event_key: mlua::LuaString,
    /// The script's last error string (reused, so failures do not allocate).
    last_error: String,
    calls: u64,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Sandbox")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A decoder's `[name.config] tz`, loaded: Heka's decoders took a Timestamp their script set
/// from a zoneless reading as wall-clock time in that zone. Other kinds ignore it.
///
/// # Errors
/// [`SandboxError::Config`] when the zone is not in the system zoneinfo.
pub fn decoder_zone(
    kind: SandboxKind,
    config: &SandboxConfig,
) -> Result<Option<crate::zone::Zone>, SandboxError> {
    match (kind, config.config.get("tz")) {
        (SandboxKind::Decoder, Some(ConfigValue::String(name))) => crate::zone::Zone::load(name)
            .map(Some)
            .map_err(SandboxError::Config),
        _ => Ok(None),
    }
}

impl Sandbox {
    /// Creates the Lua state, installs the restricted environment and the API for `kind`,
    /// runs the script's top level under the limits, and restores preserved data.
    ///
    /// # Errors
    /// A bad configuration, an unreadable script, a script that fails to load or lacks
    /// `process_message`, or preserved data that fails to restore.
    pub fn new(
        kind: SandboxKind,
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Result<Sandbox, SandboxError> {
        Sandbox::new_on_core(kind, name, config, host_info, None)
    }

    /// Loads the script as [`Sandbox::new`] does (its top level run under the limits, its
    /// `require`s resolved, its functions checked) without restoring preserved data, and drops
    /// the state: the check `gyges validate` and startup make before any core starts.
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn check(
        kind: SandboxKind,
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
    ) -> Result<(), SandboxError> {
        let config = SandboxConfig {
            preserve_data: false,
            ..config.clone()
        };
        Sandbox::new(kind, name, &config, host_info).map(drop)
    }

    /// As [`Sandbox::new`], for the state one core runs: with `core_row`, preserved data is
    /// kept in that core's own file ([`preserve::data_path_on_core`]).
    ///
    /// # Errors
    /// As [`Sandbox::new`].
    pub fn new_on_core(
        kind: SandboxKind,
        name: &str,
        config: &SandboxConfig,
        host_info: &HostInfo,
        core_row: Option<usize>,
    ) -> Result<Sandbox, SandboxError> {
        config.validate()?;
        let script_path = resolve(&host_info.share_dir, &config.filename);
        let source = std::fs::read(&script_path).map_err(|source| SandboxError::Script {
            path: script_path.clone(),
            source,
        })?;
        let module_directory = config
            .module_directory
            .as_ref()
            .map(|dir| resolve(&host_info.share_dir, dir))
            .unwrap_or_else(|| host_info.share_dir.join("lua_modules"));
        let mut host = Host::new(kind, name, config, host_info);
        host.zone = decoder_zone(kind, config)?;
        let host = Rc::new(host);
        let lua = env::new_state(&host, &module_directory)?;
        api::install(&lua, &host)?;
        let load_error = |error: mlua::Error| SandboxError::Load {
            path: script_path.clone(),
            message: lua_error_text(&error),
        };
        host.begin_call(config.instruction_limit);
        let chunk_name = format!("@{}", script_path.display());
        let result = lua
            .load(&source[..])
            .set_name(chunk_name)
            .set_mode(mlua::chunk::ChunkMode::Text)
            .exec();
        let abort = host.end_call();
        if let Some(reason) = abort {
            return Err(SandboxError::Load {
                path: script_path,
                message: reason,
            });
        }
        result.map_err(load_error)?;
        let globals = lua.globals();
        if !matches!(
            globals.raw_get::<Value>("process_message")?,
            Value::Function(_)
        ) {
            return Err(SandboxError::MissingFunction {
                path: script_path,
                function: "process_message",
            });
        }
        let preservation_path = config
            .preserve_data
            .then(|| preserve::data_path_on_core(&host_info.base_dir, name, core_row));
        if let Some(path) = &preservation_path {
            preserve::restore(&lua, &host, path)?;
        }
        let process_message_key = lua.create_string("process_message")?;
        let timer_event_key = lua.create_string("timer_event")?;
        let mut sandbox = Sandbox {
            lua,
            host,
            kind,
            name: name.to_string(),
            state: State::Running,
            stats: SandboxStats::default(),
            preservation_path,
            process_message_key,
            timer_event_key,
            last_error: String::new(),
            calls: 0,
        };
        sandbox.record_usage();
        Ok(sandbox)
    }

    /// The plugin type.
    pub fn kind(&self) -> SandboxKind {
        self.kind
    }

    /// The plugin's name (the Logger of what it injects).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The counters so far.
    pub fn stats(&self) -> &SandboxStats {
        &self.stats
    }

    /// The error string of the last failed call (empty if none).
    pub fn last_error(&self) -> &str {
        &self.last_error
    }

    /// The termination reason, once terminated.
    pub fn termination_reason(&self) -> Option<&str> {
        match &self.state {
            State::Running => None,
            State::Terminated(reason) => Some(reason),
        }
    }

    /// Heka's `heka.sandbox-terminated` message for this sandbox, once it has terminated.
    pub fn termination_message(&self) -> Option<Vec<u8>> {
        let reason = self.termination_reason()?;
        Some(terminated_message(self.name(), reason, self.stats()))
    }

    /// Whether the script defines a global function `name`.
    pub fn has_function(&self, name: &str) -> bool {
        matches!(
            self.lua.globals().raw_get::<Value>(name),
            Ok(Value::Function(_))
        )
    }

    pub(crate) fn host(&self) -> &Host {
        &self.host
    }

    /// Runs `process_message` on `record`. Injected messages are appended to `sink` (see
    /// [`injected_records`]); a terminated call keeps what was injected before the end.
    ///
    /// # Errors
    /// [`Terminated`] if this call terminated the sandbox or it was already terminated.
    pub fn process_message(
        &mut self,
        record: &MessageView<'_>,
        sink: &mut Vec<u8>,
    ) -> Result<CallStatus, Terminated> {
        self.check_running()?;
        self.stats.process_message_count += 1;
        self.host.load_record(record);
        let inject_max = match self.kind {
            SandboxKind::Filter => self.host.max_process_inject,
            SandboxKind::Decoder => DECODER_INJECT_PER_CALL_MAX,
            SandboxKind::Encoder => u32::MAX,
        };
        self.host.set_inject_budget(inject_max);
        let sampled = self.calls % DURATION_SAMPLE_INTERVAL == 0;
        self.calls = self.calls.wrapping_add(1);
        let started = sampled.then(Instant::now);
        let result = self.call_entry(true, None, sink);
        if let Some(started) = started {
            self.stats.process_message_samples += 1;
            self.stats.process_message_duration_ns_total += started.elapsed().as_nanos() as u64;
        }
        let status = result?;
        if status == CallStatus::Failed {
            self.stats.process_message_failures += 1;
        }
        Ok(status)
    }

    /// Runs `timer_event(ns)`; its return value is ignored, as in Heka. A full garbage
    /// collection follows, so the Memory counter is accurate at each tick.
    ///
    /// # Errors
    /// [`Terminated`] if this call terminated the sandbox or it was already terminated.
    pub fn timer_event(&mut self, ns: i64, sink: &mut Vec<u8>) -> Result<(), Terminated> {
        self.check_running()?;
        self.host.set_inject_budget(self.host.max_timer_inject);
        let started = Instant::now();
        let result = self.call_entry(false, Some(ns), sink);
        self.stats.timer_event_samples += 1;
        self.stats.timer_event_duration_ns_total += started.elapsed().as_nanos() as u64;
        result?;
        if let Err(error) = self.lua.gc_collect() {
            return Err(self.terminate(format!("timer_event() {}", lua_error_text(&error))));
        }
        self.record_usage();
        Ok(())
    }

    /// Saves the global state if `preserve_data` is on and the sandbox is still running
    /// (a terminated sandbox's state is not trusted, as in Heka). Call once, at clean
    /// shutdown.
    ///
    /// # Errors
    /// [`SandboxError::Preservation`] if the state cannot be serialised or written.
    pub fn preserve(&mut self) -> Result<(), SandboxError> {
        let Some(path) = &self.preservation_path else {
            return Ok(());
        };
        if !matches!(self.state, State::Running) {
            return Ok(());
        }
        preserve::save(&self.lua, &self.host, path)
    }

    fn check_running(&self) -> Result<(), Terminated> {
        match &self.state {
            State::Running => Ok(()),
            State::Terminated(reason) => Err(Terminated {
                reason: reason.clone(),
            }),
        }
    }

    /// Terminates the sandbox, returning the reason. The daemon's log says so once, with the
    /// reason, besides the `heka.sandbox-terminated` message the caller routes.
    pub(crate) fn terminate(&mut self, mut reason: String) -> Terminated {
        truncate_at_char(&mut reason, ERROR_MESSAGE_BYTES_MAX);
        tracing::error!(
            plugin = %self.name,
            kind = self.kind.name(),
            %reason,
            "sandbox terminated; every other plugin carries on"
        );
        self.record_usage();
        self.state = State::Terminated(reason.clone());
        Terminated { reason }
    }

    /// Calls `process_message()` (`process` true) or `timer_event(ns)` with the caller's sink
    /// swapped in, then interprets the result under Heka's contract.
    fn call_entry(
        &mut self,
        process: bool,
        ns: Option<i64>,
        sink: &mut Vec<u8>,
    ) -> Result<CallStatus, Terminated> {
        let function_name = if process {
            "process_message"
        } else {
            "timer_event"
        };
        let key = if process {
            &self.process_message_key
        } else {
            &self.timer_event_key
        };
        let function = match self.lua.globals().raw_get::<Value>(key) {
            Ok(Value::Function(function)) => function,
            _ => return Err(self.terminate(format!("{function_name}() function was not found"))),
        };
        self.host.swap_sink(sink);
        self.host.begin_call(self.host.instruction_limit);
        let result = call_function(&function, ns);
        let abort = self.host.end_call();
        self.host.swap_sink(sink);
        self.stats.inject_message_count += u64::from(self.host.take_injected_count());
        self.record_limits();
        if let Some(reason) = abort {
            return Err(self.terminate(format!("{function_name}() {reason}")));
        }
        let (status, message) = match result {
            Ok(values) => values,
            Err(error) => {
                let text = lua_error_text(&error);
                return Err(self.terminate(format!("{function_name}() {text}")));
            }
        };
        if !process {
            return Ok(CallStatus::Ok);
        }
        self.interpret_status(status, message)
    }

    fn interpret_status(
        &mut self,
        status: Value,
        message: Value,
    ) -> Result<CallStatus, Terminated> {
        let code = match status {
            Value::Integer(code) => code,
            Value::Number(code) if code.is_finite() => code as i64,
            _ => {
                let reason = "process_message() must return a numeric status code";
                return Err(self.terminate(reason.to_string()));
            }
        };
        self.last_error.clear();
        match message {
            Value::Nil => {}
            Value::String(text) => {
                let bytes = text.as_bytes();
                let kept = &bytes[..bytes.len().min(ERROR_MESSAGE_BYTES_MAX)];
                self.last_error.push_str(&String::from_utf8_lossy(kept));
            }
            _ => {
                let reason = "process_message() must return a nil or string error message";
                return Err(self.terminate(reason.to_string()));
            }
        }
        match code {
            0 => Ok(CallStatus::Ok),
            -2 if self.kind == SandboxKind::Encoder => Ok(CallStatus::Skipped),
            code if code < 0 => Ok(CallStatus::Failed),
            code => {
                let reason = if self.last_error.is_empty() {
                    format!("process_message() returned fatal status {code}")
                } else {
                    self.last_error.clone()
                };
                Err(self.terminate(reason))
            }
        }
    }

    fn record_limits(&mut self) {
        let instructions = self.host.instructions_used();
        self.stats.instructions_max = self.stats.instructions_max.max(instructions);
        self.stats.output_bytes_max = self.stats.output_bytes_max.max(self.host.output_max());
        let memory = self.lua.used_memory() + self.host.native_bytes();
        self.stats.memory_bytes = memory;
        self.stats.memory_bytes_max = self.stats.memory_bytes_max.max(memory);
    }

    fn record_usage(&mut self) {
        self.record_limits();
    }
}

/// Calls an entry point without allocating: `process_message()` returns up to two values.
fn call_function(function: &Function, ns: Option<i64>) -> mlua::Result<(Value, Value)> {
    match ns {
        None => function.call::<(Value, Value)>(()),
        Some(ns) => function.call::<()>(ns).map(|()| (Value::Nil, Value::Nil)),
    }
}

/// Joins a relative path onto `base`; an absolute path stays as it is.
fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base.join(path)
    }
}

/// Cuts `text` to at most `bytes_max` bytes at a character boundary.
pub(crate) fn truncate_at_char(text: &mut String, bytes_max: usize) {
    if text.len() <= bytes_max {
        return;
    }
    let mut end = bytes_max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

/// The message of an mlua error without the Rust-side wrapping and without the traceback,
/// as Heka's termination payloads show it.
pub(crate) fn lua_error_text(error: &mlua::Error) -> String {
    let mut text = match error {
        mlua::Error::CallbackError { cause, .. } => return lua_error_text(cause),
        mlua::Error::WithContext { cause, .. } => return lua_error_text(cause),
        mlua::Error::RuntimeError(message) | mlua::Error::SyntaxError { message, .. } => {
            message.clone()
        }
        mlua::Error::MemoryError(_) => "memory_limit exceeded".to_string(),
        other => other.to_string(),
    };
    if let Some(at) = text.find("\nstack traceback:") {
        text.truncate(at);
    }
    truncate_at_char(&mut text, ERROR_MESSAGE_BYTES_MAX);
    text
}

pub(crate) use crate::filter::push_record;

/// Encodes any record into `out` as Heka protobuf (lines are encoded, protobuf is copied).
pub(crate) fn record_to_protobuf(record: &MessageView<'_>, out: &mut Vec<u8>) {
    out.clear();
    match record {
        MessageView::Proto(view) => out.extend_from_slice(view.bytes()),
        MessageView::Line(line) => encode_line(line, out),
    }
}

#[cfg(test)]
mod encode_tests;
#[cfg(test)]
mod escape_tests;
#[cfg(test)]
pub(crate) mod tests;
