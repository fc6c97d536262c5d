//! Q.931 call control on the D-channel (ITU-T Q.931, with the ETSI
//! EN 300 403 and National ISDN-2 variants): the message codec.
//!
//! This module owns the octets of a layer 3 message and nothing else — no
//! call state, no timer, no channel allocation, no LAPD. What it offers
//! the call state machines built on it:
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

mod builders;
pub mod ie;
mod ies;
mod message;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod vectors;

pub use builders::{SetupParams, Variant};
pub use ie::{ChannelSel, Ia5, Ie, IeError, InfoElement};
pub use ies::{Ies, RawIe};
pub use message::{
    CallRef, DecodeError, EncodeError, Message, MessageType, PRI_CALL_REF_LEN,
    PROTOCOL_DISCRIMINATOR,
};
