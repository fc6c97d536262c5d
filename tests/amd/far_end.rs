//! The called lines of a campaign, owned by the test: a bare SIP UAS on a
//! loopback UDP socket (the trunk rivr dials) that answers every INVITE
//! with 200 and an SDP pointing at an RTP socket of its own for that call
//! ([`RtpPeer`]: a phone's 20 ms sender and a recorder of what rivr
//! sends), plays the dialed number's clip once ACKed (a voicemail greeting
//! and its beep, or a person's "hello?"), and answers rivr's BYE. Every
//! INVITE is logged by number and Call-ID, so the test can count attempts.
//! SIPp's `rtp_stream` plays but keeps nothing of what it receives, and a
//! SIPp UAS's calls cannot each point at a socket of the test's.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::caller::EVENT_PT;
use crate::common::rtp::RtpPeer;

/// One answered call.
pub struct Answered {
    /// The dialed number, digits only.
    pub number: String,
    pub call_id: String,
    /// The call's media: what it sent, what rivr sent.
    pub peer: RtpPeer,
    /// When the clip's first frame left the socket (after the ACK).
    pub clip_started: Option<Instant>,
    /// When rivr's BYE came.
    pub bye: Option<Instant>,
}

/// The lines: a SIP socket, its thread and the calls it answered.
pub struct FarEnd {
    pub port: u16,
    calls: Arc<Mutex<Vec<Answered>>>,
    invites: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FarEnd {
    /// Answers calls to the numbers of `clips` (digits, no `+`) with their
    /// clip (8 kHz); any other number gets 404.
    pub fn start(clips: HashMap<String, Vec<i16>>) -> FarEnd {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the far end's SIP socket");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("read timeout");
        let port = sock.local_addr().expect("SIP address").port();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let invites = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut uas = Uas {
            sock,
            port,
            clips,
            calls: calls.clone(),
            invites: invites.clone(),
            answers: HashMap::new(),
        };
        let halt = stop.clone();
        let thread = std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                uas.step();
            }
        });
        FarEnd {
            port,
            calls,
            invites,
            stop,
            thread: Some(thread),
        }
    }

    /// Runs `f` over the calls answered so far.
    pub fn with_calls<T>(&self, f: impl FnOnce(&mut [Answered]) -> T) -> T {
        let mut calls = self.calls.lock().expect("far end calls");
        f(&mut calls)
    }

    /// The INVITEs received, (number, Call-ID), each Call-ID once.
    pub fn invites(&self) -> Vec<(String, String)> {
        self.invites.lock().expect("far end invites").clone()
    }

    /// Stops the SIP thread and hands back the calls.
    pub fn stop(mut self) -> Vec<Answered> {
        self.halt();
        std::mem::take(&mut *self.calls.lock().expect("far end calls"))
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for FarEnd {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A 200 sent and resent (RFC 3261 §13.3.1.4) until its ACK comes.
struct Pending {
    bytes: Vec<u8>,
    to: SocketAddr,
    next: Instant,
    interval: Duration,
    acked: bool,
}

struct Uas {
    sock: UdpSocket,
    port: u16,
    clips: HashMap<String, Vec<i16>>,
    calls: Arc<Mutex<Vec<Answered>>>,
    invites: Arc<Mutex<Vec<(String, String)>>>,
    answers: HashMap<String, Pending>,
}

/// A received request: its method, Request-URI, headers and body.
struct Request {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Request {
    fn parse(bytes: &[u8]) -> Option<Request> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split_whitespace();
        let (method, uri) = (first.next()?.to_string(), first.next()?.to_string());
        if method == "SIP/2.0" {
            return None; // a response: nothing of ours needs one
        }
        let headers = lines
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((long_name(k.trim()), v.trim().to_string()))
            })
            .collect();
        Some(Request {
            method,
            uri,
            headers,
            body: body.to_string(),
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The Request-URI's user part, digits only.
    fn number(&self) -> String {
        let user = self.uri.trim_start_matches("sip:");
        let user = user.split('@').next().unwrap_or_default();
        user.chars().filter(char::is_ascii_digit).collect()
    }

    /// The SDP's audio address.
    fn media(&self) -> Option<SocketAddr> {
        let ip = self
            .body
            .lines()
            .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?;
        let port = self
            .body
            .lines()
            .find_map(|l| l.trim().strip_prefix("m=audio "))?
            .split_whitespace()
            .next()?;
        format!("{}:{port}", ip.trim()).parse().ok()
    }

    /// A response echoing Via, From, To (with our tag), Call-ID and CSeq.
    fn response(&self, status: &str, extra: &str, body: &str) -> Vec<u8> {
        let mut r = format!("SIP/2.0 {status}\r\n");
        for (k, v) in &self.headers {
            match k.to_ascii_lowercase().as_str() {
                "to" if !v.contains("tag=") => r.push_str(&format!("To: {v};tag=farend\r\n")),
                "via" | "from" | "to" | "call-id" | "cseq" => r.push_str(&format!("{k}: {v}\r\n")),
                _ => {}
            }
        }
        r.push_str(extra);
        r.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        r.into_bytes()
    }
}

/// RFC 3261 §7.3.3's compact header names, spelt out.
fn long_name(k: &str) -> String {
    match k.to_ascii_lowercase().as_str() {
        "v" => "Via",
        "f" => "From",
        "t" => "To",
        "i" => "Call-ID",
        "m" => "Contact",
        "l" => "Content-Length",
        "c" => "Content-Type",
        _ => k,
    }
    .to_string()
}

impl Uas {
    /// One receive (or 20 ms of quiet), then the retransmissions due.
    fn step(&mut self) {
        let mut buf = [0u8; 8192];
        if let Ok((n, from)) = self.sock.recv_from(&mut buf) {
            if let Some(req) = buf.get(..n).and_then(Request::parse) {
                self.handle(&req, from);
            }
        }
        let now = Instant::now();
        for p in self.answers.values_mut() {
            if !p.acked && now >= p.next {
                let _ = self.sock.send_to(&p.bytes, p.to);
                p.interval = (p.interval * 2).min(Duration::from_secs(4));
                p.next = now + p.interval;
            }
        }
    }

    fn handle(&mut self, req: &Request, from: SocketAddr) {
        let call_id = req.header("Call-ID").unwrap_or_default().to_string();
        match req.method.as_str() {
            "INVITE" => self.invite(req, &call_id, from),
            "ACK" => self.ack(&call_id),
            "BYE" => {
                let _ = self.sock.send_to(&req.response("200 OK", "", ""), from);
                let mut calls = self.calls.lock().expect("far end calls");
                if let Some(c) = calls.iter_mut().find(|c| c.call_id == call_id) {
                    c.bye.get_or_insert_with(Instant::now);
                }
            }
            _ => {
                let _ = self.sock.send_to(&req.response("200 OK", "", ""), from);
            }
        }
    }

    fn invite(&mut self, req: &Request, call_id: &str, from: SocketAddr) {
        if let Some(p) = self.answers.get(call_id) {
            // A retransmission: the same answer again.
            let _ = self.sock.send_to(&p.bytes, from);
            return;
        }
        let number = req.number();
        self.invites
            .lock()
            .expect("far end invites")
            .push((number.clone(), call_id.to_string()));
        let (Some(_), Some(media)) = (self.clips.get(&number), req.media()) else {
            let _ = self
                .sock
                .send_to(&req.response("404 Not Found", "", ""), from);
            return;
        };
        let _ = self.sock.send_to(&req.response("100 Trying", "", ""), from);
        let mut peer = RtpPeer::bind();
        peer.start_sending(media, 0, EVENT_PT);
        let sdp = format!(
            "v=0\r\no=farend 1 1 IN IP4 127.0.0.1\r\ns=farend\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {} RTP/AVP 0 {EVENT_PT}\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:{EVENT_PT} telephone-event/8000\r\na=fmtp:{EVENT_PT} 0-16\r\n\
             a=ptime:20\r\na=sendrecv\r\n",
            peer.port
        );
        let extra = format!(
            "Contact: <sip:farend@127.0.0.1:{}>\r\nContent-Type: application/sdp\r\n",
            self.port
        );
        let bytes = req.response("200 OK", &extra, &sdp);
        let _ = self.sock.send_to(&bytes, from);
        let interval = Duration::from_millis(500);
        self.answers.insert(
            call_id.to_string(),
            Pending {
                bytes,
                to: from,
                next: Instant::now() + interval,
                interval,
                acked: false,
            },
        );
        self.calls.lock().expect("far end calls").push(Answered {
            number,
            call_id: call_id.to_string(),
            peer,
            clip_started: None,
            bye: None,
        });
    }

    /// The first ACK of a call starts its clip.
    fn ack(&mut self, call_id: &str) {
        let Some(p) = self.answers.get_mut(call_id) else {
            return;
        };
        if std::mem::replace(&mut p.acked, true) {
            return;
        }
        let mut calls = self.calls.lock().expect("far end calls");
        if let Some(c) = calls.iter_mut().find(|c| c.call_id == call_id) {
            if let Some(clip) = self.clips.get(&c.number) {
                c.clip_started = Some(c.peer.play_pcm(clip.clone()));
            }
        }
    }
}
