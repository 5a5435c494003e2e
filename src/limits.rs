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

/// How long a TLS handshake may take (TcpInput's accepted connections, TcpOutput's
/// connections) before the connection is closed and counted as a failed handshake.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

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
/// The first and the longest fallback wait of a task parked on a cross-core ring (a consumer
/// with nothing to read, a producer with no room). The other core wakes it as soon as it pushes
/// or pops; the fallback only bounds what a lost wake-up could cost: a few ms, never a hang.
pub const RING_PARK_WAIT_MIN: std::time::Duration = std::time::Duration::from_millis(1);
/// See [`RING_PARK_WAIT_MIN`].
pub const RING_PARK_WAIT_MAX: std::time::Duration = std::time::Duration::from_millis(4);
/// How often a producer whose consumer has gone logs it (it counts every dropped batch).
pub const RING_ABANDONED_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

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
/// Writes a durable FileOutput's queue consumer keeps in flight at once (each one queue read
/// or one handed batch): it reads the next batch while earlier ones are being written, and
/// commits each once it and every write before it completed. When reached: the consumer
/// waits for the oldest write before it reads more (the queue keeps the rest).
pub const DURABLE_FILE_WRITES_IN_FLIGHT_MAX: usize = 4;
/// Batches a core has shipped to one durable queue whose appends have not finished: the core
/// reads and routes on while they are written (one at a time, in order). Each holds one
/// batch (`batch_size`). When reached: the next ship waits for the oldest append to finish,
/// and the core reads no more meanwhile (backpressure).
pub const DURABLE_APPENDS_IN_FLIGHT_MAX: usize = 4;

const _: () = assert!(MESSAGE_BYTES_MIN <= MESSAGE_BYTES_DEFAULT);
const _: () = assert!(MESSAGE_BYTES_DEFAULT <= MESSAGE_BYTES_CEILING);
const _: () = assert!(RING_SLOTS_DEFAULT <= RING_SLOTS_MAX);
const _: () = assert!(RING_PARK_WAIT_MIN.as_nanos() <= RING_PARK_WAIT_MAX.as_nanos());
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
/// Bytes of a `message_signer` name at most: no signed frame header (255 bytes in all) can
/// carry a longer one, so a longer name could never match.
pub const SIGNER_NAME_BYTES_MAX: usize = 255;
/// Bytes of one HMAC key at most.
pub const HMAC_KEY_BYTES_MAX: usize = 4096;
/// Bytes of a PayloadEncoder `ts_format` at most.
pub const TS_FORMAT_BYTES_MAX: usize = 256;
/// Bytes of an Elasticsearch encoder's `index`, `type_name`, `id`, `timestamp` or
/// `replace_dots_with` at most, and of an InfluxDB line encoder's text options.
pub const ES_TEMPLATE_BYTES_MAX: usize = 1024;
/// Names in an Elasticsearch encoder's `fields`, `raw_bytes_fields` or `dynamic_fields` (and an
/// InfluxDB line encoder's `skip_fields` or `tag_fields`) at most.
pub const ES_FIELD_NAMES_MAX: usize = 1024;
/// Digits after the decimal point an InfluxDB line encoder's `decimal_precision` may ask for:
/// a double carries 17 significant digits, so for values from 1 up more digits print noise.
pub const INFLUX_DECIMAL_PRECISION_MAX: u32 = 17;
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
/// Default and largest `max_message_size` of a UdpOutput over UDP: the largest UDP payload over
/// IPv4. A message that encodes to more is dropped and counted (`encode_failures_total`).
pub const UDP_OUTPUT_MESSAGE_BYTES_MAX: usize = 65_507;
/// Largest `max_message_size` of a UdpOutput with `net = "unixgram"`: Linux's default socket
/// send buffer (`net.core.wmem_default`), the largest datagram a default socket sends whole.
pub const UNIXGRAM_OUTPUT_MESSAGE_BYTES_MAX: usize = 212_992;
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
/// Shortest `checkpoint_interval` accepted; a shorter one fails the config check.
pub const QUEUE_CHECKPOINT_INTERVAL_MIN: std::time::Duration = std::time::Duration::from_millis(10);
/// Longest `checkpoint_interval` accepted; a longer one fails the config check.
pub const QUEUE_CHECKPOINT_INTERVAL_MAX: std::time::Duration = std::time::Duration::from_secs(60);
/// How often a consumer's commits reach its checkpoint file without a sync, between the synced
/// checkpoints of `checkpoint_interval`: at most this long after a commit, the checkpoint holds
/// it in the page cache, which a `kill -9` of gyges does not lose. A restart after a kill then
/// replays at most what was committed in this interval (plus the batch being delivered), not a
/// whole `checkpoint_interval`. A power loss still goes back to the last synced checkpoint.
/// When reached: the unsynced checkpoint is written at the next commit or idle tick.
pub const QUEUE_CHECKPOINT_UNSYNCED_INTERVAL: std::time::Duration =
    std::time::Duration::from_millis(10);
/// Default bytes a queue reader reads at once.
pub const QUEUE_READ_BYTES_DEFAULT: usize = 256 * 1024;
/// Records (shipped batches) a durable route's queue writer holds in memory for its consumer
/// at most: the tail hand-off ring (`queue/handoff.rs`), so a consumer that keeps up takes
/// each batch from memory instead of reading it back from the segment. Memory: this many
/// batches per core row and route (32 × `batch_size`, 8 MiB with the default): room for
/// the burst of batches one large socket read ships while the consumer's file write is in
/// flight (with 8, half the batches of a quarter-load run missed the ring).
/// When reached (the consumer lags): the writer frees the newest in-memory copy, and the
/// consumer reads that record from the segment as before; nothing is dropped from the queue.
pub const QUEUE_HANDOFF_RECORDS: usize = 32;
/// Bounds of a queue's read and write sizes.
pub const QUEUE_IO_BYTES_MIN: usize = 256;
/// Largest queue read or write size accepted, in bytes; a larger one fails the config check.
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
/// Shortest `ack_timeout` accepted, in ms; a shorter one fails the config check.
pub const ACK_TIMEOUT_MS_MIN: u64 = 100;
/// Longest `ack_timeout` accepted, in ms (ten minutes); a longer one fails the config check.
pub const ACK_TIMEOUT_MS_MAX: u64 = 600_000;
/// Batches an acknowledging TcpOutput sends ahead of the oldest acknowledgement. Each is one
/// queue record, at most `batch_size` plus a message.
pub const ACK_WINDOW_BATCHES: usize = 8;

/// Framing and encoder overhead allowed on top of a batch and one message in a durable queue
/// record: a record holds one shipped batch, a full batch plus the message that overflowed it.
pub const DURABLE_RECORD_SLACK_BYTES: usize = 4096;

/// Default TCP keep-alive idle time (`keep_alive_period`), Heka's two hours, and its bound.
pub const KEEP_ALIVE_SECONDS_DEFAULT: u64 = 7200;
/// Longest `keep_alive_period` accepted, in seconds (one day); a longer one fails the config
/// check.
pub const KEEP_ALIVE_SECONDS_MAX: u64 = 86_400;

/// Default `flush_interval` of a FileOutput (ms), and its bound: a partly filled batch waits
/// at most this long.
pub const FLUSH_INTERVAL_MS_DEFAULT: u64 = 1000;
/// Longest FileOutput `flush_interval` accepted, in ms (one hour); a longer one fails the
/// config check.
pub const FLUSH_INTERVAL_MS_MAX: u64 = 3_600_000;

/// Shortest time between two ships of a sink's partly filled batch because its input ran dry
/// ([`crate::output::FlushPolicy::on_idle`]): at most one such ship per sink and core per
/// gap, however often short reads come, so a trickle costs at most 5,000 batches a second.
/// A batch held back by it ships when the gap ends: the core's ticker wakes then for it,
/// between its 1 ms ticks.
pub const IDLE_SHIP_GAP: std::time::Duration = std::time::Duration::from_micros(200);

// The global section's engine knobs.
/// Default `max_message_loops`: how many times a message may be injected again by filters
/// before it is dropped and counted.
pub const MESSAGE_LOOPS_DEFAULT: usize = 4;
/// Largest `max_message_loops` accepted. A filter record carries the loop count in one byte
/// whose top bit marks a stat record, so the count must stay below 128.
pub const MESSAGE_LOOPS_MAX: usize = 64;
/// Default `max_process_inject` and `max_timer_inject` (Heka's), and their bound: a sandbox
/// call that injects more is terminated.
pub const PROCESS_INJECT_DEFAULT: usize = 1;
/// Default `max_timer_inject`: messages one `timer_event` call may inject (Heka's 10).
pub const TIMER_INJECT_DEFAULT: usize = 10;
/// Largest `max_process_inject` or `max_timer_inject` accepted; a larger one fails the config
/// check.
pub const INJECT_PER_CALL_MAX: usize = 100_000;
/// Default and bounds of `ring_depth`, the io_uring submission ring of each executor.
pub const IO_RING_DEPTH_DEFAULT: usize = 128;
/// Smallest `ring_depth` accepted, in submission entries; a smaller one fails the config
/// check.
pub const IO_RING_DEPTH_MIN: usize = 8;
/// Largest `ring_depth` accepted, in submission entries; a larger one fails the config check.
pub const IO_RING_DEPTH_MAX: usize = 4096;
/// Smallest `ring_slots` accepted: an SPSC ring needs room for one batch while another is read.
pub const RING_SLOTS_MIN: usize = 2;
/// Smallest `batch_size` accepted.
pub const BATCH_BYTES_MIN: usize = 4096;
/// Smallest `read_buffer_size` a config may set.
pub const READ_BUFFER_SETTING_BYTES_MIN: usize = 4096;
/// Bounds of `socket_receive_buffer` (SO_RCVBUF).
pub const SOCKET_RECEIVE_BUFFER_BYTES_MIN: usize = 4096;
/// Largest `socket_receive_buffer` accepted, in bytes (1 GiB); a larger one fails the config
/// check.
pub const SOCKET_RECEIVE_BUFFER_BYTES_MAX: usize = 1 << 30;
/// Default `stats_interval` (seconds between throughput lines in the log; 0 turns them off)
/// and its bound.
pub const STATS_INTERVAL_SECONDS_DEFAULT: usize = 10;
/// Longest `stats_interval` accepted, in seconds (one day); a longer one fails the config
/// check.
pub const STATS_INTERVAL_SECONDS_MAX: usize = 86_400;

// The loop count rides in the low seven bits of a filter record's loop byte.
const _: () = assert!(MESSAGE_LOOPS_MAX < 0x80);
const _: () = assert!(RING_SLOTS_MIN <= RING_SLOTS_DEFAULT);
const _: () = assert!(BATCH_BYTES_MIN <= BATCH_BYTES_DEFAULT);
const _: () = assert!(IO_RING_DEPTH_MIN <= IO_RING_DEPTH_DEFAULT);
const _: () = assert!(IO_RING_DEPTH_DEFAULT <= IO_RING_DEPTH_MAX);
const _: () = assert!(KEEP_ALIVE_SECONDS_DEFAULT <= KEEP_ALIVE_SECONDS_MAX);
const _: () = assert!(FLUSH_INTERVAL_MS_DEFAULT <= FLUSH_INTERVAL_MS_MAX);

// The syslog parser (`src/decoder/syslog/`). The RFC 5424 header bounds are the RFC's own; a
// header part past its bound makes the line malformed (kept whole as Payload, counted).
/// Bytes of an RFC 5424 HOSTNAME at most (RFC 5424 §6.2.4).
pub const SYSLOG_HOSTNAME_BYTES_MAX: usize = 255;
/// Bytes of an RFC 5424 APP-NAME at most (RFC 5424 §6.2.5).
pub const SYSLOG_APP_NAME_BYTES_MAX: usize = 48;
/// Bytes of an RFC 5424 PROCID at most (RFC 5424 §6.2.6).
pub const SYSLOG_PROCID_BYTES_MAX: usize = 128;
/// Bytes of an RFC 5424 MSGID at most (RFC 5424 §6.2.7).
pub const SYSLOG_MSGID_BYTES_MAX: usize = 32;
/// Bytes of an SD-ID or PARAM-NAME at most (RFC 5424 §6.3).
pub const SYSLOG_SD_NAME_BYTES_MAX: usize = 32;
/// Bytes of an RFC 3164 TAG at most. A longer word is not a tag: the line has no tag and the
/// word starts the Payload (rsyslog accepts tags longer than the RFC's 32 bytes, so this is
/// generous).
pub const SYSLOG_TAG_BYTES_MAX: usize = 128;
/// Bytes of an RFC 3164 `[pid]` at most; a longer bracket is not a pid and ends the tag.
pub const SYSLOG_TAG_PID_BYTES_MAX: usize = SYSLOG_PROCID_BYTES_MAX;
/// Structured-data params one message keeps as `Fields[sd.<id>.<param>]` at most. Params past
/// this are dropped from Fields (the line's Payload keeps MSG only), counted, and their number
/// is written as `Fields[sd_params_dropped]`.
pub const SYSLOG_SD_PARAMS_MAX: usize = 64;
/// Digits of a timestamp's fraction of a second at most (nanoseconds); RFC 5424 allows six.
pub const SYSLOG_FRACTION_DIGITS_MAX: usize = 9;
/// Digits of an RFC 6587 octet count at most: enough for `MESSAGE_BYTES_CEILING`, so a longer
/// count is refused before it is read as a number.
pub const SYSLOG_FRAME_LENGTH_DIGITS_MAX: usize = 8;
const _: () = assert!(SYSLOG_HOSTNAME_BYTES_MAX < MESSAGE_BYTES_MIN);
const _: () = assert!(SYSLOG_APP_NAME_BYTES_MAX <= SYSLOG_TAG_BYTES_MAX);
const _: () = assert!(MESSAGE_BYTES_CEILING < 100_000_000);
const _: () = assert!(SYSLOG_SD_PARAMS_MAX <= u32::MAX as usize);

// Acknowledged forwarding (`docs/ack.md`).
/// Settles one TcpInput connection may cause per second at most. A mark makes the core ship
/// every batch it holds, so a peer sending marks in a loop must not flush every sink of the
/// core each time: a mark that comes sooner is answered once the interval has passed (acks
/// are cumulative, so one settle answers every mark read meanwhile). With the sender's window
/// of 8 batches of 256 KiB this still allows about 400 MiB/s per connection.
pub const ACK_SETTLES_PER_SECOND_MAX: u64 = 200;
const _: () = assert!(ACK_SETTLES_PER_SECOND_MAX > 0 && ACK_SETTLES_PER_SECOND_MAX <= 1_000_000);

/// Largest FileOutput `flush_count`: messages that make a partly filled batch worth writing.
/// A batch ships when full anyway, so a larger count would never be reached.
pub const FLUSH_COUNT_MAX: u64 = 1 << 32;
/// Largest TcpOutput `reconnect_after` (messages between reconnections; 0 never reconnects).
pub const RECONNECT_AFTER_MAX: u64 = 1 << 40;

/// Largest `ticker_interval` of a sandbox plugin, in seconds (a week; 0 is no timer).
pub const SANDBOX_TICKER_INTERVAL_SECONDS_MAX: u64 = 7 * 86_400;

/// How long a stopping core keeps delivering what its durable queues and TCP queues hold:
/// after it, a disk queue's rest waits on disk for the next start, and a TCP queue's rest is
/// dropped and counted.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

// HttpOutput and ElasticSearchOutput (`src/output/http/`, `docs/http_output.md`).
/// Bytes of one response head at most (status line and headers). A longer head fails the
/// request: the connection is closed and the request is retried as for any failure.
pub const HTTP_RESPONSE_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Bytes of a response body an output keeps to read (ElasticSearchOutput's bulk answer, one
/// item status per document sent). A longer body fails the request, which is retried. Bodies
/// an output does not read (HttpOutput's) are read and thrown away, bounded by `http_timeout`.
pub const HTTP_RESPONSE_BODY_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Default and bounds of `http_timeout`, in milliseconds: how long one request may take from
/// its first byte written to its answer's last byte read.
pub const HTTP_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// See [`HTTP_TIMEOUT_MS_DEFAULT`].
pub const HTTP_TIMEOUT_MS_MAX: u64 = 600_000;
/// Default and largest `connect_timeout`, in milliseconds (one connection attempt, including
/// the TLS handshake).
pub const HTTP_CONNECT_TIMEOUT_MS_DEFAULT: u64 = 2_000;
/// See [`HTTP_CONNECT_TIMEOUT_MS_DEFAULT`].
pub const HTTP_CONNECT_TIMEOUT_MS_MAX: u64 = 60_000;
/// Configured request `headers` at most, and bytes of one header line.
pub const HTTP_OUTPUT_HEADERS_MAX: usize = 64;
/// See [`HTTP_OUTPUT_HEADERS_MAX`].
pub const HTTP_OUTPUT_HEADER_BYTES_MAX: usize = 8 * 1024;
/// Shortest and longest wait between two attempts of a failed request (doubling).
pub const HTTP_RETRY_DELAY_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// See [`HTTP_RETRY_DELAY_MIN`].
pub const HTTP_RETRY_DELAY_MAX: std::time::Duration = std::time::Duration::from_secs(5);
const _: () = assert!(HTTP_TIMEOUT_MS_DEFAULT <= HTTP_TIMEOUT_MS_MAX);
const _: () = assert!(HTTP_CONNECT_TIMEOUT_MS_DEFAULT <= HTTP_CONNECT_TIMEOUT_MS_MAX);
const _: () = assert!(HTTP_RESPONSE_BODY_BYTES_MAX >= HTTP_RESPONSE_HEAD_BYTES_MAX);

// HttpListenInput (`src/input/http/`, `docs/http_listen.md`).
/// Bytes of one request head (request line and headers) at most, and of a chunked body's
/// trailers. A longer head is answered 431 and the connection is closed.
pub const HTTP_HEAD_BYTES_MAX: usize = 16 * 1024;
/// Header lines of one request at most (the parser's fixed table). More are answered 431.
pub const HTTP_HEADERS_MAX: usize = 64;
/// Bytes of one request body at most when a splitter cuts it into records (the body is
/// streamed through the splitter, so this bounds the time a request takes, not memory). With
/// the default NullSplitter the whole body is one record and `max_message_size` bounds it. A
/// larger body is answered 413.
pub const HTTP_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Bytes of a chunk-size line (size and extensions) at most; a longer one is a bad request.
pub const HTTP_CHUNK_LINE_BYTES_MAX: usize = 1024;
/// How long a connection may send nothing (between requests or within one) before it is
/// closed.
pub const HTTP_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// After an error answer that closes the connection, the unread request bytes gyges reads and
/// throws away at most (so the client reads the answer instead of a reset), and for how long.
pub const HTTP_LINGER_BYTES_MAX: usize = 1024 * 1024;
/// See [`HTTP_LINGER_BYTES_MAX`].
pub const HTTP_LINGER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Names in `request_headers` at most.
pub const HTTP_REQUEST_HEADERS_MAX: usize = 64;
/// Bytes of the configured response `headers`, formatted, at most.
pub const HTTP_RESPONSE_HEADER_BYTES_MAX: usize = 8 * 1024;
/// Bytes of an `Authorization: Basic` credential once decoded at most; a longer one fails.
pub const HTTP_BASIC_CREDENTIALS_BYTES_MAX: usize = 1024;
const _: () = assert!(HTTP_HEAD_BYTES_MAX <= MESSAGE_BYTES_MIN * 64);
const _: () = assert!(HTTP_BODY_BYTES_MAX >= MESSAGE_BYTES_DEFAULT);
const _: () = assert!(HTTP_CHUNK_LINE_BYTES_MAX < HTTP_HEAD_BYTES_MAX);
const _: () = assert!(HTTP_REQUEST_HEADERS_MAX <= HTTP_HEADERS_MAX);

// LogstreamerInput (`src/input/logstreamer/`, `docs/logstreamer.md`).
/// Bytes one LogstreamerInput stream reads from its file at once. Each open stream holds one
/// read buffer of `max_message_size` + this, so memory is this times the streams a core reads.
pub const LOGSTREAMER_READ_BYTES: usize = 256 * 1024;
/// Bytes a stream reads in one turn before it lets the core's other streams and tasks run.
pub const LOGSTREAMER_TURN_BYTES: usize = 4 * 1024 * 1024;
/// Streams one LogstreamerInput reads at once on one core; a further stream is not read,
/// counted (`errors_total`) and logged once per rescan.
pub const LOGSTREAMER_STREAMS_MAX: usize = 256;
/// Files one rescan of `log_directory` looks at, at most; the rest are not seen and a warning
/// says so.
pub const LOGSTREAMER_SCAN_FILES_MAX: usize = 100_000;
/// Directory levels below `log_directory` a rescan descends, at most.
pub const LOGSTREAMER_SCAN_DEPTH_MAX: usize = 16;
/// Bytes at the start of a file that identify it in the journal (with its device and inode):
/// a file whose first bytes differ is another file, even with the same inode.
pub const LOGSTREAMER_HEAD_BYTES: usize = 1024;
/// How often each core writes the journal of the streams it read, after settling what it
/// routed (`docs/logstreamer.md`).
pub const LOGSTREAMER_JOURNAL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// glibc malloc serves allocations below this from its arenas rather than with an `mmap` of
/// their own (`gyges run` sets it at startup, `docs/performance.md`): a batch's buffers (a few
/// hundred KiB) are then reused from the arena of the core that freed them.
pub const MALLOC_MMAP_THRESHOLD_BYTES: usize = 4 << 20;
/// glibc malloc keeps up to this much free memory at the top of each arena instead of handing
/// it back to the kernel, so the next batch's buffers do not fault their pages in again.
/// Bound: after a peak, up to this much free memory per arena (about one per core thread)
/// stays resident.
pub const MALLOC_TRIM_THRESHOLD_BYTES: usize = 16 << 20;
/// How long a reader that follows a growing file (a LogstreamerInput stream, `gyges cat
/// --tail`) waits at zero bytes for a write in flight to fill them (`docs/logstreamer.md`);
/// then it reads them as the file's own bytes.
pub const TAIL_ZEROS_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Longest `rescan_interval`, `check_data_interval` accepted (a day); a longer one fails the
/// config check.
pub const LOGSTREAMER_INTERVAL_MAX: std::time::Duration = std::time::Duration::from_secs(86_400);
/// Shortest `rescan_interval` and `check_data_interval` accepted (a millisecond).
pub const LOGSTREAMER_INTERVAL_MIN: std::time::Duration = std::time::Duration::from_millis(1);
/// Longest `oldest_duration` accepted (100 years).
pub const LOGSTREAMER_OLDEST_MAX: std::time::Duration =
    std::time::Duration::from_secs(100 * 366 * 86_400);
/// Entries of `priority` and of `differentiator` accepted, each.
pub const LOGSTREAMER_KEYS_MAX: usize = 32;
const _: () = assert!(LOGSTREAMER_READ_BYTES >= READ_BUFFER_BYTES_MIN);
const _: () = assert!(LOGSTREAMER_READ_BYTES <= READ_BUFFER_BYTES_MAX);
const _: () = assert!(LOGSTREAMER_TURN_BYTES >= LOGSTREAMER_READ_BYTES);
// Fluentd Forward protocol (`docs/fluent.md`).
/// Default bytes of one FluentForwardInput frame (`max_frame_size`): a whole top-level
/// msgpack array, a PackedForward chunk with all its entries. A connection's buffer grows
/// to it only while such a frame arrives, and shrinks back once it is read.
pub const FLUENT_FRAME_BYTES_DEFAULT: usize = 16 * 1024 * 1024;
/// Largest `max_frame_size`. A frame past the bound cannot be skipped (its end is only known
/// by reading it): the connection is closed and counted.
pub const FLUENT_FRAME_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Bytes one compressed chunk may inflate to at most: past it the rest of the chunk is refused
/// and counted as oversize (a zip bomb costs at most this much inflating).
pub const FLUENT_INFLATED_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Nesting of maps and arrays inside a record, at most; a deeper event is malformed.
pub const FLUENT_NESTING_MAX: usize = 64;
/// Bytes of a `chunk` id at most (a spec id is 24 base64 characters); a longer one makes the
/// frame malformed.
pub const FLUENT_CHUNK_BYTES_MAX: usize = 256;
const _: () = assert!(FLUENT_FRAME_BYTES_DEFAULT <= FLUENT_FRAME_BYTES_MAX);
const _: () = assert!(MESSAGE_BYTES_CEILING <= FLUENT_INFLATED_BYTES_MAX);
// Kafka (`docs/kafka.md`).
/// Brokers in `addrs`, at most.
pub const KAFKA_BROKERS_MAX: usize = 64;
/// Bytes of a topic name at most (Kafka's own limit); a `topic_variable` value that is longer,
/// or empty, drops its message (counted as an encode failure).
pub const KAFKA_TOPIC_BYTES_MAX: usize = 249;
/// Bytes of a message key (the `hash_variable` value) at most; a longer value is cut.
pub const KAFKA_KEY_BYTES_MAX: usize = 4096;
/// Default bytes of one encoded message (`max_message_bytes`, librdkafka's `message.max.bytes`
/// default); a longer encoding is dropped and counted as an encode failure.
pub const KAFKA_MESSAGE_BYTES_DEFAULT: usize = 1_000_000;
/// Largest `max_message_bytes` (librdkafka's ceiling for `message.max.bytes`).
pub const KAFKA_MESSAGE_BYTES_MAX: usize = 1_000_000_000;
/// Default bytes the producer holds for the brokers (`back_pressure_threshold_bytes`, Heka's
/// 50 MiB): past it, `memory` delivery waits and `best_effort` drops.
pub const KAFKA_BUFFERED_BYTES_DEFAULT: usize = 50 * 1024 * 1024;
/// Largest `back_pressure_threshold_bytes` (librdkafka takes it in KiB, up to `i32::MAX`).
pub const KAFKA_BUFFERED_BYTES_MAX: usize = 1 << 40;
/// Messages the producer holds for the brokers at most, whatever their bytes.
pub const KAFKA_BUFFERED_MESSAGES_MAX: usize = 1_000_000;
/// Default bytes of one request's batch (`max_buffered_bytes`, librdkafka's `batch.size`).
pub const KAFKA_BATCH_BYTES_DEFAULT: usize = 1_000_000;
/// Records KafkaOutput's `Random` partitioner sends to one partition before it picks another
/// at random. Reached: the next record starts a new choice.
pub const KAFKA_STICKY_RECORDS: u32 = 1000;
/// Longest `max_buffer_time` (librdkafka's `linger.ms` ceiling), in milliseconds.
pub const KAFKA_LINGER_MS_MAX: u64 = 900_000;
/// Longest `timeout` (a produce request's wait for its acks), in milliseconds.
pub const KAFKA_TIMEOUT_MS_MAX: u64 = 900_000;
/// How long a message may wait for its broker's acknowledgement before it fails: with
/// `best_effort` it is then dropped and counted, with `durable` its queue read is sent again.
/// `memory` delivery never expires a message (it waits, and ingest waits behind it).
pub const KAFKA_MESSAGE_TIMEOUT_MS: u64 = 30_000;
/// Queue reads a durable KafkaOutput has sent and not yet seen acknowledged, per source queue.
pub const KAFKA_READS_IN_FLIGHT_MAX: usize = 64;
/// How often the producer's delivery reports (and a consumer's idle poll) are looked at.
pub const KAFKA_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(5);
/// Report events (each a batch of delivery reports) one look at the producer serves at most:
/// a look that does not wait serves one event per poll, so it polls until none is left or
/// this many were served. When reached, the rest wait for the next look, 5 ms later or
/// after the next batch.
pub const KAFKA_REPORT_EVENTS_PER_LOOK: usize = 256;
/// Messages a KafkaInput routes between two yields to its core's other tasks.
pub const KAFKA_INPUT_MESSAGES_PER_TURN: usize = 1024;
const _: () = assert!(KAFKA_MESSAGE_BYTES_DEFAULT <= KAFKA_MESSAGE_BYTES_MAX);
const _: () = assert!(KAFKA_BUFFERED_BYTES_DEFAULT <= KAFKA_BUFFERED_BYTES_MAX);
const _: () = assert!(KAFKA_BATCH_BYTES_DEFAULT <= KAFKA_MESSAGE_BYTES_MAX);

// AMQPOutput and AMQPInput (`src/output/amqp.rs`, `src/input/amqp.rs`, `docs/amqp.md`).
/// Bytes of an AMQP short string: exchange, queue and routing key names.
pub const AMQP_NAME_BYTES_MAX: usize = 255;
/// Bytes of one encoded message an AMQPOutput publishes at most; a longer one is dropped and
/// counted (RabbitMQ's own default bound is 128 MiB).
pub const AMQP_MESSAGE_BYTES_MAX: usize = 128 * 1024 * 1024;
/// Publishes an AMQPOutput has made and the broker has not confirmed yet: when reached, it
/// waits for the oldest confirm before the next publish (memory delivery pushes back from
/// there; best effort too, since a confirm comes or the connection fails).
pub const AMQP_CONFIRMS_IN_FLIGHT_MAX: usize = 4096;
/// The first and the longest wait between two connection attempts to a broker that is down.
pub const AMQP_RECONNECT_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// See [`AMQP_RECONNECT_MIN`].
pub const AMQP_RECONNECT_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a connection's state is looked at while it is idle or being waited for.
pub const AMQP_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);
/// Deliveries an AMQPInput routes before it ships and acknowledges them (and yields to its
/// core's other tasks).
pub const AMQP_INPUT_MESSAGES_PER_TURN: usize = 1024;
/// `prefetch_count` at most: the deliveries the broker may have unacknowledged at this input.
pub const AMQP_PREFETCH_MAX: u64 = 65_535;

// FilePollingInput (`src/input/file_polling.rs`, `docs/file_polling.md`).
/// Bytes a FilePollingInput reads of its file at each tick; the rest of a longer file is left
/// unread, with a warning and an `errors_total` count. Heka read the whole file.
pub const FILE_POLLING_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Longest `ticker_interval` a FilePollingInput accepts, in seconds (one day).
pub const FILE_POLLING_INTERVAL_MAX_SECONDS: u64 = 86_400;

// SmtpOutput (`src/output/smtp/`, `docs/smtp_output.md`).
/// How long the SMTP client waits to connect, and for each reply, before the conversation
/// fails (and is tried again later).
pub const SMTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Bytes of one SMTP reply (all its lines) the client reads before giving up on the server.
pub const SMTP_REPLY_BYTES_MAX: usize = 16 * 1024;
/// Bytes of message text an SmtpOutput holds for its next mail while `send_interval` has not
/// passed. When reached, `memory` delivery waits for the mail to go, `best_effort` drops the
/// message and counts it.
pub const SMTP_PENDING_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Longest `send_interval`, in seconds (one day).
pub const SMTP_SEND_INTERVAL_MAX_SECONDS: u64 = 86_400;
/// Recipients of one SmtpOutput.
pub const SMTP_RECIPIENTS_MAX: usize = 100;

// The operator endpoint (`[gyges] http_address`, `src/telemetry/endpoint.rs`, `docs/metrics.md`).
// A request head is bounded as HttpListenInput's is: [`HTTP_HEAD_BYTES_MAX`] bytes and
// [`HTTP_HEADERS_MAX`] lines, past either answered 431.
/// Connections served at once; one more is answered 503 at once and closed.
pub const OPS_CONNECTIONS_MAX: usize = 16;
/// How long one request may take, from its connection's accept to its answer's last byte
/// written; a head not complete by then is answered 408 and the connection closed.
pub const OPS_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Stack of each connection's thread: it parses a bounded head and formats text.
pub const OPS_THREAD_STACK_BYTES: usize = 256 * 1024;
const _: () = assert!(OPS_CONNECTIONS_MAX >= 2);

/// Subs of one MultiDecoder (`subs`).
pub const MULTI_DECODER_SUBS_MAX: usize = 32;
/// MultiDecoders nested in one another (a MultiDecoder sub is one level); a cycle is refused.
pub const MULTI_DECODER_DEPTH_MAX: usize = 4;
/// Bytes one MultiDecoder chain (`cascade_strategy = "all"`) may hold between two subs: past
/// it the record fails to decode (a sub that injects without end cannot grow memory).
pub const MULTI_DECODER_CHAIN_BYTES_MAX: usize = 64 << 20;

// DashboardOutput.
/// Graphs (distinct Logger and payload_name pairs) the dashboard keeps. A cbuf payload of a
/// new pair past this is dropped and counted (`dropped_total`); a known pair is replaced.
pub const DASHBOARD_GRAPHS_MAX: usize = 64;
/// Payload bytes of all graphs kept together. A payload that would take the total past this
/// is dropped and counted; the graph keeps its previous payload.
pub const DASHBOARD_PAYLOAD_BYTES_MAX: usize = 8 << 20;
/// Terminations (`heka.sandbox-terminated`) the dashboard shows: the oldest goes first.
pub const DASHBOARD_TERMINATIONS_MAX: usize = 16;
/// Bytes of a termination's reason kept for the page.
pub const DASHBOARD_REASON_BYTES_MAX: usize = 1024;
const _: () = assert!(DASHBOARD_GRAPHS_MAX >= 1 && DASHBOARD_TERMINATIONS_MAX >= 1);

/// Default `max_filters` of a SandboxManagerFilter: the dynamic filter slots the plan
/// reserves for it. A load while every slot holds a filter is refused, logged and counted
/// (`process_failures_total` on the manager).
pub const SANDBOX_MANAGER_FILTERS_DEFAULT: usize = 4;
/// Largest `max_filters` accepted: each slot is a filter of the plan (a lane index, a
/// telemetry row, a matcher every core checks), so slots are not free.
pub const SANDBOX_MANAGER_FILTERS_MAX: usize = 64;
/// A control message whose Timestamp is this far from the manager's clock, either way, is
/// refused and counted (Heka's replay guard).
pub const CONTROL_MESSAGE_AGE_MAX: std::time::Duration = std::time::Duration::from_secs(5);
/// Longest name of a dynamically loaded filter (its config's section name); a longer one is
/// refused. Names are also restricted to `[A-Za-z0-9_-]`: they become file names.
pub const LOADED_FILTER_NAME_BYTES_MAX: usize = 64;
const _: () = assert!(SANDBOX_MANAGER_FILTERS_DEFAULT <= SANDBOX_MANAGER_FILTERS_MAX);
const _: () = assert!(SANDBOX_MANAGER_FILTERS_MAX < u16::MAX as usize);
