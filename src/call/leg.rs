//! The one interface between the call layer and a transport (SIP today,
//! an ISDN PRI B-channel next): the commands the call layer gives a leg and
//! the events a leg reports. Nothing here is SIP- or Q.931-shaped beyond two
//! optional protocol details a CDR wants to show (the SIP status and reason
//! phrase); causes are Q.850 values (`call::cause`).

use std::time::Duration;

use crate::call::cause::Cause;
use crate::call::outcome::Unanswered;

/// Which way a leg was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

/// A new call offered by a transport.
#[derive(Debug, Clone, Default)]
pub struct IncomingLeg {
    /// The caller (a SIP From URI, a Q.931 calling number).
    pub from: String,
    /// The dialed number (Request-URI user, Q.931 called number).
    pub to: String,
    /// The trunk it arrived on, when the transport knows.
    pub trunk: Option<String>,
    /// The transport's name for the call, for correlation in CDRs and logs
    /// (the SIP Call-ID; for PRI span and call reference).
    pub external_id: String,
    /// Which transport (`"sip"`, `"pri"`).
    pub transport: &'static str,
    /// Headers the script can read as `call.headers` (name, value), in order.
    pub headers: Vec<(String, String)>,
}

/// What the call layer asks of a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegCommand {
    /// Place a call: `target` is a number (dialed on `trunk`) or a `sip:`
    /// URI (dialed directly when no trunk is named).
    Originate {
        target: String,
        trunk: Option<String>,
        caller_id: Option<String>,
        /// `OriginateRequest::tag`.
        tag: Option<String>,
    },
    /// An offered call is taken: reserve its media (RTP ports, a
    /// B-channel) and report `LegEvent::MediaReady`, or end it.
    Proceed,
    /// Tell the caller it rings: 180, or 183 with early media when
    /// `early_media` (media flows from now on).
    Alert { early_media: bool },
    /// Answer the offered call.
    Answer,
    /// Refuse an unanswered call. `sip_status` overrides the status a SIP
    /// leg derives from the cause (a script's `reject(603)` stays 603);
    /// `retry_after` asks the caller to wait (SIP `Retry-After`).
    Reject {
        cause: Cause,
        sip_status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// End the leg in whatever state it is (BYE, CANCEL, a final response;
    /// DISCONNECT on PRI).
    Hangup { cause: Cause },
    /// Blind transfer of the answered leg to `target` (a URI or number);
    /// answered by `LegEvent::TransferEnded` within `timeout`.
    Transfer { target: String, timeout: Duration },
}

/// How a leg ended, as its transport saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndKind {
    /// The far end hung up an answered call.
    RemoteHangup,
    /// The caller gave up before rivr answered.
    RemoteCancel,
    /// rivr hung up an answered call.
    LocalHangup,
    /// rivr refused (or hung up) a call it had not answered.
    LocalReject,
    /// The answer was never confirmed (no ACK to the 2xx).
    NoConfirmation,
    /// An outbound attempt that was never answered.
    Unanswered(Unanswered),
}

/// The end of a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegEnd {
    pub kind: EndKind,
    pub cause: Cause,
    /// The final SIP status sent or received, when the leg was SIP and one
    /// was exchanged.
    pub sip_status: Option<u16>,
    /// Its reason phrase (or the transport's words for the end).
    pub reason: Option<String>,
}

impl LegEnd {
    pub fn new(kind: EndKind, cause: Cause) -> Self {
        LegEnd {
            kind,
            cause,
            sip_status: None,
            reason: None,
        }
    }
}

/// What a leg reports to the call layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegEvent {
    /// An originated leg went out: the transport's id for it (SIP Call-ID)
    /// and the transport's name.
    Placed {
        transport_id: String,
        transport: &'static str,
    },
    /// Media for the leg is set up (after `Proceed`, or for an outbound
    /// leg once the first answer SDP / B-channel is there).
    MediaReady,
    /// The far end is alerting (180) or sends early media (183 with SDP).
    Progress { early_media: bool },
    /// The far end answered.
    Answered,
    /// The leg is over; nothing more comes from it.
    Ended(LegEnd),
    /// A `Transfer` is over: `ok` when the target took the call.
    TransferEnded {
        ok: bool,
        status: u16,
        reason: String,
    },
}
