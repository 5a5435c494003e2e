//! Where the cores of one durable route publish their queues: a [`HandleBoard`] has one slot
//! per core row, and consumers on any core wait on it for the handle they read.
//!
//! The board is the only thing the cores of a route share about its queues besides the
//! queues' own single-writer atomics; it is written once per core at start (and read by each
//! consumer until it finds its handle), so a mutex costs nothing on the data path.

use std::sync::{Arc, Mutex};

use super::QueueHandle;

/// The queue handles of one durable output or filter, one slot per core row: each core
/// publishes its writer's handle here so that consumers on other cores can open readers.
#[derive(Debug)]
pub struct HandleBoard {
    /// The route's name: its queues' directory and their one consumer.
    name: String,
    slots: Mutex<Vec<Option<QueueHandle>>>,
}

impl HandleBoard {
    /// The board of route `name`, with `rows` empty slots.
    pub fn new(name: &str, rows: usize) -> Arc<HandleBoard> {
        Arc::new(HandleBoard {
            name: name.to_string(),
            slots: Mutex::new(vec![None; rows]),
        })
    }

    /// The route's name, which is also the name of its queues' consumer.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Publishes the handle of core row `row`'s queue. A row past the board is ignored (the
    /// board is sized from the same core list as the rows).
    pub fn publish(&self, row: usize, handle: QueueHandle) {
        if let Ok(mut slots) = self.slots.lock() {
            if let Some(slot) = slots.get_mut(row) {
                *slot = Some(handle);
            }
        }
    }

    /// The handle core row `row` published, if it has.
    pub fn get(&self, row: usize) -> Option<QueueHandle> {
        self.slots.lock().ok()?.get(row).cloned().flatten()
    }
}
