//! UTC calendar stamps of wall-clock times (`YYYYmmddHHMMSS`), written by hand because the
//! daemon needs only these two conversions and nothing else of a date-time crate.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `YYYYmmddHHMMSS` in UTC.
#[must_use]
pub fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// The time of a `YYYYmmddHHMMSS` stamp; `None` if it is not one.
#[must_use]
pub fn parse_utc_stamp(stamp: &str) -> Option<SystemTime> {
    if stamp.len() != 14 || !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |r: std::ops::Range<usize>| stamp[r].parse::<i64>().ok();
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

// Howard Hinnant's days/civil conversions (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn stamps_round_trip_and_match_the_calendar() {
        // 2026-11-24T08:52:07Z, checked with `date -u -d @1795510327`.
        assert_eq!(utc_stamp(at(1_795_510_327)), "20261124085207");
        assert_eq!(parse_utc_stamp("20261124085207"), Some(at(1_795_510_327)));
        // Leap day and the epoch.
        assert_eq!(utc_stamp(at(951_782_400)), "20000229000000");
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101000000");
        assert_eq!(parse_utc_stamp("20261324085207"), None);
        assert_eq!(parse_utc_stamp("2026112408520x"), None);
    }
}
