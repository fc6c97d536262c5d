//! Two legs on one media worker, joined, with real sockets: each leg has
//! a phone owned by the test (a loopback RTP socket that sends a recorded
//! prompt 20 ms at a time and records everything the worker sends it).
//! What each phone hears is decoded (G.711 tables, libopus) and measured
//! against what the other phone sent: normalised cross-correlation over
//! 250 ms segments of speech. Keys: an RFC 4733 press on one leg arrives
//! on the other as RFC 4733 (parsed here by hand from the RFC) or as
//! tones (found by rivr's detector). Uses only the library's public API:
//! `MediaPool`, `MediaCallSetup`, `MediaCommand`, `MediaEvent`.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Receiver;
use rivr::codec::Codec;
use rivr::media::dtmf_detect::DtmfDetector;
use rivr::media::events::{DigitSource, MediaEvent, MediaId};
use rivr::media::ports::PortAllocator;
use rivr::media::rtp_session::RtpSessionConfig;
use rivr::media::worker::{MediaCallSetup, MediaCommand, MediaHandle, MediaPool};

use common::audio::FRAME;
use common::phone::{pt, segment_ncc, speech, Ncc, Phone, Script, EVENT_PT, OPUS_PT};
use common::rtp::{event_code, Packet};

fn lo() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// One leg on the pool: its handle, events and phone.
struct Leg {
    id: MediaId,
    media: MediaHandle,
    events: Receiver<MediaEvent>,
    phone: Phone,
    local: SocketAddr,
}

impl Leg {
    /// A leg in `codec` (with telephone-events at 8 kHz when
    /// `events`), answered and confirmed; on `near`'s worker when given.
    fn add(
        pool: &MediaPool,
        ports: &Arc<PortAllocator>,
        id: u64,
        codec: Codec,
        events: bool,
        near: Option<&Leg>,
    ) -> Leg {
        let phone = Phone::bind();
        let pair = ports.allocate(lo()).expect("an RTP port pair");
        let local = SocketAddr::new(lo(), pair.port);
        let (tx, rx) = crossbeam_channel::unbounded();
        let id = MediaId(id);
        let setup = MediaCallSetup {
            call: id,
            ports: pair,
            session: RtpSessionConfig {
                local_ssrc: 0x0100 + id.0 as u32,
                payload_type: pt(codec),
                clock_rate: codec.clock_rate(),
                telephone_event_pt: events.then_some(EVENT_PT),
                telephone_event_rate: 8000,
                remote_rtp: phone.addr(),
                remote_rtcp: phone.addr(),
                initial_seq: 1,
                initial_timestamp: 1,
                cname: "bridge-test".into(),
                ptime_ms: 20,
            },
            codec,
            configured: true,
            events: Box::new(tx),
            allocator: ports.clone(),
            early_media_unverified: Duration::ZERO,
            inband_dtmf: rivr::media::inband_policy::InbandDtmf::Always,
        };
        let media = match near {
            Some(n) => pool.add_near(setup, &n.media),
            None => pool.add(setup),
        }
        .expect("a media worker");
        media
            .send(MediaCommand::Start {
                call: id,
                early: false,
            })
            .unwrap();
        media
            .send(MediaCommand::PeerConfirmed { call: id })
            .unwrap();
        Leg {
            id,
            media,
            events: rx,
            phone,
            local,
        }
    }

    /// This leg hears `source`.
    fn hear(&self, source: &Leg) {
        self.media
            .send(MediaCommand::Join {
                listener: self.id,
                source: source.id,
            })
            .unwrap();
    }

    fn events(&self) -> Vec<MediaEvent> {
        self.events.try_iter().collect()
    }
}

/// Both phones talk at once (`a_says` and `b_says`), each leg hearing the
/// other; returns the segment NCC each phone measured of the other's
/// speech.
fn bridge_both_ways(
    base_port: u16,
    (ca, a_events): (Codec, bool),
    (cb, b_events): (Codec, bool),
) -> (Ncc, Ncc) {
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(base_port, base_port + 40));
    let mut a = Leg::add(&pool, &ports, 1, ca, a_events, None);
    let mut b = Leg::add(&pool, &ports, 2, cb, b_events, Some(&a));
    assert_eq!(a.media.worker(), b.media.worker());
    a.hear(&b);
    b.hear(&a);
    let (a_says, b_says) = (speech("water_info", 5.5), speech("survey_intro", 3.8));
    let mut sa = Script::new(ca);
    sa.silence(1000).audio(&a_says).silence(1000);
    let mut sb = Script::new(cb);
    sb.silence(1000).audio(&b_says).silence(2700);
    let ticks = sa.packets.len().max(sb.packets.len());
    let (la, lb) = (a.local, b.local);
    a.phone.play(&mut sa, la);
    b.phone.play(&mut sb, lb);
    std::thread::sleep(Duration::from_millis(20 * ticks as u64 + 500));
    println!("{ca:?} leg's phone hears the {cb:?} leg's:");
    let at_a = segment_ncc(&a.phone.heard(ca), &b_says);
    println!("{cb:?} leg's phone hears the {ca:?} leg's:");
    let at_b = segment_ncc(&b.phone.heard(cb), &a_says);
    println!(
        "NCC {ca:?} → {cb:?}: mean {:.3}, lowest {:.3}, {:.3}; {cb:?} → {ca:?}: mean {:.3}, lowest {:.3}, {:.3}",
        at_b.mean, at_b.lowest, at_b.second, at_a.mean, at_a.lowest, at_a.second
    );
    for leg in [&a, &b] {
        assert!(
            leg.events()
                .iter()
                .all(|e| !matches!(e, MediaEvent::Failed | MediaEvent::JoinRefused { .. })),
            "leg {:?} failed or was refused",
            leg.id
        );
    }
    assert_eq!(pool.failures().call_panics.load(Ordering::Relaxed), 0);
    pool.shutdown();
    (at_a, at_b)
}

#[test]
fn a_pcmu_leg_and_a_pcma_leg_hear_each_other() {
    let (at_a, at_b) = bridge_both_ways(45_200, (Codec::Pcmu, true), (Codec::Pcma, true));
    at_a.check("PCMA → PCMU", 0.8);
    at_b.check("PCMU → PCMA", 0.8);
}

#[test]
fn an_opus_leg_and_a_pcma_leg_hear_each_other() {
    let (at_a, at_b) = bridge_both_ways(45_260, (Codec::Opus, false), (Codec::Pcma, true));
    // Opus codes fricatives by their spectrum more than their waveform, so
    // single segments fall lower than with G.711.
    at_a.check("PCMA → Opus", 0.6);
    at_b.check("Opus → PCMA", 0.6);
}

/// Telephone-event packets of `key` in what a phone received.
fn event_packets(packets: &[Packet], key: char) -> Vec<&Packet> {
    packets
        .iter()
        .filter(|p| p.payload_type == EVENT_PT && p.payload.first() == Some(&event_code(key)))
        .collect()
}

/// Keys found in-band in 8 kHz audio by rivr's detector.
fn keys_in(audio: &[f32]) -> String {
    let pcm: Vec<i16> = audio.iter().map(|&x| x as i16).collect();
    let mut det = DtmfDetector::new();
    let mut keys = String::new();
    for f in pcm.chunks(FRAME) {
        if let Some(d) = det.process(f) {
            keys.push(d.digit);
        }
        while let Some(d) = det.poll() {
            keys.push(d.digit);
        }
    }
    keys
}

/// A's phone presses 7 as RFC 4733: B (telephone-events) gets 7 as
/// RFC 4733, C (Opus, none at its clock) hears it as tones; A reports it.
#[test]
fn a_key_is_relayed_as_telephone_events_or_as_tones() {
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(45_320, 45_360));
    let mut a = Leg::add(&pool, &ports, 1, Codec::Pcmu, true, None);
    let b = Leg::add(&pool, &ports, 2, Codec::Pcma, true, Some(&a));
    let c = Leg::add(&pool, &ports, 3, Codec::Opus, true, Some(&a));
    b.hear(&a);
    c.hear(&a);
    let mut s = Script::new(Codec::Pcmu);
    s.silence(600).press('7', 120).silence(800);
    let ticks = s.packets.len();
    let la = a.local;
    a.phone.play(&mut s, la);
    std::thread::sleep(Duration::from_millis(20 * ticks as u64 + 400));

    assert_eq!(
        a.events(),
        [MediaEvent::Digit {
            digit: '7',
            source: DigitSource::Rfc4733
        }]
    );
    let at_b = b.phone.packets();
    let sevens = event_packets(&at_b, '7');
    let starts = sevens.iter().filter(|p| p.marker).count();
    let ends = sevens
        .iter()
        .filter(|p| p.payload.get(1).is_some_and(|f| f & 0x80 != 0))
        .count();
    let stamps: std::collections::HashSet<u32> = sevens.iter().map(|p| p.ts).collect();
    println!(
        "B received 7 as {} telephone-event packets ({starts} marked, {ends} ends, duration {} samples)",
        sevens.len(),
        sevens.iter().filter_map(|p| p.payload.get(2..4)).map(|d| u16::from_be_bytes([d[0], d[1]])).max().unwrap_or(0)
    );
    assert_eq!((starts, ends, stamps.len()), (1, 3, 1), "one press, ended");
    assert_eq!(
        at_b.iter().filter(|p| p.payload_type == EVENT_PT).count(),
        sevens.len()
    );
    assert!(
        keys_in(&b.phone.heard(Codec::Pcma)).is_empty(),
        "B also heard tones"
    );

    let at_c = c.phone.packets();
    assert!(
        at_c.iter().all(|p| p.payload_type == OPUS_PT),
        "C got events at 8 kHz"
    );
    let heard = keys_in(&c.phone.heard(Codec::Opus));
    println!("C heard {heard:?} in-band");
    assert_eq!(heard, "7");
    for leg in [&b, &c] {
        assert!(leg.events().is_empty(), "{:?}: {:?}", leg.id, leg.events());
    }
    pool.shutdown();
}

#[test]
fn a_join_across_workers_is_refused() {
    let pool = MediaPool::start(2).unwrap();
    let ports = Arc::new(PortAllocator::new(45_380, 45_420));
    let a = Leg::add(&pool, &ports, 1, Codec::Pcmu, true, None);
    let b = Leg::add(&pool, &ports, 2, Codec::Pcma, true, None);
    assert_ne!(a.media.worker(), b.media.worker());
    a.hear(&b);
    let refused = a.events.recv_timeout(Duration::from_secs(5));
    assert_eq!(
        refused,
        Ok(MediaEvent::JoinRefused {
            listener: a.id,
            source: b.id
        })
    );
    // The other way round, sent to B's worker, B is told.
    b.hear(&a);
    assert_eq!(
        b.events.recv_timeout(Duration::from_secs(5)),
        Ok(MediaEvent::JoinRefused {
            listener: b.id,
            source: a.id
        })
    );
    // Both go on: each phone still gets its leg's (silent) stream.
    a.phone.forget();
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.phone.packets().len() >= 5);
    assert_eq!(pool.failures().call_panics.load(Ordering::Relaxed), 0);
    pool.shutdown();
}

/// While A's phone talks to B, A's leg goes: B's phone hears silence from
/// the next tick on, B's leg goes on sending, nobody fails.
#[test]
fn removing_a_leg_stops_the_other_hearing_it() {
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(45_440, 45_480));
    let free = ports.available();
    let mut a = Leg::add(&pool, &ports, 1, Codec::Pcmu, true, None);
    let b = Leg::add(&pool, &ports, 2, Codec::Opus, false, Some(&a));
    a.hear(&b);
    b.hear(&a);
    let talk = speech("water_info", 5.0);
    let mut s = Script::new(Codec::Pcmu);
    s.silence(200).audio(&talk);
    let la = a.local;
    a.phone.play(&mut s, la);
    std::thread::sleep(Duration::from_millis(2500));
    let loud =
        |x: &[f32]| x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    let before = loud(&b.phone.heard(Codec::Opus));
    a.media.send(MediaCommand::Remove { call: a.id }).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    b.phone.forget();
    std::thread::sleep(Duration::from_millis(1500));
    let after_packets = b.phone.packets();
    let after = loud(&b.phone.heard(Codec::Opus));
    println!(
        "B's phone: mean square {before:.0} while A talked, {after:.1} over {} packets after A left",
        after_packets.len()
    );
    assert!(before > 100.0 * 100.0, "B did not hear A ({before:.0})");
    assert!(
        after < 10.0 * 10.0,
        "B still hears A after A left ({after:.1})"
    );
    assert!(
        after_packets.len() >= 50,
        "B's stream stopped ({} packets)",
        after_packets.len()
    );
    assert!(b.events().is_empty(), "{:?}", b.events());
    assert_eq!(pool.failures().call_panics.load(Ordering::Relaxed), 0);
    assert_eq!(pool.failures().calls_ended.load(Ordering::Relaxed), 0);
    assert_eq!(ports.available(), free - 1, "A's ports are back");
    // Unjoined, B is plain again; B's own removal leaves nothing behind.
    b.media
        .send(MediaCommand::Unjoin { listener: b.id })
        .unwrap();
    b.media.send(MediaCommand::Remove { call: b.id }).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ports.available(), free);
    pool.shutdown();
}
