//! The PRI glue on a virtual clock: a whole server core around a
//! simulated environment, spans' events fed by hand, span commands read
//! back.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::PriLegs;
use crate::call::cause::Cause;
use crate::call::channel::SigCommand;
use crate::call::id::CallId;
use crate::call::registry::{OriginateRequest, ScriptCommand};
use crate::call::trunks::TrunkLimits;
use crate::codec::{Codec, Law};
use crate::config::Config;
use crate::media::worker::BChannelKind;
use crate::pri::q931::ie::{
    BearerCapability, CalledNumber, CallingNumber, NumberingPlan, TransferCapability, TypeOfNumber,
};
use crate::pri::q931::{self, CallEvent, IncomingCall, SetupError};
use crate::pri::span::{SpanCommand, SpanEvent};
use crate::server::core::ServerCore;
use crate::server::sim::{sim_core, SimEnv, SimOptions};

const CONFIG: &str = r#"
[[span]]
name = "span1"
variant = "etsi"
dchannel = "/run/pri/span1/d"
bchannels = "/run/pri/span1/b{n}"
[[span]]
name = "span2"
variant = "etsi"
dchannel = "/run/pri/span2/d"
bchannels = "/run/pri/span2/b{n}"
[[trunk]]
name = "e1"
kind = "pri"
spans = ["span1", "span2"]
hunt = "lowest"
caller_id = "5550100"
"#;

fn core(now: Instant) -> ServerCore<SimEnv> {
    core_with(CONFIG, now)
}

fn core_with(config: &str, now: Instant) -> ServerCore<SimEnv> {
    let cfg = Config::parse(config, "test.toml", Path::new("/")).expect("the test config loads");
    let opts = SimOptions {
        routes: vec![("7001".into(), "in.rhai".into())],
        trunk_limits: vec![TrunkLimits {
            name: "e1".into(),
            max_channels: 60,
            cps: 100,
            ring_timeout: Duration::from_secs(30),
            caller_id: None,
        }],
        ..SimOptions::default()
    };
    let mut core = sim_core(&opts, now).with_pri(PriLegs::new(cfg.spans, cfg.pri_trunks));
    core.handle_span_event(now, 0, SpanEvent::LinkUp);
    core.handle_span_event(now, 1, SpanEvent::LinkUp);
    core
}

fn commands(core: &mut ServerCore<SimEnv>) -> Vec<(usize, SpanCommand)> {
    std::iter::from_fn(|| core.poll_span_command()).collect()
}

fn qid(n: u64) -> q931::CallId {
    q931::CallId(n)
}

fn incoming(call: u64, channel: u8, called: &str) -> SpanEvent {
    SpanEvent::Call(CallEvent::Incoming(Box::new(IncomingCall {
        call: qid(call),
        channel,
        bearer: BearerCapability::g711(TransferCapability::Speech, Law::Alaw),
        called: CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, called).ok(),
        calling: CallingNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, None, "5551234")
            .ok(),
        calling_name: None,
        sending_complete: true,
        progress: None,
    })))
}

fn released(call: u64, cause: Cause) -> SpanEvent {
    SpanEvent::Call(CallEvent::Released {
        call: qid(call),
        cause,
    })
}

fn script(core: &mut ServerCore<SimEnv>, now: Instant, call: CallId, cmd: ScriptCommand) {
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    core.handle_sig(now, SigCommand::Script { call, cmd, reply });
    assert_eq!(answer.recv(), Ok(Ok(())), "{cmd:?}");
}

/// A DAHDI span's B-channel media is its DAHDI channel file, named as
/// DAHDI names its nodes.
#[test]
fn a_dahdi_spans_bchannel_is_its_dahdi_channel() {
    let t0 = Instant::now();
    let config = CONFIG
        .replace(
            "name = \"span2\"\n",
            "name = \"span2\"\ntransport = \"dahdi\"\n",
        )
        .replace("/run/pri/span2/d", "/dev/dahdi/chan/002/016")
        .replace("/run/pri/span2/b{n}", "/dev/dahdi/chan/002/{n}");
    let mut core = core_with(&config, t0);
    core.handle_span_event(t0, 1, incoming(1, 5, "7001"));
    let media: Vec<_> = core.env.bchannels.values().cloned().collect();
    assert_eq!(
        media,
        [(
            PathBuf::from("/dev/dahdi/chan/002/005"),
            BChannelKind::Dahdi,
            Codec::Pcma
        )]
    );
}

#[test]
fn an_incoming_setup_routes_by_number_proceeds_on_its_bchannel_and_clears() {
    let t0 = Instant::now();
    let mut core = core(t0);
    core.handle_span_event(t0, 1, incoming(1, 5, "7001"));
    let sent = commands(&mut core);
    assert!(
        matches!(sent.as_slice(), [(1, SpanCommand::Proceeding(q))] if *q == qid(1)),
        "{sent:?}"
    );
    let (path, kind, codec) = core
        .env
        .bchannels
        .values()
        .next()
        .cloned()
        .expect("B-channel media");
    assert_eq!(path, PathBuf::from("/run/pri/span2/b5"));
    assert_eq!(kind, BChannelKind::Socket);
    assert_eq!(codec, Codec::Pcma);
    let start = core
        .env
        .scripts
        .first()
        .cloned()
        .expect("the script started");
    assert_eq!(start.info.to, "7001");
    assert_eq!(start.info.from, "5551234");
    assert_eq!(start.info.trunk.as_deref(), Some("e1"));

    script(
        &mut core,
        t0,
        start.call,
        ScriptCommand::Ring { early_media: true },
    );
    script(&mut core, t0, start.call, ScriptCommand::Answer);
    let sent = commands(&mut core);
    assert!(
        matches!(
            sent.as_slice(),
            [(1, SpanCommand::AlertingInband(a)), (1, SpanCommand::Connect(c))]
                if *a == qid(1) && *c == qid(1)
        ),
        "{sent:?}"
    );
    let t1 = t0 + Duration::from_secs(3);
    core.handle_span_event(t1, 1, released(1, Cause::NORMAL_CLEARING));
    assert!(core.env.bchannels.is_empty(), "the media is gone");
    core.handle_sig(
        t1,
        SigCommand::ScriptDone {
            call: start.call,
            outcome: "caller-hung-up".into(),
        },
    );
    let cdr = core.env.cdrs.first().cloned().expect("a CDR");
    assert_eq!(cdr.transport, "pri");
    assert_eq!(cdr.transport_id, "span2/5");
    assert_eq!(cdr.outcome, "answered");
    assert_eq!(cdr.end, "remote-bye");
    assert_eq!(cdr.q850, Some(16));
    assert_eq!(cdr.talk_ms, 3000);
    assert_eq!(core.pri.pending(), 0);
    assert_eq!(core.pri.span_state("span2"), Some((0, true)));
}

#[test]
fn a_setup_for_an_unrouted_number_is_refused_with_cause_1() {
    let t0 = Instant::now();
    let mut core = core(t0);
    core.handle_span_event(t0, 0, incoming(7, 1, "9999"));
    let sent = commands(&mut core);
    assert!(
        matches!(sent.as_slice(), [(0, SpanCommand::Reject(q, c))]
            if *q == qid(7) && *c == Cause::UNALLOCATED_NUMBER),
        "{sent:?}"
    );
    assert!(core.env.scripts.is_empty());
    assert_eq!(core.pri.pending(), 1, "until Q.931 releases it");
    core.handle_span_event(t0, 0, released(7, Cause::UNALLOCATED_NUMBER));
    assert_eq!(core.pri.pending(), 0);
    assert_eq!(core.pri.span_state("span1"), Some((0, true)));
}

fn originate(core: &mut ServerCore<SimEnv>, now: Instant) -> CallId {
    core.originate(
        now,
        OriginateRequest {
            target: "+4930123456".into(),
            trunk: Some("e1".into()),
            ..OriginateRequest::default()
        },
    )
}

#[test]
fn an_outgoing_call_hunts_the_next_span_when_one_is_full_and_busy_is_its_outcome() {
    let t0 = Instant::now();
    let mut core = core(t0);
    originate(&mut core, t0);
    let sent = commands(&mut core);
    let [(0, SpanCommand::Setup { token, call })] = sent.as_slice() else {
        panic!("a SETUP on the first span: {sent:?}");
    };
    assert_eq!(call.called.digits.as_str(), "4930123456");
    assert_eq!(call.called.ton, TypeOfNumber::International);
    assert_eq!(
        call.calling.as_ref().map(|c| c.digits.as_str()),
        Some("5550100"),
        "the trunk's caller id"
    );
    core.handle_span_event(
        t0,
        0,
        SpanEvent::Placed {
            token: *token,
            result: Err(SetupError::NoChannel),
            channel: None,
        },
    );
    let sent = commands(&mut core);
    let [(1, SpanCommand::Setup { token, .. })] = sent.as_slice() else {
        panic!("the SETUP again on the second span: {sent:?}");
    };
    core.handle_span_event(
        t0,
        1,
        SpanEvent::Placed {
            token: *token,
            result: Ok(qid(3)),
            channel: Some(30),
        },
    );
    let (path, _, _) = core.env.bchannels.values().next().cloned().expect("media");
    assert_eq!(path, PathBuf::from("/run/pri/span2/b30"));
    // The network moves the call to another channel.
    core.handle_span_event(
        t0,
        1,
        SpanEvent::Call(CallEvent::Alerting {
            call: qid(3),
            channel: Some(29),
            inband: true,
        }),
    );
    let (path, _, _) = core.env.bchannels.values().next().cloned().expect("media");
    assert_eq!(path, PathBuf::from("/run/pri/span2/b29"));
    core.handle_span_event(
        t0 + Duration::from_secs(4),
        1,
        released(3, Cause::USER_BUSY),
    );
    let cdr = core.env.cdrs.first().cloned().expect("a CDR");
    assert_eq!(cdr.outcome, "busy");
    assert_eq!(cdr.q850, Some(17));
    assert_eq!(cdr.transport_id, "span2/29");
    assert_eq!(cdr.ring_ms, 4000);
    assert!(core.env.bchannels.is_empty());
    assert_eq!(core.pri.pending(), 0);
}

#[test]
fn a_call_ended_while_its_setup_is_on_the_way_is_cleared_once_placed() {
    let t0 = Instant::now();
    let mut core = core(t0);
    let call = originate(&mut core, t0);
    let sent = commands(&mut core);
    let [(0, SpanCommand::Setup { token, .. })] = sent.as_slice() else {
        panic!("{sent:?}");
    };
    core.end_call(t0, call);
    assert!(commands(&mut core).is_empty(), "nothing to clear yet");
    core.handle_span_event(
        t0,
        0,
        SpanEvent::Placed {
            token: *token,
            result: Ok(qid(4)),
            channel: Some(1),
        },
    );
    let sent = commands(&mut core);
    assert!(
        matches!(sent.as_slice(), [(0, SpanCommand::Disconnect(q, _))] if *q == qid(4)),
        "{sent:?}"
    );
    assert!(core.env.bchannels.is_empty(), "no media for it");
    core.handle_span_event(t0, 0, released(4, Cause::NORMAL_CLEARING));
    assert_eq!(core.pri.pending(), 0);
    assert_eq!(core.env.cdrs.len(), 1);
    assert_eq!(core.env.cdrs[0].outcome, "cancelled");
}

#[test]
fn with_every_span_down_the_trunk_is_down_and_calls_fail_at_once_as_unreachable() {
    let t0 = Instant::now();
    let mut core = core(t0);
    core.handle_span_event(t0, 0, SpanEvent::LinkDown);
    assert!(core.registry.trunks().is_up("e1"), "one span is still up");
    core.handle_span_event(t0, 1, SpanEvent::LinkDown);
    assert!(!core.registry.trunks().is_up("e1"));
    originate(&mut core, t0);
    assert!(commands(&mut core).is_empty(), "no SETUP on a dead link");
    // As for a SIP trunk that is down (`call::trunks`): no route now.
    let cdr = core.env.cdrs.first().cloned().expect("a CDR");
    assert_eq!(cdr.outcome, "unreachable", "{cdr:?}");
    assert_eq!(cdr.q850, Some(3), "{cdr:?}");
    core.handle_span_event(t0, 1, SpanEvent::LinkUp);
    assert!(core.registry.trunks().is_up("e1"));
}
