//! HttpListenInput: an HTTP/1.1 server on one SO_REUSEPORT listener per ingest core, whose
//! request bodies are split, decoded and routed on that core like a TcpInput's stream.
//!
//! - [`parse`]: the pure part: request heads (`httparse`), chunked bodies, credentials, the
//!   request's message fields and the answers.
//! - [`connection`]: one connection's task: keep-alive, pipelining, the body through the
//!   splitter, and the answer once the core has accepted what it routed.
//!
//! Connections are accepted as TcpInput accepts them ([`super::tcp::accept_loop`]):
//! `max_connections` per core, refusals and failed accepts counted and logged at most once
//! per 5 s. `docs/http_listen.md` is the user's page.

pub mod connection;
pub mod parse;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use serde::Deserialize;

use self::parse::{Auth, Settings};
use super::InputContext;
use crate::component::{PlanContext, Registration};
use crate::config::plan::InputPlan;
use crate::config::{ConfigError, Section};
use crate::limits::{HTTP_REQUEST_HEADERS_MAX, HTTP_RESPONSE_HEADER_BYTES_MAX};
use crate::runtime::failure;
use crate::runtime::shard::Shard;
use crate::telemetry::log_limit::{LogLimit, LOG_INTERVAL};

/// Heka's default `address`.
pub const ADDRESS_DEFAULT: &str = "127.0.0.1:8325";

/// The Type of a message made without a decoder (Heka's).
pub const MESSAGE_TYPE: &[u8] = b"heka.httpdata.request";

/// One response header's values: Heka took a list of strings; a single string is accepted too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum HeaderValues {
    /// `Name = "value"`.
    One(String),
    /// `Name = ["value", …]`: one header line per value.
    Many(Vec<String>),
}

/// `HttpListenInput`'s own keys (the common input keys are in [`super::plan::RawCommon`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpListenInput {
    /// `host:port` to listen on (default `127.0.0.1:8325`, as Heka).
    pub address: Option<String>,
    /// `[name.headers]`: headers added to every response, `Name = ["value", …]`.
    pub headers: Option<BTreeMap<String, HeaderValues>>,
    /// Request headers copied into fields of each message, named as written here.
    pub request_headers: Option<Vec<String>>,
    /// `"Basic"` (with `username` and `password`) or `"API"` (with `api_key`, checked
    /// against the `X-API-Key` header). Unset: no authentication.
    pub auth_type: Option<String>,
    /// The Basic user.
    pub username: Option<String>,
    /// The Basic password.
    pub password: Option<String>,
    /// The API key.
    pub api_key: Option<String>,
    /// TLS is not supported yet; only `false` is accepted.
    pub use_tls: Option<bool>,
    /// Connections served per core at once (default 1024); one more is closed at once and
    /// counted as refused.
    pub max_connections: Option<u64>,
}

/// HttpListenInput, planned.
#[derive(Debug, Clone)]
pub struct HttpListenInputKind {
    /// The resolved `address` every ingest core binds with SO_REUSEPORT.
    pub address: SocketAddr,
    /// Connections one core serves at once (`max_connections`).
    pub max_connections: usize,
    /// Credentials, copied request headers and response headers.
    pub settings: Arc<Settings>,
}

/// Its registry line.
pub const REGISTRATION: Registration<InputPlan> = Registration {
    type_names: &["HttpListenInput"],
    plan: plan_http_listen_input,
};

fn plan_http_listen_input(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<InputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawHttpListenInput = own.parse()?;
    let max_connections = super::tcp::max_connections(section, raw.max_connections)?;
    section.refuse(
        "use_tls",
        raw.use_tls == Some(true),
        "TLS is not supported yet",
    )?;
    let settings = Settings {
        auth: auth(section, &raw)?,
        request_headers: request_headers(section, raw.request_headers.as_deref())?,
        response_headers: response_headers(section, raw.headers.as_ref())?,
    };
    let address = raw.address.as_deref().unwrap_or(ADDRESS_DEFAULT);
    let kind = HttpListenInputKind {
        address: section.address("address", address)?,
        max_connections,
        settings: Arc::new(settings),
    };
    let common = common.with_defaults("NullSplitter", &["tcp", "tcp4", "tcp6"]);
    super::plan::input_plan(section, context, common, Arc::new(kind))
}

/// `auth_type` and its credentials, each required by the type that uses it and refused
/// without it.
fn auth(section: &Section, raw: &RawHttpListenInput) -> Result<Auth, ConfigError> {
    let required = |key: &str, value: &Option<String>, empty_ok: bool| match value {
        Some(value) if empty_ok || !value.is_empty() => Ok(value.as_bytes().to_vec()),
        _ => Err(section.error(
            Some(key),
            format!(
                "auth_type = \"{}\" needs `{key}`",
                raw.auth_type.as_deref().unwrap_or("")
            ),
        )),
    };
    let auth = match raw.auth_type.as_deref() {
        None => Auth::None,
        Some("Basic") => Auth::Basic {
            username: required("username", &raw.username, false)?,
            password: required("password", &raw.password, true)?,
        },
        Some("API") => Auth::Api {
            key: required("api_key", &raw.api_key, false)?,
        },
        Some(other) => {
            let message = format!("`{other}` is not \"Basic\" or \"API\"");
            return Err(section.error(Some("auth_type"), message));
        }
    };
    let unused = [
        (
            "username",
            raw.username.is_some(),
            matches!(auth, Auth::Basic { .. }),
        ),
        (
            "password",
            raw.password.is_some(),
            matches!(auth, Auth::Basic { .. }),
        ),
        (
            "api_key",
            raw.api_key.is_some(),
            matches!(auth, Auth::Api { .. }),
        ),
    ];
    for (key, set, used) in unused {
        section.refuse(key, set && !used, "not used by this auth_type")?;
    }
    Ok(auth)
}

/// Whether `name` is an HTTP field name (RFC 9110 token characters).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

fn request_headers(
    section: &Section,
    names: Option<&[String]>,
) -> Result<Vec<String>, ConfigError> {
    let names = names.unwrap_or(&[]);
    if names.len() > HTTP_REQUEST_HEADERS_MAX {
        let message = format!(
            "{} names is above the bound of {HTTP_REQUEST_HEADERS_MAX}",
            names.len()
        );
        return Err(section.error(Some("request_headers"), message));
    }
    if let Some(bad) = names.iter().find(|name| !is_token(name)) {
        let message = format!("`{bad}` is not a header name");
        return Err(section.error(Some("request_headers"), message));
    }
    Ok(names.to_vec())
}

/// The configured response headers as `Name: value\r\n` lines. Headers gyges writes itself
/// (framing and connection management) cannot be set.
fn response_headers(
    section: &Section,
    headers: Option<&BTreeMap<String, HeaderValues>>,
) -> Result<Vec<u8>, ConfigError> {
    const OWN: [&str; 4] = [
        "content-length",
        "transfer-encoding",
        "connection",
        "content-type",
    ];
    let mut lines = Vec::new();
    for (name, values) in headers.into_iter().flatten() {
        let key = format!("headers.{name}");
        if !is_token(name) {
            return Err(section.error(Some(&key), "not a header name"));
        }
        if OWN.iter().any(|own| own.eq_ignore_ascii_case(name)) {
            return Err(section.error(Some(&key), "gyges sets this header itself"));
        }
        let values = match values {
            HeaderValues::One(value) => std::slice::from_ref(value),
            HeaderValues::Many(values) => values.as_slice(),
        };
        for value in values {
            if value
                .bytes()
                .any(|byte| byte.is_ascii_control() && byte != b'\t')
            {
                return Err(section.error(Some(&key), "a value has a control character"));
            }
            lines.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    if lines.len() > HTTP_RESPONSE_HEADER_BYTES_MAX {
        let message = format!(
            "{} bytes of headers is above the bound of {HTTP_RESPONSE_HEADER_BYTES_MAX}",
            lines.len()
        );
        return Err(section.error(Some("headers"), message));
    }
    Ok(lines)
}

/// What one core's connections of one input share: their rate-limited log lines.
#[derive(Debug)]
pub struct CoreLogs {
    /// Requests refused for their credentials.
    pub auth: RefCell<LogLimit>,
    /// Malformed requests.
    pub bad: RefCell<LogLimit>,
    /// Requests refused with 503.
    pub busy: RefCell<LogLimit>,
}

impl super::InputKind for HttpListenInputKind {
    fn type_name(&self) -> &'static str {
        "HttpListenInput"
    }

    fn describe(&self) -> String {
        format!("http {}", self.address)
    }

    /// Each body is a stream of its own: a TokenSplitter delivers its last line without a
    /// delimiter too.
    fn datagrams(&self) -> bool {
        true
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        let listener = super::tcp::bind(self.address, receive_buffer)?;
        let plugin = failure::register_plugin(&input.plan.name);
        let settings = self.settings.clone();
        let logs = Rc::new(CoreLogs {
            auth: RefCell::new(LogLimit::new(LOG_INTERVAL)),
            bad: RefCell::new(LogLimit::new(LOG_INTERVAL)),
            busy: RefCell::new(LogLimit::new(LOG_INTERVAL)),
        });
        let serve = move |shard: Rc<Shard>, input: Rc<InputContext>, stream| {
            let (settings, logs) = (settings.clone(), logs.clone());
            async move {
                connection::serve(&shard, &input, (&settings, &logs), stream, plugin).await;
            }
        };
        let accept =
            super::tcp::accept_loop(shard.clone(), input, listener, self.max_connections, serve);
        glommio::spawn_local(failure::PluginTask::quiet(plugin, accept)).detach();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::plan::{build, Overrides, Plan};
    use crate::config::{add_text, Document};

    fn plan_of(section: &str) -> Result<Plan, ConfigError> {
        let mut document = Document {
            origin: "test.toml".into(),
            ..Document::default()
        };
        let text = format!("[http]\ntype = \"HttpListenInput\"\n{section}");
        add_text(&mut document, "test.toml", &text)?;
        build(&document, &Overrides::default())
    }

    fn kind_of(section: &str) -> HttpListenInputKind {
        let plan = plan_of(section).expect("a valid section");
        let kind = plan.inputs[0].kind.as_any();
        kind.downcast_ref::<HttpListenInputKind>()
            .expect("an HttpListenInput")
            .clone()
    }

    fn error_key(section: &str) -> Option<String> {
        let error = plan_of(section).expect_err("an invalid section");
        assert_eq!(error.section.as_deref(), Some("http"), "{error}");
        error.key
    }

    #[test]
    fn defaults_are_hekas() {
        let kind = kind_of("");
        assert_eq!(kind.address.to_string(), ADDRESS_DEFAULT);
        assert_eq!(
            kind.max_connections,
            crate::limits::CONNECTIONS_PER_CORE_DEFAULT
        );
        assert_eq!(kind.settings.auth, Auth::None);
        let plan = plan_of("").expect("valid");
        assert_eq!(
            plan.inputs[0].splitter,
            crate::config::plan::SplitterPlan::Null
        );
        assert!(plan.inputs[0].decoder.is_none());
    }

    #[test]
    fn credentials_and_headers_are_planned() {
        let kind = kind_of(
            "address = \"127.0.0.1:9000\"\nauth_type = \"Basic\"\nusername = \"u\"\n\
             password = \"p\"\nrequest_headers = [\"X-Tenant\"]\n\
             [http.headers]\nX-One = \"1\"\nX-Many = [\"a\", \"b\"]\n",
        );
        assert_eq!(
            kind.settings.auth,
            Auth::Basic {
                username: b"u".to_vec(),
                password: b"p".to_vec()
            }
        );
        assert_eq!(kind.settings.request_headers, ["X-Tenant"]);
        assert_eq!(
            kind.settings.response_headers,
            b"X-Many: a\r\nX-Many: b\r\nX-One: 1\r\n"
        );
        assert!(!format!("{kind:?}").contains("\"p\""), "no secret in Debug");
        let kind = kind_of("auth_type = \"API\"\napi_key = \"k\"\n");
        assert_eq!(kind.settings.auth, Auth::Api { key: b"k".to_vec() });
    }

    #[test]
    fn bad_sections_name_their_key() {
        let cases = [
            ("auth_type = \"Digest\"\n", "auth_type"),
            ("auth_type = \"Basic\"\npassword = \"p\"\n", "username"),
            ("auth_type = \"API\"\n", "api_key"),
            ("api_key = \"k\"\n", "api_key"),
            ("use_tls = true\n", "use_tls"),
            ("max_connections = 0\n", "max_connections"),
            ("max_connections = 100000000\n", "max_connections"),
            ("request_headers = [\"bad name\"]\n", "request_headers"),
            (
                "[http.headers]\nContent-Length = \"1\"\n",
                "headers.Content-Length",
            ),
            ("[http.headers]\nX-Bad = \"a\\nb\"\n", "headers.X-Bad"),
            ("no_such_key = 1\n", "no_such_key"),
        ];
        for (section, key) in cases {
            assert_eq!(error_key(section).as_deref(), Some(key), "{section}");
        }
        let names: Vec<String> = (0..=HTTP_REQUEST_HEADERS_MAX)
            .map(|index| format!("\"X-{index}\""))
            .collect();
        let section = format!("request_headers = [{}]\n", names.join(", "));
        assert_eq!(error_key(&section).as_deref(), Some("request_headers"));
    }
}
