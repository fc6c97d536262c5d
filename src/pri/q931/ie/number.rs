//! Party numbers (Q.931 §4.5.8, §4.5.10; Q.951 for the connected number):
//! type of number, numbering plan, for the calling and connected number
//! the presentation/screening octet 3a, then the digits in IA5.

use super::{Ia5, IeError, InfoElement, Reader};

code_enum! {
    /// Type of number (octet 3, bits 7–5).
    TypeOfNumber: 0x07 {
        Unknown = 0,
        International = 1,
        National = 2,
        NetworkSpecific = 3,
        Subscriber = 4,
        Abbreviated = 6,
    }
}

code_enum! {
    /// Numbering plan identification (octet 3, bits 4–1).
    NumberingPlan: 0x0F {
        Unknown = 0,
        /// ISDN/telephony, E.164.
        Isdn = 1,
        Data = 3,
        Telex = 4,
        National = 8,
        Private = 9,
    }
}

code_enum! {
    /// Presentation indicator (octet 3a, bits 7–6).
    PresentationIndicator: 0x03 {
        Allowed = 0,
        Restricted = 1,
        NotAvailable = 2,
    }
}

code_enum! {
    /// Screening indicator (octet 3a, bits 2–1).
    Screening: 0x03 {
        UserNotScreened = 0,
        UserVerifiedPassed = 1,
        UserVerifiedFailed = 2,
        Network = 3,
    }
}

/// Octet 3a of the calling and connected numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Presentation {
    pub indicator: PresentationIndicator,
    pub screening: Screening,
}

/// The Called party number element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalledNumber {
    pub ton: TypeOfNumber,
    pub plan: NumberingPlan,
    /// May be empty in a SETUP that starts overlap sending.
    pub digits: Ia5,
}

/// The Calling party number element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingNumber {
    pub ton: TypeOfNumber,
    pub plan: NumberingPlan,
    /// Octet 3a; absent means presentation allowed, user-provided, not
    /// screened (Q.931 Figure 4-16, note 3).
    pub presentation: Option<Presentation>,
    pub digits: Ia5,
}

/// The Connected number element (Q.951, COLP): coded as a calling number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedNumber(pub CallingNumber);

impl CalledNumber {
    /// A called number; fails unless `digits` is printable IA5.
    pub fn new(ton: TypeOfNumber, plan: NumberingPlan, digits: &str) -> Result<Self, IeError> {
        Ok(CalledNumber {
            ton,
            plan,
            digits: Ia5::new(digits)?,
        })
    }
}

impl CallingNumber {
    /// A calling number with an explicit octet 3a.
    pub fn new(
        ton: TypeOfNumber,
        plan: NumberingPlan,
        presentation: Option<Presentation>,
        digits: &str,
    ) -> Result<Self, IeError> {
        Ok(CallingNumber {
            ton,
            plan,
            presentation,
            digits: Ia5::new(digits)?,
        })
    }

    /// Whether the number may be shown to the called party.
    pub fn presentation_allowed(&self) -> bool {
        self.presentation
            .is_none_or(|p| p.indicator == PresentationIndicator::Allowed)
    }
}

fn type_octet(ton: TypeOfNumber, plan: NumberingPlan) -> u8 {
    ton.bits() << 4 | plan.bits()
}

impl InfoElement for CalledNumber {
    const ID: u8 = super::id::CALLED_NUMBER;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let mut r = Reader::new(contents);
        let o3 = r.u8()?;
        if o3 & 0x80 == 0 && r.peek().is_some_and(|b| b & 0x80 != 0) {
            // The called number has no octet 3a; tolerate one (digits
            // never have bit 8 set, so they cannot be taken for it).
            r.u8()?;
        }
        Ok(CalledNumber {
            ton: TypeOfNumber::from_bits(o3 >> 4),
            plan: NumberingPlan::from_bits(o3),
            digits: Ia5::from_bytes(r.rest())?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(0x80 | type_octet(self.ton, self.plan));
        out.extend_from_slice(self.digits.as_bytes());
    }
}

impl InfoElement for CallingNumber {
    const ID: u8 = super::id::CALLING_NUMBER;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let mut r = Reader::new(contents);
        let o3 = r.u8()?;
        let presentation = if o3 & 0x80 == 0 {
            let o3a = r.u8()?;
            Some(Presentation {
                indicator: PresentationIndicator::from_bits(o3a >> 5),
                screening: Screening::from_bits(o3a),
            })
        } else {
            None
        };
        Ok(CallingNumber {
            ton: TypeOfNumber::from_bits(o3 >> 4),
            plan: NumberingPlan::from_bits(o3),
            presentation,
            digits: Ia5::from_bytes(r.rest())?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self.presentation {
            None => out.push(0x80 | type_octet(self.ton, self.plan)),
            Some(p) => {
                out.push(type_octet(self.ton, self.plan));
                out.push(0x80 | p.indicator.bits() << 5 | p.screening.bits());
            }
        }
        out.extend_from_slice(self.digits.as_bytes());
    }
}

impl InfoElement for ConnectedNumber {
    const ID: u8 = super::id::CONNECTED_NUMBER;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        CallingNumber::decode(contents).map(ConnectedNumber)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<T: InfoElement>(ie: &T) -> Vec<u8> {
        let mut v = Vec::new();
        ie.encode(&mut v);
        v
    }

    #[test]
    fn called_number() {
        let n = CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "5551234").unwrap();
        assert_eq!(enc(&n), b"\x815551234");
        assert_eq!(CalledNumber::decode(b"\x815551234"), Ok(n));
        let n = CalledNumber::decode(&[0xA1]).unwrap();
        assert_eq!(n.ton, TypeOfNumber::National);
        assert!(n.digits.is_empty());
    }

    #[test]
    fn calling_number_with_and_without_octet_3a() {
        let n = CallingNumber::new(
            TypeOfNumber::National,
            NumberingPlan::Isdn,
            Some(Presentation {
                indicator: PresentationIndicator::Restricted,
                screening: Screening::Network,
            }),
            "2125551234",
        )
        .unwrap();
        assert_eq!(enc(&n), b"\x21\xA32125551234");
        assert!(!n.presentation_allowed());
        assert_eq!(CallingNumber::decode(&enc(&n)), Ok(n));
        let n = CallingNumber::decode(b"\x911234").unwrap();
        assert_eq!(n.ton, TypeOfNumber::International);
        assert_eq!(n.presentation, None);
        assert!(n.presentation_allowed());
        assert_eq!(n.digits.as_str(), "1234");
    }

    #[test]
    fn bad_numbers() {
        assert_eq!(CalledNumber::decode(&[]), Err(IeError::Truncated));
        assert_eq!(CallingNumber::decode(&[0x21]), Err(IeError::Truncated));
        assert!(matches!(
            CalledNumber::decode(&[0x81, b'1', 0xB2]),
            Err(IeError::Invalid(_))
        ));
        assert!(matches!(
            CalledNumber::decode(&[0x81, b'1', 0x00]),
            Err(IeError::Invalid(_))
        ));
        assert!(CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, "12\n").is_err());
    }
}
