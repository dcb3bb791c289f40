//! The UTC time as a civil date and a time of day, without a time zone database.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A moment in UTC, to the second: a proleptic Gregorian date and a time of day.
///
/// `Display` writes `YYYY-MM-DD HH:MM:SS UTC` (reports); [`UtcTime::stamp`] writes
/// `YYYYMMDD-HHMMSS` (run folder names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime {
    /// The year (`1970` for the Unix epoch).
    pub year: i64,
    /// The month, `1..=12`.
    pub month: u32,
    /// The day of the month, `1..=31`.
    pub day: u32,
    /// The hour, `0..=23`.
    pub hour: u32,
    /// The minute, `0..=59`.
    pub minute: u32,
    /// The second, `0..=59` (Unix time has no leap seconds).
    pub second: u32,
}

impl UtcTime {
    /// The current time; the Unix epoch if the clock is set before it.
    pub fn now() -> Self {
        Self::from_unix_seconds(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64))
    }

    /// The time `secs` seconds after 1970-01-01 00:00:00 UTC (before it, if negative).
    pub fn from_unix_seconds(secs: i64) -> Self {
        let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        // `rest` is in 0..86_400, so every part fits a u32.
        let (hour, minute, second) = ((rest / 3_600) as u32, (rest % 3_600 / 60) as u32, (rest % 60) as u32);
        Self { year, month, day, hour, minute, second }
    }

    /// `YYYYMMDD-HHMMSS`, for names that sort by time (run folders).
    pub fn stamp(&self) -> String {
        let Self { year, month, day, hour, minute, second } = self;
        format!("{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}")
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self { year, month, day, hour, minute, second } = self;
        write!(f, "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
    }
}

/// The current UTC time as `YYYYMMDD-HHMMSS`, for run folder names.
pub fn utc_stamp() -> String {
    UtcTime::now().stamp()
}

/// The civil date `(year, month, day)` of the day `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // `day` is in 1..=31 and `month` in 1..=12.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> (String, String) {
        let t = UtcTime::from_unix_seconds(secs);
        (t.stamp(), t.to_string())
    }

    #[test]
    fn known_dates() {
        assert_eq!(at(0), ("19700101-000000".into(), "1970-01-01 00:00:00 UTC".into()));
        // `date -u -d '2024-02-29 12:34:56' +%s`
        assert_eq!(at(1_709_210_096), ("20240229-123456".into(), "2024-02-29 12:34:56 UTC".into()));
        assert_eq!(at(1_709_251_199).1, "2024-02-29 23:59:59 UTC");
        assert_eq!(at(1_709_251_200).1, "2024-03-01 00:00:00 UTC");
        // `date -u -d '2026-12-07 08:09:10' +%s`
        assert_eq!(at(1_796_630_950), ("20261207-080910".into(), "2026-12-07 08:09:10 UTC".into()));
        assert_eq!(at(951_782_400).1, "2000-02-29 00:00:00 UTC");
        assert_eq!(at(-1).1, "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn now_is_after_the_code_was_written() {
        let now = UtcTime::now();
        assert!(now >= UtcTime::from_unix_seconds(1_767_225_600), "{now}");
        assert_eq!(utc_stamp().len(), "20250101-000000".len());
    }
}
