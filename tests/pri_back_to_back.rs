//! rivr's PRI signalling as the user side against rivr's own as the
//! network side (the second peer of issue 12, beside libpri): two
//! `rivr::pri::span` tasks, each connecting to its end of a socket span
//! that a relay in this test joins. Calls both ways are answered and
//! cleared with the cause each side gives, and 30 calls fill an E1 from
//! the user side with one call per timeslot on both sides.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::pri_span::SpanEnd;
use common::scratch::Scratch;
use rivr::call::cause::Cause;
use rivr::pri::q921::{LinkConfig, Side as L2Side};
use rivr::pri::q931::{self, CallEvent, SetupError, Side, Variant};
use rivr::pri::socket::SeqPacket;
use rivr::pri::span::{SpanCommand, SpanEvent};
use socket2::{Domain, SockAddr, Socket, Type};

const LINK: Duration = Duration::from_secs(5);

async fn accept(l: &Socket) -> SeqPacket {
    loop {
        if let Ok((s, _)) = l.accept() {
            return SeqPacket::from_socket(s).expect("a seqpacket");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The wire between the two D-channels: packets copied both ways as
/// they are, FCS octets included.
async fn relay(a: Arc<Socket>, b: Arc<Socket>) {
    let (a, b) = (accept(&a).await, accept(&b).await);
    let (mut ba, mut bb) = ([0u8; 600], [0u8; 600]);
    loop {
        tokio::select! {
            n = a.recv(&mut ba) => match n {
                Ok(n) if n > 0 => { let _ = b.send(&ba[..n]).await; }
                _ => break,
            },
            n = b.recv(&mut bb) => match n {
                Ok(n) if n > 0 => { let _ = a.send(&bb[..n]).await; }
                _ => break,
            },
        }
    }
}

/// A user side and a network side on one E1, link up on both.
async fn pair(dir: &Scratch) -> (SpanEnd, SpanEnd) {
    let listen = |name: &str| {
        let path = dir.join(name);
        let l = Socket::new(Domain::UNIX, Type::SEQPACKET, None).expect("a socket");
        l.bind(&SockAddr::unix(&path).expect("a path"))
            .expect("bind");
        l.listen(4).expect("listen");
        l.set_nonblocking(true).expect("nonblocking");
        (Arc::new(l), path)
    };
    let (lu, pu) = listen("user-d");
    let (ln, pn) = listen("net-d");
    tokio::spawn(relay(lu, ln));
    let start = |path, l2, side| {
        SpanEnd::start(
            path,
            LinkConfig::new(l2),
            q931::Config::new(side, Variant::Etsi),
        )
    };
    let mut user = start(pu, L2Side::User, Side::User);
    let mut net = start(pn, L2Side::Network, Side::Network);
    user.wait(LINK, "link up", |e| *e == SpanEvent::LinkUp)
        .await;
    net.wait(LINK, "link up", |e| *e == SpanEvent::LinkUp).await;
    (user, net)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_both_ways_are_answered_and_cleared_with_their_causes() {
    let dir = Scratch::new("pri-b2b-calls");
    let (mut user, mut net) = pair(&dir).await;

    // User to network: alerted, answered, cleared by the network (16).
    let call = user.setup("1000").await.expect("a channel");
    let i = net.incoming().await;
    let (inc, ch) = (i.call, i.channel);
    assert_eq!(
        i.called.map(|c| c.digits.as_str().to_string()),
        Some("1000".into())
    );
    net.send(SpanCommand::Alerting(inc)).await;
    user.wait(
        common::pri_span::T,
        "alerting",
        |e| matches!(e, SpanEvent::Call(CallEvent::Alerting { call: c, .. }) if *c == call),
    )
    .await;
    net.send(SpanCommand::Connect(inc)).await;
    assert_eq!(user.connected(call).await, ch);
    net.connected(inc).await;
    net.send(SpanCommand::Disconnect(inc, Cause::NORMAL_CLEARING))
        .await;
    assert_eq!(user.released(call).await, Cause::NORMAL_CLEARING);
    assert_eq!(net.released(inc).await, Cause::NORMAL_CLEARING);

    // Network to user: refused busy (17).
    let call = net.setup("2000").await.expect("a channel");
    let i = user.incoming().await;
    let inc = i.call;
    assert_eq!(
        i.called.map(|c| c.digits.as_str().to_string()),
        Some("2000".into())
    );
    user.send(SpanCommand::Reject(inc, Cause::USER_BUSY)).await;
    assert_eq!(net.released(call).await, Cause::USER_BUSY);
    assert_eq!(user.released(inc).await, Cause::USER_BUSY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_calls_fill_the_e1_one_per_timeslot_on_both_sides() {
    let dir = Scratch::new("pri-b2b-thirty");
    let (mut user, mut net) = pair(&dir).await;
    let mut calls = Vec::new();
    for i in 0..30 {
        calls.push(user.setup(&format!("10{i:02}")).await.expect("a channel"));
    }
    let mut incoming = Vec::new();
    for _ in 0..30 {
        let i = net.incoming().await;
        let (inc, ch) = (i.call, i.channel);
        net.send(SpanCommand::Connect(inc)).await;
        incoming.push((inc, ch));
    }
    let mut user_channels = Vec::new();
    for c in &calls {
        user_channels.push(user.connected(*c).await);
    }
    let mut net_channels: Vec<u8> = incoming.iter().map(|(_, ch)| *ch).collect();
    user_channels.sort();
    net_channels.sort();
    let e1: Vec<u8> = (1..=31).filter(|n| *n != 16).collect();
    assert_eq!(user_channels, e1);
    assert_eq!(net_channels, e1);
    assert_eq!(user.setup("1099").await, Err(SetupError::NoChannel));
    for c in &calls {
        user.send(SpanCommand::Disconnect(*c, Cause::NORMAL_CLEARING))
            .await;
    }
    for c in calls {
        assert_eq!(user.released(c).await, Cause::NORMAL_CLEARING);
    }
    for (inc, _) in incoming {
        assert_eq!(net.released(inc).await, Cause::NORMAL_CLEARING);
    }
}
