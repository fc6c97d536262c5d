//! Typed Q.931 information elements: the codec of each element's contents
//! (the octets after its identifier and length), one file per family.
//! Framing, codesets and the list of a message's elements belong to
//! [`super::Ies`]; this module never sees a whole message.
//!
//! Every decoder takes untrusted bytes and returns an [`IeError`] instead of
//! panicking; the call state machine turns that error into cause 100
//! (invalid contents) for a mandatory element and ignores it for an
//! optional one (Q.931 §5.8.6.2, §5.8.7.2). Encoders are infallible: bit
//! fields are masked to their width (documented on each field), text is an
//! [`Ia5`] checked when it was made, and the one remaining limit — 255
//! octets of contents — is checked when the message is encoded.

/// A code table carried in a bit field: named values plus `Other` for the
/// rest, so any value on the wire decodes and encodes back unchanged.
/// `Other` never holds a value the table names (`from_bits` is canonical).
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident : $mask:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value the table does not name.
            Other(u8),
        }

        impl $name {
            /// The value of the field's bits (masked to the field).
            pub fn from_bits(bits: u8) -> Self {
                match bits & $mask {
                    $( $value => Self::$variant, )*
                    other => Self::Other(other),
                }
            }

            /// The field's bits.
            pub fn bits(self) -> u8 {
                match self {
                    $( Self::$variant => $value, )*
                    Self::Other(v) => v & $mask,
                }
            }
        }
    };
}

mod bearer;
mod cause;
mod channel;
mod misc;
mod number;

pub use bearer::{BearerCapability, Layer1, TransferCapability, TransferMode, TransferRate};
pub use cause::{CauseIe, Location};
pub use channel::{
    ChannelId, ChannelList, ChannelNumbers, ChannelSel, ChannelSelection, ChannelUnit,
};
pub use misc::{
    CallState, CallStateValue, Display, Keypad, Progress, ProgressDescription, RestartClass,
    RestartIndicator,
};
pub use number::{
    CalledNumber, CallingNumber, ConnectedNumber, NumberingPlan, Presentation,
    PresentationIndicator, Screening, TypeOfNumber,
};

use super::ies::RawIe;

/// Identifiers of the codeset 0 elements rivr knows (Q.931 Table 4-3),
/// single-octet ones included.
pub mod id {
    pub const BEARER_CAPABILITY: u8 = 0x04;
    pub const CAUSE: u8 = 0x08;
    pub const CALL_STATE: u8 = 0x14;
    pub const CHANNEL_ID: u8 = 0x18;
    pub const FACILITY: u8 = 0x1C;
    pub const PROGRESS: u8 = 0x1E;
    pub const NOTIFICATION: u8 = 0x27;
    pub const DISPLAY: u8 = 0x28;
    pub const DATE_TIME: u8 = 0x29;
    pub const KEYPAD: u8 = 0x2C;
    pub const SIGNAL: u8 = 0x34;
    pub const CONNECTED_NUMBER: u8 = 0x4C;
    pub const CALLING_NUMBER: u8 = 0x6C;
    pub const CALLING_SUBADDRESS: u8 = 0x6D;
    pub const CALLED_NUMBER: u8 = 0x70;
    pub const CALLED_SUBADDRESS: u8 = 0x71;
    pub const REDIRECTING_NUMBER: u8 = 0x74;
    pub const TRANSIT_NETWORK: u8 = 0x78;
    pub const RESTART_INDICATOR: u8 = 0x79;
    pub const LOW_LAYER_COMPAT: u8 = 0x7C;
    pub const HIGH_LAYER_COMPAT: u8 = 0x7D;
    pub const USER_USER: u8 = 0x7E;
    /// Single-octet: more data (USER INFORMATION).
    pub const MORE_DATA: u8 = 0xA0;
    /// Single-octet: the called number is complete (overlap sending ends).
    pub const SENDING_COMPLETE: u8 = 0xA1;
}

/// Whether an unrecognised codeset 0 element must be understood: bits 8–5
/// of its identifier are 0000 (Q.931 §4.5.1), so a receiver that does not
/// know it treats the message as missing a mandatory element (§5.8.7.1).
pub fn comprehension_required(codeset: u8, id: u8) -> bool {
    codeset == 0 && id & 0xF0 == 0
}

/// An element's contents that could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IeError {
    /// The contents end before an octet the element requires.
    #[error("information element ends before a mandatory octet")]
    Truncated,
    /// A field holds a value the element does not allow.
    #[error("invalid information element contents: {0}")]
    Invalid(&'static str),
}

/// An element's contents as a type: decode from the octets after the
/// length, encode them back.
pub trait InfoElement: Sized {
    /// The element's identifier in codeset 0.
    const ID: u8;
    /// Decodes the contents (never panics).
    fn decode(contents: &[u8]) -> Result<Self, IeError>;
    /// Appends the contents.
    fn encode(&self, out: &mut Vec<u8>);
}

/// The coding standard of an element (bits 7–6 of its first octet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodingStandard {
    /// ITU-T (Q.931).
    Itu,
    /// ISO/IEC.
    Iso,
    /// National standard (ANSI on NI-2 spans).
    National,
    /// Specific to the network on either side of the interface.
    Network,
}

impl CodingStandard {
    /// From the two bits (already shifted down).
    pub fn from_bits(bits: u8) -> Self {
        match bits & 0x03 {
            0 => Self::Itu,
            1 => Self::Iso,
            2 => Self::National,
            _ => Self::Network,
        }
    }

    /// The two bits (not shifted).
    pub fn bits(self) -> u8 {
        match self {
            Self::Itu => 0,
            Self::Iso => 1,
            Self::National => 2,
            Self::Network => 3,
        }
    }
}

/// Printable IA5 text (0x20–0x7E): the digits of a number, a display or
/// keypad string. Control characters and octets with bit 8 set are
/// refused, so text from the wire is safe in a log line, a CDR or a
/// script variable; 255 octets at most (no element could hold more).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Ia5(String);

impl Ia5 {
    /// The longest text any element could carry.
    pub const MAX_LEN: usize = 255;

    /// Checks `text`.
    pub fn new(text: &str) -> Result<Ia5, IeError> {
        Ia5::from_bytes(text.as_bytes())
    }

    /// Checks octets from the wire.
    pub fn from_bytes(bytes: &[u8]) -> Result<Ia5, IeError> {
        if bytes.len() > Self::MAX_LEN {
            return Err(IeError::Invalid("IA5 text too long"));
        }
        if !bytes.iter().all(|b| (0x20..=0x7E).contains(b)) {
            return Err(IeError::Invalid("not printable IA5"));
        }
        // Printable ASCII is UTF-8; the lossy path is never taken.
        Ok(Ia5(String::from_utf8_lossy(bytes).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Ia5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a contents slice octet by octet; running out is
/// [`IeError::Truncated`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    fn u8(&mut self) -> Result<u8, IeError> {
        let (&b, rest) = self.0.split_first().ok_or(IeError::Truncated)?;
        self.0 = rest;
        Ok(b)
    }

    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Octets up to and including the next one with the extension bit
    /// (bit 8) set: an extended octet group (Q.931 §4.5.1). Ends early,
    /// without error, if the contents end first.
    fn ext_group(&mut self) -> &'a [u8] {
        let n = self
            .0
            .iter()
            .position(|b| b & 0x80 != 0)
            .map_or(self.0.len(), |i| i + 1);
        let (group, rest) = self.0.split_at(n);
        self.0 = rest;
        group
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Every element rivr types, for logs and for checking a whole message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ie {
    BearerCapability(BearerCapability),
    Cause(CauseIe),
    CallState(CallState),
    ChannelId(ChannelId),
    Progress(Progress),
    Display(Display),
    Keypad(Keypad),
    ConnectedNumber(ConnectedNumber),
    CallingNumber(CallingNumber),
    CalledNumber(CalledNumber),
    RestartIndicator(RestartIndicator),
    SendingComplete,
    MoreData,
    /// Any other element (another codeset, or one rivr does not type).
    Unknown(RawIe),
}

impl Ie {
    /// Types a raw element; elements rivr does not know become
    /// [`Ie::Unknown`], ones it knows but cannot decode an error.
    pub fn from_raw(raw: &RawIe) -> Result<Ie, IeError> {
        fn typed<T: InfoElement>(raw: &RawIe, f: fn(T) -> Ie) -> Result<Ie, IeError> {
            T::decode(&raw.contents).map(f)
        }
        if raw.codeset != 0 {
            return Ok(Ie::Unknown(raw.clone()));
        }
        match raw.id {
            id::BEARER_CAPABILITY => typed(raw, Ie::BearerCapability),
            id::CAUSE => typed(raw, Ie::Cause),
            id::CALL_STATE => typed(raw, Ie::CallState),
            id::CHANNEL_ID => typed(raw, Ie::ChannelId),
            id::PROGRESS => typed(raw, Ie::Progress),
            id::DISPLAY => typed(raw, Ie::Display),
            id::KEYPAD => typed(raw, Ie::Keypad),
            id::CONNECTED_NUMBER => typed(raw, Ie::ConnectedNumber),
            id::CALLING_NUMBER => typed(raw, Ie::CallingNumber),
            id::CALLED_NUMBER => typed(raw, Ie::CalledNumber),
            id::RESTART_INDICATOR => typed(raw, Ie::RestartIndicator),
            id::SENDING_COMPLETE => Ok(Ie::SendingComplete),
            id::MORE_DATA => Ok(Ie::MoreData),
            _ => Ok(Ie::Unknown(raw.clone())),
        }
    }

    /// The raw element this encodes to.
    pub fn to_raw(&self) -> RawIe {
        fn raw<T: InfoElement>(ie: &T) -> RawIe {
            RawIe::from_ie(ie)
        }
        match self {
            Ie::BearerCapability(v) => raw(v),
            Ie::Cause(v) => raw(v),
            Ie::CallState(v) => raw(v),
            Ie::ChannelId(v) => raw(v),
            Ie::Progress(v) => raw(v),
            Ie::Display(v) => raw(v),
            Ie::Keypad(v) => raw(v),
            Ie::ConnectedNumber(v) => raw(v),
            Ie::CallingNumber(v) => raw(v),
            Ie::CalledNumber(v) => raw(v),
            Ie::RestartIndicator(v) => raw(v),
            Ie::SendingComplete => RawIe::single(id::SENDING_COMPLETE),
            Ie::MoreData => RawIe::single(id::MORE_DATA),
            Ie::Unknown(r) => r.clone(),
        }
    }
}
