//! Linux and io_uring specifics for gyges: the only crate in the workspace with `unsafe` code.
//!
//! The main crate denies `unsafe`. What it needs from the kernel that glommio does not expose
//! safely lives here, each block with a `// SAFETY:` note:
//! - [`probe`]: what the kernel and the process limits allow (memlock, kernel release), so
//!   startup can explain a failure instead of dying inside the executor.
//! - `lpeg` (feature `lua`): links Debian's static lpeg and hands it to mlua safely.
//! - `lua_table` (feature `lua`): reads a Lua table in place from the Lua stack, so the
//!   sandbox can encode a message table without an mlua reference per key and value.
//! - [`alloc`]: glibc malloc's thresholds, set so that batch-sized buffers are reused rather
//!   than faulted in again; and a per-thread counting allocator, so tests can assert zero
//!   allocations per record without writing `unsafe`.
//! - [`socket`]: socket options on sockets glommio created (receive buffer size, keepalive)
//!   and a zero-timeout check for a peer that has closed its end.
//! - [`file`]: free space on a file system (`statvfs`), for the disk queue's `min_disk_free`.
//! - [`clock`]: the local zone's offset from UTC (`localtime_r`), for timestamps that carry
//!   no zone (RFC 3164 syslog).
//! - [`thread`]: the calling thread's CPU set (`sched_setaffinity`), so a client library's own
//!   threads can be kept off the ingest cores.

#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod alloc;
pub mod clock;
pub mod file;
#[cfg(feature = "lua")]
pub mod lpeg;
#[cfg(feature = "lua")]
pub mod lua_table;
pub mod probe;
pub mod socket;
pub mod thread;
