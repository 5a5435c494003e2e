//! StatsdInput: statsd over UDP. It is a UdpInput (one SO_REUSEPORT socket per ingest core)
//! whose decoder is the statsd parser ([`crate::decoder::statsd`]): each datagram's stats go
//! to the StatAccumInput it names, on that filter's core. Its options are read by
//! [`crate::stats::config::StatsdInput`], with the other statistics plugins' options.

use std::sync::Arc;

use crate::component::{PlanContext, Registration};
use crate::config::plan::{InputPlan, SplitterPlan};
use crate::config::{ConfigError, Section};
use crate::decoder::statsd::StatsdDecoderKind;

/// Its registry line.
pub const REGISTRATION: Registration<InputPlan> = Registration {
    type_names: &["StatsdInput"],
    plan: plan_statsd_input,
};

fn plan_statsd_input(section: &Section, _: &PlanContext<'_>) -> Result<InputPlan, ConfigError> {
    let settings = section
        .parse::<crate::stats::config::StatsdInput>()?
        .settings()
        .map_err(|error| section.error(Some(&error.key), error.message))?;
    let verifier = crate::message::framing::Verifier::new(std::iter::empty())
        .map_err(|error| section.error(None, error.to_string()))?;
    let kind = super::udp::UdpInputKind {
        address: section.address("address", &settings.address)?,
        set_hostname: false,
    };
    let decoder = StatsdDecoderKind {
        accumulator: settings.stat_accum_name,
        datagram_bytes_max: settings.datagram_bytes_max,
    };
    Ok(InputPlan {
        name: section.name.clone(),
        kind: Arc::new(kind),
        splitter: SplitterPlan::Null,
        decoder: Some(Arc::new(decoder)),
        verifier: Arc::new(verifier),
        log_decode_failures: true,
        send_decode_failures: false,
    })
}
