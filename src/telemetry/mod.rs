//! Counters for every plugin on every core, summed on request.
//!
//! Each core owns its own row of counters and is the only writer of it, so an increment is a
//! plain relaxed load and store: no lock prefix, no contention. Rows are padded to separate
//! cache lines. Any thread may read and sum them (the summary log, `gyges validate`, tests).
//! Counter names follow the telemetry contract in `docs/architecture.md`: what was received,
//! decoded, discarded, matched, sent and dropped.
//!
//! Repeating warnings go through [`log_limit::LogLimit`]: one line per interval, with a count.
//!
//! Each core's row also holds its *stall* histogram ([`Telemetry::record_stall`]): how late
//! the core's 1 ms ticker ran each time, which is how long the core could not run any of its
//! tasks (a long batch, a Lua compile, the kernel running something else on the CPU).

pub mod dashboard;
pub mod endpoint;
pub mod exposition;
pub mod log_limit;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One counter of one plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Input: records split from the stream (after framing).
    Records = 0,
    /// Input: bytes read from sockets.
    BytesRead,
    /// Input: records that failed to decode (dropped, or passed on as payload).
    DecodeFailures,
    /// Input: bytes skipped while resynchronising on a corrupt stream.
    DiscardedBytes,
    /// Input: records over `max_message_size`, dropped.
    OversizeRecords,
    /// Input: records whose HMAC did not verify, dropped.
    AuthFailures,
    /// Input: connections accepted.
    Connections,
    /// Input: records without a decoder that are not valid UTF-8 (passed on unchanged).
    InvalidUtf8,
    /// Output: messages its matcher selected.
    Matched,
    /// Output: messages written or sent.
    Sent,
    /// Output: bytes written or sent.
    SentBytes,
    /// Output: messages dropped (buffer full while the destination is unreachable).
    Dropped,
    /// Output: messages the encoder could not encode.
    EncodeFailures,
    /// Output: write or connection errors. Input: accept or receive errors.
    Errors,
    /// Filter: messages processed (Heka's ProcessMessageCount).
    Processed,
    /// Filter: process_message calls that failed (ProcessMessageFailures).
    ProcessFailures,
    /// Filter: messages injected (InjectMessageCount).
    Injected,
    /// Filter: nanoseconds spent processing; divided by `processed` it is Heka's
    /// ProcessMessageAvgDuration.
    ProcessNanos,
    /// Filter: times it terminated (0 or 1).
    Terminations,
    /// Filter (gauge): batches waiting in the rings toward its core (Heka's InChanLength).
    RingLength,
    /// Filter (gauge): batches those rings can hold (InChanCapacity).
    RingCapacity,
    /// Input: acknowledgements sent to acknowledging senders. Output: acknowledgements
    /// received from the receiver (`ack = true`).
    Acks,
    /// Input: connections closed at once because the core had `max_connections` open.
    RefusedConnections,
    /// Input: acknowledgement marks ignored because the connection sent no hello first.
    MarksIgnored,
    /// Input: TLS handshakes that failed (a client refused by `client_auth`, plain TCP sent
    /// to a TLS port, a timeout); the connection was closed.
    TlsHandshakeFailures,
    /// Input: malformed HTTP requests, answered 400 (HttpListenInput).
    BadRequests,
    /// Input: HTTP requests refused with 503 because a destination of the core was full
    /// (HttpListenInput).
    RefusedRequests,
    /// Output: messages sent again after a failed attempt (HttpOutput, ElasticSearchOutput:
    /// a non-2xx answer, a timeout, an item answered 429 or 5xx); each retry of a message
    /// counts once.
    Retries,
    /// Output: messages the destination refused for good (ElasticSearchOutput: a bulk item
    /// answered 4xx other than 429, such as a mapping error); not sent again. Filter:
    /// messages its matcher chose that its `message_signer` did not sign.
    Rejected,
    /// Sandbox filter (gauge): bytes its Lua state uses after its last call (Heka's Memory).
    SandboxMemory,
    /// Sandbox filter (gauge): the most instructions one call used (MaxInstructions).
    SandboxInstructionsMax,
    /// Sandbox filter (gauge): the largest payload or injected message, bytes (MaxOutput).
    SandboxOutputMax,
}

/// A SandboxDecoder or SandboxEncoder publishes its `sandbox_*` gauges on its first call and
/// then once every this many calls (a filter's host publishes after each batch): often enough
/// to follow, rarely enough to cost nothing per message.
pub const SANDBOX_GAUGE_CALLS: u32 = 256;
const _: () = assert!(SANDBOX_GAUGE_CALLS.is_power_of_two());

/// How many metrics each plugin has.
pub const METRICS_PER_PLUGIN: usize = 32;

impl Metric {
    /// Every metric, in index order.
    pub const ALL: [Metric; METRICS_PER_PLUGIN] = [
        Metric::Records,
        Metric::BytesRead,
        Metric::DecodeFailures,
        Metric::DiscardedBytes,
        Metric::OversizeRecords,
        Metric::AuthFailures,
        Metric::Connections,
        Metric::InvalidUtf8,
        Metric::Matched,
        Metric::Sent,
        Metric::SentBytes,
        Metric::Dropped,
        Metric::EncodeFailures,
        Metric::Errors,
        Metric::Processed,
        Metric::ProcessFailures,
        Metric::Injected,
        Metric::ProcessNanos,
        Metric::Terminations,
        Metric::RingLength,
        Metric::RingCapacity,
        Metric::Acks,
        Metric::RefusedConnections,
        Metric::MarksIgnored,
        Metric::TlsHandshakeFailures,
        Metric::BadRequests,
        Metric::RefusedRequests,
        Metric::Retries,
        Metric::Rejected,
        Metric::SandboxMemory,
        Metric::SandboxInstructionsMax,
        Metric::SandboxOutputMax,
    ];

    /// The counter's name, ending `_total` as counters do.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Records => "records_total",
            Metric::BytesRead => "bytes_read_total",
            Metric::DecodeFailures => "decode_failures_total",
            Metric::DiscardedBytes => "discarded_bytes_total",
            Metric::OversizeRecords => "oversize_records_total",
            Metric::AuthFailures => "auth_failures_total",
            Metric::Connections => "connections_total",
            Metric::InvalidUtf8 => "invalid_utf8_total",
            Metric::Matched => "matched_total",
            Metric::Sent => "sent_total",
            Metric::SentBytes => "sent_bytes_total",
            Metric::Dropped => "dropped_total",
            Metric::EncodeFailures => "encode_failures_total",
            Metric::Errors => "errors_total",
            Metric::Processed => "processed_total",
            Metric::ProcessFailures => "process_failures_total",
            Metric::Injected => "injected_total",
            Metric::ProcessNanos => "process_nanoseconds_total",
            Metric::Terminations => "terminations_total",
            Metric::RingLength => "ring_length",
            Metric::RingCapacity => "ring_capacity",
            Metric::Acks => "acks_total",
            Metric::RefusedConnections => "refused_connections_total",
            Metric::MarksIgnored => "marks_ignored_total",
            Metric::TlsHandshakeFailures => "tls_handshake_failures_total",
            Metric::BadRequests => "bad_requests_total",
            Metric::RefusedRequests => "refused_requests_total",
            Metric::Retries => "retries_total",
            Metric::Rejected => "rejected_total",
            Metric::SandboxMemory => "sandbox_memory_bytes",
            Metric::SandboxInstructionsMax => "sandbox_instructions_max",
            Metric::SandboxOutputMax => "sandbox_output_bytes_max",
        }
    }
}

/// The stages a plugin can belong to, as bits, for [`Metric::stages`].
pub mod stage {
    /// Inputs.
    pub const INPUT: u8 = 1;
    /// Outputs.
    pub const OUTPUT: u8 = 2;
    /// Filters.
    pub const FILTER: u8 = 4;
}

impl Metric {
    /// The stages whose plugins count this metric (bits of [`stage`]): the others leave it 0,
    /// and the operator endpoint does not show it for them.
    pub fn stages(self) -> u8 {
        match self {
            Metric::Errors => stage::INPUT | stage::OUTPUT | stage::FILTER,
            Metric::Acks => stage::INPUT | stage::OUTPUT,
            Metric::Matched | Metric::Dropped | Metric::Rejected => stage::OUTPUT | stage::FILTER,
            Metric::Sent | Metric::SentBytes | Metric::EncodeFailures | Metric::Retries => {
                stage::OUTPUT
            }
            Metric::Processed
            | Metric::ProcessFailures
            | Metric::Injected
            | Metric::ProcessNanos
            | Metric::Terminations
            | Metric::RingLength
            | Metric::RingCapacity
            | Metric::SandboxMemory
            | Metric::SandboxInstructionsMax
            | Metric::SandboxOutputMax => stage::FILTER,
            _ => stage::INPUT,
        }
    }

    /// Whether it is one of a Lua sandbox's gauges, which an input with a SandboxDecoder and
    /// an output with a SandboxEncoder show too.
    pub fn is_sandbox(self) -> bool {
        matches!(
            self,
            Metric::SandboxMemory | Metric::SandboxInstructionsMax | Metric::SandboxOutputMax
        )
    }

    /// Whether the value is a gauge (set, may go down) rather than a counter (only added to).
    pub fn is_gauge(self) -> bool {
        matches!(
            self,
            Metric::RingLength
                | Metric::RingCapacity
                | Metric::SandboxMemory
                | Metric::SandboxInstructionsMax
                | Metric::SandboxOutputMax
        )
    }

    /// One line saying what the metric counts, for the Prometheus `# HELP` line.
    pub fn help(self) -> &'static str {
        match self {
            Metric::Records => "Records split from the stream (after framing).",
            Metric::BytesRead => "Bytes read from sockets.",
            Metric::DecodeFailures => {
                "Records that failed to decode (dropped, or passed on as payload)."
            }
            Metric::DiscardedBytes => "Bytes skipped while resynchronising on a corrupt stream.",
            Metric::OversizeRecords => "Records over max_message_size, dropped.",
            Metric::AuthFailures => "Records whose HMAC did not verify, dropped.",
            Metric::Connections => "Connections accepted.",
            Metric::InvalidUtf8 => "Records without a decoder that are not valid UTF-8.",
            Metric::Matched => "Messages the plugin's matcher selected.",
            Metric::Sent => "Messages written or sent.",
            Metric::SentBytes => "Bytes written or sent.",
            Metric::Dropped => "Messages dropped (a full buffer, a full ring, a lost queue).",
            Metric::EncodeFailures => "Messages the encoder could not encode.",
            Metric::Errors => "Write, connection, accept, receive or queue errors.",
            Metric::Processed => "Messages the filter processed (ProcessMessageCount).",
            Metric::ProcessFailures => {
                "process_message calls that failed (ProcessMessageFailures)."
            }
            Metric::Injected => "Messages the filter injected (InjectMessageCount).",
            Metric::ProcessNanos => "Nanoseconds the filter spent processing messages.",
            Metric::Terminations => "Times the filter terminated (0 or 1).",
            Metric::RingLength => "Batches waiting in the rings toward the filter's core.",
            Metric::RingCapacity => "Batches the rings toward the filter's core can hold.",
            Metric::Acks => {
                "Input: acknowledgements sent. Output: acknowledgements received (ack = true)."
            }
            Metric::RefusedConnections => "Connections closed at once: max_connections reached.",
            Metric::MarksIgnored => "Acknowledgement marks ignored: no hello on the connection.",
            Metric::TlsHandshakeFailures => "TLS handshakes that failed; the connection closed.",
            Metric::BadRequests => "Malformed HTTP requests, answered 400.",
            Metric::RefusedRequests => "HTTP requests answered 503: a destination was full.",
            Metric::Retries => "Messages sent again after a failed attempt.",
            Metric::Rejected => {
                "Output: refused for good by the destination. Filter: not signed by message_signer."
            }
            Metric::SandboxMemory => "Bytes the sandbox's Lua state uses (Memory).",
            Metric::SandboxInstructionsMax => "Most instructions one sandbox call used.",
            Metric::SandboxOutputMax => "Largest sandbox payload or injected message, bytes.",
        }
    }
}

/// u64s per cache line: rows are rounded up to this so cores don't share lines.
const LINE_WORDS: usize = 8;

/// The upper bounds, in nanoseconds, of the stall histogram's buckets (each bucket counts the
/// stalls above the previous bound and up to its own); one more bucket takes what is above
/// the last. Fine below a millisecond, where the data path's pauses are judged.
pub const STALL_BOUNDS_NS: [u64; 13] = [
    25_000, 50_000, 100_000, 200_000, 300_000, 500_000, 750_000, 1_000_000, 1_500_000, 2_000_000,
    5_000_000, 10_000_000, 50_000_000,
];
/// Buckets of the stall histogram: one per bound and the one above them all.
pub const STALL_BUCKETS: usize = STALL_BOUNDS_NS.len() + 1;
/// Words of a row after the plugins' counters: the buckets, then the count, the sum (ns) and
/// the largest stall (ns).
const STALL_WORDS: usize = STALL_BUCKETS + 3;

/// One core's stall histogram as read at one moment (the words are read one by one, so a
/// read racing the core may be one stall apart between the count and the buckets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stalls {
    /// Stalls per bucket (not cumulative), in the order of [`STALL_BOUNDS_NS`], then the
    /// bucket above the last bound.
    pub buckets: [u64; STALL_BUCKETS],
    /// Stalls recorded (ticks).
    pub count: u64,
    /// Their sum, nanoseconds.
    pub sum_ns: u64,
    /// The largest, nanoseconds.
    pub max_ns: u64,
}

/// The counters of every plugin on every core.
#[derive(Debug)]
pub struct Telemetry {
    plugins: Vec<String>,
    row_words: usize,
    counters: Box<[AtomicU64]>,
    cores: usize,
}

impl Telemetry {
    /// Counters for `cores` cores and the named plugins (inputs then outputs, in plan order).
    pub fn new(cores: usize, plugins: Vec<String>) -> Arc<Telemetry> {
        let words = plugins.len() * METRICS_PER_PLUGIN + STALL_WORDS;
        let row_words = words.div_ceil(LINE_WORDS).max(1) * LINE_WORDS;
        let counters = (0..row_words * cores).map(|_| AtomicU64::new(0)).collect();
        Arc::new(Telemetry {
            plugins,
            row_words,
            counters,
            cores,
        })
    }

    /// The plugin names, in index order.
    pub fn plugins(&self) -> &[String] {
        &self.plugins
    }

    #[inline]
    fn slot(&self, core: usize, plugin: usize, metric: Metric) -> &AtomicU64 {
        &self.counters[core * self.row_words + plugin * METRICS_PER_PLUGIN + metric as usize]
    }

    /// Adds `count` to a counter. Only the core that owns row `core` may call this.
    #[inline]
    pub fn add(&self, core: usize, plugin: usize, metric: Metric, count: u64) {
        let slot = self.slot(core, plugin, metric);
        // Single writer per slot: a plain load and store, not a locked read-modify-write.
        slot.store(
            slot.load(Ordering::Relaxed).wrapping_add(count),
            Ordering::Relaxed,
        );
    }

    /// Sets a gauge. Only the core that owns row `core` may call this.
    #[inline]
    pub fn set(&self, core: usize, plugin: usize, metric: Metric, value: u64) {
        self.slot(core, plugin, metric)
            .store(value, Ordering::Relaxed);
    }

    /// Word `index` of a core's stall histogram.
    #[inline]
    fn stall_word(&self, core: usize, index: usize) -> &AtomicU64 {
        let start = core * self.row_words + self.plugins.len() * METRICS_PER_PLUGIN;
        &self.counters[start + index]
    }

    /// Records how late the core's ticker ran (`stall_ns`). Only the core that owns row
    /// `core` may call this.
    #[inline]
    pub fn record_stall(&self, core: usize, stall_ns: u64) {
        let bucket = STALL_BOUNDS_NS
            .iter()
            .position(|&bound| stall_ns <= bound)
            .unwrap_or(STALL_BOUNDS_NS.len());
        let add = |index: usize, value: u64| {
            let word = self.stall_word(core, index);
            word.store(
                word.load(Ordering::Relaxed).wrapping_add(value),
                Ordering::Relaxed,
            );
        };
        add(bucket, 1);
        add(STALL_BUCKETS, 1);
        add(STALL_BUCKETS + 1, stall_ns);
        let max = self.stall_word(core, STALL_BUCKETS + 2);
        if stall_ns > max.load(Ordering::Relaxed) {
            max.store(stall_ns, Ordering::Relaxed);
        }
    }

    /// One core's stall histogram, as of now.
    pub fn stalls(&self, core: usize) -> Stalls {
        let mut stalls = Stalls::default();
        for (index, bucket) in stalls.buckets.iter_mut().enumerate() {
            *bucket = self.stall_word(core, index).load(Ordering::Relaxed);
        }
        stalls.count = self.stall_word(core, STALL_BUCKETS).load(Ordering::Relaxed);
        stalls.sum_ns = self
            .stall_word(core, STALL_BUCKETS + 1)
            .load(Ordering::Relaxed);
        stalls.max_ns = self
            .stall_word(core, STALL_BUCKETS + 2)
            .load(Ordering::Relaxed);
        stalls
    }

    /// How many core rows there are.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// One core's value of a counter.
    pub fn get(&self, core: usize, plugin: usize, metric: Metric) -> u64 {
        self.slot(core, plugin, metric).load(Ordering::Relaxed)
    }

    /// A counter summed over every core.
    pub fn sum(&self, plugin: usize, metric: Metric) -> u64 {
        (0..self.cores)
            .map(|core| self.get(core, plugin, metric))
            .sum()
    }

    /// A counter summed over every core and every plugin.
    pub fn total(&self, metric: Metric) -> u64 {
        (0..self.plugins.len())
            .map(|plugin| self.sum(plugin, metric))
            .sum()
    }

    /// The index of a plugin by name.
    pub fn plugin_index(&self, name: &str) -> Option<usize> {
        self.plugins.iter().position(|plugin| plugin == name)
    }

    /// Every non-zero counter, summed over cores, as `plugin.metric value` lines.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for (index, plugin) in self.plugins.iter().enumerate() {
            for metric in Metric::ALL {
                let value = self.sum(index, metric);
                if value != 0 {
                    out.push_str(&format!("{plugin}.{} {value}\n", metric.name()));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_sum_across_cores_and_stay_separate_per_plugin() {
        let telemetry = Telemetry::new(3, vec!["in".into(), "out".into()]);
        telemetry.add(0, 0, Metric::Records, 5);
        telemetry.add(2, 0, Metric::Records, 7);
        telemetry.add(1, 1, Metric::Sent, 3);
        assert_eq!(telemetry.sum(0, Metric::Records), 12);
        assert_eq!(telemetry.sum(1, Metric::Records), 0);
        assert_eq!(telemetry.total(Metric::Sent), 3);
        assert_eq!(
            telemetry.report(),
            "in.records_total 12\nout.sent_total 3\n"
        );
        // A gauge is replaced, not added to.
        telemetry.set(1, 1, Metric::RingLength, 9);
        telemetry.set(1, 1, Metric::RingLength, 4);
        assert_eq!(telemetry.sum(1, Metric::RingLength), 4);
        // Rows start on separate cache lines.
        assert_eq!(telemetry.row_words % LINE_WORDS, 0);
        // Every metric has its own slot, in index order.
        for (index, metric) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(metric as usize, index, "{}", metric.name());
        }
    }

    #[test]
    fn stalls_fall_in_their_buckets_per_core_apart_from_the_counters() {
        let telemetry = Telemetry::new(2, vec!["in".into()]);
        telemetry.record_stall(1, 0);
        telemetry.record_stall(1, 25_000);
        telemetry.record_stall(1, 25_001);
        telemetry.record_stall(1, 1_000_000);
        telemetry.record_stall(1, 900_000_000);
        let stalls = telemetry.stalls(1);
        let mut expected = [0; STALL_BUCKETS];
        expected[0] = 2; // 0 and 25 us: at most the first bound
        expected[1] = 1; // just above it
        expected[7] = 1; // 1 ms: the 1 ms bucket, bound included
        expected[STALL_BUCKETS - 1] = 1; // above every bound
        assert_eq!(stalls.buckets, expected);
        assert_eq!(stalls.count, 5);
        assert_eq!(stalls.sum_ns, 901_050_001);
        assert_eq!(stalls.max_ns, 900_000_000);
        assert_eq!(STALL_BOUNDS_NS[7], 1_000_000);
        // The other core and the plugin counters are untouched.
        assert_eq!(telemetry.stalls(0), Stalls::default());
        assert!(Metric::ALL
            .iter()
            .all(|&metric| telemetry.sum(0, metric) == 0));
        assert!(STALL_BOUNDS_NS.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
