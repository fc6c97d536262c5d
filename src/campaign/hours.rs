//! Calling hours: when a contact may be called, in the contact's own time
//! zone (an IANA name, DST included). It owns the window's parsing and the
//! one question the dialer asks: at this instant, is the window open for
//! this zone, and until when, or when does it next open? It does not know
//! contacts, retries or the clock: `now` is passed in.
//!
//! The rule is "never an attempt outside the window". Local times that do
//! not exist or happen twice (DST gaps and folds) are resolved so that the
//! window may shrink but never grows:
//!
//! - a start inside a gap opens at the first instant after the gap, an end
//!   inside a gap closes at the instant the clocks jump (the same instant:
//!   a gap is one point in real time);
//! - a start inside a fold takes the later of its two instants (never
//!   opens early), an end inside a fold the earlier (never closes late).
//!
//! A window does not cross midnight: `20:00-02:00` is refused at parse.
//! `24:00` is allowed as an end ("until midnight").

use chrono::{
    DateTime, Datelike, Days as ChronoDays, LocalResult, NaiveDate, NaiveDateTime, NaiveTime,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// A set of days of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Days(u8);

impl Days {
    pub const ALL: Days = Days(0b111_1111);
    pub const NONE: Days = Days(0);

    fn bit(d: Weekday) -> u8 {
        1 << d.num_days_from_monday()
    }

    pub fn contains(self, d: Weekday) -> bool {
        self.0 & Days::bit(d) != 0
    }

    pub fn with(self, d: Weekday) -> Days {
        Days(self.0 | Days::bit(d))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `"all"`, or a comma list of days and ranges: `mon-sat`,
    /// `mon,wed,fri`, `mon-fri,sun`. Names are English, three letters or
    /// whole (`monday`), any case. A range may wrap (`fri-mon` is Friday
    /// to Monday).
    pub fn parse(s: &str) -> Result<Days, HoursError> {
        let input = s.trim();
        if input.eq_ignore_ascii_case("all") {
            return Ok(Days::ALL);
        }
        let mut days = Days::NONE;
        for part in input.split(',') {
            let part = part.trim();
            let bad = || HoursError::Day {
                input: s.to_owned(),
                day: part.to_owned(),
            };
            match part.split_once('-') {
                Some((a, b)) => {
                    let (mut d, last) = (weekday(a).ok_or_else(bad)?, weekday(b).ok_or_else(bad)?);
                    days = days.with(d);
                    while d != last {
                        d = d.succ();
                        days = days.with(d);
                    }
                }
                None => days = days.with(weekday(part).ok_or_else(bad)?),
            }
        }
        Ok(days)
    }
}

fn weekday(s: &str) -> Option<Weekday> {
    const NAMES: [(&str, &str, Weekday); 7] = [
        ("mon", "monday", Weekday::Mon),
        ("tue", "tuesday", Weekday::Tue),
        ("wed", "wednesday", Weekday::Wed),
        ("thu", "thursday", Weekday::Thu),
        ("fri", "friday", Weekday::Fri),
        ("sat", "saturday", Weekday::Sat),
        ("sun", "sunday", Weekday::Sun),
    ];
    let s = s.trim();
    NAMES
        .iter()
        .find(|(short, long, _)| s.eq_ignore_ascii_case(short) || s.eq_ignore_ascii_case(long))
        .map(|(_, _, d)| *d)
}

/// What was wrong with `--hours`, `--days` or a zone name. The input is
/// quoted with escapes (it may come from a file); the caller names the
/// option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("{0:?}: expected HH:MM-HH:MM, e.g. 09:00-20:00")]
    Format(String),
    #[error(
        "{input:?}: {time:?} is not a time of day (HH:MM from 00:00 to 23:59, or 24:00 as the end)"
    )]
    Time { input: String, time: String },
    #[error(
        "{0:?}: the window must start before it ends; windows across midnight are not supported"
    )]
    Order(String),
    #[error("{input:?}: {day:?} is not a day (mon … sun, a range such as mon-fri, or all)")]
    Day { input: String, day: String },
    #[error("no days to call on")]
    NoDays,
    #[error("unknown time zone {name:?}{hint}: expected an IANA name such as Europe/Berlin or America/New_York")]
    Zone { name: String, hint: String },
}

/// An IANA zone by name (`Europe/Berlin`, `UTC`). A wrong case is refused
/// with the right spelling as a hint (the name is data in contact lists,
/// and the store keeps it as written).
pub fn parse_tz(name: &str) -> Result<Tz, HoursError> {
    let trimmed = name.trim();
    if let Ok(tz) = trimmed.parse::<Tz>() {
        return Ok(tz);
    }
    let hint = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(trimmed))
        .map_or_else(String::new, |tz| format!(" (did you mean {}?)", tz.name()));
    Err(HoursError::Zone {
        name: name.to_owned(),
        hint,
    })
}

/// The hours and days a campaign may call, in each contact's local time:
/// `[start, end)` on the allowed days. The default is 09:00–20:00, Monday
/// to Sunday (many rules are stricter: set them per campaign).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallingHours {
    start: NaiveTime,
    /// `None`: 24:00, the end of the day.
    end: Option<NaiveTime>,
    days: Days,
}

impl Default for CallingHours {
    fn default() -> Self {
        CallingHours {
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap_or(NaiveTime::MIN),
            end: NaiveTime::from_hms_opt(20, 0, 0),
            days: Days::ALL,
        }
    }
}

/// The window as seen from one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Window {
    /// Inside the window; it closes at `until` (exclusive).
    Open { until: DateTime<Utc> },
    /// Outside; the next window opens at `opens`.
    Closed { opens: DateTime<Utc> },
    /// No window in the next two weeks (no days at all).
    Never,
}

/// Which edge a local time is: decides gaps and folds.
#[derive(Clone, Copy)]
enum Edge {
    Start,
    End,
}

impl CallingHours {
    /// `hours` as `HH:MM-HH:MM` (start before end; `24:00` allowed as the
    /// end), `days` as in [`Days::parse`].
    pub fn parse(hours: &str, days: &str) -> Result<CallingHours, HoursError> {
        let (a, b) = hours
            .split_once('-')
            .ok_or_else(|| HoursError::Format(hours.to_owned()))?;
        let time = |t: &str| {
            parse_hhmm(t.trim()).ok_or_else(|| HoursError::Time {
                input: hours.to_owned(),
                time: t.trim().to_owned(),
            })
        };
        let start = time(a)?.ok_or_else(|| HoursError::Time {
            input: hours.to_owned(),
            time: a.trim().to_owned(),
        })?;
        let end = time(b)?;
        CallingHours::new(start, end, Days::parse(days)?).map_err(|e| match e {
            HoursError::Order(_) => HoursError::Order(hours.to_owned()),
            e => e,
        })
    }

    /// `end` `None` is 24:00. Refuses an empty window or no days.
    pub fn new(
        start: NaiveTime,
        end: Option<NaiveTime>,
        days: Days,
    ) -> Result<CallingHours, HoursError> {
        if end.is_some_and(|e| e <= start) {
            return Err(HoursError::Order(format!(
                "{}-{}",
                start.format("%H:%M"),
                end.map_or("24:00".into(), |e| e.format("%H:%M").to_string())
            )));
        }
        if days.is_empty() {
            return Err(HoursError::NoDays);
        }
        Ok(CallingHours { start, end, days })
    }

    pub fn start(&self) -> NaiveTime {
        self.start
    }

    /// `None` is 24:00.
    pub fn end(&self) -> Option<NaiveTime> {
        self.end
    }

    pub fn days(&self) -> Days {
        self.days
    }

    /// True when a local wall-clock time is inside the window.
    pub fn contains_local(&self, local: NaiveDateTime) -> bool {
        let t = local.time();
        self.days.contains(local.weekday()) && t >= self.start && self.end.is_none_or(|e| t < e)
    }

    /// The window for a contact in `tz` at `now`: open until when, or
    /// closed until when. Gaps and folds as in the module doc; a day whose
    /// window falls wholly in a gap (or shrinks to nothing in a fold) has
    /// none, and the next day's is given.
    pub fn window_at(&self, tz: Tz, now: DateTime<Utc>) -> Window {
        let today = now.with_timezone(&tz).date_naive();
        let Some(mut day) = today.checked_sub_days(ChronoDays::new(1)) else {
            return Window::Never;
        };
        for _ in 0..16 {
            if let Some((open, close)) = self.interval(tz, day) {
                if close > now {
                    return if open <= now {
                        Window::Open { until: close }
                    } else {
                        Window::Closed { opens: open }
                    };
                }
            }
            match day.succ_opt() {
                Some(d) => day = d,
                None => break,
            }
        }
        Window::Never
    }

    /// The day's window as instants, if the day has one.
    fn interval(&self, tz: Tz, day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        if !self.days.contains(day.weekday()) {
            return None;
        }
        let open = resolve(tz, day.and_time(self.start), Edge::Start)?;
        let close = match self.end {
            Some(e) => resolve(tz, day.and_time(e), Edge::End)?,
            None => resolve(tz, day.succ_opt()?.and_time(NaiveTime::MIN), Edge::End)?,
        };
        (open < close).then_some((open, close))
    }
}

/// `HH:MM` (hour of one or two digits): `Some(Some(t))`, or `Some(None)`
/// for 24:00; `None` if it is not a time.
fn parse_hhmm(s: &str) -> Option<Option<NaiveTime>> {
    let (h, m) = s.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let num = |x: &str| {
        x.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| x.parse::<u32>().ok())
            .flatten()
    };
    let (h, m) = (num(h)?, num(m)?);
    if (h, m) == (24, 0) {
        return Some(None);
    }
    NaiveTime::from_hms_opt(h, m, 0).map(Some)
}

/// A local time as an instant, by the module's gap and fold rules.
fn resolve(tz: Tz, local: NaiveDateTime, edge: Edge) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => {
            let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
            Some(match edge {
                Edge::Start => a.max(b),
                Edge::End => a.min(b),
            })
        }
        LocalResult::None => first_at_or_after(tz, local),
    }
}

/// The first whole second whose local time is at or after `local` (which
/// is in a gap: that is the instant the clocks jump). Every zone's offset
/// is within ±16 h, so the answer is within 16 h of `local` read as UTC.
fn first_at_or_after(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    const SPAN: i64 = 16 * 3600;
    let reached = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|t| t.with_timezone(&tz).naive_local() >= local)
            .unwrap_or(true)
    };
    let mid = local.and_utc().timestamp();
    let (mut lo, mut hi) = (mid - SPAN, mid + SPAN);
    // Invariant: !reached(lo), reached(hi).
    while hi - lo > 1 {
        let m = lo + (hi - lo) / 2;
        if reached(m) {
            hi = m;
        } else {
            lo = m;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

#[cfg(test)]
#[path = "hours_tests.rs"]
mod tests;
