//! The `smpp_session` target: the sans-IO SMPP ESME session driven like its
//! driver does — connects, disconnects, timeouts, submits, unbind and
//! deliver_sm acknowledgements interleaved with an SMSC's byte stream, which
//! arrives split and coalesced at arbitrary points — on a virtual clock the
//! input advances.
//!
//! The SMSC side writes PDUs that answer what the session actually sent
//! (bind, submit_sm and enquire_link sequence numbers are read back from its
//! transmit buffer), plus raw and corrupted bytes. Checked after every step:
//! - everything the session transmits frames and decodes (whole PDUs only);
//! - nothing is sent twice: a submit_sm goes out only for a part that is
//!   still pending (submitted and neither accepted nor rejected), and
//!   `submit` refuses exactly the keys still pending;
//! - the window holds: outstanding ≤ window, pending is what the model says;
//! - after `handle_timeout(now)` no timer is left due at `now` (the driver
//!   would spin).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use super::input::{Input, Seed};
use crate::sms::pdu::{self, BindMode, Body, CommandStatus, Pdu, ShortMessage};
use crate::sms::session::{Action, Event, PartKey, Session, SessionConfig, Submission};

const OP_ADVANCE: u8 = 0;
const OP_NEXT_TIMEOUT: u8 = 1;
const OP_SPURIOUS_TIMEOUT: u8 = 2;
const OP_CONNECTED: u8 = 3;
const OP_DISCONNECTED: u8 = 4;
const OP_PEER_PDU: u8 = 5;
const OP_FLUSH: u8 = 6;
const OP_RAW: u8 = 7;
const OP_SUBMIT: u8 = 8;
const OP_UNBIND: u8 = 9;
const OP_ACK_DELIVER: u8 = 10;
const OP_CORRUPT: u8 = 11;
const OPS: u8 = 12;

const PDU_BIND_RESP: u8 = 0;
const PDU_SUBMIT_RESP: u8 = 1;
const PDU_ENQUIRE: u8 = 2;
const PDU_ENQUIRE_RESP: u8 = 3;
const PDU_DELIVER: u8 = 4;
const PDU_UNBIND: u8 = 5;
const PDU_UNBIND_RESP: u8 = 6;
const PDU_NACK: u8 = 7;
const PDU_OTHER: u8 = 8;
const PDU_STRAY: u8 = 9;
const PDUS: u8 = 10;

const MAX_OPS: usize = 4096;

/// What a run reached (for the seed tests).
#[derive(Debug, Clone, Default)]
pub struct Reached {
    pub bound: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub backpressure: u64,
    pub delivered: u64,
    pub link_lost: u64,
    pub unbound: u64,
    pub submits_sent: u64,
}

/// The fuzz entry point.
pub fn run(data: &[u8]) {
    let _ = exercise(data);
}

fn config(b0: u8, b1: u8) -> SessionConfig {
    SessionConfig {
        mode: match (b0 >> 4) & 3 {
            1 => BindMode::Transmitter,
            2 => BindMode::Receiver,
            _ => BindMode::Transceiver,
        },
        window: usize::from(b0 & 0x0F),
        tps: [0.0, 1.0, 10.0, 250.0][usize::from(b1 & 3)],
        seed: u64::from(b1),
        ..SessionConfig::default()
    }
}

fn status(input: &mut Input<'_>) -> CommandStatus {
    const SOME: [CommandStatus; 6] = [
        CommandStatus::OK,
        CommandStatus::RTHROTTLED,
        CommandStatus::RMSGQFUL,
        CommandStatus::RSYSERR,
        CommandStatus::RINVDSTADR,
        CommandStatus::RBINDFAIL,
    ];
    let i = input.u8();
    match SOME.get(usize::from(i % 7)) {
        Some(s) => *s,
        None => CommandStatus(input.u32()),
    }
}

fn key_addr(key: &PartKey) -> String {
    format!("{}.{}", key.message_id, key.part)
}

/// The session, the SMSC's view of it, and the model.
struct Harness {
    now: Instant,
    session: Session,
    window: usize,
    /// Bytes the SMSC has written and the session not yet read.
    wire: Vec<u8>,
    tx: Vec<u8>,
    bind_seq: u32,
    enquire_seq: u32,
    unbind_seq: u32,
    /// submit_sm sequence numbers not yet answered by the SMSC.
    submits: Vec<u32>,
    delivered: Vec<u32>,
    /// Keys submitted and neither accepted nor rejected.
    pending: HashSet<String>,
    reached: Reached,
}

impl Harness {
    /// Reads back what the session sent and what it asks for; checks it.
    fn settle(&mut self) {
        self.session.take_transmit(&mut self.tx);
        let mut rest = &self.tx[..];
        while !rest.is_empty() {
            let n = match pdu::frame_len(rest) {
                Ok(Some(n)) => n,
                other => panic!("rivr sent a bad frame: {other:?}"),
            };
            let (frame, tail) = rest.split_at(n);
            rest = tail;
            let p = Pdu::decode(frame).unwrap_or_else(|e| panic!("rivr sent a bad PDU: {e}"));
            match p.body {
                Body::Bind(..) => self.bind_seq = p.sequence,
                Body::EnquireLink => self.enquire_seq = p.sequence,
                Body::Unbind => self.unbind_seq = p.sequence,
                Body::SubmitSm(sm) => {
                    assert!(
                        self.pending.contains(&sm.destination_addr),
                        "submit_sm for {:?}, which is not pending",
                        sm.destination_addr
                    );
                    self.submits.push(p.sequence);
                    self.reached.submits_sent += 1;
                }
                _ => {}
            }
        }
        while let Some(a) = self.session.poll_action() {
            if a == Action::Close {
                self.new_connection();
            }
        }
        while let Some(e) = self.session.poll_event() {
            match e {
                Event::Bound { .. } => self.reached.bound += 1,
                Event::Accepted { key, .. } => {
                    let k = key_addr(&key);
                    assert!(self.pending.remove(&k), "{k} answered twice");
                    self.reached.accepted += 1;
                }
                Event::Rejected { key, .. } => {
                    let k = key_addr(&key);
                    assert!(self.pending.remove(&k), "{k} answered twice");
                    self.reached.rejected += 1;
                }
                Event::Backpressure { key, .. } => {
                    assert!(self.pending.contains(&key_addr(&key)));
                    self.reached.backpressure += 1;
                }
                Event::Deliver { sequence, .. } => {
                    self.delivered.push(sequence);
                    self.reached.delivered += 1;
                }
                Event::LinkLost => self.reached.link_lost += 1,
                Event::Unbound => self.reached.unbound += 1,
                Event::BindFailed { .. } => {}
            }
        }
        assert!(self.session.outstanding() <= self.window.max(1));
        assert_eq!(self.session.pending(), self.pending.len());
    }

    /// The connection is gone: the SMSC's unread bytes and what it knew of
    /// the old one go with it.
    fn new_connection(&mut self) {
        self.wire.clear();
        self.submits.clear();
        self.delivered.clear();
    }

    fn timeout(&mut self) {
        self.session.handle_timeout(self.now);
        if let Some(t) = self.session.poll_timeout() {
            assert!(t > self.now, "a timer is still due after handle_timeout");
        }
    }

    fn peer_pdu(&mut self, input: &mut Input<'_>) {
        let kind = input.u8() % PDUS;
        let mut p = match kind {
            PDU_BIND_RESP => {
                let seq = match input.u8() {
                    0 => self.bind_seq,
                    _ => input.u32(),
                };
                let mut p = Pdu::new(seq, Body::BindResp(BindMode::Transceiver, "smsc".into()));
                p.status = status(input);
                p
            }
            PDU_SUBMIT_RESP => {
                let i = usize::from(input.u8());
                let seq = match self.submits.len() {
                    0 => i as u32,
                    n => self.submits.swap_remove(i % n),
                };
                let id = String::from_utf8_lossy(input.bytes8()).into_owned();
                let mut p = Pdu::new(seq, Body::SubmitSmResp { message_id: id });
                p.status = status(input);
                p
            }
            PDU_ENQUIRE => Pdu::new(input.u32(), Body::EnquireLink),
            PDU_ENQUIRE_RESP => Pdu::new(self.enquire_seq, Body::EnquireLinkResp),
            PDU_DELIVER => {
                let seq = input.u32();
                let sm = ShortMessage {
                    esm_class: input.u8(),
                    data_coding: input.u8(),
                    short_message: input.bytes8().to_vec(),
                    source_addr: "15550100".into(),
                    ..ShortMessage::default()
                };
                Pdu::new(seq, Body::DeliverSm(sm))
            }
            PDU_UNBIND => Pdu::new(input.u32(), Body::Unbind),
            PDU_UNBIND_RESP => Pdu::new(self.unbind_seq, Body::UnbindResp),
            PDU_NACK => {
                let seq = match input.u8() % 4 {
                    0 => self.bind_seq,
                    1 => self.submits.first().copied().unwrap_or(0),
                    2 => self.enquire_seq,
                    _ => input.u32(),
                };
                let mut p = Pdu::new(seq, Body::GenericNack);
                p.status = status(input);
                p
            }
            PDU_OTHER => Pdu::new(
                input.u32(),
                Body::Other {
                    command_id: input.u32(),
                },
            ),
            PDU_STRAY | PDUS.. => match input.u8() % 3 {
                0 => Pdu::new(input.u32(), Body::DeliverSmResp),
                1 => Pdu::new(input.u32(), Body::SubmitSm(ShortMessage::default())),
                _ => Pdu::new(input.u32(), Body::EnquireLinkResp),
            },
        };
        if kind == PDU_NACK && p.status == CommandStatus::OK {
            p.status = CommandStatus::RINVCMDID;
        }
        let _ = p.encode(&mut self.wire);
    }

    fn step(&mut self, op: u8, input: &mut Input<'_>) {
        match op {
            OP_ADVANCE => {
                self.now += Duration::from_millis(u64::from(input.u16()));
                if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
                    self.timeout();
                }
            }
            OP_NEXT_TIMEOUT => {
                if let Some(t) = self.session.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.timeout();
            }
            OP_SPURIOUS_TIMEOUT => self.timeout(),
            OP_CONNECTED => {
                self.new_connection();
                self.session.handle_connected(self.now);
            }
            OP_DISCONNECTED => {
                self.new_connection();
                self.session.handle_disconnected(self.now);
            }
            OP_PEER_PDU => self.peer_pdu(input),
            OP_FLUSH => {
                let n = usize::from(input.u16()).min(self.wire.len());
                let bytes: Vec<u8> = self.wire.drain(..n).collect();
                self.session.handle_bytes(&bytes, self.now);
            }
            OP_RAW => {
                let raw = input.bytes8();
                self.wire.extend_from_slice(raw);
            }
            OP_SUBMIT => {
                let key = PartKey {
                    message_id: format!("m{}", input.u8() % 8),
                    part: input.u8() % 3,
                };
                let addr = key_addr(&key);
                let sm = ShortMessage {
                    destination_addr: addr.clone(),
                    data_coding: input.u8(),
                    short_message: input.bytes8().to_vec(),
                    ..ShortMessage::default()
                };
                let fresh = self.session.submit(Submission { key, sm }, self.now);
                assert_eq!(fresh, !self.pending.contains(&addr), "{addr}");
                self.pending.insert(addr);
            }
            OP_UNBIND => self.session.unbind(self.now),
            OP_ACK_DELIVER => {
                let i = usize::from(input.u8());
                let st = status(input);
                if !self.delivered.is_empty() {
                    let seq = self.delivered.swap_remove(i % self.delivered.len());
                    self.session.ack_deliver(seq, st);
                }
            }
            OP_CORRUPT => {
                let i = usize::from(input.u16());
                let x = input.u8();
                let len = self.wire.len();
                if let Some(b) = self.wire.get_mut(i % len.max(1)) {
                    *b ^= x;
                }
            }
            _ => {}
        }
    }
}

/// Runs `data`; returns what it reached.
pub fn exercise(data: &[u8]) -> Reached {
    let mut input = Input::new(data);
    let cfg = config(input.u8(), input.u8());
    let now = Instant::now();
    let mut h = Harness {
        now,
        window: cfg.window,
        session: Session::new(cfg, now),
        wire: Vec::new(),
        tx: Vec::new(),
        bind_seq: 0,
        enquire_seq: 0,
        unbind_seq: 0,
        submits: Vec::new(),
        delivered: Vec::new(),
        pending: HashSet::new(),
        reached: Reached::default(),
    };
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8() % OPS;
        h.step(op, &mut input);
        h.settle();
    }
    h.reached
}

/// The seed inputs (see the tests for what each reaches).
pub fn seeds() -> Vec<Vec<u8>> {
    fn bind(s: &mut Seed, status: u8) {
        s.u8(OP_NEXT_TIMEOUT).u8(OP_CONNECTED);
        s.u8(OP_PEER_PDU).u8(PDU_BIND_RESP).u8(0).u8(status);
        s.u8(OP_FLUSH).u16(5).u8(OP_FLUSH).u16(1000);
    }
    fn submit(s: &mut Seed, id: u8, part: u8, text: &[u8]) {
        s.u8(OP_SUBMIT).u8(id).u8(part).u8(0).bytes8(text);
    }
    fn resp(s: &mut Seed, idx: u8, status: u8) {
        s.u8(OP_PEER_PDU)
            .u8(PDU_SUBMIT_RESP)
            .u8(idx)
            .bytes8(b"smsc-id-1")
            .u8(status);
    }
    fn flush(s: &mut Seed) {
        s.u8(OP_FLUSH)
            .u16(3)
            .u8(OP_FLUSH)
            .u16(40)
            .u8(OP_FLUSH)
            .u16(0xFFFF);
    }
    let receipt = b"id:smsc-id-1 sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 stat:DELIVRD err:000 text:hi";

    // Bound, five parts through a window of 4, a receipt, enquire_link both
    // ways, a graceful unbind.
    let mut happy = Seed::new();
    happy.u8(0x04).u8(0);
    bind(&mut happy, 0);
    for i in 0..5 {
        submit(&mut happy, i, 0, b"Thanks for calling.");
    }
    for _ in 0..4 {
        resp(&mut happy, 0, 0);
    }
    flush(&mut happy);
    resp(&mut happy, 0, 0);
    happy
        .u8(OP_PEER_PDU)
        .u8(PDU_DELIVER)
        .u32(77)
        .u8(0x04)
        .u8(0)
        .bytes8(receipt);
    happy.u8(OP_PEER_PDU).u8(PDU_ENQUIRE).u32(78);
    flush(&mut happy);
    happy.u8(OP_ACK_DELIVER).u8(0).u8(0);
    happy
        .u8(OP_NEXT_TIMEOUT)
        .u8(OP_PEER_PDU)
        .u8(PDU_ENQUIRE_RESP);
    flush(&mut happy);
    happy.u8(OP_UNBIND).u8(OP_PEER_PDU).u8(PDU_UNBIND_RESP);
    flush(&mut happy);

    // Throttled twice: backoff, resent in order, accepted; then a part
    // refused for good.
    let mut throttled = Seed::new();
    throttled.u8(0x03).u8(0);
    bind(&mut throttled, 0);
    for i in 0..3 {
        submit(&mut throttled, i, 1, b"part");
    }
    resp(&mut throttled, 0, 1);
    resp(&mut throttled, 0, 2);
    flush(&mut throttled);
    for _ in 0..3 {
        throttled.u8(OP_ADVANCE).u16(300);
        resp(&mut throttled, 0, 0);
        flush(&mut throttled);
    }
    submit(&mut throttled, 7, 0, b"to nowhere");
    resp(&mut throttled, 0, 4);
    flush(&mut throttled);

    // Link lost with parts outstanding, reconnect, the SMSC answers after.
    let mut lost = Seed::new();
    lost.u8(0x02).u8(0);
    bind(&mut lost, 0);
    submit(&mut lost, 1, 0, b"one");
    submit(&mut lost, 2, 0, b"two");
    lost.u8(OP_ADVANCE).u16(2000);
    lost.u8(OP_DISCONNECTED);
    bind(&mut lost, 0);
    resp(&mut lost, 0, 0);
    resp(&mut lost, 0, 0);
    flush(&mut lost);
    // The SMSC goes quiet: submit_sm_resp and enquire_link time out.
    submit(&mut lost, 3, 0, b"three");
    for _ in 0..4 {
        lost.u8(OP_NEXT_TIMEOUT);
    }
    lost.u8(OP_PEER_PDU).u8(PDU_UNBIND).u32(9);
    flush(&mut lost);

    // A refused bind, a nack'd bind, garbage, then a good one.
    let mut refused = Seed::new();
    refused.u8(0x01).u8(0);
    bind(&mut refused, 5);
    refused.u8(OP_NEXT_TIMEOUT).u8(OP_CONNECTED);
    refused.u8(OP_PEER_PDU).u8(PDU_NACK).u8(0).u8(3);
    flush(&mut refused);
    bind(&mut refused, 0);
    refused
        .u8(OP_RAW)
        .bytes8(&[0, 0, 0, 16, 0, 0, 0, 0x99, 0, 0, 0, 0, 0, 0, 0, 5]);
    refused
        .u8(OP_PEER_PDU)
        .u8(PDU_OTHER)
        .u32(6)
        .u32(0x0000_0103);
    flush(&mut refused);
    refused.u8(OP_RAW).bytes8(&[0, 0, 0, 3]);
    flush(&mut refused);

    [happy, throttled, lost, refused]
        .into_iter()
        .map(Seed::into_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_reach_submits_receipts_backpressure_and_loss() {
        let s = seeds();
        let happy = exercise(&s[0]);
        assert_eq!(
            (happy.bound, happy.accepted, happy.delivered),
            (1, 5, 1),
            "{happy:?}"
        );
        assert_eq!(happy.unbound, 1, "{happy:?}");
        let throttled = exercise(&s[1]);
        assert!(throttled.backpressure >= 2, "{throttled:?}");
        assert_eq!(
            (throttled.accepted, throttled.rejected),
            (3, 1),
            "{throttled:?}"
        );
        let lost = exercise(&s[2]);
        assert!(lost.link_lost >= 2 && lost.bound >= 2, "{lost:?}");
        assert!(lost.accepted >= 2, "{lost:?}");
        let refused = exercise(&s[3]);
        assert!(refused.link_lost >= 2 && refused.bound == 1, "{refused:?}");
    }
}
