//! FilePollingInput: reads a whole file every `ticker_interval` seconds (Heka's
//! `file_path` and `ticker_interval`; `docs/file_polling.md`).
//!
//! One ingest core, the first of the plan's list, polls the file, so each poll makes its
//! messages once. Each tick the file is opened afresh and read from its start to its end with
//! glommio buffered reads, split by the input's splitter (NullSplitter by default: a file up
//! to `max_message_size` is one record) and routed from that core. A file that cannot be
//! opened or read is logged (at most once a minute), counted in `errors_total`, and polled
//! again at the next tick. At most [`FILE_POLLING_BYTES_MAX`] bytes are read per tick.
//!
//! Without a decoder a record becomes a message of Type `heka.file.polling`, Logger the input's
//! name, Hostname the global `hostname`, the record as Payload (its bytes unchanged), and two
//! fields: `TickerInterval` (an integer, seconds) and `FilePath`. With a decoder, the decoder
//! gets the record with those headers and makes the message itself.

use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use glommio::io::BufferedFile;
use prost::Message as _;
use serde::Deserialize;

use super::{deliver_record, publish_splitter_stats, InputContext};
use crate::component::{PlanContext, Registration};
use crate::config::plan::InputPlan;
use crate::config::{ConfigError, Section};
use crate::limits::{FILE_POLLING_BYTES_MAX, FILE_POLLING_INTERVAL_MAX_SECONDS};
use crate::message::proto::{Field, ValueType};
use crate::message::view::{MessageView, ProtoView};
use crate::message::{now_ns, wire, LineMeta};
use crate::runtime::failure::{self, PluginTask};
use crate::runtime::shard::Shard;
use crate::telemetry::log_limit::LogLimit;
use crate::telemetry::Metric;

/// Its registry line.
pub const REGISTRATION: Registration<InputPlan> = Registration {
    type_names: &["FilePollingInput"],
    plan: plan_file_polling_input,
};

/// The Type of the messages a FilePollingInput makes, as in Heka.
pub const FILE_POLLING_TYPE: &str = "heka.file.polling";

/// Heka's default `ticker_interval` for this input, in seconds.
const TICKER_INTERVAL_DEFAULT: u64 = 5;

/// `FilePollingInput`'s own keys (`ticker_interval` is a common input key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFilePollingInput {
    /// The file read at every tick.
    pub file_path: String,
}

/// FilePollingInput, planned.
#[derive(Debug, Clone)]
pub struct FilePollingKind {
    /// `file_path`.
    pub file_path: PathBuf,
    /// `ticker_interval`, in seconds (1..=a day).
    pub ticker_seconds: u64,
    /// The CPU that polls: the first ingest core.
    pub polling_core: Option<usize>,
    /// Type, Logger (the input's name) and Hostname of its messages.
    pub meta: LineMeta,
    /// The `TickerInterval` and `FilePath` fields, encoded once as Heka message fields
    /// (tag 10 each, key and length included).
    pub fields: Vec<u8>,
}

impl super::InputKind for FilePollingKind {
    fn type_name(&self) -> &'static str {
        "FilePollingInput"
    }

    fn describe(&self) -> String {
        format!(
            "file {} every {} s",
            self.file_path.display(),
            self.ticker_seconds
        )
    }

    fn datagrams(&self) -> bool {
        // Each poll is a whole stream: a TokenSplitter delivers a last line without its
        // delimiter too.
        true
    }

    fn start(
        &self,
        shard: &Rc<Shard>,
        input: Rc<InputContext>,
        _receive_buffer: Option<usize>,
    ) -> std::io::Result<()> {
        if self.polling_core != Some(shard.cpu) {
            return Ok(());
        }
        let poller = Poller {
            kind: self.clone(),
            shard: shard.clone(),
            input,
            message: Vec::new(),
            errors: LogLimit::new(Duration::from_secs(60)),
        };
        let guard = shard.connection_opened();
        let plugin = failure::register_plugin(&poller.input.plan.name);
        let task = async move {
            poller.run().await;
            drop(guard);
        };
        glommio::spawn_local(PluginTask::quiet(plugin, task)).detach();
        Ok(())
    }
}

/// The polling core's task.
struct Poller {
    kind: FilePollingKind,
    shard: Rc<Shard>,
    input: Rc<InputContext>,
    /// The message a record makes without a decoder, reused.
    message: Vec<u8>,
    errors: LogLimit,
}

impl Poller {
    async fn run(mut self) {
        let interval = Duration::from_secs(self.kind.ticker_seconds);
        loop {
            let tick = glommio::timer::sleep(interval);
            futures_lite::future::or(tick, self.shard.stop.wait()).await;
            if self.shard.stop.is_stopping() {
                return;
            }
            if let Err(error) = self.poll().await {
                let (shard, plugin) = (&self.shard, self.input.plugin);
                shard.telemetry.add(shard.core, plugin, Metric::Errors, 1);
                if let Some(count) = self.errors.note(std::time::Instant::now()) {
                    tracing::warn!(
                        input = %self.input.plan.name,
                        file = %self.kind.file_path.display(),
                        %error,
                        failures = count,
                        "cannot read the polled file; polling again at the next tick"
                    );
                }
            }
            self.shard.ship_full().await;
        }
    }

    /// Reads the file once, from its start, and routes its records.
    async fn poll(&mut self) -> std::io::Result<()> {
        let read_bytes = self.input.max_message_size;
        let Some((mut splitter, mut buffer)) = self.input.stream_parts(read_bytes) else {
            return Ok(());
        };
        let file = BufferedFile::open(&self.kind.file_path).await?;
        let mut offset = 0u64;
        let result = loop {
            if offset >= FILE_POLLING_BYTES_MAX {
                let message = format!("only the first {FILE_POLLING_BYTES_MAX} bytes were read");
                break Err(std::io::Error::other(message));
            }
            let want = buffer.spare_mut().len().min(read_bytes);
            let read = match file.read_at(offset, want).await {
                Ok(read) => read,
                Err(error) => break Err(error.into()),
            };
            if read.is_empty() {
                break Ok(());
            }
            buffer.spare_mut()[..read.len()].copy_from_slice(&read);
            buffer.commit(read.len());
            offset += read.len() as u64;
            let (shard, plugin) = (&self.shard, self.input.plugin);
            shard
                .telemetry
                .add(shard.core, plugin, Metric::BytesRead, read.len() as u64);
            while let Some(record) = buffer.next_record(&mut splitter) {
                self.deliver(record.bytes);
            }
            glommio::yield_if_needed().await;
        };
        if let Some(record) = buffer.finish(&mut splitter) {
            self.deliver(record.bytes);
        }
        let (shard, plugin) = (&self.shard, self.input.plugin);
        publish_splitter_stats(&mut splitter, &shard.telemetry, shard.core, plugin);
        // A close error changes nothing about what was read.
        let _ = file.close().await;
        result
    }

    /// Routes one record: through the decoder if the input has one, else as a
    /// `heka.file.polling` message.
    fn deliver(&mut self, record: &[u8]) {
        let shard = &self.shard;
        let mut router = shard.router.borrow_mut();
        let mut uuids = shard.uuids.borrow_mut();
        let (telemetry, core, now) = (&shard.telemetry, shard.core, now_ns());
        if self.input.decoder.is_some() {
            let meta = &self.kind.meta;
            deliver_record(
                record,
                &self.input,
                meta,
                now,
                &mut uuids,
                &mut router,
                telemetry,
                core,
            );
            return;
        }
        telemetry.add(core, self.input.plugin, Metric::Records, 1);
        let uuid = uuids.next_uuid();
        encode_polled(&self.kind, record, &uuid, now, &mut self.message);
        router.route(&MessageView::Proto(ProtoView::new(&self.message)));
    }
}

/// Encodes the message a record makes without a decoder into `out` (cleared first).
fn encode_polled(
    kind: &FilePollingKind,
    record: &[u8],
    uuid: &[u8; 16],
    now: i64,
    out: &mut Vec<u8>,
) {
    out.clear();
    wire::put_bytes(out, 1, uuid);
    wire::put_int(out, 2, now);
    wire::put_bytes(out, 3, &kind.meta.type_);
    wire::put_bytes(out, 4, &kind.meta.logger);
    wire::put_bytes(out, 6, record);
    wire::put_bytes(out, 9, &kind.meta.hostname);
    out.extend_from_slice(&kind.fields);
}

/// The `TickerInterval` and `FilePath` fields, each as a Heka message field (tag 10).
fn encoded_fields(ticker_seconds: u64, file_path: &str) -> Vec<u8> {
    let interval = Field {
        name: "TickerInterval".into(),
        value_type: Some(ValueType::Integer as i32),
        value_integer: vec![i64::try_from(ticker_seconds).unwrap_or(i64::MAX)],
        ..Field::default()
    };
    let path = Field {
        name: "FilePath".into(),
        value_type: Some(ValueType::String as i32),
        value_string: vec![file_path.into()],
        ..Field::default()
    };
    let mut out = Vec::new();
    for field in [interval, path] {
        wire::put_bytes(&mut out, 10, &field.encode_to_vec());
    }
    out
}

fn plan_file_polling_input(
    section: &Section,
    context: &PlanContext<'_>,
) -> Result<InputPlan, ConfigError> {
    let (common, own) = super::plan::split_common(section)?;
    let raw: RawFilePollingInput = own.parse()?;
    if raw.file_path.is_empty() {
        return Err(section.error(Some("file_path"), "must name a file"));
    }
    let ticker_seconds = common.ticker_interval.unwrap_or(TICKER_INTERVAL_DEFAULT);
    if !(1..=FILE_POLLING_INTERVAL_MAX_SECONDS).contains(&ticker_seconds) {
        let message =
            format!("{ticker_seconds} is outside 1..={FILE_POLLING_INTERVAL_MAX_SECONDS} seconds");
        return Err(section.error(Some("ticker_interval"), message));
    }
    let global = context.global;
    let kind = FilePollingKind {
        file_path: PathBuf::from(&raw.file_path),
        ticker_seconds,
        polling_core: global.ingest_cores.first().copied(),
        meta: LineMeta {
            type_: FILE_POLLING_TYPE.as_bytes().into(),
            logger: section.name.as_bytes().into(),
            hostname: global.hostname.as_bytes().into(),
        },
        fields: encoded_fields(ticker_seconds, &raw.file_path),
    };
    let common = common.with_defaults("NullSplitter", &[]);
    super::plan::input_plan(section, context, common, Arc::new(kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::proto::Message;

    #[test]
    fn a_polled_record_is_a_heka_message_with_its_fields() {
        let kind = FilePollingKind {
            file_path: PathBuf::from("/proc/loadavg"),
            ticker_seconds: 7,
            polling_core: Some(0),
            meta: LineMeta {
                type_: FILE_POLLING_TYPE.as_bytes().into(),
                logger: b"load".as_slice().into(),
                hostname: b"node-1".as_slice().into(),
            },
            fields: encoded_fields(7, "/proc/loadavg"),
        };
        let mut out = Vec::new();
        encode_polled(&kind, b"0.01 0.02\n", &[9; 16], 1234, &mut out);
        let message = Message::decode(out.as_slice()).expect("a valid message");
        assert_eq!(message.uuid, vec![9; 16]);
        assert_eq!(message.timestamp, 1234);
        assert_eq!(message.r#type.as_deref(), Some("heka.file.polling"));
        assert_eq!(message.logger.as_deref(), Some("load"));
        assert_eq!(message.hostname.as_deref(), Some("node-1"));
        assert_eq!(message.payload.as_deref(), Some("0.01 0.02\n"));
        assert_eq!(message.fields.len(), 2);
        assert_eq!(message.fields[0].name, "TickerInterval");
        assert_eq!(message.fields[0].value_integer, vec![7]);
        assert_eq!(message.fields[1].name, "FilePath");
        assert_eq!(message.fields[1].value_string, vec!["/proc/loadavg"]);
        assert!(ProtoView::new(&out).validate().is_ok());
    }
}
