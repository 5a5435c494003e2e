//! Helpers every plugin's planner uses on its section: its matcher, its addresses, its
//! placement, and the keys gyges refuses.

use std::net::{SocketAddr, ToSocketAddrs};

use super::plan::GlobalPlan;
use super::{ConfigError, Section};
use crate::matcher::{self, Program};

impl Section {
    /// The core that writes a single-writer output: its placement in the tuning profile, or
    /// the default output core.
    pub fn owner_core(&self, global: &GlobalPlan) -> usize {
        global
            .placement
            .get(&self.name)
            .copied()
            .unwrap_or(global.output_core)
    }

    /// The core that hosts a filter: its placement, or the default filter core.
    pub fn host_core(&self, global: &GlobalPlan) -> usize {
        global
            .placement
            .get(&self.name)
            .copied()
            .unwrap_or(global.filter_core)
    }

    /// Compiles the section's `message_matcher` (Heka's default, `FALSE`, when absent).
    ///
    /// # Errors
    /// The expression does not compile; the error names `message_matcher`.
    pub fn matcher(
        &self,
        expression: Option<&str>,
        global: &GlobalPlan,
    ) -> Result<Program, ConfigError> {
        let expression = expression.unwrap_or("FALSE");
        matcher::compile(expression, global.dialect)
            .map_err(|error| self.error(Some("message_matcher"), error.to_string()))
    }

    /// Resolves `address` (the value of `key`) to its first socket address.
    ///
    /// # Errors
    /// The address does not parse or resolves to nothing; the error names `key`.
    pub fn address(&self, key: &str, address: &str) -> Result<SocketAddr, ConfigError> {
        // Heka's configs are Go's: `:5565` is every interface, IPv4 and IPv6 (a dual-stack
        // `[::]` socket; IPv4 senders appear as themselves, see `input::canonical`), or every
        // IPv4 one on a host without IPv6. Dialled, either reaches this host, as Go's does.
        let any;
        let address = match address.strip_prefix(':') {
            Some(port) if !port.contains(':') => {
                let host = if ipv6_available() { "[::]" } else { "0.0.0.0" };
                any = format!("{host}:{port}");
                any.as_str()
            }
            _ => address,
        };
        let mut addresses = address
            .to_socket_addrs()
            .map_err(|error| self.error(Some(key), format!("`{address}`: {error}")))?;
        addresses
            .next()
            .ok_or_else(|| self.error(Some(key), format!("`{address}` resolves to nothing")))
    }

    /// Checks that `address` (the value of `key`) is a destination to dial: `host:port` with a
    /// port number, or `[v6]:port`. The host is not resolved here: an output resolves it each
    /// time it connects, with retries, so a config naming a host that is down or not yet in DNS
    /// still validates and starts.
    ///
    /// # Errors
    /// No host, or no port number; the error names `key`.
    pub fn destination(&self, key: &str, address: &str) -> Result<(), ConfigError> {
        let parsed = address
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .map(|(host, port)| (host, port.parse::<u16>()));
        match parsed {
            Some((_, Ok(_))) => Ok(()),
            _ => Err(self.error(Some(key), format!("`{address}` is not host:port"))),
        }
    }

    /// `message_signer`, checked: a signer name as Heka frames carry it (1 to 255 bytes).
    ///
    /// # Errors
    /// An empty or too long name.
    pub fn message_signer(
        &self,
        signer: Option<&str>,
    ) -> Result<Option<std::sync::Arc<str>>, ConfigError> {
        let Some(signer) = signer else {
            return Ok(None);
        };
        if signer.is_empty() || signer.len() > crate::limits::SIGNER_NAME_BYTES_MAX {
            let max = crate::limits::SIGNER_NAME_BYTES_MAX;
            let message = format!("a signer name is 1 to {max} bytes");
            return Err(self.error(Some("message_signer"), message));
        }
        Ok(Some(std::sync::Arc::from(signer)))
    }

    /// Refuses `key` with `message` when `set`: an option gyges does not honour yet.
    ///
    /// # Errors
    /// When `set`.
    pub fn refuse(&self, key: &str, set: bool, message: &str) -> Result<(), ConfigError> {
        if set {
            return Err(self.error(Some(key), message.to_string()));
        }
        Ok(())
    }

    /// Splits the section in two: the keys in `common` (parsed into `C`, the stage's common
    /// options) and a section of the rest (the kind's own options, which the kind parses with
    /// its own `deny_unknown_fields` struct, so an unknown key is still an error naming it).
    ///
    /// # Errors
    /// A common key of the wrong type.
    pub fn split_common<C: serde::de::DeserializeOwned>(
        &self,
        common: &[&str],
    ) -> Result<(C, Section), ConfigError> {
        let is_common = |key: &str| common.contains(&key);
        let mut shared = self.clone();
        shared.table.retain(|key, _| is_common(key));
        let mut own = self.clone();
        own.table.retain(|key, _| !is_common(key));
        Ok((shared.parse::<C>()?, own))
    }

    /// The string value of `key`, if present.
    ///
    /// # Errors
    /// The value is not a string.
    pub fn string(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(text)) => Ok(Some(text.as_str())),
            Some(_) => Err(self.error(Some(key), "expected a string")),
        }
    }
}

/// Whether this host can open an IPv6 socket (a kernel with IPv6 turned off cannot).
fn ipv6_available() -> bool {
    std::net::UdpSocket::bind("[::]:0").is_ok()
}
