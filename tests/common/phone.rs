//! A phone owned by a test: a loopback UDP socket that sends a prepared
//! RTP stream (speech from a prompt, silence, RFC 4733 presses) 20 ms at a
//! time and records every packet it receives; and the measure of how well
//! one phone heard another's speech (normalised cross-correlation over
//! 250 ms segments, each aligned on its own).

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rivr::codec::Codec;
use rivr::media::g711;
use rivr::media::opus::{OpusConfig, OpusEncoder};

use super::audio::{align, decode_opus, ncc_at, to_f32, Heard, FRAME};
use super::caller::prompt;
use super::rtp::{event_code, parse_rtp, Packet};

pub const EVENT_PT: u8 = 101;
pub const OPUS_PT: u8 = 111;

fn lo() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The payload type rivr's tests use for `codec`.
pub fn pt(codec: Codec) -> u8 {
    codec.static_payload_type().unwrap_or(OPUS_PT)
}

/// One packet the phone will send, at `at` × 20 ms from its start.
pub struct Scheduled {
    pub at: u32,
    pub bytes: Vec<u8>,
}

/// A phone's outbound stream, built before it starts: audio frames in its
/// codec and RFC 4733 presses in place of some of them.
pub struct Script {
    codec: Codec,
    pub packets: Vec<Scheduled>,
    seq: u16,
    ts: u32,
    opus: Option<OpusEncoder>,
}

impl Script {
    pub fn new(codec: Codec) -> Script {
        Script {
            codec,
            packets: Vec::new(),
            seq: 0x4000,
            ts: 0x1000,
            opus: (codec == Codec::Opus).then(|| {
                // As a desktop softphone codes narrowband voice.
                OpusEncoder::new(OpusConfig {
                    bitrate: Some(20_000),
                    complexity: 10,
                    ..OpusConfig::at_rate(8000).expect("8 kHz Opus")
                })
                .expect("Opus encoder")
            }),
        }
    }

    fn header(&mut self, pt: u8, marker: bool, ts: u32) -> Vec<u8> {
        let mut b = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        b.extend(self.seq.to_be_bytes());
        b.extend(ts.to_be_bytes());
        b.extend(0x5eed_0001u32.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        b
    }

    /// `pcm` (8 kHz) as 20 ms packets, the last one padded with silence.
    pub fn audio(&mut self, pcm: &[i16]) -> &mut Self {
        for chunk in pcm.chunks(FRAME) {
            let mut frame = [0i16; FRAME];
            frame[..chunk.len()].copy_from_slice(chunk);
            let at = self.packets.len() as u32;
            let (ts, pt) = (self.ts, pt(self.codec));
            let mut b = self.header(pt, at == 0, ts);
            match self.codec.g711_law() {
                Some(law) => {
                    let mut payload = [0u8; FRAME];
                    g711::encode(law, &frame, &mut payload);
                    b.extend(payload);
                }
                None => {
                    let mut payload = [0u8; 1500];
                    let enc = self.opus.as_mut().expect("Opus encoder");
                    let n = enc.encode(&frame, &mut payload).expect("Opus encode");
                    b.extend(&payload[..n]);
                }
            }
            self.packets.push(Scheduled { at, bytes: b });
            self.ts = self.ts.wrapping_add(self.codec.timestamp_step_20ms());
        }
        self
    }

    pub fn silence(&mut self, ms: usize) -> &mut Self {
        self.audio(&vec![0; ms * 8])
    }

    /// A `ms` press of `key` as telephone-events (RFC 4733 §2.5: marker on
    /// the first packet, duration growing 20 ms a packet, the end packet
    /// three times), in place of the audio of those ticks.
    pub fn press(&mut self, key: char, ms: u32) -> &mut Self {
        let start = self.ts;
        let step = self.codec.timestamp_step_20ms();
        let packets = ms / 20;
        for i in 1..=packets + 2 {
            let at = self.packets.len() as u32;
            let dur = (i.min(packets) * step) as u16;
            let end = i >= packets;
            let mut b = self.header(EVENT_PT, i == 1, start);
            b.extend([event_code(key), if end { 0x80 | 10 } else { 10 }]);
            b.extend(dur.to_be_bytes());
            self.packets.push(Scheduled { at, bytes: b });
            self.ts = self.ts.wrapping_add(step);
        }
        self
    }
}

/// The test's end of one leg.
pub struct Phone {
    sock: UdpSocket,
    received: Arc<Mutex<Vec<Packet>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Phone {
    pub fn bind() -> Phone {
        let sock = UdpSocket::bind((lo(), 0)).expect("bind phone");
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let received = Arc::new(Mutex::new(Vec::with_capacity(4096)));
        let stop = Arc::new(AtomicBool::new(false));
        let rx = {
            let (sock, received, stop) =
                (sock.try_clone().unwrap(), received.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = sock.recv_from(&mut buf) {
                        let p = parse_rtp(&buf[..n], Instant::now(), from);
                        if let (Some(p), Ok(mut r)) = (p, received.lock()) {
                            r.push(p);
                        }
                    }
                }
            })
        };
        Phone {
            sock,
            received,
            stop,
            threads: vec![rx],
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Starts sending `script` to `dest`, one packet per 20 ms slot.
    pub fn play(&mut self, script: &mut Script, dest: SocketAddr) {
        let packets = std::mem::take(&mut script.packets);
        let (sock, stop) = (self.sock.try_clone().unwrap(), self.stop.clone());
        self.threads.push(std::thread::spawn(move || {
            let start = Instant::now();
            for p in packets {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let due = start + Duration::from_millis(20 * u64::from(p.at));
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                let _ = sock.send_to(&p.bytes, dest);
            }
        }));
    }

    pub fn packets(&self) -> Vec<Packet> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// What it heard from its leg, decoded to 8 kHz.
    pub fn heard(&self, codec: Codec) -> Vec<f32> {
        let packets = self.packets();
        match codec.g711_law() {
            Some(_) => Heard::decode(&packets, pt(codec)).samples,
            None => to_f32(&decode_opus(&packets, OPUS_PT).0),
        }
    }

    pub fn forget(&self) {
        if let Ok(mut r) = self.received.lock() {
            r.clear();
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// 8 kHz speech from a prompt in `prompts/`, at most `seconds` long.
pub fn speech(name: &str, seconds: f32) -> Vec<i16> {
    let p = prompt(name);
    let n = ((seconds * 8000.0) as usize).min(p.pcm_8k().len());
    p.pcm_8k()[..n].to_vec()
}

/// How well `heard` carries `reference`: found in it as a whole
/// ([`align`]), then each 250 ms segment with speech aligned on its own
/// within ±100 ms of that (the listener's jitter buffer moves what
/// follows when it gives delay back in a pause, or takes more when the
/// phone's packets come late on a loaded machine). Returns the segments'
/// mean NCC, the lowest and the second lowest: the one segment a change
/// of delay falls in may be low; a dropout would bring several near zero.
pub fn segment_ncc(heard: &[f32], reference: &[i16]) -> Ncc {
    const SEG: usize = 2000;
    const SLACK: usize = 800;
    let r = to_f32(reference);
    let (lag, whole) = align(heard, &r);
    let mut nccs = Vec::new();
    for (k, seg) in r.chunks_exact(SEG).enumerate() {
        let energy = seg.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / SEG as f64;
        if energy < 300.0 * 300.0 {
            continue;
        }
        let at = lag + k * SEG;
        let best_at = |part: &[f32], at: usize| {
            (at.saturating_sub(SLACK)..=at + SLACK)
                .map(|l| ncc_at(heard, part, l))
                .fold(f64::MIN, f64::max)
        };
        let whole = best_at(seg, at);
        // A change of the listener's delay inside the segment shifts its
        // second half against its first: no audio is lost, so each half
        // is aligned on its own too (weighted by its energy) and the
        // segment gets the better of the two readings.
        let (h1, h2) = seg.split_at(SEG / 2);
        let e = |x: &[f32]| x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        let (e1, e2) = (e(h1), e(h2));
        let split = (best_at(h1, at) * e1 + best_at(h2, at + SEG / 2) * e2) / (e1 + e2).max(1.0);
        nccs.push(whole.max(split));
    }
    assert!(
        nccs.len() >= 6,
        "too little speech measured ({})",
        nccs.len()
    );
    nccs.sort_by(f64::total_cmp);
    let mean = nccs.iter().sum::<f64>() / nccs.len() as f64;
    println!(
        "  whole-stream NCC {whole:.3} at {} ms; {} segments",
        lag / 8,
        nccs.len()
    );
    Ncc {
        mean,
        lowest: nccs[0],
        second: nccs[1],
    }
}

/// Segment NCCs of one direction of a bridge.
#[derive(Debug, Clone, Copy)]
pub struct Ncc {
    pub mean: f64,
    pub lowest: f64,
    pub second: f64,
}

impl Ncc {
    /// The mean at least 0.9, no segment lost, and at most one below
    /// `floor`.
    pub fn check(&self, what: &str, floor: f64) {
        assert!(self.mean >= 0.9, "{what}: mean NCC {:.3} < 0.9", self.mean);
        assert!(
            self.lowest >= 0.3,
            "{what}: a segment lost ({:.3})",
            self.lowest
        );
        assert!(
            self.second >= floor,
            "{what}: two segments below {floor} ({self:?})"
        );
    }
}
