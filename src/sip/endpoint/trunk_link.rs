//! The endpoint's standing link to each trunk: registration (REGISTER at
//! start, refreshed at 90 % of the expiry the registrar granted, 423
//! Min-Expires honoured, digest challenges answered, back-off from 30 s
//! doubling to 10 min after a failure, Expires: 0 at shutdown) and the
//! OPTIONS keepalive that says whether the trunk is up (any final answer)
//! or down (no answer within timer F). A trunk with several addresses
//! (`targets`) sends both to the first address not held; one that does
//! not answer is held and the request goes at once to the next, so the
//! trunk is down only when no address answers. Sans-IO: timers are instants the
//! endpoint's `poll_timeout` includes.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Endpoint, Event, Output};
use crate::sip::digest::{self, NonceCounter};
use crate::sip::endpoint::uac::Credentials;
use crate::sip::message::{Response, Transport};
use crate::sip::transaction::{NonInviteClientTx, TimerAction};

/// The first wait after a failed registration, and the longest.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(30), Duration::from_secs(600));

/// What the endpoint keeps up with one trunk.
#[derive(Debug, Clone)]
pub struct TrunkLinkSpec {
    /// The trunk's number in the caller's list (events carry it).
    pub id: usize,
    /// Where its requests go when the endpoint has no addresses for the
    /// trunk (`Endpoint::set_trunk_targets`).
    pub dest: SocketAddr,
    pub transport: Transport,
    /// `host[:port]` of the trunk (registrar and OPTIONS target).
    pub host_port: String,
    /// Send OPTIONS this often (`None`: no keepalive; the trunk is up).
    pub options_every: Option<Duration>,
    /// Register as this user with these credentials.
    pub register: Option<Credentials>,
    /// The expiry asked for.
    pub expires: u32,
}

/// How a trunk link changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// OPTIONS answered (any final response).
    Up,
    /// OPTIONS went unanswered.
    Down,
    /// The registrar granted this expiry (seconds).
    Registered { expires: u32 },
    /// Registration failed (`status: None` when nothing answered); the
    /// next try is in `retry_in`.
    RegistrationFailed {
        status: Option<u16>,
        retry_in: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxKind {
    Register,
    Options,
}

pub(super) struct LinkTx {
    tx: NonInviteClientTx,
    link: usize,
    kind: TxKind,
    dest: SocketAddr,
}

pub(super) struct Link {
    spec: TrunkLinkSpec,
    call_id: String,
    local_tag: String,
    cseq: u32,
    /// The expiry to ask for next (raised by a 423).
    asking: u32,
    next_register: Option<Instant>,
    next_options: Option<Instant>,
    backoff: Duration,
    auth_sent: bool,
    stale_retries: u8,
    counter: NonceCounter,
    registered: bool,
    up: Option<bool>,
}

impl Endpoint {
    /// Starts keeping a trunk link: the first REGISTER and OPTIONS go now.
    pub fn add_trunk_link(&mut self, now: Instant, spec: TrunkLinkSpec) {
        let link = Link {
            call_id: format!("{}@{}", self.token(20), self.cfg.local_addr.ip()),
            local_tag: self.token(16),
            cseq: 1,
            asking: spec.expires.max(60),
            next_register: spec.register.as_ref().map(|_| now),
            next_options: spec.options_every.map(|_| now),
            backoff: BACKOFF.0,
            auth_sent: false,
            stale_retries: 0,
            counter: NonceCounter::default(),
            registered: false,
            up: None,
            spec,
        };
        self.links.push(link);
        self.link_timeouts(now);
    }

    /// Whether trunk `id` is registered now; `None` when it does not
    /// register (or has no link).
    pub fn trunk_registered(&self, id: usize) -> Option<bool> {
        self.links
            .iter()
            .find(|l| l.spec.id == id)
            .and_then(|l| l.spec.register.as_ref().map(|_| l.registered))
    }

    /// Shutdown: every registration is withdrawn (Expires: 0), once.
    pub fn unregister_all(&mut self, now: Instant) {
        for i in 0..self.links.len() {
            let registered = self.links.get(i).is_some_and(|l| l.registered);
            if registered {
                self.send_register(now, i, 0, None);
                if let Some(l) = self.links.get_mut(i) {
                    l.registered = false;
                    l.next_register = None;
                }
            }
            if let Some(l) = self.links.get_mut(i) {
                l.next_options = None;
            }
        }
    }

    fn link_event(&mut self, i: usize, event: LinkEvent) {
        if let Some(l) = self.links.get(i) {
            self.outputs.push_back(Output::Event(Event::TrunkLink {
                trunk: l.spec.id,
                event,
            }));
        }
    }

    fn send_register(
        &mut self,
        now: Instant,
        i: usize,
        expires: u32,
        auth: Option<(String, String)>,
    ) {
        let branch = format!("z9hG4bK{}", self.token(20));
        let Some(transport) = self.links.get(i).map(|l| l.spec.transport) else {
            return;
        };
        let contact_base = self.contact_uri(transport);
        let Some(l) = self.links.get_mut(i) else {
            return;
        };
        let Some(creds) = l.spec.register.clone() else {
            return;
        };
        l.cseq = l.cseq.wrapping_add(1) & 0x7fff_ffff;
        let user = &creds.username;
        // The Contact names the account's user, so calls the registrar
        // sends back can be told apart from calls to rivr's numbers.
        let contact = contact_base.replacen("sip:rivr@", &format!("sip:{user}@"), 1);
        let aor = format!("<sip:{user}@{}>", l.spec.host_port);
        let mut s = format!(
            "REGISTER sip:{} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: {aor};tag={}\r\nTo: {aor}\r\nCall-ID: {}\r\nCSeq: {} REGISTER\r\n\
             Contact: <{contact}>\r\nExpires: {expires}\r\n",
            l.spec.host_port,
            l.spec.transport.via_name(),
            self.cfg.local_addr,
            l.local_tag,
            l.call_id,
            l.cseq,
        );
        if let Some((k, v)) = auth {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str(&format!(
            "User-Agent: {}\r\nContent-Length: 0\r\n\r\n",
            self.cfg.user_agent
        ));
        let t = l.spec.transport;
        let d = self.link_dest(now, i);
        let bytes = s.into_bytes();
        let tx = NonInviteClientTx::new(now, self.cfg.timers, t.is_reliable(), bytes.clone());
        self.link_txs.insert(
            branch,
            LinkTx {
                tx,
                link: i,
                kind: TxKind::Register,
                dest: d,
            },
        );
        self.transmit(t, d, bytes);
    }

    fn send_options(&mut self, now: Instant, i: usize) {
        let branch = format!("z9hG4bK{}", self.token(20));
        let tag = self.token(12);
        let call_id = format!("{}@{}", self.token(20), self.cfg.local_addr.ip());
        let Some(l) = self.links.get(i) else {
            return;
        };
        let s = format!(
            "OPTIONS sip:{hp} SIP/2.0\r\nVia: SIP/2.0/{} {};branch={branch};rport\r\nMax-Forwards: 70\r\n\
             From: <sip:rivr@{}>;tag={tag}\r\nTo: <sip:{hp}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
             Accept: application/sdp\r\nUser-Agent: {}\r\nContent-Length: 0\r\n\r\n",
            l.spec.transport.via_name(),
            self.cfg.local_addr,
            self.cfg.local_addr,
            self.cfg.user_agent,
            hp = l.spec.host_port,
        );
        let t = l.spec.transport;
        let d = self.link_dest(now, i);
        let bytes = s.into_bytes();
        let tx = NonInviteClientTx::new(now, self.cfg.timers, t.is_reliable(), bytes.clone());
        self.link_txs.insert(
            branch,
            LinkTx {
                tx,
                link: i,
                kind: TxKind::Options,
                dest: d,
            },
        );
        self.transmit(t, d, bytes);
    }

    /// A response to a REGISTER or OPTIONS of a trunk link; false when the
    /// branch is not one of theirs.
    pub(super) fn handle_link_response(&mut self, now: Instant, resp: &Response) -> bool {
        let Some(branch) = resp.branch.as_deref() else {
            return false;
        };
        let Some(e) = self.link_txs.get_mut(branch) else {
            return false;
        };
        if !e.tx.on_response(now, resp.status) {
            return true;
        }
        let (i, kind) = (e.link, e.kind);
        self.link_txs.remove(branch);
        match kind {
            TxKind::Options => self.options_answered(now, i, true),
            TxKind::Register => self.register_answered(now, i, resp),
        }
        true
    }

    /// Where link `i` sends now: the first of its trunk's addresses not
    /// held, else its own `dest`.
    fn link_dest(&self, now: Instant, i: usize) -> SocketAddr {
        let Some(l) = self.links.get(i) else {
            return SocketAddr::from(([0, 0, 0, 0], 0));
        };
        self.targets
            .get(&l.spec.id)
            .and_then(|set| set.order(now).first().copied())
            .unwrap_or(l.spec.dest)
    }

    /// Link `i`'s request to `dest` went unanswered: `dest` is held, and
    /// true when another address of the trunk is free to try now.
    fn link_target_failed(&mut self, now: Instant, i: usize, dest: SocketAddr) -> bool {
        let Some(id) = self.links.get(i).map(|l| l.spec.id) else {
            return false;
        };
        let Some(set) = self.targets.get_mut(&id) else {
            return false;
        };
        set.hold(dest, now + super::targets::HOLD);
        let next = set.first_free(now);
        if let Some(next) = next {
            self.stats.failovers += 1;
            tracing::warn!(trunk = id, failed = %dest, %next, "trunk address did not answer; trying the next");
        }
        next.is_some()
    }

    /// A REGISTER or OPTIONS of link `i` to `dest` got no answer.
    fn link_unanswered(&mut self, now: Instant, i: usize, kind: TxKind, dest: SocketAddr) {
        let registering = self.links.get(i).is_some_and(|l| l.next_register.is_some());
        if kind == TxKind::Register && !registering {
            // The Expires: 0 of shutdown: nothing to retry.
            return;
        }
        if self.link_target_failed(now, i, dest) {
            match kind {
                TxKind::Options => self.send_options(now, i),
                TxKind::Register => {
                    let asking = self.links.get(i).map_or(0, |l| l.asking);
                    self.send_register(now, i, asking, None);
                }
            }
            return;
        }
        match kind {
            TxKind::Options => self.options_answered(now, i, false),
            TxKind::Register => self.register_failed(now, i, None),
        }
    }

    fn options_answered(&mut self, now: Instant, i: usize, up: bool) {
        let Some(l) = self.links.get_mut(i) else {
            return;
        };
        l.next_options = l.spec.options_every.map(|d| now + d);
        if l.up != Some(up) {
            l.up = Some(up);
            self.link_event(i, if up { LinkEvent::Up } else { LinkEvent::Down });
        }
    }

    fn register_answered(&mut self, now: Instant, i: usize, resp: &Response) {
        let Some(l) = self.links.get_mut(i) else {
            return;
        };
        let status = resp.status;
        if l.next_register.is_none() && !l.registered && status < 300 {
            // The answer to an Expires: 0 at shutdown.
            return;
        }
        match status {
            200..=299 => {
                let granted = resp
                    .contact_expires
                    .or(resp.expires)
                    .unwrap_or(l.asking)
                    .max(1);
                l.registered = true;
                l.auth_sent = false;
                l.stale_retries = 0;
                l.backoff = BACKOFF.0;
                // Refresh at 90 % of what the registrar granted.
                let refresh = Duration::from_millis(u64::from(granted) * 900);
                l.next_register = Some(now + refresh);
                self.link_event(i, LinkEvent::Registered { expires: granted });
            }
            423 => {
                let min = resp.min_expires.unwrap_or(l.asking.saturating_mul(2));
                l.asking = min.max(l.asking.saturating_add(1));
                let asking = l.asking;
                self.send_register(now, i, asking, None);
            }
            401 | 407 => {
                let Some(creds) = l.spec.register.clone() else {
                    return;
                };
                let proxy = status == 407;
                let values = if proxy {
                    &resp.proxy_authenticate
                } else {
                    &resp.www_authenticate
                };
                let chosen =
                    digest::choose(values.iter().map(String::as_str), creds.realm.as_deref());
                let retry = match &chosen {
                    Some(_) if !l.auth_sent => true,
                    Some(ch) if ch.stale && l.stale_retries < 2 => {
                        l.stale_retries += 1;
                        true
                    }
                    _ => false,
                };
                match (retry, chosen) {
                    (true, Some(ch)) => {
                        l.auth_sent = true;
                        let nc = l.counter.next(&ch.nonce);
                        let uri = format!("sip:{}", l.spec.host_port);
                        let asking = l.asking;
                        let cnonce = self.token(24);
                        let value = digest::authorization(
                            &ch,
                            &digest::Credentials {
                                username: &creds.username,
                                password: &creds.password,
                            },
                            &digest::RequestLine {
                                method: "REGISTER",
                                uri: &uri,
                                body: b"",
                            },
                            nc,
                            &cnonce,
                        );
                        let name = if proxy {
                            "Proxy-Authorization"
                        } else {
                            "Authorization"
                        };
                        self.send_register(now, i, asking, Some((name.into(), value)));
                    }
                    _ => self.register_failed(now, i, Some(status)),
                }
            }
            _ => self.register_failed(now, i, Some(status)),
        }
    }

    fn register_failed(&mut self, now: Instant, i: usize, status: Option<u16>) {
        let Some(l) = self.links.get_mut(i) else {
            return;
        };
        let retry_in = l.backoff;
        l.backoff = (l.backoff * 2).min(BACKOFF.1);
        l.registered = false;
        l.auth_sent = false;
        l.stale_retries = 0;
        l.next_register = Some(now + retry_in);
        self.link_event(i, LinkEvent::RegistrationFailed { status, retry_in });
    }

    /// The links' timers: due REGISTERs and OPTIONS, their transactions.
    pub(super) fn link_timeouts(&mut self, now: Instant) {
        let mut resend = Vec::new();
        let mut dead = Vec::new();
        for (branch, e) in self.link_txs.iter_mut() {
            match e.tx.handle_timeout(now) {
                TimerAction::Retransmit => {
                    resend.push((e.link, e.dest, e.tx.request_bytes().to_vec()))
                }
                TimerAction::TimedOut => {
                    dead.push((branch.clone(), Some((e.link, e.kind, e.dest))))
                }
                TimerAction::Terminated => dead.push((branch.clone(), None)),
                TimerAction::None => {}
            }
        }
        for (i, d, bytes) in resend {
            if let Some(t) = self.links.get(i).map(|l| l.spec.transport) {
                self.transmit(t, d, bytes);
            }
        }
        for (branch, timed_out) in dead {
            self.link_txs.remove(&branch);
            if let Some((i, kind, dest)) = timed_out {
                self.link_unanswered(now, i, kind, dest);
            }
        }
        for i in 0..self.links.len() {
            let (reg_due, opt_due, asking) = match self.links.get(i) {
                Some(l) => (
                    l.next_register.is_some_and(|t| t <= now),
                    l.next_options.is_some_and(|t| t <= now),
                    l.asking,
                ),
                None => continue,
            };
            if reg_due {
                if let Some(l) = self.links.get_mut(i) {
                    // Waiting for the answer; the transaction's timer F
                    // covers a registrar that never answers.
                    l.next_register = Some(now + Duration::from_secs(3600));
                    l.auth_sent = false;
                    l.stale_retries = 0;
                }
                self.send_register(now, i, asking, None);
            }
            if opt_due {
                if let Some(l) = self.links.get_mut(i) {
                    l.next_options = None;
                }
                self.send_options(now, i);
            }
        }
    }

    /// The REGISTERs and OPTIONS sent over a TCP connection to `dest` that
    /// could not be made: ended as if timer F had fired (a keepalive says
    /// down, a registration is retried after the back-off).
    pub(super) fn links_connect_failed(&mut self, now: Instant, dest: SocketAddr) {
        let dead: Vec<(String, usize, TxKind)> = self
            .link_txs
            .iter()
            .filter(|(_, e)| {
                e.dest == dest
                    && self
                        .links
                        .get(e.link)
                        .is_some_and(|l| l.spec.transport == Transport::TcpTo)
            })
            .map(|(b, e)| (b.clone(), e.link, e.kind))
            .collect();
        for (branch, i, kind) in dead {
            self.link_txs.remove(&branch);
            self.link_unanswered(now, i, kind, dest);
        }
    }

    pub(super) fn link_next_timeout(&self) -> Option<Instant> {
        self.links
            .iter()
            .flat_map(|l| [l.next_register, l.next_options])
            .flatten()
            .chain(self.link_txs.values().filter_map(|e| e.tx.poll_timeout()))
            .min()
    }
}
