//! The simulator's deliveries: receipts (one per accepted part, after a
//! delay, or before the response) and inbound SMS, sent to a bound receiving
//! connection and re-sent if the connection closes before deliver_sm_resp.

use std::time::Instant;

use super::{AcceptedMsg, Conn, ConnId, Delivery, Smsc};
use crate::sms::pdu::{tag, Body, Pdu, ShortMessage, Tlv};

impl Smsc {
    pub(super) fn schedule_receipt(&mut self, conn: ConnId, m: AcceptedMsg, now: Instant) {
        let Some(delay) = self.cfg.receipt_delay else {
            return;
        };
        if m.registered_delivery & 0x03 == 0 || self.roll(self.cfg.receipt_missing_pct) {
            return;
        }
        let id = if self.cfg.hex_resp_decimal_receipt {
            u64::from_str_radix(&m.smsc_id, 16).map_or(m.smsc_id.clone(), |v| v.to_string())
        } else {
            m.smsc_id.clone()
        };
        let text = format!(
            "id:{id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:{} err:000 text:",
            self.cfg.receipt_stat
        );
        let sm = ShortMessage {
            source_addr: m.destination.clone(),
            destination_addr: m.source.clone(),
            esm_class: 0x04,
            short_message: text.into_bytes(),
            tlvs: vec![Tlv {
                tag: tag::RECEIPTED_MESSAGE_ID,
                value: format!("{id}\0").into_bytes(),
            }],
            ..ShortMessage::default()
        };
        let due = if self.cfg.receipt_before_resp {
            now
        } else {
            now + delay
        };
        self.deliveries.push(Delivery {
            due,
            prefer: conn,
            sm,
        });
    }

    /// Sends due deliveries to a bound receiving connection, the one that
    /// submitted the message when it is still there.
    pub(super) fn flush_deliveries(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.deliveries.len() {
            if self.deliveries[i].due > now {
                i += 1;
                continue;
            }
            let prefer = self.deliveries[i].prefer;
            let can = |c: &Conn| c.bound.is_some_and(|m| m.can_receive());
            let target = if self.conns.get(&prefer).is_some_and(can) {
                Some(prefer)
            } else {
                let mut ids: Vec<ConnId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| can(c))
                    .map(|(k, _)| *k)
                    .collect();
                ids.sort_unstable();
                ids.first().copied()
            };
            let Some(conn) = target else {
                i += 1;
                continue;
            };
            let d = self.deliveries.swap_remove(i);
            let seq = self.next_seq;
            self.next_seq = self.next_seq % 0x7FFF_FFFF + 1;
            let p = Pdu::new(seq, Body::DeliverSm(d.sm.clone()));
            self.send(conn, &p);
            self.stats.receipts_sent += 1;
            if let Some(c) = self.conns.get_mut(&conn) {
                c.unacked.insert(seq, d);
            }
        }
    }
}
