//! The one way a task waits before trying again: an exponential backoff between two bounds.
//!
//! Every retry and poll loop in gyges (a ring with no room, a queue with nothing to read, a
//! destination that refused, a full disk queue) waits through a [`Backoff`]: the first wait is
//! `min`, each further wait doubles, never past `max`, and [`Backoff::reset`] starts again
//! from `min` once the loop made progress. The bounds are named where each loop is, so the
//! worst added latency of every loop is visible in one line.

use std::time::{Duration, Instant};

/// An exponential backoff from `min` to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff whose first wait is `min` and whose waits never exceed `max`.
    ///
    /// # Panics
    /// If `min` is zero or greater than `max`: bounds are constants, so that is a bug.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        assert!(!min.is_zero(), "a backoff must wait at least a little");
        assert!(
            min <= max,
            "a backoff's first wait cannot exceed its longest"
        );
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait the next [`Backoff::wait`] will take.
    pub fn peek(&self) -> Duration {
        self.next
    }

    /// Returns the next wait and doubles the one after it, up to `max`.
    pub fn step(&mut self) -> Duration {
        let current = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        current
    }

    /// Starts again from `min`: call it once the loop made progress.
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    /// Sleeps for the next wait (on the current glommio executor).
    pub async fn wait(&mut self) {
        let duration = self.step();
        glommio::timer::sleep(duration).await;
    }

    /// Sleeps for the next wait, but never past `deadline`.
    pub async fn wait_until(&mut self, deadline: Instant) {
        let duration = self.step();
        let left = deadline.saturating_duration_since(Instant::now());
        glommio::timer::sleep(duration.min(left)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_bound_and_reset_starts_again() {
        let mut backoff = Backoff::new(Duration::from_millis(1), Duration::from_millis(5));
        let waits: Vec<u128> = (0..5).map(|_| backoff.step().as_millis()).collect();
        assert_eq!(waits, vec![1, 2, 4, 5, 5]);
        backoff.reset();
        assert_eq!(backoff.peek(), Duration::from_millis(1));
    }

    #[test]
    #[should_panic(expected = "cannot exceed")]
    fn a_minimum_above_the_maximum_is_a_bug() {
        let _ = Backoff::new(Duration::from_millis(2), Duration::from_millis(1));
    }
}
