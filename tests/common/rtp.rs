//! The caller's media, owned by the test: an even RTP port (its port + 1
//! takes RTCP) whose receive thread records every packet rivr sends with its
//! arrival instant, and a 20 ms paced sender of silence into which RFC 4733
//! telephone-events (built here by hand from the RFC, not with rivr's code)
//! are spliced.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One RTP packet as received.
#[derive(Clone, Debug)]
pub struct Packet {
    pub arrival: Instant,
    pub from: SocketAddr,
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

/// Parses an RTP packet (RFC 3550 §5.1), skipping CSRCs and extension.
pub fn parse_rtp(buf: &[u8], arrival: Instant, from: SocketAddr) -> Option<Packet> {
    let b0 = *buf.first()?;
    if b0 >> 6 != 2 {
        return None;
    }
    let b1 = *buf.get(1)?;
    let csrc = usize::from(b0 & 0x0f);
    let mut header = 12 + 4 * csrc;
    if b0 & 0x10 != 0 {
        let ext = buf.get(header..header + 4)?;
        header += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = buf.len();
    if b0 & 0x20 != 0 {
        end = end.checked_sub(usize::from(*buf.last()?))?;
    }
    Some(Packet {
        arrival,
        from,
        marker: b1 & 0x80 != 0,
        payload_type: b1 & 0x7f,
        seq: u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]),
        ts: u32::from_be_bytes(buf.get(4..8)?.try_into().ok()?),
        ssrc: u32::from_be_bytes(buf.get(8..12)?.try_into().ok()?),
        payload: buf.get(header..end)?.to_vec(),
    })
}

/// The RFC 4733 event code of a DTMF key (§3.2).
pub fn event_code(key: char) -> u8 {
    match key {
        '0'..='9' => key as u8 - b'0',
        '*' => 10,
        '#' => 11,
        'A'..='D' => key as u8 - b'A' + 12,
        _ => panic!("not a DTMF key: {key:?}"),
    }
}

/// A caller RTP endpoint.
pub struct RtpPeer {
    rtp: UdpSocket,
    pub port: u16,
    received: Arc<Mutex<Vec<Packet>>>,
    rtcp_count: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    sender: Option<mpsc::Sender<SendCommand>>,
}

enum SendCommand {
    Key {
        key: char,
        duration_ms: u32,
        started: mpsc::Sender<Instant>,
    },
}

impl RtpPeer {
    /// Binds an even port on 127.0.0.1 and the odd one above it.
    pub fn bind() -> RtpPeer {
        for _ in 0..200 {
            let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind RTP");
            let port = rtp.local_addr().expect("RTP address").port();
            if port % 2 != 0 {
                continue;
            }
            let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) else {
                continue;
            };
            return RtpPeer::from_sockets(rtp, rtcp, port);
        }
        panic!("no free even RTP port pair");
    }

    fn from_sockets(rtp: UdpSocket, rtcp: UdpSocket, port: u16) -> RtpPeer {
        let poll = Some(Duration::from_millis(50));
        rtp.set_read_timeout(poll).expect("read timeout");
        rtcp.set_read_timeout(poll).expect("read timeout");
        let received = Arc::new(Mutex::new(Vec::with_capacity(4096)));
        let rtcp_count = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let rx = {
            let (sock, received, stop) = (
                rtp.try_clone().expect("clone RTP socket"),
                received.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        let now = Instant::now();
                        if let Some(p) = buf.get(..n).and_then(|b| parse_rtp(b, now, from)) {
                            if let Ok(mut r) = received.lock() {
                                r.push(p);
                            }
                        }
                    }
                }
            })
        };
        let rtcp_rx = {
            let (count, stop) = (rtcp_count.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if rtcp.recv_from(&mut buf).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        };
        RtpPeer {
            rtp,
            port,
            received,
            rtcp_count,
            stop,
            threads: vec![rx, rtcp_rx],
            sender: None,
        }
    }

    /// Everything received so far, in arrival order.
    pub fn packets(&self) -> Vec<Packet> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many packets have arrived.
    pub fn count(&self) -> usize {
        self.received.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// RTCP packets received on port + 1.
    pub fn rtcp_count(&self) -> usize {
        self.rtcp_count.load(Ordering::Relaxed)
    }

    /// Waits until `n` packets have arrived.
    pub fn wait_count(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Starts sending 20 ms frames of silence (payload type `pt`, 0 or 8)
    /// to `dest`, as a phone would.
    pub fn start_sending(&mut self, dest: SocketAddr, pt: u8, event_pt: u8) {
        let sock = self.rtp.try_clone().expect("clone RTP socket");
        let stop = self.stop.clone();
        let (tx, rx) = mpsc::channel();
        self.sender = Some(tx);
        let silence = if pt == 8 { 0xd5 } else { 0xff };
        self.threads.push(std::thread::spawn(move || {
            let mut out = Outbound {
                sock,
                dest,
                seq: 0x1234,
                ssrc: 0x5eed_cafe,
                buf: Vec::with_capacity(200),
            };
            let start = Instant::now();
            let mut frame: u32 = 0;
            let mut pending_key: Option<(u8, u32, mpsc::Sender<Instant>)> = None;
            let mut key_state: Option<(u32, u32, u32, u32)> = None; // (code, ts, dur, total)
            let mut end_sent = 0;
            while !stop.load(Ordering::Relaxed) {
                let due = start + Duration::from_millis(20 * u64::from(frame));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let ts = frame.wrapping_mul(160);
                if pending_key.is_none() && key_state.is_none() {
                    if let Ok(SendCommand::Key {
                        key,
                        duration_ms,
                        started,
                    }) = rx.try_recv()
                    {
                        pending_key = Some((event_code(key), duration_ms, started));
                    }
                }
                if let Some((code, duration_ms, started)) = pending_key.take() {
                    // First packet of the event: marker set, duration one frame.
                    out.event(event_pt, true, ts, code, false, 160);
                    let _ = started.send(Instant::now());
                    key_state = Some((u32::from(code), ts, 160, duration_ms * 8));
                    end_sent = 0;
                } else if let Some((code, ev_ts, dur, total)) = key_state {
                    if dur < total {
                        let dur = (dur + 160).min(total);
                        out.event(event_pt, false, ev_ts, code as u8, false, dur);
                        key_state = Some((code, ev_ts, dur, total));
                    } else {
                        // The end packet goes three times (RFC 4733 §2.5.1.4).
                        out.event(event_pt, false, ev_ts, code as u8, true, dur);
                        end_sent += 1;
                        if end_sent == 3 {
                            key_state = None;
                        }
                    }
                } else {
                    out.audio(pt, ts, silence);
                }
                frame += 1;
            }
        }));
    }

    /// Presses `key` for `duration_ms` as RFC 4733 events; returns when the
    /// first event packet left the socket.
    pub fn press(&self, key: char, duration_ms: u32) -> Instant {
        let (tx, rx) = mpsc::channel();
        self.sender
            .as_ref()
            .expect("start_sending first")
            .send(SendCommand::Key {
                key,
                duration_ms,
                started: tx,
            })
            .expect("sender thread alive");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("event packet sent")
    }

    /// Stops the threads and closes the sockets.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.sender = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for RtpPeer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Outbound {
    sock: UdpSocket,
    dest: SocketAddr,
    seq: u16,
    ssrc: u32,
    buf: Vec<u8>,
}

impl Outbound {
    fn header(&mut self, marker: bool, pt: u8, ts: u32) {
        self.buf.clear();
        self.buf.push(0x80);
        self.buf.push(if marker { 0x80 | pt } else { pt });
        self.buf.extend_from_slice(&self.seq.to_be_bytes());
        self.buf.extend_from_slice(&ts.to_be_bytes());
        self.buf.extend_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
    }

    fn audio(&mut self, pt: u8, ts: u32, silence: u8) {
        self.header(false, pt, ts);
        self.buf.resize(12 + 160, silence);
        let _ = self.sock.send_to(&self.buf, self.dest);
    }

    /// RFC 4733 §2.3: event, E bit, volume (10 = -10 dBm0), duration.
    fn event(&mut self, pt: u8, marker: bool, ts: u32, code: u8, end: bool, duration: u32) {
        self.header(marker, pt, ts);
        self.buf.push(code);
        self.buf.push(if end { 0x80 | 10 } else { 10 });
        let duration = u16::try_from(duration).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&duration.to_be_bytes());
        let _ = self.sock.send_to(&self.buf, self.dest);
    }
}

#[test]
fn rtp_parser_reads_the_rfc3550_header() {
    let mut pkt = vec![0x80, 0x80 | 8, 0x01, 0x02, 0, 0, 0x03, 0x20, 1, 2, 3, 4];
    pkt.extend_from_slice(&[0xd5; 160]);
    let from: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let p = parse_rtp(&pkt, Instant::now(), from).expect("valid");
    assert!(p.marker);
    assert_eq!(
        (p.payload_type, p.seq, p.ts, p.ssrc),
        (8, 0x0102, 800, 0x0102_0304)
    );
    assert_eq!(p.payload.len(), 160);
    assert!(parse_rtp(&pkt[..11], Instant::now(), from).is_none());
    assert!(parse_rtp(&[0x40; 20], Instant::now(), from).is_none());
}
