//! The sans-IO SMSC simulator: accepts binds, acknowledges submit_sm after a
//! configurable latency, sends delivery receipts (one per part), and injects
//! faults: throttling, queue full, dropped connections, slow or missing
//! receipts, receipts before the response, unanswered enquire_link.
//!
//! A message is *accepted* when its submit_sm_resp with ESME_ROK is written;
//! the log of accepted messages is what tests judge loss and duplicates by.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::sms::encoding;
use crate::sms::pdu::{self, tag, Body, CommandStatus, Pdu, ShortMessage};

mod delivery;

/// Simulator settings and faults.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub system_id: String,
    /// Required password; empty accepts any.
    pub password: String,
    pub ack_latency: Duration,
    /// Percent of submits answered ESME_RTHROTTLED.
    pub throttle_pct: u8,
    /// Percent of submits answered ESME_RMSGQFUL.
    pub queue_full_pct: u8,
    /// Close the connection after every this many submit_sm received.
    pub drop_every: Option<u32>,
    /// Stop dropping after this many drops.
    pub max_drops: u32,
    /// Delay of delivery receipts; `None` sends none.
    pub receipt_delay: Option<Duration>,
    /// Percent of receipts never sent.
    pub receipt_missing_pct: u8,
    /// Send the receipt as soon as the submit arrives, before its response.
    pub receipt_before_resp: bool,
    /// Never answer enquire_link.
    pub mute_enquire_link: bool,
    /// Message ids in submit_sm_resp in hex, receipts in decimal.
    pub hex_resp_decimal_receipt: bool,
    /// `stat:` word of receipts.
    pub receipt_stat: String,
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            system_id: "rivrsim".into(),
            password: String::new(),
            ack_latency: Duration::ZERO,
            throttle_pct: 0,
            queue_full_pct: 0,
            drop_every: None,
            max_drops: u32::MAX,
            receipt_delay: Some(Duration::from_millis(100)),
            receipt_missing_pct: 0,
            receipt_before_resp: false,
            mute_enquire_link: false,
            hex_resp_decimal_receipt: false,
            receipt_stat: "DELIVRD".into(),
            seed: 7,
        }
    }
}

/// A connection handle chosen by the I/O layer.
pub type ConnId = u64;

/// What the I/O layer must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimOutput {
    Send { conn: ConnId, bytes: Vec<u8> },
    Close { conn: ConnId },
}

/// One accepted submit_sm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedMsg {
    pub smsc_id: String,
    /// rivr's idempotency key (vendor TLV), when present.
    pub key: Option<String>,
    pub source: String,
    pub destination: String,
    pub esm_class: u8,
    pub data_coding: u8,
    pub short_message: Vec<u8>,
    pub payload: Option<Vec<u8>>,
    pub registered_delivery: u8,
}

/// Counters of what the simulator did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub binds: u64,
    pub submits: u64,
    pub throttled: u64,
    pub queue_full: u64,
    pub drops: u32,
    pub receipts_sent: u64,
    pub receipts_acked: u64,
    pub max_outstanding: usize,
}

#[derive(Debug, Default)]
struct Conn {
    rx: Vec<u8>,
    bound: Option<pdu::BindMode>,
    submits: u32,
    outstanding: usize,
    /// deliver_sm sent and not yet answered, by our sequence number.
    unacked: HashMap<u32, Delivery>,
}

#[derive(Debug)]
struct PendingAck {
    due: Instant,
    conn: ConnId,
    sequence: u32,
    status: CommandStatus,
    msg: Option<AcceptedMsg>,
}

#[derive(Debug, Clone)]
struct Delivery {
    due: Instant,
    prefer: ConnId,
    sm: ShortMessage,
}

/// The simulator. See the module docs.
#[derive(Debug)]
pub struct Smsc {
    cfg: SimConfig,
    conns: HashMap<ConnId, Conn>,
    acks: VecDeque<PendingAck>,
    deliveries: Vec<Delivery>,
    out: VecDeque<SimOutput>,
    accepted: Vec<AcceptedMsg>,
    next_id: u64,
    next_seq: u32,
    rng: u64,
    stats: SimStats,
}

impl Smsc {
    pub fn new(cfg: SimConfig) -> Smsc {
        let rng = cfg.seed | 1;
        Smsc {
            cfg,
            conns: HashMap::new(),
            acks: VecDeque::new(),
            deliveries: Vec::new(),
            out: VecDeque::new(),
            accepted: Vec::new(),
            next_id: 0x10_0000,
            next_seq: 1,
            rng,
            stats: SimStats::default(),
        }
    }

    pub fn accepted(&self) -> &[AcceptedMsg] {
        &self.accepted
    }

    pub fn stats(&self) -> &SimStats {
        &self.stats
    }

    pub fn handle_connect(&mut self, conn: ConnId) {
        self.conns.insert(conn, Conn::default());
    }

    /// The connection closed: its pending acks are discarded (never
    /// accepted) and its unanswered receipts wait for another connection.
    pub fn handle_close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.deliveries.extend(c.unacked.into_values());
        }
        self.acks.retain(|a| a.conn != conn);
    }

    /// Queues a mobile-originated SMS (a deliver_sm that is not a receipt).
    pub fn inject_mo(&mut self, from: &str, to: &str, text: &str, now: Instant) {
        // Encoded like a handset would: GSM-7 or UCS-2, long text in parts.
        let reference = (self.next_seq & 0xFF) as u8;
        let Ok(e) = encoding::encode(text, reference, false) else {
            return;
        };
        for part in e.parts {
            let sm = ShortMessage {
                source_addr: from.into(),
                destination_addr: to.into(),
                esm_class: if e.udhi { encoding::ESM_UDHI } else { 0 },
                data_coding: e.data_coding,
                short_message: part,
                ..ShortMessage::default()
            };
            self.deliveries.push(Delivery {
                due: now,
                prefer: 0,
                sm,
            });
        }
        self.flush_deliveries(now);
    }

    pub fn handle_bytes(&mut self, conn: ConnId, bytes: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.rx.extend_from_slice(bytes);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match pdu::frame_len(&c.rx) {
                Ok(Some(n)) => {
                    let frame: Vec<u8> = c.rx.drain(..n).collect();
                    self.handle_frame(conn, &frame, now);
                }
                Ok(None) => return,
                Err(_) => {
                    self.close(conn);
                    return;
                }
            }
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        while self.acks.front().is_some_and(|a| a.due <= now) {
            let Some(a) = self.acks.pop_front() else {
                break;
            };
            self.finish_ack(a, now);
        }
        self.flush_deliveries(now);
    }

    #[must_use]
    pub fn poll_output(&mut self) -> Option<SimOutput> {
        self.out.pop_front()
    }

    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ack = self.acks.front().map(|a| a.due);
        let receiving = self
            .conns
            .values()
            .any(|c| c.bound.is_some_and(|m| m.can_receive()));
        let dl = receiving
            .then(|| self.deliveries.iter().map(|d| d.due).min())
            .flatten();
        ack.into_iter().chain(dl).min()
    }

    fn roll(&mut self, pct: u8) -> bool {
        if pct == 0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % 100) < u64::from(pct)
    }

    fn send(&mut self, conn: ConnId, p: &Pdu) {
        let mut bytes = Vec::new();
        if p.encode(&mut bytes).is_ok() {
            self.out.push_back(SimOutput::Send { conn, bytes });
        }
    }

    fn close(&mut self, conn: ConnId) {
        self.handle_close(conn);
        self.out.push_back(SimOutput::Close { conn });
    }

    fn handle_frame(&mut self, conn: ConnId, frame: &[u8], now: Instant) {
        let p = match Pdu::decode(frame) {
            Ok(p) => p,
            Err(_) => {
                if let Some((_, _, seq)) = pdu::peek_header(frame) {
                    let mut nack = Pdu::new(seq, Body::GenericNack);
                    nack.status = CommandStatus::RINVCMDLEN;
                    self.send(conn, &nack);
                }
                return;
            }
        };
        let bound = self.conns.get(&conn).and_then(|c| c.bound);
        match p.body {
            Body::Bind(mode, b) => {
                let status = if bound.is_some() {
                    CommandStatus::RALYBND
                } else if b.system_id != self.cfg.system_id {
                    CommandStatus::RINVSYSID
                } else if !self.cfg.password.is_empty() && b.password != self.cfg.password {
                    CommandStatus::RINVPASWD
                } else {
                    CommandStatus::OK
                };
                if status == CommandStatus::OK {
                    self.stats.binds += 1;
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.bound = Some(mode);
                    }
                }
                let mut r = Pdu::new(p.sequence, Body::BindResp(mode, self.cfg.system_id.clone()));
                r.status = status;
                self.send(conn, &r);
                self.flush_deliveries(now);
            }
            Body::SubmitSm(sm) => self.on_submit(conn, p.sequence, sm, bound, now),
            Body::EnquireLink => {
                if !self.cfg.mute_enquire_link {
                    self.send(conn, &Pdu::new(p.sequence, Body::EnquireLinkResp));
                }
            }
            Body::Unbind => {
                self.send(conn, &Pdu::new(p.sequence, Body::UnbindResp));
                self.close(conn);
            }
            Body::DeliverSmResp => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    if let Some(d) = c.unacked.remove(&p.sequence) {
                        if p.status == CommandStatus::OK {
                            self.stats.receipts_acked += 1;
                        } else {
                            self.deliveries.push(d);
                        }
                    }
                }
            }
            Body::GenericNack | Body::EnquireLinkResp | Body::UnbindResp | Body::BindResp(..) => {}
            Body::DeliverSm(_) | Body::SubmitSmResp { .. } | Body::Other { .. } => {
                let mut nack = Pdu::new(p.sequence, Body::GenericNack);
                nack.status = CommandStatus::RINVCMDID;
                self.send(conn, &nack);
            }
        }
    }

    fn on_submit(
        &mut self,
        conn: ConnId,
        sequence: u32,
        sm: ShortMessage,
        bound: Option<pdu::BindMode>,
        now: Instant,
    ) {
        if !bound.is_some_and(|m| m.can_submit()) {
            let mut r = Pdu::new(
                sequence,
                Body::SubmitSmResp {
                    message_id: String::new(),
                },
            );
            r.status = CommandStatus::RINVBNDSTS;
            self.send(conn, &r);
            return;
        }
        self.stats.submits += 1;
        let (tp, qp) = (self.cfg.throttle_pct, self.cfg.queue_full_pct);
        let status = if self.roll(tp) {
            self.stats.throttled += 1;
            CommandStatus::RTHROTTLED
        } else if self.roll(qp) {
            self.stats.queue_full += 1;
            CommandStatus::RMSGQFUL
        } else {
            CommandStatus::OK
        };
        let msg = (status == CommandStatus::OK).then(|| {
            self.next_id += 1;
            AcceptedMsg {
                smsc_id: if self.cfg.hex_resp_decimal_receipt {
                    format!("{:X}", self.next_id)
                } else {
                    self.next_id.to_string()
                },
                key: sm
                    .tlv(tag::RIVR_IDEMPOTENCY_KEY)
                    .map(|v| String::from_utf8_lossy(v).into_owned()),
                source: sm.source_addr.clone(),
                destination: sm.destination_addr.clone(),
                esm_class: sm.esm_class,
                data_coding: sm.data_coding,
                short_message: sm.short_message.clone(),
                payload: sm.tlv(tag::MESSAGE_PAYLOAD).map(<[u8]>::to_vec),
                registered_delivery: sm.registered_delivery,
            }
        });
        if let (Some(m), true) = (&msg, self.cfg.receipt_before_resp) {
            // An SMSC that delivers instantly may report before it answers.
            self.schedule_receipt(conn, m.clone(), now);
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.submits += 1;
        c.outstanding += 1;
        self.stats.max_outstanding = self.stats.max_outstanding.max(c.outstanding);
        let drop_now = self
            .cfg
            .drop_every
            .is_some_and(|n| n > 0 && c.submits % n == 0)
            && self.stats.drops < self.cfg.max_drops;
        self.acks.push_back(PendingAck {
            due: now + self.cfg.ack_latency,
            conn,
            sequence,
            status,
            msg,
        });
        if drop_now {
            self.stats.drops += 1;
            self.close(conn);
        }
        self.handle_timeout(now);
    }

    fn finish_ack(&mut self, a: PendingAck, now: Instant) {
        let Some(c) = self.conns.get_mut(&a.conn) else {
            return;
        };
        c.outstanding = c.outstanding.saturating_sub(1);
        let message_id = a
            .msg
            .as_ref()
            .map(|m| m.smsc_id.clone())
            .unwrap_or_default();
        let mut r = Pdu::new(a.sequence, Body::SubmitSmResp { message_id });
        r.status = a.status;
        self.send(a.conn, &r);
        if let Some(m) = a.msg {
            if !self.cfg.receipt_before_resp {
                self.schedule_receipt(a.conn, m.clone(), now);
            }
            self.accepted.push(m);
        }
    }
}
