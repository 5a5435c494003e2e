//! The subcommands of the `gyges` binary, one module each: `run` and `validate` (the daemon),
//! `matcher`, the Heka tools rebuilt: `cat`, `inject`, `flood` and `sandbox` (heka-sbmgr), and the operator's
//! `queue` and `top`.
//!
//! Each tool is a `clap::Args` struct plus `run(&Args) -> ExitCode`; `src/main.rs` only
//! dispatches. Tools are ordinary blocking std programs: they are not on the daemon's data
//! path, so they favour clarity (and `anyhow`-free plain errors) over zero allocation,
//! except `flood`, which must outrun the daemon it loads.

pub mod cat;
pub mod flood;
pub mod inject;
pub mod matcher;
pub mod queue;
pub mod run;
pub mod sandbox;
pub mod top;

use std::process::ExitCode;

use crate::message::framing::{HashFunction, Signer};

/// Prints `gyges <tool>: <message>` to stderr and returns the failure exit code.
fn fail(tool: &str, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("gyges {tool}: {message}");
    ExitCode::FAILURE
}

/// The `--signer`, `--signer-version`, `--hmac-key`, `--hmac-hash` options shared by the
/// tools that write frames.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SignerArgs {
    /// Sign each frame as this signer (Heka's `[signer] name`).
    #[arg(long, requires = "hmac_key")]
    pub signer: Option<String>,
    /// The signing key's version.
    #[arg(long, default_value_t = 0, requires = "signer")]
    pub signer_version: u32,
    /// The HMAC key (`--key` is the same).
    #[arg(long, alias = "key", requires = "signer")]
    pub hmac_key: Option<String>,
    /// The HMAC digest: md5 or sha1.
    #[arg(long, default_value = "md5", value_parser = ["md5", "sha1"])]
    pub hmac_hash: String,
}

impl SignerArgs {
    /// The signer the options describe, if any.
    ///
    /// # Errors
    /// A signer name too long for a frame header, or a key too long.
    pub fn signer(&self) -> Result<Option<Signer>, String> {
        let (Some(name), Some(key)) = (&self.signer, &self.hmac_key) else {
            return Ok(None);
        };
        let hash = HashFunction::from_name(&self.hmac_hash)
            .ok_or_else(|| format!("--hmac-hash `{}` is not md5 or sha1", self.hmac_hash))?;
        Signer::new(name, self.signer_version, hash, key.as_bytes())
            .map(Some)
            .map_err(|error| error.to_string())
    }
}
