//! The submit_sm of a stored part: the sender's TON/NPI and the SMPP 3.4
//! §7.1 schedule and validity fields, decided here so the driver only moves
//! bytes.

use std::time::Duration;

use super::config::{ScheduleMode, SmppConfig};
use super::pdu::{tag, ShortMessage, Tlv};
use super::session::{PartKey, Submission};
use super::{sender, smpp_time};
use crate::store::StoredPart;

/// Builds the submit_sm for a stored part at `now_ms`: the sender's
/// TON/NPI (stored with the message, else the route's `source_ton` /
/// `source_npi` for its own `source_addr`, else from the sender's form),
/// `schedule_delivery_time` for a message not yet due (the SMSC holds it)
/// and `validity_period` (relative, or absolute from a scheduled time:
/// §7.1 relative validity counts from submission, not from delivery).
pub(crate) fn submission(cfg: &SmppConfig, p: StoredPart, now_ms: i64) -> Submission {
    let mut tlvs = vec![Tlv {
        tag: tag::RIVR_IDEMPOTENCY_KEY,
        value: p.idempotency_key.into_bytes(),
    }];
    let short_message = if p.payload {
        tlvs.push(Tlv {
            tag: tag::MESSAGE_PAYLOAD,
            value: p.short_message,
        });
        Vec::new()
    } else {
        p.short_message
    };
    let sender = sender::classify(&p.source).ok();
    let configured = p.source == cfg.source_addr;
    let pick = |stored: Option<u8>, conf: Option<u8>, auto: Option<u8>| {
        stored.or(conf.filter(|_| configured)).or(auto).unwrap_or(0)
    };
    let source_addr_ton = pick(
        p.sending.source_ton,
        cfg.source_ton,
        sender.as_ref().map(|s| s.ton),
    );
    let source_addr_npi = pick(
        p.sending.source_npi,
        cfg.source_npi,
        sender.as_ref().map(|s| s.npi),
    );
    let source_addr = sender.map_or(p.source, |s| s.addr);
    // A route that schedules locally is handed a part only when it is due
    // (or late, after a failover): never ask its SMSC to schedule.
    let at = p
        .sending
        .not_before_ms
        .filter(|t| *t > now_ms && cfg.schedule == ScheduleMode::Smsc);
    let schedule_delivery_time = at
        .and_then(|t| smpp_time::absolute(t).ok())
        .unwrap_or_default();
    let validity_period = p
        .sending
        .valid_for_ms
        .and_then(|v| match at {
            Some(t) => smpp_time::absolute(t.saturating_add(v)).ok(),
            None => smpp_time::relative(Duration::from_millis(u64::try_from(v).unwrap_or(0))).ok(),
        })
        .unwrap_or_default();
    Submission {
        key: PartKey {
            message_id: p.message_id,
            part: p.part,
        },
        sm: ShortMessage {
            source_addr_ton,
            source_addr_npi,
            source_addr,
            dest_addr_ton: cfg.dest_ton,
            dest_addr_npi: cfg.dest_npi,
            destination_addr: p.destination,
            esm_class: p.esm_class,
            registered_delivery: cfg.registered_delivery,
            data_coding: p.data_coding,
            schedule_delivery_time,
            validity_period,
            short_message,
            tlvs,
            ..ShortMessage::default()
        },
    }
}
