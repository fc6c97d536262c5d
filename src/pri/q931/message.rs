//! A Q.931 message on the wire (Q.931 §4.1–4.4): protocol discriminator,
//! call reference, message type, then the information elements
//! ([`Ies`]). Decoding checks the header strictly — a message that fails
//! here is ignored (§5.8.1–5.8.3.1) — and frames the elements; the
//! elements' contents are checked only when read, by the state machine
//! that knows which are mandatory (§5.8.6–5.8.7). Unknown message types
//! decode as [`MessageType::Other`] so the state machine can answer them
//! with STATUS, cause 97 (§5.8.4).

use super::ie::{BearerCapability, CalledNumber, CallingNumber, CauseIe, ChannelId, IeError};
use super::ies::Ies;

/// The protocol discriminator of Q.931 user-network call control.
pub const PROTOCOL_DISCRIMINATOR: u8 = 0x08;

/// The call reference length on a primary rate interface.
pub const PRI_CALL_REF_LEN: u8 = 2;

/// Why octets are not a Q.931 message. Each is "ignore the message" in
/// Q.931 §5.8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Ends before the message type (§5.8.2).
    #[error("Q.931 message too short")]
    TooShort,
    /// Not protocol discriminator 0x08 (§5.8.1): another protocol on
    /// the D-channel (X.25, maintenance).
    #[error("protocol discriminator {0:#04x} is not Q.931")]
    NotQ931(u8),
    /// Call reference length octet with spare bits set or above 2
    /// (§5.8.3.1).
    #[error("call reference length octet {0:#04x} invalid")]
    BadCallRefLength(u8),
    /// An element's length runs past the end of the message.
    #[error("information element {id:#04x} runs past the end of the message")]
    TruncatedIe { id: u8 },
}

/// Why a message could not be encoded (a bug in the caller, never input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("call reference length {0} (0 to 2 allowed)")]
    CallRefLength(u8),
    #[error("call reference value {value:#x} does not fit in {len} octet(s)")]
    CallRefValue { value: u16, len: u8 },
    #[error("information element {id:#04x} contents exceed 255 octets")]
    IeTooLong { id: u8 },
    #[error("codeset {0} (0 to 7 allowed)")]
    BadCodeset(u8),
    #[error("shift {0:#04x} given as an element (shifts are implied by codesets)")]
    ShiftAsElement(u8),
    #[error("single-octet element {0:#04x} with contents")]
    SingleOctetWithContents(u8),
}

/// A call reference (Q.931 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallRef {
    /// The value: 15 bits with two octets, 7 with one; 0 is the global
    /// call reference (RESTART, STATUS about the interface).
    pub value: u16,
    /// The flag bit is 0: the message comes from the side that allocated
    /// the value. We send `true` on calls we originated and `false` on the
    /// peer's; a received message with `true` is about a call the peer
    /// originated.
    pub from_originator: bool,
    /// Octets of value: 2 on a primary rate interface; 1 is accepted (and
    /// answered in kind); 0 is the dummy call reference, which has no
    /// value and no flag (decoded as value 0, `from_originator`).
    pub len: u8,
}

impl CallRef {
    /// A two-octet call reference.
    pub fn new(value: u16, from_originator: bool) -> CallRef {
        CallRef {
            value,
            from_originator,
            len: PRI_CALL_REF_LEN,
        }
    }

    /// The two-octet global call reference.
    pub fn global(from_originator: bool) -> CallRef {
        CallRef::new(0, from_originator)
    }

    /// The dummy call reference (length 0).
    pub fn dummy() -> CallRef {
        CallRef {
            value: 0,
            from_originator: true,
            len: 0,
        }
    }

    pub fn is_global(self) -> bool {
        self.len > 0 && self.value == 0
    }

    pub fn is_dummy(self) -> bool {
        self.len == 0
    }

    /// The same call reference as the other side writes it: a reply
    /// carries the flag opposite to the message it answers.
    pub fn reply(self) -> CallRef {
        if self.is_dummy() {
            return self;
        }
        CallRef {
            from_originator: !self.from_originator,
            ..self
        }
    }

    fn decode(octets: &[u8]) -> CallRef {
        match octets {
            [a, b] => CallRef {
                value: u16::from(a & 0x7F) << 8 | u16::from(*b),
                from_originator: a & 0x80 == 0,
                len: 2,
            },
            [a] => CallRef {
                value: u16::from(a & 0x7F),
                from_originator: a & 0x80 == 0,
                len: 1,
            },
            _ => CallRef::dummy(),
        }
    }

    fn encode(self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let flag = if self.from_originator { 0 } else { 0x80 };
        let bad_value = EncodeError::CallRefValue {
            value: self.value,
            len: self.len,
        };
        match self.len {
            0 => out.push(0),
            1 => {
                let v = u8::try_from(self.value).ok().filter(|v| *v <= 0x7F);
                out.extend([1, flag | v.ok_or(bad_value)?]);
            }
            2 => {
                if self.value > 0x7FFF {
                    return Err(bad_value);
                }
                let [hi, lo] = self.value.to_be_bytes();
                out.extend([2, flag | hi, lo]);
            }
            n => return Err(EncodeError::CallRefLength(n)),
        }
        Ok(())
    }
}

/// Message types (Q.931 Table 4-2) rivr's call control uses; the rest
/// (FACILITY, NOTIFY, SUSPEND, HOLD, USER INFORMATION, …) are `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Alerting,
    CallProceeding,
    Progress,
    Setup,
    Connect,
    SetupAck,
    ConnectAck,
    Disconnect,
    Restart,
    Release,
    RestartAck,
    ReleaseComplete,
    Facility,
    Notify,
    StatusEnquiry,
    Information,
    Status,
    /// Any other octet (never one named above).
    Other(u8),
}

impl MessageType {
    const TABLE: [(MessageType, u8); 17] = [
        (MessageType::Alerting, 0x01),
        (MessageType::CallProceeding, 0x02),
        (MessageType::Progress, 0x03),
        (MessageType::Setup, 0x05),
        (MessageType::Connect, 0x07),
        (MessageType::SetupAck, 0x0D),
        (MessageType::ConnectAck, 0x0F),
        (MessageType::Disconnect, 0x45),
        (MessageType::Restart, 0x46),
        (MessageType::Release, 0x4D),
        (MessageType::RestartAck, 0x4E),
        (MessageType::ReleaseComplete, 0x5A),
        (MessageType::Facility, 0x62),
        (MessageType::Notify, 0x6E),
        (MessageType::StatusEnquiry, 0x75),
        (MessageType::Information, 0x7B),
        (MessageType::Status, 0x7D),
    ];

    pub fn from_u8(octet: u8) -> MessageType {
        Self::TABLE
            .iter()
            .find(|(_, v)| *v == octet)
            .map_or(MessageType::Other(octet), |(t, _)| *t)
    }

    pub fn to_u8(self) -> u8 {
        match self {
            MessageType::Other(v) => v,
            t => Self::TABLE
                .iter()
                .find(|(k, _)| *k == t)
                .map_or(0, |(_, v)| *v),
        }
    }
}

/// A Q.931 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub call_ref: CallRef,
    pub kind: MessageType,
    pub ies: Ies,
}

impl Message {
    /// A message with no elements.
    pub fn new(call_ref: CallRef, kind: MessageType) -> Message {
        Message {
            call_ref,
            kind,
            ies: Ies::new(),
        }
    }

    /// Decodes one message (the contents of one LAPD I-frame or UI-frame).
    /// Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
        let (&pd, rest) = bytes.split_first().ok_or(DecodeError::TooShort)?;
        if pd != PROTOCOL_DISCRIMINATOR {
            return Err(DecodeError::NotQ931(pd));
        }
        let (&cr_len, rest) = rest.split_first().ok_or(DecodeError::TooShort)?;
        if cr_len > PRI_CALL_REF_LEN {
            return Err(DecodeError::BadCallRefLength(cr_len));
        }
        let n = usize::from(cr_len);
        let cr = rest.get(..n).ok_or(DecodeError::TooShort)?;
        let rest = rest.get(n..).ok_or(DecodeError::TooShort)?;
        let (&mt, rest) = rest.split_first().ok_or(DecodeError::TooShort)?;
        Ok(Message {
            call_ref: CallRef::decode(cr),
            kind: MessageType::from_u8(mt),
            ies: Ies::decode(rest)?,
        })
    }

    /// Appends the message to `out`; on error `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_inner(out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_inner(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        out.push(PROTOCOL_DISCRIMINATOR);
        self.call_ref.encode(out)?;
        out.push(self.kind.to_u8());
        self.ies.encode(out)
    }

    /// The message as a new buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    // Typed accessors for the elements the state machines read; each is
    // `None` when absent (cause 96 if mandatory) and `Some(Err)` when its
    // contents are bad (cause 100 if mandatory, else ignore it).

    /// The first Bearer capability, decoded.
    pub fn bearer_capability(&self) -> Option<Result<BearerCapability, IeError>> {
        self.ies.first()
    }

    /// The first Channel identification, decoded.
    pub fn channel_id(&self) -> Option<Result<ChannelId, IeError>> {
        self.ies.first()
    }

    /// The first Cause, decoded.
    pub fn cause(&self) -> Option<Result<CauseIe, IeError>> {
        self.ies.first()
    }

    /// The Called party number, decoded.
    pub fn called_number(&self) -> Option<Result<CalledNumber, IeError>> {
        self.ies.first()
    }

    /// The Calling party number, decoded.
    pub fn calling_number(&self) -> Option<Result<CallingNumber, IeError>> {
        self.ies.first()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_references() {
        let cases: [(&[u8], CallRef); 5] = [
            (&[0x08, 0x02, 0x00, 0x01, 0x05], CallRef::new(1, true)),
            (&[0x08, 0x02, 0xFF, 0xFF, 0x05], CallRef::new(0x7FFF, false)),
            (&[0x08, 0x02, 0x80, 0x00, 0x4E], CallRef::global(false)),
            (
                &[0x08, 0x01, 0x85, 0x01],
                CallRef {
                    value: 5,
                    from_originator: false,
                    len: 1,
                },
            ),
            (&[0x08, 0x00, 0x62], CallRef::dummy()),
        ];
        for (bytes, cr) in cases {
            let m = Message::decode(bytes).unwrap();
            assert_eq!(m.call_ref, cr, "{bytes:02x?}");
            assert_eq!(m.to_bytes().unwrap(), bytes);
        }
        assert!(CallRef::global(true).is_global());
        assert!(!CallRef::dummy().is_global());
        assert_eq!(CallRef::new(7, true).reply(), CallRef::new(7, false));
    }

    #[test]
    fn header_errors() {
        assert_eq!(Message::decode(&[]), Err(DecodeError::TooShort));
        assert_eq!(Message::decode(&[0x08]), Err(DecodeError::TooShort));
        assert_eq!(
            Message::decode(&[0x08, 0x02, 0x00]),
            Err(DecodeError::TooShort)
        );
        assert_eq!(
            Message::decode(&[0x08, 0x02, 0x00, 0x01]),
            Err(DecodeError::TooShort)
        );
        assert_eq!(
            Message::decode(&[0x09, 0x02, 0x00, 0x01, 0x05]),
            Err(DecodeError::NotQ931(0x09))
        );
        assert_eq!(
            Message::decode(&[0x08, 0x03, 0x00, 0x00, 0x01, 0x05]),
            Err(DecodeError::BadCallRefLength(3))
        );
        assert_eq!(
            Message::decode(&[0x08, 0x12, 0x00, 0x01, 0x05]),
            Err(DecodeError::BadCallRefLength(0x12))
        );
    }

    #[test]
    fn message_types() {
        for v in 0..=255u8 {
            let t = MessageType::from_u8(v);
            assert_eq!(t.to_u8(), v);
        }
        assert_eq!(MessageType::from_u8(0x5A), MessageType::ReleaseComplete);
        assert_eq!(MessageType::from_u8(0x25), MessageType::Other(0x25));
        // An unknown type still decodes, elements and all.
        let m = Message::decode(&[0x08, 0x02, 0x00, 0x01, 0x25, 0x08, 0x02, 0x80, 0x90]).unwrap();
        assert_eq!(m.kind, MessageType::Other(0x25));
        assert_eq!(m.ies.len(), 1);
    }

    #[test]
    fn encode_errors_leave_the_buffer_alone() {
        let mut out = vec![0xAA];
        let bad = [
            CallRef {
                value: 0x8000,
                from_originator: true,
                len: 2,
            },
            CallRef {
                value: 0x80,
                from_originator: true,
                len: 1,
            },
            CallRef {
                value: 1,
                from_originator: true,
                len: 3,
            },
        ];
        for cr in bad {
            assert!(Message::new(cr, MessageType::Setup)
                .encode(&mut out)
                .is_err());
            assert_eq!(out, [0xAA]);
        }
    }
}
