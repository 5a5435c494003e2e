//! Every bound in gyges, in one place, with the relations between them asserted.
//!
//! A bound is never "no limit". Each one names what happens when it is reached; the docs in
//! `docs/architecture.md` list them all.

/// Default largest message (Heka's `max_message_size`): 64 KiB.
pub const MESSAGE_BYTES_DEFAULT: usize = 64 * 1024;
/// Smallest `max_message_size` accepted.
pub const MESSAGE_BYTES_MIN: usize = 1024;
/// The hard ceiling of `max_message_size`: 64 MiB. Heka had no way past 64 KiB.
pub const MESSAGE_BYTES_CEILING: usize = 64 * 1024 * 1024;

/// The most bytes Heka stream framing adds to a message: separator, header length byte,
/// a header of at most 255 bytes, unit separator.
pub const FRAME_OVERHEAD_BYTES_MAX: usize = 3 + FRAME_HEADER_BYTES_MAX;

/// Default io_uring registered memory per executor. The memlock limit on small machines is
/// 8 MiB for the whole process, so this stays small; a failed registration is harmless.
pub const IO_MEMORY_BYTES_DEFAULT: usize = 1024 * 1024;
/// Largest `io_memory` accepted.
pub const IO_MEMORY_BYTES_MAX: usize = 1 << 30;

/// Default slots in each cross-core ring, counted in batches. When a ring is full the
/// producing core stops reading its sockets until the owner catches up.
pub const RING_SLOTS_DEFAULT: usize = 16;
/// Largest `ring_slots` accepted.
pub const RING_SLOTS_MAX: usize = 4096;

/// Default bytes in one output batch: written (or handed to the owning core) when full.
pub const BATCH_BYTES_DEFAULT: usize = 256 * 1024;
/// Largest `batch_size` accepted.
pub const BATCH_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Default bytes read from a socket at once, on top of room for the largest record.
pub const READ_BUFFER_BYTES_DEFAULT: usize = 64 * 1024;
/// Largest `read_buffer_size` accepted.
pub const READ_BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Default connections one core serves per TcpInput; more wait in the kernel's backlog.
pub const CONNECTIONS_PER_CORE_DEFAULT: usize = 1024;
/// Largest `max_connections` accepted.
pub const CONNECTIONS_PER_CORE_MAX: usize = 65536;

/// Default bytes a TcpOutput buffers per core while its receiver is unreachable; past this
/// messages are dropped and counted.
pub const TCP_OUTPUT_BUFFER_BYTES_DEFAULT: usize = 8 * 1024 * 1024;
/// Largest `buffer_size` accepted for a TcpOutput.
pub const TCP_OUTPUT_BUFFER_BYTES_MAX: usize = 1 << 30;

/// Writes a core may have in flight to one file of a `delivery = "best_effort"` FileOutput
/// (each one batch, `batch_size`, from one connection waiting for it): a batch that would be
/// one more is dropped and counted, so a stalled disk makes the core drop, not pile up.
pub const BEST_EFFORT_FILE_WRITES_IN_FLIGHT_MAX: usize = 16;

/// Records an ingest core processes before it yields to its other tasks.
pub const RECORDS_PER_YIELD_MAX: usize = 4096;

const _: () = assert!(MESSAGE_BYTES_MIN <= MESSAGE_BYTES_DEFAULT);
const _: () = assert!(MESSAGE_BYTES_DEFAULT <= MESSAGE_BYTES_CEILING);
const _: () = assert!(RING_SLOTS_DEFAULT <= RING_SLOTS_MAX);
const _: () = assert!(BATCH_BYTES_DEFAULT <= BATCH_BYTES_MAX);
const _: () = assert!(TCP_OUTPUT_BUFFER_BYTES_DEFAULT >= BATCH_BYTES_DEFAULT);

// The matcher.
/// The longest message-matcher expression accepted, in bytes. Longer expressions are a
/// configuration error (lua_sandbox's own limits keep its expressions far below this).
pub const MATCHER_EXPRESSION_BYTES_MAX: usize = 64 * 1024;

/// The most tests (comparisons, TRUE and FALSE) one heka-dialect expression may hold. It also
/// bounds the compiled program: one op per test at most.
pub const MATCHER_TESTS_MAX: usize = 1024;

/// The most tests one lsb-dialect expression may hold, as lua_sandbox allows.
pub const MATCHER_TESTS_LSB_MAX: usize = 128;

/// The most ops in a compiled matcher program; the evaluator runs at most this many steps.
pub const MATCHER_OPS_MAX: usize = MATCHER_TESTS_MAX;

/// The deepest nesting of parentheses in a matcher expression (bounds parser recursion).
pub const MATCHER_NESTING_MAX: usize = 64;

/// The largest field or array index, `Fields[name][field_index][array_index]`, in the heka
/// dialect.
pub const MATCHER_INDEX_MAX: u32 = 65_535;

/// The largest field or array index in the lsb dialect, as lua_sandbox allows.
pub const MATCHER_INDEX_LSB_MAX: u32 = 255;

/// The longest string literal, Lua pattern or field name in the lsb dialect, in bytes, as
/// lua_sandbox allows.
pub const MATCHER_STRING_LSB_BYTES_MAX: usize = 255;

/// The most heap one compiled regular expression may use, in bytes (the regex crate's
/// `size_limit`; its lazy DFA cache gets the same bound).
pub const MATCHER_REGEX_BYTES_MAX: usize = 2 * 1024 * 1024;

const _: () = assert!(MATCHER_TESTS_LSB_MAX <= MATCHER_TESTS_MAX);
const _: () = assert!(MATCHER_INDEX_LSB_MAX <= MATCHER_INDEX_MAX);
// Jump targets are u16 with two values reserved for "accept" and "reject".
const _: () = assert!(MATCHER_OPS_MAX < u16::MAX as usize - 2);
const _: () = assert!(MATCHER_OPS_MAX >= MATCHER_TESTS_MAX);

// Splitters, framing, encoders and tools.
/// Bytes of a Heka frame header's protobuf at most: its length is one byte.
pub const FRAME_HEADER_BYTES_MAX: usize = 255;
/// Smallest read a stream buffer offers its socket; smaller reads cost more syscalls than bytes.
pub const READ_BUFFER_BYTES_MIN: usize = 512;
/// Delimiters per TokenSplitter record (`count`) at most.
pub const TOKEN_COUNT_MAX: usize = 1024;
/// HMAC keys one input may hold (`[input.signer.<name>_<version>]` sections) at most.
pub const SIGNER_KEYS_MAX: usize = 256;
/// Bytes of one HMAC key at most.
pub const HMAC_KEY_BYTES_MAX: usize = 4096;
/// Bytes of a PayloadEncoder `ts_format` at most.
pub const TS_FORMAT_BYTES_MAX: usize = 256;
/// Bytes `gyges flood` fills before each write: large writes keep the sender off the profile.
pub const FLOOD_BATCH_BYTES: usize = 256 * 1024;
/// Bytes of one `gyges flood` record at most.
pub const FLOOD_RECORD_BYTES_MAX: usize = 1024 * 1024;
/// Connections one `gyges flood` run opens at most.
pub const FLOOD_CONNECTIONS_MAX: usize = 1024;
const _: () = assert!(FRAME_OVERHEAD_BYTES_MAX == 258);
const _: () = assert!(READ_BUFFER_BYTES_MIN <= READ_BUFFER_BYTES_DEFAULT);
const _: () = assert!(READ_BUFFER_BYTES_DEFAULT <= READ_BUFFER_BYTES_MAX);
const _: () = assert!(MESSAGE_BYTES_CEILING < (1 << 28));
const _: () = assert!(FLOOD_RECORD_BYTES_MAX <= MESSAGE_BYTES_CEILING);

// Statistics: StatsdInput, StatAccumInput, StatFilter, CounterFilter, CarbonOutput.
/// Default bytes read per statsd datagram (Heka's `max_msg_size`); a longer datagram is cut
/// there by the kernel, as in Heka.
pub const STATSD_DATAGRAM_BYTES_DEFAULT: usize = 512;
/// Largest `max_msg_size` accepted: the largest UDP payload over IPv4.
pub const STATSD_DATAGRAM_BYTES_MAX: usize = 65_507;
/// Bytes of one stat name at most. A longer name is a bad line, counted and skipped.
pub const STAT_NAME_BYTES_MAX: usize = 1024;
/// Bytes of one set member at most. A longer member is a bad line, counted and skipped.
pub const STAT_MEMBER_BYTES_MAX: usize = 1024;
/// Distinct stats (all kinds together) one accumulator holds at most. A stat with a new name
/// past this is dropped and counted; stats already held go on being updated.
pub const STATS_PER_ACCUMULATOR_MAX: usize = 100_000;
/// Distinct members one set remembers per interval at most; further new members are
/// dropped and counted, so the emitted count saturates here.
pub const SET_MEMBERS_MAX: usize = 65_536;
/// Timer samples kept per timer per interval at most. Past this the samples kept become a
/// uniform reservoir sample: count, sum, lower, upper and mean stay exact, percentiles are
/// estimated from the reservoir.
pub const TIMER_SAMPLES_MAX: usize = 16_384;
/// Timer samples one accumulator keeps across all its timers at most (32 MiB of `f64`).
/// Past this no timer grows; each keeps sampling into what it already holds.
pub const TIMER_SAMPLES_TOTAL_MAX: usize = 4 * 1024 * 1024;
/// Entries of `percent_threshold` at most.
pub const PERCENT_THRESHOLDS_MAX: usize = 16;
/// Longest `ticker_interval` of the stat plugins, in seconds (one day).
pub const STAT_TICKER_INTERVAL_SECONDS_MAX: u64 = 86_400;
/// Bytes of one StatAccumInput prefix option or `message_type` at most.
pub const STAT_PREFIX_BYTES_MAX: usize = 256;
/// `[name.Metric.<id>]` subsections of one StatFilter at most.
pub const STAT_FILTER_METRICS_MAX: usize = 256;
/// Distinct `%name%` placeholders across one StatFilter's templates at most.
pub const STAT_FILTER_PLACEHOLDERS_MAX: usize = 32;
/// Bytes of one StatFilter `name` or `value` template at most.
pub const STAT_TEMPLATE_BYTES_MAX: usize = 1024;
/// Bytes of one interpolated StatFilter value at most; a longer value is not a number.
pub const STAT_VALUE_BYTES_MAX: usize = 64;
/// Default bytes of one CarbonOutput UDP datagram at most (Heka split at 62 KiB).
pub const CARBON_DATAGRAM_BYTES_DEFAULT: usize = 63_488;
/// Largest `max_datagram_size` accepted: the largest UDP payload over IPv4.
pub const CARBON_DATAGRAM_BYTES_MAX: usize = 65_507;
/// Smallest `max_datagram_size` accepted: room for one longest line.
pub const CARBON_DATAGRAM_BYTES_MIN: usize = 2048;
/// Counter rates a CounterFilter summarises at once (Heka's fixed ten).
pub const COUNTER_SUMMARY_TICKS: usize = 10;
const _: () = assert!(STAT_NAME_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(STAT_MEMBER_BYTES_MAX <= u16::MAX as usize);
const _: () = assert!(STATS_PER_ACCUMULATOR_MAX <= u32::MAX as usize);
const _: () = assert!(TIMER_SAMPLES_MAX <= TIMER_SAMPLES_TOTAL_MAX);
const _: () = assert!(STATSD_DATAGRAM_BYTES_DEFAULT <= STATSD_DATAGRAM_BYTES_MAX);
const _: () = assert!(CARBON_DATAGRAM_BYTES_MIN <= CARBON_DATAGRAM_BYTES_DEFAULT);
const _: () = assert!(CARBON_DATAGRAM_BYTES_DEFAULT <= CARBON_DATAGRAM_BYTES_MAX);
/// The longest line a StatAccumInput writes: two prefixes and a name with their dots, the
/// longest suffix (`.upper_100`), the longest `%f` value (about 1e308 with six decimals and a
/// sign) and the longest timestamp, with separators.
pub const STAT_LINE_BYTES_MAX: usize =
    2 * STAT_PREFIX_BYTES_MAX + STAT_NAME_BYTES_MAX + 2 + 16 + 1 + 330 + 1 + 20 + 1;
const _: () = assert!(STAT_LINE_BYTES_MAX <= CARBON_DATAGRAM_BYTES_MIN);
const _: () = assert!(STAT_FILTER_PLACEHOLDERS_MAX <= u8::MAX as usize);

/// Default `max_file_size` of a queue segment: 64 MiB.
pub const QUEUE_FILE_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest `max_file_size` accepted (tiny segments are for tests).
pub const QUEUE_FILE_BYTES_MIN: u64 = 1024;
/// Largest `max_file_size` accepted: 2 GiB.
pub const QUEUE_FILE_BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Default `max_buffer_size` of one core's queue: 1 GiB. At the limit, `full_action` applies.
pub const QUEUE_BUFFER_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Default `min_disk_free`: 256 MiB (four default segments, as Hindsight keeps).
pub const QUEUE_DISK_FREE_BYTES_DEFAULT: u64 = 4 * QUEUE_FILE_BYTES_DEFAULT;
/// Default `checkpoint_interval`, and its bounds.
pub const QUEUE_CHECKPOINT_INTERVAL_DEFAULT: std::time::Duration =
    std::time::Duration::from_secs(1);
pub const QUEUE_CHECKPOINT_INTERVAL_MIN: std::time::Duration = std::time::Duration::from_millis(10);
pub const QUEUE_CHECKPOINT_INTERVAL_MAX: std::time::Duration = std::time::Duration::from_secs(60);
/// Default bytes a queue reader reads at once.
pub const QUEUE_READ_BYTES_DEFAULT: usize = 256 * 1024;
/// Bounds of a queue's read and write sizes.
pub const QUEUE_IO_BYTES_MIN: usize = 256;
pub const QUEUE_IO_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Consumers (cursors) one source queue keeps at most.
pub const QUEUE_CONSUMERS_MAX: usize = 64;

const _: () = assert!(QUEUE_FILE_BYTES_MIN <= QUEUE_FILE_BYTES_DEFAULT);
const _: () = assert!(QUEUE_FILE_BYTES_DEFAULT <= QUEUE_FILE_BYTES_MAX);
const _: () = assert!(QUEUE_BUFFER_BYTES_DEFAULT >= 2 * QUEUE_FILE_BYTES_DEFAULT);
const _: () = assert!(QUEUE_IO_BYTES_MIN <= QUEUE_READ_BYTES_DEFAULT);
const _: () = assert!(QUEUE_READ_BYTES_DEFAULT <= QUEUE_IO_BYTES_MAX);
const _: () = assert!(QUEUE_IO_BYTES_MAX >= BATCH_BYTES_DEFAULT);

/// Default `ack_timeout` of an acknowledging TcpOutput: how long it waits for the receiver's
/// welcome (then it sends unacknowledged) and for each acknowledgement (then it reconnects and
/// sends again what was not acknowledged).
pub const ACK_TIMEOUT_MS_DEFAULT: u64 = 10_000;
pub const ACK_TIMEOUT_MS_MIN: u64 = 100;
pub const ACK_TIMEOUT_MS_MAX: u64 = 600_000;
/// Batches an acknowledging TcpOutput sends ahead of the oldest acknowledgement. Each is one
/// queue record, at most `batch_size` plus a message.
pub const ACK_WINDOW_BATCHES: usize = 8;

// Acknowledged forwarding (`docs/ack.md`).
/// Settles one TcpInput connection may cause per second at most. A mark makes the core ship
/// every batch it holds, so a peer sending marks in a loop must not flush every sink of the
/// core each time: a mark that comes sooner is answered once the interval has passed (acks
/// are cumulative, so one settle answers every mark read meanwhile). With the sender's window
/// of 8 batches of 256 KiB this still allows about 400 MiB/s per connection.
pub const ACK_SETTLES_PER_SECOND_MAX: u64 = 200;
const _: () = assert!(ACK_SETTLES_PER_SECOND_MAX > 0 && ACK_SETTLES_PER_SECOND_MAX <= 1_000_000);
