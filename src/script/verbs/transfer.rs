//! `transfer(target)` / `transfer(target, #{ timeout, fallback, trunk,
//! caller_id })`: blind transfer of the answered caller (REFER on SIP).
//! Returns a map the script branches on:
//! `#{ ok, status, reason, via }` — `via` is `"refer"`, or `"dial"` when
//! the transfer failed and `fallback: "dial"` bridged the caller with
//! `dial()` instead (then `outcome`, `ring_ms`, `talk_ms` as `dial()`
//! returns them, and `refer_status` the transfer's failure). After a
//! transfer that succeeded the call is gone: the script's next verb ends
//! it. See docs/scripts.md ("Transfer").

use std::time::Duration;

use rhai::{Dynamic, Map};

use super::{Session, VerbError};
use crate::call::control::{CallEvent, DialRequest, TransferRequest, TransferResult};

/// How long a transfer waits for its final NOTIFY by default: long enough
/// for the target to ring a while.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The options of one `transfer()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferOptions {
    pub timeout: Duration,
    /// `fallback: "dial"`: bridge with `dial()` when the transfer fails.
    pub fallback_dial: bool,
    pub trunk: Option<String>,
    pub caller_id: Option<String>,
}

impl TransferOptions {
    pub fn parse(m: &Map) -> Result<TransferOptions, VerbError> {
        let bad = |msg: String| VerbError::BadArgument(format!("transfer: {msg}"));
        let mut o = TransferOptions {
            timeout: DEFAULT_TIMEOUT,
            fallback_dial: false,
            trunk: None,
            caller_id: None,
        };
        for (k, v) in m {
            let text = || {
                v.clone()
                    .try_cast::<rhai::ImmutableString>()
                    .map(|s| s.to_string())
                    .ok_or_else(|| bad(format!("{k} must be a string")))
            };
            match k.as_str() {
                "timeout" => {
                    o.timeout = v
                        .as_int()
                        .ok()
                        .filter(|n| (1..=600_000).contains(n))
                        .map(|n| Duration::from_millis(n as u64))
                        .ok_or_else(|| bad("timeout: expected 1 to 600000 ms".into()))?
                }
                "fallback" => match text()?.as_str() {
                    "dial" => o.fallback_dial = true,
                    "none" => o.fallback_dial = false,
                    f => {
                        return Err(bad(format!(
                            "fallback must be \"dial\" or \"none\", not {f:?}"
                        )))
                    }
                },
                "trunk" => o.trunk = Some(text()?),
                "caller_id" => o.caller_id = Some(text()?),
                _ => return Err(bad(format!("unknown option {k:?}"))),
            }
        }
        Ok(o)
    }
}

impl Session {
    /// Transfers the caller to `target`; waits for the far end's verdict.
    pub fn transfer(
        &mut self,
        target: &str,
        timeout: Duration,
    ) -> Result<TransferResult, VerbError> {
        self.check()?;
        if target.is_empty() {
            return Err(VerbError::BadArgument(
                "transfer: the target is empty".into(),
            ));
        }
        let req = TransferRequest {
            target: target.to_string(),
            timeout,
        };
        if self.ctl.transfer(req).is_err() {
            if self.ctl.is_gone() {
                return Err(VerbError::CallEnded);
            }
            return Ok(TransferResult {
                ok: false,
                status: 501,
                reason: "this call cannot be transferred".into(),
            });
        }
        loop {
            match self.wait(None)? {
                Some(CallEvent::TransferEnded(r)) => {
                    // The caller is someone else's now; rivr's leg ends.
                    self.ended |= r.ok;
                    return Ok(r);
                }
                Some(CallEvent::Digit { digit, .. }) => self.buffer(digit),
                _ => {}
            }
        }
    }
}

/// The script verb: the transfer, then the fallback if asked for.
pub fn run(s: &mut Session, target: &str, opts: &Map) -> Result<Map, VerbError> {
    let o = TransferOptions::parse(opts)?;
    let r = s.transfer(target, o.timeout)?;
    let mut m = Map::new();
    if r.ok || !o.fallback_dial {
        m.insert("ok".into(), r.ok.into());
        m.insert("status".into(), i64::from(r.status).into());
        m.insert("reason".into(), r.reason.into());
        m.insert("via".into(), "refer".into());
        return Ok(m);
    }
    tracing::info!(%target, status = r.status, "transfer failed; bridging with dial()");
    let d = s.dial(DialRequest {
        target: target.to_string(),
        trunk: o.trunk,
        caller_id: o.caller_id,
        timeout: None,
    })?;
    let status = d
        .sip_status
        .map_or(Dynamic::UNIT, |s| Dynamic::from(i64::from(s)));
    m.insert("ok".into(), (d.outcome == "answered").into());
    m.insert("status".into(), status);
    m.insert("reason".into(), d.outcome.clone().into());
    m.insert("via".into(), "dial".into());
    m.insert("outcome".into(), d.outcome.into());
    m.insert("ring_ms".into(), (d.ring_ms as i64).into());
    m.insert("talk_ms".into(), (d.talk_ms as i64).into());
    m.insert("refer_status".into(), i64::from(r.status).into());
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let mut m = Map::new();
        assert_eq!(TransferOptions::parse(&m).unwrap().timeout, DEFAULT_TIMEOUT);
        m.insert("fallback".into(), "dial".into());
        m.insert("timeout".into(), (5000_i64).into());
        let o = TransferOptions::parse(&m).unwrap();
        assert!(o.fallback_dial);
        assert_eq!(o.timeout, Duration::from_secs(5));
        m.insert("fallback".into(), "pray".into());
        assert!(TransferOptions::parse(&m).is_err());
        let mut m = Map::new();
        m.insert("timeout".into(), (0_i64).into());
        assert!(TransferOptions::parse(&m).is_err());
        let mut m = Map::new();
        m.insert("when".into(), (1_i64).into());
        assert!(TransferOptions::parse(&m).is_err());
    }
}
