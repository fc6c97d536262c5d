//! The server's counters as values, for `/metrics` and the API: read from
//! the signalling loop's parts at one instant (`Control::Stats`), plus the
//! calls ended, counted as their CDRs are written.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use crate::call::registry::CdrRecord;

use super::campaigns::TrunkState;

/// Legs ended, by (direction, trunk or "", outcome). One lock per leg's
/// end, never per packet.
#[derive(Debug, Default)]
pub struct CallCounts(Mutex<BTreeMap<(&'static str, String, &'static str), u64>>);

impl CallCounts {
    pub fn record(&self, r: &CdrRecord) {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *m.entry((r.direction, r.trunk.clone().unwrap_or_default(), r.outcome))
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> Vec<((&'static str, String, &'static str), u64)> {
        let m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Everything `/metrics` shows of the signalling side, at one instant.
#[derive(Debug, Clone, Default)]
pub struct ServerStats {
    /// Calls not yet closed, by direction and state (`ringing`,
    /// `answered`, `ending`).
    pub calls_live: Vec<(&'static str, &'static str, u64)>,
    pub calls_ended: Vec<((&'static str, String, &'static str), u64)>,
    /// Calls closed since the start; with the live ones, the calls ever
    /// started (the dashboard's calls per second).
    pub calls_closed: u64,
    pub offered: u64,
    pub no_route: u64,
    pub refused_overload: u64,
    pub scripts_started: u64,
    pub scripts_not_started: u64,
    pub admitted: u64,
    pub refused_full: u64,
    pub refused_too_fast: u64,
    pub untrusted_rejected: u64,
    pub untrusted_dropped: u64,
    pub flood_refused: u64,
    pub flood_silenced: u64,
    pub sip_malformed_dropped: u64,
    pub sip_malformed_answered: u64,
    pub sip_retransmissions_absorbed: u64,
    pub sip_failovers: u64,
    /// Transfer NOTIFYs whose body was no sipfrag status line.
    pub sip_sipfrag_malformed: u64,
    pub signalling_panics: u64,
    pub tcp_open: u64,
    pub tcp_accepted: u64,
    pub tcp_refused: u64,
    pub udp_oversize_dropped: u64,
    pub trunks: Vec<TrunkState>,
    /// The media of ended legs, added up.
    pub media: crate::media::worker::totals::MediaSnapshot,
    /// Panics in the media workers (each ends at most one call).
    pub media_panics: u64,
    /// How scripts ended, and the limits that stopped them.
    pub scripts: crate::script::ends::ScriptEndCounts,
    pub script_panics: u64,
    /// `say()`'s cache and syntheses.
    pub tts: crate::media::tts::TtsCounts,
}

impl super::Server {
    /// The counters now (`Control::Stats`).
    pub(super) fn stats(&self) -> ServerStats {
        let mut live: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
        for c in self.core.registry.live_calls(std::time::Instant::now()) {
            *live.entry((c.direction, c.state)).or_default() += 1;
        }
        let r = self.core.registry.stats();
        let a = self
            .core
            .registry
            .admission()
            .map(|a| a.stats().clone())
            .unwrap_or_default();
        let g = self.core.gate.stats();
        let e = self.core.endpoint.stats();
        let t = self.transports.stats();
        let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        ServerStats {
            calls_live: live.into_iter().map(|((d, s), n)| (d, s, n)).collect(),
            calls_ended: self.shared.call_counts.snapshot(),
            calls_closed: r.closed,
            offered: r.offered,
            no_route: r.no_route,
            refused_overload: r.refused_overload,
            scripts_started: r.scripts_started,
            scripts_not_started: r.scripts_not_started,
            admitted: a.admitted,
            refused_full: a.refused_full,
            refused_too_fast: a.refused_too_fast,
            untrusted_rejected: g.untrusted_rejected,
            untrusted_dropped: g.untrusted_dropped,
            flood_refused: g.flood_refused,
            flood_silenced: g.flood_silenced,
            sip_malformed_dropped: e.malformed_dropped,
            sip_malformed_answered: e.malformed_answered,
            sip_retransmissions_absorbed: e.retransmissions_absorbed,
            sip_failovers: e.failovers,
            sip_sipfrag_malformed: e.sipfrag_malformed,
            signalling_panics: load(&self.sup.stats.panics),
            tcp_open: t.tcp_open.load(Ordering::Relaxed) as u64,
            tcp_accepted: load(&t.tcp_accepted),
            tcp_refused: load(&t.tcp_refused_over_limit)
                + load(&t.tcp_refused_per_source)
                + load(&t.tcp_refused_untrusted),
            udp_oversize_dropped: load(&t.udp_oversize_dropped),
            trunks: self.trunk_states(),
            media: self.shared.media.totals(),
            media_panics: load(&self.shared.media.failures().call_panics)
                + load(&self.shared.media.failures().worker_restarts),
            scripts: self.shared.scripts.threads().ends().counts(),
            script_panics: self.shared.scripts.threads().panics(),
            tts: self.shared.scripts.speaker().cache().counts(),
        }
    }
}
