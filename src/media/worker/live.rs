//! Each call's media as it is now, for the API's live call list: the
//! codec, the jitter heard and the loss so far. A worker writes every one
//! of its calls here once a second (one map write per call per second,
//! never per packet) and removes a call when its media closes.

use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;

use super::call::MediaCall;
use super::path::PacketPath;
use crate::media::events::MediaId;

/// One call's media, at most a second old.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveMedia {
    /// `PCMU`, `PCMA`, `opus`.
    pub codec: &'static str,
    /// The jitter buffer's estimate of the interarrival jitter (RFC 3550).
    pub jitter_ms: f64,
    /// The delay the jitter buffer aims for.
    pub buffer_ms: f64,
    pub packets_received: u64,
    /// RFC 3550 cumulative loss (0 when duplicates outnumber it).
    pub packets_lost: u64,
    /// Lost in percent of expected (received + lost).
    pub loss_pct: f64,
}

pub type LiveTable = Arc<DashMap<MediaId, LiveMedia>>;

impl LiveMedia {
    pub(super) fn of(c: &MediaCall) -> LiveMedia {
        let jb = c.core.listener().jitter_stats();
        let (received, lost) = match &c.path {
            PacketPath::Rtp(p) => {
                let s = p.stats();
                (
                    s.packets_received,
                    u64::try_from(s.packets_lost).unwrap_or(0),
                )
            }
            PacketPath::BChannel(_) => (jb.accepted, jb.lost),
        };
        let expected = received + lost;
        LiveMedia {
            codec: c.core.codec().encoding_name(),
            jitter_ms: jb.jitter.as_secs_f64() * 1000.0,
            buffer_ms: jb.target_delay.as_secs_f64() * 1000.0,
            packets_received: received,
            packets_lost: lost,
            loss_pct: if expected == 0 {
                0.0
            } else {
                100.0 * lost as f64 / expected as f64
            },
        }
    }
}
