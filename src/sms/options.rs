//! The options of one message beyond `to` and `text`: sender ID (`from`),
//! when it leaves (`at`), how long it stays valid (`valid_for`), a forced
//! route (`via`), as scripts, the CLI and the API give them.

use std::time::Duration;

/// Per-message options; all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendOptions {
    pub from: Option<String>,
    /// Unix milliseconds.
    pub at_ms: Option<i64>,
    pub valid_for: Option<Duration>,
    pub via: Option<String>,
}

/// A bad option, named as the caller wrote it (`at`, `valid_for`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {why}")]
pub struct OptionError {
    pub name: &'static str,
    pub why: String,
}

impl OptionError {
    pub fn new(name: &'static str, why: impl Into<String>) -> OptionError {
        OptionError {
            name,
            why: why.into(),
        }
    }
}

/// The longest validity period rivr asks for (SMSCs cap it far lower).
pub const MAX_VALIDITY: Duration = Duration::from_secs(99 * 86_400);

/// An RFC 3339 instant (`2026-12-05T09:00:00+01:00`) in unix milliseconds.
pub fn parse_at(s: &str) -> Result<i64, OptionError> {
    let t = chrono::DateTime::parse_from_rfc3339(s.trim()).map_err(|e| {
        OptionError::new(
            "at",
            format!("{s:?} is not an RFC 3339 time like 2026-12-05T09:00:00+01:00 ({e})"),
        )
    })?;
    let ms = t.timestamp_millis();
    // The SMPP time field holds years 2000-2099.
    if !(946_684_800_000..4_102_444_800_000).contains(&ms) {
        return Err(OptionError::new("at", format!("{s:?} is not in 2000-2099")));
    }
    Ok(ms)
}

/// A duration like `90s`, `10m`, `2h`, `1d`, `1h30m` or a number of
/// seconds; at most 99 days.
pub fn parse_duration(name: &'static str, s: &str) -> Result<Duration, OptionError> {
    let bad = || {
        OptionError::new(
            name,
            format!("{s:?} is not a duration like 90s, 10m, 2h, 1d or 1h30m"),
        )
    };
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = s.parse::<u64>() {
        return check_validity(name, Duration::from_secs(n));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    check_validity(name, Duration::from_secs(total))
}

fn check_validity(name: &'static str, d: Duration) -> Result<Duration, OptionError> {
    if d.is_zero() || d > MAX_VALIDITY {
        return Err(OptionError::new(
            name,
            format!("{} s: a validity is 1 s to 99 days", d.as_secs()),
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse_or_name_the_option() {
        assert_eq!(parse_at("2026-12-05T09:00:00Z").unwrap(), 1_796_461_200_000);
        assert_eq!(
            parse_at("2026-12-05T10:00:00+01:00").unwrap(),
            1_796_461_200_000
        );
        let e = parse_at("tomorrow").unwrap_err();
        assert_eq!(e.name, "at");
        assert!(e.to_string().starts_with("at: \"tomorrow\""), "{e}");
        assert!(parse_at("2150-01-01T00:00:00Z").is_err());
        let d = |s| parse_duration("valid_for", s);
        assert_eq!(d("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(d("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(d("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(d("600").unwrap(), Duration::from_secs(600));
        for bad in ["", "h", "5x", "10m5", "0s", "100d", "99999999999999999999d"] {
            let e = d(bad).unwrap_err();
            assert_eq!(e.name, "valid_for", "{bad:?}");
        }
    }
}
