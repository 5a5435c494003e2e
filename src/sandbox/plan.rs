//! The config side of every sandbox plugin (SandboxDecoder, SandboxEncoder, SandboxFilter):
//! reading a section into a [`SandboxConfig`], and what a sandbox learns about the daemon.

use super::{HostInfo, Sandbox, SandboxConfig, SandboxKind};
use crate::config::plan::GlobalPlan;
use crate::config::{ConfigError, Section};

/// Parses a sandbox plugin's section into its sandbox config, after taking out the keys in
/// `common` (read by the caller).
///
/// # Errors
/// An unknown key, a wrong type, or a `script_type` other than `lua`.
pub fn sandbox_config(section: &Section, common: &[&str]) -> Result<SandboxConfig, ConfigError> {
    let mut own = section.clone();
    own.table.retain(|key, _| {
        let key: &str = key;
        key != "type" && !common.contains(&key)
    });
    let config: SandboxConfig = own.parse()?;
    if config.script_type != "lua" {
        return Err(section.error(Some("script_type"), "only `lua` is supported"));
    }
    // The limits are checked here too, so `gyges validate` names the key of one out of range.
    if let Err(error) = config.validate() {
        let message = error.to_string();
        let keys = [
            "memory_limit",
            "instruction_limit",
            "output_limit",
            "ticker_interval",
        ];
        let key = keys.iter().find(|key| message.contains(*key)).copied();
        return Err(section.error(key.or(Some("filename")), message));
    }
    Ok(config)
}

/// Loads the section's script once, as a core would, so that a missing script, a syntax
/// error, a `require` that finds no module or a missing `process_message` fails `gyges
/// validate` and startup, naming the section and `filename`, rather than a core later.
///
/// # Errors
/// The script does not load; the message is the sandbox's.
pub fn check_script(
    section: &Section,
    kind: SandboxKind,
    config: &SandboxConfig,
    global: &GlobalPlan,
) -> Result<(), ConfigError> {
    super::decoder_zone(kind, config)
        .map_err(|error| section.error(Some("config.tz"), error.to_string()))?;
    let host = host_info(global);
    Sandbox::check(kind, &section.name, config, &host)
        .map_err(|error| section.error(Some("filename"), error.to_string()))
}

/// What a Lua sandbox needs to know about the daemon.
pub fn host_info(global: &GlobalPlan) -> HostInfo {
    HostInfo {
        hostname: global.hostname.clone(),
        pid: std::process::id() as i32,
        base_dir: global.base_dir.clone(),
        share_dir: global.share_dir.clone(),
        max_process_inject: global.max_process_inject,
        max_timer_inject: global.max_timer_inject,
    }
}
