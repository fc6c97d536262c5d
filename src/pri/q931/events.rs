//! What the layer above exchanges with call control: the id of a call,
//! the request for an outgoing call, the events reported, and the errors
//! of its requests (each with the Q.850 cause it means for the call).

use super::ie::{
    BearerCapability, CallStateValue, CalledNumber, CallingNumber, Progress, TransferCapability,
};
use super::{ChannelSel, Ia5};
use crate::call::cause::Cause;

/// A call on this D-channel, as the layer above names it. Allocated by
/// [`super::CallControl`], never reused while it runs; unrelated to the
/// Q.931 call reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub(crate) u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "q931-{}", self.0)
    }
}

/// A call this side places.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    pub called: CalledNumber,
    pub calling: Option<CallingNumber>,
    /// Sent as Display on NI-2 only (see [`super::Variant`]).
    pub calling_name: Option<Ia5>,
    /// `Any` lets this side hunt: the user side offers the channel it
    /// found as preferred, the network side as exclusive.
    pub channel: ChannelSel,
    /// Speech or 3.1 kHz audio, in the span's law.
    pub capability: TransferCapability,
    /// The called number is complete (en-bloc sending).
    pub sending_complete: bool,
    pub progress: Option<Progress>,
}

impl OutgoingCall {
    /// A speech call to `called`, en-bloc, on any channel.
    pub fn new(called: CalledNumber) -> OutgoingCall {
        OutgoingCall {
            called,
            calling: None,
            calling_name: None,
            channel: ChannelSel::Any,
            capability: TransferCapability::Speech,
            sending_complete: true,
            progress: None,
        }
    }
}

/// A SETUP from the peer that call control accepted: the channel is
/// booked and the layer above answers with `proceeding`, `alerting`,
/// `connect`, `setup_ack` (to collect more digits) or `reject`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    pub call: CallId,
    pub channel: u8,
    /// A voice capability (anything else was refused with cause 65); its
    /// law may differ from the span's.
    pub bearer: BearerCapability,
    /// Absent, or incomplete, when the caller sends digits in overlap.
    pub called: Option<CalledNumber>,
    pub calling: Option<CallingNumber>,
    /// NI-2's calling name (a Display element), when sent.
    pub calling_name: Option<Ia5>,
    pub sending_complete: bool,
    pub progress: Option<Progress>,
}

/// What call control reports, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// A new call from the peer.
    Incoming(Box<IncomingCall>),
    /// More called digits in overlap receiving. `complete` is set by
    /// Sending complete, or by T302 running out with no digits (the
    /// number collected so far is all there will be, Q.931 §5.2.4).
    Digits {
        call: CallId,
        digits: Ia5,
        complete: bool,
    },
    /// The peer answered our SETUP with SETUP ACKNOWLEDGE: it wants
    /// more digits (`information`).
    SetupAcknowledged {
        call: CallId,
        channel: Option<u8>,
    },
    Proceeding {
        call: CallId,
        channel: Option<u8>,
    },
    Alerting {
        call: CallId,
        channel: Option<u8>,
        /// Ringback is played in-band (progress indicator 1 or 8).
        inband: bool,
    },
    Progress {
        call: CallId,
        inband: bool,
    },
    /// The call is answered and active on `channel`.
    Connected {
        call: CallId,
        channel: u8,
    },
    /// The peer sent DISCONNECT: stop the media. Call control answers
    /// with RELEASE by itself, and `Released` follows.
    Disconnected {
        call: CallId,
        cause: Cause,
        inband: bool,
    },
    /// The call is over and its channel free: exactly once per call.
    /// `cause` is the first clearing cause of the call, whoever sent it.
    Released {
        call: CallId,
        cause: Cause,
    },
    /// The channels were reset by a RESTART (the peer's, or ours now
    /// acknowledged); any call on them was released.
    ChannelsRestarted {
        channels: Vec<u8>,
    },
    /// Our RESTART was never acknowledged; the channels are back in
    /// service anyway (a peer that ignores RESTART still takes calls).
    RestartFailed {
        channels: Vec<u8>,
    },
}

impl CallEvent {
    /// The call the event is about (`None` for the restart reports).
    pub fn call(&self) -> Option<CallId> {
        match self {
            CallEvent::Incoming(i) => Some(i.call),
            CallEvent::Digits { call, .. }
            | CallEvent::SetupAcknowledged { call, .. }
            | CallEvent::Proceeding { call, .. }
            | CallEvent::Alerting { call, .. }
            | CallEvent::Progress { call, .. }
            | CallEvent::Connected { call, .. }
            | CallEvent::Disconnected { call, .. }
            | CallEvent::Released { call, .. } => Some(*call),
            CallEvent::ChannelsRestarted { .. } | CallEvent::RestartFailed { .. } => None,
        }
    }
}

/// Why `setup` placed no call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("the D-channel's data link is down")]
    LinkDown,
    #[error("no B-channel free")]
    NoChannel,
    #[error("B-channel {0} is busy or out of service")]
    ChannelBusy(u8),
    #[error("B-channel {0} is not on this span")]
    NoSuchChannel(u8),
    #[error("the SETUP does not fit in a message (an element over 255 octets)")]
    TooLong,
}

impl SetupError {
    /// The Q.850 cause the failure means for the call.
    pub fn cause(self) -> Cause {
        match self {
            SetupError::LinkDown => Cause::NETWORK_OUT_OF_ORDER,
            SetupError::NoChannel => Cause::NO_CIRCUIT_AVAILABLE,
            SetupError::ChannelBusy(_) => Cause::REQUESTED_CHANNEL_UNAVAILABLE,
            SetupError::NoSuchChannel(_) => Cause::CHANNEL_DOES_NOT_EXIST,
            SetupError::TooLong => Cause::INVALID_NUMBER_FORMAT,
        }
    }
}

/// Why a request about a call was refused (nothing was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No such call (or it was already released).
    #[error("no such call")]
    UnknownCall,
    /// The request makes no sense in the call's state (e.g. `alerting`
    /// on a call we placed).
    #[error("not allowed in call state {0:?}")]
    WrongState(CallStateValue),
    #[error("B-channel {0} is not on this span")]
    NoSuchChannel(u8),
    #[error("the message does not fit (an element over 255 octets)")]
    TooLong,
}
