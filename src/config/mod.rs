//! Loading the config: Heka's TOML, a file or a directory of `*.toml` merged alphabetically,
//! with `%ENV[NAME]` substitution, into a validated [`Plan`].
//!
//! Two phases: [`raw`] holds the serde structs exactly as written; [`plan`] turns them into the
//! checked plan the runtime starts from. Every error names the file, the section and the key.

pub mod delivery;
pub mod global;
pub mod heka_keys;
mod heka_toml;
pub mod plan;
pub mod raw;
mod section;
pub mod tuning;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use plan::Plan;

/// The config `gyges run` uses when given no `-c`.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The name errors use for the embedded default config.
pub const DEFAULT_CONFIG_NAME: &str = "<embedded default config>";

/// A config problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file (or tuning profile, or [`DEFAULT_CONFIG_NAME`]) the problem is in.
    pub file: String,
    /// The section the problem is in; `None` when it is about the whole file.
    pub section: Option<String>,
    /// The key (a dotted path for nested keys) the problem is about; `None` when it is about
    /// the whole section or file.
    pub key: Option<String>,
    /// What is wrong, for the operator.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "config error in {}", self.file)?;
        if let Some(section) = &self.section {
            write!(formatter, ", section [{section}]")?;
        }
        if let Some(key) = &self.key {
            write!(formatter, ", key `{key}`")?;
        }
        write!(formatter, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    pub(crate) fn file(file: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: file.into(),
            section: None,
            key: None,
            message: message.into(),
        }
    }
}

/// One section of the merged config and the file it came from.
#[derive(Debug, Clone)]
pub struct Section {
    /// The file the section was read from, for errors.
    pub file: String,
    /// The section's name: the TOML table header, e.g. `TcpInput` for `[TcpInput]`.
    pub name: String,
    /// The section's keys and values as written, after `%ENV[NAME]` substitution.
    pub table: toml::Table,
}

impl Section {
    /// An error about this section, optionally about one key.
    pub fn error(&self, key: Option<&str>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            section: Some(self.name.clone()),
            key: key.map(str::to_string),
            message: message.into(),
        }
    }

    /// An empty section named `name`, standing for a plugin a section refers to by type name
    /// alone (`encoder = "PayloadEncoder"` with no `[PayloadEncoder]`): its defaults apply.
    pub fn synthetic(referrer: &Section, name: &str) -> Section {
        Section {
            file: referrer.file.clone(),
            name: name.to_string(),
            table: toml::Table::new(),
        }
    }

    /// The plugin type: the `type` key, or else the section name.
    pub fn plugin_type(&self) -> Result<&str, ConfigError> {
        match self.table.get("type") {
            None => Ok(&self.name),
            Some(toml::Value::String(type_)) => Ok(type_),
            Some(_) => Err(self.error(Some("type"), "expected a string")),
        }
    }

    /// Deserializes the section into `T`, naming the offending key on failure.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigError> {
        let value = toml::Value::Table(self.table.clone());
        serde_path_to_error::deserialize(value).map_err(|error| {
            let path = error.path().to_string();
            let inner = error.into_inner().to_string();
            let key = if path.is_empty() || path == "?" || path == "." {
                // serde reports unknown and missing fields at the parent; the name is quoted.
                inner.split('`').nth(1).map(str::to_string)
            } else {
                Some(path)
            };
            self.error(key.as_deref(), inner)
        })
    }
}

/// The merged sections, in file order then section order.
#[derive(Debug, Default)]
pub struct Document {
    /// Every section, in file order then section order; a name appears once.
    pub sections: Vec<Section>,
    /// What was loaded, for messages.
    pub origin: String,
}

/// Loads a file, or every `*.toml` of a directory in alphabetical order.
///
/// # Errors
/// Unreadable files, TOML syntax errors and sections defined twice.
pub fn load_path(path: &Path) -> Result<Document, ConfigError> {
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path)
        .map_err(|error| ConfigError::file(&shown, format!("cannot read: {error}")))?;
    let files: Vec<PathBuf> = if metadata.is_dir() {
        let entries = std::fs::read_dir(path)
            .map_err(|error| ConfigError::file(&shown, format!("cannot list: {error}")))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|file| {
                file.extension()
                    .is_some_and(|extension| extension == "toml")
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(ConfigError::file(
                &shown,
                "the directory has no *.toml files",
            ));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut document = Document {
        sections: Vec::new(),
        origin: shown,
    };
    for file in files {
        let name = file.display().to_string();
        let text = std::fs::read_to_string(&file)
            .map_err(|error| ConfigError::file(&name, format!("cannot read: {error}")))?;
        add_text(&mut document, &name, &text)?;
    }
    Ok(document)
}

/// Parses config text (after `%ENV[NAME]` substitution, and with the names Heka's TOML parser
/// took quoted: [`heka_toml`]) into `document`.
///
/// # Errors
/// TOML syntax errors (with line and column), keys outside a section, duplicate sections.
pub fn add_text(document: &mut Document, file: &str, text: &str) -> Result<(), ConfigError> {
    let text = substitute_env(text);
    let text = heka_toml::normalize(&text);
    let table: toml::Table = text.parse().map_err(|error: toml::de::Error| {
        let position = error.span().map(|span| line_column(&text, span.start));
        let message = error.message().to_string();
        match position {
            Some((line, column)) => ConfigError::file(
                file,
                format!("TOML syntax at line {line}, column {column}: {message}"),
            ),
            None => ConfigError::file(file, format!("TOML syntax: {message}")),
        }
    })?;
    for (name, value) in table {
        let toml::Value::Table(table) = value else {
            return Err(ConfigError {
                file: file.into(),
                section: None,
                key: Some(name),
                message: "every key must be inside a [section]".into(),
            });
        };
        if let Some(earlier) = document
            .sections
            .iter()
            .find(|section| section.name == name)
        {
            return Err(ConfigError {
                file: file.into(),
                section: Some(name),
                key: None,
                message: format!("section already defined in {}", earlier.file),
            });
        }
        document.sections.push(Section {
            file: file.into(),
            name,
            table,
        });
    }
    Ok(())
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |newline| before.len() - newline - 1)
        + 1;
    (line, column)
}

/// Replaces each `%ENV[NAME]` with the environment variable's value (empty when unset), as
/// Heka does before parsing.
pub fn substitute_env(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("%ENV[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 5..];
        match after.find(']') {
            Some(end) if is_env_name(&after[..end]) => {
                out.push_str(&std::env::var(&after[..end]).unwrap_or_default());
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str("%ENV[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

/// Loads and validates the config at `path`, or the embedded default.
///
/// # Errors
/// Any [`ConfigError`].
pub fn load(path: Option<&Path>, overrides: &plan::Overrides) -> Result<Plan, ConfigError> {
    let document = match path {
        Some(path) => load_path(path)?,
        None => {
            let mut document = Document {
                origin: DEFAULT_CONFIG_NAME.into(),
                ..Document::default()
            };
            add_text(&mut document, DEFAULT_CONFIG_NAME, DEFAULT_CONFIG)?;
            document
        }
    };
    plan::build(&document, overrides)
}

/// Sections by name, for lookups while planning.
pub(crate) fn by_name(document: &Document) -> BTreeMap<&str, &Section> {
    document
        .sections
        .iter()
        .map(|section| (section.name.as_str(), section))
        .collect()
}

#[cfg(test)]
mod tests;
