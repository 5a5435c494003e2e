//! The config sections of the statistics plugins, with Heka's option names and defaults.
//!
//! Each struct denies unknown keys and turns into checked settings with `settings()`, whose
//! errors name the key at fault; the runtime's config loader wraps them with the file and
//! section (`Section::parse::<StatAccumInput>()?.settings()`). Options Heka had that gyges
//! accepts without a use are documented as such.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::accumulator::AccumulatorSettings;
use super::carbon::{CarbonProtocol, CarbonSettings};
use super::counter::{COUNTER_MATCHER_DEFAULT, COUNTER_TICKER_INTERVAL_SECONDS_DEFAULT};
use super::stat_filter::{MetricKind, MetricSettings, StatFilter as CompiledStatFilter};
use crate::limits::{
    CARBON_DATAGRAM_BYTES_DEFAULT, CARBON_DATAGRAM_BYTES_MAX, CARBON_DATAGRAM_BYTES_MIN,
    PERCENT_THRESHOLDS_MAX, STATSD_DATAGRAM_BYTES_DEFAULT, STATSD_DATAGRAM_BYTES_MAX,
    STAT_PREFIX_BYTES_MAX, STAT_TICKER_INTERVAL_SECONDS_MAX,
};

/// The StatAccumInput a StatsdInput or StatFilter feeds when none is named.
pub const STAT_ACCUM_NAME_DEFAULT: &str = "StatAccumInput";

/// A value that does not make sense, and the key it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct StatsConfigError {
    /// The option's key, such as `ticker_interval` or `Metric.<id>.type`.
    pub key: String,
    /// What is wrong with the value, for the operator.
    pub message: String,
}

fn error(key: &str, message: impl Into<String>) -> StatsConfigError {
    StatsConfigError {
        key: key.into(),
        message: message.into(),
    }
}

/// `StatsdInput`: statsd over UDP, parsed on every ingest core.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsdInput {
    /// The plugin type, `StatsdInput`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// `host:port` to listen on (default `127.0.0.1:8125`).
    pub address: Option<String>,
    /// The StatAccumInput that receives the stats (default `StatAccumInput`).
    pub stat_accum_name: Option<String>,
    /// Bytes read per datagram (default 512, at most 65507); the rest of a longer datagram
    /// is lost, as in Heka.
    pub max_msg_size: Option<u64>,
    /// Accepted for Heka compatibility: inputs may always stop on their own.
    pub can_exit: Option<bool>,
}

/// StatsdInput's checked settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsdInputSettings {
    /// `host:port` to listen on.
    pub address: String,
    /// The section name of the StatAccumInput that receives the stats.
    pub stat_accum_name: String,
    /// Bytes read per datagram (`max_msg_size`); the rest of a longer datagram is lost.
    pub datagram_bytes_max: usize,
}

impl StatsdInput {
    /// Checks the options and fills in Heka's defaults.
    ///
    /// # Errors
    /// An empty address or name, or `max_msg_size` out of range.
    pub fn settings(&self) -> Result<StatsdInputSettings, StatsConfigError> {
        let address = non_empty("address", self.address.as_deref(), "127.0.0.1:8125")?;
        let stat_accum_name = non_empty(
            "stat_accum_name",
            self.stat_accum_name.as_deref(),
            STAT_ACCUM_NAME_DEFAULT,
        )?;
        let datagram_bytes_max = match self.max_msg_size {
            None => STATSD_DATAGRAM_BYTES_DEFAULT,
            Some(size) if size >= 1 && size <= STATSD_DATAGRAM_BYTES_MAX as u64 => size as usize,
            Some(size) => {
                return Err(error(
                    "max_msg_size",
                    format!("{size} is not within 1..={STATSD_DATAGRAM_BYTES_MAX}"),
                ))
            }
        };
        Ok(StatsdInputSettings {
            address,
            stat_accum_name,
            datagram_bytes_max,
        })
    }
}

/// `percent_threshold`: a list, or (as older Heka configs wrote it) one number.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum PercentThreshold {
    /// A single percentile, as older Heka configs wrote it.
    One(i64),
    /// A list of percentiles.
    Many(Vec<i64>),
}

/// `StatAccumInput`: rolls stats up every `ticker_interval` into a `heka.statmetric` message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatAccumInput {
    /// The plugin type, `StatAccumInput`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Graphite lines in the Payload (default true).
    pub emit_in_payload: Option<bool>,
    /// One field per line (default false). One of the two must be true.
    pub emit_in_fields: Option<bool>,
    /// Timer percentiles, each 0..=100 (default `[90]`).
    pub percent_threshold: Option<PercentThreshold>,
    /// Type of the rollup message (default `heka.statmetric`).
    pub message_type: Option<String>,
    /// Seconds between rollups (default 10, at least 1).
    pub ticker_interval: Option<u64>,
    /// Counters as `<global_prefix>.<name>` and `stats_counts.<name>` (default false).
    pub legacy_namespaces: Option<bool>,
    /// Default `stats`.
    pub global_prefix: Option<String>,
    /// Default `counters`; unused with `legacy_namespaces`.
    pub counter_prefix: Option<String>,
    /// Default `timers`.
    pub timer_prefix: Option<String>,
    /// Default `gauges`.
    pub gauge_prefix: Option<String>,
    /// Default `sets` (gyges: Heka had no sets).
    pub set_prefix: Option<String>,
    /// Prefix of `numStats` (default `statsd`).
    pub statsd_prefix: Option<String>,
    /// Emit only the stats updated during the interval (default false).
    pub delete_idle_stats: Option<bool>,
    /// Accepted for Heka compatibility: inputs may always stop on their own.
    pub can_exit: Option<bool>,
}

impl StatAccumInput {
    /// Checks the options and fills in Heka's defaults.
    ///
    /// # Errors
    /// Both emits off, an interval or percentile out of range, too many percentiles, a prefix
    /// too long or holding spaces or control bytes.
    pub fn settings(&self) -> Result<AccumulatorSettings, StatsConfigError> {
        let defaults = AccumulatorSettings::default();
        let emit_in_payload = self.emit_in_payload.unwrap_or(defaults.emit_in_payload);
        let emit_in_fields = self.emit_in_fields.unwrap_or(defaults.emit_in_fields);
        if !emit_in_payload && !emit_in_fields {
            return Err(error(
                "emit_in_payload",
                "one of emit_in_payload and emit_in_fields must be true",
            ));
        }
        let ticker_interval_seconds = ticker_interval(
            self.ticker_interval,
            u64::from(defaults.ticker_interval_seconds),
        )?;
        let percent_thresholds = match &self.percent_threshold {
            None => defaults.percent_thresholds.clone(),
            Some(PercentThreshold::One(percent)) => vec![percent_value(*percent)?],
            Some(PercentThreshold::Many(percents)) => {
                if percents.len() > PERCENT_THRESHOLDS_MAX {
                    return Err(error(
                        "percent_threshold",
                        format!(
                            "{} entries; at most {PERCENT_THRESHOLDS_MAX}",
                            percents.len()
                        ),
                    ));
                }
                percents
                    .iter()
                    .map(|&percent| percent_value(percent))
                    .collect::<Result<_, _>>()?
            }
        };
        let text = |key: &str, value: &Option<String>, default: &str| {
            let value = value.as_deref().unwrap_or(default);
            check_prefix(key, value).map(|()| value.to_string())
        };
        Ok(AccumulatorSettings {
            ticker_interval_seconds: ticker_interval_seconds as u32,
            emit_in_payload,
            emit_in_fields,
            percent_thresholds,
            message_type: text("message_type", &self.message_type, &defaults.message_type)?,
            legacy_namespaces: self.legacy_namespaces.unwrap_or(defaults.legacy_namespaces),
            global_prefix: text(
                "global_prefix",
                &self.global_prefix,
                &defaults.global_prefix,
            )?,
            counter_prefix: text(
                "counter_prefix",
                &self.counter_prefix,
                &defaults.counter_prefix,
            )?,
            timer_prefix: text("timer_prefix", &self.timer_prefix, &defaults.timer_prefix)?,
            gauge_prefix: text("gauge_prefix", &self.gauge_prefix, &defaults.gauge_prefix)?,
            set_prefix: text("set_prefix", &self.set_prefix, &defaults.set_prefix)?,
            statsd_prefix: text(
                "statsd_prefix",
                &self.statsd_prefix,
                &defaults.statsd_prefix,
            )?,
            delete_idle_stats: self.delete_idle_stats.unwrap_or(defaults.delete_idle_stats),
        })
    }
}

fn percent_value(percent: i64) -> Result<u8, StatsConfigError> {
    u8::try_from(percent)
        .ok()
        .filter(|percent| *percent <= 100)
        .ok_or_else(|| {
            error(
                "percent_threshold",
                format!("{percent} is not within 0..=100"),
            )
        })
}

fn check_prefix(key: &str, value: &str) -> Result<(), StatsConfigError> {
    if value.len() > STAT_PREFIX_BYTES_MAX {
        return Err(error(
            key,
            format!("longer than {STAT_PREFIX_BYTES_MAX} bytes"),
        ));
    }
    if value.bytes().any(|byte| byte <= b' ' || byte == 0x7f) {
        return Err(error(key, "may not hold spaces or control characters"));
    }
    Ok(())
}

fn ticker_interval(value: Option<u64>, default: u64) -> Result<u64, StatsConfigError> {
    match value {
        None => Ok(default),
        Some(seconds) if (1..=STAT_TICKER_INTERVAL_SECONDS_MAX).contains(&seconds) => Ok(seconds),
        Some(seconds) => Err(error(
            "ticker_interval",
            format!("{seconds} is not within 1..={STAT_TICKER_INTERVAL_SECONDS_MAX} seconds"),
        )),
    }
}

fn non_empty(key: &str, value: Option<&str>, default: &str) -> Result<String, StatsConfigError> {
    match value {
        None => Ok(default.into()),
        Some("") => Err(error(key, "may not be empty")),
        Some(value) => Ok(value.into()),
    }
}

/// One `[name.Metric.<id>]` subsection of a StatFilter.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// `Counter`, `Timer` or `Gauge`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Name template, with `%Header%` and `%field%` placeholders.
    pub name: String,
    /// Value template; must read as a number once interpolated.
    pub value: String,
    /// Replace `.` by `_` in the values substituted into the name (default false).
    pub replace_dot: Option<bool>,
}

/// `StatFilter`: makes stats from matched messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatFilter {
    /// The plugin type, `StatFilter`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Which messages to read (a filter without one reads nothing, as in Heka).
    pub message_matcher: Option<String>,
    /// Heka's filter on the signer of matched messages; not supported yet: the config is refused
    /// when it is set.
    pub message_signer: Option<String>,
    /// Accepted for Heka compatibility; StatFilter has no timer.
    pub ticker_interval: Option<u64>,
    /// Accepted for Heka compatibility, and unused: this filter cannot fail at run time.
    pub can_exit: Option<bool>,
    /// The StatAccumInput that receives the stats (default `StatAccumInput`).
    pub stat_accum_name: Option<String>,
    /// The metrics, by id; evaluated in id order.
    #[serde(rename = "Metric")]
    pub metric: Option<BTreeMap<String, Metric>>,
}

/// StatFilter's checked settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatFilterSettings {
    /// Which messages to read; `None` reads nothing, as in Heka.
    pub message_matcher: Option<String>,
    /// The `message_signer` option: only messages this signer signed reach the plugin.
    pub message_signer: Option<String>,
    /// The section name of the StatAccumInput that receives the stats.
    pub stat_accum_name: String,
    /// The metrics, checked and in id order.
    pub metrics: Vec<MetricSettings>,
}

impl StatFilter {
    /// Checks the options and metric types, and that the templates compile.
    ///
    /// # Errors
    /// An unknown metric type, or a template [`CompiledStatFilter::new`] refuses.
    pub fn settings(&self) -> Result<StatFilterSettings, StatsConfigError> {
        let mut metrics = Vec::new();
        for (id, metric) in self.metric.iter().flatten() {
            let kind = MetricKind::from_name(&metric.type_).ok_or_else(|| {
                error(
                    &format!("Metric.{id}.type"),
                    format!("`{}` is not Counter, Timer or Gauge", metric.type_),
                )
            })?;
            metrics.push(MetricSettings {
                id: id.clone(),
                kind,
                name: metric.name.clone(),
                value: metric.value.clone(),
                replace_dot: metric.replace_dot.unwrap_or(false),
            });
        }
        CompiledStatFilter::new(&metrics)
            .map_err(|problem| error("Metric", problem.to_string()))?;
        Ok(StatFilterSettings {
            message_matcher: self.message_matcher.clone(),
            message_signer: self.message_signer.clone(),
            stat_accum_name: non_empty(
                "stat_accum_name",
                self.stat_accum_name.as_deref(),
                STAT_ACCUM_NAME_DEFAULT,
            )?,
            metrics,
        })
    }
}

/// `CounterFilter`: counts matched messages, reports each `ticker_interval`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterFilter {
    /// The plugin type, `CounterFilter`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Default `Type != 'heka.counter-output'`.
    pub message_matcher: Option<String>,
    /// Heka's filter on the signer of matched messages; not supported yet: the config is refused
    /// when it is set.
    pub message_signer: Option<String>,
    /// Seconds between reports (default 5).
    pub ticker_interval: Option<u64>,
    /// Accepted for Heka compatibility, and unused: this filter cannot fail at run time.
    pub can_exit: Option<bool>,
}

/// CounterFilter's checked settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CounterFilterSettings {
    /// Which messages to count (default `Type != 'heka.counter-output'`, so its reports are not
    /// counted).
    pub message_matcher: String,
    /// The `message_signer` option: only messages this signer signed reach the plugin.
    pub message_signer: Option<String>,
    /// Seconds between reports (`ticker_interval`, default 5).
    pub ticker_interval_seconds: u64,
}

impl CounterFilter {
    /// Checks the options and fills in Heka's defaults.
    ///
    /// # Errors
    /// `ticker_interval` out of range.
    pub fn settings(&self) -> Result<CounterFilterSettings, StatsConfigError> {
        Ok(CounterFilterSettings {
            message_matcher: self
                .message_matcher
                .clone()
                .unwrap_or_else(|| COUNTER_MATCHER_DEFAULT.into()),
            message_signer: self.message_signer.clone(),
            ticker_interval_seconds: ticker_interval(
                self.ticker_interval,
                COUNTER_TICKER_INTERVAL_SECONDS_DEFAULT,
            )?,
        })
    }
}

/// `CarbonOutput`: sends statmetric lines to carbon over TCP or UDP.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarbonOutput {
    /// The plugin type, `CarbonOutput`; when absent the section name is the type.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Usually `Type == 'heka.statmetric'`.
    pub message_matcher: Option<String>,
    /// Heka's filter on the signer of matched messages; not supported yet: the config is refused
    /// when it is set.
    pub message_signer: Option<String>,
    /// `host:port` (default `localhost:2003`).
    pub address: Option<String>,
    /// `tcp` (default) or `udp`.
    pub protocol: Option<String>,
    /// Keep the TCP connection open between messages (default false).
    pub tcp_keep_alive: Option<bool>,
    /// Bytes per UDP datagram at most (gyges; default 63488, Heka's split point).
    pub max_datagram_size: Option<u64>,
    /// Accepted for Heka compatibility, and unused: lines are sent as they come.
    pub ticker_interval: Option<u64>,
    /// Accepted for Heka compatibility, and unused.
    pub can_exit: Option<bool>,
    /// A disk queue for this output; not available yet: `true` is refused.
    pub use_buffering: Option<bool>,
    /// `"memory"` (default) or `"best_effort"`; see `docs/delivery.md`.
    pub delivery: Option<String>,
}

/// CarbonOutput's checked settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CarbonOutputSettings {
    /// Which messages to send; `None` takes Heka's default, `Type == 'heka.statmetric'`.
    pub message_matcher: Option<String>,
    /// The `message_signer` option: only messages this signer signed reach the plugin.
    pub message_signer: Option<String>,
    /// Where and how to send the lines.
    pub carbon: CarbonSettings,
}

impl CarbonOutput {
    /// Checks the options and fills in Heka's defaults.
    ///
    /// # Errors
    /// An unknown protocol, an empty address, `max_datagram_size` out of range.
    pub fn settings(&self) -> Result<CarbonOutputSettings, StatsConfigError> {
        let protocol = match self.protocol.as_deref() {
            None | Some("") | Some("tcp") => CarbonProtocol::Tcp,
            Some("udp") => CarbonProtocol::Udp,
            Some(other) => {
                return Err(error(
                    "protocol",
                    format!("`{other}` is not a supported protocol, must be \"tcp\" or \"udp\""),
                ))
            }
        };
        let datagram_bytes_max = match self.max_datagram_size {
            None => CARBON_DATAGRAM_BYTES_DEFAULT,
            Some(size)
                if (CARBON_DATAGRAM_BYTES_MIN as u64..=CARBON_DATAGRAM_BYTES_MAX as u64)
                    .contains(&size) =>
            {
                size as usize
            }
            Some(size) => {
                return Err(error(
                    "max_datagram_size",
                    format!(
                        "{size} is not within \
                         {CARBON_DATAGRAM_BYTES_MIN}..={CARBON_DATAGRAM_BYTES_MAX}"
                    ),
                ))
            }
        };
        Ok(CarbonOutputSettings {
            message_matcher: self.message_matcher.clone(),
            message_signer: self.message_signer.clone(),
            carbon: CarbonSettings {
                address: non_empty("address", self.address.as_deref(), "localhost:2003")?,
                protocol,
                tcp_keep_alive: self.tcp_keep_alive.unwrap_or(false),
                datagram_bytes_max,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    #[test]
    fn defaults_are_hekas() {
        let statsd = parse::<StatsdInput>("").expect("empty is valid").settings();
        assert_eq!(
            statsd,
            Ok(StatsdInputSettings {
                address: "127.0.0.1:8125".into(),
                stat_accum_name: "StatAccumInput".into(),
                datagram_bytes_max: 512,
            })
        );
        let accumulator = parse::<StatAccumInput>("")
            .expect("empty is valid")
            .settings();
        assert_eq!(accumulator, Ok(AccumulatorSettings::default()));
        let counter = parse::<CounterFilter>("")
            .expect("empty is valid")
            .settings();
        assert_eq!(
            counter,
            Ok(CounterFilterSettings {
                message_matcher: "Type != 'heka.counter-output'".into(),
                message_signer: None,
                ticker_interval_seconds: 5,
            })
        );
        let carbon = parse::<CarbonOutput>("")
            .expect("empty is valid")
            .settings();
        assert_eq!(
            carbon.map(|settings| settings.carbon),
            Ok(CarbonSettings::default())
        );
    }

    #[test]
    fn heka_examples_parse() {
        let accumulator: StatAccumInput = parse(
            "emit_in_fields = true\ndelete_idle_stats = true\nticker_interval = 5\n\
             percent_threshold = [50, 99]\nlegacy_namespaces = true",
        )
        .expect("valid");
        let settings = accumulator.settings().expect("valid");
        assert!(settings.emit_in_fields && settings.emit_in_payload && settings.delete_idle_stats);
        assert_eq!(settings.ticker_interval_seconds, 5);
        assert_eq!(settings.percent_thresholds, vec![50, 99]);
        let older: StatAccumInput = parse("percent_threshold = 95").expect("valid");
        assert_eq!(older.settings().map(|s| s.percent_thresholds), Ok(vec![95]));

        let filter: StatFilter = parse(
            r#"
            type = "StatFilter"
            message_matcher = 'Type == "ApacheLogfile"'
            [Metric.bandwidth]
            type = "Counter"
            name = "httpd.bytes.%Hostname%"
            value = "%Bytes%"
            [Metric.method_counts]
            type = "Counter"
            name = "httpd.hits.%Method%.%Hostname%"
            value = "1"
            replace_dot = true
            "#,
        )
        .expect("valid");
        let settings = filter.settings().expect("valid");
        assert_eq!(settings.metrics.len(), 2);
        assert_eq!(settings.metrics[0].id, "bandwidth");
        assert!(settings.metrics[1].replace_dot);
        assert_eq!(settings.stat_accum_name, "StatAccumInput");

        let carbon: CarbonOutput = parse(
            "message_matcher = \"Type == 'heka.statmetric'\"\naddress = \"localhost:2003\"\n\
             protocol = \"udp\"",
        )
        .expect("valid");
        assert_eq!(
            carbon.settings().map(|s| s.carbon.protocol),
            Ok(CarbonProtocol::Udp)
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let key_of = |result: Result<(), StatsConfigError>| result.err().map(|error| error.key);
        let accumulator = |text: &str| {
            key_of(
                parse::<StatAccumInput>(text)
                    .expect("parses")
                    .settings()
                    .map(|_| ()),
            )
        };
        assert_eq!(
            accumulator("emit_in_payload = false"),
            Some("emit_in_payload".into())
        );
        assert_eq!(
            accumulator("ticker_interval = 0"),
            Some("ticker_interval".into())
        );
        assert_eq!(
            accumulator("percent_threshold = [101]"),
            Some("percent_threshold".into())
        );
        assert_eq!(
            accumulator("percent_threshold = -5"),
            Some("percent_threshold".into())
        );
        let many = format!(
            "percent_threshold = [{}]",
            vec!["1"; PERCENT_THRESHOLDS_MAX + 1].join(",")
        );
        assert_eq!(accumulator(&many), Some("percent_threshold".into()));
        assert_eq!(
            accumulator("global_prefix = \"a b\""),
            Some("global_prefix".into())
        );
        assert_eq!(
            key_of(
                parse::<StatsdInput>("max_msg_size = 0")
                    .expect("parses")
                    .settings()
                    .map(|_| ())
            ),
            Some("max_msg_size".into())
        );
        assert_eq!(
            key_of(
                parse::<CarbonOutput>("protocol = \"sctp\"")
                    .expect("parses")
                    .settings()
                    .map(|_| ())
            ),
            Some("protocol".into())
        );
        assert_eq!(
            key_of(
                parse::<CarbonOutput>("max_datagram_size = 100")
                    .expect("parses")
                    .settings()
                    .map(|_| ())
            ),
            Some("max_datagram_size".into())
        );
        let filter = "[Metric.x]\ntype = \"Histogram\"\nname = \"a\"\nvalue = \"1\"";
        assert_eq!(
            key_of(
                parse::<StatFilter>(filter)
                    .expect("parses")
                    .settings()
                    .map(|_| ())
            ),
            Some("Metric.x.type".into())
        );
        let filter = "[Metric.x]\ntype = \"Counter\"\nname = \"\"\nvalue = \"1\"";
        assert_eq!(
            key_of(
                parse::<StatFilter>(filter)
                    .expect("parses")
                    .settings()
                    .map(|_| ())
            ),
            Some("Metric".into())
        );
        // Unknown keys are refused by serde, at any level.
        assert!(parse::<StatsdInput>("adress = \"x\"").is_err());
        assert!(parse::<StatFilter>(
            "[Metric.x]\ntype = \"Counter\"\nname = \"a\"\nvalue = \"1\"\nunit = \"ms\""
        )
        .is_err());
    }
}
