//! LogstreamerInput: reads rotating log files, Heka's way (`docs/logstreamer.md`).
//!
//! A *stream* is one logical log: the files of `log_directory` that `file_match` matches and
//! `differentiator` names alike, ordered oldest first by `priority` ([`scan`]). Each stream is
//! read by exactly one ingest core, the one at `hash(stream name) % ingest cores` in the plan's
//! list of ingest cores: every ingest core scans the directory itself and keeps only its own
//! streams, so the cores share nothing. A core reads each of its streams with glommio buffered
//! file reads of [`LOGSTREAMER_READ_BYTES`], splits them (TokenSplitter by default) and routes
//! each record as TcpInput does ([`super::deliver_record`]), with `Type` `logfile`, `Logger`
//! the stream's name and `Hostname` the configured one ([`reader`]).
//!
//! Where each stream stands is journaled under `journal_directory` ([`journal`]) every
//! [`crate::limits::LOGSTREAMER_JOURNAL_INTERVAL`] and at stop, and only after the core has
//! settled what it routed (shipped every batch, and waited for the appends of durable routes):
//! a restart resumes there. Rotation by rename and by copytruncate is followed; see
//! [`reader`].

pub mod journal;
pub mod reader;
pub mod scan;

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::InputContext;
use crate::component::{PlanContext, Registration};
use crate::config::plan::InputPlan;
use crate::config::{ConfigError, Section};
use crate::limits::{
    LOGSTREAMER_INTERVAL_MAX, LOGSTREAMER_INTERVAL_MIN, LOGSTREAMER_KEYS_MAX,
    LOGSTREAMER_OLDEST_MAX,
};
use crate::runtime::shard::Shard;
use scan::{FileMatch, Translation};

/// Its registry line.
pub const REGISTRATION: Registration<InputPlan> = Registration {
    type_names: &["LogstreamerInput"],
    plan: plan_logstreamer_input,
};

/// `LogstreamerInput`'s own keys (the common input keys are in [`super::plan::RawCommon`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogstreamerInput {
    /// The directory whose tree is scanned for log files (a symbolic link is followed).
    pub log_directory: String,
    /// A regular expression (RE2 syntax, named groups `(?P<Name>…)`) tested against each
    /// file's path relative to `log_directory`; not anchored unless it says so.
    pub file_match: String,
    /// Match groups that order a stream's files oldest first; `^Name` orders that group
    /// largest first (Heka's `^Seq` for `app.log.2`, `app.log.1`, `app.log`).
    pub priority: Option<Vec<String>>,
    /// The stream name of a file: each entry is a match group's value or, when no group has
    /// that name, the text itself. Without it every file is in one stream named after the
    /// input.
    pub differentiator: Option<Vec<String>>,
    /// Sort values of match group texts: `[name.translation.Month] Jan = 1`; `missing` is the
    /// value when the group matched nothing (default -1).
    pub translation: Option<Translation>,
    /// How often the directory is scanned for new files (a Go duration, default `1m`).
    pub rescan_interval: Option<String>,
    /// Files last modified longer ago than this are left out (default `720h`).
    pub oldest_duration: Option<String>,
    /// How often a stream at the end of its file looks for more (default `250ms`).
    pub check_data_interval: Option<String>,
    /// Where the journals go (default `<base_dir>/logstreamer`).
    pub journal_directory: Option<String>,
    /// A stream with no journal starts at the end of its newest file instead of the start of
    /// its oldest (default false).
    pub initial_tail: Option<bool>,
    /// The Hostname of its messages (default the global `hostname`, the machine's).
    pub hostname: Option<String>,
}

/// LogstreamerInput, planned.
#[derive(Debug, Clone)]
pub struct LogstreamerKind {
    /// The input's section name: the stream's name without a differentiator, and the journal
    /// subdirectory.
    pub name: String,
    /// `log_directory`.
    pub log_directory: PathBuf,
    /// `file_match`, `priority`, `differentiator` and `translation`.
    pub file_match: FileMatch,
    /// `rescan_interval`.
    pub rescan_interval: Duration,
    /// `oldest_duration`.
    pub oldest_duration: Duration,
    /// `check_data_interval`.
    pub check_data_interval: Duration,
    /// `<journal_directory>/<input name>`.
    pub journal_directory: PathBuf,
    /// `initial_tail`.
    pub initial_tail: bool,
    /// The Hostname of its messages.
    pub hostname: String,
    /// The ingest cores (CPUs) in plan order: a stream belongs to the one at its hash.
    pub ingest_cores: Vec<usize>,
}

impl super::InputKind for LogstreamerKind {
    fn type_name(&self) -> &'static str {
        "LogstreamerInput"
    }

    fn describe(&self) -> String {
        format!(
            "files {} matching {}",
            self.log_directory.display(),
            self.file_match.regex.as_str()
        )
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        _receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        let Some(slot) = self.ingest_cores.iter().position(|&cpu| cpu == shard.cpu) else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.journal_directory).map_err(|error| {
            let path = self.journal_directory.display();
            std::io::Error::new(error.kind(), format!("journal_directory {path}: {error}"))
        })?;
        let core = reader::CoreStreams::new(self, shard, input, slot);
        let guard = shard.connection_opened();
        glommio::spawn_local(reader::run(core, guard)).detach();
        Ok(())
    }
}

fn plan_logstreamer_input(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<InputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawLogstreamerInput = own.parse()?;
    let regex = Regex::new(&raw.file_match)
        .map_err(|error| section.error(Some("file_match"), error.to_string()))?;
    let priority = raw.priority.unwrap_or_default();
    let differentiator = raw.differentiator.unwrap_or_default();
    for (key, entries) in [("priority", &priority), ("differentiator", &differentiator)] {
        if entries.len() > LOGSTREAMER_KEYS_MAX {
            let message = format!("{} entries; at most {LOGSTREAMER_KEYS_MAX}", entries.len());
            return Err(section.error(Some(key), message));
        }
    }
    let priority = scan::priority_keys(&priority, &regex)
        .map_err(|message| section.error(Some("priority"), message))?;
    let interval = |key: &str, value: Option<&str>, default: &str, max: Duration| {
        duration(section, key, value.unwrap_or(default), max)
    };
    let global = context.global;
    let journal_root = match raw.journal_directory {
        Some(dir) => PathBuf::from(dir),
        None => global.base_dir.join("logstreamer"),
    };
    let kind = LogstreamerKind {
        name: section.name.clone(),
        log_directory: PathBuf::from(raw.log_directory),
        file_match: FileMatch {
            regex,
            priority,
            differentiator,
            translation: raw.translation.unwrap_or_default(),
        },
        rescan_interval: interval(
            "rescan_interval",
            raw.rescan_interval.as_deref(),
            "1m",
            LOGSTREAMER_INTERVAL_MAX,
        )?,
        oldest_duration: interval(
            "oldest_duration",
            raw.oldest_duration.as_deref(),
            "720h",
            LOGSTREAMER_OLDEST_MAX,
        )?,
        check_data_interval: interval(
            "check_data_interval",
            raw.check_data_interval.as_deref(),
            "250ms",
            LOGSTREAMER_INTERVAL_MAX,
        )?,
        journal_directory: journal_root.join(journal::path_component(&section.name)),
        initial_tail: raw.initial_tail.unwrap_or(false),
        hostname: raw.hostname.unwrap_or_else(|| global.hostname.clone()),
        ingest_cores: global.ingest_cores.clone(),
    };
    let common = common.with_defaults("TokenSplitter", &[]);
    super::plan::input_plan(section, context, common, Arc::new(kind))
}

/// A Go duration (`250ms`, `1m`, `720h`, `1h30m`, `1.5s`) within
/// [`LOGSTREAMER_INTERVAL_MIN`]..=`max`.
///
/// # Errors
/// It does not parse or is out of bounds; the error names `key`.
fn duration(
    section: &Section,
    key: &str,
    text: &str,
    max: Duration,
) -> Result<Duration, ConfigError> {
    let parsed = parse_go_duration(text).ok_or_else(|| {
        let message = format!("`{text}` is not a duration (like \"250ms\", \"1m\", \"720h\")");
        section.error(Some(key), message)
    })?;
    if parsed < LOGSTREAMER_INTERVAL_MIN || parsed > max {
        let message = format!("`{text}` is outside {LOGSTREAMER_INTERVAL_MIN:?}..={max:?}");
        return Err(section.error(Some(key), message));
    }
    Ok(parsed)
}

/// Parses a Go duration: one or more `<number><unit>`, units `ns us µs ms s m h`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let units = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..units] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[units..];
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let cases = [
            ("250ms", Some(Duration::from_millis(250))),
            ("1m", Some(Duration::from_secs(60))),
            ("720h", Some(Duration::from_secs(720 * 3600))),
            ("1h30m", Some(Duration::from_secs(5400))),
            ("1.5s", Some(Duration::from_millis(1500))),
            ("10us", Some(Duration::from_micros(10))),
            ("", None),
            ("10", None),
            ("1d", None),
            ("m", None),
            ("-1s", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_go_duration(text), expected, "{text}");
        }
    }
}
