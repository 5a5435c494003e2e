//! Go reference-time layouts (`02/Jan/2006:15:04:05 -0700`), parsed: the `timestamp_layout`
//! of PayloadRegexDecoder and PayloadJsonDecoder.
//!
//! A layout writes the reference instant `Mon Jan 2 15:04:05 MST 2006` (zone `-0700`) the way
//! the timestamps look; [`GoLayout::compile`] turns it into a list of elements once at startup
//! and [`GoLayout::parse`] reads one timestamp with it, allocating nothing. The elements:
//!
//! | element | reads |
//! |---|---|
//! | `2006`, `06` | year; two digits are 1969..=2068 |
//! | `January`, `Jan`, `01`, `1` | month: full or short English name, two digits, one or two |
//! | `02`, `_2`, `2` | day of the month: two digits, space-padded, one or two |
//! | `002`, `__2` | day of the year: three digits, space-padded |
//! | `Monday`, `Mon` | weekday name: read and ignored |
//! | `15`, `03`, `3` | hour: 24-hour clock, 12-hour two digits, 12-hour one or two |
//! | `04`, `4`, `05`, `5` | minute, second: two digits, one or two |
//! | `PM`, `pm` | `AM`/`PM` (`am`/`pm`) for the 12-hour clock |
//! | `.000`, `,000`, `.999`, `,999` | fraction of a second: exactly that many digits, or up to that many |
//! | `MST` | zone abbreviation: `UTC`, `GMT` and `Z` are UTC, others are read in the location |
//! | `-0700`, `-07:00`, `-07`, `-070000`, `-07:00:00` | numeric offset |
//! | `Z0700`, `Z07:00`, `Z07`, `Z070000`, `Z07:00:00` | numeric offset, or `Z` for UTC |
//!
//! Everything else is literal and must match byte for byte. As in Go, a fraction of a second
//! right after the seconds is accepted even when the layout does not write one. The special
//! layouts `Epoch`, `EpochMilli`, `EpochMicro` and `EpochNano` read a count since 1970
//! (`Epoch` takes a decimal fraction). A reading without a year takes the current year, one
//! without a date the current day; one without an offset is wall-clock time in the location
//! the caller passes (`timestamp_location`).

use crate::calendar::{days_from_civil, days_in_month, is_leap};
use crate::zone::Zone;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The longest layout accepted, in bytes: a layout is a config string, never data.
pub const LAYOUT_BYTES_MAX: usize = 256;

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

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// How a numeric offset is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OffsetForm {
    /// `-07`.
    Hours,
    /// `-0700`.
    HoursMinutes,
    /// `-07:00`.
    HoursColonMinutes,
    /// `-070000`.
    HoursMinutesSeconds,
    /// `-07:00:00`.
    HoursColonMinutesColonSeconds,
}

/// One element of a compiled layout.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    Literal(Box<[u8]>),
    Year4,
    Year2,
    MonthName,
    MonthShort,
    Month2,
    Month,
    Day2,
    DaySpace,
    Day,
    YearDay3,
    YearDaySpace,
    WeekdayName,
    WeekdayShort,
    Hour24,
    Hour12Two,
    Hour12,
    Minute2,
    Minute,
    Second2,
    Second,
    PmUpper,
    PmLower,
    /// Exactly this many fraction digits (`.000`).
    FractionExact(u8),
    /// Up to this many fraction digits, the separator optional when none (`.999`).
    FractionUpTo(u8),
    ZoneName,
    /// A numeric offset; `true` when `Z` may stand for UTC.
    Offset(OffsetForm, bool),
}

/// The element prefixes, longest first where one is the prefix of another; the order in
/// which [`next_element`] tries them.
const ELEMENTS: &[(&str, Element)] = &[
    ("January", Element::MonthName),
    ("Jan", Element::MonthShort),
    ("Monday", Element::WeekdayName),
    ("Mon", Element::WeekdayShort),
    ("MST", Element::ZoneName),
    ("2006", Element::Year4),
    ("002", Element::YearDay3),
    ("__2", Element::YearDaySpace),
    ("_2", Element::DaySpace),
    ("01", Element::Month2),
    ("02", Element::Day2),
    ("03", Element::Hour12Two),
    ("04", Element::Minute2),
    ("05", Element::Second2),
    ("06", Element::Year2),
    ("15", Element::Hour24),
    ("1", Element::Month),
    ("2", Element::Day),
    ("3", Element::Hour12),
    ("4", Element::Minute),
    ("5", Element::Second),
    ("PM", Element::PmUpper),
    ("pm", Element::PmLower),
    (
        "-07:00:00",
        Element::Offset(OffsetForm::HoursColonMinutesColonSeconds, false),
    ),
    (
        "-070000",
        Element::Offset(OffsetForm::HoursMinutesSeconds, false),
    ),
    (
        "-07:00",
        Element::Offset(OffsetForm::HoursColonMinutes, false),
    ),
    ("-0700", Element::Offset(OffsetForm::HoursMinutes, false)),
    ("-07", Element::Offset(OffsetForm::Hours, false)),
    (
        "Z07:00:00",
        Element::Offset(OffsetForm::HoursColonMinutesColonSeconds, true),
    ),
    (
        "Z070000",
        Element::Offset(OffsetForm::HoursMinutesSeconds, true),
    ),
    (
        "Z07:00",
        Element::Offset(OffsetForm::HoursColonMinutes, true),
    ),
    ("Z0700", Element::Offset(OffsetForm::HoursMinutes, true)),
    ("Z07", Element::Offset(OffsetForm::Hours, true)),
];

/// A compiled `timestamp_layout`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoLayout(Form);

/// What a layout compiled to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Form {
    /// A reference-time layout, as elements.
    Elements(Box<[Element]>),
    /// `Epoch` (seconds, with an optional decimal fraction), `EpochMilli`, `EpochMicro`,
    /// `EpochNano`: nanoseconds per unit.
    Epoch(i64),
}

/// Why a timestamp does not fit its layout. The code is a short label for logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// A literal of the layout is not there.
    #[error("the text does not follow the layout")]
    Mismatch,
    /// A number or name the layout expects is missing or out of range.
    #[error("a value is missing or out of range")]
    Range,
    /// Text is left after the layout ends.
    #[error("extra text after the timestamp")]
    Extra,
}

impl LayoutError {
    /// A low-cardinality label.
    pub fn code(self) -> &'static str {
        match self {
            LayoutError::Mismatch => "timestamp_mismatch",
            LayoutError::Range => "timestamp_range",
            LayoutError::Extra => "timestamp_extra",
        }
    }
}

/// The parts of one reading, before they become an instant.
#[derive(Clone, Copy, Debug, Default)]
struct Reading {
    year: Option<i64>,
    month: Option<u32>,
    day: Option<u32>,
    year_day: Option<u32>,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    pm: Option<bool>,
    offset_seconds: Option<i32>,
}

impl GoLayout {
    /// Compiles `layout`.
    ///
    /// # Errors
    /// The layout is empty or longer than [`LAYOUT_BYTES_MAX`]: a message for the config error.
    pub fn compile(layout: &str) -> Result<GoLayout, String> {
        match layout {
            "Epoch" => return Ok(GoLayout(Form::Epoch(NANOS_PER_SECOND))),
            "EpochMilli" => return Ok(GoLayout(Form::Epoch(1_000_000))),
            "EpochMicro" => return Ok(GoLayout(Form::Epoch(1_000))),
            "EpochNano" => return Ok(GoLayout(Form::Epoch(1))),
            _ => {}
        }
        if layout.is_empty() || layout.len() > LAYOUT_BYTES_MAX {
            return Err(format!("a layout is 1 to {LAYOUT_BYTES_MAX} bytes"));
        }
        let mut elements = Vec::new();
        let mut literal = Vec::new();
        let mut rest = layout.as_bytes();
        while !rest.is_empty() {
            match next_element(rest) {
                Some((element, length)) => {
                    if !literal.is_empty() {
                        elements.push(Element::Literal(std::mem::take(&mut literal).into()));
                    }
                    elements.push(element);
                    rest = &rest[length..];
                }
                None => {
                    literal.push(rest[0]);
                    rest = &rest[1..];
                }
            }
        }
        if !literal.is_empty() {
            elements.push(Element::Literal(literal.into()));
        }
        Ok(GoLayout(Form::Elements(elements.into())))
    }

    /// Reads `text` as an instant, in nanoseconds since the epoch. A reading without an offset
    /// is wall-clock time in `location` (UTC when `None`); one without a year or a date takes
    /// them from `now_ns` (read in the same location).
    ///
    /// # Errors
    /// The text does not follow the layout, or a value is out of range.
    pub fn parse(
        &self,
        text: &[u8],
        location: Option<&Zone>,
        now_ns: i64,
    ) -> Result<i64, LayoutError> {
        let elements = match &self.0 {
            Form::Epoch(unit_ns) => return parse_epoch(text, *unit_ns),
            Form::Elements(elements) => elements,
        };
        let mut reading = Reading::default();
        let mut rest = text;
        for (index, element) in elements.iter().enumerate() {
            rest = read_element(element, rest, &mut reading)?;
            let seconds_element = matches!(element, Element::Second2 | Element::Second);
            let fraction_next = matches!(
                elements.get(index + 1),
                Some(Element::FractionExact(_) | Element::FractionUpTo(_))
            );
            if seconds_element && !fraction_next {
                rest = read_implicit_fraction(rest, &mut reading);
            }
        }
        if !rest.is_empty() {
            return Err(LayoutError::Extra);
        }
        reading.to_ns(location, now_ns)
    }
}

/// The element `layout` starts with and its length, or `None` for a literal byte.
fn next_element(layout: &[u8]) -> Option<(Element, usize)> {
    if let Some(fraction) = fraction_element(layout) {
        return Some(fraction);
    }
    ELEMENTS
        .iter()
        .find(|(prefix, _)| layout.starts_with(prefix.as_bytes()))
        .map(|(prefix, element)| (element.clone(), prefix.len()))
}

/// `.000`/`,000` or `.999`/`,999` (a run of one digit, not followed by another digit).
fn fraction_element(layout: &[u8]) -> Option<(Element, usize)> {
    let (&separator, digits) = layout.split_first()?;
    let &digit = digits.first()?;
    if !matches!(separator, b'.' | b',') || !matches!(digit, b'0' | b'9') {
        return None;
    }
    let run = digits.iter().take_while(|&&byte| byte == digit).count();
    if digits.get(run).is_some_and(u8::is_ascii_digit) || run > 9 {
        return None;
    }
    let run_u8 = run as u8;
    let element = if digit == b'0' {
        Element::FractionExact(run_u8)
    } else {
        Element::FractionUpTo(run_u8)
    };
    Some((element, 1 + run))
}

/// Reads one element from the start of `text` into `reading`; returns what follows.
fn read_element<'t>(
    element: &Element,
    text: &'t [u8],
    reading: &mut Reading,
) -> Result<&'t [u8], LayoutError> {
    use Element as E;
    let rest = match element {
        E::Literal(literal) => text
            .strip_prefix(&literal[..])
            .ok_or(LayoutError::Mismatch)?,
        E::Year4 => {
            let (value, rest) = digits(text, 4, 4)?;
            reading.year = Some(i64::from(value));
            rest
        }
        E::Year2 => {
            let (value, rest) = digits(text, 2, 2)?;
            let century = if value >= 69 { 1900 } else { 2000 };
            reading.year = Some(i64::from(century + value));
            rest
        }
        E::MonthName | E::MonthShort => {
            let (index, rest) = name(text, &MONTHS, matches!(element, E::MonthShort))?;
            reading.month = Some(index as u32 + 1);
            rest
        }
        E::WeekdayName | E::WeekdayShort => {
            name(text, &WEEKDAYS, matches!(element, E::WeekdayShort))?.1
        }
        E::Month2 | E::Month => {
            let (value, rest) = digits(text, usize::from(matches!(element, E::Month2)) + 1, 2)?;
            reading.month = Some(in_range(value, 1, 12)?);
            rest
        }
        E::Day2 | E::Day | E::DaySpace => {
            let text = match element {
                E::DaySpace => text.strip_prefix(b" ").unwrap_or(text),
                _ => text,
            };
            let (value, rest) = digits(text, usize::from(matches!(element, E::Day2)) + 1, 2)?;
            reading.day = Some(in_range(value, 1, 31)?);
            rest
        }
        E::YearDay3 | E::YearDaySpace => {
            let (value, rest) = match element {
                E::YearDay3 => digits(text, 3, 3)?,
                _ => {
                    let trimmed = text
                        .iter()
                        .take(2)
                        .take_while(|&&byte| byte == b' ')
                        .count();
                    digits(&text[trimmed..], 3 - trimmed, 3 - trimmed)?
                }
            };
            reading.year_day = Some(in_range(value, 1, 366)?);
            rest
        }
        E::Hour24 | E::Hour12Two | E::Hour12 | E::Minute2 | E::Minute | E::Second2 | E::Second => {
            read_clock(element, text, reading)?
        }
        E::PmUpper | E::PmLower => {
            let (am, pm): (&[u8], &[u8]) = match element {
                E::PmUpper => (b"AM", b"PM"),
                _ => (b"am", b"pm"),
            };
            if let Some(rest) = text.strip_prefix(pm) {
                reading.pm = Some(true);
                rest
            } else {
                reading.pm = Some(false);
                text.strip_prefix(am).ok_or(LayoutError::Mismatch)?
            }
        }
        E::FractionExact(count) => {
            let after = text
                .get(1..)
                .filter(|_| matches!(text[0], b'.' | b','))
                .ok_or(LayoutError::Mismatch)?;
            let (nanos, rest) = fraction(after, usize::from(*count), usize::from(*count))?;
            reading.nanos = nanos;
            rest
        }
        E::FractionUpTo(count) => match text.split_first() {
            Some((b'.' | b',', after)) if after.first().is_some_and(u8::is_ascii_digit) => {
                let (nanos, rest) = fraction(after, 1, usize::from(*count))?;
                reading.nanos = nanos;
                rest
            }
            _ => text,
        },
        E::ZoneName => read_zone_name(text, reading)?,
        E::Offset(form, z_for_utc) => read_offset(text, *form, *z_for_utc, reading)?,
    };
    Ok(rest)
}

/// Reads an hour, minute or second element.
fn read_clock<'t>(
    element: &Element,
    text: &'t [u8],
    reading: &mut Reading,
) -> Result<&'t [u8], LayoutError> {
    use Element as E;
    let rest = match element {
        E::Hour24 => {
            let (value, rest) = digits(text, 1, 2)?;
            reading.hour = in_range(value, 0, 23)?;
            rest
        }
        E::Hour12Two | E::Hour12 => {
            let (value, rest) = digits(text, usize::from(matches!(element, E::Hour12Two)) + 1, 2)?;
            reading.hour = in_range(value, 1, 12)?;
            rest
        }
        E::Minute2 | E::Minute => {
            let (value, rest) = digits(text, usize::from(matches!(element, E::Minute2)) + 1, 2)?;
            reading.minute = in_range(value, 0, 59)?;
            rest
        }
        E::Second2 | E::Second => {
            let (value, rest) = digits(text, usize::from(matches!(element, E::Second2)) + 1, 2)?;
            reading.second = in_range(value, 0, 59)?;
            rest
        }
        _ => return Err(LayoutError::Mismatch),
    };
    Ok(rest)
}

/// A fraction right after the seconds that the layout does not write (Go accepts one).
fn read_implicit_fraction<'t>(text: &'t [u8], reading: &mut Reading) -> &'t [u8] {
    match text.split_first() {
        Some((b'.' | b',', after)) if after.first().is_some_and(u8::is_ascii_digit) => {
            let count = after
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            match fraction(after, count, count) {
                Ok((nanos, rest)) => {
                    reading.nanos = nanos;
                    rest
                }
                Err(_) => text,
            }
        }
        _ => text,
    }
}

/// Between `min` and `max` ASCII digits as a number, and what follows.
fn digits(text: &[u8], min: usize, max: usize) -> Result<(u32, &[u8]), LayoutError> {
    let count = text
        .iter()
        .take(max)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if count < min {
        return Err(LayoutError::Range);
    }
    let value = text[..count]
        .iter()
        .fold(0u32, |value, &digit| value * 10 + u32::from(digit - b'0'));
    Ok((value, &text[count..]))
}

/// `min..=max` fraction digits as nanoseconds (digits past the ninth are read and dropped).
fn fraction(text: &[u8], min: usize, max: usize) -> Result<(u32, &[u8]), LayoutError> {
    let count = text
        .iter()
        .take(max)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if count < min {
        return Err(LayoutError::Range);
    }
    let mut nanos = 0u32;
    for position in 0..9 {
        let digit = text[..count]
            .get(position)
            .map_or(0, |&digit| u32::from(digit - b'0'));
        nanos = nanos * 10 + digit;
    }
    Ok((nanos, &text[count..]))
}

/// `value` if it lies in `min..=max`.
fn in_range(value: u32, min: u32, max: u32) -> Result<u32, LayoutError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(LayoutError::Range)
    }
}

/// The index of the English name (or its first three letters when `short`) `text` starts
/// with, compared without case as Go does, and what follows.
fn name<'t>(text: &'t [u8], names: &[&str], short: bool) -> Result<(usize, &'t [u8]), LayoutError> {
    names
        .iter()
        .enumerate()
        .find_map(|(index, full)| {
            let candidate = if short {
                &full.as_bytes()[..3]
            } else {
                full.as_bytes()
            };
            let head = text.get(..candidate.len())?;
            head.eq_ignore_ascii_case(candidate)
                .then(|| (index, &text[candidate.len()..]))
        })
        .ok_or(LayoutError::Range)
}

/// A zone abbreviation: `UTC`, `GMT` (with an optional `+h`/`-h`) or `Z` set UTC; any other
/// run of 3 to 5 capitals is accepted and leaves the reading in the caller's location.
fn read_zone_name<'t>(text: &'t [u8], reading: &mut Reading) -> Result<&'t [u8], LayoutError> {
    if let Some(rest) = text
        .strip_prefix(b"UTC")
        .or_else(|| text.strip_prefix(b"GMT"))
    {
        reading.offset_seconds = Some(0);
        if let Some((&sign @ (b'+' | b'-'), after)) = rest.split_first() {
            let (hours, after) = digits(after, 1, 2)?;
            let seconds = in_range(hours, 0, 14)? as i32 * 3600;
            reading.offset_seconds = Some(if sign == b'-' { -seconds } else { seconds });
            return Ok(after);
        }
        return Ok(rest);
    }
    let letters = text
        .iter()
        .take(5)
        .take_while(|byte| byte.is_ascii_uppercase())
        .count();
    if letters < 3 {
        return Err(LayoutError::Mismatch);
    }
    Ok(&text[letters..])
}

/// A numeric offset in `form` (or `Z` when `z_for_utc`).
fn read_offset<'t>(
    text: &'t [u8],
    form: OffsetForm,
    z_for_utc: bool,
    reading: &mut Reading,
) -> Result<&'t [u8], LayoutError> {
    if z_for_utc {
        if let Some(rest) = text.strip_prefix(b"Z") {
            reading.offset_seconds = Some(0);
            return Ok(rest);
        }
    }
    let (&sign, rest) = text.split_first().ok_or(LayoutError::Mismatch)?;
    if !matches!(sign, b'+' | b'-') {
        return Err(LayoutError::Mismatch);
    }
    let (hours, rest) = digits(rest, 2, 2)?;
    let colon = matches!(
        form,
        OffsetForm::HoursColonMinutes | OffsetForm::HoursColonMinutesColonSeconds
    );
    let part = |rest: &'t [u8]| -> Result<(u32, &'t [u8]), LayoutError> {
        let rest = if colon {
            rest.strip_prefix(b":").ok_or(LayoutError::Mismatch)?
        } else {
            rest
        };
        let (value, rest) = digits(rest, 2, 2)?;
        Ok((in_range(value, 0, 59)?, rest))
    };
    let (minutes, rest) = match form {
        OffsetForm::Hours => (0, rest),
        _ => part(rest)?,
    };
    let (seconds, rest) = match form {
        OffsetForm::HoursMinutesSeconds | OffsetForm::HoursColonMinutesColonSeconds => part(rest)?,
        _ => (0, rest),
    };
    let total = (in_range(hours, 0, 23)? * 3600 + minutes * 60 + seconds) as i32;
    reading.offset_seconds = Some(if sign == b'-' { -total } else { total });
    Ok(rest)
}

/// An `Epoch*` reading: an integer count of `unit_ns`, and for seconds a decimal fraction.
fn parse_epoch(text: &[u8], unit_ns: i64) -> Result<i64, LayoutError> {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    let count = text
        .iter()
        .take(19)
        .take_while(|byte| byte.is_ascii_digit())
        .count();
    if count == 0 {
        return Err(LayoutError::Range);
    }
    let whole = text[..count]
        .iter()
        .try_fold(0i64, |value, &digit| {
            value.checked_mul(10)?.checked_add(i64::from(digit - b'0'))
        })
        .ok_or(LayoutError::Range)?;
    let mut rest = &text[count..];
    let mut nanos = 0i64;
    if unit_ns == NANOS_PER_SECOND {
        if let Some(after) = rest.strip_prefix(b".") {
            let (fraction_ns, after) = fraction(after, 1, 9)?;
            let extra = after
                .iter()
                .take_while(|byte| byte.is_ascii_digit())
                .count();
            nanos = i64::from(fraction_ns);
            rest = &after[extra..];
        }
    }
    if !rest.is_empty() {
        return Err(LayoutError::Extra);
    }
    let value = whole
        .checked_mul(unit_ns)
        .and_then(|value| value.checked_add(nanos))
        .ok_or(LayoutError::Range)?;
    Ok(if negative { -value } else { value })
}

impl Reading {
    /// The instant this reading names.
    fn to_ns(mut self, location: Option<&Zone>, now_ns: i64) -> Result<i64, LayoutError> {
        if let Some(pm) = self.pm {
            self.hour = match (pm, self.hour) {
                (false, 12) => 0,
                (true, 12) => 12,
                (true, hour) => hour + 12,
                (false, hour) => hour,
            };
        }
        let now_seconds = now_ns.div_euclid(NANOS_PER_SECOND);
        let now_offset = location.map_or(0, |zone| zone.offset_at(now_seconds));
        let today = crate::calendar::civil_from_days(
            (now_seconds + i64::from(now_offset)).div_euclid(86_400),
        );
        let no_date = self.year.is_none()
            && self.month.is_none()
            && self.day.is_none()
            && self.year_day.is_none();
        let year = self.year.unwrap_or(today.0);
        let (month, day) = match (self.year_day, no_date) {
            (_, true) => (today.1, today.2),
            (Some(year_day), false) => month_day_of(year, year_day)?,
            (None, false) => (self.month.unwrap_or(1), self.day.unwrap_or(1)),
        };
        if day > days_in_month(year, month) {
            return Err(LayoutError::Range);
        }
        let seconds = days_from_civil(year, month, day) * 86_400
            + i64::from(self.hour * 3600 + self.minute * 60 + self.second);
        let wall_ns = seconds
            .checked_mul(NANOS_PER_SECOND)
            .and_then(|ns| ns.checked_add(i64::from(self.nanos)))
            .ok_or(LayoutError::Range)?;
        Ok(match (self.offset_seconds, location) {
            (Some(offset), _) => wall_ns - i64::from(offset) * NANOS_PER_SECOND,
            (None, Some(zone)) => zone.wall_to_utc_ns(wall_ns),
            (None, None) => wall_ns,
        })
    }
}

/// The month and day of day `year_day` (1-based) of `year`.
fn month_day_of(year: i64, year_day: u32) -> Result<(u32, u32), LayoutError> {
    let days_in_year = if is_leap(year) { 366 } else { 365 };
    if year_day > days_in_year {
        return Err(LayoutError::Range);
    }
    let mut remaining = year_day;
    for month in 1..=12 {
        let length = days_in_month(year, month);
        if remaining <= length {
            return Ok((month, remaining));
        }
        remaining -= length;
    }
    Err(LayoutError::Range)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = NANOS_PER_SECOND;
    /// 2026-12-03 12:00:00 UTC, the "now" of readings without a year or date.
    const NOW: i64 = 1_796_299_200 * SECOND;

    fn parse(layout: &str, text: &str) -> Result<i64, LayoutError> {
        GoLayout::compile(layout)
            .expect("compiles")
            .parse(text.as_bytes(), None, NOW)
    }

    fn utc(year: i64, month: u32, day: u32, hour: i64, minute: i64, second: i64) -> i64 {
        (days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second) * SECOND
    }

    #[test]
    fn the_now_constant_is_the_date_it_says() {
        assert_eq!(NOW, utc(2026, 12, 3, 12, 0, 0));
    }

    #[test]
    fn documented_layouts_read_their_reference_forms() {
        let reference = utc(2006, 1, 2, 22, 4, 5);
        let cases = [
            ("02/Jan/2006:15:04:05 -0700", "02/Jan/2006:15:04:05 -0700"),
            ("2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05-07:00"),
            (
                "Mon Jan _2 15:04:05 MST 2006",
                "Mon Jan  2 22:04:05 UTC 2006",
            ),
            (
                "Monday, 02-Jan-06 15:04:05 MST",
                "Monday, 02-Jan-06 22:04:05 GMT",
            ),
            (
                "Mon, 02 Jan 2006 15:04:05 -0700",
                "Mon, 02 Jan 2006 15:04:05 -0700",
            ),
            (
                "January 2, 2006 3:04:05 PM -07",
                "January 2, 2006 3:04:05 PM -07",
            ),
            ("2006/01/02 03:04:05pm Z0700", "2006/01/02 10:04:05pm Z"),
            ("2006-002 15:04:05 -07:00:00", "2006-002 15:04:05 -07:00:00"),
            ("2006 __2 15 04 05 -070000", "2006   2 15 04 05 -070000"),
            ("1/2/06 3:4:5 PM -0700", "1/2/06 3:4:5 PM -0700"),
        ];
        for (layout, text) in cases {
            assert_eq!(parse(layout, text), Ok(reference), "{layout} / {text}");
        }
    }

    #[test]
    fn fractions_exact_optional_and_implicit() {
        let base = utc(2006, 1, 2, 15, 4, 5);
        assert_eq!(
            parse("2006-01-02 15:04:05.000", "2006-01-02 15:04:05.123"),
            Ok(base + 123_000_000)
        );
        assert_eq!(
            parse("2006-01-02 15:04:05,000", "2006-01-02 15:04:05,120"),
            Ok(base + 120_000_000)
        );
        assert_eq!(
            parse("2006-01-02 15:04:05.000", "2006-01-02 15:04:05.12"),
            Err(LayoutError::Range)
        );
        assert_eq!(
            parse("2006-01-02 15:04:05.999", "2006-01-02 15:04:05.5"),
            Ok(base + 500_000_000)
        );
        assert_eq!(
            parse("2006-01-02 15:04:05.999", "2006-01-02 15:04:05"),
            Ok(base)
        );
        assert_eq!(
            parse(
                "2006-01-02 15:04:05 MST",
                "2006-01-02 15:04:05.123456789 UTC"
            ),
            Ok(base + 123_456_789),
            "a fraction after the seconds is read even when the layout has none"
        );
    }

    #[test]
    fn epoch_layouts() {
        assert_eq!(parse("Epoch", "1136214245"), Ok(1_136_214_245 * SECOND));
        assert_eq!(
            parse("Epoch", "1136214245.25"),
            Ok(1_136_214_245 * SECOND + 250_000_000)
        );
        assert_eq!(
            parse("EpochMilli", "1136214245123"),
            Ok(1_136_214_245_123_000_000)
        );
        assert_eq!(
            parse("EpochMicro", "1136214245123456"),
            Ok(1_136_214_245_123_456_000)
        );
        assert_eq!(
            parse("EpochNano", "1136214245123456789"),
            Ok(1_136_214_245_123_456_789)
        );
        assert_eq!(parse("EpochMilli", "12.5"), Err(LayoutError::Extra));
        assert_eq!(parse("Epoch", ""), Err(LayoutError::Range));
        assert!(parse("EpochNano", "99999999999999999999").is_err());
        assert_eq!(
            parse("EpochNano", "9999999999999999999"),
            Err(LayoutError::Range)
        );
        assert_eq!(parse("Epoch", "9999999999999999"), Err(LayoutError::Range));
    }

    #[test]
    fn missing_year_or_date_comes_from_now() {
        assert_eq!(
            parse("Jan _2 15:04:05", "Feb  3 01:02:03"),
            Ok(utc(2026, 2, 3, 1, 2, 3))
        );
        assert_eq!(parse("15:04:05", "01:02:03"), Ok(utc(2026, 12, 3, 1, 2, 3)));
    }

    #[test]
    fn a_location_applies_only_without_an_offset() {
        let zone = Zone::load("America/Los_Angeles").expect("tzdata is installed");
        let layout = GoLayout::compile("2006-01-02 15:04:05").unwrap();
        let read = layout.parse(b"2024-01-15 09:30:00", Some(&zone), NOW);
        assert_eq!(read, Ok(utc(2024, 1, 15, 17, 30, 0)));
        let layout = GoLayout::compile("2006-01-02 15:04:05 -0700").unwrap();
        let read = layout.parse(b"2024-01-15 09:30:00 +0100", Some(&zone), NOW);
        assert_eq!(read, Ok(utc(2024, 1, 15, 8, 30, 0)));
    }

    #[test]
    fn bad_readings_are_errors_never_panics() {
        let layout = "02/Jan/2006:15:04:05 -0700";
        for text in [
            "",
            "32/Jan/2006:15:04:05 -0700",
            "30/Feb/2006:15:04:05 -0700",
            "02/Foo/2006:15:04:05 -0700",
            "02/Jan/2006:24:04:05 -0700",
            "02/Jan/2006:15:04:05 0700",
            "02/Jan/2006:15:04:05 -0700 extra",
            "02/Jan/2006 15:04:05 -0700",
            "\u{e9}\u{e9}/Jan/2006:15:04:05 -0700",
        ] {
            assert!(parse(layout, text).is_err(), "{text}");
        }
        assert_eq!(parse("2006-002", "2006-366"), Err(LayoutError::Range));
        assert_eq!(
            parse("2006-002", "2004-366"),
            Ok(utc(2004, 12, 31, 0, 0, 0))
        );
        assert!(GoLayout::compile("").is_err());
        assert!(GoLayout::compile(&"x".repeat(LAYOUT_BYTES_MAX + 1)).is_err());
    }

    #[test]
    fn compiling_keeps_literals_between_elements() {
        let layout = GoLayout::compile("at 15h").unwrap();
        let Form::Elements(elements) = layout.0 else {
            panic!("elements")
        };
        assert_eq!(
            &elements[..],
            &[
                Element::Literal(b"at ".to_vec().into()),
                Element::Hour24,
                Element::Literal(b"h".to_vec().into()),
            ]
        );
    }
}
