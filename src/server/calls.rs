//! What the server does with each call the SIP core reports: route the
//! dialed number, negotiate SDP, set up media, start the script, carry the
//! script's signalling verbs to the core, and end everything once — media
//! released, script told, CDR written.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crossbeam_channel::Sender;

use super::cdr::Cdr;
use super::Shared;
use crate::call::admission::{Admission, Decision};
use crate::call::channel::{CallShared, ChannelControl, SigCommand};
use crate::call::control::{CallEnded, CallEvent, CallInfo, DigitSource};
use crate::media::codec::Codec;
use crate::media::ports::PortPair;
use crate::media::rtp_session::RtpSessionConfig;
use crate::media::worker::{MediaCallSetup, MediaCommand};
use crate::rate::{retry_after_secs, LogThrottle};
use crate::script::runner::{self, Outcome};
use crate::sip::endpoint::{CallRef, EndReason, Endpoint, Event};
use crate::sip::message::Request;
use crate::sip::sdp::{self, LocalMedia, Negotiated};

struct ActiveCall {
    info: CallInfo,
    shared: Arc<CallShared>,
    events: Sender<CallEvent>,
    media: Sender<MediaCommand>,
    local_media: LocalMedia,
    local_sdp: String,
    /// Set while rivr offered in the 2xx and waits for the answer in the ACK.
    awaiting_answer: bool,
    answered_at: Option<Instant>,
    ended: Option<&'static str>,
    script: Option<String>,
}

pub struct Calls {
    shared: Arc<Shared>,
    calls: HashMap<CallRef, ActiveCall>,
    /// `[limits] max_calls`/`max_cps`; a call counts while it is in
    /// `calls` (signalling up or script still running).
    admission: Admission,
    refusal_log: LogThrottle,
}

impl Calls {
    pub fn new(shared: Arc<Shared>, admission: Admission) -> Self {
        Calls {
            shared,
            calls: HashMap::new(),
            admission,
            refusal_log: LogThrottle::new(std::time::Duration::from_secs(10)),
        }
    }

    /// Calls whose signalling is still up.
    pub fn active(&self) -> usize {
        self.calls.values().filter(|c| c.ended.is_none()).count()
    }

    /// Calls not yet closed (signalling up, or script still running).
    pub fn tracked(&self) -> usize {
        self.calls.len()
    }

    /// At the end of shutdown: writes the CDR of every call whose script
    /// did not finish in time.
    pub fn flush_unfinished(&mut self) {
        let left: Vec<CallRef> = self.calls.keys().copied().collect();
        for call in left {
            if let Some(c) = self.calls.get_mut(&call) {
                c.ended.get_or_insert("shutdown");
                c.script
                    .get_or_insert_with(|| "unfinished at shutdown".into());
            }
            self.maybe_close(call);
        }
    }

    pub fn on_event(&mut self, ep: &mut Endpoint, ev: Event) {
        match ev {
            Event::IncomingCall {
                call,
                request,
                source,
            } => self.incoming(ep, call, *request, source),
            Event::Confirmed { call, sdp } => self.confirmed(ep, call, sdp),
            Event::ReInvite { call, sdp } => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                let offer = sdp
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .and_then(|s| sdp::parse(&s).ok());
                if let Some(neg) = offer
                    .and_then(|o| sdp::answer(&o, &c.local_media).ok())
                    .map(|x| x.0)
                {
                    let _ = c.media.send(MediaCommand::SetRemote {
                        call,
                        rtp: neg.remote_rtp,
                        rtcp: neg.remote_rtcp,
                    });
                }
            }
            Event::Info {
                call,
                content_type,
                body,
            } => {
                let Some(c) = self.calls.get(&call) else {
                    return;
                };
                if let Some(digit) = info_digit(content_type.as_deref(), &body) {
                    let _ = c.media.send(MediaCommand::Digit {
                        call,
                        digit,
                        source: DigitSource::SipInfo,
                    });
                }
            }
            Event::Ended { call, reason } => {
                let end = match reason {
                    EndReason::RemoteBye => "remote-bye",
                    EndReason::Cancelled => "cancelled",
                    EndReason::AckTimeout => "ack-timeout",
                    EndReason::LocalByeDone => "local-bye",
                };
                self.finish(call, end);
            }
        }
    }

    pub fn on_command(&mut self, ep: &mut Endpoint, cmd: SigCommand) {
        let now = Instant::now();
        match cmd {
            SigCommand::Answer(call, reply) => {
                let r = match self.calls.get_mut(&call) {
                    Some(c) if c.ended.is_none() => match ep.answer(now, call, &c.local_sdp) {
                        Ok(()) => {
                            c.answered_at = Some(now);
                            let _ = c.media.send(MediaCommand::Start { call, early: false });
                            Ok(())
                        }
                        Err(_) => Err(CallEnded),
                    },
                    _ => Err(CallEnded),
                };
                let _ = reply.send(r);
            }
            SigCommand::Ring(call, early, reply) => {
                let r = match self.calls.get(&call) {
                    Some(c) if c.ended.is_none() => {
                        let sdp = early.then_some(c.local_sdp.as_str());
                        let r = ep.ring(now, call, sdp).map_err(|_| CallEnded);
                        if r.is_ok() && early {
                            let _ = c.media.send(MediaCommand::Start { call, early: true });
                        }
                        r
                    }
                    _ => Err(CallEnded),
                };
                let _ = reply.send(r);
            }
            SigCommand::Reject(call, code, reply) => {
                let r = ep.reject(now, call, code).map_err(|_| CallEnded);
                if r.is_ok() {
                    self.finish(call, "rejected");
                }
                let _ = reply.send(r);
            }
            SigCommand::Hangup(call) => {
                let answered = self
                    .calls
                    .get(&call)
                    .is_some_and(|c| c.answered_at.is_some());
                if ep.hangup(now, call).is_ok() {
                    self.finish(call, if answered { "local-bye" } else { "rejected" });
                }
            }
            SigCommand::ScriptDone(call, outcome) => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.script = Some(outcome);
                }
                self.maybe_close(call);
            }
        }
    }

    /// Ends every call (shutdown).
    pub fn hangup_all(&mut self, ep: &mut Endpoint) {
        let live: Vec<CallRef> = self
            .calls
            .iter()
            .filter(|(_, c)| c.ended.is_none())
            .map(|(k, _)| *k)
            .collect();
        for call in live {
            let _ = ep.hangup(Instant::now(), call);
            self.finish(call, "shutdown");
        }
    }

    fn incoming(&mut self, ep: &mut Endpoint, call: CallRef, req: Request, source: SocketAddr) {
        let now = Instant::now();
        let number = req.uri_user.clone().unwrap_or_default();
        let info = CallInfo {
            id: req.call_id.clone(),
            from: req.from_uri.clone(),
            to: number.clone(),
            direction: "inbound",
            started_at: SystemTime::now(),
        };
        let span = tracing::info_span!("call", id = ?info.id);
        let _e = span.enter();
        if let Decision::Refuse { why, retry_after } = self.admission.decide(now, self.calls.len())
        {
            // Before routing: a refusal says nothing about the number.
            let secs = retry_after_secs(retry_after);
            let _ = ep.reject_retry_after(now, call, 503, secs);
            if let Some(held_back) = self.refusal_log.event(now) {
                tracing::warn!(
                    why = ?why,
                    retry_after_s = secs,
                    in_progress = self.calls.len(),
                    more_since_last_line = held_back,
                    "call refused by admission control: 503"
                );
            }
            return;
        }
        let cfg = &self.shared.config;
        let Some(route) = cfg.route_for(&number).cloned() else {
            tracing::info!(?number, %source, "no route for the dialed number: 404");
            let _ = ep.reject(now, call, 404);
            self.write_cdr(
                &info,
                None,
                "rejected",
                "none (no route)".into(),
                &CallShared::default(),
            );
            return;
        };
        let ports = match self.shared.ports.allocate(cfg.sip.listen.ip()) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP port: 503");
                let _ = ep.reject(now, call, 503);
                self.write_cdr(
                    &info,
                    None,
                    "rejected",
                    "none (no RTP port)".into(),
                    &CallShared::default(),
                );
                return;
            }
        };
        let local_media = LocalMedia {
            ip: cfg.sip.public_ip,
            rtp_port: ports.port,
            codecs: cfg.media.codecs.clone(),
            telephone_event: true,
            session_id: rand::random::<u32>() as u64,
            session_version: rand::random::<u32>() as u64,
        };
        let (negotiated, local_sdp) = if req.has_sdp() {
            let text = String::from_utf8_lossy(&req.body);
            let offer = match sdp::parse(&text) {
                Ok(o) => o,
                Err(e) => {
                    tracing::info!(error = %e, "unparseable SDP offer: 400");
                    let _ = ep.reject(now, call, 400);
                    self.shared.ports.release(ports.port);
                    return;
                }
            };
            match sdp::answer(&offer, &local_media) {
                Ok((neg, answer)) => (Some(neg), answer),
                Err(e) => {
                    tracing::info!(error = %e, "no common codec: 488");
                    let _ = ep.reject(now, call, 488);
                    self.shared.ports.release(ports.port);
                    self.write_cdr(
                        &info,
                        None,
                        "rejected",
                        "none (488)".into(),
                        &CallShared::default(),
                    );
                    return;
                }
            }
        } else {
            (None, sdp::offer(&local_media))
        };
        let (events_tx, events_rx) = crossbeam_channel::unbounded();
        let setup = media_setup(
            call,
            ports,
            negotiated.as_ref(),
            &self.shared,
            events_tx.clone(),
        );
        let Some(media) = self.shared.media.add(setup) else {
            let _ = ep.reject(now, call, 503);
            return;
        };
        let shared = Arc::new(CallShared::default());
        let ctl = ChannelControl {
            call,
            sig: self.shared.sig_tx.clone(),
            media: media.clone(),
            events: events_rx,
            prompts: self.shared.prompts.clone(),
            shared: shared.clone(),
            sms: self.shared.sms.clone(),
        };
        let done_tx = self.shared.sig_tx.clone();
        let spawned = runner::spawn(
            self.shared.scripts.clone(),
            route.script.clone(),
            info.clone(),
            Box::new(ctl),
            move |outcome: &Outcome| {
                let text = match outcome {
                    Outcome::Completed => "completed".to_string(),
                    Outcome::HungUp => "hangup".to_string(),
                    Outcome::CallerHungUp => "caller-hung-up".to_string(),
                    Outcome::Failed(m) => format!("failed: {m}"),
                };
                let _ = done_tx.send(SigCommand::ScriptDone(call, text));
            },
        );
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the script thread: 503");
            let _ = ep.reject(now, call, 503);
            let _ = media.send(MediaCommand::Remove { call });
            return;
        }
        tracing::info!(?number, %source, script = %route.script.display(), "call started");
        self.calls.insert(
            call,
            ActiveCall {
                info,
                shared,
                events: events_tx,
                media,
                local_media,
                local_sdp,
                awaiting_answer: negotiated.is_none(),
                answered_at: None,
                ended: None,
                script: None,
            },
        );
    }

    fn confirmed(&mut self, ep: &mut Endpoint, call: CallRef, sdp: Option<Vec<u8>>) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if !c.awaiting_answer {
            let _ = c.media.send(MediaCommand::PeerConfirmed { call });
            return;
        }
        c.awaiting_answer = false;
        let neg = sdp
            .as_deref()
            .map(String::from_utf8_lossy)
            .and_then(|s| sdp::parse(&s).ok())
            .and_then(|a| sdp::accept_answer(&a, &c.local_media).ok());
        match neg {
            Some(neg) => {
                let _ = c.media.send(MediaCommand::Configure {
                    call,
                    session: session_config(&neg),
                    codec: neg.codec,
                });
                let _ = c.media.send(MediaCommand::PeerConfirmed { call });
            }
            None => {
                tracing::info!(id = ?c.info.id, "ACK without a usable SDP answer; hanging up");
                let _ = ep.hangup(Instant::now(), call);
                self.finish(call, "local-bye");
            }
        }
    }

    /// The call's signalling is over: stop media, wake the script.
    pub(super) fn finish(&mut self, call: CallRef, end: &'static str) {
        let Some(c) = self.calls.get_mut(&call) else {
            return;
        };
        if c.ended.is_some() {
            return;
        }
        c.ended = Some(end);
        c.shared.gone.store(true, Ordering::Release);
        let _ = c.events.send(CallEvent::Hangup);
        let _ = c.media.send(MediaCommand::Remove { call });
        let active = self.active();
        if let Some(c) = self.calls.get(&call) {
            tracing::info!(id = ?c.info.id, end, active, "call ended active={active}");
        }
        self.maybe_close(call);
    }

    /// Writes the CDR once both the signalling and the script are done.
    fn maybe_close(&mut self, call: CallRef) {
        let ready = self
            .calls
            .get(&call)
            .is_some_and(|c| c.ended.is_some() && c.script.is_some());
        if !ready {
            return;
        }
        if let Some(c) = self.calls.remove(&call) {
            let end = c.ended.unwrap_or("unknown");
            let script = c.script.clone().unwrap_or_default();
            self.write_cdr(&c.info, c.answered_at, end, script, &c.shared);
        }
    }

    fn write_cdr(
        &self,
        info: &CallInfo,
        answered: Option<Instant>,
        end: &'static str,
        script: String,
        shared: &CallShared,
    ) {
        let mut results = serde_json::Map::new();
        if let Ok(r) = shared.results.lock() {
            for (k, v) in r.iter() {
                results.insert(k.clone(), serde_json::Value::String(v.clone()));
            }
        }
        self.shared.cdr.write(&Cdr {
            call_id: info.id.clone(),
            from: info.from.clone(),
            to: info.to.clone(),
            started_at: runner::rfc3339(info.started_at),
            answered: answered.is_some(),
            duration_ms: answered
                .map(|a| a.elapsed().as_millis() as u64)
                .unwrap_or(0),
            end,
            script,
            results,
        });
    }
}

fn session_config(neg: &Negotiated) -> RtpSessionConfig {
    RtpSessionConfig {
        local_ssrc: rand::random(),
        payload_type: neg.payload_type,
        clock_rate: neg.codec.clock_rate(),
        telephone_event_pt: neg.telephone_event_pt,
        telephone_event_rate: neg.telephone_event_rate,
        remote_rtp: neg.remote_rtp,
        remote_rtcp: neg.remote_rtcp,
        initial_seq: rand::random(),
        initial_timestamp: rand::random(),
        cname: format!("rivr-{:08x}", rand::random::<u32>()),
    }
}

fn media_setup(
    call: CallRef,
    ports: PortPair,
    neg: Option<&Negotiated>,
    shared: &Shared,
    events: Sender<CallEvent>,
) -> MediaCallSetup {
    let (session, codec, configured) = match neg {
        Some(n) => (session_config(n), n.codec, true),
        None => {
            // Placeholder until the ACK brings the answer (`Configure`).
            let discard = SocketAddr::new(shared.config.sip.listen.ip(), 9);
            let n = Negotiated {
                codec: Codec::Pcmu,
                payload_type: 0,
                codec_fmtp: None,
                telephone_event_pt: None,
                telephone_event_rate: 8000,
                remote_rtp: discard,
                remote_rtcp: discard,
                ptime_ms: 20,
                direction: sdp::Direction::SendRecv,
            };
            (session_config(&n), Codec::Pcmu, false)
        }
    };
    let sig = shared.sig_tx.clone();
    MediaCallSetup {
        call,
        ports,
        session,
        codec,
        configured,
        events,
        allocator: shared.ports.clone(),
        early_media_unverified: shared.config.rtp.early_media_unverified,
        // The media worker ended the call (a panic serving it): hang up.
        on_failure: Some(Box::new(move || {
            let _ = sig.send(SigCommand::Hangup(call));
        })),
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
