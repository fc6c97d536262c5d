//! SIP signalling (RFC 3261): message framing and parsing (`wire`), SDP
//! offer/answer (`sdp`), server and client transactions (`transaction`),
//! dialogs and the UAS core (`endpoint`), and the one tokio transport layer
//! (`transport`). Everything but `transport` is sans-IO: it takes bytes and
//! `now`, and returns bytes to send, events and the next timeout.

pub mod acl;
pub mod digest;
pub mod endpoint;
pub mod flood;
pub mod gate;
pub mod locate;
pub mod message;
pub mod sdp;
pub mod session_timer;
pub mod transaction;
pub mod transport;
pub mod validate;
pub mod wire;
