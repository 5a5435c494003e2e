//! The local time zone: how far local time is from UTC at a given instant, from the C
//! library's `localtime_r` (which reads `TZ` and the system zoneinfo, `/etc/localtime`).

/// Seconds east of UTC of local time at `unix_seconds` (daylight saving included), or 0 when
/// the C library cannot say.
pub fn utc_offset_seconds(unix_seconds: i64) -> i32 {
    let time: libc::time_t = unix_seconds as libc::time_t;
    // SAFETY: `tm` is plain data for which all-zero bytes are a valid value.
    let mut local: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call: `time` is read, `local` is written, and
    // `localtime_r` keeps neither (it is the reentrant form, touching no shared buffer).
    let converted = unsafe { libc::localtime_r(&time, &mut local) };
    if converted.is_null() {
        return 0;
    }
    i32::try_from(local.tm_gmtoff).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_offset_is_within_a_day_and_utc_is_zero() {
        let offset = super::utc_offset_seconds(1_700_000_000);
        assert!(offset.abs() <= 14 * 3600, "{offset}");
        if std::env::var("TZ").as_deref() == Ok("UTC") {
            assert_eq!(offset, 0);
        }
    }
}
