//! What media tells the layer above about one of its calls, and the id
//! that call has in media. Media does not know who listens: each call is
//! given a [`MediaEventSink`] when it is added, and the owner turns the
//! events into whatever it needs (the call layer: script events, a hangup).

/// A call as media knows it; the owner chooses the number (the call layer
/// uses its leg id), so media and signalling key on the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaId(pub u64);

impl std::fmt::Display for MediaId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// How a key press reached rivr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigitSource {
    /// RFC 4733 telephone-event packets.
    Rfc4733,
    /// Signalling (SIP INFO; a Q.931 keypad IE): handed to media by the
    /// owner so one press heard two ways is reported once.
    Signalling,
    /// DTMF tones in the audio.
    InBand,
    /// A simulated caller (`rivr sim`, tests).
    Simulated,
}

/// Something that happened on a call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// A key, reported once however many ways it arrived.
    Digit { digit: char, source: DigitSource },
    /// The play with this id ended; `interrupted` when a key or a newer
    /// play stopped it.
    PlayDone { id: u64, interrupted: bool },
    /// Keys sent with this id are out; `as_events` false when the call has
    /// no telephone-event at the audio's clock and nothing was sent.
    DigitsSent { id: u64, as_events: bool },
    /// A join (`MediaCommand::Join`) this call was part of was refused:
    /// the other leg is not on this call's worker (the owner places the
    /// legs of a bridge with `MediaPool::add_near`), is gone, is the same
    /// leg, or an Opus encoder could not be made for the listener.
    JoinRefused { listener: MediaId, source: MediaId },
    /// The recording with this id ended (`MediaCommand::Record`): what
    /// ended it. The file is closed by its writer, whose handle the owner
    /// holds.
    RecordDone {
        id: u64,
        ended_by: crate::media::record::EndedBy,
    },
    /// A classifier started by `MediaCommand::Classify` with this id found
    /// something (`media::classify`).
    Classified {
        id: u64,
        result: crate::media::classify::Classified,
    },
    /// Serving this call panicked: media dropped it (ports released). The
    /// owner should end the call's signalling.
    Failed,
}

/// Where a call's media events go. Called on the worker thread: it must not
/// block (a channel send, a flag).
pub trait MediaEventSink: Send {
    fn emit(&self, event: MediaEvent);
}

impl MediaEventSink for crossbeam_channel::Sender<MediaEvent> {
    fn emit(&self, event: MediaEvent) {
        let _ = self.send(event);
    }
}
