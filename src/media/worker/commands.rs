//! What the layer above tells a media worker about its calls, and how the
//! worker applies it (between ticks, never per packet).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::media::dtmf_merge::DigitMerge;
use crate::media::events::{DigitSource, MediaEvent, MediaEventSink, MediaId};
use crate::media::listener::Listener;
use crate::media::ports::{PortAllocator, PortPair};
use crate::media::prompt::Prompt;
use crate::media::rfc4733;
use crate::media::rtp_session::{RtpSession, RtpSessionConfig};
use crate::media::send_gate::SendGate;

use super::call::{silence_frame, DigitsOut, MediaCall, Playback};
use super::{ntp_now, Worker};

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
}

pub enum MediaCommand {
    Add(Box<MediaCallSetup>),
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
    /// The peer put the call on hold (`on`: stop sending it media; RTCP
    /// goes on) or took it off hold.
    Hold {
        call: MediaId,
        on: bool,
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
            MediaCommand::Start { call, .. }
            | MediaCommand::PeerConfirmed { call }
            | MediaCommand::Configure { call, .. }
            | MediaCommand::SendDigits { call, .. }
            | MediaCommand::Digit { call, .. }
            | MediaCommand::SetRemote { call, .. }
            | MediaCommand::Play { call, .. }
            | MediaCommand::StopPlay { call, .. }
            | MediaCommand::Hold { call, .. }
            | MediaCommand::Remove { call } => Some(*call),
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
                let s = *setup;
                let silence = silence_frame(s.codec);
                let mut session = RtpSession::new(s.session, now);
                session.set_wallclock(now, ntp_now());
                self.calls.insert(
                    s.call,
                    MediaCall {
                        ports: s.ports,
                        session,
                        dtmf: rfc4733::Receiver::new(),
                        listener: Listener::new(s.codec),
                        merge: DigitMerge::new(),
                        codec: s.codec,
                        events: s.events,
                        allocator: s.allocator,
                        sending: false,
                        held: false,
                        configured: s.configured,
                        gate: SendGate::new(s.early_media_unverified),
                        playback: None,
                        silence,
                        digits_out: None,
                        #[cfg(test)]
                        panic_on_tick: false,
                    },
                );
            }
            MediaCommand::Start { call, early } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.sending = true;
                    if early {
                        c.gate.early_media(now);
                    } else {
                        c.gate.answered();
                    }
                }
            }
            MediaCommand::PeerConfirmed { call } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.gate.peer_confirmed();
                }
            }
            MediaCommand::Configure {
                call,
                session,
                codec,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.session = RtpSession::new(session, now);
                    c.session.set_wallclock(now, ntp_now());
                    c.listener = Listener::new(codec);
                    c.codec = codec;
                    c.silence = silence_frame(codec);
                    c.configured = true;
                    c.gate.remote_changed();
                }
            }
            MediaCommand::SendDigits { call, id, keys } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if let Some(old) = c.digits_out.take() {
                        c.events.emit(MediaEvent::DigitsSent {
                            id: old.id,
                            as_events: true,
                        });
                    }
                    // Events share the audio's SSRC and timestamps, so they
                    // are sent only at the audio's clock; otherwise in-band.
                    let cfg = c.session.config();
                    if cfg.telephone_event_pt.is_some()
                        && cfg.telephone_event_rate == cfg.clock_rate
                    {
                        c.digits_out = Some(DigitsOut {
                            id,
                            keys: keys.chars().collect(),
                            current: None,
                            gap_ticks: 0,
                        });
                    } else {
                        c.events.emit(MediaEvent::DigitsSent {
                            id,
                            as_events: false,
                        });
                    }
                }
            }
            MediaCommand::Digit {
                call,
                digit,
                source,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.on_digit(now, digit, source);
                }
            }
            MediaCommand::SetRemote { call, rtp, rtcp } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.session.set_remote(rtp, rtcp);
                    c.gate.remote_changed();
                }
            }
            MediaCommand::Play {
                call,
                id,
                prompts,
                interruptible,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if let Some(old) = c.playback.take() {
                        c.events.emit(MediaEvent::PlayDone {
                            id: old.id,
                            interrupted: true,
                        });
                    }
                    c.playback = Some(Playback {
                        id,
                        prompts,
                        prompt: 0,
                        frame: 0,
                        interruptible,
                    });
                }
            }
            MediaCommand::StopPlay { call, id } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    if c.playback.as_ref().is_some_and(|p| p.id == id) {
                        c.playback = None;
                        c.events.emit(MediaEvent::PlayDone {
                            id,
                            interrupted: true,
                        });
                    }
                }
            }
            MediaCommand::Hold { call, on } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.held = on;
                }
            }
            MediaCommand::Remove { call } => {
                if let Some(mut c) = self.calls.remove(&call) {
                    tracing::debug!(call = %call, rtp = ?c.session.stats(), jitter = ?c.listener.jitter_stats(), "media closed");
                    c.close(now, &mut self.send_buf);
                }
            }
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
}
