//! The UAS core: turns datagrams into transactions, calls and dialogs, and
//! the layer above's decisions (ring, answer, reject, hang up) into
//! responses and requests. Sans-IO: `handle_input(now, …)`,
//! `handle_timeout(now)`, `poll_output()`, `poll_timeout()`.
//!
//! What it answers on its own: retransmissions (from the transactions),
//! CANCEL (200 + 487), BYE (200), OPTIONS (200; 503 + Retry-After outside
//! a dialog while the server drains or is full), INFO in a dialog (200), NOTIFY of a
//! transfer rivr started (200; `refer`),
//! requests in an unknown dialog (481), unknown methods (501 with Allow),
//! merged requests (482), malformed requests (400 from `wire`, or the
//! `validate` code). New INVITEs go up as `Event::IncomingCall` after a
//! 100 Trying.

mod leg;
mod orphan;
mod refer;
mod reinvite;
mod session;
mod targets;
mod timed_map;
mod trunk_link;
mod uac;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use rand::{Rng, SeedableRng};

pub(crate) use leg::uri_socket_addr;
use leg::Leg;
pub use leg::{CallRef, TxKey};
pub use orphan::OutDialog;
pub use refer::{parse_sipfrag, TransferOutcome};
use timed_map::TimedMap;
pub use trunk_link::{LinkEvent, TrunkLinkSpec};
pub use uac::{Credentials, OutboundInvite, UacEnd, UacFailure};

use crate::sip::message::{
    build_response, response_destination, stamp_via, Request, Response, ResponseParts, Transport,
    ALLOW,
};
use crate::sip::transaction::{
    InviteServerState, InviteServerTx, NonInviteClientTx, NonInviteServerTx, TimerConfig,
};
use crate::sip::{validate, wire};

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The address put in Via and Contact.
    pub local_addr: SocketAddr,
    pub user_agent: String,
    pub timers: TimerConfig,
    /// Seeds tags, branches and CSeqs (deterministic tests).
    pub seed: u64,
    /// Session timers (RFC 4028): the interval rivr picks for a caller
    /// that supports timers but names none, and the smallest it accepts.
    pub session: crate::sip::session_timer::Policy,
    /// The `Session-Expires` rivr asks for on the calls it places; `None`:
    /// it only says `Supported: timer` and runs what the far end asks.
    pub session_ask: Option<u32>,
}

/// Why a call ended, as the core saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteBye,
    /// The caller sent CANCEL before answer; 487 was sent.
    Cancelled,
    /// The 2xx was never acknowledged; BYE was sent (§13.3.1.4).
    AckTimeout,
    /// rivr's BYE got its final response or timed out.
    LocalByeDone,
    /// The session timer ran out, or rivr's refresh failed (RFC 4028
    /// §10); BYE was sent.
    SessionExpired,
}

#[derive(Debug, PartialEq)]
pub enum Event {
    /// A new INVITE; 100 Trying has been sent. Answer with `ring`,
    /// `answer` or `reject`.
    IncomingCall {
        call: CallRef,
        request: Box<Request>,
        source: SocketAddr,
    },
    /// The ACK for rivr's 2xx; `sdp` is the peer's answer when rivr offered
    /// in the 2xx.
    Confirmed {
        call: CallRef,
        sdp: Option<Vec<u8>>,
    },
    /// A re-INVITE in the dialog, with its offer (or none): answer it with
    /// `answer_reinvite`.
    ReInvite {
        call: CallRef,
        sdp: Option<Vec<u8>>,
    },
    /// INFO in the dialog (answered 200).
    Info {
        call: CallRef,
        content_type: Option<String>,
        body: Vec<u8>,
    },
    Ended {
        call: CallRef,
        reason: EndReason,
    },
    /// A provisional (other than 100) to an INVITE rivr sent; `sdp` when
    /// it carries early media.
    Progress {
        call: CallRef,
        status: u16,
        sdp: Option<Vec<u8>>,
    },
    /// rivr's INVITE was answered (and ACKed).
    Answered {
        call: CallRef,
        sdp: Option<Vec<u8>>,
    },
    /// rivr's INVITE ended without an answer.
    Failed {
        call: CallRef,
        failure: UacFailure,
    },
    /// A transfer started by `refer` is over (success or failure).
    Transfer {
        call: CallRef,
        outcome: TransferOutcome,
    },
    /// A trunk link's state changed (registration, keepalive).
    TrunkLink {
        trunk: usize,
        event: LinkEvent,
    },
}

#[derive(Debug)]
pub enum Output {
    Transmit {
        transport: Transport,
        dest: SocketAddr,
        bytes: Vec<u8>,
    },
    Event(Event),
}

/// The call is not (or no longer) in a state that allows the operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("call {0} is gone or in the wrong state")]
pub struct CallGone(pub CallRef);

/// Counters a metrics endpoint can show.
#[derive(Debug, Default, Clone)]
pub struct EndpointStats {
    pub malformed_dropped: u64,
    pub malformed_answered: u64,
    pub retransmissions_absorbed: u64,
    pub calls_started: u64,
    /// INVITEs, OPTIONS and REGISTERs moved to a trunk's next address.
    pub failovers: u64,
    /// OPTIONS outside a dialog answered 503 (server draining or full).
    pub options_refused: u64,
    /// NOTIFY bodies of a transfer that were no sipfrag status line.
    pub sipfrag_malformed: u64,
}

struct InviteTxEntry {
    tx: InviteServerTx,
    call: CallRef,
    transport: Transport,
    dest: SocketAddr,
    /// Its key in `pending_invites`, for a new INVITE (§8.2.2.2).
    merge_key: Option<MergeKey>,
}

/// (Call-ID, From tag, CSeq) of an INVITE.
type MergeKey = (String, String, u32);

impl timed_map::Deadline for InviteTxEntry {
    fn deadline(&self) -> Option<Instant> {
        self.tx.poll_timeout()
    }
}

impl timed_map::Deadline for NistEntry {
    fn deadline(&self) -> Option<Instant> {
        self.tx.poll_timeout()
    }
}

impl timed_map::Deadline for NictEntry {
    fn deadline(&self) -> Option<Instant> {
        self.tx.poll_timeout()
    }
}

struct NistEntry {
    tx: NonInviteServerTx,
    transport: Transport,
    dest: SocketAddr,
}

struct NictEntry {
    tx: NonInviteClientTx,
    call: CallRef,
    transport: Transport,
    dest: SocketAddr,
}

pub struct Endpoint {
    cfg: EndpointConfig,
    rng: rand::rngs::StdRng,
    next_call: CallRef,
    invite_txs: TimedMap<TxKey, InviteTxEntry>,
    nists: TimedMap<(String, String, String), NistEntry>,
    nicts: TimedMap<String, NictEntry>,
    calls: HashMap<CallRef, Leg>,
    /// Calls rivr places (the UAC half).
    out: HashMap<CallRef, uac::OutLeg>,
    /// INVITE client transactions by branch.
    icts: HashMap<String, uac::IctEntry>,
    /// re-INVITEs waiting for an answer, and 2xx to re-INVITEs until ACKed.
    reinvites: HashMap<CallRef, reinvite::PendingReinvite>,
    reinvite_2xx: HashMap<CallRef, reinvite::Reinvite2xx>,
    /// Session timers, and rivr's refreshes in flight by branch.
    sessions: HashMap<CallRef, session::Session>,
    refreshes: HashMap<String, session::RefreshTx>,
    /// REFER transactions by branch, and each call's transfer.
    refers: refer::Refers,
    transfers: refer::Transfers,
    /// Trunk registrations and keepalives, and their transactions.
    links: Vec<trunk_link::Link>,
    link_txs: HashMap<String, trunk_link::LinkTx>,
    /// Each trunk's addresses, by the trunk's number, and which failed.
    targets: HashMap<usize, targets::TargetSet>,
    /// (Call-ID, local tag, remote tag) → call.
    dialogs: HashMap<(String, String, String), CallRef>,
    /// (Call-ID, From tag, CSeq) of INVITEs in progress, for merged requests (§8.2.2.2).
    pending_invites: HashMap<MergeKey, TxKey>,
    /// When UAS legs waiting for their ACK next retransmit or give up;
    /// items may be stale (the leg is checked when one comes due).
    accepted_timers: BinaryHeap<Reverse<(Instant, CallRef)>>,
    outputs: VecDeque<Output>,
    stats: EndpointStats,
    /// `Retry-After` seconds while the server drains or is full: an OPTIONS ping
    /// (a load balancer's health check) is answered 503 so traffic moves.
    unavailable: Option<u32>,
}

impl Endpoint {
    pub fn new(cfg: EndpointConfig) -> Self {
        Endpoint {
            rng: rand::rngs::StdRng::seed_from_u64(cfg.seed),
            cfg,
            next_call: 1,
            invite_txs: TimedMap::new(),
            nists: TimedMap::new(),
            nicts: TimedMap::new(),
            calls: HashMap::new(),
            out: HashMap::new(),
            icts: HashMap::new(),
            reinvites: HashMap::new(),
            reinvite_2xx: HashMap::new(),
            sessions: HashMap::new(),
            refreshes: HashMap::new(),
            refers: HashMap::new(),
            transfers: HashMap::new(),
            links: Vec::new(),
            link_txs: HashMap::new(),
            targets: HashMap::new(),
            dialogs: HashMap::new(),
            pending_invites: HashMap::new(),
            accepted_timers: BinaryHeap::new(),
            outputs: VecDeque::new(),
            stats: EndpointStats::default(),
            unavailable: None,
        }
    }

    /// While the server takes no new call (draining, or `max_calls` held;
    /// the server core sets it before each message): OPTIONS outside a dialog get 503 with
    /// `Retry-After: retry_after_s` (`None`: 200 again). OPTIONS in a
    /// dialog still get 200, so a peer's keepalive does not end its call.
    pub fn set_unavailable(&mut self, retry_after_s: Option<u32>) {
        self.unavailable = retry_after_s;
    }

    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// The addresses trunk number `trunk` is reached at, in the order DNS
    /// gave them (at start, and again whenever the server re-resolves the
    /// name); holds of addresses still listed are kept.
    pub fn set_trunk_targets(&mut self, trunk: usize, addrs: Vec<SocketAddr>) {
        self.targets
            .entry(trunk)
            .and_modify(|t| t.replace(addrs.clone()))
            .or_insert_with(|| targets::TargetSet::new(addrs));
    }

    /// Calls the core still tracks (for leak checks and metrics).
    pub fn active_calls(&self) -> usize {
        self.calls.len() + self.out.len()
    }

    /// Live transactions of every kind (for leak checks).
    pub fn active_transactions(&self) -> usize {
        self.invite_txs.len()
            + self.nists.len()
            + self.nicts.len()
            + self.icts.len()
            + self.refreshes.len()
            + self.refers.len()
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        #[cfg(debug_assertions)]
        self.check_timers();
        [
            self.invite_txs.next_deadline(),
            self.nists.next_deadline(),
            self.nicts.next_deadline(),
            self.accepted_timers.peek().map(|Reverse((at, _))| *at),
        ]
        .into_iter()
        .flatten()
        .chain(self.ict_next_timeout())
        .chain(self.link_next_timeout())
        .chain(self.reinvite_next_timeout())
        .chain(self.session_next_timeout())
        .chain(self.refer_next_timeout())
        .min()
    }

    /// Every running timer is indexed no later than it is due.
    #[cfg(debug_assertions)]
    fn check_timers(&self) {
        self.invite_txs.check();
        self.nists.check();
        self.nicts.check();
        for (call, leg) in &self.calls {
            if let Some(at) = leg.accepted_deadline() {
                assert!(
                    self.accepted_timers
                        .iter()
                        .any(|Reverse((t, c))| c == call && *t <= at),
                    "call {call}: its 2xx timer at {at:?} is not indexed"
                );
            }
        }
    }

    fn transmit(&mut self, transport: Transport, dest: SocketAddr, bytes: Vec<u8>) {
        self.outputs.push_back(Output::Transmit {
            transport,
            dest,
            bytes,
        });
    }

    fn token(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| CHARS[self.rng.gen_range(0..CHARS.len())] as char)
            .collect()
    }

    fn contact_uri(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!("sip:rivr@{}", self.cfg.local_addr),
            Transport::Tcp(_) | Transport::TcpTo => {
                format!("sip:rivr@{};transport=tcp", self.cfg.local_addr)
            }
        }
    }

    /// One datagram, or one message framed from a stream.
    pub fn handle_input(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        bytes: &[u8],
    ) {
        let msg = match wire::parse_message(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.answer_malformed(transport, source, bytes, &e);
                return;
            }
        };
        match msg {
            rsip::SipMessage::Request(req) => {
                if let Err(rej) = validate::check_request(&req) {
                    if req.method != rsip::Method::Ack {
                        let err = wire::WireError {
                            status: Some(rej.status),
                            reason: rej.reason,
                        };
                        self.answer_malformed(transport, source, bytes, &err);
                    }
                    return;
                }
                match Request::from_rsip(&req) {
                    Ok(r) => self.handle_request(now, transport, source, r),
                    Err(e) => {
                        let err = wire::WireError {
                            status: (req.method != rsip::Method::Ack).then_some(400),
                            reason: e.to_string(),
                        };
                        self.answer_malformed(transport, source, bytes, &err);
                    }
                }
            }
            rsip::SipMessage::Response(resp) => match Response::from_rsip(&resp) {
                Ok(mut r) => {
                    r.set_reason_from(bytes);
                    self.handle_response(now, transport, source, r)
                }
                Err(_) => self.stats.malformed_dropped += 1,
            },
        }
    }

    fn answer_malformed(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        bytes: &[u8],
        e: &wire::WireError,
    ) {
        tracing::debug!(%source, reason = ?e.reason, status = ?e.status, "malformed SIP message");
        // An ACK is never answered (§17.1.1.3), however broken it is.
        if bytes.starts_with(b"ACK ") {
            self.stats.malformed_dropped += 1;
            return;
        }
        match e.status.and_then(|_| wire::error_response(bytes, e)) {
            Some(resp) => {
                self.stats.malformed_answered += 1;
                self.transmit(transport, source, resp);
            }
            None => self.stats.malformed_dropped += 1,
        }
    }

    fn handle_request(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        req: Request,
    ) {
        let key: TxKey = (req.top_via.branch.clone(), req.top_via.sent_by.clone());
        let top_via = stamp_via(
            req.vias.first().map(String::as_str).unwrap_or(""),
            &req.top_via,
            source,
        );
        let dest = response_destination(&req.top_via, source, transport);
        use rsip::Method::*;
        match req.method {
            Ack => self.handle_ack(now, &key, req),
            Invite => {
                if let Some(e) = self.invite_txs.get(&key) {
                    self.stats.retransmissions_absorbed += 1;
                    if let Some(b) = e.tx.on_request_retransmission() {
                        let (b, t, d) = (b.to_vec(), e.transport, e.dest);
                        self.transmit(t, d, b);
                    }
                    return;
                }
                if req.to_tag.is_some() {
                    self.handle_reinvite(now, transport, dest, &top_via, key, req);
                } else {
                    self.handle_new_invite(now, transport, source, dest, top_via, key, req);
                }
            }
            _ => {
                let nkey = (key.0.clone(), key.1.clone(), req.method.to_string());
                if let Some(e) = self.nists.get(&nkey) {
                    self.stats.retransmissions_absorbed += 1;
                    if let Some(b) = e.tx.on_request_retransmission() {
                        let (b, t, d) = (b.to_vec(), e.transport, e.dest);
                        self.transmit(t, d, b);
                    }
                    return;
                }
                let (code, extra, ev) = self.non_invite_verdict(now, &key, &req);
                let extra_ref: Vec<(&str, String)> = extra;
                // §8.2.6.2: a response outside a dialog gets a To tag of ours.
                let to_tag = req.to_tag.is_none().then(|| self.token(16));
                let bytes = build_response(
                    &req,
                    &top_via,
                    code,
                    &ResponseParts {
                        to_tag: to_tag.as_deref(),
                        contact: None,
                        extra_headers: &extra_ref,
                        sdp: None,
                    },
                    &self.cfg.user_agent,
                );
                let mut tx = NonInviteServerTx::new();
                tx.send_final(
                    now,
                    &self.cfg.timers,
                    transport.is_reliable(),
                    bytes.clone(),
                );
                self.nists.insert(
                    nkey,
                    NistEntry {
                        tx,
                        transport,
                        dest,
                    },
                );
                self.transmit(transport, dest, bytes);
                if let Some(Event::Ended {
                    call,
                    reason: EndReason::Cancelled,
                }) = &ev
                {
                    let call = *call;
                    self.send_invite_final(now, call, 487);
                    self.end_call(call);
                }
                if let Some(ev) = ev {
                    self.outputs.push_back(Output::Event(ev));
                }
            }
        }
    }

    /// The final answer to a non-INVITE request, and the event it raises.
    fn non_invite_verdict(
        &mut self,
        now: Instant,
        key: &TxKey,
        req: &Request,
    ) -> (u16, Vec<(&'static str, String)>, Option<Event>) {
        use rsip::Method::*;
        let allow = || vec![("Allow", ALLOW.to_string())];
        let in_dialog = req.to_tag.is_some();
        let dialog_call = self.find_dialog(req);
        match req.method {
            Cancel => self.handle_cancel(now, key),
            Options if !in_dialog && self.unavailable.is_some() => {
                self.stats.options_refused += 1;
                let wait = self.unavailable.unwrap_or(1);
                (503, vec![("Retry-After", wait.to_string())], None)
            }
            Options if !in_dialog || dialog_call.is_some() => (
                200,
                vec![
                    ("Allow", ALLOW.to_string()),
                    ("Accept", "application/sdp".to_string()),
                    ("Supported", "timer".to_string()),
                ],
                None,
            ),
            Bye | Info | Options | Update if dialog_call.is_none() => (481, vec![], None),
            Notify if in_dialog => self.handle_notify(dialog_call, req),
            Update => self.handle_update(now, dialog_call.unwrap_or_default(), req),
            Bye => {
                let call = dialog_call.unwrap_or_default();
                if let Some(leg) = self.calls.get_mut(&call) {
                    leg.remote_cseq = leg.remote_cseq.max(req.cseq);
                }
                if let Some(leg) = self.out.get_mut(&call) {
                    leg.remote_cseq = leg.remote_cseq.max(req.cseq);
                }
                self.end_call(call);
                (
                    200,
                    vec![],
                    Some(Event::Ended {
                        call,
                        reason: EndReason::RemoteBye,
                    }),
                )
            }
            Info => {
                let call = dialog_call.unwrap_or_default();
                (
                    200,
                    vec![],
                    Some(Event::Info {
                        call,
                        content_type: req.content_type.clone(),
                        body: req.body.clone(),
                    }),
                )
            }
            _ if in_dialog && dialog_call.is_none() => (481, vec![], None),
            _ => (501, allow(), None),
        }
    }

    fn find_dialog(&self, req: &Request) -> Option<CallRef> {
        let local = req.to_tag.clone()?;
        let remote = req.from_tag.clone().unwrap_or_default();
        self.dialogs
            .get(&(req.call_id.clone(), local, remote))
            .copied()
    }

    fn handle_cancel(
        &mut self,
        now: Instant,
        key: &TxKey,
    ) -> (u16, Vec<(&'static str, String)>, Option<Event>) {
        let Some(entry) = self.invite_txs.get(key) else {
            return (481, vec![], None);
        };
        let call = entry.call;
        if entry.tx.state() != InviteServerState::Proceeding {
            // Too late: the INVITE already has its final response (§9.2).
            return (200, vec![], None);
        }
        // The 200 to the CANCEL goes first; `handle_request` then sends the
        // 487 to the INVITE (§9.2).
        let _ = now;
        (
            200,
            vec![],
            Some(Event::Ended {
                call,
                reason: EndReason::Cancelled,
            }),
        )
    }
}

mod dialog_ops;
mod invite;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trunk_link_tests;
#[cfg(test)]
mod uac_tests;
