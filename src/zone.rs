//! Named time zones from the system zoneinfo (`/usr/share/zoneinfo`, Debian's `tzdata`), for
//! the `tz` option of decoders: a timestamp written as local wall-clock time without a zone
//! (RFC 3164 syslog, a Heka Lua grammar's parse) becomes the right UTC instant, daylight saving
//! included.

use std::path::Path;

/// Where zone files are looked up by name.
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";

/// One named zone, loaded once; lookups read no file.
#[derive(Debug, Clone)]
pub struct Zone {
    name: String,
    zone: tz::TimeZone,
}

impl Zone {
    /// Loads the zone `name` (`America/Los_Angeles`, `UTC`, `Europe/Zurich`) from the
    /// system zoneinfo.
    ///
    /// # Errors
    /// The name is not a zone file there (or tries to leave the directory), or the file does
    /// not parse: a message naming the zone, for the config error.
    pub fn load(name: &str) -> Result<Zone, String> {
        let escapes =
            name.starts_with('/') || name.split('/').any(|part| part.is_empty() || part == "..");
        if escapes || !Path::new(ZONEINFO_DIR).join(name).is_file() {
            return Err(format!("no time zone named `{name}` in {ZONEINFO_DIR}"));
        }
        let zone = tz::TimeZone::from_posix_tz(name)
            .map_err(|error| format!("time zone `{name}`: {error}"))?;
        Ok(Zone {
            name: name.to_string(),
            zone,
        })
    }

    /// The zone's name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Seconds east of UTC in this zone at the UTC instant `unix_seconds`.
    pub fn offset_at(&self, unix_seconds: i64) -> i32 {
        self.zone
            .find_local_time_type(unix_seconds)
            .map_or(0, |kind| kind.ut_offset())
    }

    /// The UTC instant, in nanoseconds, of the wall-clock reading `wall_ns` taken in this zone
    /// (a reading stored as if it were UTC, as a zoneless parse gives it). A reading that falls
    /// in the hour skipped by a daylight-saving change, or twice in the hour repeated, takes
    /// the offset in force just before the change.
    pub fn wall_to_utc_ns(&self, wall_ns: i64) -> i64 {
        let wall_seconds = wall_ns.div_euclid(1_000_000_000);
        let guess = wall_seconds - i64::from(self.offset_at(wall_seconds));
        let offset = self.offset_at(guess);
        wall_ns.saturating_sub(i64::from(offset) * 1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::Zone;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn los_angeles_is_eight_hours_behind_in_winter_and_seven_in_summer() {
        let zone = Zone::load("America/Los_Angeles").expect("tzdata is installed");
        // 2024-01-15 09:30:00 read in Los Angeles is 17:30:00 UTC.
        let winter_wall = 1_705_311_000 * SECOND;
        assert_eq!(
            zone.wall_to_utc_ns(winter_wall),
            winter_wall + 8 * 3600 * SECOND
        );
        // 2024-07-15 09:30:00 is 16:30:00 UTC (daylight saving).
        let summer_wall = 1_721_035_800 * SECOND;
        assert_eq!(
            zone.wall_to_utc_ns(summer_wall),
            summer_wall + 7 * 3600 * SECOND
        );
        assert_eq!(zone.offset_at(1_705_311_000), -8 * 3600);
        assert_eq!(zone.name(), "America/Los_Angeles");
    }

    #[test]
    fn utc_changes_nothing_and_unknown_names_are_refused() {
        let utc = Zone::load("UTC").expect("UTC");
        assert_eq!(utc.wall_to_utc_ns(123 * SECOND + 4), 123 * SECOND + 4);
        for name in [
            "Nowhere/Land",
            "../etc/passwd",
            "/etc/localtime",
            "",
            "America/",
        ] {
            let error = Zone::load(name).expect_err(name);
            assert!(error.contains("no time zone named"), "{name}: {error}");
        }
    }
}
