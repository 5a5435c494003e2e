//! A small strftime: the subset of directives a log timestamp needs, always in UTC.
//!
//! A format is compiled once ([`TsFormat::new`]); formatting appends to a caller-owned
//! buffer and allocates nothing once that buffer has grown to its working size.
//!
//! | directive | meaning | example |
//! |---|---|---|
//! | `%Y` `%y` | year, 4 digits / last 2 | `2015` `15` |
//! | `%m` `%d` `%e` | month, day (zero / space padded) | `04` `01` ` 1` |
//! | `%j` | day of the year | `101` |
//! | `%H` `%I` `%p` | hour (24 h / 12 h), AM or PM | `17` `05` `PM` |
//! | `%M` `%S` | minute, second | `30` `26` |
//! | `%b` `%h` `%B` | month name, short / full | `Apr` `April` |
//! | `%a` `%A` | weekday name, short / full | `Sat` `Saturday` |
//! | `%z` `%Z` | UTC offset and zone name: always `+0000` and `UTC` | |
//! | `%s` | seconds since the epoch | `1428773426` |
//! | `%F` `%T` `%R` `%D` | `%Y-%m-%d`, `%H:%M:%S`, `%H:%M`, `%m/%d/%y` | |
//! | `%n` `%t` `%%` | newline, tab, `%` | |
//!
//! Anything else after `%` is refused when the format is compiled. Heka formatted in the
//! host's local zone; gyges formats in UTC so that every core and host agrees.

use crate::calendar::{civil_from_days, days_from_civil};
use crate::limits::TS_FORMAT_BYTES_MAX;

/// Why a format was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TsFormatError {
    /// A `%` is followed by a directive outside the supported subset.
    #[error("unsupported directive `%{directive}` at byte {at} of ts_format")]
    Unsupported {
        /// The character after the `%`.
        directive: char,
        /// The byte offset of the `%` in the format.
        at: usize,
    },
    /// The format ends with a `%` that has no directive after it.
    #[error("ts_format ends with a lone `%`")]
    Trailing,
    /// The format is longer than `TS_FORMAT_BYTES_MAX`.
    #[error("ts_format of {bytes} bytes is above the {TS_FORMAT_BYTES_MAX}-byte limit")]
    TooLong {
        /// The length of the format, in bytes.
        bytes: usize,
    },
}

/// One compiled piece of a format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Piece {
    /// `format[start..end]`, copied as is.
    Literal {
        start: usize,
        end: usize,
    },
    Year,
    YearShort,
    Month,
    Day,
    DaySpace,
    DayOfYear,
    Hour,
    Hour12,
    AmPm,
    Minute,
    Second,
    MonthShort,
    MonthLong,
    WeekdayShort,
    WeekdayLong,
    Offset,
    Zone,
    EpochSeconds,
}

/// A compiled format.
#[derive(Clone, Debug)]
pub struct TsFormat {
    text: Box<[u8]>,
    pieces: Box<[Piece]>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// Weekdays from Sunday.
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl TsFormat {
    /// Compiles `format`.
    ///
    /// # Errors
    /// An unsupported directive, a trailing `%`, or a format above `TS_FORMAT_BYTES_MAX`.
    pub fn new(format: &str) -> Result<TsFormat, TsFormatError> {
        if format.len() > TS_FORMAT_BYTES_MAX {
            return Err(TsFormatError::TooLong {
                bytes: format.len(),
            });
        }
        // Composite directives expand to their parts, and the escapes to literal text.
        let mut text = String::with_capacity(format.len());
        let mut pieces = Vec::new();
        let mut chars = format.char_indices();
        while let Some((at, character)) = chars.next() {
            if character != '%' {
                push_literal(&mut text, &mut pieces, character);
                continue;
            }
            let Some((_, directive)) = chars.next() else {
                return Err(TsFormatError::Trailing);
            };
            let expanded: &[Piece] = match directive {
                'Y' => &[Piece::Year],
                'y' => &[Piece::YearShort],
                'm' => &[Piece::Month],
                'd' => &[Piece::Day],
                'e' => &[Piece::DaySpace],
                'j' => &[Piece::DayOfYear],
                'H' => &[Piece::Hour],
                'I' => &[Piece::Hour12],
                'p' => &[Piece::AmPm],
                'M' => &[Piece::Minute],
                'S' => &[Piece::Second],
                'b' | 'h' => &[Piece::MonthShort],
                'B' => &[Piece::MonthLong],
                'a' => &[Piece::WeekdayShort],
                'A' => &[Piece::WeekdayLong],
                'z' => &[Piece::Offset],
                'Z' => &[Piece::Zone],
                's' => &[Piece::EpochSeconds],
                'F' | 'T' | 'R' | 'D' => {
                    let composite = match directive {
                        'F' => "%Y-%m-%d",
                        'T' => "%H:%M:%S",
                        'R' => "%H:%M",
                        _ => "%m/%d/%y",
                    };
                    let inner = TsFormat::new(composite)?;
                    for piece in inner.pieces.iter() {
                        match *piece {
                            Piece::Literal { start, end } => {
                                for &byte in &inner.text[start..end] {
                                    push_literal(&mut text, &mut pieces, char::from(byte));
                                }
                            }
                            other => pieces.push(other),
                        }
                    }
                    continue;
                }
                'n' => {
                    push_literal(&mut text, &mut pieces, '\n');
                    continue;
                }
                't' => {
                    push_literal(&mut text, &mut pieces, '\t');
                    continue;
                }
                '%' => {
                    push_literal(&mut text, &mut pieces, '%');
                    continue;
                }
                other => {
                    return Err(TsFormatError::Unsupported {
                        directive: other,
                        at,
                    })
                }
            };
            pieces.extend_from_slice(expanded);
        }
        Ok(TsFormat {
            text: text.into_bytes().into(),
            pieces: pieces.into(),
        })
    }

    /// Appends the time `seconds` (since the epoch, UTC) in this format.
    pub fn format(&self, seconds: i64, out: &mut Vec<u8>) {
        let days = seconds.div_euclid(86_400);
        let second_of_day = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let hour = second_of_day / 3600;
        for piece in self.pieces.iter() {
            match *piece {
                Piece::Literal { start, end } => out.extend_from_slice(&self.text[start..end]),
                Piece::Year => push_number(out, year, 4, b'0'),
                Piece::YearShort => push_number(out, year.rem_euclid(100), 2, b'0'),
                Piece::Month => push_number(out, i64::from(month), 2, b'0'),
                Piece::Day => push_number(out, i64::from(day), 2, b'0'),
                Piece::DaySpace => push_number(out, i64::from(day), 2, b' '),
                Piece::DayOfYear => {
                    let day_of_year = days - days_from_civil(year, 1, 1) + 1;
                    push_number(out, day_of_year, 3, b'0');
                }
                Piece::Hour => push_number(out, hour, 2, b'0'),
                Piece::Hour12 => push_number(out, (hour + 11) % 12 + 1, 2, b'0'),
                Piece::AmPm => out.extend_from_slice(if hour < 12 { b"AM" } else { b"PM" }),
                Piece::Minute => push_number(out, second_of_day / 60 % 60, 2, b'0'),
                Piece::Second => push_number(out, second_of_day % 60, 2, b'0'),
                Piece::MonthShort => {
                    out.extend_from_slice(&MONTHS[month as usize - 1].as_bytes()[..3])
                }
                Piece::MonthLong => out.extend_from_slice(MONTHS[month as usize - 1].as_bytes()),
                Piece::WeekdayShort => {
                    out.extend_from_slice(&WEEKDAYS[weekday(days)].as_bytes()[..3])
                }
                Piece::WeekdayLong => out.extend_from_slice(WEEKDAYS[weekday(days)].as_bytes()),
                Piece::Offset => out.extend_from_slice(b"+0000"),
                Piece::Zone => out.extend_from_slice(b"UTC"),
                Piece::EpochSeconds => push_number(out, seconds, 1, b'0'),
            }
        }
    }
}

fn push_literal(text: &mut String, pieces: &mut Vec<Piece>, character: char) {
    let start = text.len();
    text.push(character);
    let end = text.len();
    match pieces.last_mut() {
        Some(Piece::Literal { end: last_end, .. }) if *last_end == start => *last_end = end,
        _ => pieces.push(Piece::Literal { start, end }),
    }
}

/// Appends `value` in decimal, padded to `width` with `pad`.
fn push_number(out: &mut Vec<u8>, value: i64, width: usize, pad: u8) {
    if value < 0 {
        out.push(b'-');
    }
    let mut magnitude = value.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut count = 0;
    loop {
        digits[count] = b'0' + (magnitude % 10) as u8;
        count += 1;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    for _ in count..width {
        out.push(pad);
    }
    out.extend(digits[..count].iter().rev());
}

/// 0 = Sunday. The epoch was a Thursday.
fn weekday(days: i64) -> usize {
    (days + 4).rem_euclid(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn format(format: &str, seconds: i64) -> String {
        let mut out = Vec::new();
        TsFormat::new(format).unwrap().format(seconds, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// Expected strings from a reference strftime in UTC.
    const SEEDS: &[(i64, &str)] = &[
        (
            0,
            "1970-01-01 00:00:00 Thu Thursday Jan January 001  1 70 12 AM",
        ),
        (
            1428773426,
            "2015-04-11 17:30:26 Sat Saturday Apr April 101 11 15 05 PM",
        ),
        (
            951782400,
            "2000-02-29 00:00:00 Tue Tuesday Feb February 060 29 00 12 AM",
        ),
        (
            4107542400,
            "2100-03-01 00:00:00 Mon Monday Mar March 060  1 00 12 AM",
        ),
        (
            -1,
            "1969-12-31 23:59:59 Wed Wednesday Dec December 365 31 69 11 PM",
        ),
        (
            -2208988800,
            "1900-01-01 00:00:00 Mon Monday Jan January 001  1 00 12 AM",
        ),
        (
            1709251199,
            "2024-02-29 23:59:59 Thu Thursday Feb February 060 29 24 11 PM",
        ),
        (
            253402300799,
            "9999-12-31 23:59:59 Fri Friday Dec December 365 31 99 11 PM",
        ),
        (
            -5364662400,
            "1800-01-01 00:00:00 Wed Wednesday Jan January 001  1 00 12 AM",
        ),
    ];

    #[test]
    fn seeds() {
        for &(seconds, expected) in SEEDS {
            let got = format("%F %T %a %A %b %B %j %e %y %I %p", seconds);
            assert_eq!(got, expected, "{seconds}");
        }
    }

    #[test]
    fn heka_default_and_escapes() {
        assert_eq!(
            format("[%Y/%b/%d:%H:%M:%S %z] ", 1428773426),
            "[2015/Apr/11:17:30:26 +0000] "
        );
        assert_eq!(
            format("%s|%%|%n|%t|%Z|%R|%D|%h", 1428773426),
            "1428773426|%|\n|\t|UTC|17:30|04/11/15|Apr"
        );
        assert_eq!(format("%s", -5), "-5");
        assert_eq!(format("plain ünïcode", 0), "plain ünïcode");
    }

    #[test]
    fn bad_formats_are_refused() {
        assert_eq!(
            TsFormat::new("ok %Q").unwrap_err(),
            TsFormatError::Unsupported {
                directive: 'Q',
                at: 3
            }
        );
        assert_eq!(TsFormat::new("%Y%").unwrap_err(), TsFormatError::Trailing);
        assert!(matches!(
            TsFormat::new(&"x".repeat(300)),
            Err(TsFormatError::TooLong { .. })
        ));
    }

    proptest! {
        #[test]
        fn days_round_trip(days in -200_000i64..3_000_000) {
            let (year, month, day) = civil_from_days(days);
            prop_assert!((1..=12).contains(&month) && (1..=31).contains(&day));
            prop_assert_eq!(days_from_civil(year, month, day), days);
            // The next day is the same day plus one, or the first of a month.
            let (_, next_month, next_day) = civil_from_days(days + 1);
            prop_assert!(next_day == day + 1 || (next_day == 1 && next_month != month));
        }
    }
}
