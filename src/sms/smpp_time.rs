//! SMPP 3.4 §7.1 time fields (`schedule_delivery_time`,
//! `validity_period`): the absolute form `YYMMDDhhmmsstnnp` (local time,
//! tenths, `nn` quarter hours from UTC, `p` `+`/`-`) and the relative form
//! `YYMMDDhhmmss000R` (years, months, days, … from the SMSC's now).
//!
//! rivr writes absolute times in UTC (`nn` = 00, `p` = `+`) and relative
//! ones with days up to 99 before it uses months and years; reading, it
//! accepts any offset, and counts a relative month as 30 days and a year as
//! 365 (the SMSC's own calendar may differ by a day).

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};

/// A parsed SMPP time field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmppTime {
    /// Unix milliseconds (UTC), tenths of a second kept.
    Absolute(i64),
    Relative(Duration),
}

/// Why a time field cannot be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("SMPP time {0:?}: not 16 characters YYMMDDhhmmsstnnp")]
    Shape(String),
    #[error("SMPP time {0:?}: {1} out of range")]
    Range(String, &'static str),
    #[error("{0} cannot be written as an SMPP time (years 2000-2099, relative up to 99 years)")]
    Unrepresentable(String),
}

const DAY: u64 = 86_400;

/// `YYMMDDhhmmsst00+` for a UTC instant in unix milliseconds.
pub fn absolute(unix_ms: i64) -> Result<String, TimeError> {
    let t = DateTime::<Utc>::from_timestamp_millis(unix_ms)
        .filter(|t| (2000..=2099).contains(&t.year()))
        .ok_or_else(|| TimeError::Unrepresentable(format!("unix ms {unix_ms}")))?;
    let tenths = t.timestamp_subsec_millis() / 100;
    Ok(format!(
        "{:02}{:02}{:02}{:02}{:02}{:02}{}00+",
        t.year() - 2000,
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        tenths
    ))
}

/// `YYMMDDhhmmss000R` for a duration (whole seconds; tenths are ignored by
/// the spec in this form).
pub fn relative(d: Duration) -> Result<String, TimeError> {
    let secs = d.as_secs();
    let days = secs / DAY;
    let (years, months, days) = if days <= 99 {
        (0, 0, days)
    } else {
        (days / 365, (days % 365) / 30, (days % 365) % 30)
    };
    if years > 99 {
        return Err(TimeError::Unrepresentable(format!("{secs} s")));
    }
    let rest = secs % DAY;
    Ok(format!(
        "{years:02}{months:02}{days:02}{:02}{:02}{:02}000R",
        rest / 3600,
        (rest / 60) % 60,
        rest % 60
    ))
}

/// Reads a §7.1 time field. An empty field is `None` (immediate delivery,
/// the SMSC's default validity).
pub fn parse(s: &str) -> Result<Option<SmppTime>, TimeError> {
    if s.is_empty() {
        return Ok(None);
    }
    let b = s.as_bytes();
    if b.len() != 16
        || !b
            .get(..15)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    {
        return Err(TimeError::Shape(s.to_string()));
    }
    // Every byte before 15 is an ASCII digit (checked above).
    let num = |i: usize, n: usize| -> u32 {
        b.get(i..i + n)
            .unwrap_or(&[])
            .iter()
            .fold(0, |a, d| a * 10 + u32::from(d - b'0'))
    };
    let (yy, mo, dd, hh, mi, ss, t, nn) = (
        num(0, 2),
        num(2, 2),
        num(4, 2),
        num(6, 2),
        num(8, 2),
        num(10, 2),
        num(12, 1),
        num(13, 2),
    );
    let range = |what| TimeError::Range(s.to_string(), what);
    if hh > 23 {
        return Err(range("hour"));
    }
    if mi > 59 {
        return Err(range("minute"));
    }
    if ss > 59 {
        return Err(range("second"));
    }
    match b.get(15) {
        Some(b'R') => {
            let days = u64::from(yy) * 365 + u64::from(mo) * 30 + u64::from(dd);
            let secs = days * DAY + u64::from(hh) * 3600 + u64::from(mi) * 60 + u64::from(ss);
            Ok(Some(SmppTime::Relative(Duration::from_secs(secs))))
        }
        Some(p @ (b'+' | b'-')) => {
            if nn > 48 {
                return Err(range("quarter-hour offset"));
            }
            let date =
                NaiveDate::from_ymd_opt(2000 + yy as i32, mo, dd).ok_or_else(|| range("date"))?;
            let local = date
                .and_hms_milli_opt(hh, mi, ss, t * 100)
                .ok_or_else(|| range("time"))?;
            let offset_ms = i64::from(nn) * 15 * 60 * 1000;
            let local_ms = Utc.from_utc_datetime(&local).timestamp_millis();
            // Local time ahead of UTC (+) means UTC is local minus the offset.
            let utc = if *p == b'+' {
                local_ms - offset_ms
            } else {
                local_ms + offset_ms
            };
            Ok(Some(SmppTime::Absolute(utc)))
        }
        _ => Err(TimeError::Shape(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, milli: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .unwrap()
            .timestamp_millis()
            + i64::from(milli)
    }

    #[test]
    fn relative_examples_of_the_spec() {
        // §7.1.1.2: "020610233429000R" is 2 years, 6 months, 10 days,
        // 23 hours, 34 minutes and 29 seconds from the SMSC's now.
        let d = (2 * 365 + 6 * 30 + 10) * DAY + 23 * 3600 + 34 * 60 + 29;
        assert_eq!(
            parse("020610233429000R").unwrap(),
            Some(SmppTime::Relative(Duration::from_secs(d)))
        );
        assert_eq!(
            relative(Duration::from_secs(d)).unwrap(),
            "020610233429000R"
        );
        // 7 days, the value SMSC manuals quote for a week's validity
        assert_eq!(
            relative(Duration::from_secs(7 * DAY)).unwrap(),
            "000007000000000R"
        );
        assert_eq!(
            relative(Duration::from_secs(90 * 60)).unwrap(),
            "000000013000000R"
        );
        assert_eq!(
            relative(Duration::from_secs(99 * DAY)).unwrap(),
            "000099000000000R"
        );
        assert_eq!(
            relative(Duration::from_secs(100 * DAY)).unwrap(),
            "000310000000000R"
        );
        assert!(relative(Duration::from_secs(100 * 365 * DAY)).is_err());
    }

    #[test]
    fn absolute_examples() {
        // 10 April 2012, 10:11:12.3 UTC
        let t = ms(2012, 4, 10, 10, 11, 12, 300);
        assert_eq!(absolute(t).unwrap(), "120410101112300+");
        assert_eq!(
            parse("120410101112300+").unwrap(),
            Some(SmppTime::Absolute(t))
        );
        // the same instant written as local time 2 hours (8 quarters) ahead
        // of UTC, and 5 hours behind
        assert_eq!(
            parse("120410121112308+").unwrap(),
            Some(SmppTime::Absolute(t))
        );
        assert_eq!(
            parse("120410051112320-").unwrap(),
            Some(SmppTime::Absolute(t))
        );
        assert_eq!(parse("").unwrap(), None);
        assert!(absolute(ms(1999, 12, 31, 0, 0, 0, 0)).is_err());
    }

    #[test]
    fn bad_fields_are_refused_not_panicking() {
        for bad in [
            "12041010111230+",
            "120410101112300*",
            "1204101011123000+",
            "12041010111230a+",
            "121310101112300+",
            "120431101112300+",
            "120410241112300+",
            "120410106012300+",
            "120410101160300+",
            "120410101112349+",
            "é20410101112300+",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn absolute_round_trips(t in ms(2000, 1, 1, 0, 0, 0, 0)..ms(2099, 12, 31, 23, 59, 59, 999)) {
            let s = absolute(t).unwrap();
            prop_assert_eq!(s.len(), 16);
            prop_assert_eq!(parse(&s).unwrap(), Some(SmppTime::Absolute(t - t.rem_euclid(100))));
        }

        #[test]
        fn relative_round_trips(secs in 0u64..(99 * 365 * DAY)) {
            let s = relative(Duration::from_secs(secs)).unwrap();
            prop_assert_eq!(s.len(), 16);
            prop_assert!(s.ends_with("000R"));
            prop_assert_eq!(parse(&s).unwrap(), Some(SmppTime::Relative(Duration::from_secs(secs))));
        }

        #[test]
        fn any_text_parses_or_errs(s in "\\PC{0,20}") {
            let _ = parse(&s);
        }
    }
}
