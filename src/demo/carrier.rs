//! The demo's simulated carrier: a small SIP UAS, sans-IO. It takes
//! datagrams and `now`, and gives back datagrams to send (SIP from its
//! signalling socket, RTP from its media socket) and its next wake-up.
//! What it does with a call is fixed by the last digit of the number
//! dialed ([`Behaviour::for_number`]), like the SIPp carrier of
//! tests/sipp/uas_campaign.xml, so a campaign's report can be predicted.
//!
//! It is a test peer, not a carrier: one dialog per INVITE, no proxies
//! (Record-Route is ignored), no authentication, G.711 only. Its media is
//! 20 ms frames of silence; what rivr sends it is discarded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sip::message::{
    build_request, build_response, stamp_via, InDialogRequest, Request, ResponseParts,
};

/// What the carrier does with a call, by the dialed number's last digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 OK with media; rivr hangs up.
    Answer,
    /// 200 OK, then the callee hangs up after [`CarrierConfig::hangup_after`].
    AnswerThenHangup,
    /// 180 Ringing until rivr gives up (CANCEL → 487).
    RingOut,
    /// 486 Busy Here.
    Busy,
    /// 503 Service Unavailable.
    Unavailable,
}

impl Behaviour {
    /// 2 busy, 3 rings out, 4 503, 5 answers and hangs up, others answer.
    pub fn for_number(number: &str) -> Behaviour {
        match number.chars().last() {
            Some('2') => Behaviour::Busy,
            Some('3') => Behaviour::RingOut,
            Some('4') => Behaviour::Unavailable,
            Some('5') => Behaviour::AnswerThenHangup,
            _ => Behaviour::Answer,
        }
    }
}

/// Which of the carrier's two sockets a datagram leaves from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    Sip,
    Rtp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub socket: Socket,
    pub dest: SocketAddr,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct CarrierConfig {
    /// Where its SIP and RTP sockets are bound (they go in Contact and SDP).
    pub sip: SocketAddr,
    pub rtp: SocketAddr,
    pub hangup_after: Duration,
}

/// What the carrier has seen, for the demo's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CarrierStats {
    /// New INVITEs (retransmissions not counted).
    pub invites: u64,
    pub answered: u64,
    pub busy: u64,
    pub rang_out: u64,
    pub unavailable: u64,
    /// Datagrams that were not SIP it could use.
    pub dropped: u64,
}

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const FRAME: Duration = Duration::from_millis(20);
/// How long an ended call is remembered, to absorb retransmissions.
const LINGER: Duration = Duration::from_secs(32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ringing,
    /// 200 sent, no ACK yet.
    Answering,
    Up,
    /// The carrier's BYE is out, unanswered.
    Leaving,
    Ended,
}

/// The call's timers: one slot each (`Timer as usize`).
#[derive(Debug, Clone, Copy)]
enum Timer {
    /// Resend the last response (2xx until ACK) or our BYE.
    Resend,
    /// The callee hangs up.
    Hangup,
    /// The next RTP frame.
    Frame,
    /// Forget the call.
    Forget,
}
const TIMERS: usize = 4;

struct Call {
    state: State,
    invite: Request,
    from: SocketAddr,
    top_via: String,
    to_tag: String,
    last_response: Vec<u8>,
    resend_every: Duration,
    /// When the response or request being resent was first sent: resends
    /// stop 64·T1 after it (RFC 3261 Timer H / Timer F).
    resend_since: Instant,
    bye: Option<Vec<u8>>,
    remote_rtp: Option<SocketAddr>,
    /// 0 (PCMU) or 8 (PCMA).
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    timers: [Option<Instant>; TIMERS],
}

/// The carrier's state: its calls by Call-ID.
pub struct Carrier {
    cfg: CarrierConfig,
    calls: HashMap<String, Call>,
    out: std::collections::VecDeque<Transmit>,
    next_tag: u64,
    stats: CarrierStats,
}

impl Carrier {
    pub fn new(cfg: CarrierConfig) -> Carrier {
        Carrier {
            cfg,
            calls: HashMap::new(),
            out: Default::default(),
            next_tag: 1,
            stats: CarrierStats::default(),
        }
    }

    pub fn stats(&self) -> &CarrierStats {
        &self.stats
    }

    /// A datagram on the SIP socket.
    pub fn handle_sip(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) {
        let msg = match crate::sip::wire::parse_message(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.stats.dropped += 1;
                return;
            }
        };
        match msg {
            rsip::SipMessage::Request(r) => match Request::from_rsip(&r) {
                Ok(req) => self.on_request(now, from, req),
                Err(_) => self.stats.dropped += 1,
            },
            // Only our BYE is ever answered: any final response ends it.
            rsip::SipMessage::Response(r) => {
                let Ok(resp) = crate::sip::message::Response::from_rsip(&r) else {
                    self.stats.dropped += 1;
                    return;
                };
                if let Some(call) = self.calls.get_mut(&resp.call_id) {
                    if call.state == State::Leaving && resp.status >= 200 {
                        call.end(now);
                    }
                }
            }
        }
    }

    fn on_request(&mut self, now: Instant, from: SocketAddr, req: Request) {
        let top_via = match req.vias.first() {
            Some(v) => stamp_via(v, &req.top_via, from),
            None => return,
        };
        let reply = |code: u16, to_tag: Option<&str>| {
            build_response(
                &req,
                &top_via,
                code,
                &ResponseParts {
                    to_tag,
                    ..Default::default()
                },
                "rivr-demo-carrier",
            )
        };
        use rsip::Method;
        let known = self.calls.contains_key(&req.call_id);
        match req.method {
            Method::Invite if !known => self.on_invite(now, from, req, top_via),
            Method::Invite | Method::Ack | Method::Cancel | Method::Bye => {
                let Some(call) = self.calls.get_mut(&req.call_id) else {
                    if req.method != Method::Ack {
                        self.send_sip(from, reply(481, Some("x")));
                    }
                    return;
                };
                let mut replies = Vec::new();
                match req.method {
                    // A retransmission, or a re-INVITE (a session refresh).
                    Method::Invite if req.to_tag.is_none() => {
                        replies.push(call.last_response.clone());
                    }
                    Method::Invite => {
                        let sdp = call.sdp(&self.cfg);
                        replies.push(call.response(&self.cfg, &req, 200, Some(&sdp)));
                    }
                    Method::Ack => {
                        if call.state == State::Answering {
                            call.state = State::Up;
                            call.timers[Timer::Resend as usize] = None;
                        }
                    }
                    Method::Cancel => {
                        replies.push(call.response(&self.cfg, &req, 200, None));
                        if call.state == State::Ringing {
                            let invite = call.invite.clone();
                            let terminated = call.response(&self.cfg, &invite, 487, None);
                            call.last_response = terminated.clone();
                            call.end(now);
                            replies.push(terminated);
                        }
                    }
                    _ => {
                        replies.push(call.response(&self.cfg, &req, 200, None));
                        call.end(now);
                    }
                }
                for r in replies {
                    self.send_sip(from, r);
                }
            }
            // OPTIONS, INFO, UPDATE …: acknowledged, not acted on.
            _ => {
                let tag = req.to_tag.is_none().then_some("demo");
                self.send_sip(from, reply(200, tag));
            }
        }
    }

    fn on_invite(&mut self, now: Instant, from: SocketAddr, invite: Request, top_via: String) {
        self.stats.invites += 1;
        let behaviour = Behaviour::for_number(invite.uri_user.as_deref().unwrap_or(""));
        let to_tag = format!("carrier{}", self.next_tag);
        self.next_tag += 1;
        let offer = parse_offer(&invite.body, from);
        let mut call = Call {
            state: State::Ringing,
            from,
            top_via,
            to_tag,
            last_response: Vec::new(),
            resend_every: T1,
            resend_since: now,
            bye: None,
            remote_rtp: offer.map(|o| o.0),
            pt: offer.map_or(0, |o| o.1),
            seq: (self.next_tag as u16).wrapping_mul(7919),
            ts: 0,
            ssrc: 0x5EED_0000 ^ self.next_tag as u32,
            timers: [None; TIMERS],
            invite,
        };
        let invite = call.invite.clone();
        let trying = call.response(&self.cfg, &invite, 100, None);
        self.send_sip(from, trying);
        let (code, sdp) = match behaviour {
            Behaviour::Busy => {
                self.stats.busy += 1;
                (486, None)
            }
            Behaviour::Unavailable => {
                self.stats.unavailable += 1;
                (503, None)
            }
            Behaviour::RingOut => {
                self.stats.rang_out += 1;
                (180, None)
            }
            Behaviour::Answer | Behaviour::AnswerThenHangup if offer.is_none() => {
                // No G.711 offered (or no offer): nothing to answer with.
                (488, None)
            }
            Behaviour::Answer | Behaviour::AnswerThenHangup => {
                self.stats.answered += 1;
                (200, Some(call.sdp(&self.cfg)))
            }
        };
        let resp = call.response(&self.cfg, &invite, code, sdp.as_deref());
        call.last_response = resp.clone();
        match code {
            180 => {}
            200 => {
                call.state = State::Answering;
                call.timers[Timer::Resend as usize] = Some(now + T1);
                call.timers[Timer::Frame as usize] = Some(now);
                if behaviour == Behaviour::AnswerThenHangup {
                    call.timers[Timer::Hangup as usize] = Some(now + self.cfg.hangup_after);
                }
            }
            _ => call.end(now),
        }
        self.send_sip(from, resp);
        self.calls.insert(call.invite.call_id.clone(), call);
    }

    /// Runs the timers that are due; a spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut out = Vec::new();
        let mut forget = Vec::new();
        for (id, call) in &mut self.calls {
            for t in [Timer::Resend, Timer::Hangup, Timer::Frame, Timer::Forget] {
                if call.timers[t as usize].is_none_or(|at| at > now) {
                    continue;
                }
                call.timers[t as usize] = None;
                match t {
                    Timer::Resend => {
                        let bytes = match call.state {
                            State::Answering => call.last_response.clone(),
                            State::Leaving => call.bye.clone().unwrap_or_default(),
                            _ => continue,
                        };
                        out.push((Socket::Sip, call.from, bytes));
                        call.resend_every = (call.resend_every * 2).min(T2);
                        if now.saturating_duration_since(call.resend_since) < T1 * 64 {
                            call.timers[t as usize] = Some(now + call.resend_every);
                        } else {
                            call.end(now);
                        }
                    }
                    Timer::Hangup => {
                        if matches!(call.state, State::Up | State::Answering) {
                            let bye = call.bye_request(&self.cfg);
                            out.push((Socket::Sip, call.from, bye.clone()));
                            call.bye = Some(bye);
                            call.state = State::Leaving;
                            call.resend_every = T1;
                            call.resend_since = now;
                            call.timers[Timer::Resend as usize] = Some(now + T1);
                            call.timers[Timer::Frame as usize] = None;
                        }
                    }
                    Timer::Frame => {
                        if let Some(dest) = call.remote_rtp {
                            out.push((Socket::Rtp, dest, call.next_frame()));
                        }
                        call.timers[t as usize] = Some(now + FRAME);
                    }
                    Timer::Forget => forget.push(id.clone()),
                }
            }
        }
        for id in forget {
            self.calls.remove(&id);
        }
        for (socket, dest, bytes) in out {
            self.out.push_back(Transmit {
                socket,
                dest,
                bytes,
            });
        }
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .flat_map(|c| c.timers.iter().flatten())
            .min()
            .copied()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    fn send_sip(&mut self, dest: SocketAddr, bytes: Vec<u8>) {
        self.out.push_back(Transmit {
            socket: Socket::Sip,
            dest,
            bytes,
        });
    }
}

impl Call {
    fn end(&mut self, now: Instant) {
        self.state = State::Ended;
        self.timers = [None; TIMERS];
        self.timers[Timer::Forget as usize] = Some(now + LINGER);
    }

    fn response(
        &self,
        cfg: &CarrierConfig,
        req: &Request,
        code: u16,
        sdp: Option<&str>,
    ) -> Vec<u8> {
        let contact = format!("sip:carrier@{}", cfg.sip);
        let top_via = match req.vias.first() {
            Some(v) => stamp_via(v, &req.top_via, self.from),
            None => self.top_via.clone(),
        };
        build_response(
            req,
            &top_via,
            code,
            &ResponseParts {
                to_tag: Some(&self.to_tag),
                contact: (101..300).contains(&code).then_some(contact.as_str()),
                sdp,
                ..Default::default()
            },
            "rivr-demo-carrier",
        )
    }

    fn sdp(&self, cfg: &CarrierConfig) -> String {
        let (ip, port) = (cfg.rtp.ip(), cfg.rtp.port());
        let name = if self.pt == 8 { "PCMA" } else { "PCMU" };
        format!(
            "v=0\r\no=carrier 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP {pt}\r\na=rtpmap:{pt} {name}/8000\r\na=sendrecv\r\n",
            pt = self.pt
        )
    }

    fn bye_request(&self, cfg: &CarrierConfig) -> Vec<u8> {
        let inv = &self.invite;
        let target = inv.contact.clone().unwrap_or_else(|| inv.from_uri.clone());
        build_request(
            &InDialogRequest {
                method: "BYE",
                request_uri: &target,
                via_transport: "UDP",
                via_sent_by: &cfg.sip.to_string(),
                branch: &format!("z9hG4bK{}bye", self.to_tag),
                route: &[],
                from: &format!("{};tag={}", inv.to, self.to_tag),
                to: &inv.from,
                call_id: &inv.call_id,
                cseq: 1,
                contact: &format!("sip:carrier@{}", cfg.sip),
                extra_headers: &[],
            },
            "rivr-demo-carrier",
        )
    }

    /// One 20 ms RTP packet of G.711 silence.
    fn next_frame(&mut self) -> Vec<u8> {
        let silence = if self.pt == 8 { 0xD5 } else { 0xFF };
        let mut p = Vec::with_capacity(12 + 160);
        p.extend_from_slice(&[0x80, self.pt]);
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        p.resize(12 + 160, silence);
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(160);
        p
    }
}

/// The offer's audio address and the G.711 payload type to answer with
/// (PCMU preferred); `None` when there is no usable offer. A missing or
/// unspecified connection address means the INVITE's source.
fn parse_offer(body: &[u8], from: SocketAddr) -> Option<(SocketAddr, u8)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut ip = None;
    let mut audio = None;
    for line in text.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            // A media-level c= after m= wins over the session's.
            ip = c.trim().parse::<std::net::IpAddr>().ok().or(ip);
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            let mut words = m.split_whitespace();
            let port: u16 = words.next()?.parse().ok()?;
            let fmts: Vec<&str> = words.skip(1).collect();
            let pt = ["0", "8"].into_iter().find(|p| fmts.contains(p))?;
            audio = Some((port, pt.parse::<u8>().ok()?));
        }
    }
    let (port, pt) = audio?;
    let ip = ip.filter(|i| !i.is_unspecified()).unwrap_or(from.ip());
    (port != 0).then_some((SocketAddr::new(ip, port), pt))
}

#[cfg(test)]
#[path = "carrier_tests.rs"]
mod tests;
