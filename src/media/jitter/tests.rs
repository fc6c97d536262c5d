//! Unit tests of the jitter buffer on a simulated clock.

use super::*;

const SSRC: u32 = 0x1234_5678;

/// What one `pop` gave, owned so tests can keep it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Out {
    Frame(u16, u32, Vec<u8>),
    Conceal(u32, Option<Vec<u8>>),
    Silence,
}

struct Sim {
    base: Instant,
    jb: JitterBuffer,
}

impl Sim {
    fn new(cfg: JitterConfig) -> Self {
        Self {
            base: Instant::now(),
            jb: JitterBuffer::new(cfg),
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    fn push(&mut self, ms: u64, seq: u16, ts: u32) -> PushResult {
        self.push_from(ms, seq, ts, SSRC)
    }

    fn push_from(&mut self, ms: u64, seq: u16, ts: u32, ssrc: u32) -> PushResult {
        let now = self.at(ms);
        self.jb.push(now, seq, ts, ssrc, false, &seq.to_be_bytes())
    }

    fn pop(&mut self, ms: u64) -> Out {
        let now = self.at(ms);
        match self.jb.pop(now) {
            Playout::Frame {
                payload,
                timestamp,
                seq,
            } => Out::Frame(seq, timestamp, payload.to_vec()),
            Playout::Conceal { timestamp, next } => {
                Out::Conceal(timestamp, next.map(<[u8]>::to_vec))
            }
            Playout::Silence => Out::Silence,
        }
    }

    fn seq_of(out: &Out) -> Option<u16> {
        match out {
            Out::Frame(seq, _, _) => Some(*seq),
            _ => None,
        }
    }
}

fn cfg() -> JitterConfig {
    JitterConfig {
        min_delay_ms: 40,
        ..JitterConfig::g711_20ms()
    }
}

#[test]
fn waits_for_the_target_then_plays_in_order() {
    let mut sim = Sim::new(cfg());
    for k in 0..10u16 {
        assert_eq!(
            sim.push(u64::from(k) * 20, 100 + k, 1000 + 160 * u32::from(k)),
            PushResult::Accepted
        );
    }
    // Ticks at 5, 25, ...: the first packet arrived at 0, 40 ms target.
    assert_eq!(sim.pop(5), Out::Silence);
    assert_eq!(sim.pop(25), Out::Silence);
    assert_eq!(
        sim.pop(45),
        Out::Frame(100, 1000, 100u16.to_be_bytes().to_vec())
    );
    for k in 1..8u16 {
        assert_eq!(
            sim.pop(45 + 20 * u64::from(k)),
            Out::Frame(
                100 + k,
                1000 + 160 * u32::from(k),
                (100 + k).to_be_bytes().to_vec()
            )
        );
    }
    let s = sim.jb.stats();
    assert_eq!((s.played, s.concealed, s.lost, s.late), (8, 0, 0, 0));
    assert_eq!(s.target_delay, Duration::from_millis(40));
}

#[test]
fn reorders_by_sequence() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 10, 0);
    sim.push(1, 12, 320);
    sim.push(2, 11, 160);
    sim.push(3, 13, 480);
    let played: Vec<u16> = (0..6)
        .filter_map(|k| Sim::seq_of(&sim.pop(40 + 20 * k)))
        .collect();
    assert_eq!(played, vec![10, 11, 12, 13]);
    assert_eq!(sim.jb.stats().reordered, 1);
}

#[test]
fn a_reordered_start_is_not_late() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 11, 160);
    assert_eq!(sim.push(5, 10, 0), PushResult::Accepted);
    let played: Vec<u16> = (0..4)
        .filter_map(|k| Sim::seq_of(&sim.pop(45 + 20 * k)))
        .collect();
    assert_eq!(played, vec![10, 11]);
}

#[test]
fn drops_duplicates_buffered_or_played() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 1, 0);
    sim.push(20, 2, 160);
    assert_eq!(sim.push(21, 2, 160), PushResult::Duplicate);
    assert!(matches!(sim.pop(40), Out::Frame(1, _, _)));
    assert_eq!(sim.push(41, 1, 0), PushResult::Duplicate);
    assert!(matches!(sim.pop(60), Out::Frame(2, _, _)));
    assert_eq!(sim.push(61, 2, 160), PushResult::Duplicate);
    assert_eq!(sim.jb.stats().duplicates, 3);
}

#[test]
fn conceals_a_loss_and_offers_the_next_packet_for_fec() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 1, 0);
    sim.push(40, 3, 320);
    sim.push(60, 4, 480);
    assert!(matches!(sim.pop(40), Out::Frame(1, _, _)));
    assert_eq!(
        sim.pop(60),
        Out::Conceal(160, Some(3u16.to_be_bytes().to_vec()))
    );
    assert!(matches!(sim.pop(80), Out::Frame(3, _, _)));
    assert!(matches!(sim.pop(100), Out::Frame(4, _, _)));
    let s = sim.jb.stats();
    assert_eq!((s.lost, s.concealed, s.stretched), (1, 1, 0));
}

#[test]
fn a_packet_after_its_turn_is_too_late() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 1, 0);
    sim.push(30, 3, 320);
    assert!(matches!(sim.pop(40), Out::Frame(1, _, _)));
    assert!(matches!(sim.pop(60), Out::Conceal(160, _)));
    assert_eq!(sim.push(70, 2, 160), PushResult::TooLate);
    assert!(matches!(sim.pop(80), Out::Frame(3, _, _)));
    assert_eq!(sim.jb.stats().late, 1);
}

#[test]
fn dtx_gap_is_silence_not_loss() {
    let mut sim = Sim::new(cfg());
    // Talk spurt 0..3, then 400 ms of DTX, then seq 3 with a marker.
    for k in 0..3u16 {
        sim.push(u64::from(k) * 20, k, 160 * u32::from(k));
    }
    let mut outs = Vec::new();
    let mut pushed = false;
    for tick in 0..40u64 {
        let t = 40 + tick * 20;
        if !pushed && t >= 460 {
            let now = sim.at(460);
            sim.jb.push(now, 3, 160 * 23, SSRC, true, b"x");
            pushed = true;
        }
        outs.push(sim.pop(t));
    }
    let frames: Vec<u16> = outs.iter().filter_map(Sim::seq_of).collect();
    assert_eq!(frames, vec![0, 1, 2, 3]);
    let s = sim.jb.stats();
    assert_eq!(s.lost, 0, "DTX is not loss");
    assert_eq!(s.late, 0);
    // Once the next packet is known, the rest of the gap is silence.
    let frame3 = outs.iter().position(|o| Sim::seq_of(o) == Some(3)).unwrap();
    let pushed_at = outs.len() - 40 + 21; // the tick at 460 ms
    assert!(
        outs[pushed_at..frame3].iter().all(|o| *o == Out::Silence),
        "{outs:?}"
    );
}

#[test]
fn dtx_gap_with_the_next_packet_buffered_is_all_silence() {
    // A 200 ms buffer holds the next spurt before the pause is played.
    let mut sim = Sim::new(JitterConfig {
        min_delay_ms: 200,
        ..cfg()
    });
    sim.push(0, 0, 0);
    sim.push(200, 1, 160 * 10); // after a 180 ms pause, on time
    let outs: Vec<Out> = (0..11).map(|k| sim.pop(200 + 20 * k)).collect();
    assert!(matches!(outs[0], Out::Frame(0, _, _)));
    assert!(outs[1..10].iter().all(|o| *o == Out::Silence), "{outs:?}");
    assert!(matches!(outs[10], Out::Frame(1, 1600, _)), "{outs:?}");
    let s = sim.jb.stats();
    assert_eq!((s.lost, s.concealed, s.silence_adjusted), (0, 0, 0));
}

#[test]
fn loss_across_a_pause_conceals_only_the_missing_packets() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 0, 0);
    // Seq 1 (the first packet of the next spurt, at ts 1600) is lost.
    sim.push(1, 2, 160 * 11);
    let outs: Vec<Out> = (0..14).map(|k| sim.pop(40 + 20 * k)).collect();
    let frame2 = outs.iter().position(|o| Sim::seq_of(o) == Some(2)).unwrap();
    // Speech was going on, so the missing packet is concealed first; the rest
    // of the gap is a pause.
    assert_eq!(outs[1], Out::Conceal(160, None));
    let conceals = outs[..frame2]
        .iter()
        .filter(|o| matches!(o, Out::Conceal(..)))
        .count();
    assert_eq!(conceals, 1, "{outs:?}");
    assert!(outs.iter().any(|o| Sim::seq_of(o) == Some(2)));
    assert_eq!(sim.jb.stats().lost, 1);
}

/// A talk spurt, then packets that carry no audio on the same SSRC and
/// sequence space (one comfort-noise packet, or an RFC 4733 event of eight
/// packets while the sender's audio pauses), then the next spurt. Returns
/// the stats and what was played, with or without telling the buffer.
fn run_pause_with_packets_not_audio(markers: u16, tell: bool) -> (JitterStats, Vec<Out>) {
    let mut sim = Sim::new(cfg());
    let mut outs = Vec::new();
    let spurt = 50u16;
    let pause_frames = 40u16;
    // The pause packets are sent one per 20 ms from the end of the spurt.
    let mut seq = 0u16;
    for tick in 0..(2 * spurt + pause_frames + 10) {
        let ms = u64::from(tick) * 20;
        if tick < spurt {
            sim.push(ms, seq, 160 * u32::from(tick));
            seq += 1;
        } else if tick < spurt + markers {
            if tell {
                sim.jb.push_not_audio(seq, SSRC);
            }
            seq += 1;
        } else if tick >= spurt + pause_frames && tick < 2 * spurt + pause_frames {
            sim.push(ms, seq, 160 * u32::from(tick));
            seq += 1;
        }
        outs.push(sim.pop(ms + 45));
    }
    (sim.jb.stats().clone(), outs)
}

#[test]
fn comfort_noise_and_events_on_the_audio_ssrc_are_a_pause_not_loss() {
    for markers in [1u16, 8] {
        let (told, outs) = run_pause_with_packets_not_audio(markers, true);
        let frames: Vec<u16> = outs.iter().filter_map(Sim::seq_of).collect();
        let expected: Vec<u16> = (0..50).chain(50 + markers..100 + markers).collect();
        assert_eq!(frames, expected, "{markers}: {outs:?}");
        // The stream's own end (the ticks after its last frame) is the only
        // concealment.
        let last = outs.iter().rposition(|o| Sim::seq_of(o).is_some()).unwrap();
        let conceals = |o: &[Out]| o.iter().filter(|o| matches!(o, Out::Conceal(..))).count();
        assert_eq!(conceals(&outs[..last]), 0, "{markers}: {outs:?}");
        assert_eq!((told.lost, told.late), (0, 0), "{told:?}");
        assert_eq!(told.not_audio, u64::from(markers));
        // Untold, the same sequence gap is loss: concealed, as it must be
        // when the packets could have been audio.
        let (untold, outs) = run_pause_with_packets_not_audio(markers, false);
        let last = outs.iter().rposition(|o| Sim::seq_of(o).is_some()).unwrap();
        assert_eq!(untold.lost, u64::from(markers), "{untold:?}");
        assert!(conceals(&outs[..last]) >= 1, "{untold:?}");
    }
}

#[test]
fn packets_not_audio_of_another_ssrc_or_far_off_are_ignored() {
    let mut sim = Sim::new(cfg());
    sim.jb.push_not_audio(3, SSRC); // before any audio: no stream yet
    sim.push(0, 0, 0);
    sim.jb.push_not_audio(1, SSRC ^ 1);
    sim.jb.push_not_audio(1000, SSRC);
    sim.jb.push_not_audio(u16::MAX, SSRC); // behind the cursor
    assert_eq!(sim.jb.stats().not_audio, 0);
    sim.jb.push_not_audio(1, SSRC);
    sim.jb.push_not_audio(1, SSRC); // a repeated end packet
    assert_eq!(sim.jb.stats().not_audio, 1);
    // Seq 2 arrives: seq 1 was no audio, so nothing was lost.
    sim.push(20, 2, 320);
    let outs: Vec<Out> = (0..4).map(|k| sim.pop(40 + 20 * k)).collect();
    assert_eq!(
        outs.iter().filter_map(Sim::seq_of).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(sim.jb.stats().lost, 0);
}

#[test]
fn sequence_and_timestamp_wrap_around() {
    let mut sim = Sim::new(cfg());
    let ts0 = u32::MAX - 400;
    for k in 0..8u16 {
        let r = sim.push(
            u64::from(k) * 20,
            65533u16.wrapping_add(k),
            ts0.wrapping_add(160 * u32::from(k)),
        );
        assert_eq!(r, PushResult::Accepted);
    }
    let played: Vec<u16> = (0..8)
        .filter_map(|k| Sim::seq_of(&sim.pop(40 + 20 * k)))
        .collect();
    assert_eq!(played, vec![65533, 65534, 65535, 0, 1, 2, 3, 4]);
    assert_eq!(sim.jb.stats().resyncs, 0);
}

#[test]
fn ssrc_change_restarts_the_stream() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 1, 0);
    sim.push(20, 2, 160);
    assert!(matches!(sim.pop(40), Out::Frame(1, _, _)));
    assert_eq!(sim.push_from(45, 9000, 777_000, 99), PushResult::Resynced);
    sim.push_from(65, 9001, 777_160, 99);
    let outs: Vec<Out> = (0..5).map(|k| sim.pop(60 + 20 * k)).collect();
    let frames: Vec<u16> = outs.iter().filter_map(Sim::seq_of).collect();
    assert_eq!(frames, vec![9000, 9001]);
    assert_eq!(sim.jb.stats().resyncs, 1);
}

#[test]
fn timestamp_jump_restarts_the_stream() {
    let mut sim = Sim::new(cfg());
    sim.push(0, 1, 0);
    sim.push(20, 2, 160);
    // Same SSRC, next sequence, but the timestamp leaps ten minutes ahead.
    assert_eq!(sim.push(40, 3, 8000 * 600), PushResult::Resynced);
    // And a sequence leap well beyond any plausible loss.
    assert_eq!(sim.push(60, 20_000, 8000 * 600 + 160), PushResult::Resynced);
    assert_eq!(sim.jb.stats().resyncs, 2);
}

#[test]
fn oversize_and_overflow_are_rejected() {
    let mut sim = Sim::new(JitterConfig {
        capacity: 8,
        max_payload: 4,
        ..cfg()
    });
    let now = sim.at(0);
    assert_eq!(
        sim.jb.push(now, 0, 0, SSRC, false, &[0; 5]),
        PushResult::TooLarge
    );
    sim.push(0, 0, 0);
    assert_eq!(sim.push(1, 8, 160 * 8), PushResult::Overflow);
    assert_eq!(sim.push(1, 7, 160 * 7), PushResult::Accepted);
    let s = sim.jb.stats();
    assert_eq!((s.oversize, s.overflow), (1, 1));
}

#[test]
fn a_delay_spike_grows_the_target_and_the_buffer_follows() {
    let mut sim = Sim::new(JitterConfig {
        min_delay_ms: 0,
        ..JitterConfig::g711_20ms()
    });
    let mut played = 0;
    let mut last = None;
    // 20 s: calm for 5 s, then ±40 ms alternating transit.
    for k in 0..1000u64 {
        let extra = if k >= 250 && k % 2 == 1 { 40 } else { 0 };
        sim.push(k * 20 + extra, k as u16, 160 * k as u32);
        if let Out::Frame(seq, _, _) = sim.pop(k * 20 + 10) {
            assert!(last.is_none_or(|l| seq > l));
            last = Some(seq);
            played += 1;
        }
        if k == 249 {
            assert!(sim.jb.stats().target_delay < Duration::from_millis(5));
        }
    }
    let s = sim.jb.stats().clone();
    assert!(s.target_delay >= Duration::from_millis(40), "{s:?}");
    assert!(s.current_delay >= Duration::from_millis(30), "{s:?}");
    // Once grown, late packets stop: the last 10 s lose almost nothing.
    assert!(s.late < 60, "{s:?}");
    assert!(played > 900);
}

#[test]
fn hostile_packet_streams_never_panic() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 200,
        ..Config::default()
    });
    let op = (
        any::<u16>(),
        any::<u32>(),
        0u32..3,
        0usize..200,
        0u64..50,
        any::<bool>(),
    );
    runner
        .run(&proptest::collection::vec(op, 1..300), |ops| {
            let mut sim = Sim::new(JitterConfig {
                capacity: 16,
                ..JitterConfig::g711_20ms()
            });
            let mut t = 0;
            let payload = [0u8; 200];
            for (seq, ts, ssrc, len, dt, pop) in ops {
                t += dt;
                let now = sim.at(t);
                let _ = sim
                    .jb
                    .push(now, seq, ts, ssrc, seq % 7 == 0, &payload[..len]);
                if pop {
                    if let Playout::Frame { payload, .. } = sim.jb.pop(now) {
                        prop_assert!(payload.len() <= 160);
                    }
                }
            }
            prop_assert!(sim.jb.len() <= 16);
            Ok(())
        })
        .unwrap();
}

#[test]
fn never_plays_a_sequence_twice_under_random_arrivals() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new(Config {
        cases: 100,
        ..Config::default()
    });
    // Frames 0..n arrive with random delay (0–100 ms) and random copies.
    let arrivals = proptest::collection::vec((0u64..100, any::<bool>(), any::<bool>()), 50..400);
    runner
        .run(&arrivals, |frames| {
            let mut events: Vec<(u64, u16)> = Vec::new();
            for (k, (delay, dup, lost)) in frames.iter().enumerate() {
                if *lost && k % 3 == 0 {
                    continue;
                }
                let send = k as u64 * 20;
                events.push((send + delay, k as u16));
                if *dup {
                    events.push((send + delay / 2 + 7, k as u16));
                }
            }
            events.sort();
            let mut sim = Sim::new(JitterConfig::g711_20ms());
            let mut last: Option<u16> = None;
            let mut ev = events.into_iter().peekable();
            for tick in 0..(frames.len() as u64 + 20) {
                let t = tick * 20 + 3;
                while let Some((at, k)) = ev.next_if(|(at, _)| *at <= t) {
                    sim.push(at, k, 160 * u32::from(k));
                }
                if let Some(seq) = Sim::seq_of(&sim.pop(t)) {
                    prop_assert!(last.is_none_or(|l| seq > l), "{seq} after {last:?}");
                    last = Some(seq);
                }
            }
            Ok(())
        })
        .unwrap();
}

/// Packets every 20 ms with triangular 20±10 ms jitter (netem's shape) on
/// a virtual clock, popped on 20 ms ticks at `phase_ms`; returns the stats
/// after `secs` seconds.
fn run_jittery_start(phase_ms: u64, seed: u64, secs: u64) -> JitterStats {
    let mut rng = crate::media::netem::SplitMix64::new(seed);
    let mut sim = Sim::new(JitterConfig::g711_20ms());
    let frames = secs * 50;
    let mut arrivals: Vec<(u64, u16)> = (0..frames)
        .map(|k| {
            let jitter = 10 + rng.next_u64() % 11 + rng.next_u64() % 11 - 10;
            (k * 20 + 20 + jitter, k as u16)
        })
        .collect();
    arrivals.sort();
    let mut next = arrivals.into_iter().peekable();
    let mut last = None;
    // Stop before the stream runs dry, which would be concealed.
    for tick in 0..frames {
        let t = tick * 20 + phase_ms;
        while let Some((at, k)) = next.next_if(|(at, _)| *at <= t) {
            sim.push(at, k, 160 * u32::from(k));
        }
        if let Some(seq) = Sim::seq_of(&sim.pop(t)) {
            assert!(last.is_none_or(|l| seq > l));
            last = Some(seq);
        }
    }
    sim.jb.stats().clone()
}

#[test]
fn a_jittery_call_starts_without_late_packets() {
    // The start target covers the first seconds, before the window has
    // seen the path; the 20±10 ms profile, every tick phase.
    for phase in [0, 3, 7, 11, 15, 19] {
        for seed in 1..=3 {
            let s = run_jittery_start(phase, seed, 5);
            assert_eq!(s.late, 0, "phase {phase} seed {seed}: {s:?}");
            assert_eq!(s.concealed, 0, "phase {phase} seed {seed}: {s:?}");
            // The 40 ms start target was partly given back (the path needs
            // about 20) by dropping frames of speech, at most once a second.
            assert!(s.target_delay < Duration::from_millis(25), "{s:?}");
            assert!(s.skipped <= 2, "{s:?}");
        }
    }
}

#[test]
fn the_caller_may_drop_quiet_frames_while_the_buffer_is_too_deep() {
    let mut sim = Sim::new(JitterConfig {
        quiet_drops: true,
        ..JitterConfig::g711_20ms()
    });
    // A clean path: the 40 ms start target is more than it needs.
    let mut played = Vec::new();
    let mut quiet_dropped = 0;
    for k in 0..300u64 {
        sim.push(k * 20, k as u16, 160 * k as u32);
        let now = sim.at(k * 20 + 5);
        let mut out = sim.pop(k * 20 + 5);
        // Every frame counts as quiet here: drop while the buffer asks.
        while let Out::Frame(seq, _, _) = out {
            if !sim.jb.wants_shrink() {
                played.push(seq);
                break;
            }
            quiet_dropped += 1;
            out = match sim.jb.pop_instead(now) {
                Playout::Frame { seq, timestamp, .. } => Out::Frame(seq, timestamp, vec![]),
                _ => Out::Silence,
            };
        }
    }
    let s = sim.jb.stats().clone();
    assert_eq!(quiet_dropped, 2, "{s:?}");
    assert_eq!(s.skipped, 2, "counted as skipped");
    assert_eq!(s.target_delay, Duration::ZERO);
    assert!(s.current_delay < Duration::from_millis(20), "{s:?}");
    assert!(played.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(s.late + s.concealed, 0, "{s:?}");
}

#[test]
fn with_quiet_drops_a_speech_frame_waits_two_seconds_for_a_pause() {
    let run = |quiet_drops| {
        let mut sim = Sim::new(JitterConfig {
            quiet_drops,
            ..JitterConfig::g711_20ms()
        });
        let mut first_skip = None;
        for k in 0..500u64 {
            sim.push(k * 20, k as u16, 160 * k as u32);
            sim.pop(k * 20 + 5);
            if first_skip.is_none() && sim.jb.stats().skipped > 0 {
                first_skip = Some(k);
            }
        }
        first_skip
    };
    // The start target fades over 100 packets; the excess begins about
    // half-way through (40 → 20 ms).
    let plain = run(false).unwrap();
    let patient = run(true).unwrap();
    assert!((40..80).contains(&plain), "{plain}");
    assert!(patient >= plain + 95, "{patient} vs {plain}");
}

/// One pop of a run: (timestamp, or `None` for silence; samples; concealed).
type Pop = (Option<u32>, u32, bool);

/// A consumer like the listener: a 20 ms tick that pops whenever less than
/// a tick of audio is waiting, each pop standing for `frame_samples()`.
/// Packets of `sizes[i]` samples are sent in real time (with `lose` left
/// out) until every packet has been played (or dropped to shrink the
/// delay); returns each pop as (timestamp or None for silence, samples,
/// concealed).
fn run_variable(
    sizes: &[u32],
    lose: &[usize],
) -> (Vec<Pop>, JitterStats, Vec<(usize, PushResult)>) {
    let base = Instant::now();
    let mut jb = JitterBuffer::new(JitterConfig {
        max_payload: 480,
        ..JitterConfig::g711_20ms()
    });
    let mut sends = Vec::new();
    let mut ts = 0u32;
    for (i, &n) in sizes.iter().enumerate() {
        // A packet leaves when its last sample has been captured.
        sends.push((u64::from(ts + n) * 125, i, ts, n));
        ts += n;
    }
    let total_us = u64::from(ts) * 125 + 400_000;
    let expected = (sizes.len() - lose.len()) as u64;
    let mut refused = Vec::new();
    let mut next = 0;
    let mut queued = 0u32;
    let mut pops = Vec::new();
    let mut tick_us = 0u64;
    while tick_us < total_us {
        while let Some(&(at, i, ts, n)) = sends.get(next) {
            if at > tick_us {
                break;
            }
            next += 1;
            if !lose.contains(&i) {
                let payload = vec![i as u8; n as usize];
                let now = base + Duration::from_micros(at);
                let r = jb.push_lasting(now, i as u16, ts, SSRC, i == 0, &payload, n);
                if r != PushResult::Accepted {
                    refused.push((i, r));
                }
            }
        }
        let mut guard = 0;
        let done = |s: &JitterStats| s.played + s.skipped + s.late >= expected;
        if done(jb.stats()) {
            break;
        }
        while queued < 160 && guard < 16 && !done(jb.stats()) {
            guard += 1;
            let at = base + Duration::from_micros(tick_us + u64::from(queued) * 125);
            let before = jb.frame_samples();
            let (entry, n) = match jb.pop(at) {
                Playout::Frame {
                    timestamp, payload, ..
                } => {
                    let n = payload.len() as u32;
                    ((Some(timestamp), n, false), n)
                }
                Playout::Conceal { timestamp, .. } => ((Some(timestamp), before, true), before),
                Playout::Silence => ((None, before, false), before),
            };
            if entry.0.is_some() && !entry.2 {
                assert_eq!(n, jb.frame_samples(), "a frame is its packet's length");
            }
            pops.push(entry);
            queued += n;
        }
        queued = queued.saturating_sub(160);
        tick_us += 20_000;
    }
    (pops, jb.stats().clone(), refused)
}

/// The timestamps a run played or concealed, in order, with no silence.
fn media_steps(pops: &[Pop]) -> Vec<(u32, u32, bool)> {
    pops.iter()
        .filter_map(|&(ts, n, c)| ts.map(|t| (t, n, c)))
        .collect()
}

/// Checks a run's frames against the packets sent: in timestamp order,
/// each a whole packet; with the packets dropped to shrink the delay
/// (`skipped`, a few at the start) every packet is accounted for.
fn check_frames(sizes: &[u32], steps: &[(u32, u32, bool)], stats: &JitterStats, late: u64) {
    let mut starts = std::collections::HashMap::new();
    let mut ts = 0;
    for &n in sizes {
        starts.insert(ts, n);
        ts += n;
    }
    let frames: Vec<(u32, u32)> = steps.iter().filter(|s| !s.2).map(|s| (s.0, s.1)).collect();
    for w in frames.windows(2) {
        assert!(w[0].0 + w[0].1 <= w[1].0, "out of order: {w:?}");
    }
    for (t, n) in &frames {
        assert_eq!(
            starts.get(t),
            Some(n),
            "frame at {t} of {n} is no packet sent"
        );
    }
    assert_eq!(
        stats.played + stats.skipped + late,
        sizes.len() as u64,
        "{stats:?}"
    );
    assert!(stats.skipped <= 4, "{stats:?}");
}

/// Packets of 10, 30 and 60 ms in real time all play, whole and in order,
/// with no concealment: the cursor moves by each packet's duration.
#[test]
fn packets_of_10_30_and_60_ms_play_whole() {
    for size in [80u32, 240, 480] {
        let sizes = vec![size; 3000 / size as usize * 8];
        let (pops, stats, refused) = run_variable(&sizes, &[]);
        let steps = media_steps(&pops);
        assert_eq!(refused, [], "{size}");
        assert_eq!(stats.concealed, 0, "{size}: {stats:?}");
        assert_eq!(stats.lost + stats.late, 0, "{size}: {stats:?}");
        check_frames(&sizes, &steps, &stats, 0);
    }
}

/// A peer that changes its packet size mid-call (20 → 30 → 10 → 60 → 20
/// ms) is followed: every packet plays whole at its own time, except
/// that the first 60 ms packet after 10 ms ones comes 50 ms later than the
/// delay then allows (the peer held it while filling it), so it is late
/// and concealed, once; the delay grows at once and nothing else is lost.
#[test]
fn a_mid_call_change_of_packet_size_is_followed() {
    let mut sizes = vec![160u32; 50];
    sizes.extend([240; 40]);
    sizes.extend([80; 60]);
    sizes.extend([480; 20]);
    sizes.extend([160; 20]);
    let (pops, stats, refused) = run_variable(&sizes, &[]);
    let steps = media_steps(&pops);
    assert_eq!(refused, [(150, PushResult::TooLate)], "{stats:?}");
    // that packet, never played, is the one sequence number lost
    assert_eq!((stats.lost, stats.late), (1, 1), "{stats:?}");
    check_frames(&sizes, &steps, &stats, 1);
    // Concealment is either the 60 ms of packet 150 (in steps of the
    // 10 ms frames before it) or a hold of the cursor while the delay
    // grows (the step is then played next, nothing lost): longer packets
    // wait longer at the sender.
    let at_150 = 50 * 160 + 40 * 240 + 60 * 80;
    for (k, s) in steps.iter().enumerate().filter(|(_, s)| s.2) {
        let in_gap = s.0 >= at_150 && s.0 < at_150 + 480;
        let held = steps.get(k + 1).is_some_and(|n| n.0 == s.0);
        assert!(in_gap || held, "concealed {s:?} at step {k}: {steps:?}");
    }
    // the 60 ms stretch played as 60 ms frames
    assert!(
        steps.iter().filter(|s| s.1 == 480 && !s.2).count() >= 18,
        "{steps:?}"
    );
}

/// A lost 30 ms packet is concealed as one 30 ms step; the next packet
/// plays at its own time.
#[test]
fn a_lost_30_ms_packet_is_concealed_as_30_ms() {
    let sizes = vec![240u32; 60];
    let (pops, stats, refused) = run_variable(&sizes, &[20]);
    assert_eq!(refused, []);
    let steps = media_steps(&pops);
    assert_eq!(stats.concealed, 1, "{stats:?}");
    assert_eq!(stats.played + stats.skipped, 59, "{stats:?}");
    let i = steps.iter().position(|s| s.2).unwrap();
    assert_eq!(steps[i], (20 * 240, 240, true));
    assert_eq!(steps[i + 1], (21 * 240, 240, false));
}
