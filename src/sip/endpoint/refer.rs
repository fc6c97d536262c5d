//! Blind transfer (RFC 3515, RFC 5589 §6): rivr sends REFER in a confirmed
//! dialog and follows the implicit subscription's NOTIFYs, whose
//! `message/sipfrag` bodies (RFC 3420) carry the status line of the
//! transferee's INVITE to the target. The outcome goes up once, as
//! `Event::Transfer`: the first final sipfrag, a REFER error response, a
//! NOTIFY that ends the subscription without a final status, or no final
//! status before the deadline. Hanging up after a 2xx is the layer
//! above's decision (it sends BYE through `hangup`).
//!
//! A broken sipfrag never panics: it is counted
//! (`EndpointStats::sipfrag_malformed`) and taken as a failed transfer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::uac::Outgoing;
use super::{CallGone, CallRef, Endpoint, Event, Output};
use crate::sip::message::{Request, Response, Transport};
use crate::sip::transaction::{NonInviteClientTx, TimerAction};

/// How a transfer ended, as the SIP core saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOutcome {
    /// The target answered (a 2xx sipfrag).
    pub ok: bool,
    /// The final status: the sipfrag's, the REFER's error response, or
    /// 408 when no final status came in time.
    pub status: u16,
    pub reason: String,
}

/// REFER client transactions in flight, by branch.
pub(super) struct ReferTx {
    call: CallRef,
    tx: NonInviteClientTx,
    transport: Transport,
    dest: std::net::SocketAddr,
    auth_retried: bool,
}

/// The one transfer a dialog may have at a time.
pub(super) struct Transfer {
    refer_to: String,
    referred_by: String,
    /// When the outcome is taken as a failure (408) if none came.
    deadline: Instant,
    /// The outcome went up; later NOTIFYs are only answered.
    reported: bool,
    /// REFER went out (it waits for the ACK of rivr's 2xx otherwise).
    sent: bool,
}

/// The status line of a `message/sipfrag` body: `SIP/2.0 200 OK`.
/// `None` for anything else (no panics on any bytes).
pub fn parse_sipfrag(body: &[u8]) -> Option<(u16, String)> {
    let text = std::str::from_utf8(body).ok()?;
    let line = text.trim_start().lines().next()?.trim();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let status: u16 = code.parse().ok()?;
    if !(100..700).contains(&status) {
        return None;
    }
    let reason = parts.next().unwrap_or("").trim();
    Some((status, reason.chars().take(128).collect()))
}

/// A header's value by name or compact form, case-insensitively.
fn header<'a>(req: &'a Request, name: &str, compact: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(compact))
        .map(|(_, v)| v.as_str())
}

/// The first token of a header value, before any `;` parameter.
fn token(v: &str) -> String {
    v.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The host (and port) of a SIP URI: `sip:a@example.org:5070;x` →
/// `example.org:5070`.
fn uri_host(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = rest.split([';', '?', '>']).next()?.trim();
    (!host.is_empty()).then_some(host)
}

impl Endpoint {
    /// The Refer-To and Referred-By URIs for transferring inbound `call`
    /// to `target`: a `sip:`/`sips:` URI as written; a number (digits,
    /// `+*#`) as a URI in the caller's domain, the host of the INVITE's
    /// From (the PBX or carrier that sent the call will route it).
    /// Referred-By is the URI the caller called. `None` for a call rivr
    /// did not answer, or a target that is neither.
    pub fn transfer_uris(&self, call: CallRef, target: &str) -> Option<(String, String)> {
        let leg = self.calls.get(&call)?;
        let clean = |s: &str| {
            !s.is_empty()
                && !s
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
        };
        let refer_to = if target.starts_with("sip:") || target.starts_with("sips:") {
            (clean(target) && uri_host(target).is_some()).then(|| target.to_string())?
        } else {
            let number = !target.is_empty()
                && target.len() <= 64
                && target
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+*#".contains(c));
            let host = uri_host(&leg.invite.from_uri).filter(|h| clean(h))?;
            number.then(|| format!("sip:{target}@{host}"))?
        };
        Some((refer_to, leg.invite.to_uri.clone()))
    }

    /// Starts a blind transfer of `call` (a confirmed dialog) to
    /// `refer_to` (a SIP URI); `referred_by` names rivr's side. The
    /// outcome comes as `Event::Transfer`, at the latest `timeout` after
    /// now. One transfer at a time per call.
    pub fn refer(
        &mut self,
        now: Instant,
        call: CallRef,
        refer_to: &str,
        referred_by: &str,
        timeout: Duration,
    ) -> Result<(), CallGone> {
        if self.transfers.get(&call).is_some_and(|t| !t.reported) {
            return Err(CallGone(call));
        }
        self.transfers.insert(
            call,
            Transfer {
                refer_to: refer_to.to_string(),
                referred_by: referred_by.to_string(),
                deadline: now + timeout,
                reported: false,
                sent: false,
            },
        );
        // A script transfers right after answer(): the ACK may be on its
        // way; REFER needs a confirmed dialog (RFC 3261 §12).
        let unacked = self
            .calls
            .get(&call)
            .is_some_and(|l| matches!(l.state, super::leg::LegState::Accepted { .. }));
        if unacked {
            return Ok(());
        }
        if !self.send_refer(now, call, None) {
            self.transfers.remove(&call);
            return Err(CallGone(call));
        }
        Ok(())
    }

    /// The ACK confirmed `call`'s dialog: a REFER held for it goes out.
    pub(super) fn refer_after_ack(&mut self, now: Instant, call: CallRef) {
        if self.transfers.get(&call).is_some_and(|t| !t.sent) && !self.send_refer(now, call, None) {
            self.transfer_done(call, false, 481, "the dialog cannot transfer".into());
        }
    }

    fn send_refer(&mut self, now: Instant, call: CallRef, auth: Option<(String, String)>) -> bool {
        let Some(t) = self.transfers.get_mut(&call) else {
            return false;
        };
        t.sent = true;
        let headers = vec![
            ("Refer-To".to_string(), format!("<{}>", t.refer_to)),
            ("Referred-By".to_string(), format!("<{}>", t.referred_by)),
        ];
        let auth_retried = auth.is_some();
        let mut headers = headers;
        headers.extend(auth);
        let Some(d) = self.dialog_view(call) else {
            return false;
        };
        let branch = format!("z9hG4bK{}", self.token(20));
        let contact = self.contact_uri(d.transport);
        let bytes = self.build_outgoing(
            d.transport,
            &Outgoing {
                method: "REFER",
                uri: &d.uri,
                branch: &branch,
                route: &d.route,
                from: &d.from,
                to: &d.to,
                call_id: &d.call_id,
                cseq: d.cseq,
                contact: Some(&contact),
                headers: &headers,
                sdp: None,
            },
        );
        let tx = NonInviteClientTx::new(
            now,
            self.cfg.timers,
            d.transport.is_reliable(),
            bytes.clone(),
        );
        tracing::debug!(call, "sending REFER");
        self.refers.insert(
            branch,
            ReferTx {
                call,
                tx,
                transport: d.transport,
                dest: d.dest,
                auth_retried,
            },
        );
        self.transmit(d.transport, d.dest, bytes);
        true
    }

    /// A response to a REFER of rivr's; false when `resp` is not one.
    pub(super) fn handle_refer_response(&mut self, now: Instant, resp: &Response) -> bool {
        let Some(branch) = resp.branch.as_deref() else {
            return false;
        };
        let Some(r) = self.refers.get_mut(branch) else {
            return false;
        };
        if !r.tx.on_response(now, resp.status) {
            return true;
        }
        let (call, retried) = (r.call, r.auth_retried);
        if (200..300).contains(&resp.status) {
            tracing::debug!(call, status = resp.status, "REFER accepted");
            return true;
        }
        if matches!(resp.status, 401 | 407) && !retried {
            if let Some(h) = self.in_dialog_authorization(call, resp, "REFER") {
                if self.send_refer(now, call, Some(h)) {
                    return true;
                }
            }
        }
        self.transfer_done(call, false, resp.status, resp.reason.clone());
        true
    }

    /// NOTIFY in a dialog: answered here (200, 481 with no transfer, 489
    /// for another event package); a final sipfrag reports the outcome.
    pub(super) fn handle_notify(
        &mut self,
        call: Option<CallRef>,
        req: &Request,
    ) -> (u16, Vec<(&'static str, String)>, Option<Event>) {
        let Some(call) = call else {
            return (481, vec![], None);
        };
        if let Some(leg) = self.calls.get_mut(&call) {
            leg.remote_cseq = leg.remote_cseq.max(req.cseq);
        }
        let event = header(req, "Event", "o").map(token).unwrap_or_default();
        if event != "refer" {
            return (489, vec![("Allow-Events", "refer".to_string())], None);
        }
        let Some(t) = self.transfers.get(&call) else {
            return (481, vec![], None);
        };
        let reported = t.reported;
        let terminated = header(req, "Subscription-State", "Subscription-State")
            .map(token)
            .is_some_and(|s| s == "terminated");
        let frag = parse_sipfrag(&req.body);
        if frag.is_none() {
            self.stats.sipfrag_malformed += 1;
        }
        tracing::debug!(call, ?frag, terminated, "NOTIFY for the transfer");
        if !reported {
            match frag {
                Some((status, reason)) if status >= 200 => {
                    self.transfer_done(call, (200..300).contains(&status), status, reason)
                }
                None => self.transfer_done(call, false, 400, "malformed sipfrag".into()),
                Some(_) if terminated => self.transfer_done(
                    call,
                    false,
                    487,
                    "subscription ended without a final status".into(),
                ),
                Some(_) => {}
            }
        }
        if terminated {
            self.transfers.remove(&call);
        }
        (200, vec![], None)
    }

    /// Reports the outcome once; the subscription stays for its last
    /// NOTIFYs (answered 200) until terminated or the call ends.
    fn transfer_done(&mut self, call: CallRef, ok: bool, status: u16, reason: String) {
        match self.transfers.get_mut(&call) {
            Some(t) if !t.reported => t.reported = true,
            _ => return,
        }
        self.outputs.push_back(Output::Event(Event::Transfer {
            call,
            outcome: TransferOutcome { ok, status, reason },
        }));
    }

    pub(super) fn refer_timeouts(&mut self, now: Instant) {
        let mut resend = Vec::new();
        let mut failed = Vec::new();
        self.refers.retain(|_, r| match r.tx.handle_timeout(now) {
            TimerAction::Retransmit => {
                resend.push((r.transport, r.dest, r.tx.request_bytes().to_vec()));
                true
            }
            TimerAction::TimedOut => {
                failed.push(r.call);
                false
            }
            TimerAction::Terminated => false,
            TimerAction::None => true,
        });
        for (t, d, b) in resend {
            self.transmit(t, d, b);
        }
        for call in failed {
            self.transfer_done(call, false, 408, "no response to REFER".into());
        }
        let late: Vec<CallRef> = self
            .transfers
            .iter()
            .filter(|(_, t)| !t.reported && t.deadline <= now)
            .map(|(c, _)| *c)
            .collect();
        for call in late {
            self.transfer_done(call, false, 408, "no final NOTIFY in time".into());
            // Later NOTIFYs get 481: the transferee learns rivr gave up.
            self.transfers.remove(&call);
        }
    }

    pub(super) fn refer_next_timeout(&self) -> Option<Instant> {
        self.refers
            .values()
            .filter_map(|r| r.tx.poll_timeout())
            .chain(
                self.transfers
                    .values()
                    .filter(|t| !t.reported)
                    .map(|t| t.deadline),
            )
            .min()
    }
}

/// The map types the endpoint holds.
pub(super) type Refers = HashMap<String, ReferTx>;
pub(super) type Transfers = HashMap<CallRef, Transfer>;

#[cfg(test)]
#[path = "refer_tests.rs"]
mod tests;
