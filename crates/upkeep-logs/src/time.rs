//! Log timestamps as nginx writes them.
//!
//! nginx writes the error log in the host's local time with no zone
//! (`2026/11/23 14:26:24`), and `$time_local` with an offset
//! (`23/Nov/2026:14:26:24 +0100`). Both logs of one host share a clock, so
//! they are compared as *wall-clock* times: seconds since 1970-01-01 00:00:00
//! of the written date and time, ignoring any zone. That is what an operator
//! reads and types (`--since "2026-11-23 14:00"`).

use std::fmt;

/// Wall-clock seconds since 1970-01-01 00:00:00, zone ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogTime(pub i64);

impl LogTime {
    pub fn from_civil(y: i64, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<LogTime> {
        if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 {
            return None;
        }
        // 60 allows a leap second as written by some clocks.
        if s > 60 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        Some(LogTime(
            days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s),
        ))
    }

    /// The start of the minute, as minutes since the epoch.
    pub fn minute(self) -> i64 {
        self.0.div_euclid(60)
    }

    pub fn civil(self) -> (i64, u32, u32, u32, u32, u32) {
        let days = self.0.div_euclid(86_400);
        let rest = self.0.rem_euclid(86_400);
        let (y, mo, d) = civil_from_days(days);
        (
            y,
            mo,
            d,
            (rest / 3600) as u32,
            (rest % 3600 / 60) as u32,
            (rest % 60) as u32,
        )
    }

    /// `2026-11-23 14:26:24`
    pub fn display(self) -> impl fmt::Display {
        DisplayTime(self)
    }

    /// `2026-11-23T14:26` for a minute number (see [`LogTime::minute`]).
    pub fn minute_label(minute: i64) -> String {
        let (y, mo, d, h, mi, _) = LogTime(minute * 60).civil();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}")
    }
}

struct DisplayTime(LogTime);

impl fmt::Display for DisplayTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.0.civil();
        write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, mo: u32) -> u32 {
    match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days-from-civil algorithm: exact for the proleptic
// Gregorian calendar, no tables.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 {
        return None;
    }
    let mut n = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u32::from(c - b'0');
    }
    Some(n)
}

std::thread_local! {
    /// The last date seen and its day number: consecutive log lines almost
    /// always share the date, and the calendar arithmetic is the costly part.
    static LAST_DATE: std::cell::Cell<([u8; 10], i64)> = const { std::cell::Cell::new(([0; 10], 0)) };
    /// The last error-log time text parsed and its value: a busy error log
    /// writes many lines within one second.
    static LAST_ERROR_LOG_TIME: std::cell::Cell<Option<([u8; 19], LogTime)>> =
        const { std::cell::Cell::new(None) };
}

/// The error-log prefix `YYYY/MM/DD HH:MM:SS` (exactly 19 bytes).
pub fn parse_error_log_time(b: &[u8]) -> Option<LogTime> {
    let text: &[u8; 19] = b.get(..19)?.try_into().expect("19 bytes");
    if let Some((last_text, last_time)) = LAST_ERROR_LOG_TIME.with(|c| c.get()) {
        if *text == last_text {
            return Some(last_time);
        }
    }
    let time = parse_error_log_time_uncached(b)?;
    LAST_ERROR_LOG_TIME.with(|c| c.set(Some((*text, time))));
    Some(time)
}

fn parse_error_log_time_uncached(b: &[u8]) -> Option<LogTime> {
    if b.len() < 19
        || b[4] != b'/'
        || b[7] != b'/'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let clock = i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s);
    let date: [u8; 10] = b[..10].try_into().expect("10 bytes");
    let (cached, days) = LAST_DATE.with(|c| c.get());
    if cached == date {
        return Some(LogTime(days * 86_400 + clock));
    }
    let midnight = LogTime::from_civil(
        i64::from(digits(&b[0..4])?),
        digits(&b[5..7])?,
        digits(&b[8..10])?,
        0,
        0,
        0,
    )?;
    let days = midnight.0.div_euclid(86_400);
    LAST_DATE.with(|c| c.set((date, days)));
    Some(LogTime(days * 86_400 + clock))
}

fn month_from_abbr(b: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS
        .iter()
        .position(|m| &m[..] == b)
        .map(|i| i as u32 + 1)
}

/// `$time_local`: `23/Nov/2026:14:26:24 +0100` (the zone is ignored, see the
/// module doc).
pub fn parse_time_local(b: &[u8]) -> Option<LogTime> {
    if b.len() < 20
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
    {
        return None;
    }
    LogTime::from_civil(
        i64::from(digits(&b[7..11])?),
        month_from_abbr(&b[3..6])?,
        digits(&b[0..2])?,
        digits(&b[12..14])?,
        digits(&b[15..17])?,
        digits(&b[18..20])?,
    )
}

/// `$time_iso8601`: `2026-11-23T14:26:24+01:00` (zone ignored). Also takes
/// a space instead of `T`, and no seconds (`2026-11-23 14:26`), and a bare
/// date, for `--since/--until`.
pub fn parse_iso_like(b: &[u8]) -> Option<LogTime> {
    let date_ok = b.len() >= 10 && (b[4] == b'-' || b[4] == b'/') && b[7] == b[4];
    if !date_ok {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if b.len() == 10 {
        return LogTime::from_civil(i64::from(y), mo, d, 0, 0, 0);
    }
    if b.len() < 16 || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' {
        return None;
    }
    let (h, mi) = (digits(&b[11..13])?, digits(&b[14..16])?);
    let s = if b.len() >= 19 && b[16] == b':' {
        digits(&b[17..19])?
    } else {
        0
    };
    LogTime::from_civil(i64::from(y), mo, d, h, mi, s)
}

/// `$msec`: seconds with a fraction since the epoch, UTC. Converted with the
/// given offset so it compares with local wall-clock times.
pub fn parse_msec(b: &[u8], utc_offset_secs: i64) -> Option<LogTime> {
    let int = match memchr::memchr(b'.', b) {
        Some(dot) => &b[..dot],
        None => b,
    };
    if int.is_empty() || int.len() > 12 {
        return None;
    }
    let mut n = 0i64;
    for &c in int {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(c - b'0');
    }
    Some(LogTime(n + utc_offset_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_log_and_access_log_times_agree() {
        let e = parse_error_log_time(b"2026/11/23 14:26:24 [error]").unwrap();
        let a = parse_time_local(b"23/Nov/2026:14:26:24 +0100").unwrap();
        let i = parse_iso_like(b"2026-11-23T14:26:24+01:00").unwrap();
        assert_eq!(e, a);
        assert_eq!(e, i);
        assert_eq!(e.display().to_string(), "2026-11-23 14:26:24");
        assert_eq!(LogTime::minute_label(e.minute()), "2026-11-23T14:26");
    }

    #[test]
    fn cached_error_log_times_stay_exact() {
        // The same text twice (the cache), then a new second, a new day,
        // garbage of the right length, then the first text again.
        let t = |s: &[u8]| parse_error_log_time(s);
        let first = t(b"2026/11/23 14:26:24 [error]");
        assert_eq!(first, LogTime::from_civil(2026, 11, 23, 14, 26, 24));
        assert_eq!(t(b"2026/11/23 14:26:24 [warn]"), first);
        assert_eq!(
            t(b"2026/11/23 14:26:25"),
            LogTime::from_civil(2026, 11, 23, 14, 26, 25)
        );
        assert_eq!(
            t(b"2026/11/24 00:00:00"),
            LogTime::from_civil(2026, 11, 24, 0, 0, 0)
        );
        assert_eq!(t(&[0u8; 19]), None);
        assert_eq!(t(b"2026/11/23 14:26:2x"), None);
        assert_eq!(t(b"2026/11/23 14:26:24"), first);
    }

    #[test]
    fn civil_round_trip_over_leap_years() {
        for (y, mo, d) in [(1970, 1, 1), (2000, 2, 29), (2024, 12, 31), (2100, 3, 1)] {
            let t = LogTime::from_civil(y, mo, d, 1, 2, 3).unwrap();
            assert_eq!(t.civil(), (y, mo, d, 1, 2, 3));
        }
        assert!(LogTime::from_civil(2023, 2, 29, 0, 0, 0).is_none());
    }

    #[test]
    fn rejects_malformed() {
        assert!(parse_error_log_time(b"2026/13/23 14:26:24").is_none());
        assert!(parse_error_log_time(b"2026/11/23 14:26").is_none());
        assert!(parse_time_local(b"23/Foo/2026:14:26:24 +0100").is_none());
        assert_eq!(
            parse_iso_like(b"2026-11-23 14:26"),
            LogTime::from_civil(2026, 11, 23, 14, 26, 0)
        );
        assert_eq!(
            parse_msec(b"1700000000.123", 0),
            Some(LogTime(1_700_000_000))
        );
        assert!(parse_msec(b"abc", 0).is_none());
    }
}
