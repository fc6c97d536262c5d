//! rivr's PRI signalling stack — the socket span's wire, Q.921 and Q.931
//! call control, as `rivr::pri::span` runs them — as the user side of an
//! E1 against libpri as the network side (tests/pri/libpri_peer.c, whose
//! answer is fixed by the called number's last digit). The link comes up;
//! each outgoing call ends with the cause libpri gives its number; an
//! incoming SETUP arrives with its called number and is answered; a
//! RESTART from the network releases the call on its channel; 30 calls
//! fill the span and the 31st finds no channel; the D-channel closed
//! mid-call comes back and the call is kept within T309, cleared with
//! cause 27 when T309 runs out first.
//!
//! Signalling only: B-channel media and the call layer above come next
//! (docs/pri.md).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::libpri::{LibpriPeer, SpanOptions, SpanPaths};
use common::pri_span::{SpanEnd, T};
use common::scratch::Scratch;
use rivr::call::cause::Cause;
use rivr::pri::q921::{LinkConfig, Side as L2Side};
use rivr::pri::q931::{self, CallEvent, SetupError, Side, Variant};
use rivr::pri::span::{SpanCommand, SpanEvent};

/// libpri retries SABME every second.
const LINK: Duration = Duration::from_secs(10);

/// rivr's span (the user side) and the libpri peer (the network side).
struct Rig {
    peer: std::sync::Arc<LibpriPeer>,
    rivr: SpanEnd,
    _dir: Scratch,
}

impl Rig {
    async fn start(label: &str, opts: SpanOptions) -> Rig {
        Rig::start_with(label, opts, q931::Config::new(Side::User, Variant::Etsi)).await
    }

    async fn start_with(label: &str, opts: SpanOptions, calls: q931::Config) -> Rig {
        let dir = Scratch::new(label);
        let paths = SpanPaths::in_dir(dir.path(), "span1");
        let peer = std::sync::Arc::new(LibpriPeer::start(dir.path(), "network", &paths, &opts));
        let mut rivr = SpanEnd::start(paths.dchannel.clone(), LinkConfig::new(L2Side::User), calls);
        let shown = std::sync::Arc::clone(&peer);
        rivr.context = Box::new(move || shown.diagnostics());
        rivr.wait(LINK, "link up", |e| *e == SpanEvent::LinkUp)
            .await;
        peer.wait_name("up", LINK);
        Rig {
            peer,
            rivr,
            _dir: dir,
        }
    }
}

fn e1() -> SpanOptions {
    SpanOptions {
        clear_after_ms: Some(300),
        no_answer_ms: Some(1_000),
        ..SpanOptions::e1()
    }
}

// The peer's waits block their thread; the span's tasks run on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outgoing_call_ends_with_the_cause_libpri_gives_its_number() {
    let mut rig = Rig::start("pri-libpri-causes", e1()).await;
    // (number, answered, the cause its release carries)
    let plan: [(&str, bool, u8); 6] = [
        ("5551230", true, 16),
        ("5551232", false, 17),
        ("5551234", false, 34),
        ("5551231", false, 1),
        ("5551235", true, 16),
        ("5551236", false, 19),
    ];
    let mut got = HashMap::new();
    for (number, answered, _) in plan {
        let call = rig.rivr.setup(number).await.expect("a channel");
        if answered {
            let ch = rig.rivr.connected(call).await;
            assert!((1..=31).contains(&ch) && ch != 16, "channel {ch}");
            if number.ends_with('0') {
                // rivr clears this one.
                rig.rivr
                    .commands
                    .send(SpanCommand::Disconnect(call, Cause::NORMAL_CLEARING))
                    .await
                    .unwrap();
            }
        }
        got.insert(number, rig.rivr.released(call).await.value());
    }
    for (number, _, cause) in plan {
        assert_eq!(got[number], cause, "{number}: {got:?}");
    }
    // libpri's side agrees: every call ended there too. rivr's release
    // can come before libpri has printed its last `end`, so wait for it.
    let ends = rig
        .peer
        .wait_count(0, plan.len(), T, "end", |e| e.name == "end");
    assert_eq!(ends.len(), plan.len());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let all = rig.peer.events();
    assert_eq!(
        all.iter().filter(|e| e.name == "end").count(),
        plan.len(),
        "no call ends twice: {all:?}"
    );
}

// The peer's waits block their thread; the span's tasks run on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_setup_arrives_with_its_number_is_answered_and_cleared() {
    let mut rig = Rig::start(
        "pri-libpri-incoming",
        SpanOptions {
            manual: true,
            ..e1()
        },
    )
    .await;
    let n = rig.peer.call("1000", "254712000001", None);
    let incoming = rig.rivr.incoming().await;
    assert_eq!(
        incoming.called.as_ref().map(|c| c.digits.as_str()),
        Some("1000")
    );
    assert_eq!(
        incoming.calling.as_ref().map(|c| c.digits.as_str()),
        Some("254712000001")
    );
    let call = incoming.call;
    rig.rivr
        .commands
        .send(SpanCommand::Alerting(call))
        .await
        .unwrap();
    rig.peer.wait_call(n, "alerting", T);
    rig.rivr
        .commands
        .send(SpanCommand::Connect(call))
        .await
        .unwrap();
    rig.peer.wait_call(n, "connect", T);
    rig.rivr.connected(call).await;
    rig.peer.hangup(n, 16);
    assert_eq!(rig.rivr.released(call).await, Cause::NORMAL_CLEARING);
    rig.peer.wait_end(n, T);
}

// The peer's waits block their thread; the span's tasks run on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_from_the_network_releases_the_call_on_its_channel() {
    let mut rig = Rig::start("pri-libpri-restart", e1()).await;
    let call = rig.rivr.setup("5551230").await.expect("a channel");
    let ch = rig.rivr.connected(call).await;
    rig.peer.send(&format!("restart {ch}"));
    let restarted = rig
        .rivr
        .wait(T, "channels restarted", |e| {
            matches!(e, SpanEvent::Call(CallEvent::ChannelsRestarted { .. }))
        })
        .await;
    assert_eq!(
        restarted,
        SpanEvent::Call(CallEvent::ChannelsRestarted { channels: vec![ch] })
    );
    rig.rivr.released(call).await;
    rig.peer.wait_name("restart-ack", T);
}

// The peer's waits block their thread; the span's tasks run on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_calls_fill_the_e1_and_the_thirty_first_finds_no_channel() {
    let mut rig = Rig::start("pri-libpri-thirty", e1()).await;
    let mut calls = Vec::new();
    for i in 0..30 {
        calls.push(
            rig.rivr
                .setup(&format!("55510{i:02}0"))
                .await
                .expect("a channel"),
        );
    }
    let mut channels = Vec::new();
    for c in &calls {
        channels.push(rig.rivr.connected(*c).await);
    }
    channels.sort();
    let e1: Vec<u8> = (1..=31).filter(|n| *n != 16).collect();
    assert_eq!(channels, e1, "one call per timeslot");
    assert_eq!(rig.rivr.setup("5559990").await, Err(SetupError::NoChannel));
    for c in &calls {
        rig.rivr
            .commands
            .send(SpanCommand::Disconnect(*c, Cause::NORMAL_CLEARING))
            .await
            .unwrap();
    }
    for c in calls {
        assert_eq!(rig.rivr.released(c).await, Cause::NORMAL_CLEARING);
    }
    // Every channel is free again: a new call gets one.
    let again = rig
        .rivr
        .setup("5551230")
        .await
        .expect("a channel after all ended");
    rig.rivr.connected(again).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_d_channel_outage_keeps_the_call_and_the_link_comes_back() {
    let mut rig = Rig::start("pri-libpri-outage-short", e1()).await;
    let call = rig.rivr.setup("5551230").await.expect("a channel");
    rig.rivr.connected(call).await;
    let n = rig.peer.mark();
    rig.peer.send("close-d 300");
    rig.rivr
        .wait(T, "link down", |e| *e == SpanEvent::LinkDown)
        .await;
    // rivr reconnects after a second; LAPD comes up again.
    // (libpri never noticed: a 300 ms gap is shorter than its timers,
    // and it takes rivr's SABME as a reset of a link still up.)
    rig.rivr
        .wait(LINK, "link up again", |e| *e == SpanEvent::LinkUp)
        .await;
    // Within T309 the call is kept on both sides: it is still there a
    // moment later, and it clears normally, end to end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !rig.rivr
            .seen
            .iter()
            .any(|e| matches!(e, SpanEvent::Call(CallEvent::Released { .. }))),
        "{:?}",
        rig.rivr.seen
    );
    rig.rivr
        .commands
        .send(SpanCommand::Disconnect(call, Cause::NORMAL_CLEARING))
        .await
        .unwrap();
    assert_eq!(rig.rivr.released(call).await, Cause::NORMAL_CLEARING);
    // libpri had the call all along and hears rivr's DISCONNECT for it.
    let d = rig
        .peer
        .wait_from(n, T, "DISCONNECT of the kept call", |e| {
            e.name == "disconnect"
        });
    assert_eq!(d.cause(), Some(16), "{}", d.line);
    rig.peer
        .wait_from(n, T, "end of the kept call", |e| e.name == "end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_t309_clears_the_call_with_cause_27() {
    let mut calls = q931::Config::new(Side::User, Variant::Etsi);
    calls.timers.t309 = Duration::from_secs(2);
    let mut rig = Rig::start_with("pri-libpri-outage-long", e1(), calls).await;
    let call = rig.rivr.setup("5551230").await.expect("a channel");
    rig.rivr.connected(call).await;
    rig.peer.send("close-d 5000");
    rig.rivr
        .wait(T, "link down", |e| *e == SpanEvent::LinkDown)
        .await;
    assert_eq!(rig.rivr.released(call).await.value(), 27);
    // The link returns once the peer listens again, and calls work.
    rig.rivr
        .wait(LINK, "link up again", |e| *e == SpanEvent::LinkUp)
        .await;
    let again = rig.rivr.setup("5551230").await.expect("a channel");
    rig.rivr.connected(again).await;
}
