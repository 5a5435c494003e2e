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
pub const FRAME_OVERHEAD_BYTES_MAX: usize = 3 + 255;

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

/// Records an ingest core processes before it yields to its other tasks.
pub const RECORDS_PER_YIELD_MAX: usize = 4096;

const _: () = assert!(MESSAGE_BYTES_MIN <= MESSAGE_BYTES_DEFAULT);
const _: () = assert!(MESSAGE_BYTES_DEFAULT <= MESSAGE_BYTES_CEILING);
const _: () = assert!(RING_SLOTS_DEFAULT <= RING_SLOTS_MAX);
const _: () = assert!(BATCH_BYTES_DEFAULT <= BATCH_BYTES_MAX);
const _: () = assert!(TCP_OUTPUT_BUFFER_BYTES_DEFAULT >= BATCH_BYTES_DEFAULT);

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
