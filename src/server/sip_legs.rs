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
use crate::call::outcome::Unanswered;
use crate::call::registry::Registry;
use crate::codec::Codec;
use crate::media::events::{DigitSource, MediaId};
use crate::media::rtp_session::RtpSessionConfig;
use crate::media::worker::MediaCommand;
use crate::rate::retry_after_secs;
use crate::sip::endpoint::{
    CallRef, Credentials, EndReason, Endpoint, Event, LinkEvent, OutDialog, OutboundInvite,
    TrunkLinkSpec, UacEnd, UacFailure,
};
use crate::sip::message::Transport;
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
    /// The SIP trunks outbound calls go through, resolved.
    pub trunks: Vec<SipTrunk>,
}

/// A SIP trunk as the glue dials it (the config's `[[trunk]]`, resolved).
#[derive(Debug, Clone)]
pub struct SipTrunk {
    pub name: String,
    /// Where its requests go (the trunk, or its outbound proxy): the
    /// first of `targets`.
    pub dest: SocketAddr,
    /// Every address DNS gave, in the order to try them.
    pub targets: Vec<SocketAddr>,
    pub transport: Transport,
    /// `host[:port]` for Request-URIs and To.
    pub host_port: String,
    pub tcp: bool,
    pub credentials: Option<Credentials>,
    /// Route headers (an outbound proxy).
    pub route: Vec<String>,
    /// The From host (rivr's public address, or a registered domain).
    pub from_host: String,
    pub caller_name: Option<String>,
    pub send_pai: bool,
    pub privacy: bool,
    pub codecs: Vec<Codec>,
    /// OPTIONS keepalive interval (`None`: none; the trunk counts as up).
    pub options_every: Option<Duration>,
    /// REGISTER with the credentials.
    pub register: bool,
}

/// What the glue tells the owner of a tagged call (a campaign attempt)
/// about its dialog, so that another process can end the call after a
/// crash (`sip::endpoint::orphan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogNote {
    /// The call's dialog as it stands: after its INVITE, its first
    /// provisionals, its answer.
    Dialog {
        tag: String,
        answered: bool,
        dialog: Box<OutDialog>,
    },
    /// A call a dead process left, which [`SipLegs::end_orphan`] was
    /// asked to end, is over at the far end (or given up on).
    OrphanGone { tag: String },
}

struct SipLeg {
    cref: CallRef,
    call: CallId,
    /// The owner's token of a call rivr placed (a campaign attempt id).
    tag: Option<String>,
    /// The caller's SDP offer; `Err` when it did not parse.
    offer: Option<Result<SessionDescription, String>>,
    local_media: Option<LocalMedia>,
    local_sdp: String,
    /// rivr offered in the 2xx and waits for the answer in the ACK.
    awaiting_answer: bool,
    /// A reserved RTP port not yet handed to media.
    port: Option<u16>,
    media: bool,
    /// A leg rivr placed: the SDP answer it configured media from.
    answer_sdp: Option<Vec<u8>>,
    /// What the media runs with now (codec, payload types, addresses).
    current: Option<Negotiated>,
}

pub struct SipLegs {
    cfg: SipLegsConfig,
    rng: rand::rngs::StdRng,
    by_ref: HashMap<CallRef, LegId>,
    legs: HashMap<LegId, SipLeg>,
    /// Calls of a dead process being ended, by their tags.
    orphans: HashMap<CallRef, String>,
}

impl SipLegs {
    pub fn new(cfg: SipLegsConfig) -> Self {
        SipLegs {
            rng: rand::rngs::StdRng::seed_from_u64(cfg.seed),
            cfg,
            by_ref: HashMap::new(),
            legs: HashMap::new(),
            orphans: HashMap::new(),
        }
    }

    /// Starts each trunk's link: registration and OPTIONS keepalive.
    pub fn start_trunk_links(&self, now: Instant, keepalive: bool, ep: &mut Endpoint) {
        for (id, t) in self.cfg.trunks.iter().enumerate() {
            ep.set_trunk_targets(id, t.targets.clone());
            let register = t.register.then(|| t.credentials.clone()).flatten();
            let options_every = t.options_every.filter(|_| keepalive);
            if register.is_none() && options_every.is_none() {
                continue;
            }
            ep.add_trunk_link(
                now,
                TrunkLinkSpec {
                    id,
                    dest: t.dest,
                    transport: t.transport,
                    host_port: t.host_port.clone(),
                    options_every,
                    register,
                    expires: 3600,
                },
            );
        }
    }

    /// Legs the glue still tracks (for leak checks).
    /// The endpoint's id of the SIP trunk `name`.
    pub fn trunk_id(&self, name: &str) -> Option<usize> {
        self.cfg.trunks.iter().position(|t| t.name == name)
    }

    pub fn len(&self) -> usize {
        self.legs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// Ends a call a dead process placed with tag `tag` on `trunk`, from
    /// its stored dialog (the trunk's credentials answer a challenge);
    /// `DialogNote::OrphanGone` follows when it is over.
    pub fn end_orphan(
        &mut self,
        now: Instant,
        tag: String,
        trunk: Option<&str>,
        dialog: OutDialog,
        ep: &mut Endpoint,
    ) {
        let credentials = trunk
            .and_then(|t| self.cfg.trunks.iter().find(|x| x.name == t))
            .and_then(|t| t.credentials.clone());
        let cref = ep.end_orphan(now, dialog, credentials);
        self.orphans.insert(cref, tag);
    }

    /// Calls of a dead process still being ended.
    pub fn orphans(&self) -> usize {
        self.orphans.len()
    }

    /// Tells the owner of a tagged leg where its dialog stands.
    fn note_dialog(&self, leg: LegId, ep: &Endpoint, env: &mut dyn Env) {
        let Some(l) = self.legs.get(&leg) else {
            return;
        };
        let (Some(tag), Some(d)) = (&l.tag, ep.out_dialog(l.cref)) else {
            return;
        };
        env.dialog_note(DialogNote::Dialog {
            tag: tag.clone(),
            answered: d.answered(),
            dialog: Box::new(d),
        });
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
        if let Event::Failed { call, .. } | Event::Ended { call, .. } = &ev {
            if let Some(tag) = self.orphans.remove(call) {
                env.dialog_note(DialogNote::OrphanGone { tag });
                return;
            }
        }
        match ev {
            Event::IncomingCall {
                call: cref,
                request,
                source,
            } => {
                let offer = request.has_sdp().then(|| {
                    sdp::parse(&String::from_utf8_lossy(&request.body)).map_err(|e| e.to_string())
                });
                // A call a registrar sends to rivr's registered Contact
                // names the account in the Request-URI: the dialed number
                // is then the To user.
                let uri_user = request.uri_user.clone().unwrap_or_default();
                let registered_as = self.cfg.trunks.iter().any(|t| {
                    t.register
                        && t.credentials
                            .as_ref()
                            .is_some_and(|c| c.username == uri_user)
                });
                let to = if registered_as {
                    user_of(&request.to_uri).unwrap_or(uri_user)
                } else {
                    uri_user
                };
                let trunk = registered_as
                    .then(|| {
                        self.cfg
                            .trunks
                            .iter()
                            .find(|t| t.credentials.as_ref().is_some_and(|c| c.username == to))
                            .or_else(|| self.cfg.trunks.iter().find(|t| t.register))
                            .map(|t| t.name.clone())
                    })
                    .flatten();
                let incoming = IncomingLeg {
                    from: request.from_uri.clone(),
                    to,
                    trunk,
                    external_id: request.call_id.clone(),
                    transport: "sip",
                    headers: request.headers.clone(),
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
                        tag: None,
                        offer,
                        local_media: None,
                        local_sdp: String::new(),
                        awaiting_answer: false,
                        port: None,
                        media: false,
                        answer_sdp: None,
                        current: None,
                    },
                );
            }
            Event::Confirmed { call: cref, sdp } => self.confirmed(now, cref, sdp, ep, reg, env),
            Event::ReInvite { call: cref, sdp } => self.reinvite(now, cref, sdp, ep, env),
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
            Event::Progress {
                call: cref,
                status,
                sdp,
            } => {
                let Some(leg) = self.by_ref.get(&cref).copied() else {
                    return;
                };
                let early = sdp.is_some_and(|b| self.take_answer(leg, &b, env));
                let _ = status;
                // The branch a CANCEL must name is the one that rang.
                self.note_dialog(leg, ep, env);
                reg.leg_event(now, leg, LegEvent::Progress { early_media: early });
            }
            Event::Answered { call: cref, sdp } => {
                let Some(leg) = self.by_ref.get(&cref).copied() else {
                    return;
                };
                let configured = match sdp {
                    Some(b) => self.take_answer(leg, &b, env),
                    None => self.legs.get(&leg).is_some_and(|l| l.answer_sdp.is_some()),
                };
                if !configured {
                    tracing::info!(leg = %leg, "answer without a usable SDP; hanging up");
                    let _ = ep.hangup(now, cref);
                    self.forget(leg, env);
                    let end = LegEnd::new(EndKind::LocalHangup, Cause::INCOMPATIBLE_DESTINATION);
                    reg.leg_event(now, leg, LegEvent::Answered);
                    reg.leg_event(now, leg, LegEvent::Ended(end));
                    return;
                }
                let id = MediaId(leg.0);
                env.media(
                    leg,
                    MediaCommand::Start {
                        call: id,
                        early: false,
                    },
                );
                self.note_dialog(leg, ep, env);
                reg.leg_event(now, leg, LegEvent::Answered);
            }
            Event::Failed {
                call: cref,
                failure,
            } => {
                let Some(leg) = self.by_ref.get(&cref).copied() else {
                    return;
                };
                self.forget(leg, env);
                reg.leg_event(now, leg, LegEvent::Ended(unanswered_end(&failure)));
            }
            Event::TrunkLink { trunk, event } => {
                let Some(name) = self.cfg.trunks.get(trunk).map(|t| t.name.clone()) else {
                    return;
                };
                match event {
                    LinkEvent::Up => reg.set_trunk_up(&name, true),
                    LinkEvent::Down => reg.set_trunk_up(&name, false),
                    LinkEvent::Registered { expires } => {
                        tracing::info!(trunk = ?name, expires, "registered")
                    }
                    LinkEvent::RegistrationFailed { status, retry_in } => tracing::warn!(
                        trunk = ?name,
                        ?status,
                        retry_in_s = retry_in.as_secs(),
                        "registration failed"
                    ),
                }
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
                    EndReason::SessionExpired => {
                        (EndKind::LocalHangup, Cause::RECOVERY_ON_TIMER_EXPIRY, None)
                    }
                };
                let mut end = LegEnd::new(kind, cause);
                end.sip_status = status;
                end.reason = status.map(|s| crate::sip::wire::reason_phrase(s).to_string());
                self.forget(leg, env);
                reg.leg_event(now, leg, LegEvent::Ended(end));
            }
            Event::Transfer {
                call: cref,
                outcome,
            } => {
                if let Some(leg) = self.by_ref.get(&cref).copied() {
                    let ev = LegEvent::TransferEnded {
                        ok: outcome.ok,
                        status: outcome.status,
                        reason: outcome.reason,
                    };
                    reg.leg_event(now, leg, ev);
                }
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
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.current = Some(neg);
                }
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
        if let LegCommand::Originate {
            target,
            trunk,
            caller_id,
            tag,
        } = &cmd
        {
            let to = Dialed {
                target,
                trunk: trunk.as_deref(),
                caller_id: caller_id.as_deref(),
                tag: tag.as_deref(),
            };
            self.originate(now, leg, to, ep, reg, env);
            return;
        }
        let Some(cref) = self.legs.get(&leg).map(|l| l.cref) else {
            return;
        };
        let id = MediaId(leg.0);
        let result = match cmd {
            LegCommand::Originate { .. } => return,
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
            LegCommand::Transfer { target, timeout } => {
                transfer(now, leg, cref, &target, timeout, ep, reg);
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
            l.current = negotiated.clone();
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

    /// A re-INVITE: a new offer is answered for real (codec change, new
    /// address, new ptime — the same stream in packets of the new size —,
    /// hold and resume: `sendonly`/`inactive` stop rivr sending);
    /// one without SDP gets rivr's offer and takes the answer from the ACK.
    fn reinvite(
        &mut self,
        now: Instant,
        cref: CallRef,
        sdp: Option<Vec<u8>>,
        ep: &mut Endpoint,
        env: &mut dyn Env,
    ) {
        let Some(leg) = self.by_ref.get(&cref).copied() else {
            let _ = ep.answer_reinvite(now, cref, 481, None);
            return;
        };
        let Some(l) = self.legs.get_mut(&leg) else {
            return;
        };
        let Some(local) = l.local_media.as_mut() else {
            let _ = ep.answer_reinvite(now, cref, 491, None);
            return;
        };
        // A new version of rivr's session for every new description.
        local.session_version = local.session_version.wrapping_add(1);
        let local = local.clone();
        let id = MediaId(leg.0);
        let Some(body) = sdp else {
            let offer = sdp::offer(&local);
            l.awaiting_answer = true;
            l.local_sdp = offer.clone();
            let _ = ep.answer_reinvite(now, cref, 200, Some(&offer));
            return;
        };
        let answered = sdp::parse(&String::from_utf8_lossy(&body))
            .map_err(|e| e.to_string())
            .and_then(|o| sdp::answer(&o, &local).map_err(|e| e.to_string()));
        match answered {
            Ok((neg, answer)) => {
                l.local_sdp = answer.clone();
                let same_codec = l.current.as_ref().is_some_and(|c| {
                    c.codec == neg.codec
                        && c.payload_type == neg.payload_type
                        && c.telephone_event_pt == neg.telephone_event_pt
                });
                let new_ptime = l
                    .current
                    .as_ref()
                    .is_some_and(|c| c.ptime_ms != neg.ptime_ms);
                if same_codec {
                    env.media(
                        leg,
                        MediaCommand::SetRemote {
                            call: id,
                            rtp: neg.remote_rtp,
                            rtcp: neg.remote_rtcp,
                        },
                    );
                    // The same stream goes on in packets of the new size.
                    if new_ptime {
                        env.media(
                            leg,
                            MediaCommand::SetPtime {
                                call: id,
                                ptime_ms: neg.ptime_ms,
                            },
                        );
                    }
                } else {
                    let session = session_config(&neg, &mut self.rng);
                    env.media(
                        leg,
                        MediaCommand::Configure {
                            call: id,
                            session,
                            codec: neg.codec,
                        },
                    );
                }
                let on_hold = matches!(
                    neg.direction,
                    sdp::Direction::RecvOnly | sdp::Direction::Inactive
                );
                env.media(
                    leg,
                    MediaCommand::Hold {
                        call: id,
                        on: on_hold,
                    },
                );
                if let Some(l) = self.legs.get_mut(&leg) {
                    l.current = Some(neg);
                }
                let _ = ep.answer_reinvite(now, cref, 200, Some(&answer));
            }
            Err(e) => {
                tracing::info!(leg = %leg, error = %e, "re-INVITE offer not acceptable: 488");
                let _ = ep.answer_reinvite(now, cref, 488, None);
            }
        }
    }

    /// Places an outbound leg: ports, an SDP offer, media (configured when
    /// the answer comes), the INVITE.
    #[allow(clippy::too_many_arguments)]
    fn originate(
        &mut self,
        now: Instant,
        leg: LegId,
        to: Dialed<'_>,
        ep: &mut Endpoint,
        reg: &mut Registry,
        env: &mut dyn Env,
    ) {
        let Dialed {
            target,
            trunk,
            caller_id,
            tag,
        } = to;
        let Some(call) = reg.call_of(leg) else {
            return;
        };
        let fail = |reg: &mut Registry, cause: Cause, why: &str| {
            tracing::info!(leg = %leg, target = ?target, why, "cannot place the call");
            let end = LegEnd::new(EndKind::Unanswered(Unanswered::Local(cause)), cause);
            reg.leg_event(now, leg, LegEvent::Ended(end));
        };
        let trunk_no = trunk.and_then(|t| self.cfg.trunks.iter().position(|x| x.name == t));
        let trunk_cfg = trunk_no.and_then(|i| self.cfg.trunks.get(i)).cloned();
        let (request_uri, to, dest, transport) = match (&trunk_cfg, target.strip_prefix("sip:")) {
            (Some(t), _) => {
                let uri = match target.strip_prefix("sip:") {
                    Some(_) => target.to_string(),
                    None => format!(
                        "sip:{target}@{}{}",
                        t.host_port,
                        if t.tcp { ";transport=tcp" } else { "" }
                    ),
                };
                let to = format!("<{uri}>");
                (uri, to, t.dest, t.transport)
            }
            (None, Some(_)) => match crate::sip::endpoint::uri_socket_addr(target) {
                Some(addr) => (
                    target.to_string(),
                    format!("<{target}>"),
                    addr,
                    Transport::Udp,
                ),
                None => {
                    return fail(
                        reg,
                        Cause::NO_ROUTE_DESTINATION,
                        "a sip: URI needs an IP address or a trunk",
                    )
                }
            },
            (None, None) => return fail(reg, Cause::NO_ROUTE_DESTINATION, "no trunk"),
        };
        if !valid_target(target) {
            return fail(
                reg,
                Cause::INVALID_NUMBER_FORMAT,
                "not a number or a sip: URI",
            );
        }
        let port = match env.reserve_rtp() {
            Ok(p) => p,
            Err(_) => return fail(reg, Cause::RESOURCE_UNAVAILABLE, "no RTP port"),
        };
        let codecs = trunk_cfg
            .as_ref()
            .map(|t| t.codecs.clone())
            .unwrap_or_else(|| self.cfg.codecs.clone());
        let local = LocalMedia {
            ip: self.cfg.public_ip,
            rtp_port: port,
            codecs,
            telephone_event: true,
            session_id: u64::from(self.rng.gen::<u32>()),
            session_version: u64::from(self.rng.gen::<u32>()),
        };
        let offer = sdp::offer(&local);
        let spec = MediaSpec {
            id: MediaId(leg.0),
            session: session_config(&self.placeholder(), &mut self.rng),
            codec: Codec::Pcmu,
            configured: false,
            early_media_unverified: self.cfg.early_media_unverified,
        };
        if env.media_add(call, leg, port, spec).is_err() {
            return fail(reg, Cause::RESOURCE_UNAVAILABLE, "no media worker");
        }
        let caller = caller_id.unwrap_or("anonymous").to_string();
        let mut headers = Vec::new();
        let from_host = trunk_cfg
            .as_ref()
            .map(|t| t.from_host.clone())
            .unwrap_or_else(|| self.cfg.public_ip.to_string());
        if trunk_cfg.as_ref().is_some_and(|t| t.send_pai) {
            headers.push((
                "P-Asserted-Identity".to_string(),
                format!("<sip:{caller}@{from_host}>"),
            ));
        }
        if trunk_cfg.as_ref().is_some_and(|t| t.privacy) {
            headers.push(("Privacy".to_string(), "id".to_string()));
        }
        // Only a token may become a Call-ID or a header value.
        let tag = tag.filter(|t| {
            !t.is_empty()
                && t.len() <= 64
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        });
        if let Some(t) = tag {
            headers.push(("X-Rivr-Attempt".to_string(), t.to_string()));
        }
        let cref = ep.invite(
            now,
            OutboundInvite {
                request_uri,
                to,
                from_user: caller,
                from_host,
                from_display: trunk_cfg.as_ref().and_then(|t| t.caller_name.clone()),
                dest,
                trunk: trunk_no,
                transport,
                route: trunk_cfg
                    .as_ref()
                    .map(|t| t.route.clone())
                    .unwrap_or_default(),
                sdp: offer.clone(),
                extra_headers: headers,
                credentials: trunk_cfg.as_ref().and_then(|t| t.credentials.clone()),
                call_id_prefix: tag.map(str::to_string),
            },
        );
        self.by_ref.insert(cref, leg);
        self.legs.insert(
            leg,
            SipLeg {
                cref,
                call,
                tag: tag.map(str::to_string),
                offer: None,
                local_media: Some(local),
                local_sdp: offer,
                awaiting_answer: false,
                port: None,
                media: true,
                answer_sdp: None,
                current: None,
            },
        );
        self.note_dialog(leg, ep, env);
        if let Some(id) = ep.call_id_of(cref) {
            reg.leg_event(
                now,
                leg,
                LegEvent::Placed {
                    transport_id: id,
                    transport: "sip",
                },
            );
        }
    }

    /// The far end's SDP answer (in a 183 or the 2xx) configures the
    /// leg's media once (again only if it changes); the trunk rivr chose is
    /// trusted, so the peer counts as verified. False when unusable.
    fn take_answer(&mut self, leg: LegId, body: &[u8], env: &mut dyn Env) -> bool {
        let Some(l) = self.legs.get_mut(&leg) else {
            return false;
        };
        if l.answer_sdp.as_deref() == Some(body) {
            return true;
        }
        let Some(local) = l.local_media.as_ref() else {
            return false;
        };
        let Some(neg) = sdp::parse(&String::from_utf8_lossy(body))
            .ok()
            .and_then(|a| sdp::accept_answer(&a, local).ok())
        else {
            return l.answer_sdp.is_some();
        };
        l.answer_sdp = Some(body.to_vec());
        l.current = Some(neg.clone());
        let id = MediaId(leg.0);
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
        env.media(
            leg,
            MediaCommand::Start {
                call: id,
                early: true,
            },
        );
        true
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

/// Sends REFER for `LegCommand::Transfer`, or reports at once why not.
fn transfer(
    now: Instant,
    leg: LegId,
    cref: CallRef,
    target: &str,
    timeout: Duration,
    ep: &mut Endpoint,
    reg: &mut Registry,
) {
    let refused = |reg: &mut Registry, status: u16, reason: &str| {
        let ev = LegEvent::TransferEnded {
            ok: false,
            status,
            reason: reason.to_string(),
        };
        reg.leg_event(now, leg, ev);
    };
    let Some((refer_to, referred_by)) = ep.transfer_uris(cref, target) else {
        tracing::warn!(%target, "transfer: not a SIP URI or number, or not an inbound call");
        return refused(reg, 400, "bad transfer target");
    };
    if ep
        .refer(now, cref, &refer_to, &referred_by, timeout)
        .is_err()
    {
        refused(reg, 481, "the dialog cannot transfer now");
    }
}

/// The user part of a SIP URI (`sip:1000@host` → `1000`).
fn user_of(uri: &str) -> Option<String> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let (user, _) = rest.split_once('@')?;
    let user = user.split(';').next()?;
    (!user.is_empty()).then(|| user.to_string())
}

/// A number (digits, `+`, `*`, `#`) or a `sip:` URI without spaces or
/// control characters.
/// Where an outbound leg goes and what it carries.
#[derive(Debug, Clone, Copy)]
struct Dialed<'a> {
    target: &'a str,
    trunk: Option<&'a str>,
    caller_id: Option<&'a str>,
    tag: Option<&'a str>,
}

fn valid_target(target: &str) -> bool {
    if let Some(rest) = target.strip_prefix("sip:") {
        return !rest.is_empty()
            && !rest
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '>' || c == '<');
    }
    !target.is_empty()
        && target.len() <= 64
        && target
            .chars()
            .all(|c| c.is_ascii_digit() || "+*#".contains(c))
}

/// How a SIP attempt that was never answered ended, for the call layer.
fn unanswered_end(f: &UacFailure) -> LegEnd {
    let from_reason = f
        .reason_header
        .as_deref()
        .and_then(crate::call::cause::cause_from_reason_header);
    let (kind, cause) = match f.kind {
        UacEnd::Refused => {
            let cause =
                from_reason.unwrap_or_else(|| Cause::from_sip_status(f.status.unwrap_or(500)));
            (
                Unanswered::Refused {
                    cause,
                    sip_status: f.status,
                },
                cause,
            )
        }
        UacEnd::NoResponse => (Unanswered::NoResponse, Cause::RECOVERY_ON_TIMER_EXPIRY),
        UacEnd::AuthFailed => (Unanswered::AuthFailed, Cause::CALL_REJECTED),
        UacEnd::Cancelled => (Unanswered::Cancelled, Cause::NORMAL_CLEARING),
    };
    LegEnd {
        kind: EndKind::Unanswered(kind),
        cause,
        sip_status: f.status,
        reason: f.reason.clone(),
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
        ptime_ms: neg.ptime_ms,
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
