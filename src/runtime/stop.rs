//! Graceful stop: the control thread raises a flag; each core notices it and stops its inputs,
//! then drains and flushes everything already read before its executor returns.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::notify::LocalNotify;

/// How often a core checks the process-wide stop flag.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The process-wide stop request, raised once by the control thread.
#[derive(Debug, Default)]
pub struct StopFlag {
    raised: AtomicBool,
}

impl StopFlag {
    /// A new, lowered flag.
    pub fn new() -> Arc<StopFlag> {
        Arc::new(StopFlag::default())
    }

    /// Asks every core to stop.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
    }

    /// Whether a stop was asked for.
    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }
}

/// One core's view of the stop request: a local flag and a notifier its tasks wait on.
pub struct LocalStop {
    stopping: Cell<bool>,
    notify: Rc<LocalNotify>,
}

impl LocalStop {
    /// A new local stop, lowered.
    pub fn new() -> Rc<LocalStop> {
        Rc::new(LocalStop {
            stopping: Cell::new(false),
            notify: LocalNotify::new(),
        })
    }

    /// Whether this core is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// Raises the local stop and wakes every task waiting for it.
    pub fn raise(&self) {
        self.stopping.set(true);
        self.notify.notify();
    }

    /// Resolves once this core is stopping.
    pub async fn wait(&self) {
        while !self.stopping.get() {
            self.notify.wait().await;
        }
    }

    /// Watches the process-wide flag and raises the local stop when it goes up.
    pub async fn watch(self: Rc<Self>, flag: Arc<StopFlag>) {
        while !flag.is_raised() && !self.is_stopping() {
            glommio::timer::sleep(STOP_POLL_INTERVAL).await;
        }
        self.raise();
    }
}
