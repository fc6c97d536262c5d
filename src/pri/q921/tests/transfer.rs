//! Multiple frame operation (§5.6): the window, acknowledgement, REJ
//! recovery, peer receiver busy, and T200's timer recovery.

use super::sim::Sim;
use super::*;

#[test]
fn window_stops_at_k_while_unacknowledged() {
    let mut s = Solo::up();
    for m in 0..20u8 {
        s.send(&[m]);
    }
    let sent = s.take();
    assert_eq!(sent.len(), 7);
    for (n, k) in sent.iter().enumerate() {
        assert_eq!(*k, i(n as u8, 0, &[n as u8]));
    }
    // Acknowledging three opens the window by three.
    s.feed(false, rr(3, false));
    assert_eq!(s.take(), vec![i(7, 0, &[7]), i(8, 0, &[8]), i(9, 0, &[9])]);
    assert_eq!(s.link.status().unacked, 7);
}

/// An I frame that both delivers and acknowledges: the window it opens
/// lets a queued message out at once, and that I frame carries our N(R),
/// so no RR is needed.
#[test]
fn piggy_backed_nr_acknowledges_both_ways() {
    let mut s = Solo::up();
    for m in 0..8u8 {
        s.send(&[m]);
    }
    assert_eq!(s.take().len(), 7, "the eighth waits for the window");
    s.feed(true, i(0, 7, b"r"));
    assert_eq!(s.take_events(), vec![LinkEvent::Data(b"r".to_vec())]);
    assert_eq!(s.take(), vec![i(7, 1, &[7])]);
    assert_eq!(s.link.status().unacked, 1);
}

#[test]
fn repeated_i_frame_is_delivered_once() {
    let mut s = Solo::up();
    s.feed(true, i(0, 0, b"a"));
    s.feed(true, i(0, 0, b"a"));
    s.feed(true, i(1, 0, b"b"));
    assert_eq!(
        s.take_events(),
        vec![
            LinkEvent::Data(b"a".to_vec()),
            LinkEvent::Data(b"b".to_vec())
        ]
    );
    // An RR for "a", a REJ for the repeat, an RR for "b".
    assert_eq!(
        s.take(),
        vec![rr(1, false), Kind::Rej { nr: 1, pf: false }, rr(2, false)]
    );
}

#[test]
fn reordered_i_frames_are_rejected_and_taken_in_order() {
    let mut s = Solo::up();
    s.feed(true, i(1, 0, b"b"));
    s.feed(true, i(2, 0, b"c"));
    s.feed(true, i(0, 0, b"a"));
    assert_eq!(s.take_events(), vec![LinkEvent::Data(b"a".to_vec())]);
    assert_eq!(s.take(), vec![Kind::Rej { nr: 0, pf: false }, rr(1, false)]);
    // The peer resends after the REJ.
    s.feed(true, i(1, 0, b"b"));
    s.feed(true, i(2, 0, b"c"));
    assert_eq!(
        s.take_events(),
        vec![
            LinkEvent::Data(b"b".to_vec()),
            LinkEvent::Data(b"c".to_vec())
        ]
    );
}

/// A lost I frame: the next one is out of sequence and gets one REJ (the
/// reject exception condition silences the rest), then all arrive in order.
#[test]
fn lost_i_frame_gets_one_rej_and_is_resent() {
    let mut sim = Sim::clean();
    let now = sim.now;
    sim.user.link.establish(now);
    assert!(sim.run_until(secs(1), Sim::both_up));
    let mut dropped = false;
    sim.up.drop_if = Some(Box::new(move |f| {
        let hit = !dropped && matches!(f.kind, Kind::I { ns: 1, .. });
        dropped |= hit;
        hit
    }));
    let now = sim.now;
    for m in 0..5 {
        sim.user.link.send(now, message(b'u', m)).unwrap();
    }
    sim.run_for(secs(2));
    let want: Vec<_> = (0..5).map(|m| message(b'u', m)).collect();
    assert_eq!(sim.net.data, want);
    assert_eq!(
        sim.net.sent(|k| matches!(k, Kind::Rej { nr: 1, .. })).len(),
        1
    );
    assert_eq!(sim.user.sent(|k| matches!(k, Kind::I { .. })).len(), 5 + 4);
    assert_eq!(sim.user.events.len(), 1);
}

#[test]
fn rnr_holds_transmission_and_t200_polls_the_busy_peer() {
    let mut s = Solo::up();
    s.feed(false, Kind::Rnr { nr: 0, pf: false });
    s.send(b"x");
    assert!(s.take().is_empty(), "peer busy: nothing sent");
    s.advance_to(secs(1));
    assert_eq!(s.take(), vec![rr(0, true)]);
    s.feed(false, Kind::Rnr { nr: 0, pf: true });
    assert!(s.take().is_empty());
    assert_eq!(s.link.state(), State::MultipleFrameEstablished);
    s.advance_to(secs(2));
    assert_eq!(s.take(), vec![rr(0, true)]);
    s.feed(false, rr(0, true));
    assert_eq!(s.take(), vec![i(0, 0, b"x")]);
    assert!(s.take_events().is_empty());
}

/// T200 expiry: enquiry (RR command P=1) N200 times, one second apart,
/// then re-establishment (MDL-ERROR I), whose SABMEs fail in turn (G).
#[test]
fn t200_polls_n200_times_then_reestablishes_then_gives_up() {
    let mut s = Solo::up();
    s.send(b"x");
    assert_eq!(s.take(), vec![i(0, 0, b"x")]);
    for t in 1..=3 {
        s.advance_to(secs(t));
        assert_eq!(s.take(), vec![rr(0, true)], "enquiry at {t} s");
        assert_eq!(s.link.state(), State::TimerRecovery);
    }
    s.advance_to(secs(4));
    assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
    assert_eq!(s.take_events(), vec![LinkEvent::Error(MdlError::I)]);
    for t in 5..=7 {
        s.advance_to(secs(t));
        assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
    }
    s.advance_to(secs(8));
    assert!(s.take().is_empty());
    assert_eq!(
        s.take_events(),
        vec![LinkEvent::Error(MdlError::G), LinkEvent::Released]
    );
    assert_eq!(s.link.state(), State::TeiAssigned);
    assert_eq!(s.link.poll_timeout(), None);
}

/// The enquiry's answer says what arrived; the rest is resent.
#[test]
fn timer_recovery_resends_from_the_answers_nr() {
    let mut s = Solo::up();
    for m in 0..4u8 {
        s.send(&[m]);
    }
    assert_eq!(s.take().len(), 4);
    s.advance_to(secs(1));
    assert_eq!(s.take(), vec![rr(0, true)]);
    // Frames 0 and 1 arrived, 2 and 3 were lost.
    s.feed(false, rr(2, true));
    assert_eq!(s.take(), vec![i(2, 0, &[2]), i(3, 0, &[3])]);
    assert_eq!(s.link.state(), State::MultipleFrameEstablished);
    s.feed(false, rr(4, false));
    assert_eq!(s.link.status().unacked, 0);
    assert!(s.take_events().is_empty());
}

#[test]
fn timeouts_before_the_deadline_do_nothing() {
    let mut s = Solo::up();
    s.send(b"x");
    s.take();
    let deadline = s.link.poll_timeout().unwrap();
    for _ in 0..3 {
        s.link.handle_timeout(deadline - ms(1));
    }
    s.drain();
    assert!(s.take().is_empty());
    assert_eq!(s.link.poll_timeout(), Some(deadline));
    assert_eq!(s.link.state(), State::MultipleFrameEstablished);
}
