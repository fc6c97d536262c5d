//! A raw SIP peer on one UDP socket, for tests that send what no SIP
//! stack would (control bytes, mutated headers): INVITEs with an SDP offer,
//! the ACK/BYE of a dialog built from rivr's 2xx, the ACK of a non-2xx, and
//! a response reader that works on raw bytes (rivr's 400s copy the bytes
//! the request held, control characters included).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::server::Rivr;

/// A raw SIP peer on one UDP socket.
pub struct Peer {
    pub sock: UdpSocket,
    pub rivr: SocketAddr,
    pub rtp: UdpSocket,
}

impl Peer {
    pub fn new(rivr: &Rivr) -> Peer {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the SIP socket");
        let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind an RTP sink");
        Peer {
            sock,
            rivr: SocketAddr::from(([127, 0, 0, 1], rivr.sip_port)),
            rtp,
        }
    }

    pub fn port(&self) -> u16 {
        self.sock.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.rivr).expect("send to rivr");
    }

    /// The next datagram, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .ok()?;
        let mut buf = vec![0u8; 65_535];
        let (n, _) = self.sock.recv_from(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }

    /// Waits for a response whose Call-ID is `call_id` and whose status is
    /// final (≥ 200), answering nothing else.
    pub fn final_response(&self, call_id: &[u8], timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(msg) = self.recv(left) else { break };
            if header(&msg, "Call-ID").as_deref() == Some(call_id)
                && status(&msg).is_some_and(|s| s >= 200)
            {
                return Some(msg);
            }
        }
        None
    }

    /// An INVITE to 1000 with an SDP offer pointing at the RTP sink.
    pub fn invite(&self, call_id: &str, branch: &str, cseq: u32, sdp: &str) -> String {
        let (port, rivr) = (self.port(), self.rivr);
        format!(
            "INVITE sip:1000@{rivr} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
             From: tester <sip:tester@127.0.0.1:{port}>;tag=t-{cseq}\r\n\
             To: 1000 <sip:1000@{rivr}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} INVITE\r\n\
             Contact: <sip:tester@127.0.0.1:{port}>\r\n\
             Max-Forwards: 70\r\n\
             Subject: hardening\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        )
    }

    pub fn offer(&self) -> String {
        let port = self.rtp.local_addr().map(|a| a.port()).unwrap_or(9);
        format!(
            "v=0\r\no=tester 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
             t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
    }

    /// An in-dialog request (ACK or BYE) built from rivr's 2xx.
    pub fn in_dialog(&self, method: &str, ok: &[u8], cseq: u32, branch: &str) -> Vec<u8> {
        let port = self.port();
        let mut out = format!(
            "{method} sip:rivr@{} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport\r\n\
             Max-Forwards: 70\r\n",
            self.rivr
        )
        .into_bytes();
        for name in ["From", "To", "Call-ID"] {
            out.extend_from_slice(format!("{name}: ").as_bytes());
            out.extend_from_slice(&header(ok, name).unwrap_or_default());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(
            format!("CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        );
        out
    }

    /// The ACK to a non-2xx final response (same branch as the INVITE,
    /// RFC 3261 §17.1.1.3).
    pub fn ack_non_2xx(&self, invite: &[u8], resp: &[u8]) -> Vec<u8> {
        let mut out = format!("ACK sip:1000@{} SIP/2.0\r\n", self.rivr).into_bytes();
        for name in ["Via", "From", "Call-ID"] {
            out.extend_from_slice(format!("{name}: ").as_bytes());
            out.extend_from_slice(&header(invite, name).unwrap_or_default());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"To: ");
        out.extend_from_slice(&header(resp, "To").unwrap_or_default());
        let cseq = cseq_number(resp).unwrap_or(0);
        out.extend_from_slice(
            format!("\r\nCSeq: {cseq} ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        out
    }
}

/// The status code of a response.
pub fn status(msg: &[u8]) -> Option<u16> {
    let line = msg.split(|&b| b == b'\r').next()?;
    let rest = line.strip_prefix(b"SIP/2.0 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

pub fn first_line(msg: &[u8]) -> String {
    let line = msg.split(|&b| b == b'\r').next().unwrap_or_default();
    String::from_utf8_lossy(line).into_owned()
}

/// The raw value of the first `name:` header line (rivr writes long names),
/// trimmed like rivr's error response trims the values it copies.
pub fn header(msg: &[u8], name: &str) -> Option<Vec<u8>> {
    let head_end = msg
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(msg.len());
    let head = msg.get(..head_end)?;
    let prefix = format!("\r\n{name}:");
    let at = head
        .windows(prefix.len())
        .position(|w| w == prefix.as_bytes())?;
    let start = at + prefix.len();
    let rest = head.get(start..)?;
    let end = rest
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(rest.len());
    Some(rest.get(..end)?.trim_ascii().to_vec())
}

pub fn cseq_number(msg: &[u8]) -> Option<u32> {
    let v = header(msg, "CSeq")?;
    let digits: Vec<u8> = v.iter().copied().take_while(u8::is_ascii_digit).collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// ACKs rivr's 2xx and hangs up with BYE; true when the BYE got its 200.
pub fn ack_and_bye(peer: &Peer, ok: &[u8], tag: &str) -> bool {
    let cseq = cseq_number(ok).unwrap_or(1);
    peer.send(&peer.in_dialog("ACK", ok, cseq, &format!("z9hG4bK-ack-{tag}")));
    peer.send(&peer.in_dialog("BYE", ok, cseq + 1, &format!("z9hG4bK-bye-{tag}")));
    let call_id = header(ok, "Call-ID").unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Some(msg) = peer.recv(Duration::from_millis(500)) else {
            continue;
        };
        if header(&msg, "Call-ID").as_deref() == Some(&call_id[..])
            && header(&msg, "CSeq").is_some_and(|c| c.ends_with(b"BYE"))
            && status(&msg) == Some(200)
        {
            return true;
        }
    }
    false
}

/// OPTIONS gets 200: the signalling path works end to end.
pub fn options_ok(peer: &Peer, tag: &str) -> bool {
    let port = peer.port();
    let call_id = format!("options-{tag}");
    let msg = format!(
        "OPTIONS sip:1000@{} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-opt-{tag};rport\r\n\
         From: <sip:tester@127.0.0.1>;tag=o\r\nTo: <sip:1000@{}>\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        peer.rivr, peer.rivr
    );
    peer.send(msg.as_bytes());
    peer.final_response(call_id.as_bytes(), Duration::from_secs(20))
        .and_then(|r| status(&r))
        == Some(200)
}
