//! The server's signalling core, whole and sans-IO: the gate in front
//! (`sip::gate`), the SIP core (`sip::endpoint`), the SIP legs glue
//! (`sip_legs`) and the call registry (`call::registry`), with every effect
//! outside the signalling task behind [`Env`]. The tokio loop in
//! `server::serve` only feeds it datagrams, script commands and timeouts
//! and sends what it asks; tests and the whole-server fuzz target drive it
//! on a virtual clock.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use super::env::Env;
use super::pri_legs::PriLegs;
use super::sip_legs::SipLegs;
use crate::call::cause::Cause;
use crate::call::channel::SigCommand;
use crate::call::control::CallEnded;
use crate::call::id::CallId;
use crate::call::leg::LegCommand;
use crate::call::registry::{OriginateRequest, Output as RegOutput, Registry, ScriptCommand};
use crate::sip::endpoint::{Endpoint, Output as EpOutput};
use crate::sip::gate::{Gate, GateVerdict};
use crate::sip::message::Transport;

/// Bytes for the transports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub transport: Transport,
    pub dest: SocketAddr,
    pub bytes: Vec<u8>,
}

pub struct ServerCore<E: Env> {
    pub gate: Gate,
    pub endpoint: Endpoint,
    pub registry: Registry,
    pub legs: SipLegs,
    pub pri: PriLegs,
    pub env: E,
    transmits: VecDeque<Transmit>,
}

impl<E: Env> ServerCore<E> {
    pub fn new(gate: Gate, endpoint: Endpoint, registry: Registry, legs: SipLegs, env: E) -> Self {
        ServerCore {
            gate,
            endpoint,
            registry,
            legs,
            pri: PriLegs::new(Vec::new(), Vec::new()),
            env,
            transmits: VecDeque::new(),
        }
    }

    /// The PRI spans and trunks (none by default).
    pub fn with_pri(mut self, pri: PriLegs) -> Self {
        self.pri = pri;
        self
    }

    /// The next command for a span (by its index in the config).
    #[must_use]
    pub fn poll_span_command(&mut self) -> Option<(usize, crate::pri::span::SpanCommand)> {
        self.pri.poll_command()
    }

    /// An event of span number `span`.
    pub fn handle_span_event(
        &mut self,
        now: Instant,
        span: usize,
        ev: crate::pri::span::SpanEvent,
    ) {
        self.pri
            .on_span_event(now, span, ev, &mut self.registry, &mut self.env);
        self.drain(now);
    }

    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.endpoint.poll_timeout(), self.registry.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Places a call.
    pub fn originate(&mut self, now: Instant, req: OriginateRequest) -> CallId {
        let call = self.registry.originate(now, req);
        self.drain(now);
        call
    }

    /// Calls with a leg still up.
    pub fn active(&self) -> usize {
        self.registry.active()
    }

    /// Calls not yet closed or whose CDR rows are not yet stored, and
    /// calls the SIP core still holds.
    pub fn tracked(&self) -> usize {
        (self.registry.tracked() + self.env.cdrs_pending())
            .max(self.endpoint.active_calls())
            .max(self.pri.pending())
    }

    /// One datagram, or one message framed from a stream.
    pub fn handle_inbound(
        &mut self,
        now: Instant,
        transport: Transport,
        source: SocketAddr,
        bytes: &[u8],
    ) {
        match self.gate.check(now, source.ip(), bytes) {
            GateVerdict::Pass => {
                // An OPTIONS probe is answered from the state of this
                // moment: 503 while draining or full, 200 otherwise.
                self.endpoint.set_unavailable(
                    self.registry
                        .unavailable()
                        .map(crate::rate::retry_after_secs),
                );
                self.endpoint.handle_input(now, transport, source, bytes)
            }
            // Stateless, and back to the packet's own source.
            GateVerdict::Reply(b) => self.transmits.push_back(Transmit {
                transport,
                dest: source,
                bytes: b,
            }),
            GateVerdict::Drop => {}
        }
        self.drain(now);
    }

    /// A request from a script or from a call's media.
    pub fn handle_sig(&mut self, now: Instant, cmd: SigCommand) {
        match cmd {
            SigCommand::Script { call, cmd, reply } => {
                let mut r = self.registry.script_command(now, call, cmd);
                self.drain(now);
                // The transport may have found the call gone meanwhile.
                if r.is_ok()
                    && !matches!(cmd, ScriptCommand::Reject { .. })
                    && !self.registry.caller_live(call)
                {
                    r = Err(CallEnded);
                }
                let _ = reply.send(r);
            }
            SigCommand::Hangup(call) => {
                let _ = self
                    .registry
                    .script_command(now, call, ScriptCommand::Hangup);
            }
            SigCommand::ScriptDone { call, outcome } => {
                let results = self.env.results(call);
                self.registry.script_done(now, call, outcome, results);
            }
            SigCommand::Dial { call, request } => self.registry.dial(now, call, request),
            SigCommand::Transfer { call, request } => self.registry.transfer(now, call, request),
            SigCommand::CdrStored(call) => self.env.cdr_stored(call),
            SigCommand::DialAmd {
                leg, answered_by, ..
            } => self.registry.dial_amd_verdict(now, leg, answered_by),
            SigCommand::EarlyMedia { leg, heard, .. } => {
                self.registry.early_media_heard(leg, heard)
            }
            SigCommand::MediaFailed(call) => {
                tracing::warn!(call = %call, "the call's media failed; ending the call");
                self.registry.abort_call(
                    now,
                    call,
                    Cause::TEMPORARY_FAILURE,
                    Some(500),
                    "media-failed",
                );
            }
        }
        self.drain(now);
    }

    /// The SIP core's due timers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.endpoint.handle_timeout(now);
        self.drain(now);
        self.registry.handle_timeout(now);
        self.drain(now);
    }

    /// rivr could not open a TCP connection to `dest`: what waited on it
    /// ends now (an INVITE as unreachable, a keepalive as down).
    pub fn connect_failed(&mut self, now: Instant, dest: SocketAddr) {
        self.endpoint.connect_failed(now, dest);
        self.drain(now);
    }

    /// Starts registrations and keepalives of the trunks.
    pub fn start_trunk_links(&mut self, now: Instant, keepalive: bool) {
        self.legs
            .start_trunk_links(now, keepalive, &mut self.endpoint);
        self.drain(now);
    }

    /// While the server drains: new calls (INVITE, a PRI SETUP) are refused
    /// and OPTIONS outside a dialog answered 503, both asking the peer to
    /// wait `retry_after`; the calls in progress go on. `None` ends it.
    pub fn set_draining(&mut self, retry_after: Option<std::time::Duration>) {
        self.registry.set_draining(retry_after);
        self.endpoint
            .set_unavailable(retry_after.map(crate::rate::retry_after_secs));
    }

    /// Shutdown: every call is ended, every registration withdrawn.
    pub fn hangup_all(&mut self, now: Instant) {
        self.registry.hangup_all(now);
        self.endpoint.unregister_all(now);
        self.drain(now);
    }

    /// End of shutdown: calls whose scripts did not finish are closed.
    pub fn flush_unfinished(&mut self, now: Instant) {
        self.registry.flush_unfinished(now);
        self.drain(now);
    }

    /// After a panic while handling `bytes`: ends the call they belong to,
    /// if one can be found.
    pub fn abort_call_of_message(&mut self, now: Instant, bytes: &[u8]) {
        let leg = self
            .endpoint
            .call_of_message(bytes)
            .and_then(|cref| self.legs.leg_of(cref));
        if let Some(call) = leg.and_then(|l| self.registry.call_of(l)) {
            self.abort_call(now, call);
        }
    }

    /// Ends `call` at once (a cancelled campaign): CANCEL while it rings,
    /// BYE once answered; CDR end `cancelled-by-campaign`.
    pub fn end_call(&mut self, now: Instant, call: CallId) {
        self.registry.abort_call(
            now,
            call,
            crate::call::cause::Cause::NORMAL_CLEARING,
            None,
            "campaign-cancel",
        );
        self.drain(now);
    }

    /// Ends `call` for an operator (the HTTP API): BYE once answered, else
    /// a refusal; its CDRs say `operator-hangup`.
    pub fn operator_hangup(&mut self, now: Instant, call: CallId) {
        self.registry.abort_call(
            now,
            call,
            crate::call::cause::Cause::NORMAL_CLEARING,
            Some(480),
            "operator-hangup",
        );
        self.drain(now);
    }

    /// Ends a call a dead process placed (tag `tag`, on `trunk`) from
    /// its stored dialog: CANCEL while it rang, BYE once answered.
    pub fn end_orphan(
        &mut self,
        now: Instant,
        tag: String,
        trunk: Option<&str>,
        dialog: crate::sip::endpoint::OutDialog,
    ) {
        self.legs
            .end_orphan(now, tag, trunk, dialog, &mut self.endpoint);
        self.drain(now);
    }

    /// After a panic while handling something of `call`: ends it (500
    /// before the answer, BYE after), CDR end `signalling-panic`.
    pub fn abort_call(&mut self, now: Instant, call: CallId) {
        self.registry.abort_call(
            now,
            call,
            Cause::TEMPORARY_FAILURE,
            Some(500),
            "signalling-panic",
        );
        self.drain(now);
    }

    /// Runs every decision to its end: the SIP core's output (bytes, events
    /// for the legs), then the registry's (leg commands, scripts, CDRs),
    /// until neither has more (an event can cause a command and back).
    fn drain(&mut self, now: Instant) {
        loop {
            let mut busy = false;
            while let Some(out) = self.endpoint.poll_output() {
                busy = true;
                match out {
                    EpOutput::Transmit {
                        transport,
                        dest,
                        bytes,
                    } => self.transmits.push_back(Transmit {
                        transport,
                        dest,
                        bytes,
                    }),
                    EpOutput::Event(ev) => self.legs.on_event(
                        now,
                        ev,
                        &mut self.endpoint,
                        &mut self.registry,
                        &mut self.env,
                    ),
                }
            }
            while let Some(out) = self.registry.poll_output() {
                busy = true;
                match out {
                    RegOutput::Leg(leg, cmd) => {
                        let pri = match &cmd {
                            LegCommand::Originate { trunk: Some(t), .. } => {
                                self.pri.is_pri_trunk(t)
                            }
                            LegCommand::Originate { .. } => false,
                            _ => self.pri.owns(leg),
                        };
                        if pri {
                            self.pri
                                .apply(now, leg, cmd, &mut self.registry, &mut self.env)
                        } else {
                            self.legs.apply(
                                now,
                                leg,
                                cmd,
                                &mut self.endpoint,
                                &mut self.registry,
                                &mut self.env,
                            )
                        }
                    }
                    RegOutput::StartScript(start) => {
                        if let Err(e) = self.env.start_script(&start) {
                            tracing::error!(call = %start.call, error = %e, "cannot start the script: 503");
                            self.registry.script_not_started(
                                now,
                                start.call,
                                Cause::SWITCHING_CONGESTION,
                                Some(503),
                                "no script thread",
                            );
                        } else {
                            tracing::info!(
                                call = %start.call,
                                id = %start.info.id,
                                number = ?start.info.to,
                                script = %start.script.display(),
                                "call started"
                            );
                        }
                    }
                    RegOutput::CallGone(call) => self.env.call_gone(call),
                    RegOutput::Cdr(record) => self.env.write_cdr(&record),
                    RegOutput::Closed(call) => self.env.call_closed(call),
                    RegOutput::Ringback { leg, on } => self.env.ringback(leg, on),
                    RegOutput::Join { listener, source } => self.env.join(listener, source),
                    RegOutput::Unjoin { listener } => self.env.unjoin(listener),
                    RegOutput::DialEnded { call, result } => self.env.dial_ended(call, result),
                    RegOutput::TransferEnded { call, result } => {
                        self.env.transfer_ended(call, result)
                    }
                    RegOutput::DetectMachine { leg } => self.env.detect_machine(leg),
                    RegOutput::ClassifyEarlyMedia { leg, on } => {
                        self.env.classify_early_media(leg, on)
                    }
                }
            }
            if !busy {
                return;
            }
        }
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
