//! Sender IDs: what kind of originator a `from` is, and the SMPP
//! `source_addr_ton` / `source_addr_npi` that go with it.
//!
//! The rule is the common SMSC practice (e.g. smsdeliverer's "SMPP address"
//! page, Ozeki, CardBoardFish): `+` and digits (or `00` and digits) is an
//! international number, TON 1 / NPI 1 (E.164), sent without the prefix;
//! 3 to 8 digits is a short code, TON 3 (network specific) / NPI 0; more
//! digits is a national number, TON 2 / NPI 1; anything else is an
//! alphanumeric sender, TON 5 / NPI 0, which operators accept only up to 11
//! characters of the GSM 03.38 alphabet (it travels in 7-bit packed form,
//! 11 septets, in the SMS header). An empty sender is TON 0 / NPI 0: the
//! SMSC fills in the account's default.

use super::encoding;

/// A validated originator and its type of number / numbering plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderId {
    /// As sent in `source_addr` (an international number without `+`/`00`).
    pub addr: String,
    pub ton: u8,
    pub npi: u8,
    pub kind: SenderKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderKind {
    Default,
    International,
    National,
    ShortCode,
    Alphanumeric,
}

impl SenderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderKind::Default => "default",
            SenderKind::International => "international",
            SenderKind::National => "national",
            SenderKind::ShortCode => "short code",
            SenderKind::Alphanumeric => "alphanumeric",
        }
    }
}

/// Alphanumeric senders longer than this are refused by operators.
pub const ALPHANUMERIC_MAX: usize = 11;

/// Why a sender ID cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    #[error("sender ID {0:?}: an alphanumeric sender is at most 11 GSM 03.38 characters")]
    TooLong(String),
    #[error("sender ID {0:?}: {1:?} is not in the GSM 03.38 basic alphabet (alphanumeric senders must be)")]
    NotGsm(String, char),
    #[error("sender ID {0:?}: a number is 1 to 15 digits after + (E.164)")]
    BadNumber(String),
}

/// Classifies `from` and checks it can be sent.
pub fn classify(from: &str) -> Result<SenderId, SenderError> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let intl = from
        .strip_prefix('+')
        .or_else(|| from.strip_prefix("00").filter(|r| digits(r)));
    let (addr, ton, npi, kind) = if from.is_empty() {
        (String::new(), 0, 0, SenderKind::Default)
    } else if let Some(rest) = intl {
        if !digits(rest) || rest.len() > 15 {
            return Err(SenderError::BadNumber(from.to_string()));
        }
        (rest.to_string(), 1, 1, SenderKind::International)
    } else if digits(from) && from.len() <= 8 {
        (from.to_string(), 3, 0, SenderKind::ShortCode)
    } else if digits(from) {
        if from.len() > 15 {
            return Err(SenderError::BadNumber(from.to_string()));
        }
        (from.to_string(), 2, 1, SenderKind::National)
    } else {
        check_alphanumeric(from)?;
        (from.to_string(), 5, 0, SenderKind::Alphanumeric)
    };
    Ok(SenderId {
        addr,
        ton,
        npi,
        kind,
    })
}

/// An alphanumeric originator is packed into 11 septets of the basic GSM
/// alphabet; extension characters (two septets) and others are refused.
fn check_alphanumeric(from: &str) -> Result<(), SenderError> {
    if let Some(c) = from
        .chars()
        .find(|&c| encoding::gsm_basic_septet(c).is_none())
    {
        return Err(SenderError::NotGsm(from.to_string(), c));
    }
    if from.chars().count() > ALPHANUMERIC_MAX {
        return Err(SenderError::TooLong(from.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tn(s: &str) -> (String, u8, u8, SenderKind) {
        let id = classify(s).unwrap();
        (id.addr, id.ton, id.npi, id.kind)
    }

    #[test]
    fn each_kind_gets_its_ton_and_npi() {
        use SenderKind::*;
        assert_eq!(tn("CLINIC"), ("CLINIC".into(), 5, 0, Alphanumeric));
        assert_eq!(
            tn("Dr Smith 24"),
            ("Dr Smith 24".into(), 5, 0, Alphanumeric)
        );
        assert_eq!(tn("55555"), ("55555".into(), 3, 0, ShortCode));
        assert_eq!(tn("123"), ("123".into(), 3, 0, ShortCode));
        assert_eq!(
            tn("+15551234567"),
            ("15551234567".into(), 1, 1, International)
        );
        assert_eq!(
            tn("0044207946000"),
            ("44207946000".into(), 1, 1, International)
        );
        assert_eq!(tn("0207946000"), ("0207946000".into(), 2, 1, National));
        assert_eq!(tn(""), (String::new(), 0, 0, Default));
        // digits and letters together are an alphanumeric sender
        assert_eq!(tn("1A2B"), ("1A2B".into(), 5, 0, Alphanumeric));
    }

    #[test]
    fn bad_sender_ids_are_refused_by_name() {
        assert_eq!(
            classify("ABCDEFGHIJKL"),
            Err(SenderError::TooLong("ABCDEFGHIJKL".into()))
        );
        assert!(classify("ABCDEFGHIJK").is_ok(), "11 characters fit");
        assert_eq!(
            classify("Café€"),
            Err(SenderError::NotGsm("Café€".into(), '€')),
            "é is GSM basic, € only in the extension table"
        );
        assert_eq!(
            classify("Zürich✓"),
            Err(SenderError::NotGsm("Zürich✓".into(), '✓'))
        );
        assert!(classify("+12ab").is_err());
        assert!(classify("+").is_err());
        assert!(classify("+1234567890123456").is_err(), "16 digits");
        let e = classify("ABCDEFGHIJKLMNOP").unwrap_err().to_string();
        assert!(e.contains("ABCDEFGHIJKLMNOP") && e.contains("11"), "{e}");
    }
}
