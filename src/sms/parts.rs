//! `rivr sms parts --text T`: how a text will be sent — its encoding
//! (GSM-7 or UCS-2), how many parts, and how many characters the last part
//! has used and has left — from the same encoder that sends it
//! ([`super::encoding::encode`]), so authors size campaign texts by what
//! actually goes out. Characters count as the network counts them: a GSM
//! extension character (`€ [ ] { } ^ ~ \ |`) takes two, a UCS-2 character
//! outside the BMP (most emoji) takes two.

use serde::Serialize;

use super::encoding::{encode, Coding, EncodeError};

/// How a text is split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parts {
    /// `GSM-7` or `UCS-2`.
    pub encoding: &'static str,
    pub parts: usize,
    /// Characters of the text as typed (Unicode scalar values).
    pub characters: usize,
    /// What they take on the air: septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    /// What one part holds: 160/70 alone, 153/67 when concatenated.
    pub per_part: usize,
    pub used_in_last: usize,
    pub left_in_last: usize,
}

/// Splits `text` as `rivr sms send` would (concatenated parts, not
/// `message_payload`).
pub fn parts(text: &str) -> Result<Parts, EncodeError> {
    let e = encode(text, 0, false)?;
    let (encoding, unit_bytes, single, concat) = match e.coding {
        Coding::Gsm7 => ("GSM-7", 1, 160, 153),
        Coding::Ucs2 => ("UCS-2", 2, 70, 67),
    };
    let udh = if e.udhi { 6 } else { 0 };
    let body = |p: &Vec<u8>| p.len().saturating_sub(udh) / unit_bytes;
    let units = e.parts.iter().map(body).sum();
    let per_part = if e.parts.len() > 1 { concat } else { single };
    let used_in_last = e.parts.last().map(body).unwrap_or(0);
    Ok(Parts {
        encoding,
        parts: e.parts.len(),
        characters: text.chars().count(),
        units,
        per_part,
        used_in_last,
        left_in_last: per_part.saturating_sub(used_in_last),
    })
}

impl Parts {
    /// The text `rivr sms parts` prints.
    pub fn render(&self) -> String {
        format!(
            "encoding {}\nparts {}\ncharacters {} ({} {})\nper part {}\nlast part {} used, {} left\n",
            self.encoding,
            self.parts,
            self.characters,
            self.units,
            if self.encoding == "GSM-7" { "septets" } else { "UTF-16 units" },
            self.per_part,
            self.used_in_last,
            self.left_in_last,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> (&'static str, usize, usize, usize) {
        let x = parts(text).unwrap();
        (x.encoding, x.parts, x.used_in_last, x.left_in_last)
    }

    #[test]
    fn single_and_concatenated_parts_in_both_alphabets() {
        assert_eq!(p("Hello"), ("GSM-7", 1, 5, 155));
        assert_eq!(p(&"a".repeat(160)), ("GSM-7", 1, 160, 0));
        assert_eq!(p(&"a".repeat(161)), ("GSM-7", 2, 8, 145));
        assert_eq!(p(&"a".repeat(306)), ("GSM-7", 2, 153, 0));
        assert_eq!(p("Prix: 5€"), ("GSM-7", 1, 9, 151), "€ takes two septets");
        assert_eq!(p("Ναι ✓"), ("UCS-2", 1, 5, 65));
        assert_eq!(p(&"é✓".repeat(35)), ("UCS-2", 1, 70, 0));
        assert_eq!(p(&"✓".repeat(71)), ("UCS-2", 2, 4, 63));
        assert_eq!(p("🙂"), ("UCS-2", 1, 2, 68), "a surrogate pair takes two");
    }

    #[test]
    fn an_escape_is_never_cut_so_a_part_may_hold_one_less() {
        // 152 'a' then '€' (2 septets): the escape pair moves whole to part 2.
        let x = parts(&format!("{}€{}", "a".repeat(152), "b".repeat(10))).unwrap();
        assert_eq!((x.parts, x.units, x.used_in_last), (2, 164, 12));
    }

    #[test]
    fn empty_text_is_an_error() {
        assert!(parts("").is_err());
    }
}
