//! The queue's config as written: `[name.buffering]` on a durable output or filter (Heka's
//! option names, Heka's meanings) and the queue options of the global `[gyges]` section.
//!
//! ```toml
//! [gyges]
//! queue_dir = "/var/cache/gyges/queue"   # default: <base_dir>/queue
//! sync = "interval"                      # "none" | "interval" | "every_batch"
//! checkpoint_interval = 1000             # milliseconds
//! min_disk_free = 268435456              # bytes; 0 turns the check off
//! queue_direct_io = false                # true: write segments O_DIRECT where the disk takes it
//!
//! [ElasticSearchOutput]
//! use_buffering = true
//! [ElasticSearchOutput.buffering]
//! max_file_size = 67108864               # bytes per segment
//! max_buffer_size = 1073741824           # bytes per core's queue; 0 = bounded by the disk only
//! full_action = "block"                  # "shutdown" | "drop" | "block"
//! cursor_update_count = 0                # also checkpoint every N records; 0 = by interval
//! max_consumer_lag = 0                   # bytes; 0 = never move a slow consumer on
//! ```
//!
//! Differences from Heka, each for a reason:
//! - `full_action` defaults to `block` (backpressure), not `shutdown`: a full queue should slow
//!   the senders, not stop the daemon.
//! - `max_file_size` defaults to 64 MiB, not 512 MiB: smaller segments are deleted sooner.
//! - `max_buffer_size = 0` does not mean unlimited: `min_disk_free` still stops the queue
//!   before the disk fills.
//! - `cursor_update_count` keeps its meaning (checkpoint after that many records) but defaults
//!   to 0: checkpoints are written every `checkpoint_interval`; one per record would cost a
//!   file write per message.
//! - `max_buffer_size` bounds each core's queue: cores share nothing, not even a byte count.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::QueueOptions;
use crate::limits;

/// What a full queue does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FullAction {
    /// Stop gyges (Heka's default): [`super::QueueError::Full`].
    Shutdown,
    /// Drop the records that do not fit, and count them.
    Drop,
    /// Wait until consumers free room; the senders are pushed back (gyges's default).
    #[default]
    Block,
}

/// When segment data is synced to the device; see the module docs of [`super`] for what each
/// policy survives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// Never: survives a crash of gyges, not a power loss.
    None,
    /// Every `checkpoint_interval` and at each segment's end (the default).
    #[default]
    Interval,
    /// Before each appended batch is acknowledged.
    EveryBatch,
}

/// `[name.buffering]`: the disk queue of one durable output or filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buffering {
    /// Bytes per segment file before a new one is started (default 64 MiB).
    pub max_file_size: Option<u64>,
    /// Bytes each core's queue may hold; 0 leaves only `min_disk_free` (default 1 GiB).
    pub max_buffer_size: Option<u64>,
    /// `shutdown`, `drop` or `block` (default `block`).
    pub full_action: Option<FullAction>,
    /// Also checkpoint after this many records (default 0: every `checkpoint_interval`).
    pub cursor_update_count: Option<u64>,
    /// Move a consumer on when it lags by more than this many bytes, counting what it skips
    /// as dropped (default 0: never).
    pub max_consumer_lag: Option<u64>,
    /// Overrides the global `sync` for this queue.
    pub sync: Option<SyncPolicy>,
    /// Overrides the global `checkpoint_interval` (milliseconds) for this queue.
    pub checkpoint_interval: Option<u64>,
}

/// The queue options of the global section (`[gyges]` or `[hekad]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueGlobal {
    /// Where the queues live (default `<base_dir>/queue`).
    pub queue_dir: Option<String>,
    /// `none`, `interval` or `every_batch` (default `interval`).
    pub sync: Option<SyncPolicy>,
    /// Milliseconds between checkpoints, and between syncs with `sync = "interval"`
    /// (default 1000).
    pub checkpoint_interval: Option<u64>,
    /// Bytes that must stay free on the queue's disk; 0 turns the check off (default 256 MiB).
    pub min_disk_free: Option<u64>,
    /// `queue_direct_io`: write segments around the page cache (`O_DIRECT`) where the file
    /// system takes it (default false: measured within the noise, `docs/queue.md`).
    #[serde(rename = "queue_direct_io")]
    pub direct_io: Option<bool>,
}

impl QueueGlobal {
    /// The queue directory: `queue_dir`, relative paths taken from the working directory, or
    /// `<base_dir>/queue`.
    pub fn queue_dir(&self, base_dir: &Path) -> PathBuf {
        match &self.queue_dir {
            Some(dir) => PathBuf::from(dir),
            None => base_dir.join("queue"),
        }
    }
}

/// A queue option that makes no sense, with the key it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct QueueConfigError {
    /// The option's TOML key, such as `max_file_size`.
    pub key: &'static str,
    /// What is wrong with the value, for the operator.
    pub message: String,
}

/// Resolves the options of one queue from the global section and its `[name.buffering]`,
/// for messages of at most `max_message_size` bytes.
///
/// # Errors
/// The first option out of range, with its key.
pub fn resolve(
    global: &QueueGlobal,
    buffering: &Buffering,
    max_message_size: usize,
) -> Result<QueueOptions, QueueConfigError> {
    let defaults = QueueOptions::default();
    let interval_ms = buffering.checkpoint_interval.or(global.checkpoint_interval);
    let options = QueueOptions {
        max_file_size: buffering.max_file_size.unwrap_or(defaults.max_file_size),
        max_buffer_size: buffering
            .max_buffer_size
            .unwrap_or(defaults.max_buffer_size),
        min_disk_free: global.min_disk_free.unwrap_or(defaults.min_disk_free),
        full_action: buffering.full_action.unwrap_or_default(),
        sync: buffering.sync.or(global.sync).unwrap_or_default(),
        checkpoint_interval: interval_ms
            .map_or(defaults.checkpoint_interval, Duration::from_millis),
        cursor_update_count: buffering.cursor_update_count.unwrap_or(0),
        max_consumer_lag: buffering.max_consumer_lag.unwrap_or(0),
        max_message_size,
        direct_io: global.direct_io.unwrap_or(defaults.direct_io),
        ..defaults
    };
    options.validate().map_err(|error| {
        let message = error.to_string();
        let message = message
            .strip_prefix("invalid queue options: ")
            .unwrap_or(&message)
            .to_string();
        QueueConfigError {
            key: blame(&message),
            message,
        }
    })?;
    Ok(options)
}

/// The key an option error is about: the first key its message names.
fn blame(message: &str) -> &'static str {
    const KEYS: [&str; 7] = [
        "max_file_size",
        "max_buffer_size",
        "checkpoint_interval",
        "max_consumer_lag",
        "max_message_size",
        "min_disk_free",
        "cursor_update_count",
    ];
    KEYS.iter()
        .copied()
        .filter_map(|key| message.find(key).map(|at| (at, key)))
        .min()
        .map_or("buffering", |(_, key)| key)
}

const _: () = assert!(limits::QUEUE_BUFFER_BYTES_DEFAULT >= 2 * limits::QUEUE_FILE_BYTES_DEFAULT);

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
        toml::from_str(text).map_err(|error| error.to_string())
    }

    #[test]
    fn heka_buffering_sections_parse() {
        let buffering: Buffering = parse(
            "max_file_size = 1048576\nmax_buffer_size = 0\nfull_action = \"drop\"\n\
             cursor_update_count = 100\n",
        )
        .unwrap();
        assert_eq!(buffering.full_action, Some(FullAction::Drop));
        let options = resolve(&QueueGlobal::default(), &buffering, 65536).unwrap();
        assert_eq!(options.max_file_size, 1 << 20);
        assert_eq!(options.max_buffer_size, 0);
        assert_eq!(options.cursor_update_count, 100);
        assert_eq!(options.sync, SyncPolicy::Interval);
        assert_eq!(options.full_action, FullAction::Drop);
    }

    #[test]
    fn defaults_and_overrides() {
        let options = resolve(&QueueGlobal::default(), &Buffering::default(), 65536).unwrap();
        assert_eq!(options.full_action, FullAction::Block);
        assert_eq!(options.max_file_size, 64 << 20);
        assert_eq!(options.checkpoint_interval, Duration::from_secs(1));
        assert!(
            !options.direct_io,
            "segments go through the page cache by default"
        );
        let global: QueueGlobal = parse(
            "sync = \"every_batch\"\ncheckpoint_interval = 250\nmin_disk_free = 0\n\
             queue_direct_io = true",
        )
        .unwrap();
        let local: Buffering = parse("sync = \"none\"").unwrap();
        let options = resolve(&global, &local, 65536).unwrap();
        assert_eq!(options.sync, SyncPolicy::None);
        assert_eq!(options.checkpoint_interval, Duration::from_millis(250));
        assert_eq!(options.min_disk_free, 0);
        assert!(options.direct_io);
        assert_eq!(
            global.queue_dir(Path::new("/var/cache/gyges")),
            Path::new("/var/cache/gyges/queue")
        );
    }

    #[test]
    fn mistakes_name_their_key() {
        assert!(parse::<Buffering>("max_file_sise = 1")
            .unwrap_err()
            .contains("max_file_sise"));
        assert!(parse::<Buffering>("full_action = \"panic\"").is_err());
        assert!(parse::<QueueGlobal>("sync = \"always\"").is_err());
        let cases = [
            ("max_file_size = 10", "max_file_size"),
            ("max_buffer_size = 1000000", "max_buffer_size"),
            ("checkpoint_interval = 0", "checkpoint_interval"),
            ("max_consumer_lag = 5", "max_consumer_lag"),
        ];
        for (text, key) in cases {
            let buffering: Buffering = parse(text).unwrap();
            let error = resolve(&QueueGlobal::default(), &buffering, 65536).unwrap_err();
            assert_eq!(error.key, key, "{text}: {error}");
        }
    }
}
