//! StatsdInput's decoder: parses a datagram's statsd lines and sends each stat, as a stat
//! record, to the StatAccumInput it names, on that filter's core. It is not a section type of
//! its own: a StatsdInput plans it.

use crate::telemetry::Metric;

/// The statsd decoder, planned: its accumulator and datagram bound.
#[derive(Debug, Clone)]
pub struct StatsdDecoderKind {
    /// The StatAccumInput's section name.
    pub accumulator: String,
    /// Bytes of a datagram read at most (Heka's `max_msg_size`).
    pub datagram_bytes_max: usize,
}

impl super::DecoderKind for StatsdDecoderKind {
    fn type_name(&self) -> &'static str {
        "statsd (stats go to their StatAccumInput's core)"
    }

    fn stat_accumulator(&self) -> Option<&str> {
        Some(&self.accumulator)
    }

    fn build(&self, build: &super::DecoderBuild<'_>) -> Result<Box<dyn super::Decoder>, String> {
        let accumulator = (build.filter_index)(&self.accumulator)
            .ok_or_else(|| format!("no StatAccumInput named `{}`", self.accumulator))?;
        let accumulator = u16::try_from(accumulator)
            .map_err(|_| format!("filter index {accumulator} is out of range"))?;
        Ok(Box::new(StatsdDecoder {
            accumulator,
            datagram_bytes_max: self.datagram_bytes_max,
            record: Vec::new(),
        }))
    }
}

/// One core's statsd decoder.
struct StatsdDecoder {
    /// The StatAccumInput, as a filter index.
    accumulator: u16,
    datagram_bytes_max: usize,
    /// Where each stat record is encoded before it is pushed.
    record: Vec<u8>,
}

impl super::Decoder for StatsdDecoder {
    /// Every line that parses becomes a stat record; every line that does not is counted as a
    /// decode failure here (the datagram as a whole never fails).
    fn decode(
        &mut self,
        record: &[u8],
        context: &mut super::DecodeContext<'_>,
    ) -> Result<(), &'static str> {
        let datagram = &record[..record.len().min(self.datagram_bytes_max)];
        for parsed in crate::stats::parse_datagram(datagram) {
            self.record.clear();
            let encoded = parsed.map_err(|_| ()).and_then(|stat| {
                crate::stats::encode_stat(&stat, &mut self.record).map_err(|_| ())
            });
            match encoded {
                Ok(()) => context.router.push_stat(self.accumulator, &self.record),
                Err(()) => {
                    let (core, plugin) = (context.core, context.plugin);
                    context
                        .telemetry
                        .add(core, plugin, Metric::DecodeFailures, 1);
                }
            }
        }
        Ok(())
    }
}
