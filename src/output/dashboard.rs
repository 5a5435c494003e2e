//! DashboardOutput: keeps what the dashboard page draws besides the counters: each sandbox's
//! latest `inject_payload("cbuf", name, ...)` output and the last sandbox terminations.
//!
//! It runs on the output core alone (one writer); the other cores hand it their batches over
//! their rings. Its encoder is its own: each protobuf message goes into the batch behind its
//! length, untouched. For each batch it reads every message's Type:
//! - `heka.sandbox-output` with `Fields[payload_type] == "cbuf"`: the payload is parsed and
//!   kept as the graph of (Logger, `Fields[payload_name]`), replacing the previous one. Other
//!   payload types are passed over (gyges writes no payload files).
//! - `heka.sandbox-terminated`: kept among the last [`DASHBOARD_TERMINATIONS_MAX`].
//! - anything else (Heka's `heka.all-report`): passed over; the page reads the counters itself.
//!
//! Then it publishes a new snapshot to the [`Board`] the HTTP threads read (see
//! [`crate::telemetry::dashboard`]).
//!
//! Bounds: at most [`DASHBOARD_GRAPHS_MAX`] graphs and [`DASHBOARD_PAYLOAD_BYTES_MAX`] payload
//! bytes over all of them. A payload past either bound is dropped and counted
//! (`dropped_total`); the graphs already kept stay. A payload that is not valid cbuf is
//! counted as `rejected_total` and its graph keeps its previous payload. Each message taken
//! counts as `sent_total`.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use super::{Batch, Destination, Opened, OutputCore, OutputKind, Writers};
use crate::component::LocalBoxFuture;
use crate::config::plan::{GlobalPlan, OutputPlan};
use crate::encoder::{Encode, EncodeFailed, EncoderKind, Framing};
use crate::limits::{
    DASHBOARD_GRAPHS_MAX, DASHBOARD_PAYLOAD_BYTES_MAX, DASHBOARD_REASON_BYTES_MAX,
    DASHBOARD_TERMINATIONS_MAX,
};
use crate::message::{FieldValue, MessageView, ProtoView, StrHeader};
use crate::telemetry::dashboard::{parse_cbuf, Board, Graph, Snapshot, Termination};
use crate::telemetry::{Metric, Telemetry};

/// Heka's default matcher of DashboardOutput.
pub const DEFAULT_MATCHER: &str = "Type == 'heka.all-report' || Type == 'heka.sandbox-output' \
                                   || Type == 'heka.sandbox-terminated'";

/// DashboardOutput's own keys, Heka's names: accepted and checked; gyges serves the page from
/// `[gyges] http_address` and keeps its state in memory (startup notices say so).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDashboardOutput {
    /// Heka's listening address (`:4352`); gyges serves from `http_address`.
    pub address: Option<String>,
    /// Heka's directory for the payload files; gyges writes none.
    pub working_directory: Option<String>,
    /// Heka's directory of the page's files; gyges's page is built in.
    pub static_directory: Option<String>,
    /// Heka's extra HTTP headers (name to values).
    pub headers: Option<BTreeMap<String, Vec<String>>>,
}

/// DashboardOutput, planned: the board it publishes to, which the HTTP endpoint reads.
#[derive(Debug, Default)]
pub struct DashboardOutputKind {
    /// What the page draws; the endpoint takes it from the plan at startup.
    pub board: Arc<Board>,
}

/// Its registry line.
pub const REGISTRATION: crate::component::Registration<OutputPlan> =
    crate::component::Registration {
        type_names: &["DashboardOutput"],
        plan: |section, context| {
            let (common, own) = super::plan::split_common(section)?;
            own.parse::<RawDashboardOutput>()?;
            if context.global.http_address.is_none() {
                return Err(section.error(
                    None,
                    "the dashboard is served from `http_address` in [gyges] (or [hekad]), or \
                     from this section's `address`",
                ));
            }
            let mut common = common.with_defaults("ProtobufEncoder", false, false);
            common.message_matcher = common.message_matcher.or(Some(DEFAULT_MATCHER));
            common.encoder = super::plan::EncoderChoice::Fixed(Arc::new(DashboardEncoderKind));
            let plan = super::plan::output_plan(section, context, common, |_| {
                Ok(Arc::new(DashboardOutputKind::default()))
            })?;
            let why = "DashboardOutput keeps the latest graphs in memory; only \"memory\" applies";
            super::plan::memory_only(section, &plan, why)?;
            Ok(plan)
        },
    };

impl OutputKind for DashboardOutputKind {
    fn type_name(&self) -> &'static str {
        "DashboardOutput"
    }

    fn describe(&self, _: &OutputPlan) -> String {
        format!(
            "the dashboard page on http_address (at most {DASHBOARD_GRAPHS_MAX} graphs, \
             {DASHBOARD_PAYLOAD_BYTES_MAX} payload bytes)"
        )
    }

    fn writers(&self) -> Writers {
        Writers::Owner
    }

    fn open<'a>(&'a self, _: &'a OutputCore<'a>) -> LocalBoxFuture<'a, Result<Opened, String>> {
        let store = Store::new(self.board.clone());
        Box::pin(async move { Ok(Opened::plain(Rc::new(RefCell::new(store)))) })
    }
}

/// DashboardOutput's encoder: each protobuf message behind its length (a line has no
/// fields, so it cannot be a sandbox's output: it encodes to nothing).
#[derive(Debug, Clone, Copy)]
pub struct DashboardEncoderKind;

impl EncoderKind for DashboardEncoderKind {
    fn type_name(&self) -> &'static str {
        "dashboard records"
    }

    fn build(&self, _: &GlobalPlan, _: Option<usize>) -> Result<Box<dyn Encode>, String> {
        Ok(Box::new(DashboardEncoderKind))
    }
}

impl Encode for DashboardEncoderKind {
    fn encode_into(
        &mut self,
        message: &MessageView<'_>,
        _: Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, EncodeFailed> {
        let MessageView::Proto(view) = message else {
            return Ok(0);
        };
        super::length_framed::push(out, view.bytes())
    }
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Kept (or passed over as nothing to draw).
    Sent,
    /// Past a bound: dropped.
    Dropped,
    /// Not valid cbuf: refused.
    Rejected,
}

/// The output core's graphs and terminations; the only writer of its [`Board`].
#[derive(Debug)]
pub struct Store {
    graphs: BTreeMap<(String, String), Arc<Graph>>,
    payload_bytes: usize,
    terminations: VecDeque<Arc<Termination>>,
    board: Arc<Board>,
}

/// A string header or field, as text (lossy: the page shows it, nothing compares it).
fn text(bytes: Option<&[u8]>) -> String {
    String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
}

/// The first string value of field `name`.
fn string_field<'a>(view: &ProtoView<'a>, name: &[u8]) -> Option<&'a [u8]> {
    match view.field(name, 0)?.value(0)? {
        FieldValue::String(bytes) | FieldValue::Bytes(bytes) => Some(bytes),
        _ => None,
    }
}

impl Store {
    /// An empty store publishing to `board`.
    pub fn new(board: Arc<Board>) -> Store {
        Store {
            graphs: BTreeMap::new(),
            payload_bytes: 0,
            terminations: VecDeque::new(),
            board,
        }
    }

    /// Takes one message.
    fn take(&mut self, view: &ProtoView<'_>) -> Taken {
        let timestamp_ms = view.timestamp().unwrap_or(0) / 1_000_000;
        match view.str_header(StrHeader::Type) {
            Some(b"heka.sandbox-output") => {
                if string_field(view, b"payload_type") != Some(b"cbuf") {
                    return Taken::Sent;
                }
                let logger = text(view.str_header(StrHeader::Logger));
                let name = text(string_field(view, b"payload_name"));
                let payload = view.str_header(StrHeader::Payload).unwrap_or_default();
                self.offer_cbuf(logger, name, payload, timestamp_ms)
            }
            Some(b"heka.sandbox-terminated") => {
                let mut reason = text(view.str_header(StrHeader::Payload));
                if reason.len() > DASHBOARD_REASON_BYTES_MAX {
                    let mut cut = DASHBOARD_REASON_BYTES_MAX;
                    while !reason.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    reason.truncate(cut);
                }
                self.offer_termination(Termination {
                    plugin: text(string_field(view, b"plugin")),
                    reason,
                    at_ms: timestamp_ms,
                });
                Taken::Sent
            }
            _ => Taken::Sent,
        }
    }

    /// Keeps `payload` as the graph of (`logger`, `name`) if it parses and fits the bounds.
    fn offer_cbuf(&mut self, logger: String, name: String, payload: &[u8], at_ms: i64) -> Taken {
        let key = (logger, name);
        let known = self.graphs.get(&key).map(|graph| graph.payload_bytes);
        if known.is_none() && self.graphs.len() >= DASHBOARD_GRAPHS_MAX {
            return Taken::Dropped;
        }
        let previous = known.unwrap_or(0);
        if self.payload_bytes - previous + payload.len() > DASHBOARD_PAYLOAD_BYTES_MAX {
            return Taken::Dropped;
        }
        let Ok((header, rows)) = std::str::from_utf8(payload)
            .map_err(|_| ())
            .and_then(|payload| parse_cbuf(payload).map_err(|_| ()))
        else {
            return Taken::Rejected;
        };
        self.payload_bytes = self.payload_bytes - previous + payload.len();
        let graph = Graph {
            logger: key.0.clone(),
            name: key.1.clone(),
            updated_ms: at_ms,
            header,
            rows,
            payload_bytes: payload.len(),
        };
        self.graphs.insert(key, Arc::new(graph));
        Taken::Sent
    }

    /// Keeps a termination, forgetting the oldest past the bound.
    fn offer_termination(&mut self, termination: Termination) {
        if self.terminations.len() == DASHBOARD_TERMINATIONS_MAX {
            self.terminations.pop_front();
        }
        self.terminations.push_back(Arc::new(termination));
    }

    /// Swaps what the page shows for what the store holds now.
    fn publish(&self) {
        self.board.publish(Snapshot {
            graphs: self.graphs.values().cloned().collect(),
            terminations: self.terminations.iter().cloned().collect(),
        });
    }

    /// Takes every message of a batch, counts them, and publishes once.
    fn take_batch(&mut self, batch: &Batch, telemetry: &Telemetry, core: usize, plugin: usize) {
        let mut counts = [0u64; 3];
        for record in super::length_framed::encodings(&batch.bytes) {
            let view = ProtoView::new(record);
            let slot = match self.take(&view) {
                Taken::Sent => 0,
                Taken::Dropped => 1,
                Taken::Rejected => 2,
            };
            counts[slot] += 1;
        }
        telemetry.add(core, plugin, Metric::Sent, counts[0]);
        telemetry.add(core, plugin, Metric::Dropped, counts[1]);
        telemetry.add(core, plugin, Metric::Rejected, counts[2]);
        telemetry.add(core, plugin, Metric::SentBytes, batch.bytes.len() as u64);
        self.publish();
    }
}

impl Destination for RefCell<Store> {
    fn ship<'a>(
        &'a self,
        batch: Batch,
        telemetry: &'a Telemetry,
        core: usize,
        plugin: usize,
    ) -> LocalBoxFuture<'a, ()> {
        // Synchronous: no borrow is held across an await.
        self.borrow_mut()
            .take_batch(&batch, telemetry, core, plugin);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbuf(value: u64) -> Vec<u8> {
        format!("{{\"time\":0,\"rows\":2,\"columns\":1,\"seconds_per_row\":1}}\n{value}\nnan\n")
            .into_bytes()
    }

    #[test]
    fn a_graph_is_replaced_by_its_next_payload_and_bounded_in_count() {
        let board = Arc::new(Board::default());
        let mut store = Store::new(board.clone());
        assert_eq!(
            store.offer_cbuf("f".into(), "a".into(), &cbuf(1), 1),
            Taken::Sent
        );
        assert_eq!(
            store.offer_cbuf("f".into(), "a".into(), &cbuf(22), 2),
            Taken::Sent
        );
        assert_eq!(store.graphs.len(), 1);
        assert_eq!(store.payload_bytes, cbuf(22).len());
        let bad = b"{\"rows\":1,\"columns\":1}\nword\n";
        assert_eq!(
            store.offer_cbuf("f".into(), "a".into(), bad, 3),
            Taken::Rejected
        );
        for index in 1..DASHBOARD_GRAPHS_MAX {
            let taken = store.offer_cbuf("f".into(), format!("n{index}"), &cbuf(1), 4);
            assert_eq!(taken, Taken::Sent);
        }
        // One more name is past the bound; a known one is still replaced.
        assert_eq!(
            store.offer_cbuf("g".into(), "x".into(), &cbuf(1), 5),
            Taken::Dropped
        );
        assert_eq!(
            store.offer_cbuf("f".into(), "a".into(), &cbuf(3), 6),
            Taken::Sent
        );
        store.publish();
        let snapshot = board.load();
        assert_eq!(snapshot.graphs.len(), DASHBOARD_GRAPHS_MAX);
        assert_eq!(snapshot.graphs[0].rows, vec![vec![Some(3.0)], vec![None]]);
        assert_eq!(snapshot.graphs[0].updated_ms, 6);
    }

    #[test]
    fn payload_bytes_are_bounded_over_all_graphs() {
        let mut store = Store::new(Arc::new(Board::default()));
        let mut big = b"{\"time\":0,\"rows\":1,\"columns\":1}\n1\n".to_vec();
        big.resize(DASHBOARD_PAYLOAD_BYTES_MAX / 2, b'\n');
        assert_eq!(
            store.offer_cbuf("f".into(), "a".into(), &big, 1),
            Taken::Sent
        );
        assert_eq!(
            store.offer_cbuf("f".into(), "b".into(), &big, 1),
            Taken::Sent
        );
        assert_eq!(
            store.offer_cbuf("f".into(), "c".into(), &cbuf(1), 1),
            Taken::Dropped
        );
        // Replacing a graph by a smaller payload frees room.
        assert_eq!(
            store.offer_cbuf("f".into(), "a".into(), &cbuf(1), 1),
            Taken::Sent
        );
        assert_eq!(
            store.offer_cbuf("f".into(), "c".into(), &cbuf(1), 1),
            Taken::Sent
        );
    }

    #[test]
    fn terminations_keep_the_latest() {
        let mut store = Store::new(Arc::new(Board::default()));
        for index in 0..DASHBOARD_TERMINATIONS_MAX + 3 {
            store.offer_termination(Termination {
                plugin: format!("p{index}"),
                reason: "r".into(),
                at_ms: 0,
            });
        }
        assert_eq!(store.terminations.len(), DASHBOARD_TERMINATIONS_MAX);
        assert_eq!(store.terminations[0].plugin, "p3");
    }
}
