//! A moment of a watch log, as `replay --until T` and `explain --log LOG --at T` take
//! it: an RFC 3339 time (`2026-12-07T10:00:00Z`, `2026-12-07T11:00:00+01:00`) or Unix
//! milliseconds (a log line's `ts`). The state "at T" is the state after every event
//! of the log before its first event later than `T`.

/// Parses `s` as a log time: Unix milliseconds, or an RFC 3339 time.
pub fn parse(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            format!(
                "{s:?} is not a time: give an RFC 3339 time (2026-12-07T10:00:00Z) or Unix milliseconds ({e})"
            )
        })
}

/// `ts` (Unix milliseconds) as RFC 3339, for messages (the number itself when out of
/// range).
pub fn display(ts: i64) -> String {
    jiff::Timestamp::from_millisecond(ts).map_or_else(|_| ts.to_string(), |t| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_unix_milliseconds() {
        assert_eq!(parse("1765101600000"), Ok(1_765_101_600_000));
        assert_eq!(parse("2025-12-07T10:00:00Z"), Ok(1_765_101_600_000));
        assert_eq!(parse("2025-12-07T11:00:00+01:00"), Ok(1_765_101_600_000));
        assert_eq!(parse("2025-12-07T10:00:00.250Z"), Ok(1_765_101_600_250));
        assert_eq!(parse("-5"), Ok(-5));
        let e = parse("yesterday").unwrap_err();
        assert!(e.contains("\"yesterday\" is not a time"), "{e}");
        assert!(parse("2025-12-07").is_err(), "a date alone is not a moment");
        assert_eq!(display(1_765_101_600_250), "2025-12-07T10:00:00.25Z");
        assert_eq!(display(i64::MAX), i64::MAX.to_string());
    }
}
