//! The caller's media, owned by the test: an even RTP port (its port + 1
//! takes RTCP) whose receive thread records every packet rivr sends with its
//! arrival instant, and a 20 ms paced sender of silence into which RFC 4733
//! telephone-events (built here by hand from the RFC, not with rivr's code)
//! or in-band DTMF tones (rivr's tone generator and G.711 encoder, in the
//! negotiated law) are spliced. The sent stream can go through a seeded
//! impairment — Bernoulli loss and a uniform random hold per packet, so
//! packets reorder as they do on a jittery path — whose figures the test
//! reads back ([`ImpairStats`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rivr::media::g711::{self, Law};
use rivr::media::netem::SplitMix64;
use rivr::media::tone::ToneGenerator;

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
    rtcp_bytes: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    sender: Option<mpsc::Sender<SendCommand>>,
    impair_stats: Arc<Mutex<ImpairStats>>,
}

enum SendCommand {
    Key {
        key: char,
        duration_ms: u32,
        started: mpsc::Sender<Instant>,
    },
    Tone {
        generator: ToneGenerator,
        started: mpsc::Sender<Instant>,
    },
    /// 8 kHz samples to send as audio, 160 a frame (a recorded greeting).
    Pcm {
        samples: Vec<i16>,
        started: mpsc::Sender<Instant>,
    },
}

/// What the network does to the caller→rivr stream: each packet is lost
/// with probability `loss`, else held for a uniform random time in
/// `[0, max_delay]` before it leaves the socket (so a packet held longer
/// than the next one's hold plus 20 ms is overtaken). Every choice follows
/// `seed`.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    pub loss: f64,
    pub max_delay: Duration,
    pub seed: u64,
}

/// What the impairment actually did, for the test to print and check.
#[derive(Clone, Debug, Default)]
pub struct ImpairStats {
    /// Packets the sender produced.
    pub sent: u64,
    /// Packets dropped.
    pub lost: u64,
    /// Packets that left the socket.
    pub delivered: u64,
    /// Deliveries whose sequence number is lower than one already delivered.
    pub reordered: u64,
    /// Largest hold applied, ms.
    pub max_hold_ms: f64,
    /// Mean hold, ms.
    pub mean_hold_ms: f64,
    /// RFC 3550 §6.4.1 interarrival jitter of the delivered stream, as
    /// rivr should estimate it (ms; send times stand in for timestamps,
    /// which advance with them).
    pub rfc3550_jitter_ms: f64,
    /// Telephone-event packets dropped, of those sent.
    pub events_lost: u64,
    pub events_sent: u64,
    /// Audio packets carrying some in-band tone dropped, of those sent.
    pub tone_frames_lost: u64,
    pub tone_frames_sent: u64,
}

impl ImpairStats {
    /// The loss applied, in percent of packets sent.
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        100.0 * self.lost as f64 / self.sent as f64
    }
}

impl std::fmt::Display for ImpairStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} packets sent, {} lost ({:.2} %; tone frames {}/{}, telephone-events {}/{}), \
             {} reordered; hold mean {:.1} ms, max {:.1} ms; RFC 3550 jitter {:.1} ms",
            self.sent,
            self.lost,
            self.loss_pct(),
            self.tone_frames_lost,
            self.tone_frames_sent,
            self.events_lost,
            self.events_sent,
            self.reordered,
            self.mean_hold_ms,
            self.max_hold_ms,
            self.rfc3550_jitter_ms
        )
    }
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
        let rtcp_bytes = Arc::new(AtomicUsize::new(0));
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
            let (count, bytes, stop) = (rtcp_count.clone(), rtcp_bytes.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = rtcp.recv_from(&mut buf) {
                        count.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(n, Ordering::Relaxed);
                    }
                }
            })
        };
        RtpPeer {
            rtp,
            port,
            received,
            rtcp_count,
            rtcp_bytes,
            stop,
            threads: vec![rx, rtcp_rx],
            sender: None,
            impair_stats: Arc::new(Mutex::new(ImpairStats::default())),
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

    /// Bytes (UDP payload) of the RTCP packets received on port + 1.
    pub fn rtcp_bytes(&self) -> usize {
        self.rtcp_bytes.load(Ordering::Relaxed)
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
        self.start_sending_impaired(dest, pt, event_pt, None);
    }

    /// As [`RtpPeer::start_sending`], with every packet (audio and
    /// telephone-event) going through `impairment` when there is one.
    pub fn start_sending_impaired(
        &mut self,
        dest: SocketAddr,
        pt: u8,
        event_pt: u8,
        impairment: Option<Impairment>,
    ) {
        let sock = self.rtp.try_clone().expect("clone RTP socket");
        let stop = self.stop.clone();
        let (tx, rx) = mpsc::channel();
        self.sender = Some(tx);
        let law = if pt == 8 { Law::Alaw } else { Law::Ulaw };
        let stats = self.impair_stats.clone();
        self.threads.push(std::thread::spawn(move || {
            let mut out = Outbound {
                sock,
                dest,
                seq: 0x1234,
                ssrc: 0x5eed_cafe,
                buf: Vec::with_capacity(200),
                net: impairment.map(Network::new),
                stats,
            };
            let start = Instant::now();
            let mut frame: u32 = 0;
            let mut pending_key: Option<(u8, u32, mpsc::Sender<Instant>)> = None;
            let mut key_state: Option<(u32, u32, u32, u32)> = None; // (code, ts, dur, total)
            let mut end_sent = 0;
            let mut tone: Option<ToneGenerator> = None;
            let mut clip: Option<(Vec<i16>, usize)> = None;
            let mut pcm = [0i16; 160];
            let mut payload = [0u8; 160];
            while !stop.load(Ordering::Relaxed) {
                let due = start + Duration::from_millis(20 * u64::from(frame));
                out.release_until(due);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let ts = frame.wrapping_mul(160);
                if pending_key.is_none() && key_state.is_none() && tone.is_none() && clip.is_none()
                {
                    match rx.try_recv() {
                        Ok(SendCommand::Key {
                            key,
                            duration_ms,
                            started,
                        }) => pending_key = Some((event_code(key), duration_ms, started)),
                        Ok(SendCommand::Tone { generator, started }) => {
                            let _ = started.send(Instant::now());
                            tone = Some(generator);
                        }
                        Ok(SendCommand::Pcm { samples, started }) => {
                            let _ = started.send(Instant::now());
                            clip = Some((samples, 0));
                        }
                        Err(_) => {}
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
                } else if let Some(generator) = tone.as_mut() {
                    let n = generator.fill(&mut pcm);
                    pcm[n..].fill(0);
                    g711::encode(law, &pcm, &mut payload);
                    // A frame whose samples are all zero is the pause after
                    // the tone, not part of it.
                    let kind = if n > 0 && pcm.iter().any(|&x| x != 0) {
                        Kind::Tone
                    } else {
                        Kind::Silence
                    };
                    out.audio(pt, ts, &payload, kind);
                    if generator.is_finished() {
                        tone = None;
                    }
                } else if let Some((samples, at)) = clip.as_mut() {
                    let part = samples.get(*at..).unwrap_or_default();
                    let n = part.len().min(160);
                    pcm[..n].copy_from_slice(&part[..n]);
                    pcm[n..].fill(0);
                    g711::encode(law, &pcm, &mut payload);
                    out.audio(pt, ts, &payload, Kind::Silence);
                    *at += 160;
                    if *at >= samples.len() {
                        clip = None;
                    }
                } else {
                    out.audio(pt, ts, &[law.silence_byte(); 160], Kind::Silence);
                }
                out.release_until(Instant::now());
                frame += 1;
            }
        }));
    }

    /// Sends `samples` (8 kHz) as the audio, then silence again; returns
    /// when their first frame left the socket.
    pub fn play_pcm(&self, samples: Vec<i16>) -> Instant {
        let (tx, rx) = mpsc::channel();
        self.command(SendCommand::Pcm {
            samples,
            started: tx,
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the sender thread took the clip")
    }

    /// Presses `key` for `duration_ms` as RFC 4733 events; returns when the
    /// first event packet left the socket.
    pub fn press(&self, key: char, duration_ms: u32) -> Instant {
        let (tx, rx) = mpsc::channel();
        self.command(SendCommand::Key {
            key,
            duration_ms,
            started: tx,
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("event packet sent")
    }

    /// Presses `key` in-band: `on_ms` of its two tones, each at
    /// `level_dbm0`, then `off_ms` of silence, in the audio stream, encoded
    /// in the law of the payload type given to `start_sending`. Returns when
    /// the first tone frame was built (the previous press, of either kind,
    /// has ended by then).
    pub fn press_inband(&self, key: char, on_ms: u32, off_ms: u32, level_dbm0: f32) -> Instant {
        let generator = ToneGenerator::dtmf(key, on_ms, off_ms, level_dbm0)
            .unwrap_or_else(|| panic!("not a DTMF key: {key:?}"));
        let (tx, rx) = mpsc::channel();
        self.command(SendCommand::Tone {
            generator,
            started: tx,
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("tone frame sent")
    }

    fn command(&self, cmd: SendCommand) {
        self.sender
            .as_ref()
            .expect("start_sending first")
            .send(cmd)
            .expect("sender thread alive");
    }

    /// What the impairment did so far (all zero without one).
    pub fn impair_stats(&self) -> ImpairStats {
        self.impair_stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
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

/// What a sent packet carries, for the impairment's figures.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Silence,
    Tone,
    Event,
}

struct Outbound {
    sock: UdpSocket,
    dest: SocketAddr,
    seq: u16,
    ssrc: u32,
    buf: Vec<u8>,
    net: Option<Network>,
    stats: Arc<Mutex<ImpairStats>>,
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

    fn audio(&mut self, pt: u8, ts: u32, payload: &[u8], kind: Kind) {
        self.header(false, pt, ts);
        self.buf.extend_from_slice(payload);
        self.transmit(kind);
    }

    /// RFC 4733 §2.3: event, E bit, volume (10 = -10 dBm0), duration.
    fn event(&mut self, pt: u8, marker: bool, ts: u32, code: u8, end: bool, duration: u32) {
        self.header(marker, pt, ts);
        self.buf.push(code);
        self.buf.push(if end { 0x80 | 10 } else { 10 });
        let duration = u16::try_from(duration).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&duration.to_be_bytes());
        self.transmit(Kind::Event);
    }

    /// Sends the packet in `buf` now, or hands it to the impairment.
    fn transmit(&mut self, kind: Kind) {
        let Some(net) = self.net.as_mut() else {
            let _ = self.sock.send_to(&self.buf, self.dest);
            return;
        };
        let now = Instant::now();
        let seq = self.seq.wrapping_sub(1);
        let kept = net.offer(now, seq, &self.buf);
        if let Ok(mut s) = self.stats.lock() {
            s.sent += 1;
            s.lost += u64::from(!kept);
            match kind {
                Kind::Event => {
                    s.events_sent += 1;
                    s.events_lost += u64::from(!kept);
                }
                Kind::Tone => {
                    s.tone_frames_sent += 1;
                    s.tone_frames_lost += u64::from(!kept);
                }
                Kind::Silence => {}
            }
        }
    }

    /// Sends every held packet due by `until`, sleeping to each one's due
    /// time.
    fn release_until(&mut self, until: Instant) {
        let Some(net) = self.net.as_mut() else {
            return;
        };
        while let Some(due) = net.next_due().filter(|d| *d <= until) {
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if let Some(held) = net.pop() {
                let _ = self.sock.send_to(&held.bytes, self.dest);
                net.record_delivery(Instant::now(), &held);
                if let Ok(mut s) = self.stats.lock() {
                    net.fill_stats(&mut s);
                }
            }
        }
    }
}

/// One packet held by the impairment.
pub struct Held {
    pub due: Instant,
    pub sent: Instant,
    order: u64,
    pub seq: u16,
    pub bytes: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.order).cmp(&(other.due, other.order))
    }
}

/// The impairment's state: its PRNG, the held packets and its running
/// figures. Sans-IO (time is passed in), so a test can also run it on a
/// virtual clock.
pub struct Network {
    cfg: Impairment,
    rng: SplitMix64,
    held: BinaryHeap<Reverse<Held>>,
    order: u64,
    /// Highest sequence number delivered so far (extended: no wrap in a test).
    highest: Option<u32>,
    seq_base: Option<u16>,
    delivered: u64,
    hold_sum_ms: f64,
    hold_max_ms: f64,
    /// (arrival, send) of the previous delivery, for the RFC 3550 jitter.
    previous: Option<(Instant, Instant)>,
    jitter_s: f64,
    reordered: u64,
}

impl Network {
    pub fn new(cfg: Impairment) -> Network {
        Network {
            cfg,
            rng: SplitMix64::new(cfg.seed),
            held: BinaryHeap::new(),
            order: 0,
            highest: None,
            seq_base: None,
            delivered: 0,
            hold_sum_ms: 0.0,
            hold_max_ms: 0.0,
            previous: None,
            jitter_s: 0.0,
            reordered: 0,
        }
    }

    /// Drops the packet or holds it; true when it will be delivered.
    pub fn offer(&mut self, now: Instant, seq: u16, bytes: &[u8]) -> bool {
        // Both draws are made for every packet, so the holds do not depend
        // on which packets were lost.
        let lost = self.rng.chance(self.cfg.loss);
        let hold = self.cfg.max_delay.mul_f64(self.rng.next_f64());
        if lost {
            return false;
        }
        self.held.push(Reverse(Held {
            due: now + hold,
            sent: now,
            order: self.order,
            seq,
            bytes: bytes.to_vec(),
        }));
        self.order += 1;
        true
    }

    /// When the next held packet is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.peek().map(|Reverse(h)| h.due)
    }

    /// The held packet due first.
    pub fn pop(&mut self) -> Option<Held> {
        self.held.pop().map(|Reverse(h)| h)
    }

    fn record_delivery(&mut self, arrival: Instant, held: &Held) {
        let base = *self.seq_base.get_or_insert(held.seq);
        let ext = u32::from(held.seq.wrapping_sub(base));
        match self.highest {
            Some(h) if ext < h => self.reordered += 1,
            _ => self.highest = Some(ext),
        }
        let hold_ms = arrival.saturating_duration_since(held.sent).as_secs_f64() * 1e3;
        self.delivered += 1;
        self.hold_sum_ms += hold_ms;
        self.hold_max_ms = self.hold_max_ms.max(hold_ms);
        if let Some((prev_arrival, prev_sent)) = self.previous {
            let d = signed_secs(arrival, prev_arrival) - signed_secs(held.sent, prev_sent);
            self.jitter_s += (d.abs() - self.jitter_s) / 16.0;
        }
        self.previous = Some((arrival, held.sent));
    }

    fn fill_stats(&self, s: &mut ImpairStats) {
        s.delivered = self.delivered;
        s.reordered = self.reordered;
        s.max_hold_ms = self.hold_max_ms;
        s.mean_hold_ms = self.hold_sum_ms / self.delivered.max(1) as f64;
        s.rfc3550_jitter_ms = self.jitter_s * 1e3;
    }
}

/// `a - b` in seconds, negative when `a` came first.
fn signed_secs(a: Instant, b: Instant) -> f64 {
    a.saturating_duration_since(b).as_secs_f64() - b.saturating_duration_since(a).as_secs_f64()
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
