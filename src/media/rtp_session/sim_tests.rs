//! A deterministic simulation of a whole call's media: rivr's session and a
//! phone's session (another `RtpSession`, behind a NAT) exchange audio,
//! RTCP and DTMF for a minute of virtual time through a seeded network that
//! delays, jitters, reorders, duplicates and loses packets (Gilbert–Elliott),
//! while an attacker sprays rivr's RTP port. No sleeps: the clock is stepped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::tests::addr;
use super::*;
use crate::media::rfc4733;

/// xorshift64*, seeded: the whole run is reproducible.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// One direction of the network.
struct Link {
    delay: Duration,
    jitter_ms: f64,
    dup: f64,
    /// Gilbert–Elliott: in the bad state, loss is heavy.
    bad: bool,
}

impl Link {
    fn send(&mut self, rng: &mut Rng, now: Instant) -> Vec<Instant> {
        self.bad = if self.bad {
            !rng.chance(0.3)
        } else {
            rng.chance(0.02)
        };
        let loss = if self.bad { 0.5 } else { 0.005 };
        if rng.chance(loss) {
            return vec![];
        }
        let copies = if rng.chance(self.dup) { 2 } else { 1 };
        (0..copies)
            .map(|_| {
                now + self.delay + Duration::from_secs_f64(rng.unit() * self.jitter_ms / 1000.0)
            })
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Port {
    RivrRtp,
    RivrRtcp,
    PhoneRtp,
    PhoneRtcp,
}

struct Net {
    /// (deliver at, ordinal) → (from, port, bytes). The ordinal keeps
    /// same-instant deliveries in send order.
    queue: BTreeMap<(Instant, u64), (SocketAddr, Port, Vec<u8>)>,
    ordinal: u64,
}

impl Net {
    fn push(&mut self, at: Instant, from: SocketAddr, port: Port, bytes: &[u8]) {
        self.ordinal += 1;
        self.queue
            .insert((at, self.ordinal), (from, port, bytes.to_vec()));
    }
    /// The next datagram due by `now`, with its own arrival instant.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, SocketAddr, Port, Vec<u8>)> {
        let (&key, _) = self.queue.iter().next()?;
        if key.0 > now {
            return None;
        }
        let (from, port, bytes) = self.queue.remove(&key)?;
        Some((key.0, from, port, bytes))
    }
}

#[test]
fn a_minute_of_call_through_a_bad_network_with_an_attacker() {
    for seed in [
        0x5EED_1234_ABCD_0001,
        1,
        2,
        3,
        0xDEAD_BEEF,
        42,
        7777,
        u64::MAX,
    ] {
        println!("seed {seed:#x}");
        call(seed);
    }
}

fn call(seed: u64) {
    let t0 = Instant::now();
    let mut rng = Rng(seed);

    // The phone's SDP says 10.0.0.5 (private); its NAT maps it to 203.0.113.7.
    let phone_public_rtp = addr("203.0.113.7:31000");
    let phone_public_rtcp = addr("203.0.113.7:31001");
    let rivr_rtp = addr("198.51.100.1:20000");
    let rivr_rtcp = addr("198.51.100.1:20001");
    let attacker = addr("198.51.100.200:40000");

    let mut rivr = RtpSession::new(
        RtpSessionConfig {
            local_ssrc: 0x1111,
            payload_type: 0,
            clock_rate: 8000,
            telephone_event_pt: Some(101),
            telephone_event_rate: 8000,
            remote_rtp: addr("10.0.0.5:30000"),
            remote_rtcp: addr("10.0.0.5:30001"),
            initial_seq: 60_000, // wraps during the minute
            initial_timestamp: u32::MAX - 100_000,
            cname: "rivr".into(),
            ptime_ms: 20,
        },
        t0,
    );
    let mut phone = RtpSession::new(
        RtpSessionConfig {
            local_ssrc: 0x2222,
            payload_type: 0,
            clock_rate: 8000,
            telephone_event_pt: Some(101),
            telephone_event_rate: 8000,
            remote_rtp: rivr_rtp,
            remote_rtcp: rivr_rtcp,
            initial_seq: 65_000,
            initial_timestamp: 7,
            cname: "phone".into(),
            ptime_ms: 20,
        },
        t0,
    );
    let mut up = Link {
        delay: Duration::from_millis(40),
        jitter_ms: 30.0,
        dup: 0.01,
        bad: false,
    };
    let mut down = Link {
        delay: Duration::from_millis(40),
        jitter_ms: 30.0,
        dup: 0.01,
        bad: false,
    };
    let mut net = Net {
        queue: BTreeMap::new(),
        ordinal: 0,
    };
    let mut dtmf_rx = rfc4733::Receiver::new();
    let digits: Vec<char> = "123#*0".chars().collect();
    let mut next_digit = 0;
    let mut sending: Option<rfc4733::Sender> = None;
    let mut heard_digits = Vec::new();
    let mut digit_started: Vec<Instant> = Vec::new();
    let mut event_arrivals: Vec<(u32, Instant)> = Vec::new();
    let mut max_latency = Duration::ZERO;
    let mut phone_sent_audio: u64 = 0;
    let mut rivr_audio_from_phone: u64 = 0;
    let mut phone_heard_rivr: u64 = 0;
    let (mut up_rtp_lost, mut up_rtp_dups) = (0i64, 0i64);
    let mut buf = [0u8; 1500];

    for tick in 0..3000u64 {
        let now = t0 + Duration::from_millis(tick * 20);

        // Deliver everything due, each at its own arrival instant (a socket
        // read timestamp), before this tick's sending.
        while let Some((at, from, port, bytes)) = net.pop_due(now) {
            match port {
                Port::RivrRtp => match rivr.handle_rtp(at, from, &bytes) {
                    Inbound::Audio { payload, .. } => {
                        assert_eq!(payload, &[0x55; 160], "audio injected from {from}");
                        rivr_audio_from_phone += 1;
                    }
                    Inbound::TelephoneEvent {
                        seq,
                        timestamp,
                        ssrc,
                        marker,
                        payload,
                    } => {
                        assert_eq!(from, phone_public_rtp);
                        let first_arrival = !event_arrivals.iter().any(|&(ts, _)| ts == timestamp);
                        if first_arrival {
                            event_arrivals.push((timestamp, at));
                        }
                        if let Some(ev) = dtmf_rx.handle(at, ssrc, seq, timestamp, marker, payload)
                        {
                            // Reported on the first packet of the press that
                            // got through: as early as the network allows.
                            assert!(first_arrival, "{ev:?} reported late");
                            let started = digit_started[heard_digits.len()];
                            max_latency = max_latency.max(at - started);
                            heard_digits.push(ev.digit);
                        }
                    }
                    Inbound::OtherPayload { .. } | Inbound::Dropped(_) => {}
                },
                Port::RivrRtcp => rivr.handle_rtcp(at, from, &bytes),
                Port::PhoneRtp => {
                    if let Inbound::Audio { .. } = phone.handle_rtp(at, from, &bytes) {
                        phone_heard_rivr += 1;
                    }
                }
                Port::PhoneRtcp => phone.handle_rtcp(at, from, &bytes),
            }
        }

        // The attacker sprays rivr's RTP port with plausible packets.
        if tick % 3 == 0 {
            let h = header::RtpHeader {
                marker: false,
                payload_type: 0,
                seq: tick as u16,
                timestamp: 0,
                ssrc: 0x2222,
            };
            let n = header::write(&mut buf, &h, &[0xEE; 160]).unwrap();
            net.push(now, attacker, Port::RivrRtp, &buf[..n]);
        }

        // rivr → phone (the NAT forwards to the phone only what is sent to
        // its public mapping).
        let n = rivr.write_audio(now, &[0xAA; 160], 160, &mut buf).unwrap();
        assert_ne!(rivr.remote_rtp(), attacker);
        if rivr.remote_rtp() == phone_public_rtp {
            for at in down.send(&mut rng, now) {
                net.push(at, rivr_rtp, Port::PhoneRtp, &buf[..n]);
            }
        }
        if let Some(n) = rivr.poll_rtcp(now, &mut buf) {
            if rivr.remote_rtcp().ip() == phone_public_rtp.ip() {
                for at in down.send(&mut rng, now) {
                    net.push(at, rivr_rtcp, Port::PhoneRtcp, &buf[..n]);
                }
            }
        }

        // phone → rivr: a digit every 8 s, audio otherwise.
        if sending.is_none() && tick % 400 == 200 && next_digit < digits.len() {
            let d = digits[next_digit];
            next_digit += 1;
            sending = Some(rfc4733::Sender::new(d, 120, 10, phone.next_timestamp(), 8000).unwrap());
            digit_started.push(now);
        }
        let mut payload = [0u8; 4];
        let n = match sending
            .as_mut()
            .and_then(|s| s.next_payload(&mut payload).map(|p| (p, s.timestamp())))
        {
            Some(((len, marker), ts)) => {
                phone.write_event(now, &payload[..len], ts, marker, &mut buf)
            }
            None => {
                sending = None;
                phone_sent_audio += 1;
                phone.write_audio(now, &[0x55; 160], 160, &mut buf)
            }
        }
        .unwrap();
        let arrivals = up.send(&mut rng, now);
        match arrivals.len() {
            0 => up_rtp_lost += 1,
            2 => up_rtp_dups += 1,
            _ => {}
        }
        for at in arrivals {
            net.push(at, phone_public_rtp, Port::RivrRtp, &buf[..n]);
        }
        if let Some(n) = phone.poll_rtcp(now, &mut buf) {
            for at in up.send(&mut rng, now) {
                net.push(at, phone_public_rtcp, Port::RivrRtcp, &buf[..n]);
            }
        }
    }

    let r = rivr.stats();
    let p = phone.stats();
    println!(
        "rivr: lost {} jitter {:.1} ms rtt {:?} rtcp sent {}; phone: lost {} rtt {:?}",
        r.packets_lost,
        r.jitter_ms(8000),
        r.rtt,
        r.rtcp_sent,
        p.packets_lost,
        p.rtt
    );
    assert_eq!(rivr.remote_rtp(), phone_public_rtp);
    assert_eq!(rivr.remote_rtcp(), phone_public_rtcp);
    assert_eq!(heard_digits, digits, "every digit exactly once, in order");
    println!("slowest digit report: {max_latency:?} after the key went down");
    assert!(rivr_audio_from_phone > phone_sent_audio * 85 / 100);
    assert!(phone_heard_rivr > 2500, "{phone_heard_rivr}");
    // Loss as rivr counted it vs. what the network did, and what the phone
    // was told about it in rivr's reports.
    // RFC 3550 A.3 counts duplicates as received, so they offset losses; a
    // few packets lost while still learning the NAT or in flight at the end
    // are outside the counted range.
    let network = up_rtp_lost - up_rtp_dups;
    println!(
        "network lost {up_rtp_lost}, duplicated {up_rtp_dups}; rivr counted {}",
        r.packets_lost
    );
    assert!(up_rtp_lost > 30, "the network should have been bad");
    assert!(
        (r.packets_lost - network).abs() <= 4,
        "{} vs {network}",
        r.packets_lost
    );
    let told = p.remote_report.expect("phone got reports on its stream");
    assert!(i64::from(told.cumulative_lost) <= r.packets_lost);
    // Uniform 0–30 ms delay: E|X−Y| = 10 ms; the A.8 estimate is near it.
    let j = r.jitter_ms(8000);
    assert!((6.0..14.0).contains(&j), "jitter {j} ms");
    // RTT: 2 × 40 ms plus 0–60 ms of jitter.
    for rtt in [r.rtt.unwrap(), p.rtt.unwrap()] {
        assert!(
            (Duration::from_millis(80)..Duration::from_millis(145)).contains(&rtt),
            "{rtt:?}"
        );
    }
    assert!((8..=24).contains(&r.rtcp_sent), "{}", r.rtcp_sent);
    assert!(r.dropped.unverified_source + r.dropped.wrong_source >= 1000);
}
