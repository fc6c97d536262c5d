//! What `say_date` says: a date written the way each language reads it,
//! for espeak-ng to speak (it reads the numbers itself, in the voice's
//! language). German days are written out as ordinals, since espeak-ng
//! reads `5.` as a cardinal at a sentence end.

/// Languages `say_date` knows (the language's primary subtag).
pub const DATE_LANGS: &[&str] = &["en", "fr", "de", "es", "it", "pt", "nl"];

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTHS_DE: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];
const MONTHS_ES: [&str; 12] = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
];
const MONTHS_IT: [&str; 12] = [
    "gennaio",
    "febbraio",
    "marzo",
    "aprile",
    "maggio",
    "giugno",
    "luglio",
    "agosto",
    "settembre",
    "ottobre",
    "novembre",
    "dicembre",
];
const MONTHS_PT: [&str; 12] = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
];
const MONTHS_NL: [&str; 12] = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
];
const DAYS_DE: [&str; 31] = [
    "erste",
    "zweite",
    "dritte",
    "vierte",
    "fünfte",
    "sechste",
    "siebte",
    "achte",
    "neunte",
    "zehnte",
    "elfte",
    "zwölfte",
    "dreizehnte",
    "vierzehnte",
    "fünfzehnte",
    "sechzehnte",
    "siebzehnte",
    "achtzehnte",
    "neunzehnte",
    "zwanzigste",
    "einundzwanzigste",
    "zweiundzwanzigste",
    "dreiundzwanzigste",
    "vierundzwanzigste",
    "fünfundzwanzigste",
    "sechsundzwanzigste",
    "siebenundzwanzigste",
    "achtundzwanzigste",
    "neunundzwanzigste",
    "dreißigste",
    "einunddreißigste",
];

/// A calendar date, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    pub year: i64,
    pub month: u32,
    pub day: u32,
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl Date {
    /// `YYYY-MM-DD`, optionally followed by a time (`T…` or ` …`), so
    /// `call.started_at` works too.
    pub fn parse(s: &str) -> Result<Date, String> {
        let bad = || format!("{s:?} is not a date like \"2026-12-05\"");
        let head = s.get(..10).ok_or_else(bad)?;
        if let Some(rest) = s.get(10..) {
            if !(rest.is_empty() || rest.starts_with(['T', 't', ' '])) {
                return Err(bad());
            }
        }
        let b = head.as_bytes();
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = head.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())
                .flatten()
        };
        if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
            return Err(bad());
        }
        let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10))
        else {
            return Err(bad());
        };
        Date::new(i64::from(year), month, day).ok_or_else(bad)
    }

    pub fn new(year: i64, month: u32, day: u32) -> Option<Date> {
        ((1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month))
        .then_some(Date { year, month, day })
    }

    /// The UTC date of a Unix time in seconds (civil-from-days, H. Hinnant).
    pub fn from_unix(secs: i64) -> Option<Date> {
        if !(0..=253_402_300_799).contains(&secs) {
            return None;
        }
        let z = secs.div_euclid(86_400) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Date::new(year, month, day)
    }
}

/// The primary subtag of a language tag (`en-us` → `en`), lower case.
pub fn primary(lang: &str) -> String {
    lang.split(['-', '_', '+'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// The date as `lang` reads it, for the speech engine.
pub fn date_text(lang: &str, d: Date) -> Result<String, String> {
    let m = (d.month as usize).saturating_sub(1);
    let pick = |names: &[&'static str; 12]| names.get(m).copied().unwrap_or("");
    let (y, day) = (d.year, d.day);
    Ok(match primary(lang).as_str() {
        "en" => {
            let suffix = match (day % 10, day % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{} {day}{suffix}, {y}", pick(&MONTHS_EN))
        }
        "fr" if day == 1 => format!("1er {} {y}", pick(&MONTHS_FR)),
        "fr" => format!("{day} {} {y}", pick(&MONTHS_FR)),
        "de" => {
            let ordinal = DAYS_DE.get(day as usize - 1).copied().unwrap_or("");
            format!("der {ordinal} {} {y}", pick(&MONTHS_DE))
        }
        "es" => format!("{day} de {} de {y}", pick(&MONTHS_ES)),
        "it" if day == 1 => format!("primo {} {y}", pick(&MONTHS_IT)),
        "it" => format!("{day} {} {y}", pick(&MONTHS_IT)),
        "pt" if day == 1 => format!("primeiro de {} de {y}", pick(&MONTHS_PT)),
        "pt" => format!("{day} de {} de {y}", pick(&MONTHS_PT)),
        "nl" => format!("{day} {} {y}", pick(&MONTHS_NL)),
        other => {
            return Err(format!(
                "no date words for language {other:?} (say_date knows {})",
                DATE_LANGS.join(", ")
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_are_checked() {
        let d = Date::parse("2026-12-05").unwrap();
        assert_eq!((d.year, d.month, d.day), (2026, 12, 5));
        assert_eq!(Date::parse("2026-11-26T16:10:29Z").unwrap().day, 26);
        assert!(Date::parse("2024-02-29").is_ok());
        for bad in [
            "2025-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-12-05",
            "",
            "2026-12-05x",
            "２０２６-12-05",
            "2026-12-0é",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Date::from_unix(0), Date::new(1970, 1, 1));
        assert_eq!(Date::from_unix(1_795_000_000), Date::new(2026, 11, 18));
        assert_eq!(Date::from_unix(951_782_400), Date::new(2000, 2, 29));
        assert_eq!(Date::from_unix(-1), None);
        assert_eq!(Date::from_unix(i64::MAX), None);
    }

    #[test]
    fn each_language_writes_the_date_its_way() {
        let d = Date::new(2026, 12, 5).unwrap();
        let first = Date::new(2026, 1, 1).unwrap();
        for (lang, date, want) in [
            ("en", d, "December 5th, 2026"),
            ("en-us", Date::new(2026, 3, 22).unwrap(), "March 22nd, 2026"),
            ("en", Date::new(2026, 3, 11).unwrap(), "March 11th, 2026"),
            ("fr", d, "5 décembre 2026"),
            ("fr", first, "1er janvier 2026"),
            ("de", d, "der fünfte Dezember 2026"),
            (
                "de",
                Date::new(2026, 5, 31).unwrap(),
                "der einunddreißigste Mai 2026",
            ),
            ("es", d, "5 de diciembre de 2026"),
            ("it", first, "primo gennaio 2026"),
            ("pt-br", d, "5 de dezembro de 2026"),
            ("nl", d, "5 december 2026"),
        ] {
            assert_eq!(date_text(lang, date).unwrap(), want, "{lang}");
        }
        let e = date_text("xx", d).unwrap_err();
        assert!(e.contains("\"xx\"") && e.contains("en, fr"), "{e}");
    }
}
