//! nginx time values: `500ms`, `5s`, `1m30s`, `1h`, a plain number = seconds.
//!
//! Mirrors `ngx_parse_time` (src/core/ngx_parse.c) as nginx calls it for
//! millisecond directives (`ngx_conf_set_msec_slot`): units `y` (365 days),
//! `M` (30 days), `w`, `d`, `h`, `m`, `s`, `ms`; components must go from larger
//! to smaller units; a number with no unit counts as seconds.

/// Parses an nginx time value into milliseconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let err =
        |why: &str| format!("invalid duration {s:?}: {why} (nginx syntax: 500ms, 5s, 1m30s, 1h)");
    let text = s.trim();
    if text.is_empty() {
        return Err(err("empty"));
    }
    // Units in the order nginx requires them, with their size in ms.
    const UNITS: [(&str, u64); 8] = [
        ("y", 365 * 24 * 3600 * 1000),
        ("M", 30 * 24 * 3600 * 1000),
        ("w", 7 * 24 * 3600 * 1000),
        ("d", 24 * 3600 * 1000),
        ("h", 3600 * 1000),
        ("ms", 1),
        ("m", 60 * 1000),
        ("s", 1000),
    ];
    // Rank of each unit from largest to smallest (ms is the smallest even
    // though it is tried before `m` when matching text).
    let rank = |unit: &str| match unit {
        "y" => 0,
        "M" => 1,
        "w" => 2,
        "d" => 3,
        "h" => 4,
        "m" => 5,
        "s" => 6,
        _ => 7, // ms
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_rank: Option<u32> = None;
    let mut any = false;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let digits_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if digits_start == i {
            return Err(err("expected a number"));
        }
        let value: u64 = text[digits_start..i]
            .parse()
            .map_err(|_| err("number too large"))?;
        let rest = &text[i..];
        let unit = UNITS.iter().find(|(u, _)| rest.starts_with(u));
        let (scale, this_rank) = match unit {
            Some((u, scale)) => {
                i += u.len();
                (*scale, rank(u))
            }
            // A bare number: seconds, and it must be the last component.
            None => {
                if !rest.trim().is_empty() && !rest.starts_with(' ') {
                    return Err(err("unknown unit"));
                }
                (1000, 6)
            }
        };
        if let Some(prev) = last_rank {
            if this_rank <= prev {
                return Err(err("units must go from larger to smaller"));
            }
        }
        last_rank = Some(this_rank);
        total = value
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| err("value too large"))?;
        any = true;
    }
    if !any {
        return Err(err("expected a number"));
    }
    Ok(total)
}

/// Formats milliseconds in the shortest nginx spelling (`4s`, `59s`, `1m`,
/// `1500ms`), for text that goes into a config.
pub fn format_duration(ms: u64) -> String {
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    if secs != 0 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs != 0 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

/// Milliseconds for people: `60s`, `90s`, `1800ms` (no minutes, so values
/// compare at a glance in messages).
pub fn describe_duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nginx_time_values() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("5s"), Ok(5000));
        assert_eq!(parse_duration("75"), Ok(75_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000));
        assert_eq!(parse_duration("1h 30m"), Ok(5_400_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("1s500ms"), Ok(1500));
        assert_eq!(parse_duration("0"), Ok(0));
    }

    #[test]
    fn rejects_what_nginx_rejects() {
        for bad in ["", "s", "5x", "30s1m", "1m1m", "-5s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn formats_shortest_spelling() {
        assert_eq!(format_duration(4000), "4s");
        assert_eq!(format_duration(59_000), "59s");
        assert_eq!(format_duration(60_000), "1m");
        assert_eq!(format_duration(1500), "1500ms");
        assert_eq!(format_duration(3_600_000), "1h");
        assert_eq!(format_duration(0), "0s");
        assert_eq!(describe_duration(60_000), "60s");
        assert_eq!(describe_duration(1800), "1800ms");
    }
}
