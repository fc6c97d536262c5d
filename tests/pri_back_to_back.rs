//! rivr's PRI signalling as the user side against rivr's own as the
//! network side (the second peer of issue 12, beside libpri): two
//! `rivr::pri::span` tasks, each connecting to its end of a socket span
//! that a relay in this test joins. Calls both ways are answered and
//! cleared with the cause each side gives, and 30 calls fill an E1 from
//! the user side with one call per timeslot on both sides.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::scratch::Scratch;
use rivr::call::cause::Cause;
use rivr::pri::q921::{LinkConfig, Side as L2Side};
use rivr::pri::q931::ie::{CalledNumber, NumberingPlan, TypeOfNumber};
use rivr::pri::q931::{self, CallEvent, CallId, OutgoingCall, SetupError, Side, Variant};
use rivr::pri::socket::SeqPacket;
use rivr::pri::span::{self, SpanCommand, SpanEvent, SpanSignalling};
use socket2::{Domain, SockAddr, Socket, Type};
use tokio::sync::{mpsc, oneshot};

const T: Duration = Duration::from_secs(5);

/// One side: its commands and its events.
struct End {
    commands: mpsc::Sender<SpanCommand>,
    events: mpsc::Receiver<SpanEvent>,
    seen: Vec<SpanEvent>,
}

impl End {
    async fn wait(&mut self, what: &str, pred: impl Fn(&SpanEvent) -> bool) -> SpanEvent {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        let deadline = tokio::time::Instant::now() + T;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return e,
                Ok(Some(e)) => self.seen.push(e),
                _ => panic!("no {what} within {T:?}; seen {:?}", self.seen),
            }
        }
    }

    async fn setup(&self, number: &str) -> Result<CallId, SetupError> {
        let called = CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, number)
            .expect("a valid number");
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(SpanCommand::Setup {
                call: Box::new(OutgoingCall::new(called)),
                reply,
            })
            .await
            .expect("span running");
        answer.await.expect("span replies")
    }

    async fn incoming(&mut self) -> (CallId, u8, String) {
        match self
            .wait("incoming", |e| {
                matches!(e, SpanEvent::Call(CallEvent::Incoming(_)))
            })
            .await
        {
            SpanEvent::Call(CallEvent::Incoming(i)) => (
                i.call,
                i.channel,
                i.called
                    .map(|c| c.digits.as_str().to_string())
                    .unwrap_or_default(),
            ),
            _ => unreachable!(),
        }
    }

    async fn connected(&mut self, call: CallId) -> u8 {
        match self
            .wait("connect", |e| {
                matches!(e, SpanEvent::Call(CallEvent::Connected { call: c, .. }) if *c == call)
            })
            .await
        {
            SpanEvent::Call(CallEvent::Connected { channel, .. }) => channel,
            _ => unreachable!(),
        }
    }

    async fn released(&mut self, call: CallId) -> Cause {
        match self
            .wait(
                "release",
                |e| matches!(e, SpanEvent::Call(CallEvent::Released { call: c, .. }) if *c == call),
            )
            .await
        {
            SpanEvent::Call(CallEvent::Released { cause, .. }) => cause,
            _ => unreachable!(),
        }
    }

    async fn send(&self, c: SpanCommand) {
        self.commands.send(c).await.expect("span running");
    }
}

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
async fn pair(dir: &Scratch) -> (End, End) {
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
        let (commands, rx) = mpsc::channel(64);
        let (tx, events) = mpsc::channel(256);
        tokio::spawn(span::run(
            SpanSignalling {
                dchannel: path,
                link: LinkConfig::new(l2),
                calls: q931::Config::new(side, Variant::Etsi),
            },
            rx,
            tx,
        ));
        End {
            commands,
            events,
            seen: Vec::new(),
        }
    };
    let mut user = start(pu, L2Side::User, Side::User);
    let mut net = start(pn, L2Side::Network, Side::Network);
    user.wait("link up", |e| *e == SpanEvent::LinkUp).await;
    net.wait("link up", |e| *e == SpanEvent::LinkUp).await;
    (user, net)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_both_ways_are_answered_and_cleared_with_their_causes() {
    let dir = Scratch::new("pri-b2b-calls");
    let (mut user, mut net) = pair(&dir).await;

    // User to network: alerted, answered, cleared by the network (16).
    let call = user.setup("1000").await.expect("a channel");
    let (inc, ch, called) = net.incoming().await;
    assert_eq!(called, "1000");
    net.send(SpanCommand::Alerting(inc)).await;
    user.wait(
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
    let (inc, _, called) = user.incoming().await;
    assert_eq!(called, "2000");
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
        let (inc, ch, _) = net.incoming().await;
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
