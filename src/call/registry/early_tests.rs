//! Early media on outbound legs refines their outcome (virtual clock).

use std::time::{Duration, Instant, SystemTime};

use super::early::SIT_AFTER_ANSWER;
use super::*;
use crate::call::trunks::{TrunkLimits, Trunks};
use crate::media::sit::{EarlyMedia, SitCode};

fn trunks() -> Trunks {
    Trunks::new(vec![TrunkLimits {
        name: "carrier".into(),
        max_channels: 10,
        cps: 10,
        ring_timeout: Duration::from_secs(30),
        caller_id: None,
    }])
}

fn reg(t0: Instant) -> Registry {
    Registry::new(Vec::new(), t0, SystemTime::UNIX_EPOCH, 3).with_trunks(trunks())
}

fn outs(r: &mut Registry) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

/// Places a call and returns its leg.
fn placed(r: &mut Registry, t0: Instant) -> LegId {
    r.originate(
        t0,
        OriginateRequest {
            target: "15551234".into(),
            script: Some("blast.rhai".into()),
            ..OriginateRequest::default()
        },
    );
    match &outs(r)[..] {
        [Output::Leg(l, LegCommand::Originate { .. })] => *l,
        o => panic!("{o:?}"),
    }
}

fn refused(status: u16) -> LegEvent {
    let cause = Cause::from_sip_status(status);
    LegEvent::Ended(LegEnd {
        kind: EndKind::Unanswered(Unanswered::Refused {
            cause,
            sip_status: Some(status),
        }),
        cause,
        sip_status: Some(status),
        reason: None,
    })
}

fn cdr(o: &[Output]) -> CdrRecord {
    o.iter()
        .find_map(|x| match x {
            Output::Cdr(c) => Some(c.clone()),
            _ => None,
        })
        .expect("a CDR")
}

#[test]
fn a_sit_heard_before_a_404_makes_it_unreachable_sit_vc() {
    let t0 = Instant::now();
    let mut r = reg(t0);
    let leg = placed(&mut r, t0);
    r.leg_event(t0, leg, LegEvent::Progress { early_media: false });
    assert!(outs(&mut r).is_empty(), "no classifier without early media");
    r.leg_event(t0, leg, LegEvent::Progress { early_media: true });
    assert_eq!(
        outs(&mut r),
        vec![Output::ClassifyEarlyMedia { leg, on: true }]
    );
    // A second 183 does not start it again (its state would be lost).
    r.leg_event(t0, leg, LegEvent::Progress { early_media: true });
    assert!(outs(&mut r).is_empty());
    r.early_media_heard(leg, EarlyMedia::Ringback);
    r.early_media_heard(leg, EarlyMedia::Sit(SitCode::Vc));
    // Less telling findings after the SIT do not replace it.
    r.early_media_heard(leg, EarlyMedia::Announcement);
    r.leg_event(t0 + Duration::from_secs(3), leg, refused(404));
    let c = cdr(&outs(&mut r));
    assert_eq!(
        (
            c.outcome,
            c.refined_outcome.as_str(),
            c.early_media.as_deref()
        ),
        ("unreachable", "unreachable:sit-vc", Some("sit-vc"))
    );
}

#[test]
fn speech_before_a_480_is_no_answer_announcement() {
    let t0 = Instant::now();
    let mut r = reg(t0);
    let leg = placed(&mut r, t0);
    r.leg_event(t0, leg, LegEvent::Progress { early_media: true });
    let _ = outs(&mut r);
    r.early_media_heard(leg, EarlyMedia::Announcement);
    r.leg_event(t0 + Duration::from_secs(5), leg, refused(480));
    let c = cdr(&outs(&mut r));
    assert_eq!(
        (c.outcome, c.refined_outcome.as_str()),
        ("no_answer", "no_answer:announcement")
    );
}

#[test]
fn after_the_answer_only_a_sit_counts_and_only_for_a_while() {
    let t0 = Instant::now();
    let mut r = reg(t0);
    let leg = placed(&mut r, t0);
    r.leg_event(t0, leg, LegEvent::Progress { early_media: true });
    let _ = outs(&mut r);
    r.early_media_heard(leg, EarlyMedia::Ringback);
    let answer = t0 + Duration::from_secs(2);
    r.leg_event(answer, leg, LegEvent::Answered);
    let o = outs(&mut r);
    assert!(
        !o.iter()
            .any(|x| matches!(x, Output::ClassifyEarlyMedia { .. })),
        "the classifier listens on: {o:?}"
    );
    // The callee's "hello?" is no operator announcement.
    r.early_media_heard(leg, EarlyMedia::Announcement);
    assert_eq!(r.poll_timeout(), Some(answer + SIT_AFTER_ANSWER));
    r.handle_timeout(answer + SIT_AFTER_ANSWER);
    assert_eq!(
        outs(&mut r),
        vec![Output::ClassifyEarlyMedia { leg, on: false }]
    );
    assert_eq!(r.poll_timeout(), None);
    r.early_media_heard(leg, EarlyMedia::Sit(SitCode::Vc));
    let call = r.call_of(leg).unwrap();
    r.script_done(
        t0 + Duration::from_secs(9),
        call,
        "completed".into(),
        vec![],
    );
    let c = cdr(&outs(&mut r));
    assert_eq!(
        (
            c.outcome,
            c.refined_outcome.as_str(),
            c.early_media.as_deref()
        ),
        ("answered", "answered", Some("ringback"))
    );
}

#[test]
fn a_carrier_that_answers_to_play_a_sit_is_refined() {
    let t0 = Instant::now();
    let mut r = reg(t0);
    let leg = placed(&mut r, t0);
    r.leg_event(t0, leg, LegEvent::Progress { early_media: false });
    let answer = t0 + Duration::from_secs(1);
    r.leg_event(answer, leg, LegEvent::Answered);
    let o = outs(&mut r);
    assert!(
        o.contains(&Output::ClassifyEarlyMedia { leg, on: true }),
        "no early media: the classifier starts at the answer: {o:?}"
    );
    r.early_media_heard(leg, EarlyMedia::Sit(SitCode::Vc));
    r.handle_timeout(answer + SIT_AFTER_ANSWER);
    let call = r.call_of(leg).unwrap();
    r.script_done(
        t0 + Duration::from_secs(6),
        call,
        "completed".into(),
        vec![],
    );
    let c = cdr(&outs(&mut r));
    assert_eq!(
        (
            c.outcome,
            c.refined_outcome.as_str(),
            c.early_media.as_deref()
        ),
        ("answered", "unreachable:sit-vc", Some("sit-vc"))
    );
}

#[test]
fn without_early_media_the_refined_outcome_is_the_outcome() {
    let t0 = Instant::now();
    let mut r = reg(t0);
    let leg = placed(&mut r, t0);
    r.leg_event(t0, leg, refused(486));
    let c = cdr(&outs(&mut r));
    assert_eq!(
        (c.outcome, c.refined_outcome.as_str(), c.early_media),
        ("busy", "busy", None)
    );
}

/// An inbound call whose script dials `15551234` (with `amd`): the
/// registry and the party's leg.
fn dialing(t0: Instant, amd: bool) -> (Registry, LegId) {
    let mut r = Registry::new(
        vec![crate::config::Route {
            number: None,
            script: "bridge.rhai".into(),
            lang: None,
        }],
        t0,
        SystemTime::UNIX_EPOCH,
        3,
    )
    .with_trunks(trunks());
    let caller = r.incoming(
        t0,
        IncomingLeg {
            from: "sip:alice@example.org".into(),
            to: "100".into(),
            external_id: "in-1".into(),
            transport: "sip",
            ..IncomingLeg::default()
        },
    );
    r.leg_event(t0, caller, LegEvent::MediaReady);
    let call = r.call_of(caller).unwrap();
    let _ = outs(&mut r);
    r.dial(
        t0,
        call,
        crate::call::control::DialRequest {
            target: "15551234".into(),
            trunk: Some("carrier".into()),
            amd,
            ..Default::default()
        },
    );
    let party = outs(&mut r)
        .iter()
        .find_map(|o| match o {
            Output::Leg(l, LegCommand::Originate { .. }) => Some(*l),
            _ => None,
        })
        .expect("the party is dialed");
    (r, party)
}

fn dial_result(o: Vec<Output>) -> crate::call::control::DialResult {
    o.into_iter()
        .find_map(|o| match o {
            Output::DialEnded { result, .. } => Some(result),
            _ => None,
        })
        .expect("dial() is told")
}

#[test]
fn a_dialed_party_s_sit_refines_the_dial_result() {
    let t0 = Instant::now();
    let (mut r, party) = dialing(t0, false);
    r.leg_event(t0, party, LegEvent::Progress { early_media: true });
    assert!(outs(&mut r).contains(&Output::ClassifyEarlyMedia {
        leg: party,
        on: true
    }));
    r.early_media_heard(party, EarlyMedia::Sit(SitCode::Vc));
    r.leg_event(t0 + Duration::from_secs(2), party, refused(404));
    let result = dial_result(outs(&mut r));
    assert_eq!(
        (
            result.outcome.as_str(),
            result.refined_outcome.as_str(),
            result.answered_by
        ),
        ("unreachable", "unreachable:sit-vc", None)
    );
}

#[test]
fn dial_with_amd_joins_only_after_the_verdict_and_returns_it() {
    let t0 = Instant::now();
    let (mut r, party) = dialing(t0, true);
    r.leg_event(t0 + Duration::from_secs(3), party, LegEvent::Answered);
    let o = outs(&mut r);
    assert!(o.contains(&Output::DetectMachine { leg: party }), "{o:?}");
    assert!(
        !o.iter().any(|x| matches!(x, Output::Join { .. })),
        "joined before the verdict: {o:?}"
    );
    let t = t0 + Duration::from_secs(6);
    r.dial_amd_verdict(t, party, "machine");
    let o = outs(&mut r);
    assert_eq!(
        o.iter()
            .filter(|x| matches!(x, Output::Join { .. }))
            .count(),
        2,
        "{o:?}"
    );
    // A second verdict changes nothing.
    r.dial_amd_verdict(t, party, "human");
    assert!(outs(&mut r).is_empty());
    r.leg_event(
        t0 + Duration::from_secs(20),
        party,
        LegEvent::Ended(LegEnd::new(EndKind::RemoteHangup, Cause::NORMAL_CLEARING)),
    );
    let result = dial_result(outs(&mut r));
    assert_eq!(
        (result.outcome.as_str(), result.answered_by.as_deref()),
        ("answered", Some("machine"))
    );
}

#[test]
fn dial_without_amd_joins_at_the_answer() {
    let t0 = Instant::now();
    let (mut r, party) = dialing(t0, false);
    r.leg_event(t0 + Duration::from_secs(3), party, LegEvent::Answered);
    let o = outs(&mut r);
    assert!(!o.contains(&Output::DetectMachine { leg: party }));
    assert_eq!(
        o.iter()
            .filter(|x| matches!(x, Output::Join { .. }))
            .count(),
        2,
        "{o:?}"
    );
}
