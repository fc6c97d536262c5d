//! re-INVITEs the far end sends inside a dialog — on a call rivr answered
//! or one it placed. The core no longer answers them by itself: it reports
//! `Event::ReInvite` with the offer (or none) and the layer above answers
//! with `answer_reinvite` (200 with its new SDP, an offer when the re-INVITE
//! had none, or 488/491). A 2xx is retransmitted on T1 doubling to T2 until
//! its ACK (§13.3.1.4), which is reported as `Event::Confirmed` with the
//! answer when rivr offered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{CallGone, CallRef, Endpoint, Event, InviteTxEntry, Output, TxKey};
use crate::sip::message::{build_response, Request, ResponseParts, Transport, ALLOW};
use crate::sip::transaction::InviteServerTx;

/// A re-INVITE waiting for the layer above's answer.
pub(super) struct PendingReinvite {
    key: TxKey,
    req: Request,
    top_via: String,
    transport: Transport,
    dest: SocketAddr,
    /// What its 2xx says about the session timer (a refresh, RFC 4028 §9).
    session: Option<(u32, crate::sip::session_timer::Refresher, bool)>,
}

/// A 2xx to a re-INVITE, retransmitted until its ACK.
pub(super) struct Reinvite2xx {
    bytes: Vec<u8>,
    transport: Transport,
    dest: SocketAddr,
    next: Option<Instant>,
    interval: Duration,
    deadline: Instant,
}

impl Endpoint {
    /// Whether `call` is a dialog rivr knows (answered or placed).
    fn dialog_remote_cseq(&mut self, call: CallRef) -> Option<&mut u32> {
        if let Some(l) = self.calls.get_mut(&call) {
            return Some(&mut l.remote_cseq);
        }
        self.out.get_mut(&call).map(|l| &mut l.remote_cseq)
    }

    pub(super) fn handle_reinvite(
        &mut self,
        now: Instant,
        transport: Transport,
        dest: SocketAddr,
        top_via: &str,
        key: TxKey,
        req: Request,
    ) {
        let call = self.find_dialog(&req);
        let confirmed = call.is_some_and(|c| self.dialog_confirmed(c));
        let busy = call.is_some_and(|c| {
            self.reinvites.contains_key(&c)
                || self.reinvite_2xx.contains_key(&c)
                || self.refresh_invite_in_flight(c)
        });
        let session = self.session_decide(&req.headers);
        let code = match call.and_then(|c| self.dialog_remote_cseq(c)) {
            None => 481,
            Some(cseq) if req.cseq <= *cseq => 500,
            Some(cseq) => {
                *cseq = req.cseq;
                // §14.2: one offer/answer at a time.
                if !confirmed || busy {
                    491
                } else if session.is_err() {
                    422
                } else {
                    0
                }
            }
        };
        let mut tx = InviteServerTx::new(self.cfg.timers, transport.is_reliable());
        let call_ref = call.unwrap_or(0);
        if code != 0 {
            let min_se = match (code, session) {
                (422, Err(min_se)) => vec![("Min-SE", min_se.to_string())],
                _ => vec![],
            };
            let bytes = build_response(
                &req,
                top_via,
                code,
                &ResponseParts {
                    extra_headers: &min_se,
                    ..ResponseParts::default()
                },
                &self.cfg.user_agent,
            );
            let _sent = tx.send_response(now, code, bytes.clone());
            self.transmit(transport, dest, bytes);
            self.invite_txs.insert(
                key,
                InviteTxEntry {
                    tx,
                    call: call_ref,
                    transport,
                    dest,
                    merge_key: None,
                },
            );
            return;
        }
        self.invite_txs.insert(
            key.clone(),
            InviteTxEntry {
                tx,
                call: call_ref,
                transport,
                dest,
                merge_key: None,
            },
        );
        let sdp = req.has_sdp().then(|| req.body.clone());
        self.reinvites.insert(
            call_ref,
            PendingReinvite {
                key,
                req,
                top_via: top_via.to_string(),
                transport,
                dest,
                session: session.ok().flatten(),
            },
        );
        self.outputs.push_back(Output::Event(Event::ReInvite {
            call: call_ref,
            sdp,
        }));
    }

    fn dialog_confirmed(&self, call: CallRef) -> bool {
        if let Some(l) = self.calls.get(&call) {
            return l.state == super::leg::LegState::Confirmed;
        }
        self.out
            .get(&call)
            .is_some_and(|l| l.state == super::uac::OutState::Confirmed)
    }

    /// Answers the pending re-INVITE of `call`: `code` 200 with `sdp` (an
    /// answer, or an offer when the re-INVITE had none), or a refusal
    /// (488, 491) without.
    pub fn answer_reinvite(
        &mut self,
        now: Instant,
        call: CallRef,
        code: u16,
        sdp: Option<&str>,
    ) -> Result<(), CallGone> {
        let p = self.reinvites.remove(&call).ok_or(CallGone(call))?;
        let contact = self.contact_uri(p.transport);
        let ok = (200..300).contains(&code);
        let mut headers = vec![("Allow", ALLOW.to_string())];
        if let (true, Some((seconds, refresher, require))) = (ok, p.session) {
            headers.extend(Self::session_2xx_headers(seconds, refresher, require));
        }
        let bytes = build_response(
            &p.req,
            &p.top_via,
            code,
            &ResponseParts {
                to_tag: None,
                contact: ok.then_some(contact.as_str()),
                extra_headers: &headers,
                sdp,
            },
            &self.cfg.user_agent,
        );
        if ok {
            self.session_refreshed_by_peer(now, call, p.session, sdp);
        }
        self.invite_txs.modify(&p.key, |e| {
            let _ = e.tx.send_response(now, code, bytes.clone());
        });
        if ok {
            let t1 = self.cfg.timers.t1;
            self.reinvite_2xx.insert(
                call,
                Reinvite2xx {
                    bytes: bytes.clone(),
                    transport: p.transport,
                    dest: p.dest,
                    next: (!p.transport.is_reliable()).then(|| now + t1),
                    interval: t1,
                    deadline: now + self.cfg.timers.timeout_64t1(),
                },
            );
        }
        self.transmit(p.transport, p.dest, bytes);
        Ok(())
    }

    /// The ACK of a re-INVITE's 2xx; true when it was one.
    pub(super) fn reinvite_acked(&mut self, call: CallRef, req: &Request) -> bool {
        if self.reinvite_2xx.remove(&call).is_none() {
            return false;
        }
        let sdp = req.has_sdp().then(|| req.body.clone());
        self.outputs
            .push_back(Output::Event(Event::Confirmed { call, sdp }));
        true
    }

    pub(super) fn reinvite_timeouts(&mut self, now: Instant) {
        let t2 = self.cfg.timers.t2;
        let mut resend = Vec::new();
        let mut expired = Vec::new();
        for (call, r) in self.reinvite_2xx.iter_mut() {
            if r.deadline <= now {
                expired.push(*call);
            } else if r.next.is_some_and(|t| t <= now) {
                r.interval = (r.interval * 2).min(t2);
                r.next = Some(now + r.interval);
                resend.push((r.transport, r.dest, r.bytes.clone()));
            }
        }
        for (t, d, b) in resend {
            self.transmit(t, d, b);
        }
        for call in expired {
            // No ACK for the re-INVITE's 2xx: the session is in doubt; end
            // it (§14.2 leaves this to the UA; a dead peer is the usual cause).
            self.reinvite_2xx.remove(&call);
            tracing::info!(
                call,
                "no ACK for a re-INVITE's 2xx within 64*T1; hanging up"
            );
            let _ = self.hangup(now, call);
        }
        // A re-INVITE the layer above never answered: refuse it.
        let stale: Vec<CallRef> = self
            .reinvites
            .iter()
            .filter(|(_, p)| !self.invite_txs.contains_key(&p.key))
            .map(|(c, _)| *c)
            .collect();
        for call in stale {
            self.reinvites.remove(&call);
        }
    }

    pub(super) fn reinvite_next_timeout(&self) -> Option<Instant> {
        self.reinvite_2xx
            .values()
            .map(|r| r.next.map_or(r.deadline, |n| n.min(r.deadline)))
            .min()
    }
}
