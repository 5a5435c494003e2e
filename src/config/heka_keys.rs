//! Heka's options that every plugin of a stage may carry and that gyges takes without doing
//! what Heka did with them. Their values are still checked (a `retries` table with a bad
//! duration fails at startup like any other key), and each one present gives one startup line
//! naming the file, the section and the key, so an operator moving a Heka config over sees
//! every difference once. `docs/heka-differences.md` has the rows.

use serde::Deserialize;

use super::Section;

/// Heka's `[name.retries]` table: how a plugin retried a failed start or connection.
///
/// gyges's inputs and outputs retry on their own bounded exponential backoff, forever, so the
/// values are checked for shape and otherwise unused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetries {
    /// The largest random jitter added to a delay (a Go duration, e.g. `"500ms"`).
    pub max_jitter: Option<GoDuration>,
    /// The largest delay between attempts (e.g. `"30s"`).
    pub max_delay: Option<GoDuration>,
    /// The first delay, doubled after each failed attempt (e.g. `"250ms"`).
    pub delay: Option<GoDuration>,
    /// Attempts before giving up; -1 is forever, 0 none.
    pub max_retries: Option<i64>,
}

/// A Go duration string (`250ms`, `1m30s`), checked when the config is read.
#[derive(Debug)]
pub struct GoDuration(pub std::time::Duration);

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        crate::input::logstreamer::parse_go_duration(&text)
            .map(GoDuration)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration (like \"250ms\", \"30s\", \"1m\")"
                ))
            })
    }
}

/// The stage a plugin section belongs to, for which keys apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// An input.
    Input,
    /// A filter.
    Filter,
    /// An output.
    Output,
}

/// One Heka key that gyges takes but treats its own way, and what it does instead.
struct Difference {
    key: &'static str,
    stages: &'static [Stage],
    /// Only when the plugin type is one of these (empty: any type of the stage).
    only_types: &'static [&'static str],
    /// Never for these plugin types (they use the key as Heka did).
    except_types: &'static [&'static str],
    instead: &'static str,
}

const SANDBOXES: &[&str] = &["SandboxFilter", "SandboxInput", "SandboxOutput"];

static DIFFERENCES: &[Difference] = &[
    Difference {
        key: "can_exit",
        stages: &[Stage::Input, Stage::Filter, Stage::Output],
        only_types: &[],
        except_types: &[],
        instead: "a plugin that stops never stops the daemon in gyges: it is logged, \
                  counted, and the rest runs on",
    },
    Difference {
        key: "retries",
        stages: &[Stage::Input, Stage::Filter, Stage::Output],
        only_types: &[],
        except_types: &[],
        instead: "gyges retries connections on its own bounded exponential backoff, and never \
                  gives up; the values are checked and otherwise unused",
    },
    Difference {
        key: "ticker_interval",
        stages: &[Stage::Input, Stage::Output],
        only_types: &[],
        except_types: &[
            "StatAccumInput",
            "SandboxInput",
            "SandboxOutput",
            "FilePollingInput",
        ],
        instead: "this plugin runs no timer in gyges; the value is checked and otherwise unused",
    },
    Difference {
        key: "synchronous_decode",
        stages: &[Stage::Input],
        only_types: &[],
        except_types: &[],
        instead: "decoding always runs on the input's own core, in order",
    },
    Difference {
        key: "address",
        stages: &[Stage::Output],
        only_types: &["DashboardOutput"],
        except_types: &[],
        instead: "serves the dashboard (with /metrics, /health and /report) when the global \
                  section has no `http_address`; with one, it is checked and unused",
    },
    Difference {
        key: "working_directory",
        stages: &[Stage::Output],
        only_types: &["DashboardOutput"],
        except_types: &[],
        instead: "the dashboard keeps its graphs in memory and writes no files",
    },
    Difference {
        key: "static_directory",
        stages: &[Stage::Output],
        only_types: &["DashboardOutput"],
        except_types: &[],
        instead: "the dashboard page is built into the binary; no static files are read",
    },
    Difference {
        key: "headers",
        stages: &[Stage::Output],
        only_types: &["DashboardOutput"],
        except_types: &[],
        instead: "the HTTP endpoint sends its own fixed headers; these are checked and otherwise \
                  unused",
    },
    Difference {
        key: "profile",
        stages: &[Stage::Input, Stage::Filter, Stage::Output],
        only_types: SANDBOXES,
        except_types: &[],
        instead: "gyges's Lua sandbox has no profiler; the stop report gives each sandbox's \
                  instruction and memory use",
    },
];

/// A one-line startup notice about a Heka key that gyges treats its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The config file the key is in.
    pub file: String,
    /// The section the key is in.
    pub section: String,
    /// The key.
    pub key: &'static str,
    /// What gyges does instead of what Heka did.
    pub instead: &'static str,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{}, section [{}], key `{}`: accepted from Heka; {}",
            self.file, self.section, self.key, self.instead
        )
    }
}

/// The notices for `section`, a plugin of `stage` and type `type_name`.
pub fn notices(section: &Section, stage: Stage, type_name: &str) -> Vec<Notice> {
    DIFFERENCES
        .iter()
        .filter(|difference| difference.stages.contains(&stage))
        .filter(|difference| {
            difference.only_types.is_empty() || difference.only_types.contains(&type_name)
        })
        .filter(|difference| !difference.except_types.contains(&type_name))
        .filter(|difference| section.table.contains_key(difference.key))
        .map(|difference| Notice {
            file: section.file.clone(),
            section: section.name.clone(),
            key: difference.key,
            instead: difference.instead,
        })
        .collect()
}
