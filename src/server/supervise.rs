//! Supervision of the signalling task. Each unit of work it does — one SIP
//! message through the core, one core event or one script command through
//! `Calls`, one round of timers — runs under `catch_unwind`: a panic there
//! is logged (the source address and the message escaped), counted, and
//! ends the call it concerned when that call is known (500 before the
//! answer, BYE after; its script sees a hangup, its CDR says
//! `signalling-panic`). The task, the SIP core and every other call go on.
//!
//! A panic leaves the unwound call's state half-updated; ending that call
//! is what makes the half-update harmless. Panics in the glue around these
//! units (the `select!` loop itself) are not caught: that code is a few
//! lines with nothing to index or parse.

use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Calls;
use crate::call::channel::SigCommand;
use crate::sip::endpoint::{CallRef, Endpoint, Event};
use crate::sip::transport::Inbound;
use crate::supervision::panic_message;

/// After a panic in the timer round, timers are not run again for this
/// long, so a timer that panics every time cannot spin the task.
const TIMER_HOLD: Duration = Duration::from_millis(100);

/// What the supervision of the signalling task counted.
#[derive(Debug, Default)]
pub struct SignallingStats {
    /// Panics caught while handling a message, event, command or timer.
    pub panics: AtomicU64,
    /// Calls ended because handling something of theirs panicked.
    pub calls_ended: AtomicU64,
}

/// The signalling task's supervisor: it runs each unit of work guarded.
#[derive(Debug, Default)]
pub struct Supervisor {
    pub stats: SignallingStats,
    /// Set after a timer round panicked: no timers before then.
    timers_held_until: Option<Instant>,
}

impl Supervisor {
    /// Runs `f`; on a panic logs and counts it and returns `None`.
    pub fn guard<R>(
        &self,
        what: &'static str,
        source: Option<SocketAddr>,
        call: Option<CallRef>,
        f: impl FnOnce() -> R,
    ) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(payload) => {
                let n = self
                    .stats
                    .panics
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                let message = panic_message(payload.as_ref());
                tracing::error!(
                    what,
                    ?source,
                    ?call,
                    ?message,
                    panics = n,
                    "panic in the signalling task; it goes on"
                );
                None
            }
        }
    }

    /// One message from the transports through the SIP core.
    pub fn on_inbound(&self, endpoint: &mut Endpoint, calls: &mut Calls, msg: Inbound) {
        let Inbound {
            transport,
            source,
            bytes,
        } = msg;
        let handled = self.guard("SIP message", Some(source), None, || {
            endpoint.handle_input(Instant::now(), transport, source, &bytes)
        });
        if handled.is_none() {
            let call = self
                .guard(
                    "finding the call of a SIP message",
                    Some(source),
                    None,
                    || endpoint.call_of_message(&bytes),
                )
                .flatten();
            if let Some(call) = call {
                self.end_call(endpoint, calls, call);
            }
        }
    }

    /// One event of the core through `Calls`.
    pub fn on_event(&self, endpoint: &mut Endpoint, calls: &mut Calls, ev: Event) {
        let call = event_call(&ev);
        let source = match &ev {
            Event::IncomingCall { source, .. } => Some(*source),
            _ => None,
        };
        if self
            .guard("SIP core event", source, Some(call), || {
                calls.on_event(endpoint, ev)
            })
            .is_none()
        {
            self.end_call(endpoint, calls, call);
        }
    }

    /// One command of a script through `Calls`.
    pub fn on_command(&self, endpoint: &mut Endpoint, calls: &mut Calls, cmd: SigCommand) {
        let call = command_call(&cmd);
        if self
            .guard("script command", None, Some(call), || {
                calls.on_command(endpoint, cmd)
            })
            .is_none()
        {
            self.end_call(endpoint, calls, call);
        }
    }

    /// The core's due timers.
    pub fn on_timeout(&mut self, endpoint: &mut Endpoint, now: Instant) {
        if self.timers_held_until.is_some_and(|t| now < t) {
            return;
        }
        self.timers_held_until = None;
        if self
            .guard("SIP timers", None, None, || endpoint.handle_timeout(now))
            .is_none()
        {
            self.timers_held_until = Some(now + TIMER_HOLD);
        }
    }

    /// When the task should next run the core's timers.
    pub fn next_timer(&self, endpoint: &Endpoint) -> Option<Instant> {
        let due = endpoint.poll_timeout()?;
        Some(self.timers_held_until.map_or(due, |held| due.max(held)))
    }

    /// Ends `call` after a panic: 500 if unanswered, else BYE; `Calls`
    /// stops its media, tells its script and writes its CDR.
    fn end_call(&self, endpoint: &mut Endpoint, calls: &mut Calls, call: CallRef) {
        self.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(call, "ending the call after a panic in its signalling");
        self.guard("ending a call after a panic", None, Some(call), || {
            let now = Instant::now();
            if endpoint.reject(now, call, 500).is_err() {
                let _ = endpoint.hangup(now, call);
            }
            calls.finish(call, "signalling-panic");
        });
    }
}

fn event_call(ev: &Event) -> CallRef {
    match ev {
        Event::IncomingCall { call, .. }
        | Event::Confirmed { call, .. }
        | Event::ReInvite { call, .. }
        | Event::Info { call, .. }
        | Event::Ended { call, .. } => *call,
    }
}

fn command_call(cmd: &SigCommand) -> CallRef {
    match cmd {
        SigCommand::Answer(call, _)
        | SigCommand::Ring(call, ..)
        | SigCommand::Reject(call, ..)
        | SigCommand::Hangup(call)
        | SigCommand::ScriptDone(call, _) => *call,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::endpoint::EndpointConfig;
    use crate::sip::message::Transport;
    use crate::sip::transaction::TimerConfig;

    #[test]
    fn a_panic_is_caught_counted_and_the_next_call_works() {
        let sup = Supervisor::default();
        let source: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let r = sup.guard("test", Some(source), Some(7), || -> u8 {
            panic!("bad input \0 here")
        });
        assert_eq!(r, None);
        assert_eq!(sup.stats.panics.load(Ordering::Relaxed), 1);
        assert_eq!(sup.guard("test", None, None, || 5), Some(5));
        assert_eq!(sup.stats.panics.load(Ordering::Relaxed), 1);
    }

    /// A timer round that panics holds timers back for `TIMER_HOLD`, so a
    /// timer that panics every time cannot spin the task; then they run.
    #[test]
    fn timers_are_held_after_a_panic_then_resume() {
        let mut sup = Supervisor::default();
        let mut ep = Endpoint::new(EndpointConfig {
            local_addr: "127.0.0.1:5060".parse().unwrap(),
            user_agent: "t".into(),
            timers: TimerConfig::default(),
            seed: 1,
        });
        assert_eq!(sup.next_timer(&ep), None);
        let invite = "INVITE sip:1000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:1000@127.0.0.1>\r\nCall-ID: t1\r\nCSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n";
        let peer: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        let t0 = Instant::now();
        ep.handle_input(t0, Transport::Udp, peer, invite.as_bytes());
        let call = std::iter::from_fn(|| ep.poll_output())
            .find_map(|o| match o {
                crate::sip::endpoint::Output::Event(Event::IncomingCall { call, .. }) => Some(call),
                _ => None,
            })
            .expect("an incoming call");
        // the 486 is retransmitted on timer G until an ACK
        ep.reject(t0, call, 486).unwrap();
        let due = sup
            .next_timer(&ep)
            .expect("the INVITE transaction has timers");
        let held = Instant::now() + TIMER_HOLD;
        sup.timers_held_until = Some(held);
        assert_eq!(sup.next_timer(&ep), Some(due.max(held)));
        assert!(sup.next_timer(&ep).unwrap() >= held);
        // while held, a round does nothing; after, timers run again
        sup.on_timeout(&mut ep, held - Duration::from_millis(1));
        assert_eq!(sup.timers_held_until, Some(held));
        sup.on_timeout(&mut ep, held);
        assert_eq!(sup.timers_held_until, None);
        assert_eq!(sup.next_timer(&ep), Some(due));
    }
}
