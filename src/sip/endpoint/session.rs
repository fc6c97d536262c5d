//! Session timers (RFC 4028) on the endpoint's dialogs, both directions:
//! the headers of rivr's INVITEs and 2xx, 422 when a caller asks for less
//! than rivr's Min-SE, the refreshes rivr sends when it is the refresher
//! (UPDATE when the peer allows it, else a re-INVITE with rivr's unchanged
//! SDP; §7.4, §9), the refreshes it receives (re-INVITE or UPDATE, each
//! answered with the interval it settles on), and BYE when a session runs
//! out (§10). The decisions are `sip::session_timer`'s; this module owns
//! their state per call and the transactions of the refreshes.
//!
//! A refresh that fails with 408, 481 or no answer at all ends the call at
//! once (§10). 401/407 are answered once with the trunk's credentials, 422
//! is retried with the interval asked for, 491 after 2.1–4 s (RFC 3261
//! §14.1), 405/501 to an UPDATE by a re-INVITE; any other failure is
//! retried every 10 s until the session would have expired, then BYE.
//! The SDP answer to rivr's refresh re-INVITE is not applied: it offered
//! what it had, and the peer is expected to answer the same.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng as _;

use super::uac::Outgoing;
use super::{CallRef, EndReason, Endpoint, Event, Output};
use crate::sip::message::{Response, Transport};
use crate::sip::session_timer::{
    self, read_headers, Policy, Refresher, SessionTimer, TimerAction, UasDecision,
};
use crate::sip::transaction::{
    InviteClientTx, NonInviteClientTx, ResponseAction, TimerAction as TxAction,
};

/// A running session timer on one dialog.
pub(super) struct Session {
    timer: SessionTimer,
    seconds: u32,
    peer_allows_update: bool,
    /// UPDATE was refused (405/501): refresh by re-INVITE from now on.
    update_refused: bool,
    /// The SDP rivr last sent in this dialog: the body of a refresh re-INVITE.
    local_sdp: Option<String>,
    /// The branch of rivr's refresh in flight.
    in_flight: Option<String>,
    /// When to try again after a refresh failed without ending the call.
    retry_at: Option<Instant>,
    /// The interval to ask for in the next refresh (raised by a 422).
    ask: u32,
}

impl Session {
    pub(super) fn new(
        seconds: u32,
        we_refresh: bool,
        peer_allows_update: bool,
        local_sdp: Option<String>,
        now: Instant,
    ) -> Self {
        Session {
            timer: SessionTimer::new(seconds, we_refresh, now),
            seconds,
            peer_allows_update,
            update_refused: false,
            local_sdp,
            in_flight: None,
            retry_at: None,
            ask: seconds,
        }
    }

    fn next_due(&self) -> Option<Instant> {
        if self.in_flight.is_some() {
            return None;
        }
        let expiry = self.timer.expires_at();
        if !self.timer.we_refresh() {
            return Some(self.timer.deadline());
        }
        Some(self.retry_at.unwrap_or(self.timer.deadline()).min(expiry))
    }
}

/// rivr's refresh request and its transaction.
pub(super) struct RefreshTx {
    call: CallRef,
    kind: RefreshKind,
    transport: Transport,
    dest: SocketAddr,
    /// Request-URI and the dialog's headers, for the ACK.
    uri: String,
    route: Vec<String>,
    from: String,
    call_id: String,
    cseq: u32,
    /// The ACK for the 2xx, re-sent for each retransmitted 2xx.
    ack_2xx: Option<Vec<u8>>,
    auth_retried: bool,
    answered: bool,
}

enum RefreshKind {
    Update(NonInviteClientTx),
    Invite(InviteClientTx),
}

/// The dialog's addressing, as an in-dialog request from rivr needs it.
pub(super) struct DialogView {
    pub(super) transport: Transport,
    pub(super) dest: SocketAddr,
    pub(super) uri: String,
    pub(super) route: Vec<String>,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) call_id: String,
    pub(super) cseq: u32,
}

/// How a refresh of rivr's ended.
enum RefreshEnd {
    Ok(Response),
    Failed(Response),
    NoAnswer,
}

impl Endpoint {
    fn policy(&self) -> Policy {
        self.cfg.session
    }

    /// The headers rivr puts in its INVITEs: `Supported: timer`, and the
    /// interval it asks for when `ask` is set.
    pub(super) fn session_invite_headers(&self, ask: Option<u32>) -> Vec<(String, String)> {
        let mut h = vec![("Supported".to_string(), "timer".to_string())];
        if let Some(seconds) = ask {
            h.push(("Session-Expires".into(), seconds.to_string()));
            h.push(("Min-SE".into(), self.policy().min_se.to_string()));
        }
        h
    }

    /// RFC 4028 §9 for a new INVITE: `Err(min_se)` when it must be refused
    /// with 422, else what the 2xx will say.
    pub(super) fn session_decide(
        &self,
        headers: &[(String, String)],
    ) -> Result<Option<(u32, Refresher, bool)>, u32> {
        let h = read_headers(headers);
        match session_timer::uas_decide(
            self.policy(),
            h.session_expires,
            h.min_se,
            h.supports_timer,
        ) {
            UasDecision::None => Ok(None),
            UasDecision::TooSmall { min_se } => Err(min_se),
            UasDecision::Run {
                seconds,
                refresher,
                require_timer,
            } => Ok(Some((seconds, refresher, require_timer))),
        }
    }

    /// The headers of a 2xx that runs a session timer.
    pub(super) fn session_2xx_headers(
        seconds: u32,
        refresher: Refresher,
        require: bool,
    ) -> Vec<(&'static str, String)> {
        let mut h = vec![
            (
                "Session-Expires",
                format!("{seconds};refresher={}", refresher.as_str()),
            ),
            ("Supported", "timer".to_string()),
        ];
        if require {
            h.push(("Require", "timer".to_string()));
        }
        h
    }

    /// A 2xx of rivr's (to an INVITE, re-INVITE or UPDATE) started or
    /// refreshed the session: `refresher` as the 2xx says it, rivr being
    /// the UAS of that transaction.
    pub(super) fn session_started_as_uas(
        &mut self,
        now: Instant,
        call: CallRef,
        decision: Option<(u32, Refresher, bool)>,
        peer_allows_update: bool,
        sdp: Option<&str>,
    ) {
        let Some((seconds, refresher, _)) = decision else {
            // A refresh without a timer turns it off (§9).
            self.sessions.remove(&call);
            return;
        };
        let local_sdp = sdp
            .map(str::to_string)
            .or_else(|| self.sessions.get(&call).and_then(|s| s.local_sdp.clone()));
        let allows = peer_allows_update
            || self
                .sessions
                .get(&call)
                .is_some_and(|s| s.peer_allows_update);
        self.sessions.insert(
            call,
            Session::new(seconds, refresher == Refresher::Uas, allows, local_sdp, now),
        );
    }

    /// rivr's INVITE was answered: what the 2xx says about the session
    /// (§7.2), with rivr as the UAC.
    pub(super) fn session_started_as_uac(
        &mut self,
        now: Instant,
        call: CallRef,
        asked: Option<u32>,
        resp: &Response,
        sdp: &str,
    ) {
        let h = read_headers(&resp.headers);
        if let Some((seconds, refresher)) = session_timer::uac_learn(asked, h.session_expires) {
            self.sessions.insert(
                call,
                Session::new(
                    seconds,
                    refresher == Refresher::Uac,
                    h.allows_update,
                    Some(sdp.to_string()),
                    now,
                ),
            );
        }
    }

    /// True while rivr's refresh re-INVITE is in flight (a re-INVITE from
    /// the peer then gets 491, §14.1).
    pub(super) fn refresh_invite_in_flight(&self, call: CallRef) -> bool {
        self.refreshes
            .values()
            .any(|r| r.call == call && !r.answered && matches!(r.kind, RefreshKind::Invite(_)))
    }

    pub(super) fn session_next_timeout(&self) -> Option<Instant> {
        let sessions = self.sessions.values().filter_map(Session::next_due);
        let txs = self.refreshes.values().filter_map(|r| match &r.kind {
            RefreshKind::Update(tx) => tx.poll_timeout(),
            RefreshKind::Invite(tx) => tx.poll_timeout(),
        });
        sessions.chain(txs).min()
    }

    pub(super) fn session_timeouts(&mut self, now: Instant) {
        // The refreshes' transactions first: a timed-out refresh ends its call.
        let mut resend = Vec::new();
        let mut done = Vec::new();
        for (branch, r) in self.refreshes.iter_mut() {
            let action = match &mut r.kind {
                RefreshKind::Update(tx) => {
                    let a = tx.handle_timeout(now);
                    if a == TxAction::Retransmit {
                        resend.push((r.transport, r.dest, tx.request_bytes().to_vec()));
                    }
                    a
                }
                RefreshKind::Invite(tx) => {
                    let a = tx.handle_timeout(now);
                    if a == TxAction::Retransmit {
                        resend.push((r.transport, r.dest, tx.request_bytes().to_vec()));
                    }
                    a
                }
            };
            match action {
                TxAction::TimedOut if !r.answered => done.push((branch.clone(), Some(r.call))),
                TxAction::TimedOut | TxAction::Terminated => done.push((branch.clone(), None)),
                _ => {}
            }
        }
        for (t, d, b) in resend {
            self.transmit(t, d, b);
        }
        for (branch, unanswered) in done {
            self.refreshes.remove(&branch);
            if let Some(call) = unanswered {
                self.refresh_ended(now, call, &branch, RefreshEnd::NoAnswer);
            }
        }
        let due: Vec<(CallRef, TimerAction)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.in_flight.is_none())
            .filter_map(|(c, s)| {
                if now >= s.timer.expires_at() {
                    return Some((*c, TimerAction::Expired));
                }
                match s.timer.poll(now) {
                    TimerAction::Refresh if s.retry_at.is_none_or(|t| t <= now) => {
                        Some((*c, TimerAction::Refresh))
                    }
                    TimerAction::Expired => Some((*c, TimerAction::Expired)),
                    _ => None,
                }
            })
            .collect();
        for (call, action) in due {
            match action {
                TimerAction::Refresh => self.send_refresh(now, call, None),
                _ => self.session_expired(now, call),
            }
        }
    }

    /// No refresh in time, or a refresh that failed for good: BYE (§10).
    fn session_expired(&mut self, now: Instant, call: CallRef) {
        self.sessions.remove(&call);
        tracing::info!(call, "session timer expired; sending BYE");
        if self.out.contains_key(&call) {
            let _ = self.hangup_out(now, call);
        } else if self.calls.contains_key(&call) {
            self.send_bye(now, call);
        } else {
            return;
        }
        self.outputs.push_back(Output::Event(Event::Ended {
            call,
            reason: EndReason::SessionExpired,
        }));
    }

    /// The dialog's addressing for a request of rivr's, with the next CSeq.
    pub(super) fn dialog_view(&mut self, call: CallRef) -> Option<DialogView> {
        if let Some(leg) = self.calls.get_mut(&call) {
            if leg.state != super::leg::LegState::Confirmed {
                return None;
            }
            leg.local_cseq = leg.local_cseq.wrapping_add(1) & 0x7fff_ffff;
            return Some(DialogView {
                transport: leg.transport,
                dest: leg.in_dialog_dest(),
                uri: leg
                    .invite
                    .contact
                    .clone()
                    .unwrap_or_else(|| leg.invite.from_uri.clone()),
                route: leg.invite.record_route.clone(),
                from: format!("{};tag={}", leg.invite.to, leg.local_tag),
                to: leg.invite.from.clone(),
                call_id: leg.invite.call_id.clone(),
                cseq: leg.local_cseq,
            });
        }
        self.out.get_mut(&call)?.in_dialog_view().map(
            |(transport, dest, uri, route, from, to, call_id, cseq)| DialogView {
                transport,
                dest,
                uri,
                route,
                from,
                to,
                call_id,
                cseq,
            },
        )
    }

    /// Sends rivr's refresh: UPDATE when the peer allows it, else a
    /// re-INVITE with rivr's last SDP.
    fn send_refresh(&mut self, now: Instant, call: CallRef, auth: Option<(String, String)>) {
        let Some(s) = self.sessions.get(&call) else {
            return;
        };
        let invite = (!s.peer_allows_update || s.update_refused) && s.local_sdp.is_some();
        let (ask, sdp) = (s.ask, s.local_sdp.clone());
        let Some(d) = self.dialog_view(call) else {
            // Not confirmed yet (the ACK is late) or already ending: look
            // again in a second rather than spin on a due timer.
            self.refresh_later(now, call, Duration::from_secs(1));
            return;
        };
        let branch = format!("z9hG4bK{}", self.token(20));
        let method = if invite { "INVITE" } else { "UPDATE" };
        let contact = self.contact_uri(d.transport);
        let mut headers = vec![
            (
                "Session-Expires".to_string(),
                format!("{ask};refresher=uac"),
            ),
            ("Min-SE".to_string(), self.policy().min_se.to_string()),
            ("Supported".to_string(), "timer".to_string()),
        ];
        let auth_retried = auth.is_some();
        headers.extend(auth);
        let bytes = self.build_outgoing(
            d.transport,
            &Outgoing {
                method,
                uri: &d.uri,
                branch: &branch,
                route: &d.route,
                from: &d.from,
                to: &d.to,
                call_id: &d.call_id,
                cseq: d.cseq,
                contact: Some(&contact),
                headers: &headers,
                sdp: if invite { sdp.as_deref() } else { None },
            },
        );
        let reliable = d.transport.is_reliable();
        let kind = if invite {
            RefreshKind::Invite(InviteClientTx::new(
                now,
                self.cfg.timers,
                reliable,
                bytes.clone(),
            ))
        } else {
            RefreshKind::Update(NonInviteClientTx::new(
                now,
                self.cfg.timers,
                reliable,
                bytes.clone(),
            ))
        };
        tracing::debug!(call, method, "refreshing the session");
        self.refreshes.insert(
            branch.clone(),
            RefreshTx {
                call,
                kind,
                transport: d.transport,
                dest: d.dest,
                uri: d.uri,
                route: d.route,
                from: d.from,
                call_id: d.call_id,
                cseq: d.cseq,
                ack_2xx: None,
                auth_retried,
                answered: false,
            },
        );
        if let Some(s) = self.sessions.get_mut(&call) {
            s.in_flight = Some(branch);
            s.retry_at = None;
        }
        self.transmit(d.transport, d.dest, bytes);
    }

    /// A response to one of rivr's refreshes; false when `resp` is not one.
    pub(super) fn handle_refresh_response(&mut self, now: Instant, resp: &Response) -> bool {
        let Some(branch) = resp.branch.as_deref() else {
            return false;
        };
        let Some(r) = self.refreshes.get_mut(branch) else {
            return false;
        };
        let branch = branch.to_string();
        let call = r.call;
        let end = match &mut r.kind {
            RefreshKind::Update(tx) => {
                if !tx.on_response(now, resp.status) {
                    return true;
                }
                if (200..300).contains(&resp.status) {
                    RefreshEnd::Ok(resp.clone())
                } else {
                    RefreshEnd::Failed(resp.clone())
                }
            }
            RefreshKind::Invite(tx) => match tx.on_response(now, resp.status) {
                ResponseAction::Absorb => return true,
                ResponseAction::ResendAck => {
                    let (t, d, b) = (r.transport, r.dest, tx.ack_bytes().to_vec());
                    self.transmit(t, d, b);
                    return true;
                }
                ResponseAction::PassUp if resp.status < 200 => return true,
                ResponseAction::PassUp => {
                    if let Some(ack) = r.ack_2xx.clone() {
                        // A retransmitted 2xx: the same ACK again.
                        let (t, d) = (r.transport, r.dest);
                        self.transmit(t, d, ack);
                        return true;
                    }
                    let ack_branch = format!("z9hG4bK{}", self.token(20));
                    let ack = self.refresh_ack(&branch, &ack_branch, &resp.to);
                    if let Some(r) = self.refreshes.get_mut(&branch) {
                        r.ack_2xx = Some(ack.clone());
                        self.outputs.push_back(Output::Transmit {
                            transport: r.transport,
                            dest: r.dest,
                            bytes: ack,
                        });
                    }
                    RefreshEnd::Ok(resp.clone())
                }
                ResponseAction::PassUpFinal => {
                    // The ACK for a non-2xx: the INVITE's branch (§17.1.1.3).
                    let ack = self.refresh_ack(&branch, &branch, &resp.to);
                    if let Some(r) = self.refreshes.get_mut(&branch) {
                        if let RefreshKind::Invite(tx) = &mut r.kind {
                            tx.set_ack(ack.clone());
                        }
                        self.outputs.push_back(Output::Transmit {
                            transport: r.transport,
                            dest: r.dest,
                            bytes: ack,
                        });
                    }
                    RefreshEnd::Failed(resp.clone())
                }
            },
        };
        if let Some(r) = self.refreshes.get_mut(&branch) {
            r.answered = true;
        }
        self.refresh_ended(now, call, &branch, end);
        true
    }

    fn refresh_ack(&self, branch: &str, ack_branch: &str, to: &str) -> Vec<u8> {
        let Some(r) = self.refreshes.get(branch) else {
            return Vec::new();
        };
        self.build_outgoing(
            r.transport,
            &Outgoing {
                method: "ACK",
                uri: &r.uri,
                branch: ack_branch,
                route: &r.route,
                from: &r.from,
                to,
                call_id: &r.call_id,
                cseq: r.cseq,
                contact: None,
                headers: &[],
                sdp: None,
            },
        )
    }

    fn refresh_ended(&mut self, now: Instant, call: CallRef, branch: &str, end: RefreshEnd) {
        let Some(s) = self.sessions.get_mut(&call) else {
            return;
        };
        if s.in_flight.as_deref() != Some(branch) {
            return;
        }
        s.in_flight = None;
        let was_update = !self
            .refreshes
            .get(branch)
            .is_some_and(|r| matches!(r.kind, RefreshKind::Invite(_)));
        let auth_retried = self.refreshes.get(branch).is_some_and(|r| r.auth_retried);
        let resp = match end {
            RefreshEnd::Ok(resp) => {
                let h = read_headers(&resp.headers);
                let Some(s) = self.sessions.get_mut(&call) else {
                    return;
                };
                // The 2xx names the interval and who refreshes next; rivr
                // was the UAC of this refresh.
                let (seconds, refresher) = session_timer::uac_learn(Some(s.ask), h.session_expires)
                    .unwrap_or((s.ask, Refresher::Uac));
                s.seconds = seconds;
                s.timer = SessionTimer::new(seconds, refresher == Refresher::Uac, now);
                s.peer_allows_update |= h.allows_update;
                return;
            }
            RefreshEnd::NoAnswer => return self.session_expired(now, call),
            RefreshEnd::Failed(resp) => resp,
        };
        let h = read_headers(&resp.headers);
        match resp.status {
            408 | 481 => self.session_expired(now, call),
            401 | 407 if !auth_retried => {
                match self.in_dialog_authorization(
                    call,
                    &resp,
                    if was_update { "UPDATE" } else { "INVITE" },
                ) {
                    Some(header) => self.send_refresh(now, call, Some(header)),
                    None => self.refresh_later(now, call, Duration::from_secs(10)),
                }
            }
            422 => {
                if let Some(s) = self.sessions.get_mut(&call) {
                    let wanted = h.min_se.unwrap_or(s.ask).max(s.ask);
                    if wanted > s.ask {
                        s.ask = wanted;
                        return self.send_refresh(now, call, None);
                    }
                }
                self.refresh_later(now, call, Duration::from_secs(10));
            }
            491 => {
                let wait = Duration::from_millis(self.rng.gen_range(2100..=4000));
                self.refresh_later(now, call, wait);
            }
            405 | 501 if was_update => {
                if let Some(s) = self.sessions.get_mut(&call) {
                    s.update_refused = true;
                }
                self.send_refresh(now, call, None);
            }
            _ => self.refresh_later(now, call, Duration::from_secs(10)),
        }
    }

    fn refresh_later(&mut self, now: Instant, call: CallRef, wait: Duration) {
        if let Some(s) = self.sessions.get_mut(&call) {
            s.retry_at = Some(now + wait);
        }
    }

    /// An UPDATE in the dialog: a session refresh (RFC 4028 §9) is
    /// answered 200 with the interval rivr settles on; an UPDATE carrying
    /// an SDP offer gets 488 — rivr takes new offers by re-INVITE only.
    pub(super) fn handle_update(
        &mut self,
        now: Instant,
        call: CallRef,
        req: &crate::sip::message::Request,
    ) -> (u16, Vec<(&'static str, String)>, Option<Event>) {
        if req.has_sdp() {
            let warning = "399 rivr \"offers in UPDATE are not taken; send a re-INVITE\"";
            return (488, vec![("Warning", warning.to_string())], None);
        }
        match self.session_decide(&req.headers) {
            Err(min_se) => (422, vec![("Min-SE", min_se.to_string())], None),
            Ok(decision) => {
                self.session_refreshed_by_peer(now, call, decision, None);
                let headers = decision
                    .map(|(s, r, require)| Self::session_2xx_headers(s, r, require))
                    .unwrap_or_default();
                (200, headers, None)
            }
        }
    }

    /// A refresh from the peer (re-INVITE or UPDATE) was answered 2xx with
    /// `decision`.
    pub(super) fn session_refreshed_by_peer(
        &mut self,
        now: Instant,
        call: CallRef,
        decision: Option<(u32, Refresher, bool)>,
        sdp: Option<&str>,
    ) {
        self.session_started_as_uas(now, call, decision, false, sdp);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
