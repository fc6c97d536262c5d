//! Calls a dead rivr process placed and left ringing or up at the carrier
//! ("orphans"). While a call lives, the layer above stores its
//! [`OutDialog`] (from [`Endpoint::out_dialog`]); after a crash the new
//! process ends it from that with [`Endpoint::end_orphan`]: a CANCEL with
//! the INVITE's own branch, Call-ID, From, To and CSeq while it rang
//! (RFC 3261 §9.1), a BYE with a CSeq well above the last one once it was
//! answered (§12.2.1.1). From there the call runs through the UAC half like
//! any other: the 487 is ACKed, a 2xx that crosses the CANCEL is ACKed and
//! ended with BYE (§13.2.2.4, as for any 2xx after rivr gave up), and the
//! call ends with `Event::Failed` (unanswered: the 487, a 481 to the
//! CANCEL, or 64·T1 without a final) or `Event::Ended` (its BYE done).
//!
//! The new process must listen where the dead one did: the far end sends
//! the INVITE's responses to its Via.

use std::net::SocketAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::uac::{Credentials, OutLeg};
use super::{CallRef, Endpoint};

/// How far an adopted dialog's CSeq jumps before its BYE: above any
/// refresh (UPDATE, re-INVITE) the dead process sent after the dialog was
/// stored, and still far below 2^31.
pub(super) const CSEQ_JUMP: u32 = 1 << 16;

/// What ends a call rivr placed from another process: the INVITE's
/// addressing and ids, and once answered the dialog the 2xx formed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutDialog {
    /// TCP to `dest` (else UDP).
    pub tcp: bool,
    pub dest: SocketAddr,
    pub request_uri: String,
    /// The INVITE's To (no tag).
    pub to: String,
    pub from_user: String,
    pub from_host: String,
    pub from_display: Option<String>,
    pub local_tag: String,
    pub call_id: String,
    /// The CSeq of rivr's latest request in the call.
    pub cseq: u32,
    /// The branch of the INVITE now in progress.
    pub branch: String,
    /// The INVITE's Route (an outbound proxy).
    pub route: Vec<String>,
    /// Set once answered.
    pub remote_tag: Option<String>,
    pub remote_to: Option<String>,
    pub remote_target: Option<String>,
    pub route_set: Vec<String>,
}

impl OutDialog {
    /// The far end answered (a BYE ends it, not a CANCEL).
    pub fn answered(&self) -> bool {
        self.remote_tag.is_some()
    }
}

impl Endpoint {
    /// Ends a call a dead process placed, from its stored dialog: CANCEL
    /// if it was unanswered, BYE if answered. `credentials` answer a
    /// challenge to the BYE. Returns the ref its end is reported under.
    pub fn end_orphan(
        &mut self,
        now: Instant,
        dialog: OutDialog,
        credentials: Option<Credentials>,
    ) -> CallRef {
        let call = self.next_call;
        self.next_call += 1;
        let answered = dialog.answered();
        let leg = OutLeg::adopted(dialog, credentials);
        let key = leg.dialog_key();
        self.out.insert(call, leg);
        if answered {
            // The far end's own BYE may cross rivr's.
            if let Some(key) = key {
                self.dialogs.insert(key, call);
            }
        } else {
            self.adopt_ict(now, call);
        }
        tracing::info!(call, answered, "ending a call a previous process left");
        let _ = self.hangup_out(now, call);
        call
    }
}
