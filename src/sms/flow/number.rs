//! A sender's number in the do-not-contact list's form (E.164), from what
//! an SMSC or a call gives: `254712345678` (international, no `+`, as
//! SMPP's TON 1 writes it), `+254712345678`, `0712345678` with `[sms]
//! country`, or `sip:+254712345678@carrier;user=phone`.

use crate::campaign::contacts::{normalize, Country};

/// The user part of a `sip:`/`tel:` URI, or the text itself.
fn user_part(raw: &str) -> &str {
    let s = raw.trim();
    let s = s.trim_start_matches('<');
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    let s = s.split(['@', ';', '>']).next().unwrap_or(s);
    s.trim()
}

/// The E.164 form of `raw`, or `None` when it is not a valid number (an
/// alphanumeric sender, a short code).
pub fn e164(raw: &str, country: Country) -> Option<String> {
    let n = user_part(raw);
    if n.starts_with('+') {
        return normalize(n, Country::NONE).ok();
    }
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if country != Country::NONE {
        if let Ok(p) = normalize(n, country) {
            return Some(p);
        }
    }
    normalize(&format!("+{n}"), Country::NONE).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_become_e164() {
        let ke: Country = "KE".parse().unwrap();
        assert_eq!(
            e164("254712345678", Country::NONE).as_deref(),
            Some("+254712345678")
        );
        assert_eq!(e164("+254712345678", ke).as_deref(), Some("+254712345678"));
        assert_eq!(e164("0712345678", ke).as_deref(), Some("+254712345678"));
        assert_eq!(e164("254712345678", ke).as_deref(), Some("+254712345678"));
        assert_eq!(e164("0712345678", Country::NONE), None);
        assert_eq!(
            e164(
                "<sip:+254712345678@carrier.example;user=phone>",
                Country::NONE
            )
            .as_deref(),
            Some("+254712345678")
        );
        assert_eq!(e164("CLINIC", ke), None);
        assert_eq!(e164("", ke), None);
    }
}
