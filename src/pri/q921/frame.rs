//! LAPD frames (Q.921 §2–3): the two-octet address (SAPI, C/R, TEI), the
//! modulo-128 control field of the I, S and U formats, and the information
//! field. The FCS and flags belong to the transport below, so a frame here
//! is the bytes between them.
//!
//! Decoding sorts a bad frame into the two kinds the procedures treat
//! differently: an *invalid* frame (§2.9: too short, bad address) is dropped
//! without a word, while a frame *rejected* by §5.8.5 (undefined control
//! field, an information field where none is allowed, wrong length) carries
//! its address, because the data link it was meant for re-establishes.
//! Whether an information field is too long (N201) depends on the link's
//! configuration, so the link checks that.

use thiserror::Error;

/// The address field (Q.921 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// Service access point identifier, 0–63 (0 is call control).
    pub sapi: u8,
    /// The command/response bit as sent (§3.3.3: which value means
    /// "command" depends on which side sent it).
    pub cr: bool,
    /// Terminal endpoint identifier, 0–127.
    pub tei: u8,
}

/// The frame type with its control-field contents (Q.921 §3.6, Table 5).
/// `p` is the poll bit of a command, `f` the final bit of a response, and
/// `pf` either for the types that can be both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Numbered information.
    I {
        ns: u8,
        nr: u8,
        p: bool,
        info: Vec<u8>,
    },
    /// Receive ready.
    Rr { nr: u8, pf: bool },
    /// Receive not ready.
    Rnr { nr: u8, pf: bool },
    /// Reject.
    Rej { nr: u8, pf: bool },
    /// Set asynchronous balanced mode extended.
    Sabme { p: bool },
    /// Disconnected mode.
    Dm { f: bool },
    /// Unnumbered information.
    Ui { p: bool, info: Vec<u8> },
    /// Disconnect.
    Disc { p: bool },
    /// Unnumbered acknowledgement.
    Ua { f: bool },
    /// Frame reject; `info` is the peer's diagnostic (five octets in
    /// Q.921, kept raw because it is only ever reported).
    Frmr { f: bool, info: Vec<u8> },
    /// Exchange identification (parameter negotiation).
    Xid { pf: bool, info: Vec<u8> },
}

/// One LAPD frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub address: Address,
    pub kind: Kind,
}

/// Why bytes are not a usable frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Q.921 §2.9 invalid frame, to be discarded without notification.
    #[error("invalid frame: {0}")]
    Invalid(Invalid),
    /// A §5.8.5 frame rejection condition on a frame for `address`.
    #[error("rejected frame for SAPI {} TEI {}: {reason}", address.sapi, address.tei)]
    Rejected { address: Address, reason: Rejection },
}

/// The §2.9 cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Invalid {
    /// Fewer octets than the address and control field need (three for a
    /// U frame, four for an I or S frame).
    #[error("too short")]
    TooShort,
    /// The address extension bits are not `0` then `1` (a one-octet or a
    /// longer-than-two-octet address).
    #[error("bad address extension bits")]
    Address,
}

/// The §5.8.5 cases the decoder can see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Rejection {
    /// A control field that is undefined or not implemented (error L).
    #[error("undefined control field")]
    UndefinedControl,
    /// A U frame that may not carry information did (error M).
    #[error("information field not permitted")]
    InfoNotPermitted,
    /// A supervisory frame longer than address and control (error N).
    #[error("incorrect frame length")]
    WrongLength,
}

// U-frame control octets with the P/F bit (0x10) cleared.
const SABME: u8 = 0x6F;
const DM: u8 = 0x0F;
const UI: u8 = 0x03;
const DISC: u8 = 0x43;
const UA: u8 = 0x63;
const FRMR: u8 = 0x87;
const XID: u8 = 0xAF;
const PF: u8 = 0x10;

/// Parses the bytes between the flags (FCS already removed).
pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
    let invalid = |i| Err(FrameError::Invalid(i));
    let [a0, a1, c0, rest @ ..] = bytes else {
        return invalid(Invalid::TooShort);
    };
    if a0 & 1 != 0 || a1 & 1 != 1 {
        return invalid(Invalid::Address);
    }
    let address = Address {
        sapi: a0 >> 2,
        cr: a0 & 2 != 0,
        tei: a1 >> 1,
    };
    let reject = |reason| FrameError::Rejected { address, reason };
    let kind = if c0 & 1 == 0 {
        let [c1, info @ ..] = rest else {
            return invalid(Invalid::TooShort);
        };
        Kind::I {
            ns: c0 >> 1,
            nr: c1 >> 1,
            p: c1 & 1 != 0,
            info: info.to_vec(),
        }
    } else if c0 & 2 == 0 {
        let [c1, extra @ ..] = rest else {
            return invalid(Invalid::TooShort);
        };
        let (nr, pf) = (c1 >> 1, c1 & 1 != 0);
        // The four high bits of an S frame's first octet are reserved 0.
        let kind = match c0 {
            0x01 => Kind::Rr { nr, pf },
            0x05 => Kind::Rnr { nr, pf },
            0x09 => Kind::Rej { nr, pf },
            _ => return Err(reject(Rejection::UndefinedControl)),
        };
        if !extra.is_empty() {
            return Err(reject(Rejection::WrongLength));
        }
        kind
    } else {
        let pf = c0 & PF != 0;
        let info = rest.to_vec();
        let bare = |kind: Kind| {
            if rest.is_empty() {
                Ok(kind)
            } else {
                Err(reject(Rejection::InfoNotPermitted))
            }
        };
        match c0 & !PF {
            SABME => bare(Kind::Sabme { p: pf })?,
            DM => bare(Kind::Dm { f: pf })?,
            DISC => bare(Kind::Disc { p: pf })?,
            UA => bare(Kind::Ua { f: pf })?,
            UI => Kind::Ui { p: pf, info },
            FRMR => Kind::Frmr { f: pf, info },
            XID => Kind::Xid { pf, info },
            _ => return Err(reject(Rejection::UndefinedControl)),
        }
    };
    Ok(Frame { address, kind })
}

/// Appends the frame's bytes to `out`. Out-of-range fields are masked to
/// their width (SAPI 6 bits, TEI and sequence numbers 7 bits).
pub fn encode(frame: &Frame, out: &mut Vec<u8>) {
    let a = frame.address;
    out.push(((a.sapi & 0x3F) << 2) | (u8::from(a.cr) << 1));
    out.push(((a.tei & 0x7F) << 1) | 1);
    let seq = |n: u8, bit: bool| ((n & 0x7F) << 1) | u8::from(bit);
    let u = |c: u8, bit: bool| c | if bit { PF } else { 0 };
    match &frame.kind {
        Kind::I { ns, nr, p, info } => {
            out.extend_from_slice(&[seq(*ns, false), seq(*nr, *p)]);
            out.extend_from_slice(info);
        }
        Kind::Rr { nr, pf } => out.extend_from_slice(&[0x01, seq(*nr, *pf)]),
        Kind::Rnr { nr, pf } => out.extend_from_slice(&[0x05, seq(*nr, *pf)]),
        Kind::Rej { nr, pf } => out.extend_from_slice(&[0x09, seq(*nr, *pf)]),
        Kind::Sabme { p } => out.push(u(SABME, *p)),
        Kind::Dm { f } => out.push(u(DM, *f)),
        Kind::Disc { p } => out.push(u(DISC, *p)),
        Kind::Ua { f } => out.push(u(UA, *f)),
        Kind::Ui { p, info } => {
            out.push(u(UI, *p));
            out.extend_from_slice(info);
        }
        Kind::Frmr { f, info } => {
            out.push(u(FRMR, *f));
            out.extend_from_slice(info);
        }
        Kind::Xid { pf, info } => {
            out.push(u(XID, *pf));
            out.extend_from_slice(info);
        }
    }
}

impl Frame {
    /// The encoded frame.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.info().map_or(0, <[u8]>::len));
        encode(self, &mut out);
        out
    }

    /// The information field, for the types that have one.
    pub fn info(&self) -> Option<&[u8]> {
        match &self.kind {
            Kind::I { info, .. }
            | Kind::Ui { info, .. }
            | Kind::Frmr { info, .. }
            | Kind::Xid { info, .. } => Some(info),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
