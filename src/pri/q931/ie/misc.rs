//! The small elements: Progress indicator (§4.5.23), Restart indicator
//! (§4.5.25), Call state (§4.5.7), Display (§4.5.16) and Keypad facility
//! (§4.5.18).

use super::{CodingStandard, Ia5, IeError, InfoElement, Location, Reader};

code_enum! {
    /// Progress description (octet 4, bits 7–1).
    ProgressDescription: 0x7F {
        /// Call is not end-to-end ISDN; further progress information may
        /// be available in-band.
        NotEndToEndIsdn = 1,
        DestinationNonIsdn = 2,
        OriginationNonIsdn = 3,
        ReturnedToIsdn = 4,
        /// Interworking has occurred and has resulted in a telecom
        /// service change.
        ServiceChange = 5,
        /// In-band information or an appropriate pattern is now available:
        /// listen to the B-channel (ringback, announcements).
        InbandAvailable = 8,
    }
}

/// The Progress indicator element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Progress {
    pub coding: CodingStandard,
    pub location: Location,
    pub description: ProgressDescription,
}

impl Progress {
    /// ITU-T coding.
    pub fn new(location: Location, description: ProgressDescription) -> Progress {
        Progress {
            coding: CodingStandard::Itu,
            location,
            description,
        }
    }
}

impl InfoElement for Progress {
    const ID: u8 = super::id::PROGRESS;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let mut r = Reader::new(contents);
        let o3 = r.u8()?;
        let o4 = r.u8()?;
        Ok(Progress {
            coding: CodingStandard::from_bits(o3 >> 5),
            location: Location::from_bits(o3),
            description: ProgressDescription::from_bits(o4),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(0x80 | self.coding.bits() << 5 | self.location.bits());
        out.push(0x80 | self.description.bits());
    }
}

code_enum! {
    /// Restart class (octet 3, bits 3–1).
    RestartClass: 0x07 {
        /// The channels in the Channel identification element.
        Indicated = 0,
        /// The whole interface (the one carrying the D-channel, or the one
        /// a Channel identification element names).
        SingleInterface = 6,
        /// Every interface the D-channel controls.
        AllInterfaces = 7,
    }
}

/// The Restart indicator element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RestartIndicator {
    pub class: RestartClass,
}

impl InfoElement for RestartIndicator {
    const ID: u8 = super::id::RESTART_INDICATOR;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let o3 = Reader::new(contents).u8()?;
        Ok(RestartIndicator {
            class: RestartClass::from_bits(o3),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(0x80 | self.class.bits());
    }
}

code_enum! {
    /// Call state value (bits 6–1): the user side's U-states and the
    /// network side's N-states share the numbers (Q.931 Table 4-6).
    CallStateValue: 0x3F {
        Null = 0,
        CallInitiated = 1,
        OverlapSending = 2,
        OutgoingProceeding = 3,
        CallDelivered = 4,
        CallPresent = 6,
        CallReceived = 7,
        ConnectRequest = 8,
        IncomingProceeding = 9,
        Active = 10,
        DisconnectRequest = 11,
        DisconnectIndication = 12,
        SuspendRequest = 15,
        ResumeRequest = 17,
        ReleaseRequest = 19,
        /// N22, network side only.
        CallAbort = 22,
        OverlapReceiving = 25,
        /// Global call reference: REST 1.
        RestartRequest = 61,
        /// Global call reference: REST 2.
        Restart = 62,
    }
}

/// The Call state element (its one octet has no extension bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallState {
    pub coding: CodingStandard,
    pub state: CallStateValue,
}

impl CallState {
    /// ITU-T coding.
    pub fn new(state: CallStateValue) -> CallState {
        CallState {
            coding: CodingStandard::Itu,
            state,
        }
    }
}

impl InfoElement for CallState {
    const ID: u8 = super::id::CALL_STATE;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let o3 = Reader::new(contents).u8()?;
        Ok(CallState {
            coding: CodingStandard::from_bits(o3 >> 6),
            state: CallStateValue::from_bits(o3),
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.coding.bits() << 6 | self.state.bits());
    }
}

/// The Display element: text for the user's screen. NI-2 switches use it
/// for the calling name; some put a display type octet (bit 8 set, e.g.
/// 0xB1) before the text, which is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Display {
    /// The leading octet with bit 8 set, if there was one (sent with bit 8
    /// set whatever its value here).
    pub info: Option<u8>,
    pub text: Ia5,
}

impl Display {
    /// Plain Q.931 display text.
    pub fn new(text: Ia5) -> Display {
        Display { info: None, text }
    }
}

impl InfoElement for Display {
    const ID: u8 = super::id::DISPLAY;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        let (info, text) = match contents.split_first() {
            Some((&first, rest)) if first & 0x80 != 0 => (Some(first), rest),
            _ => (None, contents),
        };
        Ok(Display {
            info,
            text: Ia5::from_bytes(text)?,
        })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(info) = self.info {
            out.push(0x80 | info);
        }
        out.extend_from_slice(self.text.as_bytes());
    }
}

/// The Keypad facility element: digits typed during the call or as
/// overlap sending (some networks use it instead of the called number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keypad(pub Ia5);

impl InfoElement for Keypad {
    const ID: u8 = super::id::KEYPAD;

    fn decode(contents: &[u8]) -> Result<Self, IeError> {
        Ia5::from_bytes(contents).map(Keypad)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.as_bytes());
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
    fn progress() {
        let p = Progress::new(Location::PublicLocal, ProgressDescription::InbandAvailable);
        assert_eq!(enc(&p), [0x82, 0x88]);
        assert_eq!(Progress::decode(&[0x82, 0x88]), Ok(p));
        let p = Progress::decode(&[0xC0, 0x83]).unwrap();
        assert_eq!(p.coding, CodingStandard::National);
        assert_eq!(p.description, ProgressDescription::OriginationNonIsdn);
        assert_eq!(Progress::decode(&[0x82]), Err(IeError::Truncated));
    }

    #[test]
    fn restart_indicator_and_call_state() {
        for (class, byte) in [
            (RestartClass::Indicated, 0x80),
            (RestartClass::SingleInterface, 0x86),
            (RestartClass::AllInterfaces, 0x87),
        ] {
            let ri = RestartIndicator { class };
            assert_eq!(enc(&ri), [byte]);
            assert_eq!(RestartIndicator::decode(&[byte]), Ok(ri));
        }
        assert_eq!(RestartIndicator::decode(&[]), Err(IeError::Truncated));
        let cs = CallState::new(CallStateValue::Active);
        assert_eq!(enc(&cs), [0x0A]);
        assert_eq!(
            CallState::decode(&[0x3D]).unwrap().state,
            CallStateValue::RestartRequest
        );
        assert_eq!(
            CallState::decode(&[0x19]).unwrap().state,
            CallStateValue::OverlapReceiving
        );
    }

    #[test]
    fn display_with_and_without_type_octet() {
        let d = Display::decode(b"\xB1Jane Doe").unwrap();
        assert_eq!(d.info, Some(0xB1));
        assert_eq!(d.text.as_str(), "Jane Doe");
        assert_eq!(enc(&d), b"\xB1Jane Doe");
        let d = Display::decode(b"Jane").unwrap();
        assert_eq!(d, Display::new(Ia5::new("Jane").unwrap()));
        assert!(Display::decode(b"\xB1Ja\x1bne").is_err());
        assert_eq!(Keypad::decode(b"123#").unwrap().0.as_str(), "123#");
    }
}
