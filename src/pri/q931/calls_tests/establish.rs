//! Calls set up both ways, en-bloc and in overlap, on E1/ETSI and
//! T1/NI-2.

use super::harness::*;
use crate::codec::Law;
use crate::pri::q931::ie::{CallStateValue as V, ChannelId, Ia5};
use crate::pri::q931::{CallEvent, ChannelSel, Config, MessageType as M, Side, Variant};

#[test]
fn outgoing_call_proceeds_alerts_and_is_answered() {
    let mut p = Pair::e1();
    let u = p.user.setup(p.now, call_to("3125550100")).unwrap();
    assert_eq!(p.user.call_state(u), Some(V::CallInitiated));
    p.settle();
    let ev = p.net_events();
    let Some(CallEvent::Incoming(i)) = ev.first() else {
        panic!("{ev:?}")
    };
    let n = i.call;
    // The user side hunts from the top of the span.
    assert_eq!(i.channel, 31);
    assert_eq!(i.called.as_ref().unwrap().digits.as_str(), "3125550100");
    assert!(i.sending_complete);
    assert_eq!(i.bearer.law(), Some(Law::Alaw));
    assert_eq!(p.net.call_state(n), Some(V::CallInitiated));

    p.net.proceeding(p.now, n).unwrap();
    p.settle();
    assert_eq!(
        p.user_events(),
        [CallEvent::Proceeding {
            call: u,
            channel: Some(31)
        }]
    );
    assert_eq!(p.user.call_state(u), Some(V::OutgoingProceeding));
    assert_eq!(p.net.call_state(n), Some(V::OutgoingProceeding));

    p.net.alerting(p.now, n, true).unwrap();
    p.settle();
    assert_eq!(
        p.user_events(),
        [CallEvent::Alerting {
            call: u,
            channel: Some(31),
            inband: true
        }]
    );
    assert_eq!(p.user.call_state(u), Some(V::CallDelivered));

    p.net.connect(p.now, n).unwrap();
    p.settle();
    assert_eq!(
        p.net_events(),
        [CallEvent::Connected {
            call: n,
            channel: 31
        }]
    );
    assert_eq!(
        p.user_events(),
        [CallEvent::Connected {
            call: u,
            channel: 31
        }]
    );
    assert_eq!(p.sent_kinds(Dir::ToNet), [M::Setup, M::ConnectAck]);
    assert_eq!(
        p.sent_kinds(Dir::ToUser),
        [M::CallProceeding, M::Alerting, M::Connect]
    );
    // The first answer named the channel, exclusively; later ones not.
    let answers: Vec<_> = p
        .log
        .iter()
        .filter(|(d, _)| *d == Dir::ToUser)
        .map(|(_, m)| m.channel_id().map(|c| c.unwrap().sel()))
        .collect();
    assert_eq!(answers, [Some(Some(ChannelSel::Exclusive(31))), None, None]);
    // An active call has no timer running.
    assert_eq!(p.user.poll_timeout(), None);
    assert_eq!(p.net.poll_timeout(), None);
    p.secs(3600);
    assert_eq!(p.user.call_state(u), Some(V::Active));
    assert_eq!(p.net.call_state(n), Some(V::Active));
    assert!(p.user_events().is_empty());
}

#[test]
fn incoming_call_to_the_user_is_routed_and_answered() {
    let mut p = Pair::e1();
    let mut req = call_to("100");
    req.calling = None;
    let n = p.net.setup(p.now, req).unwrap();
    p.settle();
    let (u, ch) = incoming(&p.user_events()).unwrap();
    // The network hunts from the bottom and names the channel outright.
    assert_eq!(ch, 1);
    assert_eq!(p.user.call_state(u), Some(V::CallPresent));
    assert_eq!(p.net.call_state(n), Some(V::CallPresent));
    let setup = &p.log[0].1;
    assert_eq!(
        setup.channel_id().unwrap().unwrap().sel(),
        Some(ChannelSel::Exclusive(1))
    );

    p.user.alerting(p.now, u, false).unwrap();
    p.settle();
    assert_eq!(p.net.call_state(n), Some(V::CallReceived));
    assert!(matches!(
        p.net_events()[..],
        [CallEvent::Alerting {
            channel: Some(1),
            inband: false,
            ..
        }]
    ));
    // The user is not active until the network acknowledges its CONNECT.
    p.hold.insert(Dir::ToUser);
    p.user.connect(p.now, u).unwrap();
    p.settle();
    assert_eq!(p.user.call_state(u), Some(V::ConnectRequest));
    assert!(p.user_events().is_empty());
    assert!(connected(&p.net_events(), n));
    p.hold.clear();
    p.settle();
    assert!(connected(&p.user_events(), u));
    assert_eq!(p.user.call_state(u), Some(V::Active));
    assert_eq!(p.sent_kinds(Dir::ToNet), [M::Alerting, M::Connect]);
    assert_eq!(p.sent_kinds(Dir::ToUser), [M::Setup, M::ConnectAck]);
}

#[test]
fn overlap_receiving_collects_digits_until_complete_or_t302() {
    let mut p = Pair::e1();
    let mut req = call_to("12");
    req.sending_complete = false;
    let n = p.net.setup(p.now, req).unwrap();
    p.settle();
    let ev = p.user_events();
    let Some(CallEvent::Incoming(i)) = ev.first() else {
        panic!("{ev:?}")
    };
    let u = i.call;
    assert!(!i.sending_complete);
    p.user.setup_ack(p.now, u).unwrap();
    p.settle();
    assert_eq!(p.user.call_state(u), Some(V::OverlapReceiving));
    assert_eq!(
        p.net_events(),
        [CallEvent::SetupAcknowledged {
            call: n,
            channel: Some(1)
        }]
    );
    p.net.information(p.now, n, &called("34"), false).unwrap();
    p.settle();
    let digits = |d: &str, complete| CallEvent::Digits {
        call: u,
        digits: Ia5::new(d).unwrap(),
        complete,
    };
    assert_eq!(p.user_events(), [digits("34", false)]);
    p.net.information(p.now, n, &called("5"), true).unwrap();
    p.settle();
    assert_eq!(p.user_events(), [digits("5", true)]);
    p.user.connect(p.now, u).unwrap();
    p.settle();
    assert!(connected(&p.net_events(), n));
    assert!(connected(&p.user_events(), u));

    // Another caller stops dialling: T302 (15 s) says the number is
    // whatever came so far.
    let mut req = call_to("7");
    req.sending_complete = false;
    p.net.setup(p.now, req).unwrap();
    p.settle();
    let (u2, _) = incoming(&p.user_events()).unwrap();
    p.user.setup_ack(p.now, u2).unwrap();
    p.secs(14);
    assert!(p.user_events().is_empty());
    p.secs(1);
    assert_eq!(
        p.user_events(),
        [CallEvent::Digits {
            call: u2,
            digits: Ia5::default(),
            complete: true
        }]
    );
    // Answering out of order is refused and sends nothing.
    let before = p.log.len();
    assert!(p.user.setup_ack(p.now, u2).is_err());
    assert!(p.net.alerting(p.now, n, false).is_err());
    p.settle();
    assert_eq!(p.log.len(), before);
}

#[test]
fn ni2_t1_call_uses_mu_law_and_no_sending_complete() {
    let mut p = Pair::with(
        Config::new(Side::User, Variant::Ni2),
        Config::new(Side::Network, Variant::Ni2),
    );
    assert_eq!(p.user.free_channels(), 23);
    let mut req = call_to("2125551234");
    req.calling_name = Some(Ia5::new("Jane Doe").unwrap());
    let u = p.user.setup(p.now, req).unwrap();
    p.settle();
    let ev = p.net_events();
    let Some(CallEvent::Incoming(i)) = ev.first() else {
        panic!("{ev:?}")
    };
    assert_eq!(i.channel, 23);
    assert_eq!(i.bearer.law(), Some(Law::Ulaw));
    assert!(!i.sending_complete);
    assert_eq!(i.calling_name.as_ref().map(Ia5::as_str), Some("Jane Doe"));
    let n = i.call;
    p.net.connect(p.now, n).unwrap();
    p.settle();
    assert!(connected(&p.user_events(), u));
    // A T1 has no channel 24 (the D-channel) or 31.
    let mut req = call_to("1");
    req.channel = ChannelSel::Exclusive(24);
    assert_eq!(
        p.user.setup(p.now, req),
        Err(crate::pri::q931::SetupError::NoSuchChannel(24))
    );
}

#[test]
fn network_may_move_a_preferred_channel() {
    // The network serves channels 1–2 only; the user prefers 31.
    let mut net = Config::new(Side::Network, Variant::Etsi);
    net.b_channels = vec![1, 2];
    let mut p = Pair::with(Config::new(Side::User, Variant::Etsi), net);
    let (u, n, ch) = p.user_places(call_to("1"));
    assert_eq!(ch, 1);
    // Until the network answers, the user holds its own pick.
    assert_eq!(p.user.channel(u), Some(31));
    p.net.proceeding(p.now, n).unwrap();
    p.settle();
    assert_eq!(p.user.channel(u), Some(1));
    assert_eq!(p.user.channel_holder(31), None);
    assert_eq!(
        ChannelId::from_sel(ChannelSel::Exclusive(1)),
        p.log[1].1.channel_id().unwrap().unwrap()
    );
}
