//! INVITE handling in the UAS core: new calls, re-INVITEs, ACKs, and the
//! decisions of the layer above (ring, answer, reject).

use std::cmp::Reverse;
use std::net::SocketAddr;
use std::time::Instant;

use super::leg::{Leg, LegState};
use super::{CallGone, CallRef, EndReason, Endpoint, Event, InviteTxEntry, Output, TxKey};
use crate::sip::message::{build_response, Request, ResponseParts, Transport, ALLOW};
use crate::sip::transaction::{InviteServerState, InviteServerTx, TimerAction};

impl Endpoint {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn handle_new_invite(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        top_via: String,
        key: TxKey,
        req: Request,
    ) {
        let merge_key = (
            req.call_id.clone(),
            req.from_tag.clone().unwrap_or_default(),
            req.cseq,
        );
        if self
            .pending_invites
            .get(&merge_key)
            .is_some_and(|k| *k != key)
        {
            // §8.2.2.2: the same request arrived by another path.
            let bytes = build_response(
                &req,
                &top_via,
                482,
                &ResponseParts::default(),
                &self.cfg.user_agent,
            );
            self.transmit(transport, dest, bytes);
            return;
        }
        let session = match self.session_decide(&req.headers) {
            Ok(d) => d,
            Err(min_se) => {
                // RFC 4028 §9: the interval asked for is below rivr's Min-SE.
                let bytes = build_response(
                    &req,
                    &top_via,
                    422,
                    &ResponseParts {
                        to_tag: Some(&self.token(16)),
                        extra_headers: &[("Min-SE", min_se.to_string())],
                        ..ResponseParts::default()
                    },
                    &self.cfg.user_agent,
                );
                let mut tx = InviteServerTx::new(self.cfg.timers, transport.is_reliable());
                let _sent = tx.send_response(now, 422, bytes.clone());
                self.transmit(transport, dest, bytes);
                self.invite_txs.insert(
                    key,
                    InviteTxEntry {
                        tx,
                        call: 0,
                        transport,
                        dest,
                        merge_key: None,
                    },
                );
                return;
            }
        };
        let peer_allows_update =
            crate::sip::session_timer::read_headers(&req.headers).allows_update;
        let call = self.next_call;
        self.next_call += 1;
        self.stats.calls_started += 1;
        let local_tag = self.token(16);
        let mut tx = InviteServerTx::new(self.cfg.timers, transport.is_reliable());
        let trying = build_response(
            &req,
            &top_via,
            100,
            &ResponseParts::default(),
            &self.cfg.user_agent,
        );
        let _sent = tx.send_response(now, 100, trying.clone());
        self.transmit(transport, dest, trying);
        self.pending_invites.insert(merge_key.clone(), key.clone());
        self.invite_txs.insert(
            key.clone(),
            InviteTxEntry {
                tx,
                call,
                transport,
                dest,
                merge_key: Some(merge_key),
            },
        );
        let local_cseq = self.rng.gen_range(1..1u32 << 30);
        let leg = Leg {
            invite: Box::new(req.clone()),
            invite_key: key,
            transport,
            source,
            response_dest: dest,
            top_via,
            local_tag,
            state: LegState::Early,
            local_cseq,
            remote_cseq: req.cseq,
            local_sdp: None,
            bye_after_ack: false,
            session,
            peer_allows_update,
        };
        self.calls.insert(call, leg);
        self.outputs.push_back(Output::Event(Event::IncomingCall {
            call,
            request: Box::new(req),
            source,
        }));
    }

    pub(super) fn handle_ack(&mut self, now: Instant, key: &TxKey, req: Request) {
        // An ACK for a non-2xx final shares the INVITE's branch (§17.2.1).
        let absorbed = self.invite_txs.modify(key, |e| {
            let non_2xx = e.tx.state() == InviteServerState::Completed
                || e.tx.state() == InviteServerState::Confirmed;
            if non_2xx {
                e.tx.on_ack(now);
            }
            non_2xx
        });
        if absorbed == Some(true) {
            return;
        }
        // An ACK for a 2xx is its own transaction, matched to the dialog.
        let Some(call) = self.find_dialog(&req) else {
            self.stats.malformed_dropped += 1;
            return;
        };
        if self.reinvite_acked(call, &req) {
            return;
        }
        let Some(leg) = self.calls.get_mut(&call) else {
            return;
        };
        if let LegState::Accepted { .. } = leg.state {
            leg.state = LegState::Confirmed;
            let sdp = req.has_sdp().then(|| req.body.clone());
            let bye = leg.bye_after_ack;
            self.outputs
                .push_back(Output::Event(Event::Confirmed { call, sdp }));
            if bye {
                self.send_bye(now, call);
            } else {
                self.refer_after_ack(now, call);
            }
        }
    }

    /// 180 Ringing, or 183 Session Progress with early media when `sdp` is given.
    pub fn ring(&mut self, now: Instant, call: CallRef, sdp: Option<&str>) -> Result<(), CallGone> {
        let code = if sdp.is_some() { 183 } else { 180 };
        self.send_invite_response(now, call, code, sdp, &[])
    }

    /// 200 OK with rivr's SDP (an answer, or an offer if the INVITE had none).
    pub fn answer(&mut self, now: Instant, call: CallRef, sdp: &str) -> Result<(), CallGone> {
        self.send_invite_response(now, call, 200, Some(sdp), &[])
    }

    /// A final non-2xx response to an unanswered call.
    pub fn reject(&mut self, now: Instant, call: CallRef, code: u16) -> Result<(), CallGone> {
        if !(300..700).contains(&code) {
            return Err(CallGone(call));
        }
        self.send_invite_response(now, call, code, None, &[])?;
        self.end_call(call);
        Ok(())
    }

    /// A final non-2xx response that tells the caller when to try again
    /// (`Retry-After`, in seconds, RFC 3261 §20.33): 503 for overload
    /// (admission control), or 480/486/600/603.
    pub fn reject_retry_after(
        &mut self,
        now: Instant,
        call: CallRef,
        code: u16,
        retry_after_s: u32,
    ) -> Result<(), CallGone> {
        if !(300..700).contains(&code) {
            return Err(CallGone(call));
        }
        let extra = [("Retry-After", retry_after_s.to_string())];
        self.send_invite_response(now, call, code, None, &extra)?;
        self.end_call(call);
        Ok(())
    }

    /// Ends the call the right way for its state: BYE once answered (after
    /// the ACK, §15), 480 before.
    pub fn hangup(&mut self, now: Instant, call: CallRef) -> Result<(), CallGone> {
        if self.out.contains_key(&call) {
            return self.hangup_out(now, call);
        }
        let state = self
            .calls
            .get(&call)
            .map(|l| l.state.clone())
            .ok_or(CallGone(call))?;
        match state {
            LegState::Early => self.reject(now, call, 480),
            LegState::Accepted { .. } => {
                if let Some(l) = self.calls.get_mut(&call) {
                    l.bye_after_ack = true;
                }
                Ok(())
            }
            LegState::Confirmed => {
                self.send_bye(now, call);
                Ok(())
            }
            LegState::Terminating => Ok(()),
        }
    }

    pub(super) fn send_invite_final(&mut self, now: Instant, call: CallRef, code: u16) {
        let _ = self.send_invite_response(now, call, code, None, &[]);
    }

    fn send_invite_response(
        &mut self,
        now: Instant,
        call: CallRef,
        code: u16,
        sdp: Option<&str>,
        extra: &[(&'static str, String)],
    ) -> Result<(), CallGone> {
        let contact = {
            let leg = self.calls.get(&call).ok_or(CallGone(call))?;
            if leg.state != LegState::Early {
                return Err(CallGone(call));
            }
            self.contact_uri(leg.transport)
        };
        let leg = self.calls.get_mut(&call).ok_or(CallGone(call))?;
        let with_contact = (101..300).contains(&code);
        let mut headers = vec![("Allow", ALLOW.to_string())];
        headers.extend_from_slice(extra);
        let session = (200..300).contains(&code).then_some(leg.session).flatten();
        if let Some((seconds, refresher, require)) = session {
            headers.extend(Self::session_2xx_headers(seconds, refresher, require));
        }
        let peer_allows_update = leg.peer_allows_update;
        let bytes = build_response(
            &leg.invite,
            &leg.top_via,
            code,
            &ResponseParts {
                to_tag: Some(&leg.local_tag),
                contact: with_contact.then_some(contact.as_str()),
                extra_headers: &headers,
                sdp,
            },
            &self.cfg.user_agent,
        );
        let sent = self
            .invite_txs
            .modify(&leg.invite_key, |e| {
                e.tx.send_response(now, code, bytes.clone())
            })
            .ok_or(CallGone(call))?;
        if !sent {
            return Err(CallGone(call));
        }
        let (transport, dest) = (leg.transport, leg.response_dest);
        if (200..300).contains(&code) {
            leg.local_sdp = sdp.map(str::to_string);
            let t1 = self.cfg.timers.t1;
            leg.state = LegState::Accepted {
                response: bytes.clone(),
                next_retransmit: (!transport.is_reliable()).then(|| now + t1),
                interval: t1,
                deadline: now + self.cfg.timers.timeout_64t1(),
            };
            if let Some(at) = leg.accepted_deadline() {
                self.accepted_timers.push(Reverse((at, call)));
            }
            let key = leg.dialog_key();
            self.dialogs.insert(key, call);
            self.session_started_as_uas(now, call, session, peer_allows_update, sdp);
        }
        self.transmit(transport, dest, bytes);
        Ok(())
    }

    /// Fires every due timer of every transaction and call.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut resend = Vec::new();
        for k in self.invite_txs.due(now) {
            let fired = self.invite_txs.modify(&k, |e| {
                let action = e.tx.handle_timeout(now);
                if action == TimerAction::Retransmit {
                    resend.push((e.transport, e.dest, e.tx.retransmit_bytes().to_vec()));
                }
                action
            });
            if matches!(fired, Some(TimerAction::TimedOut | TimerAction::Terminated)) {
                if let Some(e) = self.invite_txs.remove(&k) {
                    if let Some(m) = e.merge_key {
                        if self.pending_invites.get(&m) == Some(&k) {
                            self.pending_invites.remove(&m);
                        }
                    }
                }
            }
        }
        for k in self.nists.due(now) {
            let fired = self.nists.modify(&k, |e| e.tx.handle_timeout(now));
            if fired.is_some_and(|a| a != TimerAction::None) {
                self.nists.remove(&k);
            }
        }
        let mut nict_done = Vec::new();
        for k in self.nicts.due(now) {
            let fired = self.nicts.modify(&k, |e| {
                let action = e.tx.handle_timeout(now);
                if action == TimerAction::Retransmit {
                    resend.push((e.transport, e.dest, e.tx.request_bytes().to_vec()));
                }
                (action, e.call)
            });
            match fired {
                Some((TimerAction::TimedOut, call)) => nict_done.push((k, Some(call))),
                Some((TimerAction::Terminated, _)) => nict_done.push((k, None)),
                _ => {}
            }
        }
        for (k, call) in nict_done {
            self.nicts.remove(&k);
            if let Some(call) = call {
                self.finish_local_bye(call);
            }
        }
        let mut ack_timeouts = Vec::new();
        while let Some(Reverse((at, call))) = self.accepted_timers.peek().copied() {
            if at > now {
                break;
            }
            self.accepted_timers.pop();
            let Some(leg) = self.calls.get_mut(&call) else {
                continue;
            };
            if leg.accepted_deadline().is_none_or(|d| d > now) {
                // Stale: the leg moved on, or an item for its later time exists.
                continue;
            }
            if let LegState::Accepted {
                response,
                next_retransmit,
                interval,
                deadline,
            } = &mut leg.state
            {
                if *deadline <= now {
                    ack_timeouts.push(call);
                    continue;
                }
                if next_retransmit.is_some_and(|t| t <= now) {
                    *interval = (*interval * 2).min(self.cfg.timers.t2);
                    *next_retransmit = Some(now + *interval);
                    resend.push((leg.transport, leg.response_dest, response.clone()));
                }
            }
            if let Some(at) = leg.accepted_deadline() {
                self.accepted_timers.push(Reverse((at, call)));
            }
        }
        for (t, d, b) in resend {
            self.transmit(t, d, b);
        }
        self.ict_timeouts(now);
        self.link_timeouts(now);
        self.reinvite_timeouts(now);
        self.session_timeouts(now);
        self.refer_timeouts(now);
        for call in ack_timeouts {
            tracing::info!(call, "no ACK for 2xx within 64*T1; sending BYE");
            if let Some(l) = self.calls.get_mut(&call) {
                l.state = LegState::Confirmed;
            }
            self.send_bye(now, call);
            self.outputs.push_back(Output::Event(Event::Ended {
                call,
                reason: EndReason::AckTimeout,
            }));
        }
    }
}

use rand::Rng as _;
