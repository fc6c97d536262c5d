//! The UAC half of the endpoint: calls rivr places. An INVITE client
//! transaction per attempt (`transaction::InviteClientTx`), digest
//! authentication in answer to 401/407 (`sip::digest`: the strongest
//! algorithm offered, `stale` retried at most twice, a fresh challenge or a
//! 403 in answer to rivr's credentials ends the attempt as auth-failed,
//! never a loop; the retried INVITE keeps its Call-ID and From tag, CSeq +1,
//! a new branch, RFC 3261 §22.2), CANCEL once a provisional came (§9.1),
//! the ACK for a 2xx (re-sent for each retransmitted 2xx) and the dialog the
//! 2xx forms (§12.1.2: route set from Record-Route reversed, remote target
//! from the Contact), and BYE from rivr (challenged BYEs are answered too).
//!
//! A trunk with several addresses (SRV targets, A records) is tried in
//! order (RFC 3263 §4.3, `targets`): a 503 before any ringing, no
//! response within `targets::NO_RESPONSE`, timer B or a refused TCP
//! connection sends the same INVITE (new branch) to the next address.
//!
//! In-dialog requests go to the address the INVITE went to (the trunk or
//! its outbound proxy) with the remote target as Request-URI and the route
//! set as Route: a carrier's SBC takes them there whatever address its
//! Contact names.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::Rng as _;

use super::orphan::{OutDialog, CSEQ_JUMP};
use super::{targets, CallGone, CallRef, Endpoint, Event, NictEntry, Output};
use crate::sip::digest::{self, Challenge, NonceCounter};
use crate::sip::message::{Response, Transport};
use crate::sip::transaction::{InviteClientTx, NonInviteClientTx, ResponseAction, TimerAction};

/// A trunk's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Answer only challenges for this realm (`None`: any realm).
    pub realm: Option<String>,
}

/// A call to place.
#[derive(Debug, Clone)]
pub struct OutboundInvite {
    /// `sip:NUMBER@trunk-host[:port]`.
    pub request_uri: String,
    /// The To header value (no tag), e.g. `<sip:15551234@trunk.example.org>`.
    pub to: String,
    /// From user (the caller id) and host; an optional display name.
    pub from_user: String,
    pub from_host: String,
    pub from_display: Option<String>,
    /// Where the INVITE and the dialog's requests go (when `trunk` names
    /// a trunk with addresses, the first of those that is not held).
    pub dest: SocketAddr,
    /// The trunk's number ([`Endpoint::set_trunk_targets`]), if any.
    pub trunk: Option<usize>,
    pub transport: Transport,
    /// Route headers (an outbound proxy: `<sip:10.0.0.1;lr>`).
    pub route: Vec<String>,
    pub sdp: String,
    /// More headers (P-Asserted-Identity, Privacy, …).
    pub extra_headers: Vec<(String, String)>,
    pub credentials: Option<Credentials>,
    /// The Call-ID starts with this token (a campaign attempt id), so the
    /// dialog can be recognised after a restart; random when `None`.
    pub call_id_prefix: Option<String>,
}

/// How an attempt ended without being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UacEnd {
    /// A final non-2xx response.
    Refused,
    /// No response at all (timer B).
    NoResponse,
    /// rivr's credentials were refused (or none fit the challenge).
    AuthFailed,
    /// rivr cancelled it.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UacFailure {
    pub kind: UacEnd,
    pub status: Option<u16>,
    pub reason: Option<String>,
    /// The `Reason` header of the final response (RFC 3326), if any.
    pub reason_header: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OutState {
    /// INVITE sent, nothing but 100 (or nothing) back.
    Calling,
    /// A provisional came: CANCEL may be sent.
    Proceeding,
    /// 2xx received and ACKed: the dialog is up.
    Confirmed,
    /// BYE sent.
    Terminating,
}

#[derive(Debug, Default)]
struct Auth {
    /// rivr's credentials went in the current INVITE.
    sent: bool,
    stale_retries: u8,
    counter: NonceCounter,
    /// The challenge answered last, and whether it was a proxy's.
    last: Option<(bool, Challenge)>,
    bye_retried: bool,
}

pub(super) struct OutLeg {
    spec: OutboundInvite,
    call_id: String,
    local_tag: String,
    cseq: u32,
    branch: String,
    pub(super) state: OutState,
    remote_tag: Option<String>,
    remote_to: Option<String>,
    remote_target: Option<String>,
    route_set: Vec<String>,
    ack: Option<Vec<u8>>,
    cancel_wanted: bool,
    cancel_sent: bool,
    auth: Auth,
    pub(super) remote_cseq: u32,
    /// The `Session-Expires` asked for (raised by a 422), and 422 retries.
    se_asked: Option<u32>,
    se_retries: u8,
    /// The trunk's addresses still to try if this one fails.
    alternates: Vec<SocketAddr>,
    /// A provisional other than 100 came: the call is past failing over.
    ringing: bool,
    /// A call a dead process placed, taken over only to end it
    /// (`Endpoint::end_orphan`).
    pub(super) orphan: bool,
}

/// A confirmed dialog's addressing for a request from rivr: transport,
/// destination, Request-URI, route set, From, To, Call-ID, CSeq.
pub(super) type DialogParts = (
    Transport,
    SocketAddr,
    String,
    Vec<String>,
    String,
    String,
    String,
    u32,
);

impl OutLeg {
    /// What the layer above stores of this call to end it from another
    /// process (`super::orphan`).
    pub(super) fn out_dialog(&self) -> OutDialog {
        OutDialog {
            tcp: self.spec.transport.is_reliable(),
            dest: self.spec.dest,
            request_uri: self.spec.request_uri.clone(),
            to: self.spec.to.clone(),
            from_user: self.spec.from_user.clone(),
            from_host: self.spec.from_host.clone(),
            from_display: self.spec.from_display.clone(),
            local_tag: self.local_tag.clone(),
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            branch: self.branch.clone(),
            route: self.spec.route.clone(),
            remote_tag: self.remote_tag.clone(),
            remote_to: self.remote_to.clone(),
            remote_target: self.remote_target.clone(),
            route_set: self.route_set.clone(),
        }
    }

    /// A dead process's call rebuilt from what was stored of it, ready to
    /// be ended: Proceeding with its INVITE's branch and CSeq while
    /// unanswered, Confirmed with a CSeq `CSEQ_JUMP` above the stored one
    /// once answered (rivr's refreshes after the store write moved it on).
    pub(super) fn adopted(d: OutDialog, credentials: Option<Credentials>) -> OutLeg {
        let confirmed = d.remote_tag.is_some();
        let transport = if d.tcp {
            Transport::TcpTo
        } else {
            Transport::Udp
        };
        OutLeg {
            spec: OutboundInvite {
                request_uri: d.request_uri,
                to: d.to,
                from_user: d.from_user,
                from_host: d.from_host,
                from_display: d.from_display,
                dest: d.dest,
                trunk: None,
                transport,
                route: d.route,
                sdp: String::new(),
                extra_headers: Vec::new(),
                credentials,
                call_id_prefix: None,
            },
            call_id: d.call_id,
            local_tag: d.local_tag,
            cseq: if confirmed {
                d.cseq.wrapping_add(CSEQ_JUMP) & 0x7fff_ffff
            } else {
                d.cseq
            },
            branch: d.branch,
            state: if confirmed {
                OutState::Confirmed
            } else {
                OutState::Proceeding
            },
            remote_tag: d.remote_tag,
            remote_to: d.remote_to,
            remote_target: d.remote_target,
            route_set: d.route_set,
            ack: None,
            cancel_wanted: true,
            cancel_sent: false,
            auth: Auth::default(),
            remote_cseq: 0,
            se_asked: None,
            se_retries: 0,
            alternates: Vec::new(),
            ringing: true,
            orphan: true,
        }
    }

    /// The dialog's parts with the next CSeq, once confirmed.
    pub(super) fn in_dialog_view(&mut self) -> Option<DialogParts> {
        if self.state != OutState::Confirmed {
            return None;
        }
        self.cseq = self.cseq.wrapping_add(1) & 0x7fff_ffff;
        Some((
            self.spec.transport,
            self.spec.dest,
            self.remote_target
                .clone()
                .unwrap_or_else(|| self.spec.request_uri.clone()),
            self.route_set.clone(),
            self.from(),
            self.remote_to
                .clone()
                .unwrap_or_else(|| self.spec.to.clone()),
            self.call_id.clone(),
            self.cseq,
        ))
    }

    pub(super) fn dialog_key(&self) -> Option<(String, String, String)> {
        Some((
            self.call_id.clone(),
            self.local_tag.clone(),
            self.remote_tag.clone()?,
        ))
    }

    fn from(&self) -> String {
        let display = self
            .spec
            .from_display
            .as_deref()
            .map(|d| format!("\"{}\" ", d.replace(['"', '\\'], "")))
            .unwrap_or_default();
        format!(
            "{display}<sip:{}@{}>;tag={}",
            self.spec.from_user, self.spec.from_host, self.local_tag
        )
    }
}

pub(super) struct IctEntry {
    tx: InviteClientTx,
    call: CallRef,
    /// Kept here: the transaction outlives its call (timer D re-ACKs).
    transport: Transport,
    dest: SocketAddr,
    sent_at: Instant,
    /// Any response came on this branch.
    heard: bool,
}

/// One request rivr sends as a UAC, as text.
pub(super) struct Outgoing<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub branch: &'a str,
    pub route: &'a [String],
    pub from: &'a str,
    pub to: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    pub contact: Option<&'a str>,
    pub headers: &'a [(String, String)],
    pub sdp: Option<&'a str>,
}

impl Endpoint {
    pub(super) fn build_outgoing(&self, transport: Transport, r: &Outgoing<'_>) -> Vec<u8> {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(768);
        let _ = write!(
            s,
            "{} {} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={};rport\r\nMax-Forwards: 70\r\n",
            r.method,
            r.uri,
            transport.via_name(),
            self.cfg.local_addr,
            r.branch
        );
        for route in r.route {
            let _ = write!(s, "Route: {route}\r\n");
        }
        let _ = write!(
            s,
            "From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n",
            r.from, r.to, r.call_id, r.cseq, r.method
        );
        if let Some(c) = r.contact {
            let _ = write!(s, "Contact: <{c}>\r\n");
        }
        for (k, v) in r.headers {
            let _ = write!(s, "{k}: {v}\r\n");
        }
        let _ = write!(s, "User-Agent: {}\r\n", self.cfg.user_agent);
        match r.sdp {
            Some(body) => {
                let _ = write!(
                    s,
                    "Allow: {}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
                    crate::sip::message::ALLOW,
                    body.len()
                );
            }
            None => s.push_str("Content-Length: 0\r\n\r\n"),
        }
        s.into_bytes()
    }

    /// Places a call: sends the INVITE and returns the call's ref. What
    /// happens comes as `Event::Progress`, `Answered`, `Failed` and later
    /// `Ended`.
    pub fn invite(&mut self, now: Instant, mut spec: OutboundInvite) -> CallRef {
        let mut alternates = spec
            .trunk
            .and_then(|t| self.targets.get(&t))
            .map(|set| set.order(now))
            .unwrap_or_default();
        if !alternates.is_empty() {
            spec.dest = alternates.remove(0);
        }
        let call = self.next_call;
        self.next_call += 1;
        self.stats.calls_started += 1;
        let call_id = match &spec.call_id_prefix {
            // A short random part keeps it unique if the prefix repeats.
            Some(p) => format!("{p}.{}@{}", self.token(6), self.cfg.local_addr.ip()),
            None => format!("{}@{}", self.token(20), self.cfg.local_addr.ip()),
        };
        let local_tag = self.token(16);
        let cseq = self.rng.gen_range(1..1u32 << 30);
        let leg = OutLeg {
            spec,
            call_id,
            local_tag,
            cseq,
            branch: String::new(),
            state: OutState::Calling,
            remote_tag: None,
            remote_to: None,
            remote_target: None,
            route_set: Vec::new(),
            ack: None,
            cancel_wanted: false,
            cancel_sent: false,
            auth: Auth::default(),
            remote_cseq: 0,
            se_asked: self.cfg.session_ask,
            se_retries: 0,
            alternates,
            ringing: false,
            orphan: false,
        };
        self.out.insert(call, leg);
        self.send_invite(now, call, None);
        call
    }

    /// Sends (or re-sends, with credentials) the call's INVITE.
    fn send_invite(&mut self, now: Instant, call: CallRef, auth_header: Option<(String, String)>) {
        let branch = format!("z9hG4bK{}", self.token(20));
        let Some(leg) = self.out.get_mut(&call) else {
            return;
        };
        leg.branch = branch.clone();
        let mut headers = leg.spec.extra_headers.clone();
        let asked = leg.se_asked;
        headers.extend(self.session_invite_headers(asked));
        headers.extend(auth_header);
        let Some(leg) = self.out.get(&call) else {
            return;
        };
        let (transport, dest) = (leg.spec.transport, leg.spec.dest);
        let from = leg.from();
        let contact = self.contact_uri(transport);
        let bytes = self.build_outgoing(
            transport,
            &Outgoing {
                method: "INVITE",
                uri: &leg.spec.request_uri,
                branch: &branch,
                route: &leg.spec.route,
                from: &from,
                to: &leg.spec.to,
                call_id: &leg.call_id,
                cseq: leg.cseq,
                contact: Some(&contact),
                headers: &headers,
                sdp: Some(&leg.spec.sdp),
            },
        );
        let tx = InviteClientTx::new(now, self.cfg.timers, transport.is_reliable(), bytes.clone());
        self.icts.insert(
            branch,
            IctEntry {
                tx,
                call,
                transport,
                dest,
                sent_at: now,
                heard: false,
            },
        );
        self.transmit(transport, dest, bytes);
    }

    /// RFC 3263 §4.3: the attempt's address failed (`why`); the same INVITE
    /// goes to the trunk's next address with a new branch, and the failed
    /// one is held back for `hold` (also when it was the last). False when
    /// no address is left, the call rang already or is being cancelled.
    fn fail_over(&mut self, now: Instant, call: CallRef, hold: Duration, why: &str) -> bool {
        let Some(leg) = self.out.get_mut(&call) else {
            return false;
        };
        if leg.ringing
            || leg.cancel_wanted
            || !matches!(leg.state, OutState::Calling | OutState::Proceeding)
        {
            return false;
        }
        let failed = leg.spec.dest;
        if let Some(set) = leg.spec.trunk.and_then(|t| self.targets.get_mut(&t)) {
            set.hold(failed, now + hold);
        }
        if leg.alternates.is_empty() {
            return false;
        }
        let next = leg.alternates.remove(0);
        leg.spec.dest = next;
        leg.state = OutState::Calling;
        // Another server challenges afresh.
        leg.auth = Auth::default();
        self.stats.failovers += 1;
        tracing::warn!(call, %failed, %next, why, "trunk address failed; the INVITE goes to the next one");
        self.send_invite(now, call, None);
        true
    }

    /// A response to one of rivr's INVITEs.
    pub(super) fn handle_invite_response(&mut self, now: Instant, resp: Response) -> bool {
        let Some(branch) = resp.branch.clone() else {
            return false;
        };
        let Some(entry) = self.icts.get_mut(&branch) else {
            // A 2xx retransmitted after timer M, or for an attempt rivr
            // gave up: re-ACK a 2xx of a dialog it knows.
            return self.reack(&resp);
        };
        let call = entry.call;
        entry.heard = true;
        match entry.tx.on_response(now, resp.status) {
            ResponseAction::Absorb => true,
            ResponseAction::ResendAck => {
                let (t, d, ack) = (entry.transport, entry.dest, entry.tx.ack_bytes().to_vec());
                self.transmit(t, d, ack);
                true
            }
            ResponseAction::PassUpFinal => {
                self.ack_non_2xx(call, &branch, &resp);
                self.final_non_2xx(now, call, resp);
                true
            }
            ResponseAction::PassUp if resp.status < 200 => {
                self.provisional(now, call, resp);
                true
            }
            ResponseAction::PassUp => {
                self.two_xx(now, call, resp);
                true
            }
        }
    }

    fn provisional(&mut self, now: Instant, call: CallRef, resp: Response) {
        let Some(leg) = self.out.get_mut(&call) else {
            return;
        };
        if leg.state == OutState::Calling {
            leg.state = OutState::Proceeding;
        }
        leg.ringing |= resp.status > 100;
        if leg.cancel_wanted && !leg.cancel_sent {
            self.send_cancel(now, call);
            return;
        }
        if resp.status > 100 {
            let sdp = resp.has_sdp().then(|| resp.body.clone());
            self.outputs.push_back(Output::Event(Event::Progress {
                call,
                status: resp.status,
                sdp,
            }));
        }
    }

    /// The ACK for a non-2xx final: same branch, the response's To (§17.1.1.3).
    fn ack_non_2xx(&mut self, call: CallRef, branch: &str, resp: &Response) {
        let Some(leg) = self.out.get(&call) else {
            return;
        };
        let bytes = self.build_outgoing(
            leg.spec.transport,
            &Outgoing {
                method: "ACK",
                uri: &leg.spec.request_uri,
                branch,
                route: &leg.spec.route,
                from: &leg.from(),
                to: &resp.to,
                call_id: &leg.call_id,
                cseq: leg.cseq,
                contact: None,
                headers: &[],
                sdp: None,
            },
        );
        let (t, d) = (leg.spec.transport, leg.spec.dest);
        if let Some(e) = self.icts.get_mut(branch) {
            e.tx.set_ack(bytes.clone());
        }
        self.transmit(t, d, bytes);
    }

    fn final_non_2xx(&mut self, now: Instant, call: CallRef, resp: Response) {
        if resp.status == 503
            && self.fail_over(now, call, targets::hold_for_503(&resp.headers), "503")
        {
            return;
        }
        let Some(leg) = self.out.get_mut(&call) else {
            return;
        };
        let failure = |kind| UacFailure {
            kind,
            status: Some(resp.status),
            reason: Some(resp.reason.clone()),
            reason_header: resp.reason_header.clone(),
        };
        let challenged = matches!(resp.status, 401 | 407);
        if challenged && !leg.cancel_wanted {
            if let Some(creds) = leg.spec.credentials.clone() {
                let proxy = resp.status == 407;
                let values = if proxy {
                    &resp.proxy_authenticate
                } else {
                    &resp.www_authenticate
                };
                let chosen =
                    digest::choose(values.iter().map(String::as_str), creds.realm.as_deref());
                let retry = match &chosen {
                    None => false,
                    // A fresh challenge answers the first INVITE; after
                    // credentials, only a stale nonce is worth a retry.
                    Some(ch) if !leg.auth.sent => {
                        let _ = ch;
                        true
                    }
                    Some(ch) if ch.stale && leg.auth.stale_retries < 2 => {
                        leg.auth.stale_retries += 1;
                        true
                    }
                    Some(_) => false,
                };
                if let (true, Some(ch)) = (retry, chosen) {
                    leg.cseq = leg.cseq.wrapping_add(1) & 0x7fff_ffff;
                    leg.auth.sent = true;
                    let header = self.authorization(call, proxy, ch, "INVITE");
                    self.send_invite(now, call, header);
                    return;
                }
                return self.fail(call, failure(UacEnd::AuthFailed));
            }
        }
        if resp.status == 422 && !leg.cancel_wanted && leg.se_retries < 2 {
            // RFC 4028 §7.4: ask again with at least the far end's Min-SE.
            let min_se = crate::sip::session_timer::read_headers(&resp.headers).min_se;
            if let Some(min_se) = min_se.filter(|m| Some(*m) > leg.se_asked) {
                leg.se_retries += 1;
                leg.se_asked = Some(min_se);
                leg.cseq = leg.cseq.wrapping_add(1) & 0x7fff_ffff;
                let header = match leg.auth.last.clone() {
                    Some((proxy, ch)) => self.authorization(call, proxy, ch, "INVITE"),
                    None => None,
                };
                self.send_invite(now, call, header);
                return;
            }
        }
        let kind = if leg.cancel_sent || (leg.cancel_wanted && resp.status == 487) {
            UacEnd::Cancelled
        } else if resp.status == 403 && leg.auth.sent {
            UacEnd::AuthFailed
        } else {
            UacEnd::Refused
        };
        self.fail(call, failure(kind));
    }

    /// The `Authorization`/`Proxy-Authorization` header for a request of
    /// `call` in answer to `ch` (kept for in-dialog requests).
    fn authorization(
        &mut self,
        call: CallRef,
        proxy: bool,
        ch: Challenge,
        method: &str,
    ) -> Option<(String, String)> {
        let cnonce = self.token(24);
        let leg = self.out.get_mut(&call)?;
        let creds = leg.spec.credentials.clone()?;
        let nc = leg.auth.counter.next(&ch.nonce);
        let uri = match method {
            "INVITE" if leg.remote_tag.is_none() => leg.spec.request_uri.clone(),
            _ => leg
                .remote_target
                .clone()
                .unwrap_or_else(|| leg.spec.request_uri.clone()),
        };
        let value = digest::authorization(
            &ch,
            &digest::Credentials {
                username: &creds.username,
                password: &creds.password,
            },
            &digest::RequestLine {
                method,
                uri: &uri,
                body: if method == "INVITE" && leg.remote_tag.is_none() {
                    leg.spec.sdp.as_bytes()
                } else {
                    b""
                },
            },
            nc,
            &cnonce,
        );
        leg.auth.last = Some((proxy, ch));
        let name = if proxy {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        Some((name.to_string(), value))
    }

    fn fail(&mut self, call: CallRef, failure: UacFailure) {
        if self.out.remove(&call).is_some() {
            self.outputs
                .push_back(Output::Event(Event::Failed { call, failure }));
        }
    }

    fn two_xx(&mut self, now: Instant, call: CallRef, resp: Response) {
        let Some(leg) = self.out.get_mut(&call) else {
            return;
        };
        if leg.remote_tag.is_some() {
            // A retransmission: the same ACK again (§13.2.2.4).
            if leg.remote_tag == resp.to_tag {
                if let Some(ack) = leg.ack.clone() {
                    let (t, d) = (leg.spec.transport, leg.spec.dest);
                    self.transmit(t, d, ack);
                }
            }
            return;
        }
        leg.remote_tag = resp.to_tag.clone();
        leg.remote_to = Some(resp.to.clone());
        leg.remote_target = resp.contact.clone();
        leg.route_set = resp.record_route.iter().rev().cloned().collect();
        leg.state = OutState::Confirmed;
        let branch = format!("z9hG4bK{}", self.token(20));
        let Some(leg) = self.out.get(&call) else {
            return;
        };
        let uri = leg
            .remote_target
            .clone()
            .unwrap_or_else(|| leg.spec.request_uri.clone());
        let bytes = self.build_outgoing(
            leg.spec.transport,
            &Outgoing {
                method: "ACK",
                uri: &uri,
                branch: &branch,
                route: &leg.route_set,
                from: &leg.from(),
                to: &resp.to,
                call_id: &leg.call_id,
                cseq: leg.cseq,
                contact: None,
                headers: &[],
                sdp: None,
            },
        );
        let (t, d) = (leg.spec.transport, leg.spec.dest);
        let key = leg.dialog_key();
        let cancelled = leg.cancel_wanted;
        if let Some(leg) = self.out.get_mut(&call) {
            leg.ack = Some(bytes.clone());
        }
        if let Some(key) = key {
            self.dialogs.insert(key, call);
        }
        self.transmit(t, d, bytes);
        if cancelled {
            // The 2xx crossed rivr's CANCEL (or came after rivr gave up):
            // the call is answered and ended at once.
            self.send_out_bye(now, call, None);
            self.outputs.push_back(Output::Event(Event::Failed {
                call,
                failure: UacFailure {
                    kind: UacEnd::Cancelled,
                    status: Some(resp.status),
                    reason: Some(resp.reason.clone()),
                    reason_header: None,
                },
            }));
            return;
        }
        let sdp = resp.has_sdp().then(|| resp.body.clone());
        let (asked, offer) = match self.out.get(&call) {
            Some(l) => (l.se_asked, l.spec.sdp.clone()),
            None => (None, String::new()),
        };
        self.session_started_as_uac(now, call, asked, &resp, &offer);
        self.outputs
            .push_back(Output::Event(Event::Answered { call, sdp }));
    }

    /// The `Authorization` header answering a challenge to an in-dialog
    /// request of rivr's (`None` when the call has no credentials or none
    /// fit).
    pub(super) fn in_dialog_authorization(
        &mut self,
        call: CallRef,
        resp: &Response,
        method: &str,
    ) -> Option<(String, String)> {
        let creds = self.out.get(&call)?.spec.credentials.clone()?;
        let proxy = resp.status == 407;
        let values = if proxy {
            &resp.proxy_authenticate
        } else {
            &resp.www_authenticate
        };
        let ch = digest::choose(values.iter().map(String::as_str), creds.realm.as_deref())?;
        self.authorization(call, proxy, ch, method)
    }

    /// A 2xx for a dialog rivr has (its transaction is gone): ACK again.
    fn reack(&mut self, resp: &Response) -> bool {
        if !(200..300).contains(&resp.status) || resp.cseq_method != rsip::Method::Invite {
            return false;
        }
        let found = self
            .out
            .values()
            .find(|l| l.call_id == resp.call_id && l.remote_tag == resp.to_tag && l.ack.is_some());
        if let Some(l) = found {
            let (t, d, ack) = (
                l.spec.transport,
                l.spec.dest,
                l.ack.clone().unwrap_or_default(),
            );
            self.transmit(t, d, ack);
            return true;
        }
        false
    }

    fn send_cancel(&mut self, now: Instant, call: CallRef) {
        let Some(leg) = self.out.get_mut(&call) else {
            return;
        };
        leg.cancel_sent = true;
        let Some(leg) = self.out.get(&call) else {
            return;
        };
        // Same branch, Request-URI, Call-ID, From, To and CSeq number as
        // the INVITE (§9.1).
        let bytes = self.build_outgoing(
            leg.spec.transport,
            &Outgoing {
                method: "CANCEL",
                uri: &leg.spec.request_uri,
                branch: &leg.branch,
                route: &leg.spec.route,
                from: &leg.from(),
                to: &leg.spec.to,
                call_id: &leg.call_id,
                cseq: leg.cseq,
                contact: None,
                headers: &[],
                sdp: None,
            },
        );
        let (t, d) = (leg.spec.transport, leg.spec.dest);
        if let Some(e) = self.icts.get_mut(&leg.branch) {
            e.tx.cancel_sent(now);
        }
        let key = format!("{}:cancel", leg.branch);
        let tx = NonInviteClientTx::new(now, self.cfg.timers, t.is_reliable(), bytes.clone());
        self.nicts.insert(
            key,
            NictEntry {
                tx,
                call,
                transport: t,
                dest: d,
            },
        );
        self.transmit(t, d, bytes);
    }

    /// BYE in an outbound dialog.
    fn send_out_bye(&mut self, now: Instant, call: CallRef, auth: Option<(String, String)>) {
        let branch = format!("z9hG4bK{}", self.token(20));
        let Some(leg) = self.out.get_mut(&call) else {
            return;
        };
        leg.state = OutState::Terminating;
        leg.cseq = leg.cseq.wrapping_add(1) & 0x7fff_ffff;
        let Some(leg) = self.out.get(&call) else {
            return;
        };
        let uri = leg
            .remote_target
            .clone()
            .unwrap_or_else(|| leg.spec.request_uri.clone());
        let to = leg.remote_to.clone().unwrap_or_else(|| leg.spec.to.clone());
        let headers: Vec<(String, String)> = auth.into_iter().collect();
        let bytes = self.build_outgoing(
            leg.spec.transport,
            &Outgoing {
                method: "BYE",
                uri: &uri,
                branch: &branch,
                route: &leg.route_set,
                from: &leg.from(),
                to: &to,
                call_id: &leg.call_id,
                cseq: leg.cseq,
                contact: None,
                headers: &headers,
                sdp: None,
            },
        );
        let (t, d) = (leg.spec.transport, leg.spec.dest);
        let tx = NonInviteClientTx::new(now, self.cfg.timers, t.is_reliable(), bytes.clone());
        self.nicts.insert(
            branch,
            NictEntry {
                tx,
                call,
                transport: t,
                dest: d,
            },
        );
        self.transmit(t, d, bytes);
    }

    /// A challenge to rivr's BYE: answered once with the credentials.
    pub(super) fn rechallenged_bye(
        &mut self,
        now: Instant,
        call: CallRef,
        resp: &Response,
    ) -> bool {
        let Some(leg) = self.out.get_mut(&call) else {
            return false;
        };
        if leg.auth.bye_retried || !matches!(resp.status, 401 | 407) {
            return false;
        }
        let Some(creds) = leg.spec.credentials.clone() else {
            return false;
        };
        leg.auth.bye_retried = true;
        let proxy = resp.status == 407;
        let values = if proxy {
            &resp.proxy_authenticate
        } else {
            &resp.www_authenticate
        };
        let Some(ch) = digest::choose(values.iter().map(String::as_str), creds.realm.as_deref())
        else {
            return false;
        };
        let header = self.authorization(call, proxy, ch, "BYE");
        self.send_out_bye(now, call, header);
        true
    }

    /// Ends an outbound call in whatever state it is: CANCEL before the
    /// answer (once a provisional came; before that, as soon as one does),
    /// BYE after.
    pub(super) fn hangup_out(&mut self, now: Instant, call: CallRef) -> Result<(), CallGone> {
        let leg = self.out.get_mut(&call).ok_or(CallGone(call))?;
        match leg.state {
            OutState::Calling => {
                leg.cancel_wanted = true;
                Ok(())
            }
            OutState::Proceeding => {
                leg.cancel_wanted = true;
                if !leg.cancel_sent {
                    self.send_cancel(now, call);
                }
                Ok(())
            }
            OutState::Confirmed => {
                self.send_out_bye(now, call, None);
                Ok(())
            }
            OutState::Terminating => Ok(()),
        }
    }

    /// The INVITE client transactions' timers.
    pub(super) fn ict_timeouts(&mut self, now: Instant) {
        let mut resend = Vec::new();
        let mut dead = Vec::new();
        for (branch, e) in self.icts.iter_mut() {
            match e.tx.handle_timeout(now) {
                TimerAction::Retransmit => {
                    resend.push((e.transport, e.dest, e.tx.request_bytes().to_vec()))
                }
                TimerAction::TimedOut => dead.push((branch.clone(), Some(e.call))),
                TimerAction::Terminated => dead.push((branch.clone(), None)),
                TimerAction::None => {}
            }
        }
        for (t, d, bytes) in resend {
            self.transmit(t, d, bytes);
        }
        for (branch, timed_out) in dead {
            self.icts.remove(&branch);
            let Some(call) = timed_out else { continue };
            // Timer B: nothing ever answered this INVITE.
            self.ict_unanswered(now, call, "timer B");
        }
        // Silent for NO_RESPONSE with other addresses left: move on now
        // rather than after timer B's 32 s.
        let quiet: Vec<(String, CallRef)> = self
            .icts
            .iter()
            .filter(|(_, e)| self.quiet_with_alternates(now, e))
            .map(|(b, e)| (b.clone(), e.call))
            .collect();
        for (branch, call) in quiet {
            self.icts.remove(&branch);
            if !self.fail_over(now, call, targets::HOLD, "no response") {
                self.ict_unanswered(now, call, "no response");
            }
        }
    }

    /// An INVITE unanswered for `targets::NO_RESPONSE` whose call has
    /// other addresses to try.
    fn quiet_with_alternates(&self, now: Instant, e: &IctEntry) -> bool {
        !e.heard
            && now >= e.sent_at + targets::NO_RESPONSE
            && self
                .out
                .get(&e.call)
                .is_some_and(|l| !l.alternates.is_empty() && !l.cancel_wanted)
    }

    /// The INVITE got no answer and never will (timer B, or the TCP
    /// connection for it could not be made).
    fn ict_unanswered(&mut self, now: Instant, call: CallRef, why: &str) {
        if self.fail_over(now, call, targets::HOLD, why) {
            return;
        }
        let cancelled = self.out.get(&call).is_some_and(|l| l.cancel_wanted);
        self.fail(
            call,
            UacFailure {
                kind: if cancelled {
                    UacEnd::Cancelled
                } else {
                    UacEnd::NoResponse
                },
                status: None,
                reason: None,
                reason_header: None,
            },
        );
    }

    /// The INVITEs sent over a TCP connection to `dest` that could not be
    /// made end at once, as timer B would have ended them.
    pub(super) fn icts_connect_failed(&mut self, now: Instant, dest: SocketAddr) {
        let dead: Vec<(String, CallRef)> = self
            .icts
            .iter()
            .filter(|(_, e)| e.transport == Transport::TcpTo && e.dest == dest)
            .map(|(b, e)| (b.clone(), e.call))
            .collect();
        for (branch, call) in dead {
            self.icts.remove(&branch);
            // An attempt already answered (its ACK was what failed) is
            // ended by its own BYE or the far end's, not here.
            if self
                .out
                .get(&call)
                .is_some_and(|l| matches!(l.state, OutState::Calling | OutState::Proceeding))
            {
                self.ict_unanswered(now, call, "no TCP connection");
            }
        }
    }

    /// The Call-ID of a call rivr placed.
    pub fn call_id_of(&self, call: CallRef) -> Option<String> {
        self.out.get(&call).map(|l| l.call_id.clone())
    }

    /// What the layer above stores of a call rivr placed, to end it from
    /// another process after a crash ([`Endpoint::end_orphan`]).
    pub fn out_dialog(&self, call: CallRef) -> Option<OutDialog> {
        self.out.get(&call).map(OutLeg::out_dialog)
    }

    /// Takes over the INVITE transaction of an adopted call (its final
    /// response is still to come).
    pub(super) fn adopt_ict(&mut self, now: Instant, call: CallRef) {
        let Some(leg) = self.out.get(&call) else {
            return;
        };
        let (t, d) = (leg.spec.transport, leg.spec.dest);
        self.icts.insert(
            leg.branch.clone(),
            IctEntry {
                tx: InviteClientTx::adopted(self.cfg.timers, t.is_reliable()),
                call,
                transport: t,
                dest: d,
                sent_at: now,
                heard: true,
            },
        );
    }

    /// The response to a CANCEL: for a call taken over from a dead
    /// process, a final other than 2xx (481: the far end has no such
    /// INVITE any more) means the call is already over there.
    pub(super) fn cancel_answered(&mut self, call: CallRef, branch: &str, status: u16) {
        if status < 300 || !self.out.get(&call).is_some_and(|l| l.orphan) {
            return;
        }
        if let Some(e) = self.icts.get_mut(branch) {
            e.tx.terminate();
        }
        self.fail(
            call,
            UacFailure {
                kind: UacEnd::Cancelled,
                status: Some(status),
                reason: None,
                reason_header: None,
            },
        );
    }

    pub(super) fn icts_call(&self, branch: &str) -> Option<CallRef> {
        self.icts.get(branch).map(|e| e.call)
    }

    pub(super) fn ict_next_timeout(&self) -> Option<Instant> {
        let quiet = self.icts.values().filter_map(|e| {
            let alternates = self
                .out
                .get(&e.call)
                .is_some_and(|l| !l.alternates.is_empty() && !l.cancel_wanted);
            (!e.heard && alternates).then_some(e.sent_at + targets::NO_RESPONSE)
        });
        self.icts
            .values()
            .filter_map(|e| e.tx.poll_timeout())
            .chain(quiet)
            .min()
    }
}
