//! The worker as the server runs it — real threads, real loopback sockets:
//! supervision (a panic ends one call, or restarts the worker) and the
//! reflection guard's wiring. The guard's own rules are tested on a
//! virtual clock in `media::send_gate`.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::*;
use crate::codec::Codec;
use crate::media::core::silence_frame;
use crate::media::opus::{OpusDecoder, OpusSampleRate};
use crate::media::ports::PortAllocator;
use crate::media::rtp_session::RtpSessionConfig;

const WAIT: Duration = Duration::from_secs(5);

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

/// The far end of one call: a socket that receives what the worker sends.
struct Peer {
    sock: UdpSocket,
}

impl Peer {
    fn new() -> Peer {
        let sock = UdpSocket::bind((loopback(), 0)).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        Peer { sock }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Whether a datagram arrives within `within`.
    fn hears(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            if self.sock.recv_from(&mut buf).is_ok() {
                return true;
            }
        }
        false
    }

    /// Drops whatever has arrived so far.
    fn drain(&self) {
        let mut buf = [0u8; 2048];
        while self.sock.recv_from(&mut buf).is_ok() {}
    }
}

struct TestCall {
    call: MediaId,
    /// The call's RTP port on rivr's side.
    port: u16,
    peer: Peer,
    events: Receiver<MediaEvent>,
    media: MediaHandle,
}

impl TestCall {
    /// A call added to `pool`, answered; confirmed unless `confirm` is false.
    fn add(pool: &MediaPool, ports: &Arc<PortAllocator>, call: MediaId, confirm: bool) -> Self {
        Self::add_at(pool, ports, call, confirm, 20)
    }

    /// As [`TestCall::add`], sending `ptime_ms` packets.
    fn add_at(
        pool: &MediaPool,
        ports: &Arc<PortAllocator>,
        call: MediaId,
        confirm: bool,
        ptime_ms: u32,
    ) -> Self {
        let peer = Peer::new();
        let (tx, events) = crossbeam_channel::unbounded();
        let remote = peer.addr();
        let pair = ports.allocate(loopback()).unwrap();
        let port = pair.port;
        let setup = MediaCallSetup {
            call,
            ports: pair,
            session: RtpSessionConfig {
                local_ssrc: 1,
                payload_type: 0,
                clock_rate: 8000,
                telephone_event_pt: Some(101),
                telephone_event_rate: 8000,
                remote_rtp: remote,
                remote_rtcp: remote,
                initial_seq: 1,
                initial_timestamp: 1,
                cname: "test".into(),
                ptime_ms,
            },
            codec: Codec::Pcmu,
            configured: true,
            events: Box::new(tx),
            allocator: ports.clone(),
            early_media_unverified: Duration::ZERO,
            inband_dtmf: crate::media::inband_policy::InbandDtmf::Always,
        };
        let media = pool.add(setup).unwrap();
        media
            .send(MediaCommand::Start { call, early: false })
            .unwrap();
        if confirm {
            media.send(MediaCommand::PeerConfirmed { call }).unwrap();
        }
        TestCall {
            call,
            port,
            peer,
            events,
            media,
        }
    }

    /// Whether the call was ended as failed: its owner was told.
    fn ended(&self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(MediaEvent::Failed) = self.events.recv_timeout(Duration::from_millis(10)) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }

    fn inject(&self, at: InjectedPanic) {
        self.media
            .send(MediaCommand::Panic {
                call: self.call,
                at,
            })
            .unwrap();
    }
}

fn wait_for(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_panic_serving_one_call_ends_that_call_only() {
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(43100, 43119));
    let free = ports.available();
    let a = TestCall::add(&pool, &ports, MediaId(1), true);
    let b = TestCall::add(&pool, &ports, MediaId(2), true);
    assert!(a.peer.hears(WAIT) && b.peer.hears(WAIT));
    assert_eq!(ports.available(), free - 2);

    a.inject(InjectedPanic::Tick);
    assert!(a.ended(), "call 1 not ended after its tick panicked");
    wait_for("call 1's ports", || ports.available() == free - 1);
    let f = pool.failures();
    assert_eq!(f.call_panics.load(Ordering::Relaxed), 1);
    assert_eq!(f.calls_ended.load(Ordering::Relaxed), 1);
    assert_eq!(f.worker_restarts.load(Ordering::Relaxed), 0);
    // The other call goes on, and so does the worker.
    b.peer.drain();
    assert!(b.peer.hears(WAIT), "call 2 lost its media");
    assert!(b.events.try_iter().all(|e| e != MediaEvent::Failed));
    a.peer.drain();
    assert!(
        !a.peer.hears(Duration::from_millis(200)),
        "call 1 still sent"
    );

    b.inject(InjectedPanic::Command);
    assert!(
        b.ended(),
        "call 2 not ended after a command about it panicked"
    );
    wait_for("every port back", || ports.available() == free);
    assert_eq!(f.call_panics.load(Ordering::Relaxed), 2);
    assert_eq!(f.calls_ended.load(Ordering::Relaxed), 2);

    let c = TestCall::add(&pool, &ports, MediaId(3), true);
    assert!(c.peer.hears(WAIT), "the worker no longer serves new calls");
    pool.shutdown();
}

#[test]
fn a_panic_in_the_worker_loop_ends_its_calls_and_it_starts_again() {
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(43140, 43159));
    let free = ports.available();
    let a = TestCall::add(&pool, &ports, MediaId(1), true);
    let b = TestCall::add(&pool, &ports, MediaId(2), true);
    assert!(a.peer.hears(WAIT) && b.peer.hears(WAIT));

    a.inject(InjectedPanic::Loop);
    assert!(a.ended() && b.ended(), "the worker's calls were not ended");
    wait_for("every port back", || ports.available() == free);
    let f = pool.failures();
    assert_eq!(f.worker_restarts.load(Ordering::Relaxed), 1);
    assert_eq!(f.calls_ended.load(Ordering::Relaxed), 2);
    assert_eq!(f.call_panics.load(Ordering::Relaxed), 0);

    // The same worker (the pool has one) takes and serves a new call.
    let c = TestCall::add(&pool, &ports, MediaId(3), true);
    assert!(c.peer.hears(WAIT), "the restarted worker does not serve");
    assert_eq!(ports.available(), free - 1);
    pool.shutdown();
    // Shutdown joined the thread: it ended, it did not hang.
}

#[test]
fn nothing_is_sent_before_the_peer_is_confirmed_or_heard() {
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(43180, 43199));
    // Answered, not confirmed, never heard: not a packet, RTCP included.
    let a = TestCall::add(&pool, &ports, MediaId(1), false);
    assert!(!a.peer.hears(Duration::from_millis(400)));
    a.media
        .send(MediaCommand::PeerConfirmed { call: a.call })
        .unwrap();
    assert!(a.peer.hears(WAIT), "no media after the peer was confirmed");

    // Heard: RTP from the SDP address opens it without signalling.
    let b = TestCall::add(&pool, &ports, MediaId(2), false);
    assert!(!b.peer.hears(Duration::from_millis(200)));
    let local: SocketAddr = (loopback(), b.port).into();
    let mut rtp = vec![0x80, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 7];
    rtp.extend([0xFF; 160]);
    b.peer.sock.send_to(&rtp, local).unwrap();
    assert!(b.peer.hears(WAIT), "no media after the peer was heard");
    pool.shutdown();
}

#[test]
fn opus_silence_is_one_small_packet() {
    let s = silence_frame(Codec::Opus);
    assert!(!s.is_empty() && s.len() < 20, "{} bytes", s.len());
    let mut d = OpusDecoder::new(OpusSampleRate::Hz8000).unwrap();
    let mut pcm = [1i16; 160];
    assert_eq!(d.decode(s, &mut pcm).unwrap(), 160);
    assert!(pcm.iter().all(|&x| x.abs() < 8));
}

/// A leg sending 30 ms packets: 240-byte PCMU packets whose timestamps step
/// by 240; keys sent meanwhile as RFC 4733 events start at the true media
/// time (audio waiting for a packet goes first, shorter), every event
/// packet of a key carries its start timestamp, and audio after the key
/// resumes at its end, still contiguous in sequence numbers.
#[test]
fn thirty_ms_packets_and_telephone_events_keep_true_timestamps() {
    use crate::media::rtp_session::header;
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(43220, 43239));
    let a = TestCall::add_at(&pool, &ports, MediaId(1), true, 30);
    std::thread::sleep(Duration::from_millis(150));
    a.media
        .send(MediaCommand::SendDigits {
            call: a.call,
            id: 1,
            keys: "5".into(),
        })
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_millis(900);
    while Instant::now() < deadline {
        if let Ok(n) = a.peer.sock.recv(&mut buf) {
            if let Ok((h, body)) = header::parse(&buf[..n]) {
                got.push((h.seq, h.timestamp, h.payload_type, body.len(), h.marker));
            }
        }
    }
    let audio: Vec<_> = got.iter().filter(|p| p.2 == 0).collect();
    let events: Vec<_> = got.iter().filter(|p| p.2 == 101).collect();
    assert!(audio.len() >= 15 && !events.is_empty(), "{got:?}");
    let first_event = got.iter().position(|p| p.2 == 101).unwrap();
    // every audio packet is 30 ms, but the one flushed just before the key
    for (k, p) in got.iter().enumerate().filter(|(_, p)| p.2 == 0) {
        let flushed = k + 1 == first_event;
        assert!(
            p.3 == 240 || (flushed && p.3 < 240 && p.3 % 80 == 0),
            "{k}: {got:?}"
        );
    }
    for w in got.windows(2) {
        assert_eq!(w[1].0, w[0].0.wrapping_add(1), "sequence: {got:?}");
        if w[0].2 == 0 && w[1].2 == 0 {
            assert_eq!(w[1].1.wrapping_sub(w[0].1), w[0].3 as u32, "{got:?}");
        }
    }
    // the key starts where the audio before it ends
    let before = got[first_event - 1];
    let start = before.1.wrapping_add(before.3 as u32);
    assert!(events.iter().all(|e| e.1 == start), "{got:?}");
    assert!(got[first_event].4, "the first event packet has the marker");
    // audio after the key resumes past the event's 100 ms duration
    let after = got[first_event..].iter().find(|p| p.2 == 0).unwrap();
    assert!(after.1.wrapping_sub(start) >= 800, "{got:?}");
    drop(a);
    pool.shutdown();
}

/// A leg's heard audio recorded on a real worker: the tone its peer sends
/// is in the file; the maximum ends it with `RecordDone`; `StopRecord`
/// ends only the recording it names; removing the leg closes the file as
/// a hangup.
#[test]
fn a_recording_holds_what_the_leg_heard_and_ends_as_told() {
    use crate::media::record::{self, EndRules, EndedBy};
    let dir = std::env::temp_dir().join(format!("rivr-worker-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let pool = MediaPool::start(1).unwrap();
    let ports = Arc::new(PortAllocator::new(43300, 43319));
    let c = TestCall::add(&pool, &ports, MediaId(1), true);
    let rules = |max_ms| EndRules {
        max: Duration::from_millis(max_ms),
        silence: None,
        finish_on: vec!['#'],
    };
    let record = |id: u64, name: &str, max_ms| {
        let (sink, handle) = record::start(&dir, name).unwrap();
        c.media
            .send(MediaCommand::Record {
                call: c.call,
                id,
                rules: rules(max_ms),
                sink: Box::new(sink),
            })
            .unwrap();
        handle
    };
    let done = |id: u64| loop {
        match c.events.recv_timeout(WAIT) {
            Ok(MediaEvent::RecordDone { id: i, ended_by }) if i == id => return ended_by,
            Ok(_) => {}
            Err(e) => panic!("no RecordDone for {id}: {e}"),
        }
    };

    // The peer sends a 500 Hz tone for 1.2 s, 20 ms a packet.
    let local: SocketAddr = (loopback(), c.port).into();
    let sender = {
        let sock = c.peer.sock.try_clone().unwrap();
        std::thread::spawn(move || {
            let start = Instant::now();
            for k in 0..60u32 {
                let mut rtp = vec![0x80, 0x00];
                rtp.extend((k as u16 + 1).to_be_bytes());
                rtp.extend((k * 160).to_be_bytes());
                rtp.extend([0, 0, 0, 9]);
                let pcm: Vec<i16> = (0..160)
                    .map(|i| {
                        let t = f64::from(k * 160 + i) / 8000.0;
                        ((t * 500.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
                    })
                    .collect();
                let mut payload = [0u8; 160];
                crate::media::g711::encode(crate::media::g711::Law::Ulaw, &pcm, &mut payload);
                rtp.extend(payload);
                let _ = sock.send_to(&rtp, local);
                let due = start + Duration::from_millis(20 * u64::from(k + 1));
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let h = record(1, "max", 600);
    assert_eq!(done(1), EndedBy::Max);
    let r = h.wait().unwrap();
    assert_eq!((r.duration_ms, r.ended_by), (600, EndedBy::Max));
    let pcm: Vec<i16> = hound::WavReader::open(&r.path)
        .unwrap()
        .samples::<i16>()
        .map(|s| s.unwrap())
        .collect();
    let rms =
        |x: &[i16]| (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    // The tone is there (the first frames may still be the jitter
    // buffer's start).
    assert!(rms(&pcm[1600..]) > 4000.0, "{}", rms(&pcm[1600..]));
    sender.join().unwrap();

    let h = record(2, "stopped", 60_000);
    c.media
        .send(MediaCommand::StopRecord {
            call: c.call,
            id: 3,
            by: EndedBy::Stopped,
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert!(!h.is_finished(), "another id stops nothing");
    c.media
        .send(MediaCommand::StopRecord {
            call: c.call,
            id: 2,
            by: EndedBy::Stopped,
        })
        .unwrap();
    assert_eq!(done(2), EndedBy::Stopped);
    assert_eq!(h.wait().unwrap().ended_by, EndedBy::Stopped);

    let h = record(4, "removed", 60_000);
    std::thread::sleep(Duration::from_millis(100));
    c.media.send(MediaCommand::Remove { call: c.call }).unwrap();
    let r = h.wait().unwrap();
    assert_eq!(r.ended_by, EndedBy::Hangup);
    assert!(r.path.is_file());
    pool.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A held call's media state is one slot of the worker's table: an Opus
/// leg's encoder side and large buffers stay out of it (it was 10.8 kB,
/// 2.5 kB of that room for two of the largest Opus frames).
#[test]
fn a_calls_media_state_stays_small() {
    let size = std::mem::size_of::<call::MediaCall>();
    assert!(size <= 7_500, "MediaCall is {size} bytes");
}
