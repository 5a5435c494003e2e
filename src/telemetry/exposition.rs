//! What the operator endpoint answers, as pure functions of the counters: the Prometheus text
//! exposition format (`/metrics`) and Heka's `heka.all-report` JSON shape (`/report`).
//!
//! Every value is read from the per-core rows ([`Telemetry`]) and from the disk queues'
//! published positions at the moment of the request; nothing here writes to either. Series
//! are labelled `plugin` (the section name), `type` (the plugin kind), `core` (the CPU of
//! the row) and, for outputs, `delivery` (their delivery class). `docs/metrics.md` lists
//! every metric.

use std::fmt::Write as _;

use super::{stage, Metric, Telemetry, STALL_BOUNDS_NS};
use crate::config::plan::Plan;

/// Every metric name starts with this.
pub const PREFIX: &str = "gyges_";

/// What the endpoint says about one plugin besides its counters.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// The section name (its telemetry name).
    pub name: String,
    /// Its stage, one of the bits of [`stage`].
    pub stage: u8,
    /// Its kind, such as `TcpInput`.
    pub type_name: &'static str,
    /// An output's delivery class (`memory`, `best_effort`, `durable`).
    pub delivery: Option<&'static str>,
    /// An input with a Lua decoder or an output with a Lua encoder: it also shows the
    /// `sandbox_*` gauges.
    pub sandboxed: bool,
}

/// The plugins in telemetry order and the CPU of each telemetry row.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// Inputs, then outputs, then filters, as `runtime::plugin_names` orders them.
    pub plugins: Vec<PluginInfo>,
    /// The CPU of each core row.
    pub cores: Vec<usize>,
}

impl Catalog {
    /// The catalog of a plan, in the order its telemetry rows are laid out.
    pub fn of(plan: &Plan) -> Catalog {
        let inputs = plan.inputs.iter().map(|input| PluginInfo {
            name: input.name.clone(),
            stage: stage::INPUT,
            type_name: input.kind.type_name(),
            delivery: None,
            sandboxed: input
                .decoder
                .as_ref()
                .is_some_and(|decoder| decoder.sandboxed()),
        });
        let outputs = plan.outputs.iter().map(|output| PluginInfo {
            name: output.name.clone(),
            stage: stage::OUTPUT,
            type_name: output.kind.type_name(),
            delivery: Some(output.delivery.name()),
            sandboxed: output.encoder.sandboxed(),
        });
        let filters = plan.filters.iter().map(|filter| PluginInfo {
            name: filter.name.clone(),
            stage: stage::FILTER,
            type_name: filter.kind.type_name(),
            delivery: None,
            sandboxed: false,
        });
        Catalog {
            plugins: inputs.chain(outputs).chain(filters).collect(),
            cores: plan.global.cores.clone(),
        }
    }
}

/// One core's disk queue of a durable output or filter, as of the request.
#[derive(Debug, Clone, Default)]
pub struct QueueSample {
    /// The plugin's telemetry index.
    pub plugin: usize,
    /// The core row whose queue it is.
    pub row: usize,
    /// Bytes of its segment files.
    pub retained_bytes: u64,
    /// Per consumer: name, records behind, bytes behind.
    pub consumers: Vec<(String, u64, u64)>,
}

/// Writes `value` as a label value: backslash, double quote and newline escaped.
fn put_label_value(out: &mut String, value: &str) {
    for character in value.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
}

/// Writes the `{plugin="..",type="..",core=".."[,delivery=".."]}` of a plugin on a core.
fn put_plugin_labels(out: &mut String, plugin: &PluginInfo, cpu: usize) {
    out.push_str("{plugin=\"");
    put_label_value(out, &plugin.name);
    out.push_str("\",type=\"");
    put_label_value(out, plugin.type_name);
    let _ = write!(out, "\",core=\"{cpu}\"");
    if let Some(delivery) = plugin.delivery {
        let _ = write!(out, ",delivery=\"{delivery}\"");
    }
    out.push('}');
}

/// Writes a family's `# HELP` and `# TYPE` lines.
fn put_family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}");
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
}

/// The Prometheus text exposition (format 0.0.4) of every counter of every plugin on every
/// core, the queues' backlogs, and whether the daemon is ready.
pub fn prometheus(
    telemetry: &Telemetry,
    catalog: &Catalog,
    queues: &[QueueSample],
    ready: bool,
) -> String {
    let mut out = String::with_capacity(4096);
    put_family(
        &mut out,
        "ready",
        "gauge",
        "1 once every input is bound, 0 while starting or stopping.",
    );
    let _ = writeln!(out, "{PREFIX}ready {}", u8::from(ready));
    for metric in Metric::ALL {
        let plugins = catalog.plugins.iter().enumerate();
        let shown: Vec<_> = plugins
            .filter(|(_, plugin)| {
                metric.stages() & plugin.stage != 0 || (plugin.sandboxed && metric.is_sandbox())
            })
            .collect();
        if shown.is_empty() {
            continue;
        }
        let kind = if metric.is_gauge() {
            "gauge"
        } else {
            "counter"
        };
        put_family(&mut out, metric.name(), kind, metric.help());
        for (index, plugin) in shown {
            for (row, &cpu) in catalog.cores.iter().enumerate() {
                let _ = write!(out, "{PREFIX}{}", metric.name());
                put_plugin_labels(&mut out, plugin, cpu);
                let _ = writeln!(out, " {}", telemetry.get(row, index, metric));
            }
        }
    }
    put_queues(&mut out, catalog, queues);
    put_stalls(&mut out, telemetry, catalog);
    out
}

/// Nanoseconds as seconds, exactly, for a histogram bound or a sum.
fn put_seconds(out: &mut String, nanos: u64) {
    let _ = write!(
        out,
        "{}.{:09}",
        nanos / 1_000_000_000,
        nanos % 1_000_000_000
    );
}

/// Each core's stall histogram (how late its 1 ms ticker ran) and its largest stall.
fn put_stalls(out: &mut String, telemetry: &Telemetry, catalog: &Catalog) {
    let name = "core_stall_seconds";
    put_family(
        out,
        name,
        "histogram",
        "How late each core's 1 ms ticker ran: time the core could not run its tasks.",
    );
    let rows = catalog.cores.iter().enumerate().take(telemetry.cores());
    for (row, &cpu) in rows.clone() {
        let stalls = telemetry.stalls(row);
        let mut cumulative = 0;
        for (bucket, count) in stalls.buckets.iter().enumerate() {
            cumulative += count;
            let _ = write!(out, "{PREFIX}{name}_bucket{{core=\"{cpu}\",le=\"");
            match STALL_BOUNDS_NS.get(bucket) {
                Some(&bound) => put_seconds(out, bound),
                None => out.push_str("+Inf"),
            }
            let _ = writeln!(out, "\"}} {cumulative}");
        }
        let _ = write!(out, "{PREFIX}{name}_sum{{core=\"{cpu}\"}} ");
        put_seconds(out, stalls.sum_ns);
        out.push('\n');
        let _ = writeln!(out, "{PREFIX}{name}_count{{core=\"{cpu}\"}} {cumulative}");
    }
    put_family(
        out,
        "core_stall_seconds_max",
        "gauge",
        "The largest stall of each core since it started.",
    );
    for (row, &cpu) in rows {
        let _ = write!(out, "{PREFIX}core_stall_seconds_max{{core=\"{cpu}\"}} ");
        put_seconds(out, telemetry.stalls(row).max_ns);
        out.push('\n');
    }
}

/// The queue families: bytes on disk, and each consumer's lag in records and bytes.
fn put_queues(out: &mut String, catalog: &Catalog, queues: &[QueueSample]) {
    if queues.is_empty() {
        return;
    }
    let known = |sample: &&QueueSample| {
        sample.plugin < catalog.plugins.len() && sample.row < catalog.cores.len()
    };
    put_family(
        out,
        "queue_bytes",
        "gauge",
        "Bytes in the segment files of the core's disk queue.",
    );
    for sample in queues.iter().filter(known) {
        let _ = write!(out, "{PREFIX}queue_bytes");
        let (plugin, cpu) = (&catalog.plugins[sample.plugin], catalog.cores[sample.row]);
        put_plugin_labels(out, plugin, cpu);
        let _ = writeln!(out, " {}", sample.retained_bytes);
    }
    let lags = [
        (
            "queue_lag_records",
            "Records the consumer has yet to deliver.",
        ),
        ("queue_lag_bytes", "Bytes the consumer has yet to deliver."),
    ];
    for (which, (name, help)) in lags.into_iter().enumerate() {
        put_family(out, name, "gauge", help);
        for sample in queues.iter().filter(known) {
            let (plugin, cpu) = (&catalog.plugins[sample.plugin], catalog.cores[sample.row]);
            for (consumer, records, bytes) in &sample.consumers {
                let _ = write!(out, "{PREFIX}{name}");
                put_plugin_labels(out, plugin, cpu);
                // The consumer label goes inside the braces the plugin labels closed.
                out.pop();
                out.push_str(",consumer=\"");
                put_label_value(out, consumer);
                let value = if which == 0 { records } else { bytes };
                let _ = writeln!(out, "\"}} {value}");
            }
        }
    }
}

/// A value of the report, with its unit as Heka names it (`count`, `B`, `ns`).
fn entry(value: u64, representation: &str) -> serde_json::Value {
    serde_json::json!({ "value": value, "representation": representation })
}

/// Heka's report names for the counters that have one.
fn heka_name(metric: Metric) -> Option<&'static str> {
    match metric {
        Metric::Processed => Some("ProcessMessageCount"),
        Metric::ProcessFailures => Some("ProcessMessageFailures"),
        Metric::Injected => Some("InjectMessageCount"),
        Metric::RingLength => Some("InChanLength"),
        Metric::RingCapacity => Some("InChanCapacity"),
        Metric::SandboxMemory => Some("Memory"),
        Metric::SandboxInstructionsMax => Some("MaxInstructions"),
        Metric::SandboxOutputMax => Some("MaxOutput"),
        _ => None,
    }
}

/// The `/report` document: Heka's `heka.all-report` shape (`globals`, then `inputs`,
/// `filters`, `outputs`, each a list of `{"Name": .., <Metric>: {"value", "representation"}}`),
/// every value summed over cores. Heka's names where gyges counts the same thing
/// (ProcessMessageCount, InChanLength, ProcessMessageAvgDuration, ...), gyges's counter names
/// for the rest; decoders and encoders run inside their input or output and are counted there.
pub fn report(telemetry: &Telemetry, catalog: &Catalog, queues: &[QueueSample]) -> String {
    let mut sections = [
        ("inputs", stage::INPUT, Vec::new()),
        ("filters", stage::FILTER, Vec::new()),
        ("outputs", stage::OUTPUT, Vec::new()),
    ];
    for (index, plugin) in catalog.plugins.iter().enumerate() {
        let mut object = serde_json::Map::new();
        object.insert("Name".into(), plugin.name.clone().into());
        object.insert("Type".into(), plugin.type_name.into());
        if let Some(delivery) = plugin.delivery {
            object.insert("Delivery".into(), delivery.into());
        }
        for metric in Metric::ALL.into_iter() {
            if metric.stages() & plugin.stage == 0 {
                continue;
            }
            let name = heka_name(metric).unwrap_or(metric.name());
            let representation = match metric {
                Metric::BytesRead | Metric::SentBytes | Metric::DiscardedBytes => "B",
                Metric::ProcessNanos => "ns",
                _ => "count",
            };
            object.insert(
                name.into(),
                entry(telemetry.sum(index, metric), representation),
            );
        }
        if plugin.stage == stage::FILTER {
            let processed = telemetry.sum(index, Metric::Processed);
            let nanos = telemetry.sum(index, Metric::ProcessNanos);
            let average = nanos.checked_div(processed).unwrap_or(0);
            object.insert("ProcessMessageAvgDuration".into(), entry(average, "ns"));
        }
        let samples = queues.iter().filter(|sample| sample.plugin == index);
        let (mut bytes, mut lag) = (None::<u64>, 0u64);
        for sample in samples {
            *bytes.get_or_insert(0) += sample.retained_bytes;
            lag += sample
                .consumers
                .iter()
                .map(|consumer| consumer.1)
                .sum::<u64>();
        }
        if let Some(bytes) = bytes {
            object.insert("QueueBytes".into(), entry(bytes, "B"));
            object.insert("QueueLagRecords".into(), entry(lag, "count"));
        }
        if let Some(section) = sections.iter_mut().find(|(_, bit, _)| *bit == plugin.stage) {
            section.2.push(serde_json::Value::Object(object));
        }
    }
    let mut document = serde_json::Map::new();
    let cores = catalog.cores.len() as u64;
    let globals = serde_json::json!([{ "Name": "gyges", "Cores": entry(cores, "count") }]);
    document.insert("globals".into(), globals);
    for (name, _, list) in sections {
        document.insert(name.into(), serde_json::Value::Array(list));
    }
    serde_json::Value::Object(document).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let plugin = |name: &str, stage, type_name, delivery| PluginInfo {
            name: name.into(),
            stage,
            type_name,
            delivery,
            sandboxed: false,
        };
        Catalog {
            plugins: vec![
                plugin("in \"quoted\"\\\n", stage::INPUT, "TcpInput", None),
                plugin("out", stage::OUTPUT, "FileOutput", Some("durable")),
                plugin("counter", stage::FILTER, "SandboxFilter", None),
            ],
            cores: vec![3, 5],
        }
    }

    #[test]
    fn every_metric_is_documented() {
        let page = include_str!("../../docs/metrics.md");
        let names = Metric::ALL.into_iter().map(Metric::name);
        let queues = [
            "queue_bytes",
            "queue_lag_records",
            "queue_lag_bytes",
            "ready",
            "core_stall_seconds",
            "core_stall_seconds_max",
        ];
        for name in names.chain(queues) {
            assert!(page.contains(&format!("`{PREFIX}{name}`")), "{name}");
        }
    }

    #[test]
    fn every_sample_is_labelled_and_escaped_and_counts_per_core() {
        let catalog = catalog();
        let names = catalog.plugins.iter().map(|plugin| plugin.name.clone());
        let telemetry = Telemetry::new(2, names.collect());
        telemetry.add(0, 0, Metric::Records, 4);
        telemetry.add(1, 0, Metric::Records, 6);
        telemetry.add(1, 1, Metric::Sent, 9);
        telemetry.set(0, 2, Metric::RingLength, 2);
        let queue = QueueSample {
            plugin: 1,
            row: 1,
            retained_bytes: 100,
            consumers: vec![("out".into(), 7, 70)],
        };
        let text = prometheus(&telemetry, &catalog, std::slice::from_ref(&queue), true);
        let input = r#"plugin="in \"quoted\"\\\n",type="TcpInput""#;
        assert!(text.contains(&format!("gyges_records_total{{{input},core=\"3\"}} 4\n")));
        assert!(text.contains(&format!("gyges_records_total{{{input},core=\"5\"}} 6\n")));
        let output = r#"plugin="out",type="FileOutput",core="5",delivery="durable""#;
        assert!(text.contains(&format!("gyges_sent_total{{{output}}} 9\n")));
        assert!(text.contains(&format!(
            "gyges_queue_lag_records{{{output},consumer=\"out\"}} 7\n"
        )));
        assert!(text.contains("# TYPE gyges_ring_length gauge\n"));
        assert!(text.contains("# TYPE gyges_sent_total counter\n"));
        assert!(text.contains("gyges_ready 1\n"));
        // A metric is shown only for the stages that count it.
        assert!(!text.contains("gyges_sent_total{plugin=\"in"));
        assert!(!text.contains("gyges_records_total{plugin=\"out\""));
        // Each family's HELP and TYPE come once, before its samples.
        assert_eq!(text.matches("# TYPE gyges_records_total ").count(), 1);

        let report: serde_json::Value =
            serde_json::from_str(&report(&telemetry, &catalog, &[queue])).unwrap();
        assert_eq!(report["inputs"][0]["records_total"]["value"], 10);
        assert_eq!(report["outputs"][0]["sent_total"]["value"], 9);
        assert_eq!(report["outputs"][0]["QueueLagRecords"]["value"], 7);
        assert_eq!(report["filters"][0]["InChanLength"]["value"], 2);
        assert_eq!(
            report["filters"][0]["ProcessMessageAvgDuration"]["value"],
            0
        );
        assert_eq!(report["globals"][0]["Cores"]["value"], 2);
    }

    #[test]
    fn each_core_has_a_cumulative_stall_histogram_and_its_max() {
        let catalog = catalog();
        let names = catalog.plugins.iter().map(|plugin| plugin.name.clone());
        let telemetry = Telemetry::new(2, names.collect());
        telemetry.record_stall(1, 40_000);
        telemetry.record_stall(1, 1_200_000);
        telemetry.record_stall(1, 60_000_000);
        let text = prometheus(&telemetry, &catalog, &[], true);
        assert!(text.contains("# TYPE gyges_core_stall_seconds histogram\n"));
        let bucket = |core: usize, le: &str| {
            let prefix = format!("gyges_core_stall_seconds_bucket{{core=\"{core}\",le=\"{le}\"}} ");
            let line = text.lines().find(|line| line.starts_with(&prefix));
            line.and_then(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        };
        assert_eq!(bucket(5, "0.000025000"), Some(0));
        assert_eq!(bucket(5, "0.000050000"), Some(1));
        assert_eq!(bucket(5, "0.001000000"), Some(1));
        assert_eq!(bucket(5, "0.001500000"), Some(2));
        assert_eq!(bucket(5, "0.050000000"), Some(2));
        assert_eq!(bucket(5, "+Inf"), Some(3));
        assert_eq!(bucket(3, "+Inf"), Some(0));
        assert!(text.contains("gyges_core_stall_seconds_count{core=\"5\"} 3\n"));
        assert!(text.contains("gyges_core_stall_seconds_sum{core=\"5\"} 0.061240000\n"));
        assert!(text.contains("gyges_core_stall_seconds_max{core=\"5\"} 0.060000000\n"));
        assert!(text.contains("gyges_core_stall_seconds_max{core=\"3\"} 0.000000000\n"));
    }
}
