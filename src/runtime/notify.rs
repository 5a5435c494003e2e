//! A wake-up between tasks of one core: no atomics, no cross-thread use.
//!
//! Waiting is raced against other futures all the time (a read against the stop signal, a
//! queue against a timeout), so a wait that loses the race must leave nothing behind: each
//! [`Wait`] registers its waker once, under an id, and removes it when dropped. A waker left
//! registered per lost race would pile up clones of the task's waker until the executor's
//! reference count overflows.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Wakes the tasks waiting on it. A notification wakes the waits registered before it; a wait
/// that starts after it waits for the next one, so waiters re-check their condition in a loop.
#[derive(Default)]
pub struct LocalNotify {
    /// Bumped by every notification.
    generation: Cell<u64>,
    next_id: Cell<u64>,
    waiters: RefCell<Vec<(u64, Waker)>>,
}

impl LocalNotify {
    /// A new notifier, shareable between the core's tasks.
    pub fn new() -> Rc<LocalNotify> {
        Rc::new(LocalNotify::default())
    }

    /// Wakes every waiting task.
    pub fn notify(&self) {
        self.generation.set(self.generation.get() + 1);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for (_, waker) in waiters {
            waker.wake();
        }
    }

    /// Waits for the next notification.
    pub fn wait(&self) -> Wait<'_> {
        Wait {
            notify: self,
            registered: None,
        }
    }

    /// Waits for the next notification, or for `timeout`.
    pub async fn wait_timeout(&self, timeout: Duration) {
        futures_lite::future::or(self.wait(), glommio::timer::sleep(timeout)).await;
    }

    /// How many waits are registered (tests).
    pub fn waiters(&self) -> usize {
        self.waiters.borrow().len()
    }
}

/// The future of [`LocalNotify::wait`].
pub struct Wait<'a> {
    notify: &'a LocalNotify,
    /// The id it registered under and the generation it started in.
    registered: Option<(u64, u64)>,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        let notify = self.notify;
        match self.registered {
            None => {
                let id = notify.next_id.get();
                notify.next_id.set(id + 1);
                notify
                    .waiters
                    .borrow_mut()
                    .push((id, context.waker().clone()));
                self.registered = Some((id, notify.generation.get()));
                Poll::Pending
            }
            Some((_, generation)) if notify.generation.get() != generation => Poll::Ready(()),
            Some((id, _)) => {
                let mut waiters = notify.waiters.borrow_mut();
                if let Some((_, waker)) = waiters.iter_mut().find(|(waiter, _)| *waiter == id) {
                    if !waker.will_wake(context.waker()) {
                        waker.clone_from(context.waker());
                    }
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for Wait<'_> {
    fn drop(&mut self) {
        if let Some((id, _)) = self.registered {
            self.notify
                .waiters
                .borrow_mut()
                .retain(|(waiter, _)| *waiter != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_that_loses_a_race_leaves_no_waker_behind() {
        glommio::LocalExecutorBuilder::default()
            .io_memory(0)
            .make()
            .expect("an executor for the test")
            .run(async {
                let notify = LocalNotify::new();
                // Far more than the executor's waker reference count could hold if leaked.
                for _ in 0..40_000 {
                    futures_lite::future::or(notify.wait(), async {}).await;
                }
                assert_eq!(notify.waiters(), 0);
                for _ in 0..3 {
                    notify.wait_timeout(Duration::from_micros(10)).await;
                }
                assert_eq!(notify.waiters(), 0);
                let waiter = {
                    let notify = notify.clone();
                    glommio::spawn_local(async move { notify.wait().await })
                };
                glommio::yield_if_needed().await;
                glommio::timer::sleep(Duration::from_millis(1)).await;
                assert_eq!(notify.waiters(), 1);
                notify.notify();
                waiter.await;
                assert_eq!(notify.waiters(), 0);
            });
    }
}
