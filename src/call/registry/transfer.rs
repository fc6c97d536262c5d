//! `transfer()`: a call's script hands its answered caller to another
//! party (a blind transfer; REFER on SIP). The caller's transport does the
//! work and reports how it went; on success rivr's leg ends (BYE) with
//! `transferred` in its CDR and the target in its reason, and the script
//! hears the result before the call is gone. On failure the call stays up
//! and the script goes on (it may `dial()` instead).

use std::time::Instant;

use super::{LegState, Output, Registry};
use crate::call::cause::Cause;
use crate::call::control::{TransferRequest, TransferResult};
use crate::call::id::{CallId, LegId};
use crate::call::leg::{EndKind, LegCommand, LegEnd};

impl Registry {
    /// The script of `call` transfers its caller. The answer comes as
    /// `Output::TransferEnded` (at once when the call cannot transfer).
    pub fn transfer(&mut self, _now: Instant, call: CallId, req: TransferRequest) {
        let refuse = |r: &mut Registry, status: u16, reason: &str| {
            r.outputs.push_back(Output::TransferEnded {
                call,
                result: TransferResult {
                    ok: false,
                    status,
                    reason: reason.into(),
                },
            });
        };
        let Some(c) = self.calls.get(&call) else {
            return;
        };
        let Some(caller) = c.legs.first().copied() else {
            return;
        };
        let bridged = c.legs.iter().skip(1).any(|l| self.leg_live(*l));
        match self.legs.get(&caller).map(|l| l.state) {
            Some(LegState::Answered) => {}
            Some(LegState::Ended) | None => return refuse(self, 481, "the call has ended"),
            Some(_) => return refuse(self, 409, "the call is not answered"),
        }
        if bridged {
            return refuse(self, 491, "the caller is bridged by dial()");
        }
        if self.transfers.contains_key(&caller) {
            return refuse(self, 491, "a transfer is in progress");
        }
        self.transfers.insert(caller, req.target.clone());
        self.outputs.push_back(Output::Leg(
            caller,
            LegCommand::Transfer {
                target: req.target,
                timeout: req.timeout,
            },
        ));
    }

    /// The caller's transport says how the transfer went.
    pub(super) fn transfer_ended(
        &mut self,
        now: Instant,
        leg: LegId,
        ok: bool,
        status: u16,
        reason: String,
    ) {
        let Some(target) = self.transfers.remove(&leg) else {
            return;
        };
        let Some(call) = self.legs.get(&leg).map(|l| l.call) else {
            return;
        };
        let id = self.call_id_text(call);
        tracing::info!(id = %id, %target, ok, status, %reason, "transfer ended");
        self.outputs.push_back(Output::TransferEnded {
            call,
            result: TransferResult { ok, status, reason },
        });
        if !ok {
            return;
        }
        // RFC 5589 §6: the transferor ends its dialog once the target
        // answered.
        if let Some(l) = self.legs.get_mut(&leg) {
            l.end_note = Some("transferred");
        }
        self.outputs.push_back(Output::Leg(
            leg,
            LegCommand::Hangup {
                cause: Cause::NORMAL_CLEARING,
            },
        ));
        let mut end = LegEnd::new(EndKind::LocalHangup, Cause::NORMAL_CLEARING);
        end.reason = Some(format!("transferred to {target}"));
        self.leg_ended(now, leg, end);
    }
}
