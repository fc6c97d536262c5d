//! Recovery and capacity: the D-channel lost and regained (T309),
//! RESTART both ways (T316), glare on a channel, a full E1.

use std::time::Duration;

use super::harness::*;
use crate::pri::q931::ie::{CallStateValue as V, RestartClass};
use crate::pri::q931::{
    CallEvent, CallRef, ChannelSel, Config, Message, MessageType as M, SetupError, Side, Variant,
};

#[test]
fn link_loss_clears_calls_not_active_and_t309_the_rest() {
    let mut p = Pair::e1();
    let (u1, n1, ch1) = p.user_call_answered("1");
    let (u2, n2, _) = p.user_places(call_to("2"));
    p.net.alerting(p.now, n2, false).unwrap();
    p.settle();
    p.user_events();
    p.link_down();
    assert_eq!(released(&p.user_events(), u2), [cause(27)]);
    assert_eq!(released(&p.net_events(), n2), [cause(27)]);
    assert_eq!(p.user.call_state(u1), Some(V::Active));
    assert_eq!(p.user.setup(p.now, call_to("3")), Err(SetupError::LinkDown));
    p.secs(89);
    assert_eq!(p.net.call_state(n1), Some(V::Active));
    p.secs(1);
    assert_eq!(released(&p.user_events(), u1), [cause(27)]);
    assert_eq!(released(&p.net_events(), n1), [cause(27)]);
    assert_eq!(p.user.channel_holder(ch1), None);
    // Back later: nothing to check, calls can be placed again.
    p.link_up();
    assert!(p.log.iter().all(|(_, m)| m.kind != M::StatusEnquiry));
    let (u, _, _) = p.user_places(call_to("4"));
    assert_eq!(p.user.call_state(u), Some(V::CallInitiated));
}

#[test]
fn link_back_within_t309_keeps_active_calls() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    p.link_down();
    p.secs(10);
    p.link_up();
    // Each side asks the other about its surviving call.
    assert!(p
        .sent_kinds(Dir::ToNet)
        .ends_with(&[M::StatusEnquiry, M::Status]));
    assert!(p
        .sent_kinds(Dir::ToUser)
        .ends_with(&[M::StatusEnquiry, M::Status]));
    p.secs(200);
    assert_eq!(p.user.call_state(u), Some(V::Active));
    assert_eq!(p.net.call_state(n), Some(V::Active));
    assert!(p.user_events().is_empty());
    p.user.disconnect(p.now, u, cause(16)).unwrap();
    p.settle();
    assert_eq!(released(&p.net_events(), n), [cause(16)]);
}

#[test]
fn link_back_but_the_peer_lost_the_call() {
    let mut net = Config::new(Side::Network, Variant::Etsi);
    net.timers.t309 = Duration::from_secs(5);
    let mut p = Pair::with(Config::new(Side::User, Variant::Etsi), net);
    let (u, n, _) = p.user_call_answered("1");
    p.link_down();
    p.secs(10);
    assert_eq!(released(&p.net_events(), n), [cause(27)]);
    p.link_up();
    // The network answers the user's STATUS ENQUIRY with Null.
    assert_eq!(released(&p.user_events(), u), [cause(41)]);
    assert_eq!(p.user.free_channels(), 30);
}

#[test]
fn restart_from_the_network_clears_the_channel_and_is_acknowledged() {
    let mut p = Pair::e1();
    let (u, n, ch) = p.user_call_answered("1");
    let (u2, _, ch2) = p.user_call_answered("2");
    p.hold.insert(Dir::ToUser);
    p.net.restart_channel(p.now, ch).unwrap();
    p.settle();
    assert_eq!(released(&p.net_events(), n), [cause(41)]);
    // Out of service until acknowledged.
    let mut req = call_to("3");
    req.channel = ChannelSel::Exclusive(ch);
    assert_eq!(
        p.net.setup(p.now, req.clone()),
        Err(SetupError::ChannelBusy(ch))
    );
    p.hold.clear();
    p.settle();
    assert_eq!(
        p.user_events(),
        [
            CallEvent::Released {
                call: u,
                cause: cause(41)
            },
            CallEvent::ChannelsRestarted { channels: vec![ch] }
        ]
    );
    assert_eq!(
        p.net_events(),
        [CallEvent::ChannelsRestarted { channels: vec![ch] }]
    );
    let ack = &p.log.last().unwrap().1;
    assert_eq!(ack.kind, M::RestartAck);
    assert!(ack.call_ref.is_global());
    assert_eq!(ack.channel_id().unwrap().unwrap().numbers(), [ch]);
    // The other call is untouched and the channel is usable again.
    assert_eq!(p.user.call_state(u2), Some(V::Active));
    assert_eq!(p.user.channel(u2), Some(ch2));
    let (_, _, got) = p.net_places(req);
    assert_eq!(got, ch);
}

#[test]
fn restart_all_from_the_user_clears_every_call() {
    let mut p = Pair::e1();
    let calls: Vec<_> = (0..3)
        .map(|i| p.user_call_answered(&i.to_string()))
        .collect();
    let (n4, u4, _) = p.net_places(call_to("9"));
    p.user.restart_all(p.now);
    p.settle();
    for (u, n, _) in &calls {
        assert_eq!(p.user.call_state(*u), None);
        assert_eq!(p.net.call_state(*n), None);
    }
    let ev = p.net_events();
    assert_eq!(released(&ev, n4), [cause(41)]);
    assert!(ev.contains(&CallEvent::ChannelsRestarted {
        channels: (1..=31).filter(|c| *c != 16).collect()
    }));
    assert_eq!(released(&p.user_events(), u4), [cause(41)]);
    let restart = p.log.iter().find(|(_, m)| m.kind == M::Restart).unwrap();
    assert_eq!(
        restart
            .1
            .ies
            .first::<crate::pri::q931::ie::RestartIndicator>()
            .unwrap()
            .unwrap()
            .class,
        RestartClass::AllInterfaces
    );
    assert_eq!(p.user.free_channels(), 30);
    assert_eq!(p.net.free_channels(), 30);
}

#[test]
fn unacknowledged_restart_gives_up_and_returns_the_channel() {
    let mut p = Pair::e1();
    p.drop_next(Dir::ToUser, M::Restart, 2);
    p.net.restart_channel(p.now, 5).unwrap();
    p.settle();
    assert_eq!(p.net.free_channels(), 29);
    p.secs(120);
    assert_eq!(p.sent_kinds(Dir::ToUser), [M::Restart, M::Restart]);
    p.secs(120);
    assert_eq!(
        p.net_events(),
        [CallEvent::RestartFailed { channels: vec![5] }]
    );
    assert_eq!(p.net.free_channels(), 30);
    assert_eq!(p.net.poll_timeout(), None);
}

#[test]
fn bad_restarts_get_status() {
    let mut p = Pair::e1();
    let cases = [
        (Message::new(CallRef::global(true), M::Restart), 96),
        (
            Message::new(CallRef::global(true), M::Restart).with(
                &crate::pri::q931::ie::RestartIndicator {
                    class: RestartClass::Indicated,
                },
            ),
            96,
        ),
        (Message::restart(RestartClass::Indicated, &[16]), 82),
        (Message::restart(RestartClass::Other(3), &[]), 100),
    ];
    for (msg, c) in cases {
        p.inject(Dir::ToUser, msg.to_bytes().unwrap());
        p.settle();
        assert_eq!(p.sent_kinds(Dir::ToNet).last(), Some(&M::Status));
        assert_eq!(p.sent_cause(Dir::ToNet, M::Status), Some(c));
    }
    assert!(p.user_events().is_empty());
}

/// Both sides send SETUP for channel 5 at once; `user` and `net` say how.
fn glare(user: ChannelSel, net: ChannelSel) -> (Pair, crate::pri::q931::CallId) {
    let mut p = Pair::e1();
    p.hold.insert(Dir::ToNet);
    p.hold.insert(Dir::ToUser);
    let mut req = call_to("1");
    req.channel = user;
    let u = p.user.setup(p.now, req).unwrap();
    let mut req = call_to("2");
    req.channel = net;
    p.net.setup(p.now, req).unwrap();
    p.settle();
    p.hold.clear();
    p.settle();
    (p, u)
}

#[test]
fn glare_both_exclusive_the_network_wins() {
    let (mut p, u) = glare(ChannelSel::Exclusive(5), ChannelSel::Exclusive(5));
    let ev = p.user_events();
    assert_eq!(released(&ev, u), [cause(34)]);
    let (_, ch) = incoming(&ev).unwrap();
    assert_eq!(ch, 5);
    assert_eq!(p.sent_cause(Dir::ToUser, M::ReleaseComplete), Some(34));
}

#[test]
fn glare_both_preferred_the_user_gets_another_channel() {
    let (mut p, u) = glare(ChannelSel::Preferred(5), ChannelSel::Preferred(5));
    let (uin, ch) = incoming(&p.user_events()).unwrap();
    assert_eq!(ch, 5);
    let (n, nch) = incoming(&p.net_events()).unwrap();
    assert_eq!(nch, 1);
    p.net.proceeding(p.now, n).unwrap();
    p.user.connect(p.now, uin).unwrap();
    p.settle();
    assert_eq!(p.user.channel(u), Some(1));
    assert_eq!(p.user.channel(uin), Some(5));
}

#[test]
fn glare_exclusive_beats_preferred() {
    let (mut p, u) = glare(ChannelSel::Exclusive(5), ChannelSel::Preferred(5));
    let (n, nch) = incoming(&p.net_events()).unwrap();
    assert_eq!(nch, 5);
    // The user picks another channel for the network's call (from the
    // top), and tells it so in its first answer.
    let (uin, ch) = incoming(&p.user_events()).unwrap();
    assert_eq!(ch, 31);
    p.user.alerting(p.now, uin, false).unwrap();
    p.net.connect(p.now, n).unwrap();
    p.settle();
    assert_eq!(p.user.channel(u), Some(5));
    assert!(connected(&p.user_events(), u));
    assert_eq!(p.net.channel(p.net.channel_holder(31).unwrap()), Some(31));
}

#[test]
fn a_full_e1_refuses_the_31st_call_with_34() {
    let mut p = Pair::e1();
    let mut calls = Vec::new();
    for i in 0..15 {
        calls.push(p.user_call_answered(&format!("1{i}")));
        let (n, u, ch) = p.net_places(call_to(&format!("2{i}")));
        p.user.connect(p.now, u).unwrap();
        p.settle();
        calls.push((u, n, ch));
    }
    let mut channels: Vec<u8> = calls.iter().map(|c| c.2).collect();
    channels.sort_unstable();
    assert_eq!(channels, (1..=31).filter(|c| *c != 16).collect::<Vec<_>>());
    assert_eq!(p.user.free_channels(), 0);
    let err = p.user.setup(p.now, call_to("31")).unwrap_err();
    assert_eq!((err, err.cause()), (SetupError::NoChannel, cause(34)));
    assert_eq!(
        p.net.setup(p.now, call_to("31")),
        Err(SetupError::NoChannel)
    );
    // A SETUP that gets through anyway is refused with 34.
    let stray = crate::pri::q931::Message::setup(
        CallRef::new(999, true),
        &crate::pri::q931::SetupParams {
            variant: Variant::Etsi,
            bearer: crate::pri::q931::ie::BearerCapability::g711(
                crate::pri::q931::ie::TransferCapability::Speech,
                crate::codec::Law::Alaw,
            ),
            channel: ChannelSel::Any,
            called: called("1"),
            calling: None,
            calling_name: None,
            sending_complete: true,
            progress: None,
        },
    );
    p.inject(Dir::ToNet, stray.to_bytes().unwrap());
    p.settle();
    assert_eq!(p.sent_cause(Dir::ToUser, M::ReleaseComplete), Some(34));
    // One call ends; its channel serves the next.
    let (u, n, ch) = calls[7];
    p.net.disconnect(p.now, n, cause(16)).unwrap();
    p.settle();
    assert_eq!(released(&p.user_events(), u), [cause(16)]);
    let (_, _, again) = p.user_places(call_to("32"));
    assert_eq!(again, ch);
}
