//! SMS text encoding: GSM 03.38 7-bit (default alphabet plus the extension
//! table, sent unpacked one septet per octet as SMPP `data_coding` 0) when
//! every character fits, else UCS-2 (UTF-16BE, `data_coding` 8). Long text
//! is split into parts with an 8-bit-reference concatenation UDH
//! (153 septets / 67 UCS-2 units per part) or carried whole in
//! `message_payload`.

/// GSM 03.38 default alphabet, indexed by septet (0x1B is the escape).
const GSM_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// GSM 03.38 extension table: (septet after 0x1B, character).
const GSM_EXT: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

const ESC: u8 = 0x1B;

/// SMPP `data_coding` values used here.
pub const DC_GSM7: u8 = 0x00;
pub const DC_LATIN1: u8 = 0x03;
pub const DC_UCS2: u8 = 0x08;
/// `esm_class` bit: the short message starts with a user data header.
pub const ESM_UDHI: u8 = 0x40;

/// Which alphabet a text is sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gsm7,
    Ucs2,
}

/// A text ready for submission: one or more `short_message` bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub coding: Coding,
    pub data_coding: u8,
    /// Each part's `short_message` (UDH included when `udhi`), or the single
    /// `message_payload` value when `payload` is set.
    pub parts: Vec<Vec<u8>>,
    pub udhi: bool,
    pub payload: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("text is empty")]
    Empty,
    #[error("text needs {0} parts; at most 255 are possible")]
    TooLong(usize),
}

/// The GSM septets for `c`: one for the basic table, two for the extension.
fn gsm_septets(c: char) -> Option<([u8; 2], usize)> {
    if c != '\u{1B}' {
        if let Some(i) = GSM_BASIC.iter().position(|&g| g == c) {
            return Some(([i as u8, 0], 1));
        }
    }
    GSM_EXT
        .iter()
        .find(|(_, g)| *g == c)
        .map(|(s, _)| ([ESC, *s], 2))
}

/// The basic-table septet of `c` (no escape), as alphanumeric senders need.
pub(crate) fn gsm_basic_septet(c: char) -> Option<u8> {
    gsm_septets(c).filter(|(_, n)| *n == 1).map(|(s, _)| s[0])
}

/// True when every character of `text` is in the GSM 03.38 alphabet.
pub fn fits_gsm7(text: &str) -> bool {
    text.chars().all(|c| gsm_septets(c).is_some())
}

/// Encodes `text` for submission. `reference` is the concatenation reference
/// shared by every part; `use_payload` sends long text in `message_payload`.
pub fn encode(text: &str, reference: u8, use_payload: bool) -> Result<Encoded, EncodeError> {
    if text.is_empty() {
        return Err(EncodeError::Empty);
    }
    let (coding, data_coding, units, unit_len, single, per_part) = if fits_gsm7(text) {
        let mut s = Vec::with_capacity(text.len());
        for c in text.chars() {
            if let Some((b, n)) = gsm_septets(c) {
                s.extend_from_slice(&b[..n]);
            }
        }
        (Coding::Gsm7, DC_GSM7, s, 1, 160, 153)
    } else {
        let s: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        (Coding::Ucs2, DC_UCS2, s, 2, 140, 134)
    };
    if units.len() <= single || use_payload {
        // Long text in message_payload stays in one submit_sm.
        let payload = units.len() > single;
        return Ok(Encoded {
            coding,
            data_coding,
            parts: vec![units],
            udhi: false,
            payload,
        });
    }
    let chunks = split(&units, per_part, unit_len, coding);
    if chunks.len() > 255 {
        return Err(EncodeError::TooLong(chunks.len()));
    }
    let total = chunks.len() as u8;
    let parts = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut p = Vec::with_capacity(6 + chunk.len());
            // IEI 0x00: concatenated short message, 8-bit reference.
            p.extend_from_slice(&[0x05, 0x00, 0x03, reference, total, (i + 1) as u8]);
            p.extend_from_slice(chunk);
            p
        })
        .collect();
    Ok(Encoded {
        coding,
        data_coding,
        parts,
        udhi: true,
        payload: false,
    })
}

/// Splits at most `per_part` octets per chunk without cutting a GSM escape
/// pair or a UTF-16 surrogate pair in two.
fn split(units: &[u8], per_part: usize, unit_len: usize, coding: Coding) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = units;
    while !rest.is_empty() {
        let mut n = per_part.min(rest.len());
        if n < rest.len() {
            match coding {
                Coding::Gsm7 => {
                    let escapes_before = rest[..n].iter().rev().take_while(|&&b| b == ESC).count();
                    if escapes_before % 2 == 1 {
                        n -= 1;
                    }
                }
                Coding::Ucs2 => {
                    let hi = rest[n - unit_len];
                    if (0xD8..=0xDB).contains(&hi) {
                        n -= unit_len;
                    }
                }
            }
        }
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out
}

/// A concatenation header found in a user data header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concat {
    pub reference: u16,
    pub total: u8,
    pub seq: u8,
}

/// Splits a `short_message` with UDHI set into its concatenation info (if
/// any) and the text octets after the header. Bad headers yield `None`.
pub fn split_udh(sm: &[u8]) -> Option<(Option<Concat>, &[u8])> {
    let udhl = usize::from(*sm.first()?);
    let udh = sm.get(1..1 + udhl)?;
    let rest = sm.get(1 + udhl..)?;
    let mut concat = None;
    let mut i = 0;
    while let (Some(&iei), Some(&len)) = (udh.get(i), udh.get(i + 1)) {
        let v = udh.get(i + 2..i + 2 + usize::from(len))?;
        concat = match (iei, v) {
            (0x00, [r, t, s]) => Some(Concat {
                reference: u16::from(*r),
                total: *t,
                seq: *s,
            }),
            (0x08, [r1, r2, t, s]) => Some(Concat {
                reference: u16::from_be_bytes([*r1, *r2]),
                total: *t,
                seq: *s,
            }),
            _ => concat,
        };
        i += 2 + usize::from(len);
    }
    Some((concat, rest))
}

/// Decodes message octets in `data_coding` to text. Unknown codings and
/// invalid sequences decode lossily; this never fails.
pub fn decode(data_coding: u8, bytes: &[u8]) -> String {
    match data_coding {
        DC_UCS2 => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        DC_LATIN1 => bytes.iter().map(|&b| char::from(b)).collect(),
        0x01 => String::from_utf8_lossy(bytes).into_owned(),
        _ => decode_gsm(bytes),
    }
}

fn decode_gsm(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut it = bytes.iter();
    while let Some(&b) = it.next() {
        if b == ESC {
            if let Some(&e) = it.next() {
                let c = GSM_EXT
                    .iter()
                    .find(|(s, _)| *s == e)
                    .map_or(' ', |(_, c)| *c);
                out.push(c);
            }
        } else {
            out.push(GSM_BASIC.get(usize::from(b & 0x7F)).copied().unwrap_or('?'));
        }
    }
    out
}

#[cfg(test)]
#[path = "encoding_tests.rs"]
mod tests;
