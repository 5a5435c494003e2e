//! Graceful stop: the control thread raises a flag; each core notices it and stops its inputs,
//! then drains and flushes everything already read before its executor returns.
//!
//! A core can raise the flag too, with [`StopFlag::fail`]: the same graceful stop, for an error
//! that means the daemon must not go on (a durable queue full with `full_action =
//! "shutdown"`); `gyges run` then exits with a non-zero status.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::notify::LocalNotify;

/// How often a core checks the process-wide stop flag.
const STOP_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The process-wide stop request, raised by the control thread (a signal) or by a core that
/// hit a fatal error.
#[derive(Debug, Default)]
pub struct StopFlag {
    raised: AtomicBool,
    /// Why a core stopped the daemon: the first error given to [`StopFlag::fail`].
    failure: Mutex<Option<String>>,
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

    /// Stops the daemon because of `reason` (gracefully, as [`StopFlag::raise`]), and makes
    /// the exit status non-zero. Returns whether this was the first failure; later reasons are
    /// not kept.
    pub fn fail(&self, reason: impl Into<String>) -> bool {
        let first = match self.failure.lock() {
            Ok(mut failure) if failure.is_none() => {
                *failure = Some(reason.into());
                true
            }
            _ => false,
        };
        self.raise();
        first
    }

    /// The first failure given to [`StopFlag::fail`], if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().ok()?.clone()
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
