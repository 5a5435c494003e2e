//! Helpers the unit tests of several modules share (compiled for tests only).

use std::future::Future;

/// Runs `future` on a fresh glommio executor with no registered memory, as a core runs its
/// tasks.
///
/// # Panics
/// If the executor cannot be made: the test cannot run at all.
pub fn run_local<T: 'static>(future: impl Future<Output = T> + 'static) -> T {
    glommio::LocalExecutorBuilder::default()
        .io_memory(0)
        .make()
        .expect("an executor for the test")
        .run(future)
}

/// Queue options with tiny segments and no syncing and no disk-free check, so that a test's
/// few hundred records cross many segment boundaries quickly.
pub fn small_queue_options() -> crate::queue::QueueOptions {
    crate::queue::QueueOptions {
        max_file_size: 4096,
        min_disk_free: 0,
        sync: crate::queue::SyncPolicy::None,
        ..crate::queue::QueueOptions::default()
    }
}

/// A batch of `count` lines, `line N\n`, numbered from `first`.
pub fn lines_batch(first: usize, count: usize) -> crate::runtime::ring::Batch {
    let mut batch = crate::runtime::ring::Batch::default();
    for number in first..first + count {
        batch
            .bytes
            .extend_from_slice(format!("line {number}\n").as_bytes());
        batch.messages += 1;
    }
    batch
}

/// An encoder that writes every message as one byte, `x`: for tests of batching and shipping,
/// where what a message encodes to does not matter.
pub struct OneByte;

impl crate::encoder::Encode for OneByte {
    fn encode_into(
        &mut self,
        _: &crate::message::MessageView<'_>,
        _: crate::encoder::Framing<'_>,
        out: &mut Vec<u8>,
    ) -> Result<usize, crate::encoder::EncodeFailed> {
        out.push(b'x');
        Ok(1)
    }
}
