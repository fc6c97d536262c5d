//! A bare SIP user agent on a UDP socket of the test's choosing (any
//! 127.0.0.x address), for tests that need what SIPp cannot give: many
//! INVITEs from one source in a tight loop, a second source address, or
//! every response counted per request.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A response as received.
#[derive(Clone, Debug)]
pub struct Response {
    pub text: String,
    pub at: Instant,
}

impl Response {
    pub fn status(&self) -> u16 {
        self.text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.text.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    pub fn call_id(&self) -> String {
        self.header("Call-ID").unwrap_or_default().to_owned()
    }

    /// Header names in order, for comparing the shape of two answers.
    pub fn header_names(&self) -> Vec<String> {
        self.text
            .split("\r\n")
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_owned()))
            .collect()
    }
}

pub struct RawUa {
    pub sock: UdpSocket,
    pub local: SocketAddr,
    pub server: SocketAddr,
}

impl RawUa {
    /// A UDP socket on `ip` (e.g. "127.0.0.2"), any port, talking to `server`.
    pub fn bind(ip: &str, server: SocketAddr) -> RawUa {
        let sock = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}: {e}"));
        let local = sock.local_addr().expect("local address");
        RawUa {
            sock,
            local,
            server,
        }
    }

    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).expect("send to rivr");
    }

    /// An INVITE for `number` with an SDP offer of PCMU on `rtp_port`.
    pub fn invite(&self, number: &str, call_id: &str, branch: &str, rtp_port: u16) -> Vec<u8> {
        let ip = self.local.ip();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        );
        format!(
            "INVITE sip:{number}@{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:tester@{ip}>;tag=t{branch}\r\n\
             To: <sip:{number}@{server}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: <sip:tester@{local}>\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len(),
            server = self.server,
            local = self.local,
        )
        .into_bytes()
    }

    /// An OPTIONS outside any dialog.
    pub fn options(&self, call_id: &str, branch: &str) -> Vec<u8> {
        format!(
            "OPTIONS sip:{server} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:tester@{ip}>;tag=o{branch}\r\n\
             To: <sip:{server}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n",
            server = self.server,
            local = self.local,
            ip = self.local.ip(),
        )
        .into_bytes()
    }

    /// The ACK (for a non-2xx: same branch) or the BYE/ACK of a dialog
    /// (for a 2xx: new branch, to the Contact) answering `resp` to the
    /// INVITE sent with `branch`.
    pub fn in_dialog(&self, method: &str, resp: &Response, branch: &str, cseq: u32) -> Vec<u8> {
        let target = resp
            .header("Contact")
            .and_then(|c| Some(c.split('<').nth(1)?.split('>').next()?.to_owned()))
            .unwrap_or_else(|| format!("sip:{}", self.server));
        format!(
            "{method} {target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: {from}\r\n\
             To: {to}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             Content-Length: 0\r\n\r\n",
            local = self.local,
            from = resp.header("From").unwrap_or_default(),
            to = resp.header("To").unwrap_or_default(),
            call_id = resp.call_id(),
        )
        .into_bytes()
    }

    /// Every datagram received within `window`.
    pub fn collect(&self, window: Duration) -> Vec<Response> {
        let deadline = Instant::now() + window;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                out.push(Response {
                    text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                    at: Instant::now(),
                });
            }
        }
    }

    /// Waits for a response with `status` (others are skipped), up to `timeout`.
    pub fn wait_status(&self, status: u16, timeout: Duration) -> Option<Response> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("read timeout");
            if let Ok((n, _)) = self.sock.recv_from(&mut buf) {
                let r = Response {
                    text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                    at: Instant::now(),
                };
                if r.status() == status {
                    return Some(r);
                }
            }
        }
    }
}

/// Places a call from `ua` to `number` and checks it is answered (200 OK
/// with SDP, offering PCMU to a port on the UA's address), then ACKs and
/// hangs up. Returns how long the 200 took.
pub fn answered_call(ua: &RawUa, number: &str, tag: &str, timeout: Duration) -> Duration {
    let sink = UdpSocket::bind((ua.local.ip(), 0))
        .unwrap_or_else(|e| panic!("bind an RTP sink on {}: {e}", ua.local.ip()));
    let port = sink.local_addr().expect("sink address").port();
    let sent = Instant::now();
    ua.send(&ua.invite(number, &format!("{tag}@test"), tag, port));
    let ok = ua
        .wait_status(200, timeout)
        .unwrap_or_else(|| panic!("call {tag} from {} was not answered", ua.local));
    assert!(
        ok.text.contains("\r\n\r\nv=0"),
        "200 without SDP: {}",
        ok.text
    );
    let took = ok.at.saturating_duration_since(sent);
    ua.send(&ua.in_dialog("ACK", &ok, &format!("{tag}ack"), 1));
    ua.send(&ua.in_dialog("BYE", &ok, &format!("{tag}bye"), 2));
    ua.wait_status(200, timeout)
        .unwrap_or_else(|| panic!("BYE of call {tag} not answered"));
    took
}
