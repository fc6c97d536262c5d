//! Outbound calls through the registry on a virtual clock.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::call::outcome::Unanswered;
use crate::call::trunks::{TrunkLimits, Trunks};

fn reg(t0: Instant, cps: u32, channels: u32) -> Registry {
    Registry::new(Vec::new(), t0, SystemTime::UNIX_EPOCH, 3).with_trunks(Trunks::new(vec![
        TrunkLimits {
            name: "carrier".into(),
            max_channels: channels,
            cps,
            ring_timeout: Duration::from_secs(30),
            caller_id: Some("15550100".into()),
        },
    ]))
}

fn outs(r: &mut Registry) -> Vec<Output> {
    std::iter::from_fn(|| r.poll_output()).collect()
}

fn req(script: bool) -> OriginateRequest {
    OriginateRequest {
        target: "15551234".into(),
        script: script.then(|| PathBuf::from("reminder.rhai")),
        vars: vec![("name".into(), "Amina".into())],
        ..OriginateRequest::default()
    }
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
fn answered_call_runs_its_script_with_vars_then_closes() {
    let t0 = Instant::now();
    let mut r = reg(t0, 10, 10);
    let call = r.originate(t0, req(true));
    let o = outs(&mut r);
    let leg = match &o[..] {
        [Output::Leg(
            l,
            LegCommand::Originate {
                target,
                trunk,
                caller_id,
                tag: None,
            },
        )] => {
            assert_eq!(target, "15551234");
            assert_eq!(trunk.as_deref(), Some("carrier"));
            assert_eq!(caller_id.as_deref(), Some("15550100"));
            *l
        }
        o => panic!("{o:?}"),
    };
    assert_eq!(r.trunks().in_use("carrier"), 1);
    r.leg_event(
        t0,
        leg,
        LegEvent::Placed {
            transport_id: "abc@x".into(),
            transport: "sip",
        },
    );
    r.leg_event(
        t0 + Duration::from_millis(300),
        leg,
        LegEvent::Progress { early_media: false },
    );
    r.leg_event(t0 + Duration::from_secs(4), leg, LegEvent::Answered);
    let start = match &outs(&mut r)[..] {
        [Output::StartScript(s), Output::ClassifyEarlyMedia { on: true, .. }] => s.clone(),
        o => panic!("{o:?}"),
    };
    assert_eq!(start.call, call);
    assert_eq!(start.info.direction, "outbound");
    assert_eq!(start.info.trunk.as_deref(), Some("carrier"));
    assert_eq!(start.info.vars, vec![("name".into(), "Amina".into())]);
    // The ring deadline no longer applies once answered; the listening
    // for a SIT after the answer ends.
    r.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(
        outs(&mut r),
        vec![Output::ClassifyEarlyMedia { leg, on: false }]
    );
    r.script_done(
        t0 + Duration::from_secs(20),
        call,
        "completed".into(),
        vec![("heard".into(), "yes".into())],
    );
    let o = outs(&mut r);
    let c = cdr(&o);
    assert_eq!(
        (c.direction, c.outcome, c.end),
        ("outbound", "answered", "local-bye")
    );
    assert_eq!((c.ring_ms, c.talk_ms), (4000, 16_000));
    assert_eq!(c.transport_id, "abc@x");
    assert_eq!(c.trunk.as_deref(), Some("carrier"));
    assert_eq!(r.trunks().in_use("carrier"), 0);
}

#[test]
fn ring_timeout_withdraws_the_attempt_as_no_answer() {
    let t0 = Instant::now();
    let mut r = reg(t0, 10, 10);
    r.originate(
        t0,
        OriginateRequest {
            ring_timeout: Some(Duration::from_secs(20)),
            ..req(true)
        },
    );
    let leg = match &outs(&mut r)[..] {
        [Output::Leg(l, _)] => *l,
        o => panic!("{o:?}"),
    };
    assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    r.handle_timeout(t0 + Duration::from_secs(20));
    let o = outs(&mut r);
    assert_eq!(
        o[0],
        Output::Leg(
            leg,
            LegCommand::Hangup {
                cause: Cause::NO_ANSWER
            }
        )
    );
    let c = cdr(&o);
    assert_eq!(
        (c.outcome, c.q850, c.ring_ms),
        ("no_answer", Some(19), 20_000)
    );
    assert_eq!(c.script, "none (ended before its script started)");
    // The transport's late report of the CANCEL changes nothing.
    r.leg_event(
        t0 + Duration::from_secs(21),
        leg,
        LegEvent::Ended(LegEnd::new(
            EndKind::Unanswered(Unanswered::Cancelled),
            Cause::NORMAL_CLEARING,
        )),
    );
    assert!(outs(&mut r).is_empty());
    assert_eq!(r.trunks().in_use("carrier"), 0);
}

/// When each call was dialed (ms after `t0`), over the first 5 s.
fn dial_times(r: &mut Registry, t0: Instant) -> Vec<u64> {
    let dialed = |o: &[Output]| {
        o.iter()
            .filter(|x| matches!(x, Output::Leg(_, LegCommand::Originate { .. })))
            .count()
    };
    let mut times = vec![0u64; dialed(&outs(r))];
    while let Some(now) = r.poll_timeout() {
        if now > t0 + Duration::from_secs(5) {
            break;
        }
        r.handle_timeout(now);
        for _ in 0..dialed(&outs(r)) {
            times.push((now - t0).as_millis() as u64);
        }
    }
    times
}

#[test]
fn cps_paces_new_calls_without_bursts() {
    let t0 = Instant::now();
    let mut r = reg(t0, 2, 100);
    for _ in 0..5 {
        r.originate(t0, req(false));
    }
    let times = dial_times(&mut r, t0);
    // Every third call waits for the 1 s window and its wire guard.
    assert_eq!(times, vec![0, 500, 1020, 1520, 2040]);
}

#[test]
fn a_pace_group_holds_its_calls_to_its_cps_on_a_faster_trunk() {
    let t0 = Instant::now();
    let mut r = reg(t0, 100, 100);
    let paced = || OriginateRequest {
        pace: Some(PaceGroup {
            name: "campaign c1".into(),
            cps: 3,
        }),
        ..req(false)
    };
    for _ in 0..7 {
        r.originate(t0, paced());
    }
    let times = dial_times(&mut r, t0);
    // The trunk (100/s) lets each through 10 ms after the last; the group
    // holds every window of 1 s and its wire guard to 3.
    assert_eq!(times, vec![0, 10, 20, 1020, 1030, 1040, 2040]);
}

#[test]
fn all_trunks_down_is_unreachable_without_a_packet_and_refusals_keep_their_outcome() {
    let t0 = Instant::now();
    let mut r = reg(t0, 10, 10);
    r.set_trunk_up("carrier", false);
    r.originate(t0, req(true));
    let o = outs(&mut r);
    assert!(!o.iter().any(|x| matches!(x, Output::Leg(..))), "{o:?}");
    let c = cdr(&o);
    assert_eq!((c.outcome, c.q850), ("unreachable", Some(3)));

    r.set_trunk_up("carrier", true);
    r.originate(t0, req(true));
    let leg = match &outs(&mut r)[..] {
        [Output::Leg(l, _)] => *l,
        o => panic!("{o:?}"),
    };
    let mut end = LegEnd::new(
        EndKind::Unanswered(Unanswered::Refused {
            cause: Cause::USER_BUSY,
            sip_status: Some(486),
        }),
        Cause::USER_BUSY,
    );
    end.sip_status = Some(486);
    end.reason = Some("Busy Here".into());
    r.leg_event(t0 + Duration::from_secs(2), leg, LegEvent::Ended(end));
    let c = cdr(&outs(&mut r));
    assert_eq!(
        (c.outcome, c.sip_status, c.reason.as_deref()),
        ("busy", Some(486), Some("Busy Here"))
    );
}

#[test]
fn answered_without_a_script_is_hung_up_at_once() {
    let t0 = Instant::now();
    let mut r = reg(t0, 10, 10);
    r.originate(t0, req(false));
    let leg = match &outs(&mut r)[..] {
        [Output::Leg(l, _)] => *l,
        o => panic!("{o:?}"),
    };
    r.leg_event(t0 + Duration::from_secs(1), leg, LegEvent::Answered);
    let o = outs(&mut r);
    assert_eq!(
        o[0],
        Output::Leg(
            leg,
            LegCommand::Hangup {
                cause: Cause::NORMAL_CLEARING
            }
        )
    );
    assert_eq!(cdr(&o).outcome, "answered");
}
