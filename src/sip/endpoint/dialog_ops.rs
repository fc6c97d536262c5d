//! Requests rivr sends inside a dialog (BYE), the responses they get, and
//! the end of a call in the core.

use std::net::SocketAddr;
use std::time::Instant;

use super::leg::LegState;
use super::{CallRef, EndReason, Endpoint, Event, NictEntry, Output};
use crate::sip::message::{build_request, InDialogRequest, Request, Response, Transport};
use crate::sip::transaction::NonInviteClientTx;

impl Endpoint {
    pub(super) fn send_bye(&mut self, now: Instant, call: CallRef) {
        let branch = format!("z9hG4bK{}", self.token(20));
        let contact = match self.calls.get(&call) {
            Some(leg) => self.contact_uri(leg.transport),
            None => return,
        };
        let sent_by = self.cfg.local_addr.to_string();
        let Some(leg) = self.calls.get_mut(&call) else {
            return;
        };
        leg.state = LegState::Terminating;
        leg.local_cseq = leg.local_cseq.wrapping_add(1) & 0x7fff_ffff;
        let remote_target = leg
            .invite
            .contact
            .clone()
            .unwrap_or_else(|| leg.invite.from_uri.clone());
        // §12.1.1: the UAS's route set is the Record-Route list in order.
        let route = leg.invite.record_route.clone();
        let from = format!("{};tag={}", leg.invite.to, leg.local_tag);
        let bytes = build_request(
            &InDialogRequest {
                method: "BYE",
                request_uri: &remote_target,
                via_transport: leg.transport.via_name(),
                via_sent_by: &sent_by,
                branch: &branch,
                route: &route,
                from: &from,
                to: &leg.invite.from,
                call_id: &leg.invite.call_id,
                cseq: leg.local_cseq,
                contact: &contact,
                extra_headers: &[],
            },
            &self.cfg.user_agent,
        );
        let (transport, dest) = (leg.transport, leg.in_dialog_dest());
        let tx =
            NonInviteClientTx::new(now, self.cfg.timers, transport.is_reliable(), bytes.clone());
        self.nicts.insert(
            branch,
            NictEntry {
                tx,
                call,
                transport,
                dest,
            },
        );
        self.transmit(transport, dest, bytes);
    }

    pub(super) fn handle_response(
        &mut self,
        now: Instant,
        _transport: crate::sip::message::Transport,
        _source: std::net::SocketAddr,
        resp: Response,
    ) {
        let Some(branch) = resp.branch.clone() else {
            self.stats.malformed_dropped += 1;
            return;
        };
        if self.handle_link_response(now, &resp)
            || self.handle_refresh_response(now, &resp)
            || self.handle_refer_response(now, &resp)
        {
            return;
        }
        if resp.cseq_method == rsip::Method::Invite {
            if !self.handle_invite_response(now, resp) {
                self.stats.retransmissions_absorbed += 1;
            }
            return;
        }
        // A CANCEL shares its INVITE's branch; its transaction is kept apart.
        let key = if resp.cseq_method == rsip::Method::Cancel {
            format!("{branch}:cancel")
        } else {
            branch
        };
        let Some((call, taken)) = self
            .nicts
            .modify(&key, |e| (e.call, e.tx.on_response(now, resp.status)))
        else {
            // A stray or retransmitted response: nothing to match (§17.1.3).
            self.stats.retransmissions_absorbed += 1;
            return;
        };
        if !taken {
            return;
        }
        if resp.cseq_method == rsip::Method::Cancel {
            if let Some(branch) = key.strip_suffix(":cancel") {
                let branch = branch.to_string();
                self.cancel_answered(call, &branch, resp.status);
            }
            return;
        }
        if resp.cseq_method != rsip::Method::Bye {
            return;
        }
        if self.rechallenged_bye(now, call, &resp) {
            self.nicts.remove(&key);
            return;
        }
        self.finish_local_bye(call);
    }

    /// rivr could not open a TCP connection to `dest`
    /// (`Transport::TcpTo`): every client transaction that went there ends
    /// now as if it had timed out — an INVITE as unanswered (unreachable),
    /// a BYE or CANCEL as done, a keepalive as down — rather than waiting
    /// for timer B or F (RFC 3261 §17.1.1.2, §8.1.3.1).
    pub fn connect_failed(&mut self, now: Instant, dest: SocketAddr) {
        self.icts_connect_failed(now, dest);
        let dead: Vec<(String, CallRef)> = self
            .nicts
            .iter()
            .filter(|(_, e)| e.transport == Transport::TcpTo && e.dest == dest)
            .map(|(k, e)| (k.clone(), e.call))
            .collect();
        for (key, call) in dead {
            self.nicts.remove(&key);
            self.finish_local_bye(call);
        }
        self.links_connect_failed(now, dest);
    }

    /// rivr's BYE is over (answered or timed out).
    pub(super) fn finish_local_bye(&mut self, call: CallRef) {
        if self.calls.contains_key(&call) || self.out.contains_key(&call) {
            self.end_call(call);
            self.outputs.push_back(Output::Event(Event::Ended {
                call,
                reason: EndReason::LocalByeDone,
            }));
        }
    }

    /// The call a message belongs to, if the core knows it: a request in
    /// one of its dialogs, a request of one of its INVITE transactions (a
    /// retransmission, a CANCEL, an ACK to a non-2xx), or a response to its
    /// BYE. The server asks after handling the message panicked, to end
    /// that call and no other.
    pub fn call_of_message(&self, bytes: &[u8]) -> Option<CallRef> {
        match crate::sip::wire::parse_message(bytes).ok()? {
            rsip::SipMessage::Request(req) => {
                let req = Request::from_rsip(&req).ok()?;
                let key = (req.top_via.branch.clone(), req.top_via.sent_by.clone());
                self.find_dialog(&req)
                    .or_else(|| self.invite_txs.get(&key).map(|e| e.call))
            }
            rsip::SipMessage::Response(resp) => {
                let resp = Response::from_rsip(&resp).ok()?;
                let branch = resp.branch.as_ref()?;
                self.nicts
                    .get(branch)
                    .map(|e| e.call)
                    .or_else(|| self.icts_call(branch))
            }
        }
    }

    /// Forgets the call and its dialog; transactions finish on their own timers.
    pub(super) fn end_call(&mut self, call: CallRef) {
        if let Some(leg) = self.calls.remove(&call) {
            self.dialogs.remove(&leg.dialog_key());
        }
        if let Some(key) = self.out.remove(&call).and_then(|l| l.dialog_key()) {
            self.dialogs.remove(&key);
        }
        self.reinvites.remove(&call);
        self.reinvite_2xx.remove(&call);
        self.sessions.remove(&call);
        self.transfers.remove(&call);
    }
}
