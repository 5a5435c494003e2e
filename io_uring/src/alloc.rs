//! The system allocator: how the daemon tunes it, and a counting wrapper for tests.
//!
//! - [`keep_freed_buffers`]: sets glibc malloc's mmap and trim thresholds, so that buffers of
//!   a batch's size freed on a core are reused from its arena instead of being handed back to
//!   the kernel and faulted in again at the next batch.
//! - [`CountingAllocator`]: wraps the system allocator and counts, per thread, the allocations
//!   and reallocations made. Tests install it with
//!   `#[global_allocator] static A: CountingAllocator = CountingAllocator;` and read
//!   [`allocations`] around the code they measure, without writing `unsafe` themselves.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Makes glibc's malloc serve allocations below `mmap_threshold` bytes from its arenas and
/// keep up to `trim_threshold` bytes of free memory at the top of each arena instead of
/// returning it to the kernel. Returns whether both settings took (false on a C library
/// other than glibc, or for a value glibc refuses).
///
/// By default glibc adjusts both thresholds as it goes, and a core thread's arena that frees
/// a batch-sized buffer often gives its pages back (`madvise`), so the next batch's buffer
/// takes a page fault for every page it fills. Fixed thresholds stop that; the cost is up
/// to `trim_threshold` of free memory staying resident per arena after a peak.
pub fn keep_freed_buffers(mmap_threshold: usize, trim_threshold: usize) -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let (Ok(mmap), Ok(trim)) = (
            libc::c_int::try_from(mmap_threshold),
            libc::c_int::try_from(trim_threshold),
        ) else {
            return false;
        };
        // SAFETY: `mallopt` takes two integers and changes only malloc's own parameters; it
        // may be called at any time, from any thread.
        let set_mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, mmap) };
        // SAFETY: as above.
        let set_trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, trim) };
        set_mmap == 1 && set_trim == 1
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = (mmap_threshold, trim_threshold);
        false
    }
}

/// The system allocator, counting allocations per thread.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

/// The allocations (including reallocations) the calling thread has made so far.
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local without a destructor, which never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: as above, for `dealloc`.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        // SAFETY: as above, for `realloc`.
        unsafe { System.realloc(pointer, layout, size) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The minor page faults the calling thread has taken so far (`getrusage`), for tests that
    /// check a buffer is reused rather than faulted in again.
    fn thread_minor_faults() -> u64 {
        // SAFETY: `rusage` is plain data, valid when zeroed.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage`; RUSAGE_THREAD reports the calling thread.
        let status = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        if status != 0 {
            return 0;
        }
        u64::try_from(usage.ru_minflt).unwrap_or(0)
    }

    /// The pattern of a core whose batch writes come in bursts: four buffers of a durable
    /// batch's size filled and in flight at once, then all freed as their writes complete.
    /// Returns the page faults taken over `rounds` bursts on a thread of its own (its own
    /// arena, as a core's executor thread has).
    fn batch_pattern_faults(rounds: usize) -> u64 {
        std::thread::spawn(move || {
            let burst = || {
                let in_flight: Vec<Vec<u8>> = (0..4)
                    .map(|_| {
                        let mut buffer = Vec::with_capacity(580 << 10);
                        buffer.resize(580 << 10, 0x5a_u8);
                        buffer
                    })
                    .collect();
                drop(std::hint::black_box(in_flight));
            };
            // Warm up: the arena grows to its working size once.
            for _ in 0..4 {
                burst();
            }
            let before = thread_minor_faults();
            for _ in 0..rounds {
                burst();
            }
            thread_minor_faults() - before
        })
        .join()
        .expect("the pattern's thread")
    }

    #[test]
    fn freed_batch_buffers_are_reused_without_page_faults() {
        assert!(
            keep_freed_buffers(4 << 20, 16 << 20),
            "glibc took the settings"
        );
        let faults = batch_pattern_faults(64);
        // Given back to the kernel and faulted in again, a burst takes hundreds.
        assert!(faults < 64, "{faults} page faults in 64 rounds");
    }
}
