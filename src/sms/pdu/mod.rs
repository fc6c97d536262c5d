//! The SMPP 3.4 PDU codec: framing (`command_length`), the header, and the
//! bodies rivr uses. Other commands decode as [`Body::Other`] so the session
//! can answer them with `generic_nack` instead of dropping the link.
//!
//! Decoding never panics: a length outside 16..=[`MAX_PDU_LEN`] is a framing
//! error (the link is closed), a body that does not parse is a
//! [`PduError`] the session answers with `generic_nack`.

mod status;
mod wire;

pub use status::CommandStatus;
pub use wire::Tlv;
use wire::{put_cstr, put_tlvs, read_tlvs, Reader};

/// The largest PDU accepted. `message_payload` may carry up to 64 KiB.
pub const MAX_PDU_LEN: usize = 70_000;
/// The size of the PDU header.
pub const HEADER_LEN: usize = 16;

/// Optional-parameter tags used by rivr (SMPP 3.4 section 5.3.2).
pub mod tag {
    pub const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub const USER_MESSAGE_REFERENCE: u16 = 0x0204;
    pub const SAR_MSG_REF_NUM: u16 = 0x020C;
    pub const SAR_TOTAL_SEGMENTS: u16 = 0x020E;
    pub const SAR_SEGMENT_SEQNUM: u16 = 0x020F;
    pub const SC_INTERFACE_VERSION: u16 = 0x0210;
    pub const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub const MESSAGE_STATE: u16 = 0x0427;
    /// Vendor-specific range: rivr's idempotency key, so an SMSC (our
    /// simulator) can log and detect a duplicate submission.
    pub const RIVR_IDEMPOTENCY_KEY: u16 = 0x1401;
}

/// SMPP `command_id` values.
pub mod cmd {
    pub const GENERIC_NACK: u32 = 0x8000_0000;
    pub const BIND_RECEIVER: u32 = 0x0000_0001;
    pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
    pub const SUBMIT_SM: u32 = 0x0000_0004;
    pub const DELIVER_SM: u32 = 0x0000_0005;
    pub const UNBIND: u32 = 0x0000_0006;
    pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub const RESP: u32 = 0x8000_0000;
}

/// Why bytes did not decode (or a PDU could not be encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PduError {
    #[error("command_length {0} outside 16..={MAX_PDU_LEN}")]
    BadLength(u32),
    #[error("PDU body ends early")]
    Truncated,
    #[error("C-Octet string without NUL within {max} octets")]
    BadCString { max: usize },
    #[error("field longer than its maximum of {max} octets")]
    FieldTooLong { max: usize },
    #[error("{0} octets after the last field")]
    Trailing(usize),
}

/// Bind kinds: which directions the session may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindMode {
    Transmitter,
    Receiver,
    Transceiver,
}

impl BindMode {
    pub fn command_id(self) -> u32 {
        match self {
            BindMode::Transmitter => cmd::BIND_TRANSMITTER,
            BindMode::Receiver => cmd::BIND_RECEIVER,
            BindMode::Transceiver => cmd::BIND_TRANSCEIVER,
        }
    }
    pub fn can_submit(self) -> bool {
        self != BindMode::Receiver
    }
    pub fn can_receive(self) -> bool {
        self != BindMode::Transmitter
    }
}

/// The body of `bind_transmitter`, `bind_receiver` and `bind_transceiver`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bind {
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub interface_version: u8,
    pub addr_ton: u8,
    pub addr_npi: u8,
    pub address_range: String,
}

/// The body shared by `submit_sm` and `deliver_sm`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShortMessage {
    pub service_type: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub source_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Vec<u8>,
    pub tlvs: Vec<Tlv>,
}

impl ShortMessage {
    /// The value of the first optional parameter with `tag`.
    pub fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|t| t.tag == tag)
            .map(|t| t.value.as_slice())
    }
}

/// A decoded PDU body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Bind(BindMode, Bind),
    /// The `system_id` of the SMSC (absent on some error responses).
    BindResp(BindMode, String),
    SubmitSm(ShortMessage),
    SubmitSmResp {
        message_id: String,
    },
    DeliverSm(ShortMessage),
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    Unbind,
    UnbindResp,
    GenericNack,
    /// A command rivr does not implement; answered with `generic_nack`.
    Other {
        command_id: u32,
    },
}

impl Body {
    pub fn command_id(&self) -> u32 {
        match self {
            Body::Bind(m, _) => m.command_id(),
            Body::BindResp(m, _) => m.command_id() | cmd::RESP,
            Body::SubmitSm(_) => cmd::SUBMIT_SM,
            Body::SubmitSmResp { .. } => cmd::SUBMIT_SM | cmd::RESP,
            Body::DeliverSm(_) => cmd::DELIVER_SM,
            Body::DeliverSmResp => cmd::DELIVER_SM | cmd::RESP,
            Body::EnquireLink => cmd::ENQUIRE_LINK,
            Body::EnquireLinkResp => cmd::ENQUIRE_LINK | cmd::RESP,
            Body::Unbind => cmd::UNBIND,
            Body::UnbindResp => cmd::UNBIND | cmd::RESP,
            Body::GenericNack => cmd::GENERIC_NACK,
            Body::Other { command_id } => *command_id,
        }
    }
}

/// One PDU: header fields plus body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdu {
    pub status: CommandStatus,
    pub sequence: u32,
    pub body: Body,
}

/// The length of the first PDU in `buf`: `Ok(None)` if more bytes are needed,
/// an error if the length field is impossible (framing is then lost).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, PduError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let n = usize::try_from(len).map_err(|_| PduError::BadLength(len))?;
    if !(HEADER_LEN..=MAX_PDU_LEN).contains(&n) {
        return Err(PduError::BadLength(len));
    }
    Ok((buf.len() >= n).then_some(n))
}

/// The header of a frame, readable even when its body is not, so a bad body
/// can be answered with `generic_nack` carrying the right sequence number.
pub fn peek_header(frame: &[u8]) -> Option<(u32, CommandStatus, u32)> {
    let h = frame.get(4..HEADER_LEN)?;
    let id = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    let st = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let seq = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    Some((id, CommandStatus(st), seq))
}

impl Pdu {
    pub fn new(sequence: u32, body: Body) -> Pdu {
        Pdu {
            status: CommandStatus::OK,
            sequence,
            body,
        }
    }

    /// Decodes exactly one frame (as delimited by [`frame_len`]).
    pub fn decode(frame: &[u8]) -> Result<Pdu, PduError> {
        let declared = frame_len(frame)?.ok_or(PduError::Truncated)?;
        if declared != frame.len() {
            return Err(PduError::BadLength(
                u32::try_from(frame.len()).unwrap_or(u32::MAX),
            ));
        }
        let (command_id, status, sequence) = peek_header(frame).ok_or(PduError::Truncated)?;
        let mut r = Reader::new(frame.get(HEADER_LEN..).ok_or(PduError::Truncated)?);
        let body = match command_id {
            cmd::BIND_RECEIVER | cmd::BIND_TRANSMITTER | cmd::BIND_TRANSCEIVER => {
                let mode = mode_of(command_id);
                Body::Bind(
                    mode,
                    Bind {
                        system_id: r.cstr(16)?,
                        password: r.cstr(9)?,
                        system_type: r.cstr(13)?,
                        interface_version: r.u8()?,
                        addr_ton: r.u8()?,
                        addr_npi: r.u8()?,
                        address_range: r.cstr(41)?,
                    },
                )
            }
            id if id & cmd::RESP != 0 && is_bind(id & !cmd::RESP) => {
                let system_id = if r.remaining() > 0 {
                    r.cstr(16)?
                } else {
                    String::new()
                };
                // Optional sc_interface_version and friends are not needed.
                read_tlvs(&mut r)?;
                Body::BindResp(mode_of(id & !cmd::RESP), system_id)
            }
            cmd::SUBMIT_SM => Body::SubmitSm(read_short_message(&mut r)?),
            cmd::DELIVER_SM => Body::DeliverSm(read_short_message(&mut r)?),
            id if id == cmd::SUBMIT_SM | cmd::RESP => {
                // An error response may omit the body entirely.
                let message_id = if r.remaining() > 0 {
                    r.cstr(65)?
                } else {
                    String::new()
                };
                Body::SubmitSmResp { message_id }
            }
            id if id == cmd::DELIVER_SM | cmd::RESP => {
                if r.remaining() > 0 {
                    r.cstr(65)?;
                }
                Body::DeliverSmResp
            }
            cmd::ENQUIRE_LINK => Body::EnquireLink,
            id if id == cmd::ENQUIRE_LINK | cmd::RESP => Body::EnquireLinkResp,
            cmd::UNBIND => Body::Unbind,
            id if id == cmd::UNBIND | cmd::RESP => Body::UnbindResp,
            cmd::GENERIC_NACK => Body::GenericNack,
            other => {
                return Ok(Pdu {
                    status,
                    sequence,
                    body: Body::Other { command_id: other },
                })
            }
        };
        if r.remaining() > 0 {
            return Err(PduError::Trailing(r.remaining()));
        }
        Ok(Pdu {
            status,
            sequence,
            body,
        })
    }

    /// Appends the encoded PDU to `out` (a buffer the caller reuses).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.body.command_id().to_be_bytes());
        out.extend_from_slice(&self.status.0.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        let res = self.encode_body(out);
        if res.is_err() {
            out.truncate(start);
            return res;
        }
        let len = out.len() - start;
        if len > MAX_PDU_LEN {
            out.truncate(start);
            return Err(PduError::FieldTooLong { max: MAX_PDU_LEN });
        }
        // len <= MAX_PDU_LEN, so it fits in u32.
        out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
        Ok(())
    }

    fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), PduError> {
        match &self.body {
            Body::Bind(_, b) => {
                put_cstr(out, &b.system_id, 16)?;
                put_cstr(out, &b.password, 9)?;
                put_cstr(out, &b.system_type, 13)?;
                out.extend_from_slice(&[b.interface_version, b.addr_ton, b.addr_npi]);
                put_cstr(out, &b.address_range, 41)?;
            }
            Body::BindResp(_, system_id) => {
                put_cstr(out, system_id, 16)?;
                put_tlvs(
                    out,
                    &[Tlv {
                        tag: tag::SC_INTERFACE_VERSION,
                        value: vec![0x34],
                    }],
                )?;
            }
            Body::SubmitSm(m) | Body::DeliverSm(m) => write_short_message(out, m)?,
            Body::SubmitSmResp { message_id } => put_cstr(out, message_id, 65)?,
            Body::DeliverSmResp => out.push(0),
            Body::EnquireLink
            | Body::EnquireLinkResp
            | Body::Unbind
            | Body::UnbindResp
            | Body::GenericNack
            | Body::Other { .. } => {}
        }
        Ok(())
    }
}

/// Encodes a submit_sm or deliver_sm straight from a borrowed body, so a
/// queued part need not be cloned to be sent.
pub fn encode_short_message(
    command_id: u32,
    sequence: u32,
    m: &ShortMessage,
    out: &mut Vec<u8>,
) -> Result<(), PduError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&command_id.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&sequence.to_be_bytes());
    if let Err(e) = write_short_message(out, m) {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start;
    if len > MAX_PDU_LEN {
        out.truncate(start);
        return Err(PduError::FieldTooLong { max: MAX_PDU_LEN });
    }
    out[start..start + 4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(())
}

fn is_bind(id: u32) -> bool {
    matches!(
        id,
        cmd::BIND_RECEIVER | cmd::BIND_TRANSMITTER | cmd::BIND_TRANSCEIVER
    )
}

fn mode_of(id: u32) -> BindMode {
    match id {
        cmd::BIND_RECEIVER => BindMode::Receiver,
        cmd::BIND_TRANSMITTER => BindMode::Transmitter,
        _ => BindMode::Transceiver,
    }
}

fn read_short_message(r: &mut Reader<'_>) -> Result<ShortMessage, PduError> {
    let mut m = ShortMessage {
        service_type: r.cstr(6)?,
        source_addr_ton: r.u8()?,
        source_addr_npi: r.u8()?,
        source_addr: r.cstr(21)?,
        dest_addr_ton: r.u8()?,
        dest_addr_npi: r.u8()?,
        destination_addr: r.cstr(21)?,
        esm_class: r.u8()?,
        protocol_id: r.u8()?,
        priority_flag: r.u8()?,
        schedule_delivery_time: r.cstr(17)?,
        validity_period: r.cstr(17)?,
        registered_delivery: r.u8()?,
        replace_if_present_flag: r.u8()?,
        data_coding: r.u8()?,
        sm_default_msg_id: r.u8()?,
        ..ShortMessage::default()
    };
    let sm_length = r.u8()?;
    m.short_message = r.bytes(usize::from(sm_length))?.to_vec();
    m.tlvs = read_tlvs(r)?;
    Ok(m)
}

fn write_short_message(out: &mut Vec<u8>, m: &ShortMessage) -> Result<(), PduError> {
    put_cstr(out, &m.service_type, 6)?;
    out.extend_from_slice(&[m.source_addr_ton, m.source_addr_npi]);
    put_cstr(out, &m.source_addr, 21)?;
    out.extend_from_slice(&[m.dest_addr_ton, m.dest_addr_npi]);
    put_cstr(out, &m.destination_addr, 21)?;
    out.extend_from_slice(&[m.esm_class, m.protocol_id, m.priority_flag]);
    put_cstr(out, &m.schedule_delivery_time, 17)?;
    put_cstr(out, &m.validity_period, 17)?;
    out.extend_from_slice(&[
        m.registered_delivery,
        m.replace_if_present_flag,
        m.data_coding,
        m.sm_default_msg_id,
    ]);
    let sm_len = u8::try_from(m.short_message.len())
        .ok()
        .filter(|&l| l <= 254)
        .ok_or(PduError::FieldTooLong { max: 254 })?;
    out.push(sm_len);
    out.extend_from_slice(&m.short_message);
    put_tlvs(out, &m.tlvs)
}

#[cfg(test)]
mod tests;
