//! Calls ending: busy, no answer, unallocated, no circuit, normal
//! clearing from either side, clear collision — and every clearing and
//! supervision timer (T301, T303, T305, T308, T310, T313).

use super::harness::*;
use crate::pri::q931::ie::CallStateValue as V;
use crate::pri::q931::{CallEvent, Config, MessageType as M, Side, Variant};

#[test]
fn busy_is_cause_17_released_once() {
    let mut p = Pair::e1();
    let (u, n, ch) = p.user_places(call_to("5551234"));
    p.net.proceeding(p.now, n).unwrap();
    p.settle();
    p.user_events();
    p.net.disconnect(p.now, n, cause(17)).unwrap();
    p.settle();
    assert_eq!(
        p.user_events(),
        [
            CallEvent::Disconnected {
                call: u,
                cause: cause(17),
                inband: false
            },
            CallEvent::Released {
                call: u,
                cause: cause(17)
            }
        ]
    );
    assert_eq!(released(&p.net_events(), n), [cause(17)]);
    assert_eq!(
        p.sent_kinds(Dir::ToUser),
        [M::CallProceeding, M::Disconnect, M::ReleaseComplete]
    );
    assert_eq!(p.sent_kinds(Dir::ToNet), [M::Setup, M::Release]);
    assert_eq!((p.user.call_count(), p.net.call_count()), (0, 0));
    assert_eq!(p.user.channel_holder(ch), None);
    assert_eq!(p.user.free_channels(), 30);
    assert_eq!(p.net.free_channels(), 30);
    // Nothing left to time.
    assert_eq!(p.user.poll_timeout(), None);
    assert_eq!(p.net.poll_timeout(), None);
}

#[test]
fn no_answer_is_19_from_t301_or_from_the_network() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_places(call_to("1"));
    p.net.alerting(p.now, n, false).unwrap();
    p.secs(179);
    assert_eq!(p.user.call_state(u), Some(V::CallDelivered));
    // T301: three minutes of ringing.
    p.secs(1);
    assert_eq!(p.sent_cause(Dir::ToNet, M::Disconnect), Some(19));
    assert_eq!(released(&p.user_events(), u), [cause(19)]);
    assert_eq!(released(&p.net_events(), n), [cause(19)]);

    let (u, n, _) = p.user_places(call_to("2"));
    p.net.alerting(p.now, n, false).unwrap();
    p.secs(30);
    p.net.disconnect(p.now, n, cause(19)).unwrap();
    p.settle();
    assert_eq!(released(&p.user_events(), u), [cause(19)]);
}

#[test]
fn unallocated_number_is_refused_with_release_complete() {
    let mut p = Pair::e1();
    let (u, n, ch) = p.user_places(call_to("000"));
    p.net.reject(p.now, n, cause(1)).unwrap();
    p.settle();
    assert_eq!(released(&p.user_events(), u), [cause(1)]);
    assert_eq!(released(&p.net_events(), n), [cause(1)]);
    assert_eq!(p.sent_kinds(Dir::ToUser), [M::ReleaseComplete]);
    assert_eq!(p.user.channel_holder(ch), None);
}

#[test]
fn no_circuit_at_the_network_is_34() {
    let mut net = Config::new(Side::Network, Variant::Etsi);
    net.b_channels = vec![1, 2];
    let mut p = Pair::with(Config::new(Side::User, Variant::Etsi), net);
    let (_, n1, _) = p.user_places(call_to("1"));
    let (_, n2, _) = p.user_places(call_to("2"));
    p.net.connect(p.now, n1).unwrap();
    p.net.connect(p.now, n2).unwrap();
    p.settle();
    p.net_events();
    let u3 = p.user.setup(p.now, call_to("3")).unwrap();
    p.settle();
    assert_eq!(released(&p.user_events(), u3), [cause(34)]);
    assert!(p.net_events().is_empty());
    assert_eq!(p.sent_cause(Dir::ToUser, M::ReleaseComplete), Some(34));
}

#[test]
fn answered_call_cleared_by_either_side_is_16() {
    for user_hangs_up in [true, false] {
        let mut p = Pair::e1();
        let (u, n, ch) = p.user_call_answered("1");
        if user_hangs_up {
            p.user.disconnect(p.now, u, cause(16)).unwrap();
        } else {
            p.net.disconnect(p.now, n, cause(16)).unwrap();
        }
        p.settle();
        assert_eq!(released(&p.user_events(), u), [cause(16)]);
        assert_eq!(released(&p.net_events(), n), [cause(16)]);
        let (clearer, other) = if user_hangs_up {
            (Dir::ToNet, Dir::ToUser)
        } else {
            (Dir::ToUser, Dir::ToNet)
        };
        assert_eq!(
            p.sent_kinds(clearer)[p.sent_kinds(clearer).len() - 2..],
            [M::Disconnect, M::ReleaseComplete]
        );
        assert_eq!(p.sent_kinds(other).last(), Some(&M::Release));
        assert_eq!(p.net.channel_holder(ch), None);
        // Hanging up twice is harmless; a released call is unknown.
        assert_eq!(
            p.user.disconnect(p.now, u, cause(16)),
            Err(crate::pri::q931::ApiError::UnknownCall)
        );
    }
}

#[test]
fn clear_collision_each_side_keeps_its_cause() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    p.user.disconnect(p.now, u, cause(16)).unwrap();
    p.net.disconnect(p.now, n, cause(31)).unwrap();
    p.settle();
    assert_eq!(released(&p.user_events(), u), [cause(16)]);
    assert_eq!(released(&p.net_events(), n), [cause(31)]);
    // DISCONNECTs crossed, then RELEASEs crossed: no RELEASE COMPLETE.
    for dir in [Dir::ToNet, Dir::ToUser] {
        assert!(!p.sent_kinds(dir).contains(&M::ReleaseComplete));
        assert!(p.sent_kinds(dir).ends_with(&[M::Disconnect, M::Release]));
    }
}

#[test]
fn t303_setup_retransmitted_once_then_cleared_with_102() {
    let mut p = Pair::e1();
    p.drop_next(Dir::ToNet, M::Setup, 2);
    let u = p.user.setup(p.now, call_to("1")).unwrap();
    p.secs(3);
    assert_eq!(p.sent_kinds(Dir::ToNet), [M::Setup]);
    p.secs(1);
    assert_eq!(p.sent_kinds(Dir::ToNet), [M::Setup, M::Setup]);
    p.secs(4);
    assert_eq!(
        p.sent_kinds(Dir::ToNet),
        [M::Setup, M::Setup, M::ReleaseComplete]
    );
    assert_eq!(released(&p.user_events(), u), [cause(102)]);
    assert_eq!(p.user.free_channels(), 30);
    // The network never knew; the stray RELEASE COMPLETE is ignored.
    assert!(p.net_events().is_empty());
    assert!(p.sent_kinds(Dir::ToUser).is_empty());

    // One lost SETUP: the second one gets through.
    p.drop_next(Dir::ToNet, M::Setup, 1);
    let u = p.user.setup(p.now, call_to("1")).unwrap();
    p.secs(4);
    let (n, _) = incoming(&p.net_events()).unwrap();
    p.net.proceeding(p.now, n).unwrap();
    p.settle();
    assert_eq!(p.user.call_state(u), Some(V::OutgoingProceeding));
    // T303 is stopped by the answer.
    p.secs(10);
    assert_eq!(p.user.call_state(u), Some(V::OutgoingProceeding));
}

#[test]
fn t303_on_the_network_side_reports_no_user_responding() {
    let mut p = Pair::e1();
    p.drop_next(Dir::ToUser, M::Setup, 2);
    let n = p.net.setup(p.now, call_to("1")).unwrap();
    p.secs(8);
    assert_eq!(released(&p.net_events(), n), [cause(18)]);
    assert_eq!(p.sent_cause(Dir::ToUser, M::ReleaseComplete), Some(102));
}

#[test]
fn t305_disconnect_unanswered_then_release() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    p.drop_next(Dir::ToNet, M::Disconnect, 1);
    p.user.disconnect(p.now, u, cause(16)).unwrap();
    p.secs(29);
    assert_eq!(p.user.call_state(u), Some(V::DisconnectRequest));
    p.secs(1);
    assert_eq!(p.sent_cause(Dir::ToNet, M::Release), Some(16));
    assert_eq!(released(&p.user_events(), u), [cause(16)]);
    assert_eq!(released(&p.net_events(), n), [cause(16)]);
}

#[test]
fn t308_release_retransmitted_once() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    p.drop_next(Dir::ToNet, M::Release, 1);
    p.net.disconnect(p.now, n, cause(16)).unwrap();
    p.settle();
    assert_eq!(p.user.call_state(u), Some(V::ReleaseRequest));
    p.secs(4);
    assert_eq!(
        p.sent_kinds(Dir::ToNet)[p.sent_kinds(Dir::ToNet).len() - 2..],
        [M::Release, M::Release]
    );
    assert_eq!(released(&p.user_events(), u), [cause(16)]);
    assert_eq!(released(&p.net_events(), n), [cause(16)]);
}

#[test]
fn t308_twice_ends_the_call_and_restarts_the_channel() {
    let mut p = Pair::e1();
    let (u, n, ch) = p.user_call_answered("1");
    p.drop_next(Dir::ToNet, M::Release, 2);
    p.net.disconnect(p.now, n, cause(16)).unwrap();
    p.settle();
    p.secs(8);
    // The RESTART cleared the network's call (still waiting on T305)
    // and was acknowledged: the channel is back.
    assert_eq!(
        p.user_events(),
        [
            CallEvent::Disconnected {
                call: u,
                cause: cause(16),
                inband: false
            },
            CallEvent::Released {
                call: u,
                cause: cause(16)
            },
            CallEvent::ChannelsRestarted { channels: vec![ch] }
        ]
    );
    assert_eq!(released(&p.net_events(), n), [cause(16)]);
    assert!(p.sent_kinds(Dir::ToNet).ends_with(&[M::Restart]));
    assert!(p.sent_kinds(Dir::ToUser).ends_with(&[M::RestartAck]));
    assert_eq!(p.user.free_channels(), 30);
    assert_eq!(p.net.free_channels(), 30);
}

#[test]
fn t310_no_progress_after_call_proceeding() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_places(call_to("1"));
    p.net.proceeding(p.now, n).unwrap();
    p.secs(29);
    assert_eq!(p.user.call_state(u), Some(V::OutgoingProceeding));
    p.secs(1);
    assert_eq!(p.sent_cause(Dir::ToNet, M::Disconnect), Some(102));
    assert_eq!(released(&p.user_events(), u), [cause(102)]);
    assert_eq!(released(&p.net_events(), n), [cause(102)]);
}

#[test]
fn t313_connect_acknowledge_lost() {
    let mut p = Pair::e1();
    let (n, u, _) = p.net_places(call_to("1"));
    p.drop_next(Dir::ToUser, M::ConnectAck, 1);
    p.user.connect(p.now, u).unwrap();
    p.settle();
    assert!(connected(&p.net_events(), n));
    p.secs(4);
    assert_eq!(p.sent_cause(Dir::ToNet, M::Disconnect), Some(102));
    assert_eq!(released(&p.user_events(), u), [cause(102)]);
    assert_eq!(released(&p.net_events(), n), [cause(102)]);
}
