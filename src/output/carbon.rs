//! CarbonOutput: graphite plaintext lines from `heka.statmetric` messages, over one TCP
//! connection per core (a TcpOutput underneath) or one UDP socket per core. Its options are
//! read by [`crate::stats::config::CarbonOutput`], with the other statistics plugins'; its
//! encoder is [`CarbonEncoderKind`], not a section of its own.

use std::rc::Rc;
use std::sync::Arc;

use super::tcp::TcpPlan;
use super::{Opened, OutputCore, OutputKind, Writers};
use crate::component::{LocalBoxFuture, PlanContext, Registration};
use crate::config::plan::{GlobalPlan, OutputPlan};
use crate::config::{ConfigError, Section};
use crate::encoder::{Encode, EncodeFailed, EncoderKind};
use crate::message::MessageView;

/// Its registry line.
pub const REGISTRATION: Registration<OutputPlan> = Registration {
    type_names: &["CarbonOutput"],
    plan: plan_carbon_output,
};

/// Where a CarbonOutput sends.
#[derive(Debug, Clone)]
pub enum CarbonOutputKind {
    /// `protocol = "tcp"` (the default): one TCP connection per core, through a TcpOutput.
    Tcp(TcpPlan),
    /// Datagrams of at most `datagram_bytes_max`, each holding whole lines.
    Udp {
        /// The `host:port` of the carbon receiver (`address`).
        address: String,
        /// Bytes of one datagram at most (`max_datagram_size`); a line that would overflow it
        /// starts the next datagram.
        datagram_bytes_max: usize,
    },
}

fn plan_carbon_output(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<OutputPlan, ConfigError> {
    use crate::stats::carbon::CarbonProtocol;
    let raw: crate::stats::config::CarbonOutput = section.parse()?;
    section.refuse(
        "use_buffering",
        raw.use_buffering == Some(true),
        "durable buffering is not available yet; remove it or set it to false",
    )?;
    let delivery = raw.delivery.clone();
    let use_buffering = raw.use_buffering;
    let settings = raw
        .settings()
        .map_err(|error| section.error(Some(&error.key), error.message))?;
    let carbon = settings.carbon;
    section.destination("address", &carbon.address)?;
    let kind = match carbon.protocol {
        CarbonProtocol::Tcp => CarbonOutputKind::Tcp(TcpPlan {
            address: carbon.address,
            reconnect_after: 0,
            tls: None,
            local_address: None,
            buffer_bytes: crate::limits::TCP_OUTPUT_BUFFER_BYTES_DEFAULT,
            keep_alive: carbon
                .tcp_keep_alive
                .then_some(std::time::Duration::from_secs(
                    crate::limits::KEEP_ALIVE_SECONDS_DEFAULT,
                )),
            ack: None,
        }),
        CarbonProtocol::Udp => CarbonOutputKind::Udp {
            address: carbon.address,
            datagram_bytes_max: carbon.datagram_bytes_max,
        },
    };
    // Heka's default: the StatAccumInput's rollups.
    let matcher = settings
        .message_matcher
        .unwrap_or_else(|| "Type == 'heka.statmetric'".into());
    let common = super::plan::Common {
        message_matcher: Some(&matcher),
        message_signer: settings.message_signer.as_deref(),
        signer: None,
        encoder: super::plan::EncoderChoice::Fixed(Arc::new(CarbonEncoderKind)),
        use_framing: false,
        use_buffering,
        delivery: delivery.as_deref(),
        buffering: None,
        durable_available: false,
    };
    let mut plan = super::plan::output_plan(section, context, common, |_| Ok(Arc::new(kind)))?;
    // Its sockets are per core; it has no single writer of its own.
    plan.owner_core = context.global.output_core;
    Ok(plan)
}

impl OutputKind for CarbonOutputKind {
    fn type_name(&self) -> &'static str {
        "CarbonOutput"
    }

    fn describe(&self, _: &OutputPlan) -> String {
        match self {
            CarbonOutputKind::Tcp(tcp) => format!("tcp {} (one connection per core)", tcp.address),
            CarbonOutputKind::Udp { address, .. } => {
                format!("udp {address} (one socket per core)")
            }
        }
    }

    fn writers(&self) -> Writers {
        Writers::EveryCore
    }

    fn open<'a>(&'a self, core: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        Box::pin(async move {
            match self {
                CarbonOutputKind::Tcp(tcp) => Ok(tcp.open_sender(core)),
                CarbonOutputKind::Udp {
                    address,
                    datagram_bytes_max,
                } => {
                    let sender =
                        super::udp::UdpSender::new(address, &core.output.name, *datagram_bytes_max);
                    Ok(Opened::plain(Rc::new(sender)))
                }
            }
        })
    }
}

/// The graphite plaintext encoder of CarbonOutput.
#[derive(Debug, Clone, Copy)]
pub struct CarbonEncoderKind;

impl EncoderKind for CarbonEncoderKind {
    fn type_name(&self) -> &'static str {
        "carbon lines"
    }

    fn build(&self, _: &GlobalPlan, _: Option<usize>) -> Result<Box<dyn Encode>, String> {
        Ok(Box::new(CarbonEncoderKind))
    }
}

impl Encode for CarbonEncoderKind {
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        _framing: crate::encoder::Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed> {
        let before = out.len();
        crate::stats::carbon::carbon_lines(message, out);
        Ok(out.len() - before)
    }
}
