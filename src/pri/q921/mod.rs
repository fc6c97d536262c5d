//! Q.921 (LAPD), the D-channel's data link, sans-IO: the frame codec
//! ([`frame`]) and the point-to-point data link entity ([`Link`]) that a
//! PRI runs on SAPI 0, TEI 0, as the user side or (for back-to-back tests
//! and a simulated exchange) the network side.
//!
//! ```text
//! layer 3 (Q.931) ── establish / release / send ──▶ Link ◀── handle_frame(now, bytes)
//!                 ◀── poll_event: Established,        │ ──▶ poll_transmit: frames
//!                     Released, Data, Error           │     poll_timeout: T200/T203
//! ```
//!
//! What is implemented (Q.921 §5.5–5.9): establishment with SABME/UA,
//! SABME collision, release with DISC/UA and DM, multiple frame operation
//! modulo 128 with window k, acknowledgement by RR or piggy-backed N(R),
//! REJ recovery with the reject exception condition, peer receiver busy
//! (RNR), timer recovery by enquiry (RR P=1) up to N200 times, T203 idle
//! polling, re-establishment on N(R) errors, FRMR, DM, frame rejection
//! conditions and a SABME while up, UI frames both ways, and the
//! MDL-ERROR codes A–O. Not implemented: TEI management (a PRI's TEI is
//! fixed), XID (ignored), own receiver busy (layer 3 here consumes every
//! message at once, so rivr never sends RNR), and other SAPIs.
//!
//! Choices where Q.921 leaves room or rivr differs: T200 in multiple frame
//! operation always polls with RR P=1 rather than resending the last I
//! frame; `send` on a released link starts establishment; `establish`
//! during an establishment keeps the queue (the SDL drops it), and
//! `release` during one sends DISC; messages sent while the link is down
//! wait in a bounded queue (`queue_limit`). On a re-establishment the SDL's
//! rule holds: if I frames were outstanding, they and the queue are
//! dropped and layer 3 hears `Established`; otherwise the queue survives.
//!
//! Q.921 assumes the D-channel keeps frames in order. Over a transport that
//! reorders, a stale N(R) is an N(R) sequence error, so the link resets and
//! reports `Established` again; it stays safe but cannot promise delivery
//! of what was outstanding.

pub mod event;
pub mod frame;
mod link;
mod procedures;
mod receive;
mod timer;

#[cfg(test)]
mod tests;

pub use event::{LinkEvent, MdlError, SendError};
pub use frame::{decode, encode, Address, Frame, FrameError, Kind};
pub use link::{Link, LinkConfig, Side, State, Status, SAPI, TEI};
