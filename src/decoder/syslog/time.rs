//! Calendar arithmetic and the two timestamp forms syslog uses, read from bytes.
//!
//! - RFC 3339 (`2003-10-11T22:14:15.003Z`, `1985-04-12T19:20:50.52-04:00`): RFC 5424's
//!   TIMESTAMP, and what rsyslog writes in RFC 3164's position. It carries its own offset.
//! - The BSD form (`Oct 11 22:14:15`, `Oct  1 22:14:15`): no year and no zone. The caller
//!   supplies both ([`super::SyslogContext`]), as a receiver uses its own clock and zone.
//!
//! Every reader takes a slice, returns the value and the bytes it consumed, and returns `None`
//! on anything out of range; none panics and none overflows (the arithmetic is checked where a
//! year can reach it).

pub use crate::calendar::{civil_from_days, days_from_civil, days_in_month};
use crate::limits::SYSLOG_FRACTION_DIGITS_MAX;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A wall-clock reading without a zone: what both forms share before their offset applies.
/// Fields are as written: month 1..=12, day 1..=31, hour 0..=23, minute 0..=59.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    /// The year; [`Civil::to_ns`] refuses one outside 0..=9999.
    pub year: i64,
    /// The month, 1 (January) to 12.
    pub month: u32,
    /// The day of the month, 1 to 31; [`Civil::to_ns`] refuses a day past the month's end.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// 0..=60: a leap second reads as the first second of the next minute.
    pub second: u32,
    /// The fraction of the second, in nanoseconds (0 when the timestamp has none).
    pub nanosecond: u32,
}

impl Civil {
    /// Nanoseconds since the epoch of this reading taken at `offset_seconds` east of UTC, or
    /// `None` if it falls outside what an `i64` of nanoseconds holds (about 1677 to 2262).
    pub fn to_ns(self, offset_seconds: i32) -> Option<i64> {
        // Four-digit years only: this also keeps the calendar arithmetic far from overflow
        // whatever year a caller's context holds.
        if !(0..=9999).contains(&self.year) {
            return None;
        }
        if !(1..=12).contains(&self.month) || self.day == 0 {
            return None;
        }
        if self.day > days_in_month(self.year, self.month) {
            return None;
        }
        let days = days_from_civil(self.year, self.month, self.day);
        let clock = i64::from(self.hour) * 3600 + i64::from(self.minute) * 60;
        let seconds = days
            .checked_mul(SECONDS_PER_DAY)?
            .checked_add(clock + i64::from(self.second))?
            .checked_sub(i64::from(offset_seconds))?;
        seconds
            .checked_mul(NANOS_PER_SECOND)?
            .checked_add(i64::from(self.nanosecond))
    }
}

/// Reads exactly `count` ASCII digits at `at` as a number.
pub fn digits(bytes: &[u8], at: usize, count: usize) -> Option<u32> {
    let end = at.checked_add(count)?;
    let window = bytes.get(at..end)?;
    let mut value = 0u32;
    for &byte in window {
        if !byte.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u32::from(byte - b'0');
    }
    Some(value)
}

/// Reads `hh:mm:ss` at `at` with its ranges checked (a second of 60 is a leap second).
fn clock(bytes: &[u8], at: usize) -> Option<(u32, u32, u32)> {
    let hour = digits(bytes, at, 2)?;
    let minute = digits(bytes, at + 3, 2)?;
    let second = digits(bytes, at + 6, 2)?;
    if bytes.get(at + 2) != Some(&b':') || bytes.get(at + 5) != Some(&b':') {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    Some((hour, minute, second))
}

/// Reads an optional `.` and 1 to `SYSLOG_FRACTION_DIGITS_MAX` digits at `at`, returning the
/// nanoseconds and the bytes consumed (0 when there is no fraction).
fn fraction(bytes: &[u8], at: usize) -> Option<(u32, usize)> {
    if bytes.get(at) != Some(&b'.') {
        return Some((0, 0));
    }
    let mut nanosecond = 0u32;
    let mut count = 0usize;
    while let Some(&byte) = bytes.get(at + 1 + count) {
        if !byte.is_ascii_digit() {
            break;
        }
        if count == SYSLOG_FRACTION_DIGITS_MAX {
            return None;
        }
        nanosecond = nanosecond * 10 + u32::from(byte - b'0');
        count += 1;
    }
    if count == 0 {
        return None;
    }
    for _ in count..SYSLOG_FRACTION_DIGITS_MAX {
        nanosecond *= 10;
    }
    Some((nanosecond, 1 + count))
}

/// Reads an RFC 3339 date-time at the start of `bytes`: `YYYY-MM-DDThh:mm:ss[.frac]` and `Z`
/// or `±hh:mm` (`t`/`z` in lower case too, as RFC 3339 allows). Returns nanoseconds since the
/// epoch and the bytes consumed.
pub fn rfc3339(bytes: &[u8]) -> Option<(i64, usize)> {
    let (civil, at) = rfc3339_civil(bytes)?;
    let (offset_seconds, offset_bytes) = offset(bytes, at)?;
    Some((civil.to_ns(offset_seconds)?, at + offset_bytes))
}

/// Reads an RFC 3339 date-time without its offset (`2003-10-11T22:14:15.003`), as some
/// senders write local time in RFC 3164's timestamp position. Returns the reading (with its
/// year, so no year is guessed) and the bytes consumed.
pub fn rfc3339_local(bytes: &[u8]) -> Option<(Bsd, usize)> {
    let (civil, consumed) = rfc3339_civil(bytes)?;
    let reading = Bsd {
        month: civil.month,
        day: civil.day,
        hour: civil.hour,
        minute: civil.minute,
        second: civil.second,
        nanosecond: civil.nanosecond,
        year: Some(civil.year),
    };
    Some((reading, consumed))
}

/// Reads the date, clock and fraction of an RFC 3339 date-time, returning them unchecked
/// against the calendar ([`Civil::to_ns`] checks) and the bytes consumed.
fn rfc3339_civil(bytes: &[u8]) -> Option<(Civil, usize)> {
    let year = digits(bytes, 0, 4)?;
    let month = digits(bytes, 5, 2)?;
    let day = digits(bytes, 8, 2)?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(bytes.get(10), Some(b'T' | b't')) {
        return None;
    }
    let (hour, minute, second) = clock(bytes, 11)?;
    let (nanosecond, fraction_bytes) = fraction(bytes, 19)?;
    let civil = Civil {
        year: i64::from(year),
        month,
        day,
        hour,
        minute,
        second,
        nanosecond,
    };
    Some((civil, 19 + fraction_bytes))
}

/// Reads `Z` or `±hh:mm` at `at`, returning seconds east of UTC and the bytes consumed.
fn offset(bytes: &[u8], at: usize) -> Option<(i32, usize)> {
    let sign = match bytes.get(at)? {
        b'Z' | b'z' => return Some((0, 1)),
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = digits(bytes, at + 1, 2)?;
    let minutes = digits(bytes, at + 4, 2)?;
    if bytes.get(at + 3) != Some(&b':') || hours > 23 || minutes > 59 {
        return None;
    }
    Some((sign * (hours * 3600 + minutes * 60) as i32, 6))
}

/// Month abbreviations of the BSD form, as `ctime` writes them.
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A BSD timestamp: month (1..=12), day, clock, fraction in nanoseconds, and the year when
/// the sender wrote one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bsd {
    /// The month, 1 (January) to 12, from its three-letter abbreviation.
    pub month: u32,
    /// The day of the month, 1 to 31.
    pub day: u32,
    /// The hour, 0 to 23.
    pub hour: u32,
    /// The minute, 0 to 59.
    pub minute: u32,
    /// The second, 0 to 60 (a leap second reads as the first second of the next minute).
    pub second: u32,
    /// The fraction of the second, in nanoseconds (0 when the sender wrote none).
    pub nanosecond: u32,
    /// The year the sender wrote before the clock; `None` when it wrote none, and
    /// [`Bsd::to_ns`] infers it from the receiver's date.
    pub year: Option<i64>,
}

/// Reads a BSD timestamp at the start of `bytes`: `Mmm dd hh:mm:ss`, where the day is one or
/// two digits after one or two spaces, with an optional fraction (`.483`, as Cisco writes it)
/// and an optional year before the clock (`Mmm dd yyyy hh:mm:ss`). Returns the reading and the
/// bytes consumed.
pub fn bsd(bytes: &[u8]) -> Option<(Bsd, usize)> {
    let name = bytes.get(..3)?;
    let month = MONTHS
        .iter()
        .position(|candidate| name.eq_ignore_ascii_case(*candidate))?;
    let mut at = 3;
    if bytes.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;
    if bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    let (day, day_bytes) = match digits(bytes, at, 2) {
        Some(day) => (day, 2),
        None => (digits(bytes, at, 1)?, 1),
    };
    at += day_bytes;
    if day == 0 || day > 31 || bytes.get(at) != Some(&b' ') {
        return None;
    }
    at += 1;
    let mut year = None;
    if bytes.get(at + 4) == Some(&b' ') {
        year = Some(i64::from(digits(bytes, at, 4)?));
        at += 5;
    }
    let (hour, minute, second) = clock(bytes, at)?;
    at += 8;
    let (nanosecond, fraction_bytes) = fraction(bytes, at)?;
    at += fraction_bytes;
    let reading = Bsd {
        month: month as u32 + 1,
        day,
        hour,
        minute,
        second,
        nanosecond,
        year,
    };
    Some((reading, at))
}

impl Bsd {
    /// Nanoseconds since the epoch, reading the clock at `offset_seconds` east of UTC in
    /// `year` unless the sender gave one. A December line read in January belongs to last
    /// year and a January line read in December (a sender's clock a little ahead) to next
    /// year, as rsyslog decides; `month_now` is the receiver's current month.
    pub fn to_ns(self, year_now: i64, month_now: u32, offset_seconds: i32) -> Option<i64> {
        let year = match self.year {
            Some(year) => year,
            None if self.month == 12 && month_now == 1 => year_now - 1,
            None if self.month == 1 && month_now == 12 => year_now + 1,
            None => year_now,
        };
        let civil = Civil {
            year,
            month: self.month,
            day: self.day,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            nanosecond: self.nanosecond,
        };
        civil.to_ns(offset_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trips_over_four_centuries() {
        let first = days_from_civil(1900, 1, 1);
        let last = days_from_civil(2300, 12, 31);
        let mut previous = None;
        for days in first..=last {
            let (year, month, day) = civil_from_days(days);
            assert_eq!(days_from_civil(year, month, day), days);
            assert!(day >= 1 && day <= days_in_month(year, month));
            if let Some((previous_year, previous_month, previous_day)) = previous {
                let next_day = (year, month, day) > (previous_year, previous_month, previous_day);
                assert!(next_day, "dates increase one day at a time");
            }
            previous = Some((year, month, day));
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn rfc3339_reads_offsets_fractions_and_refuses_bad_ranges() {
        // 2003-10-11T22:14:15.003Z is 1065910455 s and 3 ms after the epoch.
        assert_eq!(
            rfc3339(b"2003-10-11T22:14:15.003Z"),
            Some((1_065_910_455_003_000_000, 24))
        );
        assert_eq!(
            rfc3339(b"2003-08-24T05:14:15.000003-07:00 x"),
            Some((1_061_727_255_000_003_000, 32))
        );
        assert_eq!(
            rfc3339(b"1985-04-12t23:20:50.52z"),
            Some((482_196_050_520_000_000, 23))
        );
        assert_eq!(
            rfc3339(b"2003-10-11T22:14:15.123456789+00:00").map(|(ns, _)| ns % 1_000_000_000),
            Some(123_456_789)
        );
        for bad in [
            &b"2003-10-11T22:14:15"[..],
            b"2003-10-11 22:14:15Z",
            b"2003-13-11T22:14:15Z",
            b"2003-02-29T22:14:15Z",
            b"2003-10-11T24:14:15Z",
            b"2003-10-11T22:14:15.Z",
            b"2003-10-11T22:14:15.0123456789Z",
            b"2003-10-11T22:14:15+24:00",
            b"2003-10-11T22:14:15+0100",
            b"3003-10-11T22:14:15Z",
        ] {
            assert_eq!(rfc3339(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn bsd_reads_padded_days_years_and_fractions() {
        let (reading, consumed) = bsd(b"Oct  1 22:14:15 host").unwrap();
        assert_eq!(
            (reading.month, reading.day, reading.hour, consumed),
            (10, 1, 22, 15)
        );
        let (reading, consumed) = bsd(b"Oct 1 22:14:15 host").unwrap();
        assert_eq!((reading.day, consumed), (1, 14));
        let (reading, consumed) = bsd(b"Mar 01 2024 18:48:50.483:").unwrap();
        assert_eq!(
            (reading.year, reading.nanosecond, consumed),
            (Some(2024), 483_000_000, 24)
        );
        for bad in [
            &b"Oct 11 22:14"[..],
            b"Okt 11 22:14:15",
            b"Oct 32 22:14:15",
            b"Oct 11  22:14:15",
        ] {
            assert_eq!(bsd(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn bsd_year_wraps_at_new_year() {
        let december = bsd(b"Dec 31 23:59:59").unwrap().0;
        let january = bsd(b"Jan  1 00:00:01").unwrap().0;
        let in_2026 = |reading: Bsd, month_now| {
            reading
                .to_ns(2026, month_now, 0)
                .map(|ns| civil_from_days(ns.div_euclid(NANOS_PER_SECOND * SECONDS_PER_DAY)).0)
        };
        assert_eq!(in_2026(december, 1), Some(2025));
        assert_eq!(in_2026(december, 11), Some(2026));
        assert_eq!(in_2026(january, 12), Some(2027));
        assert_eq!(in_2026(january, 2), Some(2026));
        // One hour east of UTC, local midnight is 23:00 UTC the day before.
        let local = bsd(b"Jan  1 00:00:00")
            .unwrap()
            .0
            .to_ns(2026, 1, 3600)
            .unwrap();
        assert_eq!(
            local,
            (days_from_civil(2026, 1, 1) * SECONDS_PER_DAY - 3600) * NANOS_PER_SECOND
        );
    }
}
