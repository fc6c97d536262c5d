//! `transfer()` in the registry on a virtual clock: the command to the
//! caller's leg, the result to the script, the BYE and the CDR on success.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::call::control::TransferRequest;

struct H {
    reg: Registry,
    t0: Instant,
}

impl H {
    fn new() -> H {
        let t0 = Instant::now();
        let routes = vec![Route {
            number: None,
            script: PathBuf::from("t.rhai"),
            lang: None,
        }];
        H {
            reg: Registry::new(routes, t0, SystemTime::UNIX_EPOCH, 1),
            t0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    fn outs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.reg.poll_output()).collect()
    }

    /// An answered inbound call with its script running.
    fn answered(&mut self) -> (CallId, LegId) {
        let leg = self.reg.incoming(
            self.at(0),
            IncomingLeg {
                from: "sip:alice@example.org".into(),
                to: "1000".into(),
                trunk: None,
                external_id: "x".into(),
                transport: "sip",
                headers: Vec::new(),
            },
        );
        self.reg.leg_event(self.at(1), leg, LegEvent::MediaReady);
        let call = self.reg.call_of(leg).unwrap();
        self.reg
            .script_command(self.at(2), call, ScriptCommand::Answer)
            .unwrap();
        self.outs();
        (call, leg)
    }

    fn transfer(&mut self, ms: u64, call: CallId) {
        self.reg.transfer(
            self.at(ms),
            call,
            TransferRequest {
                target: "sip:2000@example.org".into(),
                timeout: Duration::from_secs(20),
            },
        );
    }
}

fn ended(outs: &[Output]) -> Option<TransferResult> {
    outs.iter().find_map(|o| match o {
        Output::TransferEnded { result, .. } => Some(result.clone()),
        _ => None,
    })
}

#[test]
fn a_transfer_that_succeeds_ends_the_leg_as_transferred() {
    let mut h = H::new();
    let (call, leg) = h.answered();
    h.transfer(1000, call);
    assert_eq!(
        h.outs(),
        vec![Output::Leg(
            leg,
            LegCommand::Transfer {
                target: "sip:2000@example.org".into(),
                timeout: Duration::from_secs(20)
            }
        )]
    );
    h.reg.leg_event(
        h.at(1800),
        leg,
        LegEvent::TransferEnded {
            ok: true,
            status: 200,
            reason: "OK".into(),
        },
    );
    let outs = h.outs();
    assert_eq!(
        outs,
        vec![
            Output::TransferEnded {
                call,
                result: TransferResult {
                    ok: true,
                    status: 200,
                    reason: "OK".into()
                }
            },
            Output::Leg(
                leg,
                LegCommand::Hangup {
                    cause: Cause::NORMAL_CLEARING
                }
            ),
            Output::CallGone(call),
        ],
        "the script hears the result before the call is gone"
    );
    h.reg.script_done(
        h.at(1810),
        call,
        "completed".into(),
        vec![("transfer".into(), "ok".into())],
    );
    let cdr = h
        .outs()
        .into_iter()
        .find_map(|o| match o {
            Output::Cdr(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(cdr.end, "transferred");
    assert_eq!(
        cdr.reason.as_deref(),
        Some("transferred to sip:2000@example.org")
    );
    assert_eq!(cdr.talk_ms, 1798);
    assert_eq!(cdr.outcome, "answered");
}

#[test]
fn a_failed_transfer_keeps_the_call_and_a_second_may_follow() {
    let mut h = H::new();
    let (call, leg) = h.answered();
    h.transfer(1000, call);
    h.outs();
    // One at a time.
    h.transfer(1001, call);
    assert_eq!(ended(&h.outs()).map(|r| r.status), Some(491));
    h.reg.leg_event(
        h.at(1500),
        leg,
        LegEvent::TransferEnded {
            ok: false,
            status: 603,
            reason: "Decline".into(),
        },
    );
    let outs = h.outs();
    assert_eq!(outs.len(), 1, "{outs:?}");
    assert_eq!(ended(&outs).map(|r| (r.ok, r.status)), Some((false, 603)));
    assert!(h.reg.caller_live(call));
    h.transfer(2000, call);
    assert!(matches!(
        h.outs().as_slice(),
        [Output::Leg(_, LegCommand::Transfer { .. })]
    ));
}

#[test]
fn an_unanswered_call_cannot_be_transferred() {
    let mut h = H::new();
    let leg = h.reg.incoming(
        h.at(0),
        IncomingLeg {
            from: "a".into(),
            to: "1".into(),
            transport: "sip",
            ..IncomingLeg::default()
        },
    );
    h.reg.leg_event(h.at(1), leg, LegEvent::MediaReady);
    let call = h.reg.call_of(leg).unwrap();
    h.outs();
    h.transfer(5, call);
    let outs = h.outs();
    assert_eq!(ended(&outs).map(|r| (r.ok, r.status)), Some((false, 409)));
    assert_eq!(outs.len(), 1);
}
