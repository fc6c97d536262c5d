//! The information elements of a message as framed on the wire: single
//! octet elements, variable-length ones (identifier, length, contents),
//! and the shift elements that move the following ones into another
//! codeset (Q.931 §4.5.1–4.5.3). Framing is read eagerly and every element
//! is kept raw, known or not (§5.8.7.1 lets a receiver ignore what it does
//! not know, and a codeset 5/6/7 element means nothing to rivr); the typed
//! view of an element is decoded only when asked for, so a bad optional
//! element never costs the message.

use super::ie::{id, Ie, IeError, InfoElement};
use super::message::{DecodeError, EncodeError};

/// A shift element: 1001 in bits 8–5, bit 4 set for non-locking, the
/// codeset in bits 3–1.
const SHIFT: u8 = 0x90;
const NON_LOCKING: u8 = 0x08;

/// One element as it was framed: its codeset (after shifts), identifier
/// and contents. A single-octet element has bit 8 of `id` set (the whole
/// octet, value included) and no contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawIe {
    /// 0 for Q.931's own elements; 5 national, 6 network, 7 user specific.
    pub codeset: u8,
    pub id: u8,
    pub contents: Vec<u8>,
}

impl RawIe {
    /// A codeset 0 single-octet element such as Sending complete.
    pub fn single(octet: u8) -> RawIe {
        RawIe {
            codeset: 0,
            id: octet,
            contents: Vec::new(),
        }
    }

    /// The codeset 0 element for a typed value.
    pub fn from_ie<T: InfoElement>(ie: &T) -> RawIe {
        let mut contents = Vec::new();
        ie.encode(&mut contents);
        RawIe {
            codeset: 0,
            id: T::ID,
            contents,
        }
    }

    /// Whether this is a single-octet element.
    pub fn is_single_octet(&self) -> bool {
        self.id & 0x80 != 0
    }
}

/// A message's elements, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ies(Vec<RawIe>);

impl Ies {
    pub fn new() -> Ies {
        Ies(Vec::new())
    }

    /// The first codeset 0 element of type `T`, decoded. Q.931 §5.8.5.2:
    /// of repeated elements only the first counts (except where repetition
    /// is allowed — use [`Ies::all`] for those).
    pub fn first<T: InfoElement>(&self) -> Option<Result<T, IeError>> {
        self.find(T::ID).map(|raw| T::decode(&raw.contents))
    }

    /// Every codeset 0 element of type `T` (e.g. two progress indicators).
    pub fn all<T: InfoElement>(&self) -> impl Iterator<Item = Result<T, IeError>> + '_ {
        self.0
            .iter()
            .filter(|raw| raw.codeset == 0 && raw.id == T::ID)
            .map(|raw| T::decode(&raw.contents))
    }

    /// The first codeset 0 element with identifier `id`, raw.
    pub fn find(&self, id: u8) -> Option<&RawIe> {
        self.0.iter().find(|raw| raw.codeset == 0 && raw.id == id)
    }

    /// Whether a codeset 0 element `id` is present.
    pub fn has(&self, id: u8) -> bool {
        self.find(id).is_some()
    }

    /// Whether Sending complete is present.
    pub fn sending_complete(&self) -> bool {
        self.has(id::SENDING_COMPLETE)
    }

    /// Appends a typed element (codeset 0).
    pub fn push<T: InfoElement>(&mut self, ie: &T) {
        self.0.push(RawIe::from_ie(ie));
    }

    /// Appends a raw element.
    pub fn push_raw(&mut self, raw: RawIe) {
        self.0.push(raw);
    }

    /// The elements, raw.
    pub fn iter(&self) -> std::slice::Iter<'_, RawIe> {
        self.0.iter()
    }

    /// The elements, typed where rivr knows them (for logs and checks).
    pub fn typed(&self) -> impl Iterator<Item = Result<Ie, IeError>> + '_ {
        self.0.iter().map(Ie::from_raw)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Reads the elements after the message type. A locking shift moves
    /// to a codeset for the rest of the message (a shift to a lower
    /// codeset is not allowed, §4.5.3, and is ignored); a non-locking
    /// shift moves only the next element. An element whose length runs
    /// past the end is an error: the message is cut, not just odd.
    pub(crate) fn decode(mut bytes: &[u8]) -> Result<Ies, DecodeError> {
        let mut ies = Vec::new();
        let mut locked = 0u8;
        let mut next: Option<u8> = None;
        while let Some((&first, rest)) = bytes.split_first() {
            if first & 0xF0 == SHIFT {
                let codeset = first & 0x07;
                if first & NON_LOCKING != 0 {
                    next = Some(codeset);
                } else {
                    // A locking shift right after a non-locking one is
                    // taken as the locking shift alone (§4.5.3).
                    next = None;
                    if codeset >= locked {
                        locked = codeset;
                    }
                }
                bytes = rest;
                continue;
            }
            let codeset = next.take().unwrap_or(locked);
            if first & 0x80 != 0 {
                ies.push(RawIe {
                    codeset,
                    id: first,
                    contents: Vec::new(),
                });
                bytes = rest;
                continue;
            }
            let truncated = DecodeError::TruncatedIe { id: first };
            let (&len, rest) = rest.split_first().ok_or(truncated)?;
            let contents = rest.get(..usize::from(len)).ok_or(truncated)?;
            bytes = rest.get(usize::from(len)..).ok_or(truncated)?;
            ies.push(RawIe {
                codeset,
                id: first,
                contents: contents.to_vec(),
            });
        }
        Ok(Ies(ies))
    }

    /// Writes the elements. An element outside codeset 0 gets its own
    /// non-locking shift, so the encoder never has to return to a lower
    /// codeset (a message received with a locking shift comes back with
    /// the same elements in the same codesets, not the same octets).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        for raw in &self.0 {
            if raw.codeset > 7 {
                return Err(EncodeError::BadCodeset(raw.codeset));
            }
            if raw.id & 0xF0 == SHIFT {
                return Err(EncodeError::ShiftAsElement(raw.id));
            }
            if raw.codeset != 0 {
                out.push(SHIFT | NON_LOCKING | raw.codeset);
            }
            out.push(raw.id);
            if raw.is_single_octet() {
                if !raw.contents.is_empty() {
                    return Err(EncodeError::SingleOctetWithContents(raw.id));
                }
                continue;
            }
            let len = u8::try_from(raw.contents.len())
                .map_err(|_| EncodeError::IeTooLong { id: raw.id })?;
            out.push(len);
            out.extend_from_slice(&raw.contents);
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Ies {
    type Item = &'a RawIe;
    type IntoIter = std::slice::Iter<'a, RawIe>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<RawIe> for Ies {
    fn from_iter<I: IntoIterator<Item = RawIe>>(iter: I) -> Self {
        Ies(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(codeset: u8, id: u8, contents: &[u8]) -> RawIe {
        RawIe {
            codeset,
            id,
            contents: contents.to_vec(),
        }
    }

    #[test]
    fn single_octet_and_variable_elements() {
        let ies = Ies::decode(&[0xA1, 0x1E, 0x02, 0x82, 0x88, 0xA0]).unwrap();
        assert_eq!(
            ies.iter().cloned().collect::<Vec<_>>(),
            [
                raw(0, 0xA1, &[]),
                raw(0, 0x1E, &[0x82, 0x88]),
                raw(0, 0xA0, &[])
            ]
        );
        assert!(ies.sending_complete());
        // A zero-length element is framed (its contents are another matter).
        let ies = Ies::decode(&[0x70, 0x00]).unwrap();
        assert_eq!(ies.find(0x70), Some(&raw(0, 0x70, &[])));
    }

    #[test]
    fn locking_and_non_locking_shifts() {
        // Non-locking to 5 for one element, back to 0, then locking to 6
        // for the rest; a locking shift down to 5 is ignored.
        let bytes = [
            0x9D, 0x32, 0x01, 0x81, // codeset 5 party category
            0x1E, 0x02, 0x82, 0x88, // codeset 0
            0x96, 0x7B, 0x01, 0x81, // codeset 6
            0xA1, // single octet, still codeset 6
            0x95, 0x7B, 0x00, // lower: ignored, still 6
            0x98, 0x70, 0x01, 0x81, // non-locking to 0
            0x01, 0x00, // back in 6
        ];
        let ies = Ies::decode(&bytes).unwrap();
        let got: Vec<(u8, u8)> = ies.iter().map(|r| (r.codeset, r.id)).collect();
        assert_eq!(
            got,
            [
                (5, 0x32),
                (0, 0x1E),
                (6, 0x7B),
                (6, 0xA1),
                (6, 0x7B),
                (0, 0x70),
                (6, 0x01)
            ]
        );
        // Codeset 6's 0xA1 is not Sending complete.
        assert!(!ies.sending_complete());
        assert!(ies.has(0x70));
        // Re-encoded with non-locking shifts, it reads back the same.
        let mut out = Vec::new();
        ies.encode(&mut out).unwrap();
        assert_eq!(Ies::decode(&out).unwrap(), ies);
        // A locking shift after a non-locking one: only the locking counts.
        let ies = Ies::decode(&[0x9D, 0x96, 0x01, 0x00, 0x02, 0x00]).unwrap();
        let got: Vec<u8> = ies.iter().map(|r| r.codeset).collect();
        assert_eq!(got, [6, 6]);
    }

    #[test]
    fn truncated_framing() {
        for bytes in [&[0x70][..], &[0x70, 0x03, 0x81, b'1'], &[0xA1, 0x18]] {
            assert!(matches!(
                Ies::decode(bytes),
                Err(DecodeError::TruncatedIe { .. })
            ));
        }
        // A trailing shift with nothing after it is harmless.
        assert_eq!(Ies::decode(&[0x96]).unwrap().len(), 0);
    }

    #[test]
    fn encode_refuses_what_cannot_be_framed() {
        let mut out = Vec::new();
        let too_long: Ies = [raw(0, 0x7E, &[0; 256])].into_iter().collect();
        assert_eq!(
            too_long.encode(&mut out),
            Err(EncodeError::IeTooLong { id: 0x7E })
        );
        let shift: Ies = [raw(0, 0x96, &[])].into_iter().collect();
        assert!(shift.encode(&mut out).is_err());
        let single: Ies = [raw(0, 0xA1, &[1])].into_iter().collect();
        assert!(single.encode(&mut out).is_err());
        let codeset: Ies = [raw(8, 0x01, &[])].into_iter().collect();
        assert!(codeset.encode(&mut out).is_err());
    }
}
