//! The messages call control sends, built from what the call layer knows:
//! a SETUP from a few parameters, the answers and clearing messages with
//! their usual elements, RESTART and STATUS. Elements go in ascending
//! identifier order (Sending complete, 0xA1, last), the order switches
//! send and the published trace in the tests shows.
//!
//! Where ETSI (EN 300 403, on E1) and National ISDN-2 (on T1) code a
//! message differently, the [`Variant`] decides.

use super::ie::{
    BearerCapability, CallState, CallStateValue, CalledNumber, CallingNumber, CauseIe, ChannelId,
    ChannelSel, Display, Ia5, InfoElement, Progress, RestartClass, RestartIndicator,
};
use super::ies::RawIe;
use super::message::{CallRef, Message, MessageType};
use crate::codec::Law;

/// The Q.931 dialect of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// EuroISDN, ETSI EN 300 403 — E1 spans.
    Etsi,
    /// National ISDN-2 (Telcordia) — T1 spans.
    Ni2,
}

impl Variant {
    /// The G.711 law the variant's spans use unless configured otherwise.
    pub fn default_law(self) -> Law {
        match self {
            Variant::Etsi => Law::Alaw,
            Variant::Ni2 => Law::Ulaw,
        }
    }

    /// Whether `n` names a B-channel in Channel identification on the
    /// variant's span: the E1 timeslot (1–15, 17–31; 16 is the
    /// D-channel), the T1 channel (1–23; 24 is the D-channel).
    pub fn is_b_channel(self, n: u8) -> bool {
        match self {
            Variant::Etsi => matches!(n, 1..=15 | 17..=31),
            Variant::Ni2 => matches!(n, 1..=23),
        }
    }

    /// Whether the variant sends Sending complete. ETSI marks the end of
    /// the called number with it; NI-2 PRI calls are en-bloc, so it adds
    /// nothing there and is left out for switches that do not expect it.
    pub fn sends_sending_complete(self) -> bool {
        self == Variant::Etsi
    }

    /// Whether a calling name goes in a Display element: on NI-2 (plain
    /// IA5, no display type octet; the Facility-coded name is not sent);
    /// on ETSI the Display element is the network's, and names travel in
    /// supplementary services (Facility), which rivr does not send.
    pub fn sends_display_name(self) -> bool {
        self == Variant::Ni2
    }
}

/// What a SETUP carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupParams {
    pub variant: Variant,
    /// Voice: `BearerCapability::g711(Speech or Audio3k1, the span's law)`.
    pub bearer: BearerCapability,
    pub channel: ChannelSel,
    pub called: CalledNumber,
    pub calling: Option<CallingNumber>,
    /// Sent as Display on NI-2 only.
    pub calling_name: Option<Ia5>,
    /// The called number is complete (en-bloc); without it an ETSI
    /// network may answer SETUP ACKNOWLEDGE and expect INFORMATION.
    pub sending_complete: bool,
    /// E.g. origination non-ISDN when the call came in over SIP.
    pub progress: Option<Progress>,
}

impl Message {
    /// Appends a typed element (builder style).
    pub fn with<T: InfoElement>(mut self, ie: &T) -> Message {
        self.ies.push(ie);
        self
    }

    fn with_opt<T: InfoElement>(self, ie: Option<&T>) -> Message {
        match ie {
            Some(ie) => self.with(ie),
            None => self,
        }
    }

    fn with_channel(self, channel: Option<ChannelSel>) -> Message {
        self.with_opt(channel.map(ChannelId::from_sel).as_ref())
    }

    /// SETUP: bearer capability, channel, progress, (NI-2) display,
    /// calling and called numbers, (ETSI) sending complete.
    pub fn setup(call_ref: CallRef, p: &SetupParams) -> Message {
        let display = p
            .calling_name
            .clone()
            .filter(|_| p.variant.sends_display_name())
            .map(Display::new);
        let mut m = Message::new(call_ref, MessageType::Setup)
            .with(&p.bearer)
            .with(&ChannelId::from_sel(p.channel))
            .with_opt(p.progress.as_ref())
            .with_opt(display.as_ref())
            .with_opt(p.calling.as_ref())
            .with(&p.called);
        if p.sending_complete && p.variant.sends_sending_complete() {
            m.ies
                .push_raw(RawIe::single(super::ie::id::SENDING_COMPLETE));
        }
        m
    }

    /// SETUP ACKNOWLEDGE (overlap receiving starts): the channel the
    /// network chose, and progress 8 if it plays dial tone.
    pub fn setup_ack(
        call_ref: CallRef,
        channel: Option<ChannelSel>,
        progress: Option<Progress>,
    ) -> Message {
        Message::new(call_ref, MessageType::SetupAck)
            .with_channel(channel)
            .with_opt(progress.as_ref())
    }

    /// INFORMATION carrying more called digits (overlap sending),
    /// optionally marked complete.
    pub fn information(
        call_ref: CallRef,
        variant: Variant,
        digits: &CalledNumber,
        sending_complete: bool,
    ) -> Message {
        let mut m = Message::new(call_ref, MessageType::Information).with(digits);
        // Sending complete is single-octet and 0xA1 sorts after 0x70.
        if sending_complete && variant.sends_sending_complete() {
            m.ies
                .push_raw(RawIe::single(super::ie::id::SENDING_COMPLETE));
        }
        m
    }

    /// CALL PROCEEDING: the channel (mandatory in the network's first
    /// answer to a SETUP).
    pub fn call_proceeding(call_ref: CallRef, channel: Option<ChannelSel>) -> Message {
        Message::new(call_ref, MessageType::CallProceeding).with_channel(channel)
    }

    /// ALERTING, with the channel if not yet given and progress 8 when
    /// ringback is played in-band.
    pub fn alerting(
        call_ref: CallRef,
        channel: Option<ChannelSel>,
        progress: Option<Progress>,
    ) -> Message {
        Message::new(call_ref, MessageType::Alerting)
            .with_channel(channel)
            .with_opt(progress.as_ref())
    }

    /// PROGRESS (e.g. in-band announcement before answer).
    pub fn progress(call_ref: CallRef, cause: Option<CauseIe>, progress: Progress) -> Message {
        Message::new(call_ref, MessageType::Progress)
            .with_opt(cause.as_ref())
            .with(&progress)
    }

    /// CONNECT, with the channel if not yet given.
    pub fn connect(call_ref: CallRef, channel: Option<ChannelSel>) -> Message {
        Message::new(call_ref, MessageType::Connect).with_channel(channel)
    }

    /// CONNECT ACKNOWLEDGE.
    pub fn connect_ack(call_ref: CallRef) -> Message {
        Message::new(call_ref, MessageType::ConnectAck)
    }

    /// DISCONNECT with its mandatory cause, and progress 8 when the
    /// network plays an announcement or busy tone in-band.
    pub fn disconnect(call_ref: CallRef, cause: CauseIe, progress: Option<Progress>) -> Message {
        Message::new(call_ref, MessageType::Disconnect)
            .with(&cause)
            .with_opt(progress.as_ref())
    }

    /// RELEASE (the cause is mandatory only as the first clearing message).
    pub fn release(call_ref: CallRef, cause: Option<CauseIe>) -> Message {
        Message::new(call_ref, MessageType::Release).with_opt(cause.as_ref())
    }

    /// RELEASE COMPLETE.
    pub fn release_complete(call_ref: CallRef, cause: Option<CauseIe>) -> Message {
        Message::new(call_ref, MessageType::ReleaseComplete).with_opt(cause.as_ref())
    }

    /// STATUS: the cause (30 answering STATUS ENQUIRY, or the error found)
    /// and our call state.
    pub fn status(call_ref: CallRef, cause: CauseIe, state: CallStateValue) -> Message {
        Message::new(call_ref, MessageType::Status)
            .with(&cause)
            .with(&CallState::new(state))
    }

    /// STATUS ENQUIRY.
    pub fn status_enquiry(call_ref: CallRef) -> Message {
        Message::new(call_ref, MessageType::StatusEnquiry)
    }

    /// RESTART on the global call reference: of the `channels` listed
    /// (class [`RestartClass::Indicated`]), or of a whole interface with
    /// no channels.
    pub fn restart(class: RestartClass, channels: &[u8]) -> Message {
        Message::restart_kind(MessageType::Restart, CallRef::global(true), class, channels)
    }

    /// RESTART ACKNOWLEDGE echoing the RESTART's channels and class.
    pub fn restart_ack(class: RestartClass, channels: &[u8]) -> Message {
        Message::restart_kind(
            MessageType::RestartAck,
            CallRef::global(false),
            class,
            channels,
        )
    }

    fn restart_kind(
        kind: MessageType,
        call_ref: CallRef,
        class: RestartClass,
        channels: &[u8],
    ) -> Message {
        let channel_id = (!channels.is_empty()).then(|| ChannelId::b_channels(channels, true));
        Message::new(call_ref, kind)
            .with_opt(channel_id.as_ref())
            .with(&RestartIndicator { class })
    }
}
