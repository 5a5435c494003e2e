//! TLS for TcpInput and TcpOutput: Heka's `use_tls` and `[name.tls]` keys, planned once into a
//! rustls config that every core shares read-only, and the per-connection driver
//! ([`stream::TlsStream`]) that runs rustls over a core's own glommio stream.
//!
//! Planning reads the certificate, key and CA files at startup, so a missing file, a key that
//! does not match its certificate, a CA file without certificates or a bad version name fails
//! the config with an error naming the file, the section and the `tls.<key>`.
//!
//! What is verified (`docs/tls.md`):
//! - a TcpOutput always verifies the receiver's certificate chain against `root_cafile` and its
//!   name against `server_name` (default: the host of `address`);
//! - a TcpInput with `client_auth` asks for client certificates and verifies them against
//!   `client_cafile`; with a `Require…` value a client without one is refused.
//!
//! Only TLS 1.2 and 1.3 exist here (rustls has nothing older), only with AEAD cipher suites,
//! from the `ring` provider. No session state is kept (no tickets, no session cache): the
//! connections are long-lived streams, and the handshake then takes no lock.

pub mod stream;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::{ConfigError, Section};

pub use stream::{TlsStream, Transport};

/// `[name.tls]`: Heka's TLS keys, as written. Which apply depends on the side: a TcpInput
/// serves (`cert_file`, `key_file`, `client_auth`, `client_cafile`), a TcpOutput connects
/// (`root_cafile`, `server_name`, and `cert_file`/`key_file` as its client certificate).
#[derive(Debug, Default, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// TcpOutput: the name the receiver's certificate must carry (default: the host of
    /// `address`).
    pub server_name: Option<String>,
    /// PEM certificate chain, the end-entity certificate first: the input's server
    /// certificate, or the output's client certificate.
    pub cert_file: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `cert_file`'s certificate.
    pub key_file: Option<String>,
    /// TcpInput: Heka's `NoClientCert` (default), `RequestClientCert`,
    /// `VerifyClientCertIfGiven`, `RequireAnyClientCert` or `RequireAndVerifyClientCert`.
    pub client_auth: Option<String>,
    /// TLS 1.2 cipher suites allowed, by Heka's names (`ECDHE_RSA_WITH_AES_128_GCM_SHA256`…);
    /// default: every suite rustls offers. TLS 1.3 suites are always offered.
    pub ciphers: Option<Vec<String>>,
    /// Only `false` is accepted: a TcpOutput always verifies the receiver.
    pub insecure_skip_verify: Option<bool>,
    /// TcpInput: choose the cipher suite by the server's order, not the client's.
    pub prefer_server_ciphers: Option<bool>,
    /// Accepted and ignored: gyges issues no session tickets (see `docs/tls.md`).
    pub session_tickets_disabled: Option<bool>,
    /// Accepted and ignored, as `session_tickets_disabled` (Heka spelled it
    /// `sesion_ticket_key`; both are accepted).
    #[serde(alias = "sesion_ticket_key")]
    pub session_ticket_key: Option<String>,
    /// Oldest version: `SSL30`, `TLS10`, `TLS11`, `TLS12` (all mean TLS 1.2 here) or `TLS13`.
    pub min_version: Option<String>,
    /// Newest version: `TLS12` or `TLS13` (default).
    pub max_version: Option<String>,
    /// TcpInput: PEM CA certificates that client certificates are verified against.
    pub client_cafile: Option<String>,
    /// TcpOutput: PEM CA certificates that the receiver's certificate is verified against.
    pub root_cafile: Option<String>,
}

/// Heka's `client_auth` values, and what each does here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `NoClientCert`: no client certificate is asked for.
    None,
    /// `RequestClientCert`, `VerifyClientCertIfGiven`: asked for; a client without one is
    /// accepted, one that sends one must pass verification.
    VerifyIfGiven,
    /// `RequireAnyClientCert`, `RequireAndVerifyClientCert`: a client without a certificate
    /// that verifies against `client_cafile` is refused.
    Require,
}

impl ClientAuth {
    fn from_heka(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "NoClientCert" => ClientAuth::None,
            "RequestClientCert" | "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
            "RequireAnyClientCert" | "RequireAndVerifyClientCert" => ClientAuth::Require,
            _ => return None,
        })
    }
}

/// A TcpOutput's TLS, planned: the shared client config and the name to verify.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// The rustls client config every core's connections share.
    pub config: Arc<ClientConfig>,
    /// The name the receiver's certificate is checked against.
    pub server_name: ServerName<'static>,
}

/// The `ring` provider, restricted to the TLS 1.2 suites `ciphers` names (TLS 1.3 suites
/// are always kept).
fn provider(section: &Section, raw: &RawTls) -> Result<Arc<CryptoProvider>, ConfigError> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = &raw.ciphers {
        let offered: Vec<String> = provider
            .cipher_suites
            .iter()
            .filter(|suite| suite.version() == &rustls::version::TLS12)
            .filter_map(|suite| suite.suite().as_str())
            .map(|name| name.trim_start_matches("TLS_").to_string())
            .collect();
        for name in names {
            if !offered.iter().any(|offer| offer == name) {
                let message = format!(
                    "`{name}` is not a cipher suite gyges offers; one of {}",
                    offered.join(", ")
                );
                return Err(section.error(Some("tls.ciphers"), message));
            }
        }
        provider.cipher_suites.retain(|suite| {
            suite.version() != &rustls::version::TLS12
                || suite.suite().as_str().is_some_and(|full| {
                    let short = full.trim_start_matches("TLS_");
                    names.iter().any(|name| name == short)
                })
        });
    }
    Ok(Arc::new(provider))
}

/// The versions `min_version`..=`max_version` allow.
fn versions(
    section: &Section,
    raw: &RawTls,
) -> Result<Vec<&'static SupportedProtocolVersion>, ConfigError> {
    // 0 = TLS 1.2, 1 = TLS 1.3; Heka's older names mean "anything rustls has".
    let rank = |key: &str, value: Option<&str>, default: u8| -> Result<u8, ConfigError> {
        match value {
            None => Ok(default),
            Some("SSL30" | "TLS10" | "TLS11" | "TLS12") if key == "tls.min_version" => Ok(0),
            Some("TLS12") => Ok(0),
            Some("TLS13") => Ok(1),
            Some(other) => {
                let allowed = if key == "tls.min_version" {
                    "SSL30, TLS10, TLS11, TLS12 or TLS13 (below TLS12 means TLS 1.2: nothing older is spoken)"
                } else {
                    "TLS12 or TLS13 (nothing older is spoken)"
                };
                Err(section.error(Some(key), format!("`{other}` is not {allowed}")))
            }
        }
    };
    let min = rank("tls.min_version", raw.min_version.as_deref(), 0)?;
    let max = rank("tls.max_version", raw.max_version.as_deref(), 1)?;
    if max < min {
        return Err(section.error(
            Some("tls.max_version"),
            "is older than min_version: no version is left",
        ));
    }
    let all = [&rustls::version::TLS12, &rustls::version::TLS13];
    Ok(all[usize::from(min)..=usize::from(max)].to_vec())
}

/// Reads a PEM file of certificates; `key` names the option for errors.
fn certificates(
    section: &Section,
    key: &str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|error| section.error(Some(key), format!("cannot read `{path}`: {error}")))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| section.error(Some(key), format!("`{path}`: bad PEM: {error}")))?;
    if certificates.is_empty() {
        return Err(section.error(Some(key), format!("no PEM certificate in `{path}`")));
    }
    Ok(certificates)
}

/// Reads `cert_file` and `key_file`, both required when `needed`.
#[allow(clippy::type_complexity)]
fn identity(
    section: &Section,
    raw: &RawTls,
    needed: bool,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, ConfigError> {
    let (cert_file, key_file) = match (&raw.cert_file, &raw.key_file) {
        (Some(cert_file), Some(key_file)) => (cert_file, key_file),
        (None, None) if !needed => return Ok(None),
        (None, _) => {
            let why = if needed {
                "use_tls on a TcpInput needs a certificate: set tls.cert_file and tls.key_file"
            } else {
                "tls.key_file is set without tls.cert_file"
            };
            return Err(section.error(Some("tls.cert_file"), why));
        }
        (Some(_), None) => {
            return Err(section.error(
                Some("tls.key_file"),
                "tls.cert_file is set without tls.key_file (the certificate's private key)",
            ))
        }
    };
    let chain = certificates(section, "tls.cert_file", cert_file)?;
    let bytes = std::fs::read(key_file).map_err(|error| {
        section.error(
            Some("tls.key_file"),
            format!("cannot read `{key_file}`: {error}"),
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|error| {
        section.error(
            Some("tls.key_file"),
            format!("no usable PEM private key in `{key_file}`: {error}"),
        )
    })?;
    Ok(Some((chain, key)))
}

/// The error for a certificate and key rustls refused together.
fn identity_error(section: &Section, raw: &RawTls, error: &rustls::Error) -> ConfigError {
    let cert_file = raw.cert_file.as_deref().unwrap_or_default();
    let key_file = raw.key_file.as_deref().unwrap_or_default();
    let message = match error {
        rustls::Error::InconsistentKeys(_) => {
            format!("the key in `{key_file}` does not match the certificate in `{cert_file}`")
        }
        other => format!("`{key_file}` with `{cert_file}`: {other}"),
    };
    section.error(Some("tls.key_file"), message)
}

/// Reads a CA file into a root store; `key` names the option for errors.
fn roots(section: &Section, key: &str, path: &str) -> Result<Arc<RootCertStore>, ConfigError> {
    let mut store = RootCertStore::empty();
    for certificate in certificates(section, key, path)? {
        store.add(certificate).map_err(|error| {
            section.error(
                Some(key),
                format!("`{path}`: not a usable CA certificate: {error}"),
            )
        })?;
    }
    Ok(Arc::new(store))
}

/// Refuses the keys of `[name.tls]` that do not apply to this side.
fn refuse_keys(section: &Section, keys: &[(&str, bool)], side: &str) -> Result<(), ConfigError> {
    for (key, set) in keys {
        if *set {
            let message = format!("does not apply to a {side}");
            return Err(section.error(Some(&format!("tls.{key}")), message));
        }
    }
    Ok(())
}

/// Plans a TcpInput's TLS: its certificate, client verification and versions.
///
/// # Errors
/// A missing or unreadable file, a key that does not match the certificate, a bad value.
pub fn server(section: &Section, raw: &RawTls) -> Result<Arc<ServerConfig>, ConfigError> {
    let side = "TcpInput";
    refuse_keys(
        section,
        &[
            ("server_name", raw.server_name.is_some()),
            ("root_cafile", raw.root_cafile.is_some()),
            ("insecure_skip_verify", raw.insecure_skip_verify.is_some()),
        ],
        side,
    )?;
    let provider = provider(section, raw)?;
    let versions = versions(section, raw)?;
    let (chain, key) = identity(section, raw, true)?
        .ok_or_else(|| section.error(Some("tls.cert_file"), "use_tls needs tls.cert_file"))?;
    let auth = match raw.client_auth.as_deref() {
        None => ClientAuth::None,
        Some(name) => ClientAuth::from_heka(name).ok_or_else(|| {
            let message = format!(
                "`{name}` is not one of NoClientCert, RequestClientCert, VerifyClientCertIfGiven, \
                 RequireAnyClientCert, RequireAndVerifyClientCert"
            );
            section.error(Some("tls.client_auth"), message)
        })?,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|error| section.error(Some("tls.min_version"), error.to_string()))?;
    let builder = match (auth, raw.client_cafile.as_deref()) {
        (ClientAuth::None, cafile) => {
            if cafile.is_some() {
                tracing::warn!(section = %section.name,
                    "tls.client_cafile is set but client_auth is NoClientCert: \
                     client certificates are not asked for");
            }
            builder.with_no_client_auth()
        }
        (_, None) => {
            let message =
                "needs tls.client_cafile, the CA client certificates are verified against";
            return Err(section.error(Some("tls.client_auth"), message));
        }
        (auth, Some(cafile)) => {
            let store = roots(section, "tls.client_cafile", cafile)?;
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(store, provider);
            let verifier = if auth == ClientAuth::VerifyIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|error| section.error(Some("tls.client_cafile"), error.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|error| identity_error(section, raw, &error))?;
    config.ignore_client_order = raw.prefer_server_ciphers == Some(true);
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(Arc::new(config))
}

/// Plans a TcpOutput's TLS: the CA the receiver is verified against, the name it must carry
/// (`server_name`, else the host of `address`), an optional client certificate, versions.
///
/// # Errors
/// No `root_cafile`, a missing or unreadable file, a key that does not match its
/// certificate, a bad value.
pub fn client(section: &Section, raw: &RawTls, address: &str) -> Result<TlsClient, ConfigError> {
    client_of(section, raw, address, "TcpOutput", None)
}

/// The system's CA bundle (Debian's `ca-certificates`): what a client verifies against when a
/// plugin allows it and `tls.root_cafile` is not given.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Plans a client's TLS as [`client`] does, but with [`SYSTEM_ROOTS`] when `root_cafile` is
/// not given: for a plugin whose peers are public servers (a mail relay), as Heka's Go client
/// used the system's roots. `side` names the plugin in errors.
///
/// # Errors
/// As [`client`]; and no `root_cafile` while the system bundle is missing.
pub fn client_with_system_roots(
    section: &Section,
    raw: &RawTls,
    address: &str,
    side: &str,
) -> Result<TlsClient, ConfigError> {
    client_of(section, raw, address, side, Some(SYSTEM_ROOTS))
}

fn client_of(
    section: &Section,
    raw: &RawTls,
    address: &str,
    side: &str,
    default_roots: Option<&str>,
) -> Result<TlsClient, ConfigError> {
    refuse_keys(
        section,
        &[
            ("client_auth", raw.client_auth.is_some()),
            ("client_cafile", raw.client_cafile.is_some()),
            ("prefer_server_ciphers", raw.prefer_server_ciphers.is_some()),
        ],
        side,
    )?;
    if raw.insecure_skip_verify == Some(true) {
        return Err(section.error(
            Some("tls.insecure_skip_verify"),
            "only false is accepted: gyges always verifies the receiver's certificate \
             (give its CA as tls.root_cafile)",
        ));
    }
    let provider = provider(section, raw)?;
    let versions = versions(section, raw)?;
    let Some(cafile) = raw.root_cafile.as_deref().or(default_roots) else {
        let message = format!(
            "use_tls on a {side} needs tls.root_cafile, the CA the receiver's certificate is \
             verified against"
        );
        return Err(section.error(Some("tls.root_cafile"), message));
    };
    let store = roots(section, "tls.root_cafile", cafile)?;
    let name = match raw.server_name.as_deref() {
        Some(name) => name.to_string(),
        None => host_of(address).to_string(),
    };
    let key = if raw.server_name.is_some() {
        "tls.server_name"
    } else {
        "address"
    };
    let server_name = ServerName::try_from(name.clone())
        .map_err(|_| section.error(Some(key), format!("`{name}` is not a DNS name or IP")))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|error| section.error(Some("tls.min_version"), error.to_string()))?
        .with_root_certificates(store);
    let mut config = match identity(section, raw, false)? {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|error| identity_error(section, raw, &error))?,
        None => builder.with_no_client_auth(),
    };
    config.resumption = rustls::client::Resumption::disabled();
    Ok(TlsClient {
        config: Arc::new(config),
        server_name,
    })
}

/// The host of `host:port` (an IPv6 address without its brackets).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_of_an_address() {
        assert_eq!(host_of("127.0.0.1:5565"), "127.0.0.1");
        assert_eq!(host_of("[::1]:5565"), "::1");
        assert_eq!(host_of("logs.example.org:5565"), "logs.example.org");
    }

    #[test]
    fn client_auth_names_are_hekas() {
        assert_eq!(
            ClientAuth::from_heka("NoClientCert"),
            Some(ClientAuth::None)
        );
        assert_eq!(
            ClientAuth::from_heka("RequireAndVerifyClientCert"),
            Some(ClientAuth::Require)
        );
        assert_eq!(
            ClientAuth::from_heka("VerifyClientCertIfGiven"),
            Some(ClientAuth::VerifyIfGiven)
        );
        assert_eq!(ClientAuth::from_heka("require"), None);
    }
}
