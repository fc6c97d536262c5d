//! Establishment and release (§5.5), collisions, the resets of §5.7 and
//! what frames a link ignores or rejects (§2.9, §5.8.5).

use super::sim::Sim;
use super::*;
use crate::media::netem::NetemProfile;

/// The octets on the wire, from Q.921 Table 1 and Table 5 by hand.
#[test]
fn user_establishes_with_the_right_octets() {
    let start = Instant::now();
    let mut user = Link::new(LinkConfig::new(Side::User));
    let mut net = Link::new(LinkConfig::new(Side::Network));
    user.establish(start);
    let sabme = user.poll_transmit().unwrap();
    assert_eq!(sabme, [0x00, 0x01, 0x7F], "user command: C/R=0, SABME P=1");
    net.handle_frame(start, &sabme);
    let ua = net.poll_transmit().unwrap();
    assert_eq!(ua, [0x00, 0x01, 0x73], "network response: C/R=0, UA F=1");
    assert_eq!(net.poll_event(), Some(LinkEvent::Established));
    user.handle_frame(start, &ua);
    assert_eq!(user.poll_event(), Some(LinkEvent::Established));
    assert_eq!(user.state().number(), 7);
    assert_eq!(net.state().number(), 7);
    // Both idle with T203 running, ten seconds out.
    assert_eq!(user.poll_timeout(), Some(start + secs(10)));
    user.send(start, b"SETUP".to_vec()).unwrap();
    assert_eq!(
        user.poll_transmit().unwrap(),
        [0x00, 0x01, 0x00, 0x00, b'S', b'E', b'T', b'U', b'P']
    );
    assert_eq!(
        user.poll_timeout(),
        Some(start + secs(1)),
        "T200 replaced T203"
    );
}

#[test]
fn network_side_establishes_with_its_own_cr_bits() {
    let start = Instant::now();
    let mut net = Link::new(LinkConfig::new(Side::Network));
    let mut user = Link::new(LinkConfig::new(Side::User));
    net.establish(start);
    let sabme = net.poll_transmit().unwrap();
    assert_eq!(sabme, [0x02, 0x01, 0x7F]);
    user.handle_frame(start, &sabme);
    assert_eq!(user.poll_transmit().unwrap(), [0x02, 0x01, 0x73]);
}

#[test]
fn sabme_collision_brings_both_up_once() {
    let mut sim = Sim::clean();
    let now = sim.now;
    sim.user.link.establish(now);
    sim.net.link.establish(now);
    assert!(sim.run_until(secs(1), Sim::both_up));
    sim.run_for(secs(1));
    assert_eq!((sim.user.established(), sim.net.established()), (1, 1));
    // Each sent one SABME and one UA, and no retransmission happened.
    for p in [&sim.user, &sim.net] {
        assert_eq!(p.sent(|k| matches!(k, Kind::Sabme { .. })).len(), 1);
        assert_eq!(p.sent(|k| matches!(k, Kind::Ua { f: true })).len(), 1);
    }
}

#[test]
fn disc_releases_both_sides_and_disc_collision_too() {
    let mut sim = Sim::clean();
    let now = sim.now;
    sim.user.link.establish(now);
    assert!(sim.run_until(secs(1), Sim::both_up));
    let now = sim.now;
    sim.net.link.release(now);
    sim.run_for(secs(1));
    for p in [&sim.user, &sim.net] {
        assert_eq!(p.link.state(), State::TeiAssigned);
        assert_eq!(p.count(|e| *e == LinkEvent::Released), 1);
    }
    // Up again, then both release at once.
    let now = sim.now;
    sim.user.link.establish(now);
    assert!(sim.run_until(secs(1), Sim::both_up));
    let now = sim.now;
    sim.user.link.release(now);
    sim.net.link.release(now);
    sim.run_for(secs(1));
    for p in [&sim.user, &sim.net] {
        assert_eq!(p.link.state(), State::TeiAssigned);
        assert_eq!(p.count(|e| *e == LinkEvent::Released), 2);
        assert_eq!(p.count(|e| matches!(e, LinkEvent::Error(_))), 0);
    }
}

#[test]
fn establish_during_release_comes_up_after_it() {
    let mut sim = Sim::clean();
    let now = sim.now;
    sim.user.link.establish(now);
    assert!(sim.run_until(secs(1), Sim::both_up));
    let now = sim.now;
    sim.user.link.release(now);
    sim.user.link.establish(now);
    sim.run_for(secs(2));
    assert!(sim.both_up());
    let kinds: Vec<_> = sim.user.events.iter().map(|(_, e)| e.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            LinkEvent::Established,
            LinkEvent::Released,
            LinkEvent::Established
        ]
    );
}

#[test]
fn a_peer_that_answers_dm_is_not_retried() {
    let mut s = Solo::new(Side::User);
    s.link.establish(s.now);
    s.drain();
    s.take();
    s.feed(false, Kind::Dm { f: true });
    assert_eq!(s.take_events(), vec![LinkEvent::Released]);
    assert_eq!(s.link.poll_timeout(), None);
    // An unsolicited DM F=0 in state 4 asks us to establish (§5.5.4).
    s.feed(false, Kind::Dm { f: false });
    assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
}

#[test]
fn sabme_while_up_resets_the_variables() {
    let mut s = Solo::up();
    s.feed(true, i(0, 0, b"a"));
    s.send(b"b");
    s.take();
    s.take_events();
    s.feed(true, Kind::Sabme { p: true });
    assert_eq!(s.take(), vec![Kind::Ua { f: true }]);
    // "b" was outstanding: dropped, and layer 3 told of the reset.
    assert_eq!(
        s.take_events(),
        vec![LinkEvent::Error(MdlError::F), LinkEvent::Established]
    );
    let st = s.link.status();
    assert_eq!((st.vs, st.va, st.vr, st.unacked), (0, 0, 0, 0));
    s.feed(true, i(0, 0, b"c"));
    assert_eq!(s.take_events(), vec![LinkEvent::Data(b"c".to_vec())]);
}

#[test]
fn dm_while_up_reestablishes_only_with_f0() {
    let mut s = Solo::up();
    s.feed(false, Kind::Dm { f: true });
    assert_eq!(s.take_events(), vec![LinkEvent::Error(MdlError::B)]);
    assert!(s.take().is_empty());
    s.feed(false, Kind::Dm { f: false });
    assert_eq!(s.take_events(), vec![LinkEvent::Error(MdlError::E)]);
    assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
}

#[test]
fn frmr_reestablishes_and_a_quiet_reset_keeps_the_queue() {
    let mut s = Solo::up();
    s.feed(
        false,
        Kind::Frmr {
            f: false,
            info: vec![0; 5],
        },
    );
    assert_eq!(s.take_events(), vec![LinkEvent::Error(MdlError::K)]);
    assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
    // Sent while re-establishing: queued, then sent on the new link; with
    // nothing outstanding the reset is invisible to layer 3.
    s.send(b"later");
    assert!(s.take().is_empty());
    s.feed(false, Kind::Ua { f: true });
    assert!(s.take_events().is_empty());
    assert_eq!(s.take(), vec![i(0, 0, b"later")]);
}

#[test]
fn invalid_nr_reestablishes() {
    let mut s = Solo::up();
    s.send(b"x");
    s.take();
    s.feed(false, rr(5, false));
    assert_eq!(s.take_events(), vec![LinkEvent::Error(MdlError::J)]);
    assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
    // An I frame was outstanding, so on the new link layer 3 hears the
    // link was reset and the message is gone.
    s.feed(false, Kind::Ua { f: true });
    assert_eq!(s.take_events(), vec![LinkEvent::Established]);
    assert_eq!(s.link.status().unacked + s.link.status().queued, 0);
}

#[test]
fn frame_errors_while_up_reestablish() {
    let cases: [(&[u8], MdlError); 4] = [
        (&[0x02, 0x01, 0x3F], MdlError::L),
        (&[0x02, 0x01, 0x7F, 0x00], MdlError::M),
        (&[0x02, 0x01, 0x01, 0x00, 0x00], MdlError::N),
        (&[0x02, 0x01, 0x00, 0x00], MdlError::O),
    ];
    for (bytes, code) in cases {
        let mut s = Solo::up();
        let mut b = bytes.to_vec();
        if code == MdlError::O {
            b.resize(4 + 261, 0);
        }
        s.feed_bytes(&b);
        assert_eq!(
            s.take_events(),
            vec![LinkEvent::Error(code)],
            "{bytes:02x?}"
        );
        assert_eq!(s.take(), vec![Kind::Sabme { p: true }]);
    }
}

#[test]
fn frames_not_for_this_link_are_ignored() {
    let mut s = Solo::new(Side::User);
    // A SABME with the user's own command C/R (so a "response"), one for
    // TEI 1, one for SAPI 16, a truncated one and a one-octet address.
    for b in [
        &[0x00, 0x01, 0x7F][..],
        &[0x02, 0x03, 0x7F],
        &[0x42, 0x01, 0x7F],
        &[0x02, 0x01],
        &[0x03, 0x7F, 0x00],
    ] {
        s.feed_bytes(b);
    }
    assert!(s.take().is_empty() && s.take_events().is_empty());
    assert_eq!(s.link.state(), State::TeiAssigned);
    // Two user sides never agree on who commands.
    let mut sim = Sim::with(
        LinkConfig::new(Side::User),
        LinkConfig::new(Side::User),
        NetemProfile::clean(ms(5)),
        1,
    );
    let now = sim.now;
    sim.user.link.establish(now);
    sim.run_for(secs(10));
    assert!(!sim.user.link.state().is_established());
    assert_eq!(sim.net.link.state(), State::TeiAssigned);
}

#[test]
fn ui_frames_pass_up_in_any_state() {
    let mut s = Solo::new(Side::User);
    s.feed(
        true,
        Kind::Ui {
            p: false,
            info: b"hello".to_vec(),
        },
    );
    assert_eq!(
        s.take_events(),
        vec![LinkEvent::UnitData(b"hello".to_vec())]
    );
    s.link.send_unit_data(b"bye".to_vec()).unwrap();
    s.drain();
    assert_eq!(
        s.take(),
        vec![Kind::Ui {
            p: false,
            info: b"bye".to_vec()
        }]
    );
}

#[test]
fn send_refuses_what_it_cannot_carry() {
    let mut cfg = LinkConfig::new(Side::User);
    cfg.queue_limit = 2;
    let mut link = Link::new(cfg);
    let now = Instant::now();
    assert_eq!(link.send(now, vec![0; 261]), Err(SendError::TooLong));
    assert_eq!(link.send_unit_data(vec![0; 261]), Err(SendError::TooLong));
    link.send(now, vec![1]).unwrap();
    // The first send started establishment.
    assert_eq!(link.state(), State::AwaitingEstablishment);
    link.send(now, vec![2]).unwrap();
    assert_eq!(link.send(now, vec![3]), Err(SendError::QueueFull));
    link.release(now);
    assert_eq!(link.send(now, vec![4]), Err(SendError::Releasing));
}
