//! Property tests of the session's outbound side: numbering and the RTCP
//! schedule.

use std::time::{Duration, Instant};

use rtp::packet::Packet;
use webrtc_util::marshal::Unmarshal;

use super::tests::{cfg, ms};
use super::*;

proptest::proptest! {
    /// Outbound numbering under any mix of frame sizes and talkspurt starts,
    /// read back by the `rtp` crate: seq +1 per packet (wrapping), timestamp
    /// + the previous packet's samples, marker exactly on talkspurt starts.
    #[test]
    fn outbound_numbering(
        steps in proptest::collection::vec((0u32..2000, proptest::prelude::any::<bool>(), 0usize..200), 1..200),
        seq0 in proptest::prelude::any::<u16>(),
        ts0 in proptest::prelude::any::<u32>(),
    ) {
        let t0 = Instant::now();
        let mut c = cfg("192.0.2.1:4000");
        c.initial_seq = seq0;
        c.initial_timestamp = ts0;
        let mut s = RtpSession::new(c, t0);
        let mut out = [0u8; 256];
        let (mut seq, mut ts) = (seq0, ts0);
        for (i, (samples, talkspurt, len)) in steps.into_iter().enumerate() {
            if talkspurt {
                s.start_talkspurt();
            }
            let payload = vec![0x7F; len];
            let n = s.write_audio(ms(t0, i as u64 * 20), &payload, samples, &mut out).unwrap();
            let p = Packet::unmarshal(&mut &out[..n]).unwrap();
            proptest::prop_assert_eq!(p.header.sequence_number, seq);
            proptest::prop_assert_eq!(p.header.timestamp, ts);
            proptest::prop_assert_eq!(p.header.marker, talkspurt || i == 0);
            proptest::prop_assert_eq!(p.payload.len(), len);
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(samples);
        }
    }

    /// Polled on a jittery worker tick, reports come no earlier than due and
    /// 2.5–7.5 s apart (plus at most one tick of lateness).
    #[test]
    fn rtcp_spacing_on_a_jittery_tick(ticks in proptest::collection::vec(15u64..40, 1000..2000)) {
        let t0 = Instant::now();
        let mut s = RtpSession::new(cfg("192.0.2.1:4000"), t0);
        let mut out = [0u8; 300];
        let mut now = t0;
        let mut last: Option<Instant> = None;
        for dt in ticks {
            now += Duration::from_millis(dt);
            let due = s.poll_timeout().unwrap();
            if let Some(_n) = s.poll_rtcp(now, &mut out) {
                proptest::prop_assert!(now >= due);
                proptest::prop_assert!(now - due < Duration::from_millis(40));
                if let Some(prev) = last {
                    let gap = now - prev;
                    proptest::prop_assert!(gap >= Duration::from_millis(2500), "{:?}", gap);
                    proptest::prop_assert!(gap < Duration::from_millis(7540), "{:?}", gap);
                }
                last = Some(now);
            } else {
                proptest::prop_assert!(now < due);
            }
        }
    }
}
