//! A wake-up between tasks of one core: no atomics, no cross-thread use.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Wakes the tasks waiting on it. Notifications are not counted: a waiter that arrives after a
/// notification waits for the next one, so waiters re-check their condition in a loop and also
/// wait with a timeout where a lost wake-up would cost more than a poll.
#[derive(Default)]
pub struct LocalNotify {
    wakers: Cell<Vec<Waker>>,
}

impl LocalNotify {
    /// A new notifier, shareable between the core's tasks.
    pub fn new() -> Rc<LocalNotify> {
        Rc::new(LocalNotify::default())
    }

    /// Wakes every waiting task.
    pub fn notify(&self) {
        for waker in self.wakers.take() {
            waker.wake();
        }
    }

    /// Waits for the next notification.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            notify: self,
            registered: false,
        }
    }

    /// Waits for the next notification, or for `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) {
        futures_lite::future::or(self.wait(), glommio::timer::sleep(timeout)).await;
    }
}

/// The future of [`LocalNotify::wait`].
pub struct Wait<'a> {
    notify: &'a LocalNotify,
    registered: bool,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.registered {
            return Poll::Ready(());
        }
        self.registered = true;
        let mut wakers = self.notify.wakers.take();
        wakers.push(context.waker().clone());
        self.notify.wakers.set(wakers);
        Poll::Pending
    }
}
