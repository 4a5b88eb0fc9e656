//! Go durations as Flux's API writes them (`1m`, `10m30s`, `1.5h`, `500ms`).

use std::time::Duration;

/// The pattern the CRDs validate durations with (as Flux's).
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// A duration that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration \"{value}\": expected a Go duration such as 30s, 5m or 1h30m")]
pub struct DurationError {
    /// The value as written.
    pub value: String,
}

/// Parses a duration of the CRDs' pattern: one or more `<number>[.<fraction>]<unit>`, units `ms s m h`.
pub fn parse(value: &str) -> Result<Duration, DurationError> {
    let err = || DurationError {
        value: value.to_string(),
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        let number = &value[start..i];
        if number.is_empty()
            || number.starts_with('.')
            || number.ends_with('.')
            || number.matches('.').count() > 1
        {
            return Err(err());
        }
        let n: f64 = number.parse().map_err(|_| err())?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let seconds = match &value[unit_start..i] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err()),
        };
        total += n * seconds;
    }
    if !total.is_finite() || total > 1e12 {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(total))
}

/// Formats a duration as Go does for whole seconds (`1h0m0s`, `5m0s`, `30s`; below a second `500ms`).
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("10m30s").unwrap(), Duration::from_secs(630));
        for bad in [
            "", "1", "m", "1d", "-1m", "1.m", ".5m", "1..5m", "1m 2s", "1M",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn the_pattern_agrees_with_the_parser() {
        let re = regex::Regex::new(PATTERN).unwrap();
        for v in [
            "1m", "1h30m", "1.5h", "500ms", "", "1", "1d", ".5m", "1m 2s",
        ] {
            assert_eq!(re.is_match(v), parse(v).is_ok(), "{v:?}");
        }
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(format(Duration::from_secs(300)), "5m0s");
        assert_eq!(format(Duration::from_secs(30)), "30s");
        assert_eq!(format(Duration::from_millis(500)), "500ms");
    }
}
