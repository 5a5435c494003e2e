//! SyslogInput: syslog over TCP or UDP, decoded by the SyslogDecoder.
//!
//! Over TCP it is a TcpInput whose splitter is the [`SyslogSplitter`]: RFC 6587 octet counting
//! or newline framing, decided from each connection's first bytes. Over UDP it is a UdpInput:
//! each datagram is one message (RFC 5426). Either way each ingest core binds the address with
//! SO_REUSEPORT and parses what it reads itself; the decoder is `SyslogDecoder` unless the
//! section names another. `docs/syslog.md` has the options and what happens to bad input.
//!
//! [`SyslogSplitter`]: crate::splitter::SyslogSplitter

use std::rc::Rc;
use std::sync::Arc;

use super::tcp::TcpInputKind;
use super::udp::UdpInputKind;
use super::{InputContext, InputKind};
use crate::component::{PlanContext, Registration};
use crate::config::plan::{InputPlan, SplitterPlan};
use crate::config::{ConfigError, Section};
use crate::limits::MESSAGE_BYTES_MIN;
use crate::runtime::shard::Shard;

/// Its registry line.
pub const REGISTRATION: Registration<InputPlan> = Registration {
    type_names: &["SyslogInput"],
    plan: plan_syslog_input,
};

/// `SyslogInput`'s own keys (the common input keys are in [`super::plan::RawCommon`]).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSyslogInput {
    /// `host:port` to listen on.
    pub address: String,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
    /// Largest syslog message accepted, in bytes; at most `[hekad] max_message_size`, which is
    /// also the default. A longer one is dropped and counted as oversize.
    pub max_message_size: Option<u64>,
    /// TCP: connections accepted per core at once (default 1024).
    pub max_connections: Option<u64>,
    /// TCP: turn on keep-alive on accepted connections (default false).
    pub keep_alive: Option<bool>,
    /// TCP: keep-alive idle time, seconds.
    pub keep_alive_period: Option<u64>,
    /// TCP: syslog over TLS (RFC 5425), with the `[name.tls]` keys of a TcpInput.
    pub use_tls: Option<bool>,
    /// TCP: the TLS options (`docs/tls.md`).
    pub tls: Option<crate::tls::RawTls>,
}

/// SyslogInput, planned: the transport it reads and its message size limit.
#[derive(Debug, Clone)]
pub struct SyslogInputKind {
    /// The TCP or UDP listener every ingest core runs.
    pub transport: Transport,
    /// The largest message accepted, in bytes.
    pub max_message_size: usize,
}

/// How a SyslogInput receives.
#[derive(Debug, Clone)]
pub enum Transport {
    /// RFC 6587 over TCP.
    Tcp(TcpInputKind),
    /// RFC 5426: one message per UDP datagram.
    Udp(UdpInputKind),
}

fn plan_syslog_input(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<InputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawSyslogInput = own.parse()?;
    let address = section.address("address", &raw.address)?;
    let global_max = context.global.max_message_size;
    let max_message_size = raw.max_message_size.unwrap_or(global_max as u64);
    if !(MESSAGE_BYTES_MIN as u64..=global_max as u64).contains(&max_message_size) {
        let message = format!(
            "{max_message_size} is outside {MESSAGE_BYTES_MIN}..={global_max} bytes (at most \
             [hekad] max_message_size)"
        );
        return Err(section.error(Some("max_message_size"), message));
    }
    section.refuse(
        "splitter",
        common.splitter.is_some(),
        "a SyslogInput frames by RFC 6587 (TCP) or by datagram (UDP); use a TcpInput or \
         UdpInput with decoder = \"SyslogDecoder\" for another splitter",
    )?;
    let (transport, nets, splitter) = match raw.protocol.as_deref().unwrap_or("tcp") {
        "tcp" => (
            Transport::Tcp(tcp_transport(section, &raw, address)?),
            &["tcp", "tcp4", "tcp6"][..],
            SplitterPlan::Syslog,
        ),
        "udp" => {
            for (key, set) in [
                ("max_connections", raw.max_connections.is_some()),
                ("keep_alive", raw.keep_alive.is_some()),
                ("keep_alive_period", raw.keep_alive_period.is_some()),
                ("use_tls", raw.use_tls == Some(true)),
            ] {
                section.refuse(key, set, "a TCP option; this SyslogInput's protocol is udp")?;
            }
            let udp = UdpInputKind {
                address,
                set_hostname: false,
            };
            (
                Transport::Udp(udp),
                &["udp", "udp4", "udp6"][..],
                SplitterPlan::Null,
            )
        }
        other => {
            let message = format!("`{other}` is not one of \"tcp\", \"udp\"");
            return Err(section.error(Some("protocol"), message));
        }
    };
    let kind = SyslogInputKind {
        transport,
        max_message_size: max_message_size as usize,
    };
    let mut common = common.with_defaults("NullSplitter", nets);
    common.decoder = Some(common.decoder.unwrap_or("SyslogDecoder"));
    let mut plan = super::plan::input_plan(section, context, common, Arc::new(kind))?;
    plan.splitter = splitter;
    Ok(plan)
}

/// The TCP listener of a `protocol = "tcp"` SyslogInput: TcpInput's connection options, and
/// TLS with `use_tls` (RFC 5425).
fn tcp_transport(
    section: &Section,
    raw: &RawSyslogInput,
    address: std::net::SocketAddr,
) -> Result<TcpInputKind, ConfigError> {
    let max_connections = super::tcp::max_connections(section, raw.max_connections)?;
    Ok(TcpInputKind {
        address,
        max_connections,
        keep_alive: super::tcp::keep_alive(section, raw.keep_alive, raw.keep_alive_period)?,
        tls: super::tcp::server_tls(section, raw.use_tls, raw.tls.as_ref())?,
    })
}

impl InputKind for SyslogInputKind {
    fn type_name(&self) -> &'static str {
        "SyslogInput"
    }

    fn describe(&self) -> String {
        match &self.transport {
            Transport::Tcp(tcp) => tcp.describe(),
            Transport::Udp(udp) => udp.describe(),
        }
    }

    fn datagrams(&self) -> bool {
        matches!(self.transport, Transport::Udp(_))
    }

    fn max_message_size(&self) -> Option<usize> {
        Some(self.max_message_size)
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        match &self.transport {
            Transport::Tcp(tcp) => tcp.start(shard, input, receive_buffer),
            Transport::Udp(udp) => udp.start(shard, input, receive_buffer),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::plan::{Overrides, Plan, SplitterPlan};
    use crate::config::{add_text, ConfigError, Document};

    fn load_str(text: &str) -> Result<Plan, ConfigError> {
        let mut document = Document::default();
        add_text(&mut document, "test.toml", text)?;
        crate::config::plan::build(&document, &Overrides::default())
    }

    fn error_of(text: &str) -> ConfigError {
        load_str(text).expect_err("the config is refused")
    }

    #[test]
    fn tcp_frames_by_rfc6587_udp_by_datagram_and_both_decode_syslog() {
        let plan = load_str(
            "[hekad]\nmax_message_size = 65536\n\
             [a]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:1\"\nmax_message_size = 2048\n\
             [b]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:2\"\nprotocol = \"udp\"\n",
        )
        .expect("a valid config");
        let (tcp, udp) = (&plan.inputs[0], &plan.inputs[1]);
        assert_eq!(tcp.splitter, SplitterPlan::Syslog);
        assert_eq!(udp.splitter, SplitterPlan::Null);
        assert_eq!(tcp.kind.max_message_size(), Some(2048));
        assert_eq!(udp.kind.max_message_size(), Some(65536), "the global one");
        assert!(udp.kind.datagrams() && !tcp.kind.datagrams());
        for input in [tcp, udp] {
            let decoder = input.decoder.as_ref().expect("a decoder");
            assert_eq!(decoder.type_name(), "SyslogDecoder");
        }
    }

    #[test]
    fn a_bad_protocol_a_splitter_or_a_tcp_option_on_udp_names_its_key() {
        let cases = [
            ("protocol = \"sctp\"\n", "protocol"),
            ("splitter = \"TokenSplitter\"\n", "splitter"),
            (
                "protocol = \"udp\"\nmax_connections = 4\n",
                "max_connections",
            ),
            ("max_message_size = 100\n", "max_message_size"),
        ];
        for (extra, key) in cases {
            let text = format!("[s]\ntype = \"SyslogInput\"\naddress = \"127.0.0.1:1\"\n{extra}");
            let error = error_of(&text).to_string();
            assert!(
                error.contains("[s]") && error.contains(key),
                "{extra}: {error}"
            );
        }
    }
}
