//! One span's signalling as a tokio task: the D-channel driver
//! (`dchannel`: the span's wire, socket or DAHDI, and LAPD) under Q.931
//! call control (`q931::CallControl`). The layer above sends [`SpanCommand`]s and hears
//! [`SpanEvent`]s; every protocol decision stays in the sans-IO cores.
//! B-channel media is not here (docs/pri.md).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::dchannel::{self, DEvent};
use super::q921::LinkConfig;
use super::q931::{self, ApiError, CallControl, CallEvent, CallId, OutgoingCall, SetupError};
use crate::call::cause::Cause;
use crate::config::SpanTransport;

/// A span's signalling configuration.
#[derive(Debug, Clone)]
pub struct SpanSignalling {
    /// The D-channel: the peer's listening socket, or a DAHDI channel.
    pub dchannel: PathBuf,
    pub transport: SpanTransport,
    pub link: LinkConfig,
    pub calls: q931::Config,
}

/// A request of the layer above.
#[derive(Debug)]
pub enum SpanCommand {
    /// Place a call; answered by [`SpanEvent::Placed`] with the same
    /// `token` (the layer above picks it, so it can match the answer
    /// without waiting for it).
    Setup {
        token: u64,
        call: Box<OutgoingCall>,
    },
    Proceeding(CallId),
    Alerting(CallId),
    /// ALERTING with progress 8: rivr plays the ringback or an
    /// announcement in-band (early media).
    AlertingInband(CallId),
    Connect(CallId),
    Disconnect(CallId, Cause),
    Reject(CallId, Cause),
    RestartAll,
}

/// What the span reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanEvent {
    LinkUp,
    LinkDown,
    /// The answer to [`SpanCommand::Setup`] `token`: the call's id, or why
    /// no SETUP went out.
    Placed {
        token: u64,
        result: Result<CallId, SetupError>,
        /// The channel the SETUP offered (the network may move the call).
        channel: Option<u8>,
    },
    Call(CallEvent),
    /// A request for a call in the wrong state or gone.
    Refused(CallId, ApiError),
}

/// Runs the span until `commands` closes (or the event receiver goes).
pub async fn run(
    cfg: SpanSignalling,
    mut commands: mpsc::Receiver<SpanCommand>,
    events: mpsc::Sender<SpanEvent>,
) {
    let (to_d, from_l3) = mpsc::channel(256);
    let (d_events, mut from_d) = mpsc::channel(256);
    let driver = tokio::spawn(dchannel::run(
        cfg.dchannel.clone(),
        cfg.transport,
        cfg.link.clone(),
        from_l3,
        d_events,
    ));
    let mut cc = CallControl::new(cfg.calls.clone());
    loop {
        while let Some(m) = cc.poll_transmit() {
            if to_d.send(m).await.is_err() {
                break;
            }
        }
        while let Some(ev) = cc.poll_event() {
            if events.send(SpanEvent::Call(ev)).await.is_err() {
                driver.abort();
                return;
            }
        }
        let deadline = cc
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = from_d.recv() => {
                let now = Instant::now();
                let report = match ev {
                    Some(DEvent::Up) => { cc.link_up(now); Some(SpanEvent::LinkUp) }
                    Some(DEvent::Down) => { cc.link_down(now); Some(SpanEvent::LinkDown) }
                    Some(DEvent::Message(m)) => { cc.receive(now, &m); None }
                    None => { return; }
                };
                if let Some(r) = report {
                    if events.send(r).await.is_err() {
                        driver.abort();
                        return;
                    }
                }
            }
            c = commands.recv() => {
                let Some(c) = c else {
                    driver.abort();
                    return;
                };
                if let Some(answer) = apply(&mut cc, c) {
                    let _ = events.send(answer).await;
                }
            }
            _ = tokio::time::sleep_until(deadline) => cc.handle_timeout(Instant::now()),
        }
    }
}

fn apply(cc: &mut CallControl, c: SpanCommand) -> Option<SpanEvent> {
    let now = Instant::now();
    let (call, r) = match c {
        SpanCommand::Setup { token, call } => {
            let result = cc.setup(now, *call);
            let channel = result.ok().and_then(|id| cc.channel(id));
            return Some(SpanEvent::Placed {
                token,
                result,
                channel,
            });
        }
        SpanCommand::Proceeding(call) => (call, cc.proceeding(now, call)),
        SpanCommand::Alerting(call) => (call, cc.alerting(now, call, false)),
        SpanCommand::AlertingInband(call) => (call, cc.alerting(now, call, true)),
        SpanCommand::Connect(call) => (call, cc.connect(now, call)),
        SpanCommand::Disconnect(call, cause) => (call, cc.disconnect(now, call, cause)),
        SpanCommand::Reject(call, cause) => (call, cc.reject(now, call, cause)),
        SpanCommand::RestartAll => {
            cc.restart_all(now);
            return None;
        }
    };
    r.err().map(|e| SpanEvent::Refused(call, e))
}
