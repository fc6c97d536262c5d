//! The server's side of admission control and overload: the `sip::gate`
//! and the transport limits built from the config, each inbound message
//! put through the gate before the SIP core, the call cap resolved from
//! the box, and one summary log line per interval of what was refused.

use std::time::{Duration, Instant};

use crate::call::admission::{Admission, AdmissionConfig};
use crate::config::{Config, UntrustedPolicy};
use crate::rate::LogThrottle;
use crate::sip::flood::{FloodConfig, FloodStats, DEFAULT_CAPACITY};
use crate::sip::gate::{Gate, GateConfig, GateStats};
use crate::sip::transport::TransportLimits;

use super::sizing::{self, BoxFacts, FdLimit};

/// The gate for `[sip] trusted`/`untrusted` and the per-source limits.
pub fn gate(config: &Config) -> Gate {
    let l = &config.limits;
    Gate::new(GateConfig {
        trusted: config.sip.trusted.clone(),
        untrusted: config.sip.untrusted,
        flood: FloodConfig {
            rate: l.per_source_cps,
            burst: l.per_source_burst,
            refusals: l.flood_refusals,
            window: Duration::from_secs(l.flood_window_s.into()),
            silence: Duration::from_secs(l.flood_silence_s.into()),
            capacity: DEFAULT_CAPACITY,
        },
    })
}

pub fn transport_limits(config: &Config) -> TransportLimits {
    let l = &config.limits;
    TransportLimits {
        max_message_bytes: l.max_message_bytes,
        tcp_max_connections: l.tcp_max_connections,
        tcp_max_per_source: l.tcp_max_per_source,
        tcp_idle_timeout: Duration::from_secs(l.tcp_idle_timeout_s.into()),
        tcp_accept_only: match config.sip.untrusted {
            UntrustedPolicy::Drop => config.sip.trusted.clone(),
            UntrustedPolicy::Reject => None,
        },
    }
}

/// Raises the descriptor limit to the hard limit and says what happened.
pub fn raise_fd_limit() -> FdLimit {
    let fd = sizing::raise_nofile();
    match (&fd.error, fd.raised_from) {
        (Some(e), _) => tracing::warn!(
            soft = fd.soft,
            hard = fd.hard,
            error = %e,
            "cannot raise the file-descriptor limit; calls are capped by it"
        ),
        (None, Some(from)) => tracing::info!(
            from,
            to = fd.soft,
            "file-descriptor limit raised to the hard limit"
        ),
        (None, None) => tracing::info!(
            soft = fd.soft,
            hard = fd.hard,
            "file-descriptor limit already at the hard limit"
        ),
    }
    fd
}

/// Call admission with `[limits] max_calls`, or the default sized from
/// the box (`fd`: the limit after [`raise_fd_limit`]).
pub fn admission(config: &Config, rtp_pairs: usize, fd: &FdLimit) -> Admission {
    let max_calls = match config.limits.max_calls {
        Some(n) => {
            tracing::info!(max_calls = n, "limits.max_calls from the config");
            n
        }
        None => {
            let facts = BoxFacts {
                rtp_pairs,
                nofile: fd.soft,
                tcp_max_connections: config.limits.tcp_max_connections,
                memory_bytes: sizing::memory_bytes(),
            };
            let (n, bound) = sizing::default_max_calls(&facts);
            tracing::info!(
                max_calls = n,
                bound = ?bound,
                rtp_pairs,
                nofile = fd.soft,
                memory_mb = facts.memory_bytes.map(|m| m >> 20),
                "limits.max_calls sized from the box"
            );
            n
        }
    };
    Admission::new(AdmissionConfig {
        max_calls,
        max_cps: config.limits.max_cps,
    })
}

/// Logs what the gate refused, at most once per interval and only when
/// something changed.
pub struct GateLog {
    throttle: LogThrottle,
    last: (GateStats, FloodStats),
}

impl GateLog {
    pub fn new() -> Self {
        GateLog {
            throttle: LogThrottle::new(Duration::from_secs(10)),
            last: Default::default(),
        }
    }

    pub fn maybe_log(&mut self, now: Instant, gate: &Gate) {
        let now_stats = (gate.stats().clone(), gate.flood_stats().clone());
        // Calls let through move the flood counters too; only a refusal
        // is worth a warning.
        if refusals(&now_stats) == refusals(&self.last) || self.throttle.event(now).is_none() {
            return;
        }
        let (g, f) = (&now_stats.0, &now_stats.1);
        let (lg, lf) = (&self.last.0, &self.last.1);
        tracing::warn!(
            invites_refused_503 = g.flood_refused - lg.flood_refused,
            messages_silenced = g.flood_silenced - lg.flood_silenced,
            sources_silenced = f.sources_silenced - lf.sources_silenced,
            untrusted_rejected_403 = g.untrusted_rejected - lg.untrusted_rejected,
            untrusted_dropped = g.untrusted_dropped - lg.untrusted_dropped,
            "refused at the gate since the last line"
        );
        self.last = now_stats;
    }
}

/// The counters a gate line reports.
fn refusals((g, f): &(GateStats, FloodStats)) -> [u64; 5] {
    [
        g.flood_refused,
        g.flood_silenced,
        f.sources_silenced,
        g.untrusted_rejected,
        g.untrusted_dropped,
    ]
}

impl Default for GateLog {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_let_through_are_not_refusals() {
        let quiet = (GateStats::default(), FloodStats::default());
        let mut busy = quiet.clone();
        busy.1.allowed = 40;
        busy.1.evictions = 2;
        assert_eq!(refusals(&busy), refusals(&quiet));
        busy.0.flood_refused = 1;
        assert_ne!(refusals(&busy), refusals(&quiet));
    }
}
