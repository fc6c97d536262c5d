//! Q.931 call control on the D-channel (ITU-T Q.931, with the ETSI
//! EN 300 403 and National ISDN-2 variants): the message codec, and the
//! call state machines built on it. Neither knows LAPD: whole layer 3
//! messages and "link up / link down" cross the boundary.
//!
//! # The message codec
//!
//! The codec owns the octets of a layer 3 message and nothing else — no
//! call state, no timer, no channel allocation. What it offers:
//!
//! - [`Message::decode`] / [`Message::encode`]: the header is checked
//!   strictly and each failure is a [`DecodeError`] meaning "ignore the
//!   message" (Q.931 §5.8.1–5.8.3.1); the elements are framed eagerly
//!   (shifts and codesets resolved, unknown elements kept, §5.8.7.1) and
//!   decoded lazily, so a bad optional element never loses the message
//!   and a bad mandatory one is an [`ie::IeError`] the state machine
//!   answers with cause 100 (§5.8.6.2).
//! - Typed elements in [`ie`]: bearer capability, channel identification,
//!   called/calling/connected numbers, cause (carrying
//!   [`crate::call::cause::Cause`]), progress, restart indicator, call
//!   state, display, keypad, sending complete.
//! - Builders for the messages call control sends ([`Message::setup`],
//!   [`Message::alerting`], [`Message::disconnect`], [`Message::restart`],
//!   …), with the ETSI/NI-2 differences behind [`Variant`].
//!
//! Nothing here panics on input: every read of wire octets is checked,
//! and the `q931` fuzz target (`rivr::fuzzing::q931`) holds the decoder
//! to decode → encode → decode giving the same message.
//!
//! Received messages re-encode to the same elements in the same codesets,
//! not always the same octets: a locking shift comes back as a
//! non-locking shift per element, and obsolete 1988 extension octets
//! (bearer capability 3a/4a/4b) are dropped.
//!
//! # Call control
//!
//! [`CallControl`] runs the calls of one D-channel, as the user side or
//! the network side ([`Config`]), sans-IO: inputs carry `now`, outputs
//! are polled, and nothing reads a clock or owns a socket.
//!
//! ```ignore
//! let mut cc = CallControl::new(Config::new(Side::User, Variant::Etsi));
//! cc.link_up(now);                        // LAPD established
//! let call = cc.setup(now, OutgoingCall::new(number))?;
//! loop {
//!     // feed: cc.receive(now, &i_frame), cc.link_down(now), requests
//!     // (proceeding, alerting, connect, disconnect, reject, …), and
//!     // cc.handle_timeout(now) at cc.poll_timeout()
//!     while let Some(msg) = cc.poll_transmit() { /* to LAPD */ }
//!     while let Some(ev) = cc.poll_event() { /* Incoming, Connected, Released{cause}, … */ }
//! }
//! ```
//!
//! What it implements, and the choices made where Q.931 leaves one:
//!
//! - States (§2.1) are kept by role — this side sent the SETUP or got
//!   it — since the procedures of a role are the same on both sides;
//!   STATUS reports them in Q.931's user-centred numbering (U1 and N1 are
//!   both "the user sent SETUP"). Establishment: SETUP, SETUP
//!   ACKNOWLEDGE and INFORMATION (overlap both ways), CALL PROCEEDING,
//!   ALERTING, PROGRESS, CONNECT, CONNECT ACKNOWLEDGE (the user side is
//!   active on it, the network side on sending CONNECT).
//! - Clearing (§5.3): a received DISCONNECT is reported (`Disconnected`,
//!   stop the media) and answered with RELEASE at once — in-band tones
//!   after it are not waited for. `Released` comes exactly once per call,
//!   when its channel is free, with the call's first clearing cause, sent
//!   or received; the layer above maps it to an outcome (17 busy, 18/19
//!   no answer, 1 unallocated, 34 no circuit, 16 normal…).
//! - Timers ([`Timers`], Tables 9-1/9-2): T301 (clears with 19), T302
//!   (ends overlap receiving with `Digits { complete: true }`; the layer
//!   above decides), T303 (SETUP twice, then RELEASE COMPLETE 102; the
//!   network side reports 18), T304, T310, T313 (DISCONNECT 102), T305
//!   (RELEASE), T308 (RELEASE twice, then the call ends and its channel
//!   is restarted — Q.931's "maintenance"), T309 (90 s, Q.931 and
//!   EN 300 403 alike: an active call survives a link outage that short;
//!   on expiry cause 27, as §5.8.9 says), T316 (RESTART, `n316` times),
//!   T322 (STATUS ENQUIRY twice, then RELEASE 41). User T310 is 30 s, the
//!   bottom of Q.931's 30–120 s.
//! - Link (§5.8.9): `link_down` clears calls not active (cause 27) and
//!   starts T309 for active ones; `link_up` stops T309 and checks each
//!   survivor with STATUS ENQUIRY. `setup` is refused while the link is
//!   down; messages produced meanwhile are still offered to LAPD, and the
//!   timers recover whether LAPD queued or dropped them.
//! - Channels: a channel is held by one call at most. The network names
//!   the channel of a call it places (exclusive); the user proposes one
//!   (preferred, found by hunting) and takes the network's choice from
//!   its first answer, which must name a channel unless the user asked
//!   for one exclusively. Hunting defaults to ascending on the network
//!   side and descending on the user side ([`Hunt`]). Glare (two SETUPs
//!   for one channel) follows Q.931 Annex D.3: exclusive beats
//!   preferred, between equals the network wins; the loser's SETUP gets
//!   another channel or RELEASE COMPLETE 34.
//! - Errors (§5.8): unknown call reference → RELEASE COMPLETE 81 (STATUS
//!   ENQUIRY → STATUS Null; STATUS → RELEASE COMPLETE 101 unless Null;
//!   RELEASE COMPLETE and a wrongly flagged SETUP ignored); repeated
//!   SETUP ignored; unexpected message → STATUS 101; unknown or
//!   unimplemented type (FACILITY included) → STATUS 97; an element that
//!   must be understood and is not → 96; SETUP missing or with bad
//!   mandatory elements → RELEASE COMPLETE 96/100, non-voice bearer 65,
//!   channel 82/44/34/6; DISCONNECT or RELEASE without a cause count as
//!   31 and are answered with 96/100; messages crossing our DISCONNECT or
//!   RELEASE are dropped. STATUS (§5.8.11): Null releases the call (41),
//!   an incompatible state releases it with 101, and a STATUS is never
//!   answered with a STATUS, so two confused ends cannot loop.
//! - RESTART (§5.5): the peer's releases the calls on its channels (or
//!   all) without messages (cause 41) and is acknowledged with its own
//!   elements; ours go out one at a time, keep their channels out of
//!   service until acknowledged, and after `n316` tries put them back
//!   anyway (`RestartFailed`): a peer that ignores RESTART still takes
//!   calls.
//!
//! Not implemented: T306 and in-band tones after DISCONNECT, suspend and
//! resume (T307), segmentation, NI-2 SERVICE messages (another protocol
//! discriminator, for LAPD's caller to route), NFAS (Channel
//! identification naming another interface is refused with cause 6) and
//! slot maps, supplementary services (FACILITY gets STATUS 97, NOTIFY is
//! ignored).
//!
//! Tests run a user side and a network side back to back on a virtual
//! clock through a pipe that can lose, repeat and reorder messages, and
//! the `q931_calls` fuzz target (`rivr::fuzzing::q931_calls`) holds one
//! side's books and messages to account on arbitrary input.

mod api;
mod builders;
mod call_state;
mod calls;
mod channels;
mod clearing;
mod events;
mod expiry;
pub mod ie;
mod ies;
mod inbound;
mod message;
mod restart;
mod timers;

#[cfg(test)]
mod calls_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod vectors;

pub use builders::{SetupParams, Variant};
pub use calls::{CallControl, Config, Side};
pub use channels::Hunt;
pub use events::{ApiError, CallEvent, CallId, IncomingCall, OutgoingCall, SetupError};
pub use ie::{ChannelSel, Ia5, Ie, IeError, InfoElement};
pub use ies::{Ies, RawIe};
pub use message::{
    CallRef, DecodeError, EncodeError, Message, MessageType, PRI_CALL_REF_LEN,
    PROTOCOL_DISCRIMINATOR,
};
pub use timers::Timers;
