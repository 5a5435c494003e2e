//! `gyges queue`: each disk queue's segments and bytes, and each consumer's cursor and lag in
//! bytes and records, read from the files with plain blocking I/O.
//!
//! It changes nothing, so it is safe on a stopped daemon's files (the case it is made for) and
//! harmless on a running one, whose numbers it shows as of a moment. It also says what the
//! next start will do: cut a torn tail, move a checkpoint, forget a consumer that is no longer
//! configured.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, Document};
use crate::queue::recovery::{self, CheckpointState, Inspection};
use crate::queue::segment;

/// How deep below the given directory source queues are looked for
/// (`<queue_dir>/<queue>/<core>` is two levels).
const SEARCH_DEPTH_MAX: usize = 3;
/// Segments listed one by one per queue; more are summarised.
const SEGMENTS_SHOWN_MAX: usize = 12;
/// Bytes read at once while checking a tail segment.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

/// Arguments of `gyges queue`.
#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    /// A TOML config file or directory: shows the queues under its `queue_dir` (default: the
    /// embedded default config's, `./gyges-data/queue`).
    #[arg(short = 'c', long = "config", conflicts_with = "dir")]
    pub config: Option<PathBuf>,
    /// A directory to look in instead: a `queue_dir`, one queue, or one core's queue.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// What the config says about queues.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ConfiguredQueues {
    /// The config's `queue_dir`, where the durable queues live.
    pub queue_dir: PathBuf,
    /// Sections with `use_buffering = true` or `delivery = "durable"`: the consumers the
    /// next start keeps.
    pub consumers: Vec<String>,
}

/// `gyges queue`: prints the report and exits 0, or an error and exits 1.
pub fn run(args: &QueueArgs) -> ExitCode {
    let (root, configured) = match &args.dir {
        Some(dir) => (dir.clone(), None),
        None => match configured_queues(args.config.as_deref()) {
            Ok(configured) => (configured.queue_dir.clone(), Some(configured)),
            Err(error) => {
                eprintln!("gyges: {error}");
                return ExitCode::from(1);
            }
        },
    };
    match report(&root, configured.as_ref()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("gyges: {error}");
            ExitCode::from(1)
        }
    }
}

/// Reads the queue directory and the durable consumers from a config (or the embedded default).
///
/// # Errors
/// The config cannot be read or parsed, or a queue key has the wrong type.
pub fn configured_queues(path: Option<&Path>) -> Result<ConfiguredQueues, String> {
    let document = match path {
        Some(path) => config::load_path(path).map_err(|error| error.to_string())?,
        None => {
            let mut document = Document::default();
            config::add_text(
                &mut document,
                config::DEFAULT_CONFIG_NAME,
                config::DEFAULT_CONFIG,
            )
            .map_err(|error| error.to_string())?;
            document
        }
    };
    let global = document
        .sections
        .iter()
        .find(|section| section.name == "gyges" || section.name == "hekad");
    let text_key = |key: &str| -> Result<Option<String>, String> {
        match global.and_then(|section| section.table.get(key)) {
            None => Ok(None),
            Some(toml::Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(format!("`{key}` in the global section must be a string")),
        }
    };
    let base_dir = PathBuf::from(text_key("base_dir")?.unwrap_or_else(|| "./gyges-data".into()));
    let queue_dir = match text_key("queue_dir")? {
        Some(dir) => PathBuf::from(dir),
        None => base_dir.join("queue"),
    };
    let consumers = document
        .sections
        .iter()
        .filter(|section| {
            let table = &section.table;
            table.get("use_buffering") == Some(&toml::Value::Boolean(true))
                || table.get("delivery") == Some(&toml::Value::String("durable".into()))
        })
        .map(|section| section.name.clone())
        .collect();
    Ok(ConfiguredQueues {
        queue_dir,
        consumers,
    })
}

/// The report for every source queue under `root`.
///
/// # Errors
/// `root` does not exist or a queue cannot be read.
pub fn report(root: &Path, configured: Option<&ConfiguredQueues>) -> Result<String, String> {
    if !root.is_dir() {
        return Err(format!(
            "no queue directory at {} (nothing has been queued there yet?)",
            root.display()
        ));
    }
    let mut queues = Vec::new();
    find_source_queues(root, 0, &mut queues)
        .map_err(|error| format!("cannot list {}: {error}", root.display()))?;
    queues.sort();
    let mut out = String::new();
    let _ = writeln!(out, "queue dir: {}", root.display());
    if queues.is_empty() {
        let _ = writeln!(out, "no queues");
    }
    for dir in queues {
        let inspection = recovery::inspect(&dir, SCAN_CHUNK_BYTES)
            .map_err(|error| format!("cannot read the queue in {}: {error}", dir.display()))?;
        let name = dir.strip_prefix(root).unwrap_or(&dir);
        let name = if name.as_os_str().is_empty() {
            ".".to_string()
        } else {
            name.display().to_string()
        };
        let narrowed = configured.map(|configured| narrow(configured, &name));
        describe(&mut out, &name, &inspection, narrowed.as_ref());
    }
    Ok(out)
}

/// The consumers the next start keeps in the queue named `name` (relative to the queue dir):
/// a durable output's or filter's queues, `<section>/<core row>`, have that section as their
/// one consumer; any other queue may be read by every durable section.
fn narrow(configured: &ConfiguredQueues, name: &str) -> ConfiguredQueues {
    let section = name.split('/').next().unwrap_or(name);
    let mut narrowed = configured.clone();
    if configured
        .consumers
        .iter()
        .any(|consumer| consumer == section)
    {
        narrowed.consumers = vec![section.to_string()];
    }
    narrowed
}

/// Collects the directories below `dir` that hold segments or checkpoints.
fn find_source_queues(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut is_queue = false;
    let mut children = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if entry.file_type()?.is_dir() {
            children.push(entry.path());
        } else if segment::parse_file_name(&name).is_some()
            || crate::queue::checkpoint::consumer_name(&name).is_some()
        {
            is_queue = true;
        }
    }
    if is_queue {
        found.push(dir.to_path_buf());
    }
    if depth < SEARCH_DEPTH_MAX {
        for child in children {
            find_source_queues(&child, depth + 1, found)?;
        }
    }
    Ok(())
}

fn describe(
    out: &mut String,
    name: &str,
    inspection: &Inspection,
    configured: Option<&ConfiguredQueues>,
) {
    let segments = &inspection.segments;
    let first_seq = segments.first().map_or(0, |segment| segment.base);
    let _ = writeln!(
        out,
        "\n{name}: {} segment{}, {}, {} records (seq {first_seq}..{})",
        segments.len(),
        if segments.len() == 1 { "" } else { "s" },
        human_bytes(inspection.bytes()),
        inspection.records(),
        inspection.next_seq
    );
    let shown: Vec<String> = segments
        .iter()
        .take(SEGMENTS_SHOWN_MAX)
        .map(|segment| {
            format!(
                "{} ({})",
                segment::file_name(segment.base),
                human_bytes(segment.bytes)
            )
        })
        .collect();
    let more = segments.len().saturating_sub(SEGMENTS_SHOWN_MAX);
    let more = if more > 0 {
        format!(", and {more} more")
    } else {
        String::new()
    };
    let _ = writeln!(out, "  segments: {}{more}", shown.join(", "));
    let tail = &inspection.tail;
    if tail.torn_bytes > 0 {
        let _ = writeln!(
            out,
            "  tail: {} torn bytes ({} record{}) after the last intact record; the next start \
             cuts them",
            tail.torn_bytes,
            tail.torn_records,
            if tail.torn_records == 1 { "" } else { "s" }
        );
    }
    if tail.corrupt_bytes > 0 {
        let _ = writeln!(
            out,
            "  tail: {} damaged bytes between intact records; readers skip them",
            tail.corrupt_bytes
        );
    }
    if !inspection.other_files.is_empty() {
        let _ = writeln!(out, "  other files: {}", inspection.other_files.join(", "));
    }
    describe_consumers(out, inspection, configured);
}

fn describe_consumers(
    out: &mut String,
    inspection: &Inspection,
    configured: Option<&ConfiguredQueues>,
) {
    let mut rows = vec![[
        "consumer".to_string(),
        "cursor".to_string(),
        "lag bytes".to_string(),
        "lag records".to_string(),
        "state".to_string(),
    ]];
    for consumer in &inspection.consumers {
        let mut state = match &consumer.state {
            CheckpointState::Loaded => "ok".to_string(),
            other => other.describe(),
        };
        if configured.is_some_and(|configured| !configured.consumers.contains(&consumer.name)) {
            state = "not in the config: forgotten at the next start".into();
        }
        rows.push([
            consumer.name.clone(),
            consumer.position.to_string(),
            consumer.lag_bytes.to_string(),
            consumer.lag_records.to_string(),
            state,
        ]);
    }
    if let Some(configured) = configured {
        for name in &configured.consumers {
            if !inspection
                .consumers
                .iter()
                .any(|consumer| &consumer.name == name)
            {
                let oldest = inspection
                    .segments
                    .first()
                    .map_or(0, |segment| segment.base);
                rows.push([
                    name.clone(),
                    "-".into(),
                    inspection.bytes().to_string(),
                    inspection.next_seq.saturating_sub(oldest).to_string(),
                    "no checkpoint yet: starts at the oldest segment".into(),
                ]);
            }
        }
    }
    if rows.len() == 1 {
        let _ = writeln!(
            out,
            "  no consumers: the next start keeps only the tail segment"
        );
        return;
    }
    let widths: Vec<usize> = (0..4)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let _ = writeln!(
            out,
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
    }
}

/// `1536` → `1.5 KiB`.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{QueueOptions, ReadBatch, Reader, Writer};

    fn write_queue(dir: PathBuf) {
        glommio::LocalExecutorBuilder::default()
            .io_memory(0)
            .make()
            .expect("an executor for the test")
            .run(async move {
                let options = QueueOptions {
                    max_file_size: 4096,
                    min_disk_free: 0,
                    max_buffer_size: 0,
                    ..QueueOptions::default()
                };
                let consumers = vec!["FileOutput".to_string(), "Gone".to_string()];
                let mut writer = Writer::open(&dir, &options, &consumers).await.unwrap();
                let message = [0x55u8; 90];
                for _ in 0..100 {
                    writer.append(&message).await.unwrap();
                }
                let mut reader = Reader::open(&writer.handle(), "FileOutput").unwrap();
                let mut batch = ReadBatch::new();
                let mut read = 0;
                while read < 60 {
                    read += reader.read(&mut batch).await.unwrap();
                    reader.commit(batch.end()).await.unwrap();
                }
                reader.close().await.unwrap();
                writer.close().await.unwrap();
            });
    }

    #[test]
    fn the_report_shows_segments_cursors_lag_and_what_the_next_start_does() {
        let root = tempfile::tempdir().unwrap();
        let dir = crate::queue::source_dir(root.path(), "input", 3);
        write_queue(dir.clone());
        let configured = ConfiguredQueues {
            queue_dir: root.path().to_path_buf(),
            consumers: vec!["FileOutput".into(), "NewOutput".into()],
        };
        let text = report(root.path(), Some(&configured)).unwrap();
        assert!(text.contains("input/3: 3 segments"), "{text}");
        assert!(text.contains("100 records (seq 0..100)"), "{text}");
        assert!(text.contains("0.log (3.9 KiB)"), "{text}");
        let line = |name: &str| {
            text.lines()
                .find(|line| line.trim_start().starts_with(name))
                .unwrap_or_else(|| panic!("no line for {name} in {text}"))
                .to_string()
        };
        let file_output = line("FileOutput");
        assert!(file_output.contains(" ok"), "{file_output}");
        let lag: Vec<&str> = file_output.split_whitespace().collect();
        let lag_records: u64 = lag[lag.len() - 2].parse().unwrap();
        assert!(lag_records <= 40, "{file_output}");
        assert!(line("Gone").contains("forgotten at the next start"));
        assert!(line("NewOutput").contains("no checkpoint yet"));
        assert!(line("NewOutput").contains(" 100 "));

        // One core's queue on its own, and a torn tail announced.
        let tail = segment::list(&dir).unwrap().last().unwrap().base;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(segment::path(&dir, tail))
            .unwrap();
        std::io::Write::write_all(&mut &file, &[0x1E, 7, 8]).unwrap();
        let text = report(&dir, None).unwrap();
        assert!(text.contains("\n.: 3 segments"), "{text}");
        assert!(text.contains("3 torn bytes (1 record)"), "{text}");
        assert!(report(&root.path().join("missing"), None).is_err());
    }

    #[test]
    fn a_durable_sections_queues_expect_only_that_section() {
        let configured = ConfiguredQueues {
            queue_dir: PathBuf::from("q"),
            consumers: vec!["FileOutput".into(), "Numbered".into()],
        };
        assert_eq!(narrow(&configured, "Numbered/1").consumers, ["Numbered"]);
        assert_eq!(
            narrow(&configured, "FileOutput/0").consumers,
            ["FileOutput"]
        );
        // Any other queue: every durable section may read it.
        assert_eq!(
            narrow(&configured, "input/3").consumers,
            configured.consumers
        );
        assert_eq!(narrow(&configured, ".").consumers, configured.consumers);
    }

    #[test]
    fn the_config_names_the_queue_dir_and_the_durable_consumers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gyges.toml");
        std::fs::write(
            &path,
            "[hekad]\nbase_dir = \"/var/cache/gyges\"\n\
             [Es]\ntype = \"TcpOutput\"\naddress = \"x:1\"\nuse_buffering = true\n\
             [Plain]\ntype = \"TcpOutput\"\naddress = \"x:2\"\n",
        )
        .unwrap();
        let configured = configured_queues(Some(&path)).unwrap();
        assert_eq!(configured.queue_dir, Path::new("/var/cache/gyges/queue"));
        assert_eq!(configured.consumers, vec!["Es".to_string()]);
        std::fs::write(&path, "[gyges]\nqueue_dir = \"/q\"\n").unwrap();
        assert_eq!(
            configured_queues(Some(&path)).unwrap().queue_dir,
            Path::new("/q")
        );
        std::fs::write(&path, "[gyges]\nqueue_dir = 3\n").unwrap();
        assert!(configured_queues(Some(&path))
            .unwrap_err()
            .contains("queue_dir"));
        let default = configured_queues(None).unwrap();
        assert_eq!(default.queue_dir, Path::new("./gyges-data/queue"));
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(10), "10 B");
    }
}
