//! Q.931 §5.8: what call control does with messages it did not expect —
//! duplicated and reordered answers, unknown call references, missing or
//! bad elements, unknown message types, STATUS ENQUIRY and STATUS.

use super::harness::*;
use crate::codec::Law;
use crate::pri::q931::ie::{
    BearerCapability, CallState, CallStateValue as V, ChannelId, TransferCapability,
};
use crate::pri::q931::{
    CallEvent, CallRef, ChannelSel, InfoElement, Message, MessageType as M, RawIe,
};

fn raw(id: u8, contents: &[u8]) -> RawIe {
    RawIe {
        codeset: 0,
        id,
        contents: contents.to_vec(),
    }
}

/// A SETUP from the user's side with call reference `value`.
fn setup(value: u16) -> Message {
    Message::new(CallRef::new(value, true), M::Setup)
        .with(&BearerCapability::g711(
            TransferCapability::Speech,
            Law::Alaw,
        ))
        .with(&ChannelId::from_sel(ChannelSel::Any))
        .with(&called("1"))
}

fn bytes(m: &Message) -> Vec<u8> {
    m.to_bytes().unwrap()
}

/// The messages sent `dir` after the first `mark` log entries.
fn since(p: &Pair, mark: usize, dir: Dir) -> Vec<Message> {
    p.log[mark..]
        .iter()
        .filter(|(d, _)| *d == dir)
        .map(|(_, m)| m.clone())
        .collect()
}

fn cause_and_diag(m: &Message) -> (u8, Vec<u8>) {
    let c = m.cause().unwrap().unwrap();
    (c.cause.value(), c.diagnostics)
}

#[test]
fn duplicated_answers_get_status_101_and_the_call_survives() {
    let mut p = Pair::e1();
    p.duplicate_next(Dir::ToNet, M::Setup);
    let u = p.user.setup(p.now, call_to("1")).unwrap();
    p.settle();
    let ev = p.net_events();
    assert_eq!(ev.len(), 1, "one call for a repeated SETUP: {ev:?}");
    let (n, _) = incoming(&ev).unwrap();
    for kind in [M::CallProceeding, M::Alerting, M::Connect] {
        p.duplicate_next(Dir::ToUser, kind);
    }
    p.net.proceeding(p.now, n).unwrap();
    p.settle();
    p.net.alerting(p.now, n, false).unwrap();
    p.settle();
    p.net.connect(p.now, n).unwrap();
    p.settle();
    let ev = p.user_events();
    let kinds: Vec<_> = ev.iter().map(std::mem::discriminant).collect();
    assert_eq!(kinds.len(), 3, "{ev:?}");
    assert!(connected(&ev, u));
    let statuses: Vec<_> = p
        .log
        .iter()
        .filter(|(d, m)| *d == Dir::ToNet && m.kind == M::Status)
        .map(|(_, m)| cause_and_diag(m).0)
        .collect();
    assert_eq!(statuses, [101, 101, 101]);
    assert_eq!(p.user.call_state(u), Some(V::Active));
    assert_eq!(p.net.call_state(n), Some(V::Active));
    // Clearing with every message doubled still releases once.
    for kind in [M::Disconnect, M::ReleaseComplete] {
        p.duplicate_next(Dir::ToUser, kind);
    }
    p.duplicate_next(Dir::ToNet, M::Release);
    p.net.disconnect(p.now, n, cause(16)).unwrap();
    p.settle();
    assert_eq!(released(&p.user_events(), u), [cause(16)]);
    assert_eq!(released(&p.net_events(), n), [cause(16)]);
}

#[test]
fn connect_overtaking_alerting_still_connects() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_places(call_to("1"));
    p.net.proceeding(p.now, n).unwrap();
    p.settle();
    p.hold.insert(Dir::ToUser);
    p.net.alerting(p.now, n, false).unwrap();
    p.net.connect(p.now, n).unwrap();
    p.settle();
    p.to_user.make_contiguous().reverse();
    p.hold.clear();
    p.settle();
    assert!(connected(&p.user_events(), u));
    assert_eq!(p.user.call_state(u), Some(V::Active));
    assert_eq!(p.net.call_state(n), Some(V::Active));
    assert_eq!(p.sent_cause(Dir::ToNet, M::Status), Some(101));
}

#[test]
fn unknown_call_references() {
    let mut p = Pair::e1();
    let user_msg = |value, from_originator, kind| {
        Message::new(
            CallRef {
                value,
                from_originator,
                len: 2,
            },
            kind,
        )
    };
    let cases: Vec<(Message, Option<(M, u8)>)> = vec![
        (
            user_msg(77, false, M::Disconnect).with(&p.user_cause(16)),
            Some((M::ReleaseComplete, 81)),
        ),
        (
            user_msg(78, true, M::Release),
            Some((M::ReleaseComplete, 81)),
        ),
        (
            user_msg(79, true, M::Alerting),
            Some((M::ReleaseComplete, 81)),
        ),
        (user_msg(80, true, M::ReleaseComplete), None),
        (user_msg(81, true, M::StatusEnquiry), Some((M::Status, 30))),
        (
            user_msg(82, true, M::Status)
                .with(&p.user_cause(30))
                .with(&CallState::new(V::Active)),
            Some((M::ReleaseComplete, 101)),
        ),
        (
            user_msg(83, true, M::Status)
                .with(&p.user_cause(30))
                .with(&CallState::new(V::Null)),
            None,
        ),
        // A SETUP whose flag claims we placed the call is ignored.
        (setup(84).reply_flag(), None),
        (Message::new(CallRef::dummy(), M::Facility), None),
        // The global call reference takes only RESTART, RESTART ACK and
        // STATUS.
        (
            Message::new(CallRef::global(true), M::StatusEnquiry),
            Some((M::Status, 81)),
        ),
    ];
    for (msg, want) in cases {
        let mark = p.log.len();
        p.inject(Dir::ToUser, bytes(&msg));
        p.settle();
        let got = since(&p, mark, Dir::ToNet);
        match want {
            None => assert!(got.is_empty(), "{msg:?} → {got:?}"),
            Some((kind, c)) => {
                assert_eq!(got.len(), 1, "{msg:?} → {got:?}");
                assert_eq!(got[0].kind, kind);
                assert_eq!(got[0].call_ref, msg.call_ref.reply());
                assert_eq!(cause_and_diag(&got[0]).0, c);
            }
        }
        if kind_is(&msg, M::StatusEnquiry) && !msg.call_ref.is_global() {
            let state = got[0].ies.first::<CallState>().unwrap().unwrap().state;
            assert_eq!(state, V::Null);
        }
    }
    // Not Q.931 at all: ignored.
    for junk in [
        &[][..],
        &[0x08],
        &[0x09, 0x02, 0x00, 0x01, 0x05],
        &[0x08, 0x03],
    ] {
        p.inject(Dir::ToUser, junk.to_vec());
    }
    p.settle();
    assert_eq!(p.user.call_count(), 0);
    assert!(p.user_events().is_empty());
    assert!(p.net_events().is_empty());
}

fn kind_is(m: &Message, k: M) -> bool {
    m.kind == k
}

trait ReplyFlag {
    fn reply_flag(self) -> Self;
}

impl ReplyFlag for Message {
    fn reply_flag(mut self) -> Message {
        self.call_ref = self.call_ref.reply();
        self
    }
}

impl Pair {
    fn user_cause(&self, v: u8) -> crate::pri::q931::ie::CauseIe {
        crate::pri::q931::ie::CauseIe::new(cause(v), crate::pri::q931::ie::Location::PublicLocal)
    }
}

#[test]
fn bad_setups_are_refused_with_the_right_cause() {
    let mut p = Pair::e1();
    let no_bearer =
        Message::new(CallRef::new(100, true), M::Setup).with(&ChannelId::from_sel(ChannelSel::Any));
    let mut bad_bearer = Message::new(CallRef::new(101, true), M::Setup);
    bad_bearer.ies.push_raw(raw(0x04, &[0x80]));
    let data = Message::new(CallRef::new(102, true), M::Setup)
        .with(&BearerCapability::decode(&[0x88, 0x90]).unwrap());
    let mut ch16 = setup(103);
    ch16.ies = ch16.ies.iter().filter(|r| r.id != 0x18).cloned().collect();
    let ch16 = ch16.with(&ChannelId::from_sel(ChannelSel::Exclusive(16)));
    let mut must_understand = setup(104);
    must_understand.ies.push_raw(raw(0x01, &[0x00]));
    let mut bad_channel = Message::new(CallRef::new(105, true), M::Setup).with(
        &BearerCapability::g711(TransferCapability::Speech, Law::Alaw),
    );
    bad_channel.ies.push_raw(raw(0x18, &[]));
    let mut bad_called = setup(106);
    bad_called.ies = bad_called
        .ies
        .iter()
        .filter(|r| r.id != 0x70)
        .cloned()
        .collect();
    bad_called.ies.push_raw(raw(0x70, &[0x81, 0x1B]));
    let mut slot_map = Message::new(CallRef::new(107, true), M::Setup).with(
        &BearerCapability::g711(TransferCapability::Speech, Law::Alaw),
    );
    slot_map
        .ies
        .push_raw(raw(0x18, &[0xA9, 0x93, 0x80, 0x00, 0x01]));

    let cases: [(Message, u8, &[u8]); 8] = [
        (no_bearer, 96, &[0x04]),
        (bad_bearer, 100, &[0x04]),
        (data, 65, &[0x04]),
        (ch16, 82, &[]),
        (must_understand, 96, &[0x01]),
        (bad_channel, 100, &[0x18]),
        (bad_called, 100, &[0x70]),
        (slot_map, 6, &[]),
    ];
    for (msg, c, diag) in cases {
        let mark = p.log.len();
        p.inject(Dir::ToNet, bytes(&msg));
        p.settle();
        let got = since(&p, mark, Dir::ToUser);
        assert_eq!(got.len(), 1, "{msg:?} → {got:?}");
        assert_eq!(got[0].kind, M::ReleaseComplete);
        assert_eq!(cause_and_diag(&got[0]), (c, diag.to_vec()), "{msg:?}");
    }
    assert!(p.net_events().is_empty());
    assert_eq!(p.net.call_count(), 0);
    // A good one goes through.
    p.inject(Dir::ToNet, bytes(&setup(108)));
    p.settle();
    assert!(incoming(&p.net_events()).is_some());
}

#[test]
fn disconnect_without_cause_counts_as_31_and_release_says_96() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    // The user's call reference, as the network writes it.
    let cr = CallRef::new(1, false);
    p.inject(Dir::ToUser, bytes(&Message::new(cr, M::Disconnect)));
    p.settle();
    assert_eq!(p.sent_cause(Dir::ToNet, M::Release), Some(96));
    assert_eq!(released(&p.user_events(), u), [cause(31)]);
    // The network had not cleared: an unexpected RELEASE ends its call.
    assert_eq!(released(&p.net_events(), n), [cause(96)]);
}

#[test]
fn unknown_messages_on_a_call_get_status_97() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    let cr = CallRef::new(1, false);
    for kind in [M::Other(0x25), M::Facility] {
        let mark = p.log.len();
        p.inject(Dir::ToUser, bytes(&Message::new(cr, kind)));
        p.settle();
        let got = since(&p, mark, Dir::ToNet);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, M::Status);
        assert_eq!(cause_and_diag(&got[0]), (97, vec![kind.to_u8()]));
        let state = got[0].ies.first::<CallState>().unwrap().unwrap().state;
        assert_eq!(state, V::Active);
    }
    // An element that must be understood, in a known message: STATUS 96.
    let mut m = Message::new(cr, M::Progress);
    m.ies.push_raw(raw(0x02, &[0x00]));
    p.inject(Dir::ToUser, bytes(&m));
    p.settle();
    assert_eq!(p.sent_cause(Dir::ToNet, M::Status), Some(96));
    // NOTIFY needs nothing.
    let mark = p.log.len();
    p.inject(Dir::ToUser, bytes(&Message::new(cr, M::Notify)));
    p.settle();
    assert!(since(&p, mark, Dir::ToNet).is_empty());
    assert_eq!(p.user.call_state(u), Some(V::Active));
    assert_eq!(p.net.call_state(n), Some(V::Active));
}

#[test]
fn status_enquiry_is_answered_with_the_call_state() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    p.net.enquire(p.now, n).unwrap();
    p.settle();
    let status = &p.log.last().unwrap().1;
    assert_eq!(status.kind, M::Status);
    assert_eq!(cause_and_diag(status).0, 30);
    assert_eq!(
        status.ies.first::<CallState>().unwrap().unwrap().state,
        V::Active
    );
    // T322 stopped: nothing more is sent.
    let mark = p.log.len();
    p.secs(60);
    assert_eq!(p.log.len(), mark);
    assert_eq!(p.user.call_state(u), Some(V::Active));
    assert_eq!(p.net.call_state(n), Some(V::Active));

    // Unanswered twice: the call is released with 41.
    p.drop_next(Dir::ToNet, M::Status, 2);
    p.net.enquire(p.now, n).unwrap();
    p.secs(8);
    assert_eq!(p.sent_cause(Dir::ToUser, M::Release), Some(41));
    assert_eq!(released(&p.net_events(), n), [cause(41)]);
    assert_eq!(released(&p.user_events(), u), [cause(41)]);
}

#[test]
fn status_with_an_incompatible_state_clears_with_101() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    // A network-call state for the user's own call.
    let cr = CallRef::new(1, false);
    let m = Message::status(cr, p.user_cause(30), V::CallReceived);
    p.inject(Dir::ToUser, bytes(&m));
    p.settle();
    assert_eq!(p.sent_cause(Dir::ToNet, M::Release), Some(101));
    assert_eq!(released(&p.user_events(), u), [cause(101)]);
    assert_eq!(released(&p.net_events(), n), [cause(101)]);
}

#[test]
fn status_null_releases_locally() {
    let mut p = Pair::e1();
    let (u, n, _) = p.user_call_answered("1");
    let cr = CallRef::new(1, false);
    let mark = p.log.len();
    p.inject(
        Dir::ToUser,
        bytes(&Message::status(cr, p.user_cause(30), V::Null)),
    );
    p.settle();
    assert!(since(&p, mark, Dir::ToNet).is_empty());
    assert_eq!(released(&p.user_events(), u), [cause(41)]);
    // The network still had it; its DISCONNECT meets an unknown call.
    p.net.disconnect(p.now, n, cause(16)).unwrap();
    p.settle();
    assert_eq!(p.sent_cause(Dir::ToNet, M::ReleaseComplete), Some(81));
    assert_eq!(released(&p.net_events(), n), [cause(16)]);
    assert!(!p
        .user_events()
        .iter()
        .any(|e| matches!(e, CallEvent::Released { .. })));
}
