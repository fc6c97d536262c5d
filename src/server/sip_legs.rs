//! SIP legs: the glue between the SIP core (`sip::endpoint`) and the call
//! layer (`call::registry`). It turns the core's events into leg events
//! and the registry's leg commands into core calls, and does what only a
//! SIP leg needs: SDP offer/answer, the leg's RTP ports and media setup,
//! re-INVITEs and SIP INFO keys. Sans-IO like both sides: the effects go
//! through [`Env`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

use super::env::{Env, MediaSpec};
use crate::call::cause::Cause;
use crate::call::id::{CallId, LegId};
use crate::call::leg::{EndKind, IncomingLeg, LegCommand, LegEnd, LegEvent};
use crate::call::registry::Registry;
use crate::codec::Codec;
use crate::media::events::{DigitSource, MediaId};
use crate::media::rtp_session::RtpSessionConfig;
use crate::media::worker::MediaCommand;
use crate::rate::retry_after_secs;
use crate::sip::endpoint::{CallRef, EndReason, Endpoint, Event};
use crate::sip::sdp::{self, LocalMedia, Negotiated, SessionDescription};

/// What SIP legs need from the config.
#[derive(Debug, Clone)]
pub struct SipLegsConfig {
    /// Written in SDP `c=`/`o=`.
    pub public_ip: IpAddr,
    /// Where RTP is sent until an answer in the ACK says (the discard port).
    pub placeholder_ip: IpAddr,
    pub codecs: Vec<Codec>,
    pub early_media_unverified: Duration,
    /// Seeds SSRCs, sequence numbers and SDP session ids (tests).
    pub seed: u64,
}

struct SipLeg {
    cref: CallRef,
    call: CallId,
    /// The caller's SDP offer; `Err` when it did not parse.
    offer: Option<Result<SessionDescription, String>>,
    local_media: Option<LocalMedia>,
    local_sdp: String,
    /// rivr offered in the 2xx and waits for the answer in the ACK.
    awaiting_answer: bool,
    /// A reserved RTP port not yet handed to media.
    port: Option<u16>,
    media: bool,
}

pub struct SipLegs {
    cfg: SipLegsConfig,
    rng: rand::rngs::StdRng,
    by_ref: HashMap<CallRef, LegId>,
    legs: HashMap<LegId, SipLeg>,
}

impl SipLegs {
    pub fn new(cfg: SipLegsConfig) -> Self {
        SipLegs {
            rng: rand::rngs::StdRng::seed_from_u64(cfg.seed),
            cfg,
            by_ref: HashMap::new(),
            legs: HashMap::new(),
        }
    }

    /// Legs the glue still tracks (for leak checks).
    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// The leg of a core call.
    pub fn leg_of(&self, cref: CallRef) -> Option<LegId> {
        self.by_ref.get(&cref).copied()
    }

    /// An event of the SIP core.
    pub fn on_event(
        &mut self,
        now: Instant,
        ev: Event,
        ep: &mut Endpoint,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        match ev {
            Event::IncomingCall {
                call: cref,
                request,
                source,
            } => {
                let offer = request.has_sdp().then(|| {
                    sdp::parse(&String::from_utf8_lossy(&request.body)).map_err(|e| e.to_string())
                });
                let incoming = IncomingLeg {
                    from: request.from_uri.clone(),
                    to: request.uri_user.clone().unwrap_or_default(),
                    trunk: None,
                    external_id: request.call_id.clone(),
                    transport: "sip",
                    headers: Vec::new(),
                };
                tracing::debug!(call_id = ?request.call_id, number = ?incoming.to, %source, "INVITE");
                let leg = reg.incoming(now, incoming);
                let call = reg.call_of(leg).unwrap_or(CallId(0));
                self.by_ref.insert(cref, leg);
                self.legs.insert(
                    leg,
                    SipLeg {
                        cref,
                        call,
                        offer,
                        local_media: None,
                        local_sdp: String::new(),
                        awaiting_answer: false,
                        port: None,
                        media: false,
                    },
                );
            }
            Event::Confirmed { call: cref, sdp } => self.confirmed(now, cref, sdp, ep, reg, env),
            Event::ReInvite { call: cref, sdp } => {
                let Some((leg, l)) = self.get(cref) else {
                    return;
                };
                let Some(local) = l.local_media.as_ref() else {
                    return;
                };
                let neg = sdp
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .and_then(|s| sdp::parse(&s).ok())
                    .and_then(|o| sdp::answer(&o, local).ok())
                    .map(|x| x.0);
                if let Some(neg) = neg {
                    env.media(
                        leg,
                        MediaCommand::SetRemote {
                            call: MediaId(leg.0),
                            rtp: neg.remote_rtp,
                            rtcp: neg.remote_rtcp,
                        },
                    );
                }
            }
            Event::Info {
                call: cref,
                content_type,
                body,
            } => {
                let Some((leg, _)) = self.get(cref) else {
                    return;
                };
                if let Some(digit) = info_digit(content_type.as_deref(), &body) {
                    env.media(
                        leg,
                        MediaCommand::Digit {
                            call: MediaId(leg.0),
                            digit,
                            source: DigitSource::Signalling,
                        },
                    );
                }
            }
            Event::Progress { .. } | Event::Answered { .. } | Event::Failed { .. } => {
                // Outbound legs: not placed by the glue yet.
            }
            Event::Ended { call: cref, reason } => {
                let Some(leg) = self.by_ref.get(&cref).copied() else {
                    return;
                };
                let (kind, cause, status) = match reason {
                    EndReason::RemoteBye => (EndKind::RemoteHangup, Cause::NORMAL_CLEARING, None),
                    EndReason::Cancelled => {
                        (EndKind::RemoteCancel, Cause::NORMAL_UNSPECIFIED, Some(487))
                    }
                    EndReason::AckTimeout => (
                        EndKind::NoConfirmation,
                        Cause::RECOVERY_ON_TIMER_EXPIRY,
                        None,
                    ),
                    EndReason::LocalByeDone => (EndKind::LocalHangup, Cause::NORMAL_CLEARING, None),
                };
                let mut end = LegEnd::new(kind, cause);
                end.sip_status = status;
                end.reason = status.map(|s| crate::sip::wire::reason_phrase(s).to_string());
                self.forget(leg, env);
                reg.leg_event(now, leg, LegEvent::Ended(end));
            }
        }
    }

    fn get(&self, cref: CallRef) -> Option<(LegId, &SipLeg)> {
        let leg = *self.by_ref.get(&cref)?;
        Some((leg, self.legs.get(&leg)?))
    }

    /// The ACK: the dialog is confirmed; when rivr offered in the 2xx, the
    /// ACK carries the answer that configures the media.
    fn confirmed(
        &mut self,
        now: Instant,
        cref: CallRef,
        sdp: Option<Vec<u8>>,
        ep: &mut Endpoint,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        let Some(leg) = self.by_ref.get(&cref).copied() else {
            return;
        };
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        let id = MediaId(leg.0);
        if !l.awaiting_answer {
            env.media(leg, MediaCommand::PeerConfirmed { call: id });
            return;
        }
        l.awaiting_answer = false;
        let neg = match (sdp, l.local_media.as_ref()) {
            (Some(body), Some(local)) => sdp::parse(&String::from_utf8_lossy(&body))
                .ok()
                .and_then(|a| sdp::accept_answer(&a, local).ok()),
            _ => None,
        };
        match neg {
            Some(neg) => {
                let session = session_config(&neg, &mut self.rng);
                env.media(
                    leg,
                    MediaCommand::Configure {
                        call: id,
                        session,
                        codec: neg.codec,
                    },
                );
                env.media(leg, MediaCommand::PeerConfirmed { call: id });
            }
            None => {
                tracing::info!(leg = %leg, "ACK without a usable SDP answer; hanging up");
                let _ = ep.hangup(now, cref);
                self.forget(leg, env);
                let mut end = LegEnd::new(EndKind::LocalHangup, Cause::INCOMPATIBLE_DESTINATION);
                end.reason = Some("no usable SDP answer in the ACK".into());
                reg.leg_event(now, leg, LegEvent::Ended(end));
            }
        }
    }

    /// A command of the call layer for one of the SIP legs.
    pub fn apply(
        &mut self,
        now: Instant,
        leg: LegId,
        cmd: LegCommand,
        ep: &mut Endpoint,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        let Some(cref) = self.legs.get(&leg).map(|l| l.cref) else {
            return;
        };
        let id = MediaId(leg.0);
        let result = match cmd {
            LegCommand::Proceed => {
                self.proceed(now, leg, reg, env);
                return;
            }
            LegCommand::Alert { early_media } => {
                let sdp = self
                    .legs
                    .get(&leg)
                    .filter(|_| early_media)
                    .map(|l| l.local_sdp.clone());
                let r = ep.ring(now, cref, sdp.as_deref());
                if r.is_ok() && early_media {
                    env.media(
                        leg,
                        MediaCommand::Start {
                            call: id,
                            early: true,
                        },
                    );
                }
                r
            }
            LegCommand::Answer => {
                let sdp = self
                    .legs
                    .get(&leg)
                    .map(|l| l.local_sdp.clone())
                    .unwrap_or_default();
                let r = ep.answer(now, cref, &sdp);
                if r.is_ok() {
                    env.media(
                        leg,
                        MediaCommand::Start {
                            call: id,
                            early: false,
                        },
                    );
                }
                r
            }
            LegCommand::Reject {
                cause,
                sip_status,
                retry_after,
            } => {
                let status = sip_status.unwrap_or_else(|| cause.to_sip_status());
                let _ = match retry_after {
                    Some(wait) => ep.reject_retry_after(now, cref, status, retry_after_secs(wait)),
                    None => ep.reject(now, cref, status),
                };
                self.forget(leg, env);
                return;
            }
            LegCommand::Hangup { .. } => {
                let _ = ep.hangup(now, cref);
                self.forget(leg, env);
                return;
            }
        };
        if result.is_err() {
            // The core no longer knows the call: it ended under us.
            self.forget(leg, env);
            reg.leg_event(
                now,
                leg,
                LegEvent::Ended(LegEnd::new(EndKind::LocalReject, Cause::NORMAL_UNSPECIFIED)),
            );
        }
    }

    /// The registry took the call: reserve ports, answer the offer (or
    /// make one), hand the media to a worker, report the leg ready.
    fn proceed(&mut self, now: Instant, leg: LegId, reg: &mut Registry, env: &mut dyn Env) {
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        let call = l.call;
        if let Some(Err(e)) = &l.offer {
            tracing::info!(error = %e, "unparseable SDP offer: 400");
            reg.script_not_started(
                now,
                call,
                Cause::INVALID_MESSAGE,
                Some(400),
                "bad SDP offer",
            );
            return;
        }
        let port = match env.reserve_rtp() {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP port: 503");
                reg.script_not_started(
                    now,
                    call,
                    Cause::RESOURCE_UNAVAILABLE,
                    Some(503),
                    "no RTP port",
                );
                return;
            }
        };
        let local = LocalMedia {
            ip: self.cfg.public_ip,
            rtp_port: port,
            codecs: self.cfg.codecs.clone(),
            telephone_event: true,
            session_id: u64::from(self.rng.gen::<u32>()),
            session_version: u64::from(self.rng.gen::<u32>()),
        };
        let offer = self.legs.get(&leg).and_then(|l| l.offer.clone());
        let (negotiated, local_sdp) = match offer {
            Some(Ok(o)) => match sdp::answer(&o, &local) {
                Ok((neg, answer)) => (Some(neg), answer),
                Err(e) => {
                    tracing::info!(error = %e, "no common codec: 488");
                    env.release_rtp(port);
                    reg.script_not_started(
                        now,
                        call,
                        Cause::INCOMPATIBLE_DESTINATION,
                        Some(488),
                        "488",
                    );
                    return;
                }
            },
            _ => (None, sdp::offer(&local)),
        };
        let spec = match &negotiated {
            Some(n) => MediaSpec {
                id: MediaId(leg.0),
                session: session_config(n, &mut self.rng),
                codec: n.codec,
                configured: true,
                early_media_unverified: self.cfg.early_media_unverified,
            },
            None => MediaSpec {
                id: MediaId(leg.0),
                session: session_config(&self.placeholder(), &mut self.rng),
                codec: Codec::Pcmu,
                configured: false,
                early_media_unverified: self.cfg.early_media_unverified,
            },
        };
        if let Some(l) = self.legs.get_mut(&leg) {
            l.port = Some(port);
            l.awaiting_answer = negotiated.is_none();
            l.local_media = Some(local);
            l.local_sdp = local_sdp;
        }
        if let Err(e) = env.media_add(call, leg, port, spec) {
            tracing::error!(error = %e, "cannot set up media: 503");
            if let Some(l) = self.legs.get_mut(&leg) {
                l.port = None;
            }
            reg.script_not_started(
                now,
                call,
                Cause::RESOURCE_UNAVAILABLE,
                Some(503),
                "no media worker",
            );
            return;
        }
        if let Some(l) = self.legs.get_mut(&leg) {
            l.port = None;
            l.media = true;
        }
        reg.leg_event(now, leg, LegEvent::MediaReady);
    }

    /// Media parameters until the ACK brings the answer (`Configure`).
    fn placeholder(&self) -> Negotiated {
        let discard = SocketAddr::new(self.cfg.placeholder_ip, 9);
        Negotiated {
            codec: Codec::Pcmu,
            payload_type: 0,
            codec_fmtp: None,
            telephone_event_pt: None,
            telephone_event_rate: 8000,
            remote_rtp: discard,
            remote_rtcp: discard,
            ptime_ms: 20,
            direction: sdp::Direction::SendRecv,
        }
    }

    /// The leg is over for SIP: its media stops, its ports go back.
    fn forget(&mut self, leg: LegId, env: &mut dyn Env) {
        let Some(l) = self.legs.remove(&leg) else {
            return;
        };
        self.by_ref.remove(&l.cref);
        if l.media {
            env.media_remove(leg);
        } else if let Some(port) = l.port {
            env.release_rtp(port);
        }
    }
}

fn session_config(neg: &Negotiated, rng: &mut rand::rngs::StdRng) -> RtpSessionConfig {
    RtpSessionConfig {
        local_ssrc: rng.gen(),
        payload_type: neg.payload_type,
        clock_rate: neg.codec.clock_rate(),
        telephone_event_pt: neg.telephone_event_pt,
        telephone_event_rate: neg.telephone_event_rate,
        remote_rtp: neg.remote_rtp,
        remote_rtcp: neg.remote_rtcp,
        initial_seq: rng.gen(),
        initial_timestamp: rng.gen(),
        cname: format!("rivr-{:08x}", rng.gen::<u32>()),
    }
}

/// A key from a SIP INFO body: `application/dtmf-relay` (`Signal=5`) or
/// `application/dtmf` (`5`).
fn info_digit(content_type: Option<&str>, body: &[u8]) -> Option<char> {
    let ct = content_type?.to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let value = if ct.starts_with("application/dtmf-relay") {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?
    } else if ct.starts_with("application/dtmf") {
        text.trim()
    } else {
        return None;
    };
    let c = match value {
        "10" => '*',
        "11" => '#',
        v if v.len() == 1 => v.chars().next()?.to_ascii_uppercase(),
        _ => return None,
    };
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D').then_some(c)
}

#[cfg(test)]
mod tests {
    use super::info_digit;

    #[test]
    fn info_bodies() {
        assert_eq!(
            info_digit(
                Some("application/dtmf-relay"),
                b"Signal=5\r\nDuration=160\r\n"
            ),
            Some('5')
        );
        assert_eq!(
            info_digit(Some("application/dtmf-relay"), b"Signal= #\r\n"),
            Some('#')
        );
        assert_eq!(info_digit(Some("application/dtmf"), b"11"), Some('#'));
        assert_eq!(info_digit(Some("application/dtmf"), b"x"), None);
        assert_eq!(info_digit(Some("text/plain"), b"5"), None);
        assert_eq!(info_digit(None, b"Signal=5"), None);
    }
}
