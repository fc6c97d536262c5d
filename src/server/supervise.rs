//! Supervision of the signalling task. Each unit of work it does — one SIP
//! message, one script command, one round of timers through the
//! `ServerCore` — runs under `catch_unwind`: a panic there
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

use super::core::ServerCore;
use super::env::Env;
use crate::call::channel::SigCommand;
use crate::call::id::CallId;
use crate::sip::transport::{Inbound, Up};
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
        call: Option<CallId>,
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

    /// One report of the transports through the core.
    pub fn on_inbound<E: Env>(&self, core: &mut ServerCore<E>, up: Up) {
        let msg = match up {
            Up::Message(m) => m,
            Up::ConnectFailed { dest } => {
                self.guard("TCP connect failure", Some(dest), None, || {
                    core.connect_failed(Instant::now(), dest)
                });
                return;
            }
        };
        let Inbound {
            transport,
            source,
            bytes,
        } = msg;
        let handled = self.guard("SIP message", Some(source), None, || {
            core.handle_inbound(Instant::now(), transport, source, &bytes)
        });
        if handled.is_none() {
            self.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
            self.guard(
                "ending the call of a SIP message",
                Some(source),
                None,
                || core.abort_call_of_message(Instant::now(), &bytes),
            );
        }
    }

    /// One request of a script (or of a call's media) through the core.
    pub fn on_command<E: Env>(&self, core: &mut ServerCore<E>, cmd: SigCommand) {
        let call = cmd.call();
        if self
            .guard("script command", None, Some(call), || {
                core.handle_sig(Instant::now(), cmd)
            })
            .is_none()
        {
            self.stats.calls_ended.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(call = %call, "ending the call after a panic in its signalling");
            self.guard("ending a call after a panic", None, Some(call), || {
                core.abort_call(Instant::now(), call)
            });
        }
    }

    /// The core's due timers.
    /// One event of a PRI span (`span` is its index).
    pub fn on_span_event<E: Env>(
        &self,
        core: &mut ServerCore<E>,
        span: usize,
        ev: crate::pri::span::SpanEvent,
    ) {
        self.guard("PRI span event", None, None, || {
            core.handle_span_event(Instant::now(), span, ev)
        });
    }

    pub fn on_timeout<E: Env>(&mut self, core: &mut ServerCore<E>, now: Instant) {
        if self.timers_held_until.is_some_and(|t| now < t) {
            return;
        }
        self.timers_held_until = None;
        if self
            .guard("SIP timers", None, None, || core.handle_timeout(now))
            .is_none()
        {
            self.timers_held_until = Some(now + TIMER_HOLD);
        }
    }

    /// When the task should next run the core's timers (`due`: the
    /// core's own next timeout).
    pub fn next_timer(&self, due: Option<Instant>) -> Option<Instant> {
        let due = due?;
        Some(self.timers_held_until.map_or(due, |held| due.max(held)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_caught_counted_and_the_next_call_works() {
        let sup = Supervisor::default();
        let source: SocketAddr = "192.0.2.1:5060".parse().unwrap();
        let r = sup.guard("test", Some(source), Some(CallId(7)), || -> u8 {
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
        let sup = Supervisor {
            timers_held_until: None,
            ..Default::default()
        };
        assert_eq!(sup.next_timer(None), None);
        let due = Instant::now();
        assert_eq!(sup.next_timer(Some(due)), Some(due));
        let held = due + TIMER_HOLD;
        let sup = Supervisor {
            timers_held_until: Some(held),
            ..Default::default()
        };
        assert_eq!(sup.next_timer(Some(due)), Some(held));
        assert_eq!(
            sup.next_timer(Some(held + TIMER_HOLD)),
            Some(held + TIMER_HOLD)
        );
    }
}
