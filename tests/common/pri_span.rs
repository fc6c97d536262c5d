//! One end of a PRI span as the tests drive it: `rivr::pri::span` running
//! in this process, its commands and its events, with waits that keep
//! what they pass over (tests/pri_libpri.rs, tests/pri_back_to_back.rs).

use std::path::PathBuf;
use std::time::Duration;

use rivr::call::cause::Cause;
use rivr::config::SpanTransport;
use rivr::pri::q921::LinkConfig;
use rivr::pri::q931::ie::{CalledNumber, NumberingPlan, TypeOfNumber};
use rivr::pri::q931::{self, CallEvent, CallId, IncomingCall, OutgoingCall, SetupError};
use rivr::pri::span::{self, SpanCommand, SpanEvent, SpanSignalling};
use tokio::sync::mpsc;

/// A Q.931 exchange between local ends.
pub const T: Duration = Duration::from_secs(5);

pub struct SpanEnd {
    pub commands: mpsc::Sender<SpanCommand>,
    events: mpsc::Receiver<SpanEvent>,
    /// Events read while waiting for others.
    pub seen: Vec<SpanEvent>,
    /// Printed when a wait fails (the other end's output).
    pub context: Box<dyn Fn() -> String + Send>,
    /// The last `SpanCommand::Setup` token used.
    tokens: u64,
}

impl SpanEnd {
    /// Starts `span::run` for the D-channel at `dchannel`.
    pub fn start(dchannel: PathBuf, link: LinkConfig, calls: q931::Config) -> SpanEnd {
        let (commands, rx) = mpsc::channel(64);
        let (tx, events) = mpsc::channel(256);
        tokio::spawn(span::run(
            SpanSignalling {
                dchannel,
                transport: SpanTransport::Socket,
                link,
                calls,
            },
            rx,
            tx,
        ));
        SpanEnd {
            commands,
            events,
            seen: Vec::new(),
            context: Box::new(String::new),
            tokens: 0,
        }
    }

    /// The first event (already seen or to come) that `pred` accepts.
    pub async fn wait(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&SpanEvent) -> bool,
    ) -> SpanEvent {
        if let Some(i) = self.seen.iter().position(&pred) {
            return self.seen.remove(i);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) if pred(&e) => return e,
                Ok(Some(e)) => self.seen.push(e),
                _ => panic!(
                    "no {what} within {timeout:?}; seen {:?}\n{}",
                    self.seen,
                    (self.context)()
                ),
            }
        }
    }

    pub async fn send(&self, c: SpanCommand) {
        self.commands.send(c).await.expect("span running");
    }

    pub async fn setup(&mut self, number: &str) -> Result<CallId, SetupError> {
        let called = CalledNumber::new(TypeOfNumber::Unknown, NumberingPlan::Isdn, number)
            .expect("a valid number");
        self.tokens += 1;
        let token = self.tokens;
        self.send(SpanCommand::Setup {
            token,
            call: Box::new(OutgoingCall::new(called)),
        })
        .await;
        match self
            .wait(
                T,
                "the SETUP's answer",
                |e| matches!(e, SpanEvent::Placed { token: t, .. } if *t == token),
            )
            .await
        {
            SpanEvent::Placed { result, .. } => result,
            _ => unreachable!(),
        }
    }

    pub async fn incoming(&mut self) -> Box<IncomingCall> {
        match self
            .wait(T, "incoming", |e| {
                matches!(e, SpanEvent::Call(CallEvent::Incoming(_)))
            })
            .await
        {
            SpanEvent::Call(CallEvent::Incoming(i)) => i,
            _ => unreachable!(),
        }
    }

    /// The channel `call` is answered on.
    pub async fn connected(&mut self, call: CallId) -> u8 {
        match self
            .wait(T, "connect", |e| {
                matches!(e, SpanEvent::Call(CallEvent::Connected { call: c, .. }) if *c == call)
            })
            .await
        {
            SpanEvent::Call(CallEvent::Connected { channel, .. }) => channel,
            _ => unreachable!(),
        }
    }

    /// The cause `call` ended with.
    pub async fn released(&mut self, call: CallId) -> Cause {
        match self
            .wait(
                T,
                "release",
                |e| matches!(e, SpanEvent::Call(CallEvent::Released { call: c, .. }) if *c == call),
            )
            .await
        {
            SpanEvent::Call(CallEvent::Released { cause, .. }) => cause,
            _ => unreachable!(),
        }
    }
}
