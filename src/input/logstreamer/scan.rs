//! Finding a LogstreamerInput's files and grouping them into streams.
//!
//! A rescan walks `log_directory` (at most [`LOGSTREAMER_SCAN_DEPTH_MAX`] levels and
//! [`LOGSTREAMER_SCAN_FILES_MAX`] entries) and tests each file's path relative to it against
//! `file_match`. A file that matches belongs to the stream named by `differentiator` (each
//! entry is the value of the match group of that name, or else the text itself; with no
//! differentiator every file is in one stream named after the input). Files last modified
//! longer than `oldest_duration` ago are left out.
//!
//! A stream's files are sorted oldest first by `priority`: each entry names a match group,
//! compared as a number (its `translation` value when it has one, `missing` or -1 when the
//! group matched nothing) or else as text; a `^` before the name reverses that group's order.
//! Ties go to the older modification time, then the path. The last file is the one being
//! written.
//!
//! Matching and sorting are pure ([`FileMatch::classify`], [`sort_files`]); only
//! [`FileMatch::scan`] touches the file system (a synchronous walk, on the scanning core, once
//! per `rescan_interval` or when a stream sees its file replaced).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::limits::{LOGSTREAMER_SCAN_DEPTH_MAX, LOGSTREAMER_SCAN_FILES_MAX};

/// One `priority` entry: a match group, in ascending or (`^`) descending order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityKey {
    /// The match group's name.
    pub group: String,
    /// Sort this group's values largest first (`^Seq`).
    pub reverse: bool,
}

/// A value a file is sorted by: numbers sort before text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortValue {
    /// A number, or a translated value.
    Number(i64),
    /// Text that is neither a number nor translated.
    Text(String),
}

/// A translation table: group name → matched text (or `missing`) → sort value.
pub type Translation = BTreeMap<String, BTreeMap<String, i64>>;

/// How files are matched, named into streams and sorted: the planned `file_match`,
/// `differentiator`, `priority` and `translation`.
#[derive(Debug, Clone)]
pub struct FileMatch {
    /// `file_match`, tested against the path relative to `log_directory`.
    pub regex: Regex,
    /// `priority`, in order.
    pub priority: Vec<PriorityKey>,
    /// `differentiator`, in order (empty: one stream, named after the input).
    pub differentiator: Vec<String>,
    /// `translation`.
    pub translation: Translation,
}

/// One file of a stream, as the last scan saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFile {
    /// Its path.
    pub path: PathBuf,
    /// The device it is on.
    pub device: u64,
    /// Its inode.
    pub inode: u64,
    /// Its modification time, in nanoseconds since the epoch.
    pub modified_ns: i64,
    /// Its `priority` values.
    pub sort: Vec<SortValue>,
}

/// What one scan found: each stream's files, oldest first, and what it could not look at.
#[derive(Debug, Default)]
pub struct ScanResult {
    /// Stream name → its files, sorted oldest first.
    pub streams: BTreeMap<String, Vec<FoundFile>>,
    /// Entries left unseen because the scan reached [`LOGSTREAMER_SCAN_FILES_MAX`].
    pub truncated: bool,
    /// The first directory that could not be read, with the error.
    pub error: Option<String>,
}

impl FileMatch {
    /// The stream a relative path belongs to and its sort values, or `None` when it does not
    /// match `file_match`. `input` names the single stream when there is no differentiator.
    pub fn classify(&self, relative: &str, input: &str) -> Option<(String, Vec<SortValue>)> {
        let captures = self.regex.captures(relative)?;
        let group = |name: &str| captures.name(name).map(|found| found.as_str());
        let stream = if self.differentiator.is_empty() {
            input.to_string()
        } else {
            let mut stream = String::new();
            for part in &self.differentiator {
                let is_group = self
                    .regex
                    .capture_names()
                    .flatten()
                    .any(|name| name == part);
                match group(part) {
                    Some(value) if is_group => stream.push_str(value),
                    _ if is_group => {}
                    _ => stream.push_str(part),
                }
            }
            stream
        };
        let sort = self
            .priority
            .iter()
            .map(|key| self.sort_value(&key.group, group(&key.group).unwrap_or("")))
            .collect();
        Some((stream, sort))
    }

    fn sort_value(&self, group: &str, text: &str) -> SortValue {
        let table = self.translation.get(group);
        if let Some(value) = table.and_then(|table| table.get(text)) {
            return SortValue::Number(*value);
        }
        if text.is_empty() {
            let missing = table.and_then(|table| table.get("missing")).copied();
            return SortValue::Number(missing.unwrap_or(-1));
        }
        match text.parse::<i64>() {
            Ok(number) => SortValue::Number(number),
            Err(_) => SortValue::Text(text.to_string()),
        }
    }

    /// Walks `root` and groups the matching files into sorted streams, leaving out files last
    /// modified more than `oldest` before `now`.
    pub fn scan(&self, root: &Path, input: &str, oldest: Duration, now: SystemTime) -> ScanResult {
        let mut result = ScanResult::default();
        let cutoff = now.checked_sub(oldest).unwrap_or(SystemTime::UNIX_EPOCH);
        let cutoff_ns = nanos(cutoff);
        let mut pending = vec![(root.to_path_buf(), 0usize)];
        let mut seen = 0usize;
        while let Some((dir, depth)) = pending.pop() {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) => {
                    result
                        .error
                        .get_or_insert_with(|| format!("{}: {error}", dir.display()));
                    continue;
                }
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > LOGSTREAMER_SCAN_FILES_MAX {
                    result.truncated = true;
                    break;
                }
                let path = entry.path();
                // Follows symbolic links, as a reader of the file would.
                let Ok(metadata) = std::fs::metadata(&path) else {
                    continue;
                };
                if metadata.is_dir() {
                    if depth < LOGSTREAMER_SCAN_DEPTH_MAX {
                        pending.push((path, depth + 1));
                    }
                    continue;
                }
                let modified_ns = metadata.modified().map(nanos).unwrap_or(0);
                if !metadata.is_file() || modified_ns < cutoff_ns {
                    continue;
                }
                let Some(relative) = path.strip_prefix(root).ok().and_then(Path::to_str) else {
                    continue;
                };
                let Some((stream, sort)) = self.classify(relative, input) else {
                    continue;
                };
                let found = FoundFile {
                    path: path.clone(),
                    device: metadata.dev(),
                    inode: metadata.ino(),
                    modified_ns,
                    sort,
                };
                result.streams.entry(stream).or_default().push(found);
            }
        }
        for files in result.streams.values_mut() {
            sort_files(files, &self.priority);
        }
        result
    }
}

/// Nanoseconds since the epoch (0 before it), saturating.
pub fn nanos(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map(|since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Sorts a stream's files oldest first (see the module docs).
pub fn sort_files(files: &mut [FoundFile], priority: &[PriorityKey]) {
    files.sort_by(|a, b| compare(a, b, priority));
}

fn compare(a: &FoundFile, b: &FoundFile, priority: &[PriorityKey]) -> Ordering {
    for (index, key) in priority.iter().enumerate() {
        let order = a.sort.get(index).cmp(&b.sort.get(index));
        let order = if key.reverse { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.modified_ns
        .cmp(&b.modified_ns)
        .then_with(|| a.path.cmp(&b.path))
}

/// Parses `priority` entries (`Seq`, `^Seq`), each naming a match group of `regex`.
///
/// # Errors
/// An entry names no match group of `file_match`; the message names it.
pub fn priority_keys(entries: &[String], regex: &Regex) -> Result<Vec<PriorityKey>, String> {
    let groups: Vec<&str> = regex.capture_names().flatten().collect();
    entries
        .iter()
        .map(|entry| {
            let (reverse, group) = match entry.strip_prefix('^') {
                Some(group) => (true, group),
                None => (false, entry.as_str()),
            };
            if !groups.contains(&group) {
                return Err(format!(
                    "`{entry}`: file_match has no match group `{group}` (it has {groups:?})"
                ));
            }
            Ok(PriorityKey {
                group: group.to_string(),
                reverse,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(regex: &str, priority: &[&str], differentiator: &[&str]) -> FileMatch {
        let regex = Regex::new(regex).expect("a valid test regex");
        let entries: Vec<String> = priority.iter().map(|entry| entry.to_string()).collect();
        FileMatch {
            priority: priority_keys(&entries, &regex).expect("valid keys"),
            regex,
            differentiator: differentiator.iter().map(|part| part.to_string()).collect(),
            translation: Translation::new(),
        }
    }

    fn file(name: &str, file_match: &FileMatch, modified_ns: i64) -> FoundFile {
        let (_, sort) = file_match.classify(name, "input").expect("it matches");
        FoundFile {
            path: PathBuf::from(name),
            device: 1,
            inode: 1,
            modified_ns,
            sort,
        }
    }

    fn order(files: &[FoundFile]) -> Vec<&str> {
        files
            .iter()
            .map(|file| file.path.to_str().expect("utf-8"))
            .collect()
    }

    #[test]
    fn numbered_rotations_sort_oldest_first_with_a_reversed_sequence() {
        let file_match = matcher(r"^app\.log\.?(?P<Seq>\d*)$", &["^Seq"], &[]);
        // Modification times that disagree with the names: the priority decides.
        let mut files = vec![
            file("app.log", &file_match, 1),
            file("app.log.1", &file_match, 3),
            file("app.log.10", &file_match, 2),
            file("app.log.2", &file_match, 4),
        ];
        sort_files(&mut files, &file_match.priority);
        assert_eq!(
            order(&files),
            ["app.log.10", "app.log.2", "app.log.1", "app.log"]
        );
        assert!(file_match.classify("app.log.1.gz", "x").is_none());
    }

    #[test]
    fn dates_sort_ascending_and_ties_go_to_the_modification_time() {
        let file_match = matcher(
            r"^(?P<Year>\d{4})-(?P<Month>\d\d)-(?P<Day>\d\d)-(?P<Name>\w+)\.log$",
            &["Year", "Month", "Day"],
            &[],
        );
        let mut files = vec![
            file("2026-12-02-b.log", &file_match, 9),
            file("2025-01-31-a.log", &file_match, 5),
            file("2026-11-30-a.log", &file_match, 1),
            file("2026-12-02-a.log", &file_match, 7),
        ];
        sort_files(&mut files, &file_match.priority);
        let expected = [
            "2025-01-31-a.log",
            "2026-11-30-a.log",
            "2026-12-02-a.log",
            "2026-12-02-b.log",
        ];
        assert_eq!(order(&files), expected);
    }

    #[test]
    fn the_differentiator_names_streams_from_groups_and_text() {
        let file_match = matcher(
            r"^(?P<Domain>[^/]+)/access\.log\.?(?P<Seq>\d*)$",
            &["^Seq"],
            &["Domain", "-access"],
        );
        let (stream, sort) = file_match
            .classify("example.com/access.log.3", "web")
            .expect("it matches");
        assert_eq!(stream, "example.com-access");
        assert_eq!(sort, [SortValue::Number(3)]);
        let single = matcher(r"^x$", &[], &[]);
        assert_eq!(
            single.classify("x", "web").map(|(name, _)| name),
            Some("web".into())
        );
    }

    #[test]
    fn translations_and_missing_values_and_text() {
        let mut file_match = matcher(r"^log\.?(?P<Month>[A-Za-z]*)$", &["Month"], &[]);
        let months = [("Jan", 1), ("Feb", 2), ("missing", 99)];
        let table = months
            .iter()
            .map(|(name, value)| (name.to_string(), *value));
        file_match
            .translation
            .insert("Month".into(), table.collect());
        let value = |name: &str| file_match.classify(name, "x").map(|(_, sort)| sort);
        assert_eq!(value("log.Feb"), Some(vec![SortValue::Number(2)]));
        assert_eq!(value("log"), Some(vec![SortValue::Number(99)]));
        assert_eq!(value("log.Mar"), Some(vec![SortValue::Text("Mar".into())]));
        assert!(SortValue::Number(i64::MAX) < SortValue::Text(String::new()));
    }

    #[test]
    fn a_priority_naming_no_group_is_refused() {
        let regex = Regex::new(r"^app\.log\.?(?P<Seq>\d*)$").expect("valid");
        let error = priority_keys(&["^Sequence".into()], &regex).expect_err("no such group");
        assert!(error.contains("Sequence"), "{error}");
    }

    #[test]
    fn a_scan_groups_real_files_and_leaves_out_old_ones() {
        let dir = tempfile::tempdir().expect("a temp dir");
        for name in ["a.log", "a.log.1", "b.log", "other.txt"] {
            std::fs::write(dir.path().join(name), name).expect("write");
        }
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/c.log"), "c").expect("write");
        let file_match = matcher(
            r"^(?:sub/)?(?P<Name>[a-z])\.log\.?(?P<Seq>\d*)$",
            &["^Seq"],
            &["Name"],
        );
        let now = SystemTime::now();
        let week = Duration::from_secs(7 * 86_400);
        let result = file_match.scan(dir.path(), "in", week, now);
        let names: Vec<&String> = result.streams.keys().collect();
        assert_eq!(names, ["a", "b", "c"]);
        let a: Vec<_> = result.streams["a"].iter().map(|f| f.path.clone()).collect();
        assert_eq!(a, [dir.path().join("a.log.1"), dir.path().join("a.log")]);
        let later = now + Duration::from_secs(3600);
        let result = file_match.scan(dir.path(), "in", Duration::from_secs(60), later);
        assert!(result.streams.is_empty(), "{:?}", result.streams);
    }
}
