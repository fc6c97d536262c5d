//! Tests of calling hours. The expected instants around DST were checked
//! against Python's `zoneinfo` (an independent reading of the tz data),
//! not derived from chrono-tz.

use super::*;
use chrono::Duration as TimeDelta;
use rand::{Rng, SeedableRng};

fn utc(s: &str) -> DateTime<Utc> {
    match NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M") {
        Ok(t) => t.and_utc(),
        Err(e) => panic!("bad test time {s:?}: {e}"),
    }
}

fn hours(h: &str, d: &str) -> CallingHours {
    match CallingHours::parse(h, d) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn tz(name: &str) -> Tz {
    match parse_tz(name) {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn open(until: &str) -> Window {
    Window::Open { until: utc(until) }
}

fn closed(opens: &str) -> Window {
    Window::Closed { opens: utc(opens) }
}

#[test]
fn parses_hours_and_days() {
    let c = hours("09:00-20:00", "mon-sat");
    assert_eq!(c.start(), NaiveTime::from_hms_opt(9, 0, 0).unwrap());
    assert_eq!(c.end(), NaiveTime::from_hms_opt(20, 0, 0));
    assert!(c.days().contains(Weekday::Sat) && !c.days().contains(Weekday::Sun));
    assert_eq!(hours(" 9:30 - 24:00 ", "all").end(), None);
    let d = Days::parse("mon,wed,fri").unwrap();
    let set: Vec<_> = [Weekday::Mon, Weekday::Wed, Weekday::Fri].into();
    for w in [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ] {
        assert_eq!(d.contains(w), set.contains(&w), "{w}");
    }
    assert_eq!(
        Days::parse("mon-fri,sun").unwrap(),
        Days::parse("Monday,tue,WED,thu,fri,sunday").unwrap()
    );
    // A range may wrap the week.
    assert_eq!(
        Days::parse("fri-mon").unwrap(),
        Days::parse("fri,sat,sun,mon").unwrap()
    );
    assert_eq!(Days::parse("all").unwrap(), Days::parse("mon-sun").unwrap());
    assert_eq!(CallingHours::default(), hours("09:00-20:00", "all"));
}

#[test]
fn bad_hours_days_and_zones_say_what_was_wrong() {
    let err = |h: &str, d: &str| CallingHours::parse(h, d).unwrap_err().to_string();
    assert_eq!(
        err("20:00-02:00", "all"),
        "\"20:00-02:00\": the window must start before it ends; \
         windows across midnight are not supported"
    );
    assert!(err("09:00-09:00", "all").contains("must start before it ends"));
    assert_eq!(
        err("0900", "all"),
        "\"0900\": expected HH:MM-HH:MM, e.g. 09:00-20:00"
    );
    assert_eq!(
        err("9-17", "all"),
        "\"9-17\": \"9\" is not a time of day (HH:MM from 00:00 to 23:59, or 24:00 as the end)"
    );
    assert!(err("09:00-25:00", "all").contains("\"25:00\" is not a time of day"));
    assert!(err("09:60-10:00", "all").contains("\"09:60\" is not a time of day"));
    assert!(err("09:0-10:00", "all").contains("\"09:0\" is not a time"));
    assert!(err("24:00-24:00", "all").contains("\"24:00\" is not a time"));
    assert!(err("+9:00-10:00", "all").contains("is not a time"));
    assert!(err("\u{0}:00-10:00", "all").contains("\"\\0:00\""));
    assert_eq!(
        err("09:00-17:00", "mon-fri,funday"),
        "\"mon-fri,funday\": \"funday\" is not a day (mon … sun, a range such as mon-fri, or all)"
    );
    assert!(err("09:00-17:00", "").contains("\"\" is not a day"));
    assert!(err("09:00-17:00", "mon-").contains("\"mon-\" is not a day"));
    assert_eq!(
        CallingHours::new(NaiveTime::MIN, None, Days::NONE),
        Err(HoursError::NoDays)
    );
    assert_eq!(
        parse_tz("europe/berlin").unwrap_err().to_string(),
        "unknown time zone \"europe/berlin\" (did you mean Europe/Berlin?): \
         expected an IANA name such as Europe/Berlin or America/New_York"
    );
    assert!(parse_tz("Mars/Olympus").is_err());
    assert!(parse_tz("").is_err());
    assert_eq!(parse_tz(" Asia/Kolkata "), Ok(Tz::Asia__Kolkata));
}

#[test]
fn plain_days_in_zones_without_dst() {
    // Kolkata is +05:30 all year: 09:00-20:00 is 03:30-14:30 UTC.
    let c = hours("09:00-20:00", "all");
    let k = tz("Asia/Kolkata");
    assert_eq!(
        c.window_at(k, utc("2026-06-10 03:29")),
        closed("2026-06-10 03:30")
    );
    assert_eq!(
        c.window_at(k, utc("2026-06-10 03:30")),
        open("2026-06-10 14:30")
    );
    assert_eq!(
        c.window_at(k, utc("2026-06-10 14:30")),
        closed("2026-06-11 03:30")
    );
    // Chatham in June is +12:45: Wednesday's window began Tuesday in UTC.
    let ch = tz("Pacific/Chatham");
    assert_eq!(
        c.window_at(ch, utc("2026-06-09 20:14")),
        closed("2026-06-09 20:15")
    );
    assert_eq!(
        c.window_at(ch, utc("2026-06-10 00:00")),
        open("2026-06-10 07:15")
    );
    // Sao Paulo (-03:00), weekdays: Friday evening waits for Monday.
    let weekdays = hours("09:00-20:00", "mon-fri");
    let sp = tz("America/Sao_Paulo");
    assert_eq!(
        weekdays.window_at(sp, utc("2026-06-12 22:59")),
        open("2026-06-12 23:00")
    );
    assert_eq!(
        weekdays.window_at(sp, utc("2026-06-12 23:00")),
        closed("2026-06-15 12:00")
    );
    // Nairobi (+03:00), Sundays only, asked on a Monday: six days on.
    let sundays = hours("10:00-12:00", "sun");
    let n = tz("Africa/Nairobi");
    assert_eq!(
        sundays.window_at(n, utc("2026-06-08 08:00")),
        closed("2026-06-14 07:00")
    );
}

#[test]
fn new_york_gap_and_fold() {
    let ny = tz("America/New_York");
    let c = hours("01:30-02:30", "all");
    // 8 March: 02:00 EST jumps to 03:00 EDT at 07:00 UTC. The end (02:30)
    // is in the gap: the window closes when the clocks jump.
    assert_eq!(
        c.window_at(ny, utc("2026-03-08 06:00")),
        closed("2026-03-08 06:30")
    );
    assert_eq!(
        c.window_at(ny, utc("2026-03-08 06:30")),
        open("2026-03-08 07:00")
    );
    // 1 November: 01:00-02:00 happens twice (05:00-06:00 EDT, then
    // 06:00-07:00 EST). The start takes the later 01:30.
    assert_eq!(
        c.window_at(ny, utc("2026-11-01 05:00")),
        closed("2026-11-01 06:30")
    );
    assert_eq!(
        c.window_at(ny, utc("2026-11-01 05:30")),
        closed("2026-11-01 06:30")
    );
    assert_eq!(
        c.window_at(ny, utc("2026-11-01 06:30")),
        open("2026-11-01 07:30")
    );
    // A start in the gap opens at the first instant after it.
    let late = hours("02:30-05:00", "sun");
    assert_eq!(
        late.window_at(ny, utc("2026-03-08 00:00")),
        closed("2026-03-08 07:00")
    );
    assert_eq!(
        late.window_at(ny, utc("2026-03-08 07:00")),
        open("2026-03-08 09:00")
    );
}

#[test]
fn berlin_gap_and_fold_at_both_edges() {
    let b = tz("Europe/Berlin");
    // 29 March: 02:00 CET jumps to 03:00 CEST at 01:00 UTC.
    let across = hours("01:30-03:30", "all");
    assert_eq!(
        across.window_at(b, utc("2026-03-29 00:00")),
        closed("2026-03-29 00:30")
    );
    assert_eq!(
        across.window_at(b, utc("2026-03-29 00:30")),
        open("2026-03-29 01:30")
    );
    let start_in_gap = hours("02:30-05:00", "all");
    assert_eq!(
        start_in_gap.window_at(b, utc("2026-03-29 00:59")),
        closed("2026-03-29 01:00")
    );
    assert_eq!(
        start_in_gap.window_at(b, utc("2026-03-29 01:00")),
        open("2026-03-29 03:00")
    );
    let end_in_gap = hours("00:30-02:30", "all");
    assert_eq!(
        end_in_gap.window_at(b, utc("2026-03-28 23:30")),
        open("2026-03-29 01:00")
    );
    assert_eq!(
        end_in_gap.window_at(b, utc("2026-03-29 01:00")),
        closed("2026-03-29 22:30")
    );
    // Wholly in the gap: no window that day at all.
    let in_gap = hours("02:10-02:50", "all");
    assert_eq!(
        in_gap.window_at(b, utc("2026-03-28 23:00")),
        closed("2026-03-30 00:10")
    );

    // 25 October: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; local
    // 02:00-03:00 is 00:00-01:00 UTC, then 01:00-02:00 UTC.
    assert_eq!(
        across.window_at(b, utc("2026-10-24 23:30")),
        open("2026-10-25 02:30")
    );
    assert_eq!(
        start_in_gap.window_at(b, utc("2026-10-25 00:30")),
        closed("2026-10-25 01:30")
    );
    assert_eq!(
        start_in_gap.window_at(b, utc("2026-10-25 01:30")),
        open("2026-10-25 04:00")
    );
    assert_eq!(
        end_in_gap.window_at(b, utc("2026-10-25 00:00")),
        open("2026-10-25 00:30")
    );
    assert_eq!(
        end_in_gap.window_at(b, utc("2026-10-25 00:30")),
        closed("2026-10-25 23:30")
    );
    // Later start 01:10 UTC is after the earlier end 00:50 UTC: empty.
    assert_eq!(
        in_gap.window_at(b, utc("2026-10-24 23:00")),
        closed("2026-10-26 01:10")
    );
}

#[test]
fn london_sydney_and_chatham_transitions() {
    let c = hours("01:30-03:30", "all");
    let l = tz("Europe/London");
    // 29 March: 01:00 GMT jumps to 02:00 BST at 01:00 UTC; 01:30 is gone.
    assert_eq!(
        c.window_at(l, utc("2026-03-29 00:00")),
        closed("2026-03-29 01:00")
    );
    assert_eq!(
        c.window_at(l, utc("2026-03-29 01:00")),
        open("2026-03-29 02:30")
    );
    // 25 October: 01:00-02:00 twice; the later 01:30 is 01:30 UTC.
    assert_eq!(
        c.window_at(l, utc("2026-10-25 00:30")),
        closed("2026-10-25 01:30")
    );
    assert_eq!(
        c.window_at(l, utc("2026-10-25 01:30")),
        open("2026-10-25 03:30")
    );

    // Sydney, southern DST. 5 April: 03:00 AEDT falls back to 02:00 AEST
    // at 16:00 UTC on the 4th; 4 October: 02:00 AEST jumps
    // to 03:00 AEDT at 16:00 UTC on the 3rd.
    let s = tz("Australia/Sydney");
    let early = hours("02:30-05:00", "all");
    assert_eq!(
        early.window_at(s, utc("2026-04-04 15:30")),
        closed("2026-04-04 16:30")
    );
    assert_eq!(
        early.window_at(s, utc("2026-04-04 16:30")),
        open("2026-04-04 19:00")
    );
    assert_eq!(
        early.window_at(s, utc("2026-10-03 15:00")),
        closed("2026-10-03 16:00")
    );
    assert_eq!(
        early.window_at(s, utc("2026-10-03 16:00")),
        open("2026-10-03 18:00")
    );

    // Chatham (+12:45 / +13:45) changes at 02:45 / 03:45 local, 14:00 UTC.
    let ch = tz("Pacific/Chatham");
    let c3 = hours("03:00-04:00", "all");
    // 5 April: 02:45-03:45 twice; the later 03:00 is 14:15 UTC.
    assert_eq!(
        c3.window_at(ch, utc("2026-04-04 13:30")),
        closed("2026-04-04 14:15")
    );
    assert_eq!(
        c3.window_at(ch, utc("2026-04-04 14:15")),
        open("2026-04-04 15:15")
    );
    // 27 September: 02:45-03:45 is skipped; 03:00 opens at the jump.
    assert_eq!(
        c3.window_at(ch, utc("2026-09-26 13:00")),
        closed("2026-09-26 14:00")
    );
    assert_eq!(
        c3.window_at(ch, utc("2026-09-26 14:00")),
        open("2026-09-26 14:15")
    );
}

#[test]
fn until_midnight_and_from_midnight() {
    let c = hours("00:00-24:00", "sat,sun");
    let b = tz("Europe/Berlin");
    // Friday 12 June 2026, 23:59 local (CEST) is 21:59 UTC.
    assert_eq!(
        c.window_at(b, utc("2026-06-12 21:59")),
        closed("2026-06-12 22:00")
    );
    // Saturday's window ends at Sunday's start; Sunday's runs to Monday.
    assert_eq!(
        c.window_at(b, utc("2026-06-12 22:00")),
        open("2026-06-13 22:00")
    );
    assert_eq!(
        c.window_at(b, utc("2026-06-13 22:00")),
        open("2026-06-14 22:00")
    );
    assert_eq!(
        c.window_at(b, utc("2026-06-14 22:00")),
        closed("2026-06-19 22:00")
    );
}

/// An oracle written apart from the module: the window as the user wrote
/// it, read against the local wall-clock time chrono-tz gives.
struct Oracle {
    start_min: u32,
    end_min: u32,
    days: &'static [Weekday],
}

impl Oracle {
    fn inside(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        let local = t.with_timezone(&tz);
        let min = local.hour() * 60 + local.minute();
        self.days.contains(&local.weekday()) && min >= self.start_min && min < self.end_min
    }
}

fn ambiguous(tz: Tz, t: DateTime<Utc>) -> bool {
    matches!(
        tz.from_local_datetime(&t.with_timezone(&tz).naive_local()),
        LocalResult::Ambiguous(..)
    )
}

use chrono::Timelike;
use Weekday::*;

/// Southern and northern DST, half and three-quarter hours, none, and
/// two that change at midnight (Santiago, Beirut).
const ZONES: [&str; 10] = [
    "America/New_York",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "Africa/Nairobi",
    "America/Santiago",
    "Asia/Beirut",
];

const CASES: [(&str, &str, u32, u32, &[Weekday]); 7] = [
    (
        "09:00-20:00",
        "mon-sat",
        540,
        1200,
        &[Mon, Tue, Wed, Thu, Fri, Sat],
    ),
    (
        "01:30-03:30",
        "all",
        90,
        210,
        &[Mon, Tue, Wed, Thu, Fri, Sat, Sun],
    ),
    (
        "02:10-02:50",
        "all",
        130,
        170,
        &[Mon, Tue, Wed, Thu, Fri, Sat, Sun],
    ),
    ("02:30-05:00", "sun", 150, 300, &[Sun]),
    ("00:00-24:00", "sat,sun", 0, 1440, &[Sat, Sun]),
    (
        "00:30-02:30",
        "mon-fri,sun",
        30,
        150,
        &[Mon, Tue, Wed, Thu, Fri, Sun],
    ),
    (
        "03:00-04:00",
        "all",
        180,
        240,
        &[Mon, Tue, Wed, Thu, Fri, Sat, Sun],
    ),
];

/// Checks one answer against the oracle; returns how many instants were
/// "inside" by wall clock yet outside the answer because they are the
/// second pass of a fold (the rule shrinks the window there).
fn check(c: &CallingHours, o: &Oracle, tz: Tz, now: DateTime<Utc>, rng: &mut impl Rng) -> u32 {
    let ctx = || format!("{} {:?} at {now}", tz.name(), c);
    let mut fold_skips = 0;
    match c.window_at(tz, now) {
        Window::Open { until } => {
            assert!(until > now, "{}", ctx());
            assert!(o.inside(tz, now), "attempt outside the window: {}", ctx());
            let last = until - TimeDelta::seconds(1);
            assert!(o.inside(tz, last.max(now)), "{} until {until}", ctx());
            let span = (until - now).num_seconds().max(1);
            for _ in 0..4 {
                let t = now + TimeDelta::seconds(rng.gen_range(0..span));
                assert!(o.inside(tz, t), "{}: {t} in the window", ctx());
            }
        }
        Window::Closed { opens } => {
            assert!(opens > now, "{}", ctx());
            assert!(
                matches!(c.window_at(tz, opens), Window::Open { .. }),
                "{}: not open at {opens}",
                ctx()
            );
            assert!(o.inside(tz, opens), "{}: opens at {opens}", ctx());
            let before = opens - TimeDelta::seconds(1);
            assert!(before < now || !o.inside(tz, before), "{}", ctx());
            let span = (opens - now).num_seconds().max(1);
            for _ in 0..8 {
                let t = now + TimeDelta::seconds(rng.gen_range(0..span));
                if o.inside(tz, t) {
                    assert!(ambiguous(tz, t), "{}: {t} is inside, before {opens}", ctx());
                    fold_skips += 1;
                }
            }
        }
        Window::Never => panic!("never: {}", ctx()),
    }
    fold_skips
}

/// A virtual UTC clock stepped in random increments (1 s to 3 h) through
/// 2026, for every zone and window: open means inside by the local wall
/// clock, closed means no instant before `opens` is (save the shrunk
/// second pass of a fold), and `opens` is open. Then every minute of the
/// DST transition days.
#[test]
fn never_an_attempt_outside_the_window_over_a_year() {
    let mut checked = 0u64;
    let mut fold_skips = 0u32;
    for (z, zone) in ZONES.iter().enumerate() {
        let tz = tz(zone);
        let mut rng = rand::rngs::StdRng::seed_from_u64(z as u64);
        for (h, d, start_min, end_min, days) in CASES {
            let c = hours(h, d);
            let o = Oracle {
                start_min,
                end_min,
                days,
            };
            let mut now = utc("2026-01-01 00:00") + TimeDelta::seconds(rng.gen_range(0..3600));
            while now < utc("2027-01-01 00:00") {
                fold_skips += check(&c, &o, tz, now, &mut rng);
                checked += 1;
                now += TimeDelta::seconds(rng.gen_range(1..=3 * 3600));
            }
            for day in [
                "2026-03-07",
                "2026-03-28",
                "2026-04-04",
                "2026-09-05",
                "2026-09-26",
                "2026-10-03",
                "2026-10-24",
                "2026-10-31",
            ] {
                let from = utc(&format!("{day} 00:00"));
                for m in 0..2 * 24 * 60 {
                    fold_skips += check(&c, &o, tz, from + TimeDelta::minutes(m), &mut rng);
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} instants checked, {fold_skips} fold samples left out of the window");
}

proptest::proptest! {
    /// Hostile input is an error, never a panic; what parses is a window
    /// that starts before it ends.
    #[test]
    fn parsers_never_panic(
        h in "[0-9:\\- ]{0,14}|\\PC{0,20}",
        d in "[a-zA-Z,\\- ]{0,20}|\\PC{0,20}",
    ) {
        if let Ok(c) = CallingHours::parse(&h, &d) {
            proptest::prop_assert!(c.end().is_none_or(|e| c.start() < e));
            proptest::prop_assert!(!c.days().is_empty());
        }
        let _ = parse_tz(&h);
        let _ = parse_tz(&d);
    }
}
