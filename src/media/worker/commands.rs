//! What the layer above tells a media worker about its calls, and how the
//! worker applies it (between ticks, never per packet).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::media::events::{DigitSource, MediaEventSink, MediaId};
use crate::media::ports::{PortAllocator, PortPair};
use crate::media::prompt::Prompt;
use crate::media::rtp_session::RtpSessionConfig;

use super::call::MediaCall;
use super::path::PacketPath;
use super::Worker;

/// Everything a worker needs to take a call.
pub struct MediaCallSetup {
    pub call: MediaId,
    pub ports: PortPair,
    pub session: RtpSessionConfig,
    pub codec: Codec,
    /// False until the remote address is known (see `Configure`).
    pub configured: bool,
    pub events: Box<dyn MediaEventSink>,
    pub allocator: Arc<PortAllocator>,
    /// How long early media may go to a peer not yet verified (the
    /// reflection guard, `media::send_gate`); `[rtp]
    /// early_media_unverified_ms`.
    pub early_media_unverified: Duration,
    /// When the leg runs the in-band DTMF detector (`[media] inband_dtmf`).
    pub inband_dtmf: crate::media::inband_policy::InbandDtmf,
}

/// How a B-channel reaches the worker: the span's transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BChannelKind {
    /// The socket span: a `SOCK_SEQPACKET` socket the peer listens on.
    Socket,
    /// A DAHDI channel file on a card (`pri::dahdi::open_bchannel`).
    Dahdi,
}

/// Everything a worker needs to take a PRI B-channel leg.
pub struct BChannelSetup {
    pub call: MediaId,
    /// The timeslot's channel: where the peer listens for its socket, or
    /// its DAHDI device; the worker connects or opens it, and again
    /// after a close.
    pub path: std::path::PathBuf,
    pub kind: BChannelKind,
    /// G.711 in the span's law: `Pcma` on E1, `Pcmu` on T1.
    pub codec: Codec,
    pub events: Box<dyn MediaEventSink>,
}

pub enum MediaCommand {
    Add(Box<MediaCallSetup>),
    /// A B-channel leg: media from the channel (socket or DAHDI file)
    /// instead of RTP.
    AddBChannel(Box<BChannelSetup>),
    /// Start sending RTP: as early media (`early`, before the call is
    /// answered), or because the call is answered. Either way nothing
    /// reaches the peer before it is verified, except early media within
    /// its cap (`media::send_gate`).
    Start {
        call: MediaId,
        early: bool,
    },
    /// The peer's signalling confirmed that it wants this media (for SIP:
    /// the ACK). Opens the reflection guard for the rest of the call.
    PeerConfirmed {
        call: MediaId,
    },
    /// The negotiated media, when it was not known at `Add` (an INVITE
    /// without SDP gets its answer in the ACK).
    Configure {
        call: MediaId,
        session: RtpSessionConfig,
        codec: Codec,
    },
    /// Send keys as RFC 4733 telephone-events (answered with
    /// `MediaEvent::DigitsSent`).
    SendDigits {
        call: MediaId,
        id: u64,
        keys: String,
    },
    /// A key press that came by signalling (SIP INFO).
    Digit {
        call: MediaId,
        digit: char,
        source: DigitSource,
    },
    /// The peer asked for another packet time, same codec (a re-INVITE):
    /// packets of `ptime_ms` from the next tick on, the stream continuing
    /// (same SSRC, timestamps and sequence numbers; what waits for a
    /// packet goes into the next ones).
    SetPtime {
        call: MediaId,
        ptime_ms: u32,
    },
    /// A new remote address from SDP (answer in the ACK, re-INVITE).
    SetRemote {
        call: MediaId,
        rtp: SocketAddr,
        rtcp: SocketAddr,
    },
    Play {
        call: MediaId,
        id: u64,
        prompts: Vec<Arc<Prompt>>,
        interruptible: bool,
    },
    StopPlay {
        call: MediaId,
        id: u64,
    },
    /// Records what the leg hears from its peer (decoded 8 kHz, after the
    /// jitter buffer) into `sink` until `rules` end it, a `StopRecord`, or
    /// the leg's removal; the end is reported as `MediaEvent::RecordDone`
    /// (not for a removal: the owner knows). A new recording replaces one
    /// still running (ended as stopped).
    Record {
        call: MediaId,
        id: u64,
        rules: crate::media::record::EndRules,
        sink: Box<crate::media::record::RecordSink>,
    },
    /// Ends the recording `id`, if it runs, as `by` says.
    StopRecord {
        call: MediaId,
        id: u64,
        by: crate::media::record::EndedBy,
    },
    /// Runs a classifier on what the leg hears (`media::classify`); its
    /// findings come as `MediaEvent::Classified` with `id`. Several may
    /// run; one with the same id is replaced.
    Classify {
        call: MediaId,
        id: u64,
        kind: crate::media::classify::ClassifyKind,
    },
    /// Stops the classifier `id`, if it runs.
    StopClassify {
        call: MediaId,
        id: u64,
    },
    /// The peer put the call on hold (`on`: stop sending it media; RTCP
    /// goes on) or took it off hold.
    Hold {
        call: MediaId,
        on: bool,
    },
    /// `listener` hears `source`: each tick the source's received audio
    /// (decoded or concealed, 8 kHz) is encoded in the listener's codec
    /// and sent to it, and keys the source hears are re-sent to it. A
    /// prompt the listener plays takes the place of the joined audio
    /// while it lasts. A listener hears one source (a new join replaces
    /// the old); a source may have several listeners; a bridge is two
    /// joins. Both legs must be on the worker the command is sent to,
    /// else it is refused with `MediaEvent::JoinRefused` to whichever of
    /// them is there.
    Join {
        listener: MediaId,
        source: MediaId,
    },
    /// `listener` no longer hears its source (silence, or its prompt).
    Unjoin {
        listener: MediaId,
    },
    /// The call ended: send RTCP BYE, close the sockets, free the ports.
    Remove {
        call: MediaId,
    },
    /// Ends the worker thread.
    Shutdown,
    /// Test hook: a panic at `at`, for the supervision tests.
    #[cfg(test)]
    Panic {
        call: MediaId,
        at: super::InjectedPanic,
    },
}

impl MediaCommand {
    /// The call the command is about (`None` for `Shutdown`).
    pub fn call(&self) -> Option<MediaId> {
        match self {
            MediaCommand::Add(s) => Some(s.call),
            MediaCommand::AddBChannel(s) => Some(s.call),
            MediaCommand::Start { call, .. }
            | MediaCommand::PeerConfirmed { call }
            | MediaCommand::Configure { call, .. }
            | MediaCommand::SendDigits { call, .. }
            | MediaCommand::Digit { call, .. }
            | MediaCommand::SetRemote { call, .. }
            | MediaCommand::SetPtime { call, .. }
            | MediaCommand::Play { call, .. }
            | MediaCommand::StopPlay { call, .. }
            | MediaCommand::Record { call, .. }
            | MediaCommand::StopRecord { call, .. }
            | MediaCommand::Classify { call, .. }
            | MediaCommand::StopClassify { call, .. }
            | MediaCommand::Hold { call, .. }
            | MediaCommand::Remove { call } => Some(*call),
            MediaCommand::Join { listener, .. } | MediaCommand::Unjoin { listener } => {
                Some(*listener)
            }
            #[cfg(test)]
            MediaCommand::Panic { call, .. } => Some(*call),
            MediaCommand::Shutdown => None,
        }
    }
}

impl Worker {
    /// Applies one command; false to stop the worker.
    pub(super) fn apply(&mut self, cmd: MediaCommand, now: Instant) -> bool {
        match cmd {
            MediaCommand::Add(setup) => {
                let call = setup.call;
                self.remove(call, now);
                self.calls.insert(call, MediaCall::new(*setup, now));
            }
            MediaCommand::AddBChannel(setup) => {
                let call = setup.call;
                self.remove(call, now);
                self.calls.insert(call, MediaCall::bchannel(*setup, now));
            }
            MediaCommand::Start { call, early } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.sending = true;
                    c.path.start(now, early);
                }
            }
            MediaCommand::PeerConfirmed { call } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.path.peer_confirmed();
                }
            }
            MediaCommand::Configure {
                call,
                session,
                codec,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    let ptime_ms = session.ptime_ms;
                    match &mut c.path {
                        PacketPath::Rtp(p) => p.configure(session, codec, now),
                        // A B-channel's law is the span's, set at creation.
                        PacketPath::BChannel(_) => {}
                    }
                    let events = c.path.telephone_events();
                    if let Err(e) = c.core.reconfigure(codec, events, ptime_ms) {
                        // What it would encode goes silent; the rest works.
                        tracing::error!(call = %call, error = %e, "cannot create an Opus encoder for the leg");
                    }
                    c.core.request_opus_10ms(|p| self.preparer.prepare(p));
                }
            }
            MediaCommand::SendDigits { call, id, keys } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.core.send_digits(id, &keys);
                    c.flush_events();
                }
            }
            MediaCommand::Digit {
                call,
                digit,
                source,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.core.key(now, digit, source);
                    c.flush_events();
                }
            }
            MediaCommand::SetPtime { call, ptime_ms } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.path.set_ptime(ptime_ms);
                    if let Err(e) = c.core.set_ptime(ptime_ms) {
                        tracing::error!(call = %call, error = %e, "cannot create an Opus encoder for the leg");
                    }
                    c.core.request_opus_10ms(|p| self.preparer.prepare(p));
                }
            }
            MediaCommand::SetRemote { call, rtp, rtcp } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    match &mut c.path {
                        PacketPath::Rtp(p) => p.set_remote(rtp, rtcp),
                        PacketPath::BChannel(_) => {}
                    }
                }
            }
            MediaCommand::Play {
                call,
                id,
                prompts,
                interruptible,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.core.play(id, prompts, interruptible);
                    c.core.request_opus_10ms(|p| self.preparer.prepare(p));
                    c.flush_events();
                }
            }
            MediaCommand::StopPlay { call, id } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.core.stop_play(id);
                    c.flush_events();
                }
            }
            MediaCommand::Record {
                call,
                id,
                rules,
                sink,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.start_recording(id, rules, sink);
                }
            }
            MediaCommand::StopRecord { call, id, by } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.stop_recording(id, by);
                }
            }
            MediaCommand::Classify { call, id, kind } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.start_classifier(id, kind);
                }
            }
            MediaCommand::StopClassify { call, id } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.stop_classifier(id);
                }
            }
            MediaCommand::Hold { call, on } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.held = on;
                }
            }
            MediaCommand::Join { listener, source } => self.join(listener, source),
            MediaCommand::Unjoin { listener } => self.unjoin(listener),
            MediaCommand::Remove { call } => self.remove(call, now),
            MediaCommand::Shutdown => return false,
            #[cfg(test)]
            MediaCommand::Panic { call, at } => match at {
                super::InjectedPanic::Command => panic!("injected panic in a command"),
                super::InjectedPanic::Tick => {
                    if let Some(c) = self.calls.get_mut(&call) {
                        c.panic_on_tick = true;
                    }
                }
                super::InjectedPanic::Loop => self.panic_in_loop = true,
            },
        }
        true
    }

    /// Ends a call: out of its joins, RTCP BYE, sockets closed, ports
    /// back (when it drops).
    fn remove(&mut self, call: MediaId, now: Instant) {
        self.forget_joins(call);
        self.live.remove(&call);
        if let Some(mut c) = self.calls.remove(&call) {
            let jitter = c.core.listener().jitter_stats();
            match &c.path {
                PacketPath::Rtp(p) => {
                    tracing::debug!(call = %call, rtp = ?p.stats(), ?jitter, "media closed");
                    self.totals.add_leg(Some(p.stats()), jitter, &c.digits);
                }
                PacketPath::BChannel(_) => {
                    tracing::debug!(call = %call, ?jitter, "media closed");
                    self.totals.add_leg(None, jitter, &c.digits);
                }
            }
            c.path.close(now, &mut self.send_buf);
        }
    }
}
