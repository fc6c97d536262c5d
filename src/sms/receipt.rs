//! Delivery receipts: recognising a `deliver_sm` that is a receipt, parsing
//! the de-facto text format of SMPP 3.4 Appendix B (`id:… sub:… dlvrd:…
//! submit date:… done date:… stat:… err:… text:…`) and the
//! `receipted_message_id` / `message_state` TLVs, and matching SMSC message
//! ids written in hex in one place and decimal in the other.

use super::pdu::{tag, ShortMessage};

/// `esm_class` message-type bits (2–5) that mark an SMSC delivery receipt.
const ESM_TYPE_MASK: u8 = 0x3C;
const ESM_TYPE_RECEIPT: u8 = 0x04;
/// Intermediate notification: not a final state, also reported.
const ESM_TYPE_INTERMEDIATE: u8 = 0x20;

/// The final (or not) outcome a receipt reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStat {
    Delivered,
    Expired,
    Failed,
    Unknown,
    /// ENROUTE / ACCEPTD: still on its way.
    Pending,
}

impl ReceiptStat {
    fn from_text(s: &str) -> ReceiptStat {
        match s.to_ascii_uppercase().as_str() {
            "DELIVRD" | "DELIVERED" => ReceiptStat::Delivered,
            "EXPIRED" => ReceiptStat::Expired,
            "UNDELIV" | "UNDELIVERABLE" | "REJECTD" | "REJECTED" | "DELETED" => ReceiptStat::Failed,
            "ENROUTE" | "ACCEPTD" | "ACCEPTED" => ReceiptStat::Pending,
            _ => ReceiptStat::Unknown,
        }
    }

    /// SMPP 3.4 section 5.3.2.35 `message_state` values.
    fn from_state(v: u8) -> ReceiptStat {
        match v {
            1 | 6 => ReceiptStat::Pending,
            2 => ReceiptStat::Delivered,
            3 => ReceiptStat::Expired,
            4 | 5 | 8 => ReceiptStat::Failed,
            _ => ReceiptStat::Unknown,
        }
    }
}

/// A parsed delivery receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The SMSC message id, as the SMSC wrote it in the receipt.
    pub smsc_id: String,
    pub stat: ReceiptStat,
    /// The `stat:` word as received (e.g. `DELIVRD`).
    pub stat_text: String,
    pub err: String,
    pub submit_date: String,
    pub done_date: String,
}

/// True when the message is a delivery receipt or intermediate notification.
pub fn is_receipt(m: &ShortMessage) -> bool {
    let t = m.esm_class & ESM_TYPE_MASK;
    t == ESM_TYPE_RECEIPT || t == ESM_TYPE_INTERMEDIATE
}

/// Parses a receipt from a `deliver_sm`; `None` when it carries no id.
pub fn parse(m: &ShortMessage) -> Option<Receipt> {
    let text = String::from_utf8_lossy(
        m.tlv(tag::MESSAGE_PAYLOAD)
            .filter(|_| m.short_message.is_empty())
            .unwrap_or(&m.short_message),
    )
    .into_owned();
    let field = |name: &str| field(&text, name);
    let tlv_id = m
        .tlv(tag::RECEIPTED_MESSAGE_ID)
        .map(|v| String::from_utf8_lossy(v.split(|&b| b == 0).next().unwrap_or(&[])).into_owned())
        .filter(|s| !s.is_empty());
    let smsc_id = tlv_id.or_else(|| field("id").filter(|s| !s.is_empty()))?;
    let stat_text = field("stat").unwrap_or_default();
    let stat = match m.tlv(tag::MESSAGE_STATE) {
        Some(&[v]) => ReceiptStat::from_state(v),
        _ => ReceiptStat::from_text(&stat_text),
    };
    Some(Receipt {
        smsc_id,
        stat,
        stat_text,
        err: field("err").unwrap_or_default(),
        submit_date: field("submit date").unwrap_or_default(),
        done_date: field("done date").unwrap_or_default(),
    })
}

/// The value after `name:` up to the next space (case-insensitive name).
fn field(text: &str, name: &str) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let key = format!("{name}:");
    let mut from = 0;
    while let Some(i) = lower.get(from..)?.find(&key) {
        let at = from + i;
        // Match whole keys: "id:" must not match inside "msgid:".
        let boundary = at == 0 || lower.as_bytes().get(at - 1) == Some(&b' ');
        if boundary {
            let rest = text.get(at + key.len()..)?;
            return Some(rest.split(' ').next().unwrap_or("").to_string());
        }
        from = at + key.len();
    }
    None
}

/// Numeric readings of an SMSC message id, for matching ids that one side
/// writes in hex and the other in decimal. Each is a decimal string.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdForms {
    /// The raw id, lowercased.
    pub raw: String,
    /// Its value read as decimal, if it is all digits.
    pub as_dec: Option<String>,
    /// Its value read as hexadecimal, if it is all hex digits.
    pub as_hex: Option<String>,
}

impl IdForms {
    pub fn of(id: &str) -> IdForms {
        let raw = id.trim().to_ascii_lowercase();
        let digits = raw.trim_start_matches('0');
        let as_dec =
            (!raw.is_empty() && raw.len() <= 38 && raw.bytes().all(|b| b.is_ascii_digit()))
                .then(|| digits.parse::<u128>().unwrap_or(0).to_string());
        let as_hex = (!raw.is_empty()
            && digits.len() <= 32
            && raw.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u128::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16).ok())
        .flatten()
        .map(|v| v.to_string());
        IdForms {
            raw,
            as_dec,
            as_hex,
        }
    }

    /// True when a receipt id `r` names the message with submit id `self`:
    /// the same text, or hex on one side and decimal on the other.
    pub fn matches(&self, r: &IdForms) -> bool {
        self.raw == r.raw
            || (self.as_hex.is_some() && self.as_hex == r.as_dec)
            || (self.as_dec.is_some() && self.as_dec == r.as_hex)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sms::pdu::Tlv;

    fn dlr(text: &str) -> ShortMessage {
        ShortMessage {
            esm_class: 0x04,
            short_message: text.as_bytes().to_vec(),
            ..ShortMessage::default()
        }
    }

    #[test]
    fn parses_the_appendix_b_format() {
        let m = dlr("id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 stat:DELIVRD err:000 text:Hello");
        assert!(is_receipt(&m));
        let r = parse(&m).unwrap();
        assert_eq!(r.smsc_id, "0123456789");
        assert_eq!(r.stat, ReceiptStat::Delivered);
        assert_eq!(r.err, "000");
        assert_eq!(r.submit_date, "0610191018");
        assert_eq!(r.done_date, "0610191018");
    }

    #[test]
    fn maps_every_stat_word() {
        for (w, s) in [
            ("EXPIRED", ReceiptStat::Expired),
            ("UNDELIV", ReceiptStat::Failed),
            ("REJECTD", ReceiptStat::Failed),
            ("DELETED", ReceiptStat::Failed),
            ("ENROUTE", ReceiptStat::Pending),
            ("ACCEPTD", ReceiptStat::Pending),
            ("UNKNOWN", ReceiptStat::Unknown),
        ] {
            let r = parse(&dlr(&format!("id:1 stat:{w} err:001"))).unwrap();
            assert_eq!(r.stat, s, "{w}");
        }
    }

    #[test]
    fn tlvs_win_over_text() {
        let mut m = dlr("id:99 stat:DELIVRD");
        m.tlvs = vec![
            Tlv {
                tag: tag::RECEIPTED_MESSAGE_ID,
                value: b"abc\0".to_vec(),
            },
            Tlv {
                tag: tag::MESSAGE_STATE,
                value: vec![5],
            },
        ];
        let r = parse(&m).unwrap();
        assert_eq!((r.smsc_id.as_str(), r.stat), ("abc", ReceiptStat::Failed));
    }

    #[test]
    fn non_receipts_and_garbage() {
        let inbound = ShortMessage {
            short_message: b"hi".to_vec(),
            ..ShortMessage::default()
        };
        assert!(!is_receipt(&inbound));
        assert!(parse(&dlr("stat:DELIVRD")).is_none());
        assert!(parse(&dlr("msgid:5 stat:DELIVRD")).is_none());
        assert!(parse(&dlr("\u{0}\u{ff} id:")).is_none());
        assert_eq!(parse(&dlr("\u{0}\u{ff} id:7")).unwrap().smsc_id, "7");
    }

    #[test]
    fn ids_match_across_hex_and_decimal() {
        let hex = IdForms::of("1A2B3C");
        let dec = IdForms::of("1715004");
        assert!(hex.matches(&dec) && dec.matches(&hex));
        assert!(IdForms::of("00ff").matches(&IdForms::of("255")));
        assert!(IdForms::of("ABC").matches(&IdForms::of("abc")));
        assert!(!IdForms::of("1A2B3C").matches(&IdForms::of("1715005")));
        assert!(!IdForms::of("msg-1").matches(&IdForms::of("msg-2")));
        let long = IdForms::of(&"f".repeat(60));
        assert!(long.as_hex.is_none() && long.matches(&IdForms::of(&"F".repeat(60))));
    }
}
