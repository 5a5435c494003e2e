//! SyslogDecoder: the syslog parser ([`super::encode`]) as a decoder kind, so that a TcpInput
//! or UdpInput with `decoder = "SyslogDecoder"` turns each record into a Heka message with the
//! mapping of `docs/syslog.md`. A line that parses as neither RFC is kept whole as the Payload
//! with `Fields[syslog_error]`, routed like any other, and counted (`decode_failures_total`).

use std::sync::Arc;

use serde::Deserialize;

use super::{encode, SyslogContext};
use crate::component::{PlanContext, Registration};
use crate::config::{ConfigError, Section};
use crate::decoder::{DecodeContext, Decoder, DecoderBuild, DecoderKind};
use crate::message::{MessageView, ProtoView};
use crate::telemetry::Metric;

/// How long a cached zone offset is trusted: a daylight-saving change shows within a minute.
const ZONE_REFRESH_NS: i64 = 60 * 1_000_000_000;

/// `SyslogDecoder` as configured.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSyslogDecoder {
    #[serde(rename = "type")]
    _type: Option<String>,
    /// The zone of timestamps written without one (RFC 3164's `Oct 11 22:14:15`, and RFC 3339
    /// readings without an offset), by its zoneinfo name; default: the receiver's local zone.
    tz: Option<String>,
}

/// The SyslogDecoder kind.
#[derive(Debug, Clone)]
pub struct SyslogDecoderKind {
    /// `tz`: the zone of zoneless timestamps; `None` for the receiver's local zone.
    zone: Option<crate::zone::Zone>,
}

/// Its registry line.
pub const REGISTRATION: Registration<Arc<dyn DecoderKind>> = Registration {
    type_names: &["SyslogDecoder"],
    plan: plan_syslog_decoder,
};

fn plan_syslog_decoder(
    section: &Section,
    _: &PlanContext<'_>,
) -> Result<Arc<dyn DecoderKind>, ConfigError> {
    let raw = section.parse::<RawSyslogDecoder>()?;
    let zone = match raw.tz.as_deref() {
        Some(name) => Some(
            crate::zone::Zone::load(name).map_err(|message| section.error(Some("tz"), message))?,
        ),
        None => None,
    };
    Ok(Arc::new(SyslogDecoderKind { zone }))
}

impl DecoderKind for SyslogDecoderKind {
    fn type_name(&self) -> &'static str {
        "SyslogDecoder"
    }

    fn build(&self, build: &DecoderBuild<'_>) -> Result<Box<dyn Decoder>, String> {
        Ok(Box::new(SyslogDecoder {
            message: Vec::with_capacity(build.global.max_message_size),
            zone: self.zone.clone(),
            zone_checked_ns: i64::MIN,
            utc_offset_seconds: 0,
        }))
    }
}

/// One core's syslog decoder: the buffer each message is encoded into, and the local zone's
/// offset (read again once a minute).
struct SyslogDecoder {
    message: Vec<u8>,
    zone: Option<crate::zone::Zone>,
    zone_checked_ns: i64,
    utc_offset_seconds: i32,
}

impl SyslogDecoder {
    /// The receiver's context at `now_ns`: its local year, month and zone.
    fn context(&mut self, now_ns: i64) -> SyslogContext {
        if now_ns.saturating_sub(self.zone_checked_ns) >= ZONE_REFRESH_NS {
            let seconds = now_ns.div_euclid(1_000_000_000);
            self.utc_offset_seconds = match &self.zone {
                Some(zone) => zone.offset_at(seconds),
                None => gyges_sys::clock::utc_offset_seconds(seconds),
            };
            self.zone_checked_ns = now_ns;
        }
        SyslogContext::new(now_ns, self.utc_offset_seconds)
    }
}

impl Decoder for SyslogDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        context: &mut DecodeContext<'_>,
    ) -> Result<(), &'static str> {
        let syslog = self.context(context.now_ns);
        let uuid = context.uuids.next_uuid();
        self.message.clear();
        let encoded = encode(record, &syslog, &uuid, &mut self.message);
        if encoded.error.is_some() {
            // Kept and flagged, never dropped: counted here, routed below.
            let (core, plugin) = (context.core, context.plugin);
            context
                .telemetry
                .add(core, plugin, Metric::DecodeFailures, 1);
        }
        // The message is ours, always well formed (the parser's property tests check it): the
        // view stays lazy, indexed only if a matcher or an encoder reads into it.
        let view = ProtoView::new(&self.message);
        debug_assert!(
            view.validate().is_ok(),
            "the syslog encoder wrote a bad message"
        );
        context.router.route(&MessageView::Proto(view));
        Ok(())
    }

    /// Parses `message`'s Payload as a syslog line; the message it maps to is appended.
    fn decode_message(
        &mut self,
        message: &MessageView<'_>,
        context: &mut DecodeContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), &'static str> {
        let syslog = self.context(context.now_ns);
        let uuid = context.uuids.next_uuid();
        let line = message
            .str_header(crate::message::StrHeader::Payload)
            .unwrap_or_default();
        let mut encoded = None;
        crate::decoder::push_framed(out, |out| {
            encoded = Some(encode(line, &syslog, &uuid, out));
        });
        if encoded.is_some_and(|encoded| encoded.error.is_some()) {
            let (core, plugin) = (context.core, context.plugin);
            context
                .telemetry
                .add(core, plugin, Metric::DecodeFailures, 1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_takes_no_unknown_keys() {
        let mut table = toml::Table::new();
        table.insert("type".into(), "SyslogDecoder".into());
        let section = Section {
            file: "test.toml".into(),
            name: "syslog".into(),
            table: table.clone(),
        };
        assert!(section.parse::<RawSyslogDecoder>().is_ok());
        table.insert("timezone".into(), "UTC".into());
        let section = Section { table, ..section };
        let error = section
            .parse::<RawSyslogDecoder>()
            .expect_err("an unknown key");
        assert_eq!(error.key.as_deref(), Some("timezone"));
    }
}
