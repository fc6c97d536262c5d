//! The gate in front of the SIP core: for each datagram or framed message,
//! before any transaction, dialog or call exists for it, decide from the
//! source address and the method alone whether the core sees it, whether
//! rivr answers statelessly (Kamailio's `sl_send_reply`), or whether it is
//! dropped. Sans-IO: time is passed in; it returns the bytes to send.
//!
//! - A source silenced by [`FloodControl`] gets nothing, whatever it sends.
//! - An INVITE spends a token of its source's bucket: over the rate it is
//!   answered 503 with `Retry-After` (or nothing, once the source is
//!   silenced). Other methods from a trusted source are not rate limited
//!   here; from an untrusted one, every request spends a token.
//! - With `[sip] trusted` set, a request from outside the list never
//!   reaches the core: `untrusted = "reject"` answers 403, `"drop"` nothing.
//!   The answer is built before routing, from the request's own fields,
//!   without `Server` or `Allow`, so it reads the same for every method and
//!   every number. Responses and ACKs from outside are dropped.
//!
//! A stateless answer goes back to the packet's source (not to the Via), so
//! a spoofed INVITE cannot aim it at a third party, and a refused flood
//! draws at most one response per INVITE — none once silenced.

use std::net::IpAddr;
use std::time::Instant;

use crate::rate::retry_after_secs;
use crate::sip::acl::{Acl, UntrustedPolicy};
use crate::sip::flood::{FloodConfig, FloodControl, FloodStats, Verdict};
use crate::sip::wire;

#[derive(Debug, Clone)]
pub struct GateConfig {
    /// `None`: every source is trusted.
    pub trusted: Option<Acl>,
    pub untrusted: UntrustedPolicy,
    pub flood: FloodConfig,
}

/// What to do with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateVerdict {
    /// Hand it to the SIP core.
    Pass,
    /// Send these bytes back to the source; the core never sees it.
    Reply(Vec<u8>),
    Drop,
}

/// Counters for logs and metrics.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GateStats {
    /// Requests answered 403 because of their source.
    pub untrusted_rejected: u64,
    /// Messages dropped because of their source (`untrusted = "drop"`, or
    /// responses and ACKs from outside `trusted`).
    pub untrusted_dropped: u64,
    /// INVITEs answered 503 for their source's rate.
    pub flood_refused: u64,
    /// Messages dropped because their source is silenced.
    pub flood_silenced: u64,
}

/// What the first bytes say the message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Invite,
    Ack,
    OtherRequest,
    Response,
    Garbage,
}

pub struct Gate {
    trusted: Option<Acl>,
    untrusted: UntrustedPolicy,
    flood: FloodControl,
    stats: GateStats,
}

impl Gate {
    pub fn new(cfg: GateConfig) -> Self {
        Gate {
            trusted: cfg.trusted,
            untrusted: cfg.untrusted,
            flood: FloodControl::new(cfg.flood),
            stats: GateStats::default(),
        }
    }

    pub fn stats(&self) -> &GateStats {
        &self.stats
    }

    pub fn flood_stats(&self) -> &FloodStats {
        self.flood.stats()
    }

    /// The verdict on `bytes` from `source`.
    pub fn check(&mut self, now: Instant, source: IpAddr, bytes: &[u8]) -> GateVerdict {
        let kind = sniff(bytes);
        let trusted = self.trusted.as_ref().is_none_or(|acl| acl.allows(source));
        if !trusted && self.untrusted == UntrustedPolicy::Drop {
            self.stats.untrusted_dropped += 1;
            return GateVerdict::Drop;
        }
        // A trusted source's other requests are never rate limited (the
        // BYE or INFO of a call in progress must not be refused); an
        // untrusted source has no calls, so every request it sends spends
        // tokens like an INVITE: a scanner that loops on REGISTER (svcrack
        // does, forever, on 403) draws a burst of 403s, a few 503s, then
        // silence, instead of one 403 per request without end.
        if kind == Kind::Invite || (!trusted && kind == Kind::OtherRequest) {
            return match self.flood.on_invite(now, source) {
                Verdict::Allow if trusted => GateVerdict::Pass,
                Verdict::Allow => self.reply(bytes, 403, None),
                Verdict::Reject503 { retry_after } => {
                    self.reply(bytes, 503, Some(retry_after_secs(retry_after)))
                }
                Verdict::Silence => {
                    self.stats.flood_silenced += 1;
                    GateVerdict::Drop
                }
            };
        }
        if self.flood.is_silenced(now, source) {
            self.stats.flood_silenced += 1;
            return GateVerdict::Drop;
        }
        match kind {
            _ if trusted => GateVerdict::Pass,
            Kind::OtherRequest => self.reply(bytes, 403, None),
            _ => {
                self.stats.untrusted_dropped += 1;
                GateVerdict::Drop
            }
        }
    }

    fn reply(&mut self, bytes: &[u8], status: u16, retry_after: Option<u32>) -> GateVerdict {
        let value = retry_after.map(|s| s.to_string());
        let extra: Vec<(&str, &str)> = value
            .as_deref()
            .map(|v| ("Retry-After", v))
            .into_iter()
            .collect();
        match wire::stateless_response(bytes, status, &extra) {
            Some(resp) => {
                match status {
                    503 => self.stats.flood_refused += 1,
                    _ => self.stats.untrusted_rejected += 1,
                }
                GateVerdict::Reply(resp)
            }
            // Not even the fields to answer with: nothing the core would
            // do better for a source it is refusing.
            None => {
                self.stats.untrusted_dropped += 1;
                GateVerdict::Drop
            }
        }
    }
}

/// The method from the start line, without parsing anything else.
fn sniff(bytes: &[u8]) -> Kind {
    let start = bytes
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(bytes.len());
    let rest = bytes.get(start..).unwrap_or_default();
    if rest
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
    {
        return Kind::Response;
    }
    let method_len = rest.iter().take(32).position(|&b| b == b' ');
    let Some(method) = method_len.and_then(|n| rest.get(..n)) else {
        return Kind::Garbage;
    };
    // Methods are case-sensitive (RFC 3261 §7.1); the core answers other
    // spellings as the unknown methods they are.
    match method {
        b"INVITE" => Kind::Invite,
        b"ACK" => Kind::Ack,
        m if !m.is_empty()
            && m.iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b)) =>
        {
            Kind::OtherRequest
        }
        _ => Kind::Garbage,
    }
}

#[cfg(test)]
mod tests;
