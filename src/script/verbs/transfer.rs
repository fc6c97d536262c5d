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

use super::options::VerbOptions;
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
        let o = VerbOptions::new(
            "transfer",
            m,
            &["timeout", "fallback", "trunk", "caller_id"],
        )?;
        let fallback_dial = match o.text("fallback")?.as_deref() {
            None | Some("none") => false,
            Some("dial") => true,
            Some(f) => {
                return Err(o.bad(
                    "fallback",
                    &format!("must be \"dial\" or \"none\", not {f:?}"),
                ))
            }
        };
        Ok(TransferOptions {
            timeout: o.ms("timeout", 1..=600_000)?.unwrap_or(DEFAULT_TIMEOUT),
            fallback_dial,
            trunk: o.text("trunk")?,
            caller_id: o.text("caller_id")?,
        })
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
                    return Ok(*r);
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
    let refer_only = |mut m: Map, r: TransferResult| {
        m.insert("ok".into(), r.ok.into());
        m.insert("status".into(), i64::from(r.status).into());
        m.insert("reason".into(), r.reason.into());
        m.insert("via".into(), "refer".into());
        m
    };
    if r.ok || !o.fallback_dial {
        return Ok(refer_only(m, r));
    }
    tracing::info!(%target, status = r.status, "transfer failed; bridging with dial()");
    let dialed = s.dial(DialRequest {
        target: target.to_string(),
        trunk: o.trunk,
        caller_id: o.caller_id,
        timeout: None,
        amd: false,
    });
    let d = match dialed {
        Ok(d) => d,
        // A control that cannot dial (a test double): the transfer's
        // failure stands.
        Err(VerbError::CallEnded) if !s.is_ended() && !s.control().is_gone() => {
            return Ok(refer_only(m, r))
        }
        Err(e) => return Err(e),
    };
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
    use crate::call::control::{CallControl, CallEnded, DialResult};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    type Log = Arc<Mutex<Vec<String>>>;

    /// A call whose transfer ends with `verdict` 700 ms after it starts,
    /// and whose `dial()` (when `can_dial`) reaches a party for 5 s.
    struct Fake {
        now: Instant,
        queued: Option<(Instant, CallEvent)>,
        verdict: Option<TransferResult>,
        can_dial: bool,
        log: Log,
    }

    impl CallControl for Fake {
        fn now(&self) -> Instant {
            self.now
        }
        fn answer(&mut self) -> Result<(), CallEnded> {
            Ok(())
        }
        fn ring(&mut self, _: bool) -> Result<(), CallEnded> {
            Ok(())
        }
        fn reject(&mut self, _: u16) -> Result<(), CallEnded> {
            Ok(())
        }
        fn hangup(&mut self) {}
        fn play(
            &mut self,
            _: u64,
            _: Vec<Arc<crate::media::prompt::Prompt>>,
            _: bool,
        ) -> Result<(), CallEnded> {
            Ok(())
        }
        fn stop_play(&mut self, _: u64) {}
        fn send_digits(&mut self, _: u64, _: &str) -> Result<(), CallEnded> {
            Ok(())
        }
        fn next_event(&mut self, timeout: Option<Duration>) -> Option<CallEvent> {
            match self.queued.take() {
                Some((at, ev)) if timeout.is_none_or(|t| at <= self.now + t) => {
                    self.now = self.now.max(at);
                    Some(ev)
                }
                q => {
                    self.queued = q;
                    match timeout {
                        Some(t) => {
                            self.now += t;
                            None
                        }
                        None => Some(CallEvent::Hangup),
                    }
                }
            }
        }
        fn prompt(&self, n: &str) -> Result<Arc<crate::media::prompt::Prompt>, String> {
            Err(n.to_string())
        }
        fn set_result(&mut self, _: &str, _: &str) {}
        fn is_answered(&self) -> bool {
            true
        }
        fn is_gone(&self) -> bool {
            false
        }
        fn send_sms(&mut self, _: &str, _: &str) -> Result<String, String> {
            Err("no".into())
        }
        fn transfer(&mut self, req: TransferRequest) -> Result<(), CallEnded> {
            self.log
                .lock()
                .unwrap()
                .push(format!("transfer {} {:?}", req.target, req.timeout));
            let v = self.verdict.clone().ok_or(CallEnded)?;
            self.queued = Some((
                self.now + Duration::from_millis(700),
                CallEvent::TransferEnded(Box::new(v)),
            ));
            Ok(())
        }
        fn dial(&mut self, req: DialRequest) -> Result<(), CallEnded> {
            if !self.can_dial {
                return Err(CallEnded);
            }
            self.log
                .lock()
                .unwrap()
                .push(format!("dial {} {:?}", req.target, req.trunk));
            let r = DialResult {
                outcome: "answered".into(),
                sip_status: Some(200),
                q850: Some(16),
                ring_ms: 1000,
                talk_ms: 5000,
                refined_outcome: "answered".into(),
                answered_by: None,
            };
            self.queued = Some((
                self.now + Duration::from_secs(6),
                CallEvent::DialEnded(Box::new(r)),
            ));
            Ok(())
        }
    }

    fn session(verdict: Option<TransferResult>, can_dial: bool) -> (Session, Log) {
        let log: Log = Arc::default();
        let fake = Fake {
            now: Instant::now(),
            queued: None,
            verdict,
            can_dial,
            log: log.clone(),
        };
        (Session::new(Box::new(fake)), log)
    }

    fn refused(status: u16) -> Option<TransferResult> {
        Some(TransferResult {
            ok: false,
            status,
            reason: "No".into(),
        })
    }

    fn opts(pairs: &[(&str, &str)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), Dynamic::from(v.to_string())))
            .collect()
    }

    #[test]
    fn success_ends_the_session() {
        let ok = TransferResult {
            ok: true,
            status: 200,
            reason: "OK".into(),
        };
        let (mut s, log) = session(Some(ok), true);
        let m = run(&mut s, "2000", &Map::new()).unwrap();
        assert_eq!(m["ok"].as_bool(), Ok(true));
        assert_eq!(m["via"].clone().into_string().unwrap(), "refer");
        assert!(s.is_ended(), "the next verb ends the flow");
        assert_eq!(log.lock().unwrap().as_slice(), ["transfer 2000 30s"]);
    }

    #[test]
    fn failure_without_fallback_is_returned() {
        let (mut s, log) = session(refused(603), true);
        let m = run(&mut s, "2000", &Map::new()).unwrap();
        assert_eq!(m["ok"].as_bool(), Ok(false));
        assert_eq!(m["status"].as_int(), Ok(603));
        assert!(!s.is_ended());
        assert_eq!(log.lock().unwrap().len(), 1, "no dial");
    }

    #[test]
    fn failure_with_fallback_dials_the_same_target() {
        let (mut s, log) = session(refused(501), true);
        let m = run(
            &mut s,
            "2000",
            &opts(&[("fallback", "dial"), ("trunk", "carrier")]),
        )
        .unwrap();
        assert_eq!(m["via"].clone().into_string().unwrap(), "dial");
        assert_eq!(m["ok"].as_bool(), Ok(true));
        assert_eq!(m["refer_status"].as_int(), Ok(501));
        assert_eq!(m["talk_ms"].as_int(), Ok(5000));
        assert_eq!(
            log.lock().unwrap().as_slice(),
            ["transfer 2000 30s", "dial 2000 Some(\"carrier\")"]
        );
    }

    #[test]
    fn a_control_that_cannot_transfer_or_dial_gives_a_failure_not_an_end() {
        let (mut s, _) = session(None, false);
        let m = run(&mut s, "2000", &opts(&[("fallback", "dial")])).unwrap();
        assert_eq!(m["ok"].as_bool(), Ok(false));
        assert_eq!(m["status"].as_int(), Ok(501));
        assert_eq!(m["via"].clone().into_string().unwrap(), "refer");
        assert!(!s.is_ended());
    }

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
