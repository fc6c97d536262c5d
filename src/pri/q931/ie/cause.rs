//! Cause (Q.931 §4.5.12, Q.850 §2): why a call is refused or cleared.
//! The value is rivr's own [`Cause`] — the vocabulary the call layer, CDRs
//! and SIP already share — so this file only knows the element's layout
//! and the location field.

use super::{CodingStandard, IeError, InfoElement, Reader};
use crate::call::cause::Cause;

code_enum! {
    /// Where the cause was generated (octet 3, bits 4–1; Q.850 Table 1).
    Location: 0x0F {
        User = 0,
        /// Private network serving the local user.
        PrivateLocal = 1,
        /// Public network serving the local user.
        PublicLocal = 2,
        Transit = 3,
        /// Public network serving the remote user.
        PublicRemote = 4,
        /// Private network serving the remote user.
        PrivateRemote = 5,
        International = 7,
        /// Network beyond the interworking point.
        BeyondInterworking = 10,
    }
}

/// The Cause element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseIe {
    pub coding: CodingStandard,
    pub location: Location,
    /// Octet 3a (7 bits), which only old equipment sends: 0 is Q.931.
    pub recommendation: Option<u8>,
    pub cause: Cause,
    /// Octet 5 onward, raw: e.g. the missing element's identifier with
    /// cause 96, the message type with 97/98 (Q.850 Table 2).
    pub diagnostics: Vec<u8>,
}

impl CauseIe {
    /// `cause` at `location`, ITU-T coding, no diagnostics.
    pub fn new(cause: Cause, location: Location) -> CauseIe {
        CauseIe {
            coding: CodingStandard::Itu,
            location,
            recommendation: None,
            cause,
            diagnostics: Vec::new(),
        }
    }

    /// The same with diagnostics.
    pub fn with_diagnostics(mut self, diagnostics: &[u8]) -> CauseIe {
        self.diagnostics = diagnostics.to_vec();
        self
    }
}

impl InfoElement for CauseIe {
    const ID: u8 = super::id::CAUSE;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let mut r = Reader::new(contents);
        let o3 = r.u8()?;
        let recommendation = if o3 & 0x80 == 0 {
            Some(r.u8()? & 0x7F)
        } else {
            None
        };
        let value = r.u8()? & 0x7F;
        let cause = Cause::new(value).ok_or(IeError::Invalid("cause value 0"))?;
        Ok(CauseIe {
            coding: CodingStandard::from_bits(o3 >> 5),
            location: Location::from_bits(o3),
            recommendation,
            cause,
            diagnostics: r.rest().to_vec(),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let ext = if self.recommendation.is_some() {
            0
        } else {
            0x80
        };
        out.push(ext | self.coding.bits() << 5 | self.location.bits());
        if let Some(rec) = self.recommendation {
            out.push(0x80 | (rec & 0x7F));
        }
        out.push(0x80 | self.cause.value());
        out.extend_from_slice(&self.diagnostics);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(c: &CauseIe) -> Vec<u8> {
        let mut v = Vec::new();
        c.encode(&mut v);
        v
    }

    #[test]
    fn normal_clearing_from_the_user_and_the_network() {
        let user = CauseIe::new(Cause::NORMAL_CLEARING, Location::User);
        assert_eq!(enc(&user), [0x80, 0x90]);
        let net = CauseIe::new(Cause::USER_BUSY, Location::PublicLocal);
        assert_eq!(enc(&net), [0x82, 0x91]);
        assert_eq!(CauseIe::decode(&[0x82, 0x91]), Ok(net));
    }

    #[test]
    fn recommendation_and_diagnostics() {
        // Cause 96 naming the missing Channel identification (0x18).
        let bytes = [0x02, 0x80, 0xE0, 0x18];
        let c = CauseIe::decode(&bytes).unwrap();
        assert_eq!(c.location, Location::PublicLocal);
        assert_eq!(c.recommendation, Some(0));
        assert_eq!(c.cause.value(), 96);
        assert_eq!(c.diagnostics, [0x18]);
        assert_eq!(enc(&c), bytes);
    }

    #[test]
    fn bad_contents() {
        assert_eq!(CauseIe::decode(&[]), Err(IeError::Truncated));
        assert_eq!(CauseIe::decode(&[0x80]), Err(IeError::Truncated));
        assert_eq!(CauseIe::decode(&[0x00]), Err(IeError::Truncated));
        assert_eq!(
            CauseIe::decode(&[0x80, 0x80]),
            Err(IeError::Invalid("cause value 0"))
        );
    }
}
