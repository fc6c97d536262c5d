//! What the data link tells layer 3 and management: the DL- primitives as
//! [`LinkEvent`]s, the MDL-ERROR indications as [`MdlError`] codes (Q.921
//! Appendix II, Table II.1), and why a send was refused.

use thiserror::Error;

/// An indication or confirmation for layer 3 (or, for `Error`, layer
/// management).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// DL-ESTABLISH confirm or indication: the link is in multiple frame
    /// operation. Seen again while already up, it means the link was reset
    /// and I frames in transit may have been lost (Q.931 then checks its
    /// calls with STATUS ENQUIRY).
    Established,
    /// DL-RELEASE confirm or indication: the link is down; messages queued
    /// and not acknowledged are dropped.
    Released,
    /// DL-DATA indication: a layer-3 message from an I frame, in order and
    /// once per established link.
    Data(Vec<u8>),
    /// DL-UNIT DATA indication: a message from a UI frame (unacknowledged).
    UnitData(Vec<u8>),
    /// MDL-ERROR indication.
    Error(MdlError),
}

/// The MDL-ERROR codes of Q.921 Table II.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum MdlError {
    #[error("A: unsolicited supervisory response with F=1")]
    A,
    #[error("B: unsolicited DM response with F=1")]
    B,
    #[error("C: unsolicited UA response with F=1")]
    C,
    #[error("D: unsolicited UA response with F=0")]
    D,
    #[error("E: unsolicited DM response with F=0")]
    E,
    #[error("F: peer initiated re-establishment (SABME)")]
    F,
    #[error("G: SABME unanswered after N200 retransmissions")]
    G,
    #[error("H: DISC unanswered after N200 retransmissions")]
    H,
    #[error("I: status enquiry unanswered after N200 retransmissions")]
    I,
    #[error("J: N(R) sequence error")]
    J,
    #[error("K: FRMR response received")]
    K,
    #[error("L: undefined control field")]
    L,
    #[error("M: information field not permitted")]
    M,
    #[error("N: incorrect frame length")]
    N,
    #[error("O: I frame longer than N201")]
    O,
}

/// Why [`super::Link::send`] refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    /// Longer than N201 octets.
    #[error("message longer than N201")]
    TooLong,
    /// The queue already holds `queue_limit` messages.
    #[error("send queue full")]
    QueueFull,
    /// The link is being released (layer 3 asked for it).
    #[error("link is being released")]
    Releasing,
}
