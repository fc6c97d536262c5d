//! The registry on a virtual clock: every input is a method call with a
//! made-up `now`; every decision is read back from `poll_output`.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::call::outcome::Unanswered;

struct H {
    reg: Registry,
    t0: Instant,
}

impl H {
    fn new(routes: &[(&str, &str)]) -> H {
        let t0 = Instant::now();
        let routes = routes
            .iter()
            .map(|(n, s)| Route {
                number: (*n != "*").then(|| n.to_string()),
                script: PathBuf::from(s),
                lang: None,
            })
            .collect();
        H {
            reg: Registry::new(
                routes,
                t0,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000),
                0xabcd,
            ),
            t0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn outs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.reg.poll_output()).collect()
    }

    fn offer(&mut self, ms: u64, to: &str) -> LegId {
        self.reg.incoming(
            self.at(ms),
            IncomingLeg {
                from: "sip:alice@example.org".into(),
                to: to.into(),
                trunk: None,
                external_id: format!("sip-{to}-{ms}"),
                transport: "sip",
                headers: Vec::new(),
            },
        )
    }

    fn cdrs(outs: &[Output]) -> Vec<CdrRecord> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Cdr(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }
}

fn end(kind: EndKind) -> LegEvent {
    LegEvent::Ended(LegEnd::new(kind, Cause::NORMAL_CLEARING))
}

#[test]
fn unrouted_number_is_refused_with_unallocated_number_and_one_cdr() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let leg = h.offer(0, "999");
    let outs = h.outs();
    assert!(matches!(
        &outs[0],
        Output::Leg(l, LegCommand::Reject { cause, .. }) if *l == leg && *cause == Cause::UNALLOCATED_NUMBER
    ));
    assert_eq!(Cause::UNALLOCATED_NUMBER.to_sip_status(), 404);
    let cdrs = H::cdrs(&outs);
    assert_eq!(cdrs.len(), 1);
    assert_eq!(cdrs[0].script, "none (no route)");
    assert_eq!(cdrs[0].end, "rejected");
    assert_eq!(cdrs[0].sip_status, Some(404));
    assert_eq!(cdrs[0].q850, Some(1));
    assert_eq!(h.reg.tracked(), 0);
    assert_eq!(h.reg.stats().no_route, 1);
}

#[test]
fn default_route_takes_other_numbers() {
    let mut h = H::new(&[("1000", "menu.rhai"), ("*", "default.rhai")]);
    let leg = h.offer(0, "555");
    assert_eq!(h.outs(), vec![Output::Leg(leg, LegCommand::Proceed)]);
    h.reg.leg_event(h.at(5), leg, LegEvent::MediaReady);
    match h.outs().as_slice() {
        [Output::StartScript(s)] => assert_eq!(s.script, PathBuf::from("default.rhai")),
        o => panic!("{o:?}"),
    }
}

#[test]
fn inbound_call_lifecycle_answer_then_caller_hangs_up() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let leg = h.offer(0, "1000");
    assert_eq!(h.outs(), vec![Output::Leg(leg, LegCommand::Proceed)]);
    h.reg.leg_event(h.at(3), leg, LegEvent::MediaReady);
    let start = match h.outs().as_slice() {
        [Output::StartScript(s)] => s.clone(),
        o => panic!("{o:?}"),
    };
    assert_eq!(start.leg, leg);
    assert_eq!(start.info.direction, "inbound");
    assert_eq!(start.info.to, "1000");
    assert_eq!(start.info.id, "0000abcd-1");
    let call = start.call;
    h.reg
        .script_command(h.at(100), call, ScriptCommand::Ring { early_media: false })
        .unwrap();
    h.reg
        .script_command(h.at(1100), call, ScriptCommand::Answer)
        .unwrap();
    assert_eq!(
        h.outs(),
        vec![
            Output::Leg(leg, LegCommand::Alert { early_media: false }),
            Output::Leg(leg, LegCommand::Answer)
        ]
    );
    assert_eq!(h.reg.active(), 1);
    h.reg.leg_event(h.at(6100), leg, end(EndKind::RemoteHangup));
    assert_eq!(h.outs(), vec![Output::CallGone(call)]);
    // The leg is down but the script still runs: the call is tracked.
    assert_eq!((h.reg.active(), h.reg.tracked()), (0, 1));
    assert_eq!(
        h.reg
            .script_command(h.at(6101), call, ScriptCommand::Answer),
        Err(CallEnded)
    );
    h.reg.script_done(
        h.at(6150),
        call,
        "caller-hung-up".into(),
        vec![("q1".into(), "4".into())],
    );
    let cdrs = H::cdrs(&h.outs());
    assert_eq!(cdrs.len(), 1);
    let c = &cdrs[0];
    assert_eq!(c.call_id, "0000abcd-1");
    assert_eq!(c.transport_id, "sip-1000-0");
    assert_eq!(c.end, "remote-bye");
    assert_eq!(c.outcome, "answered");
    assert!(c.answered);
    assert_eq!((c.ring_ms, c.talk_ms, c.duration_ms), (1100, 5000, 5000));
    assert_eq!(c.started_at, "2026-11-18T11:06:40Z");
    assert_eq!(c.script, "caller-hung-up");
    assert_eq!(c.results["q1"], "4");
    assert_eq!(h.reg.tracked(), 0);
}

#[test]
fn script_hangup_before_answer_is_a_480_reject_and_after_answer_a_local_bye() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let a = h.offer(0, "1000");
    h.reg.leg_event(h.at(1), a, LegEvent::MediaReady);
    let call_a = h.reg.call_of(a).unwrap();
    h.outs();
    h.reg
        .script_command(h.at(10), call_a, ScriptCommand::Hangup)
        .unwrap();
    assert_eq!(
        h.outs(),
        vec![
            Output::Leg(
                a,
                LegCommand::Hangup {
                    cause: Cause::NORMAL_CLEARING
                }
            ),
            Output::CallGone(call_a)
        ]
    );
    h.reg.script_done(h.at(12), call_a, "hangup".into(), vec![]);
    let c = &H::cdrs(&h.outs())[0];
    assert_eq!(
        (c.end, c.outcome, c.sip_status),
        ("rejected", "rejected", Some(480))
    );

    let b = h.offer(100, "1000");
    h.reg.leg_event(h.at(101), b, LegEvent::MediaReady);
    let call_b = h.reg.call_of(b).unwrap();
    h.reg
        .script_command(h.at(110), call_b, ScriptCommand::Answer)
        .unwrap();
    h.reg
        .script_command(h.at(2110), call_b, ScriptCommand::Hangup)
        .unwrap();
    h.reg
        .script_done(h.at(2111), call_b, "hangup".into(), vec![]);
    let cdrs = H::cdrs(&h.outs());
    assert_eq!(cdrs[0].end, "local-bye");
    assert_eq!(cdrs[0].talk_ms, 2000);
}

#[test]
fn script_reject_keeps_the_status_it_asked_for() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let a = h.offer(0, "1000");
    h.reg.leg_event(h.at(1), a, LegEvent::MediaReady);
    let call = h.reg.call_of(a).unwrap();
    h.outs();
    h.reg
        .script_command(h.at(2), call, ScriptCommand::Reject { status: 603 })
        .unwrap();
    let outs = h.outs();
    assert_eq!(
        outs[0],
        Output::Leg(
            a,
            LegCommand::Reject {
                cause: Cause::CALL_REJECTED,
                sip_status: Some(603),
                retry_after: None
            }
        )
    );
    // A second verb on the gone call fails; a bad status is refused.
    assert_eq!(
        h.reg.script_command(h.at(3), call, ScriptCommand::Answer),
        Err(CallEnded)
    );
    h.reg.script_done(h.at(4), call, "hangup".into(), vec![]);
    let c = &H::cdrs(&h.outs())[0];
    assert_eq!(
        (c.sip_status, c.q850, c.end),
        (Some(603), Some(21), "rejected")
    );
}

#[test]
fn a_finished_script_never_leaves_its_call_up() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let a = h.offer(0, "1000");
    h.reg.leg_event(h.at(1), a, LegEvent::MediaReady);
    let call = h.reg.call_of(a).unwrap();
    h.reg
        .script_command(h.at(2), call, ScriptCommand::Answer)
        .unwrap();
    h.outs();
    h.reg
        .script_done(h.at(50), call, "completed".into(), vec![]);
    let outs = h.outs();
    assert_eq!(
        outs[0],
        Output::Leg(
            a,
            LegCommand::Hangup {
                cause: Cause::NORMAL_CLEARING
            }
        )
    );
    assert_eq!(H::cdrs(&outs)[0].end, "local-bye");
    assert_eq!(h.reg.tracked(), 0);
    // Events from the transport after the close are ignored.
    h.reg.leg_event(h.at(60), a, end(EndKind::RemoteHangup));
    assert!(h.outs().is_empty());
}

#[test]
fn script_that_cannot_start_refuses_the_call_with_503() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let a = h.offer(0, "1000");
    h.reg.leg_event(h.at(1), a, LegEvent::MediaReady);
    let call = h.reg.call_of(a).unwrap();
    h.outs();
    h.reg.script_not_started(
        h.at(2),
        call,
        Cause::SWITCHING_CONGESTION,
        None,
        "no script thread",
    );
    let outs = h.outs();
    assert!(matches!(
        outs[0],
        Output::Leg(_, LegCommand::Reject { cause, .. }) if cause.to_sip_status() == 503
    ));
    let c = &H::cdrs(&outs)[0];
    assert_eq!(c.script, "none (no script thread)");
    assert_eq!(c.sip_status, Some(503));
}

#[test]
fn caller_cancel_before_media_closes_without_a_script() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let a = h.offer(0, "1000");
    h.outs();
    h.reg.leg_event(
        h.at(700),
        a,
        LegEvent::Ended(LegEnd {
            kind: EndKind::RemoteCancel,
            cause: Cause::NORMAL_UNSPECIFIED,
            sip_status: Some(487),
            reason: Some("Request Terminated".into()),
        }),
    );
    // A script was routed but never started: the call closes at once.
    assert_eq!(h.reg.tracked(), 0);
    let c = &H::cdrs(&h.outs())[0];
    assert_eq!(
        (c.end, c.outcome, c.ring_ms),
        ("cancelled", "cancelled", 700)
    );
}

#[test]
fn shutdown_hangs_up_everything_and_flushes_unfinished_scripts() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let a = h.offer(0, "1000");
    let b = h.offer(1, "1000");
    for l in [a, b] {
        h.reg.leg_event(h.at(2), l, LegEvent::MediaReady);
    }
    let ca = h.reg.call_of(a).unwrap();
    h.reg
        .script_command(h.at(3), ca, ScriptCommand::Answer)
        .unwrap();
    h.outs();
    h.reg.hangup_all(h.at(1000));
    let outs = h.outs();
    // The answered call gets a hangup, the unanswered one a refusal.
    let hangups = outs
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Leg(_, LegCommand::Hangup { .. } | LegCommand::Reject { .. })
            )
        })
        .count();
    let gone = outs
        .iter()
        .filter(|o| matches!(o, Output::CallGone(_)))
        .count();
    assert_eq!((hangups, gone), (2, 2));
    assert_eq!(h.reg.active(), 0);
    h.reg
        .script_done(h.at(1001), ca, "caller-hung-up".into(), vec![]);
    h.reg.flush_unfinished(h.at(4000));
    let cdrs = H::cdrs(&h.outs());
    assert_eq!(cdrs.len(), 2);
    assert!(cdrs.iter().all(|c| c.end == "shutdown"), "{cdrs:?}");
    assert!(cdrs.iter().any(|c| c.script == "unfinished at shutdown"));
    assert_eq!(h.reg.tracked(), 0);
}

#[test]
fn unanswered_outcomes_reach_the_cdr() {
    let mut h = H::new(&[("1000", "menu.rhai")]);
    let a = h.offer(0, "1000");
    h.outs();
    h.reg.leg_event(
        h.at(5),
        a,
        LegEvent::Ended(LegEnd {
            kind: EndKind::Unanswered(Unanswered::Refused {
                cause: Cause::USER_BUSY,
                sip_status: Some(486),
            }),
            cause: Cause::USER_BUSY,
            sip_status: Some(486),
            reason: Some("Busy Here".into()),
        }),
    );
    // Its script never started: the call closes at once.
    let c = &H::cdrs(&h.outs())[0];
    assert_eq!((c.outcome, c.q850, c.end), ("busy", Some(17), "unanswered"));
    assert_eq!(c.script, "none (ended before its script started)");
    assert_eq!(h.reg.tracked(), 0);
}

#[test]
fn admission_refuses_beyond_max_calls_with_503_retry_after_and_no_cdr() {
    use crate::call::admission::{Admission, AdmissionConfig};
    let mut h = H::new(&[("1000", "menu.rhai")]);
    h.reg = Registry::new(
        vec![Route {
            number: Some("1000".into()),
            script: PathBuf::from("menu.rhai"),
            lang: None,
        }],
        h.t0,
        SystemTime::UNIX_EPOCH,
        1,
    )
    .with_admission(Admission::new(AdmissionConfig {
        max_calls: 2,
        max_cps: 100,
    }));
    let a = h.offer(0, "1000");
    let b = h.offer(1, "1000");
    assert_eq!(h.outs().len(), 2);
    // The third is refused before routing, even to an unknown number.
    for to in ["1000", "5555"] {
        let c = h.offer(2, to);
        match h.outs().as_slice() {
            [Output::Leg(
                l,
                LegCommand::Reject {
                    cause,
                    sip_status,
                    retry_after,
                },
            )] => {
                assert_eq!(*l, c);
                assert_eq!(*cause, Cause::SWITCHING_CONGESTION);
                assert_eq!(*sip_status, Some(503));
                assert!(retry_after.is_some());
            }
            o => panic!("{o:?}"),
        }
    }
    assert_eq!(h.reg.stats().refused_overload, 2);
    assert_eq!(h.reg.tracked(), 2);
    // One closes: a new call is taken.
    h.reg.leg_event(h.at(10), a, end(EndKind::RemoteCancel));
    h.outs();
    let d = h.offer(20, "1000");
    assert_eq!(h.outs(), vec![Output::Leg(d, LegCommand::Proceed)]);
    let _ = b;
}
