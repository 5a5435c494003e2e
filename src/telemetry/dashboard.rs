//! The dashboard: the page (`/`, `/dashboard`), its script and style, and the two JSON
//! documents it polls each second: `/plugins.json` (every plugin's counters, summed over cores,
//! with its queue lag) and `/graphs.json` (the latest circular-buffer payload of each sandbox,
//! parsed, and the last terminations).
//!
//! The graphs come from DashboardOutput (`crate::output::dashboard`), which runs on the output
//! core and is the only writer of a [`Board`]: after each batch it builds a new [`Snapshot`]
//! (graphs are shared `Arc`s, so a snapshot costs a pointer per graph, not a copy of the
//! payloads) and swaps it in. The HTTP threads load the current snapshot; neither side ever
//! waits for the other.
//!
//! The page is plain HTML, CSS and JavaScript built into the binary (`include_str!`): no build
//! step, nothing fetched from elsewhere. It draws every value from messages with `textContent`
//! and SVG elements made with `createElementNS`, never as markup.

use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use super::exposition::{Catalog, QueueSample};
use super::{stage, Metric, Telemetry};

/// The page.
pub const PAGE_HTML: &str = include_str!("dashboard/index.html");
/// The page's script.
pub const PAGE_JS: &str = include_str!("dashboard/dashboard.js");
/// The page's style.
pub const PAGE_CSS: &str = include_str!("dashboard/dashboard.css");

/// One sandbox's latest circular-buffer output, parsed.
#[derive(Debug, Serialize)]
pub struct Graph {
    /// The sandbox (the message's Logger).
    pub logger: String,
    /// The buffer's name (`inject_payload`'s second argument, `Fields[payload_name]`).
    pub name: String,
    /// When the payload arrived, in ms since the epoch (the message's Timestamp).
    pub updated_ms: i64,
    /// The cbuf header: `time`, `rows`, `columns`, `seconds_per_row`, `column_info`, ...
    pub header: serde_json::Value,
    /// `rows` rows of `columns` values, oldest first; `None` for an unset cell (`nan`).
    pub rows: Rows,
    /// Bytes of the payload this was parsed from (what the bound counts).
    #[serde(skip)]
    pub payload_bytes: usize,
}

/// A sandbox's termination, from its `heka.sandbox-terminated` message.
#[derive(Debug, Serialize)]
pub struct Termination {
    /// The plugin that terminated (`Fields[plugin]`).
    pub plugin: String,
    /// Why (the message's Payload, cut to `DASHBOARD_REASON_BYTES_MAX`).
    pub reason: String,
    /// When, in ms since the epoch.
    pub at_ms: i64,
}

/// What the page shows besides the counters, as DashboardOutput last published it.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// The graphs, ordered by logger then name.
    pub graphs: Vec<Arc<Graph>>,
    /// The last terminations, oldest first.
    pub terminations: Vec<Arc<Termination>>,
}

/// The latest [`Snapshot`]: one writer (DashboardOutput on the output core) swaps it in
/// whole, any number of readers (the HTTP threads) load it. No lock on either side.
#[derive(Debug, Default)]
pub struct Board {
    current: ArcSwap<Snapshot>,
}

impl Board {
    /// Replaces what the page shows.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// What the page shows now.
    pub fn load(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }
}

/// A circular buffer's rows, oldest first: one value per column, `None` for an unset cell.
pub type Rows = Vec<Vec<Option<f64>>>;

/// Why a cbuf payload was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbufError(pub String);

/// Parses a `cbuf` payload (`circular_buffer`'s format: a JSON header line, then one line of
/// tab-separated values per row, `nan` for an unset cell) into its header and rows.
///
/// # Errors
/// No JSON header, a header without `rows` and `columns`, more rows or cells than it says,
/// or a cell that is not a number.
pub fn parse_cbuf(payload: &str) -> Result<(serde_json::Value, Rows), CbufError> {
    let (head, body) = payload.split_once('\n').unwrap_or((payload, ""));
    let header: serde_json::Value = serde_json::from_str(head)
        .map_err(|error| CbufError(format!("the header line is not JSON: {error}")))?;
    let dimension = |key: &str| header.get(key).and_then(serde_json::Value::as_u64);
    let (Some(rows_max), Some(columns)) = (dimension("rows"), dimension("columns")) else {
        return Err(CbufError("the header has no `rows` and `columns`".into()));
    };
    let mut rows = Vec::new();
    for line in body.lines().filter(|line| !line.is_empty()) {
        if rows.len() as u64 >= rows_max {
            return Err(CbufError(format!(
                "more than the {rows_max} rows the header says"
            )));
        }
        let mut row = Vec::new();
        for cell in line.split('\t') {
            if row.len() as u64 >= columns {
                return Err(CbufError(format!("a row of more than {columns} columns")));
            }
            let value: f64 = cell
                .trim()
                .parse()
                .map_err(|_| CbufError(format!("`{cell}` is not a number")))?;
            row.push(value.is_finite().then_some(value));
        }
        rows.push(row);
    }
    Ok((header, rows))
}

/// One plugin's line of `/plugins.json`.
#[derive(Debug, Serialize)]
struct PluginLine<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    stage: &'static str,
    delivery: Option<&'static str>,
    /// Every counter of the plugin's stage, summed over cores, by its metric name.
    counters: serde_json::Map<String, serde_json::Value>,
    /// Records its disk queues' consumers have yet to deliver, summed over cores (durable
    /// plugins only).
    queue_lag_records: Option<u64>,
    /// Bytes of the same.
    queue_lag_bytes: Option<u64>,
}

/// The `/plugins.json` document: the time, and each plugin with its counters and queue lag.
pub fn plugins_json(telemetry: &Telemetry, catalog: &Catalog, queues: &[QueueSample]) -> String {
    let mut lines = Vec::with_capacity(catalog.plugins.len());
    for (index, plugin) in catalog.plugins.iter().enumerate() {
        let mut counters = serde_json::Map::new();
        for metric in Metric::ALL {
            if metric.stages() & plugin.stage != 0 {
                let value = telemetry.sum(index, metric);
                counters.insert(metric.name().into(), value.into());
            }
        }
        let mine = queues.iter().filter(|sample| sample.plugin == index);
        let lags = mine.flat_map(|sample| sample.consumers.iter());
        let (mut records, mut bytes, mut any) = (0u64, 0u64, false);
        for (_, lag_records, lag_bytes) in lags {
            records += lag_records;
            bytes += lag_bytes;
            any = true;
        }
        let stage = match plugin.stage {
            stage::INPUT => "input",
            stage::OUTPUT => "output",
            _ => "filter",
        };
        lines.push(PluginLine {
            name: &plugin.name,
            type_name: plugin.type_name,
            stage,
            delivery: plugin.delivery,
            counters,
            queue_lag_records: any.then_some(records),
            queue_lag_bytes: any.then_some(bytes),
        });
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    let document = serde_json::json!({ "now_ms": now_ms, "plugins": lines });
    format!("{document}\n")
}

/// The `/graphs.json` document: whether a DashboardOutput runs, its graphs and terminations.
pub fn graphs_json(board: Option<&Board>) -> String {
    let snapshot = board.map(Board::load).unwrap_or_default();
    let graphs: Vec<&Graph> = snapshot.graphs.iter().map(|graph| &**graph).collect();
    let terminations: Vec<&Termination> = snapshot.terminations.iter().map(|t| &**t).collect();
    let document = serde_json::json!({
        "dashboard_output": board.is_some(),
        "graphs": graphs,
        "terminations": terminations,
    });
    format!("{document}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cbuf_payload_parses_to_its_header_and_rows() {
        let payload = "{\"time\":10,\"rows\":3,\"columns\":2,\"seconds_per_row\":1,\
                       \"column_info\":[{\"name\":\"a\",\"unit\":\"count\",\"aggregation\":\"sum\"},\
                       {\"name\":\"b\",\"unit\":\"count\",\"aggregation\":\"sum\"}]}\n\
                       1\tnan\n2.5\t3\nnan\tnan\n";
        let (header, rows) = parse_cbuf(payload).unwrap();
        assert_eq!(header["columns"], 2);
        assert_eq!(
            rows,
            vec![
                vec![Some(1.0), None],
                vec![Some(2.5), Some(3.0)],
                vec![None, None]
            ]
        );
    }

    #[test]
    fn a_bad_cbuf_payload_is_refused_with_its_reason() {
        let header = "{\"time\":0,\"rows\":1,\"columns\":1}";
        let cases = [
            ("not json\n1\n".to_string(), "not JSON"),
            ("{\"rows\":1}\n1\n".to_string(), "no `rows`"),
            (format!("{header}\n1\n2\n"), "more than the 1 rows"),
            (format!("{header}\n1\t2\n"), "more than 1 columns"),
            (format!("{header}\nx\n"), "`x` is not a number"),
        ];
        for (payload, reason) in cases {
            let error = parse_cbuf(&payload).unwrap_err();
            assert!(error.0.contains(reason), "{payload:?}: {error:?}");
        }
    }

    #[test]
    fn names_with_markup_stay_text_in_the_json() {
        let board = Board::default();
        board.publish(Snapshot {
            graphs: vec![Arc::new(Graph {
                logger: "<script>alert(1)</script>".into(),
                name: "\"quoted\"".into(),
                updated_ms: 1,
                header: serde_json::json!({"rows": 1}),
                rows: vec![vec![Some(1.0)]],
                payload_bytes: 10,
            })],
            terminations: Vec::new(),
        });
        let text = graphs_json(Some(&board));
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed["graphs"][0]["logger"], "<script>alert(1)</script>");
        assert_eq!(parsed["graphs"][0]["name"], "\"quoted\"");
        assert_eq!(
            graphs_json(None).trim(),
            "{\"dashboard_output\":false,\"graphs\":[],\"terminations\":[]}"
        );
    }
}
