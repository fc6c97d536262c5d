//! Bounded readers and writers for SMPP field types: integers, C-Octet
//! strings with their specified maximum sizes, octet strings and TLVs.
//! Every read is checked; running past the end is an error, never a panic.

use super::PduError;

/// A cursor over one PDU body that never reads past its end.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, PduError> {
        let b = *self.buf.get(self.pos).ok_or(PduError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, PduError> {
        let s = self.bytes(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], PduError> {
        let end = self.pos.checked_add(n).ok_or(PduError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(PduError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// A C-Octet string of at most `max` octets including its NUL.
    pub(crate) fn cstr(&mut self, max: usize) -> Result<String, PduError> {
        let rest = self.buf.get(self.pos..).ok_or(PduError::Truncated)?;
        let nul = rest
            .iter()
            .take(max)
            .position(|&b| b == 0)
            .ok_or(PduError::BadCString { max })?;
        let s = String::from_utf8_lossy(rest.get(..nul).unwrap_or(&[])).into_owned();
        self.pos += nul + 1;
        Ok(s)
    }
}

/// Appends a C-Octet string, refusing one longer than the field allows.
pub(crate) fn put_cstr(out: &mut Vec<u8>, s: &str, max: usize) -> Result<(), PduError> {
    if s.len() >= max || s.as_bytes().contains(&0) {
        return Err(PduError::FieldTooLong { max });
    }
    out.extend_from_slice(s.as_bytes());
    out.push(0);
    Ok(())
}

/// An optional parameter (tag, value) kept raw so unknown ones pass through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tlv {
    pub tag: u16,
    pub value: Vec<u8>,
}

pub(crate) fn read_tlvs(r: &mut Reader<'_>) -> Result<Vec<Tlv>, PduError> {
    let mut tlvs = Vec::new();
    while r.remaining() > 0 {
        let tag = r.u16()?;
        let len = r.u16()?;
        let value = r.bytes(usize::from(len))?.to_vec();
        tlvs.push(Tlv { tag, value });
    }
    Ok(tlvs)
}

pub(crate) fn put_tlvs(out: &mut Vec<u8>, tlvs: &[Tlv]) -> Result<(), PduError> {
    for t in tlvs {
        let len = u16::try_from(t.value.len()).map_err(|_| PduError::FieldTooLong {
            max: usize::from(u16::MAX),
        })?;
        out.extend_from_slice(&t.tag.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&t.value);
    }
    Ok(())
}
