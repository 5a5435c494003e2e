//! Rate-limited logging: a warning that can repeat (a refused connection, a failing socket)
//! is logged at most once per interval, with how many times it happened since the last line.
//!
//! House style: nothing at `info!` or above per message, and errors are rate-limited. A peer
//! that opens connections in a loop, or a socket that fails on every call, would otherwise
//! write a log line per event: the log becomes the bottleneck and drowns everything else.
//! Counters still count every event; the log says that it goes on.
//!
//! A [`LogLimit`] belongs to one task on one core (no locks, no atomics). Its caller decides
//! what to log: [`LogLimit::note`] only says whether a line is due and what count it carries.

use std::time::{Duration, Instant};

/// The interval every repeating warning uses unless it has a reason to differ.
pub const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// At most one log line per interval for one kind of event.
#[derive(Debug, Clone)]
pub struct LogLimit {
    interval: Duration,
    /// When the last line was logged.
    last: Option<Instant>,
    /// Events since the last line, not yet reported.
    pending: u64,
}

impl LogLimit {
    /// A limit of one line per `interval`; the first event is always logged.
    pub const fn new(interval: Duration) -> LogLimit {
        LogLimit {
            interval,
            last: None,
            pending: 0,
        }
    }

    /// Notes one event at `now`. Returns the count to log (this event and every one held
    /// back since the last line) when a line is due, `None` when the event is held back.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        self.pending = self.pending.saturating_add(1);
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.pending))
    }

    /// Events held back since the last line (a final count at stop, for instance).
    pub fn pending(&self) -> u64 {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_carries_the_count_since_the_last() {
        let start = Instant::now();
        let mut limit = LogLimit::new(Duration::from_secs(5));
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(limit.note(at(0)), Some(1), "the first event is logged");
        // A burst within the interval is held back and counted.
        for ms in 1..=99 {
            assert_eq!(limit.note(at(ms * 10)), None);
        }
        assert_eq!(limit.pending(), 99);
        assert_eq!(limit.note(at(4_999)), None, "just before the interval");
        assert_eq!(limit.note(at(5_000)), Some(101), "the line says how many");
        assert_eq!(limit.pending(), 0);
        assert_eq!(limit.note(at(6_000)), None);
        // A quiet stretch: the next event is logged at once, with what was held back.
        assert_eq!(limit.note(at(60_000)), Some(2));
    }

    #[test]
    fn a_flood_logs_a_bounded_number_of_lines() {
        let start = Instant::now();
        let mut limit = LogLimit::new(Duration::from_secs(1));
        let mut lines = 0;
        let mut counted = 0;
        // 10 000 events over 10 s: at most one line per second (plus the first).
        for event in 0..10_000u64 {
            if let Some(count) = limit.note(start + Duration::from_millis(event)) {
                lines += 1;
                counted += count;
            }
        }
        assert!(lines <= 11, "{lines} lines");
        assert_eq!(
            counted + limit.pending(),
            10_000,
            "every event is accounted for"
        );
    }
}
