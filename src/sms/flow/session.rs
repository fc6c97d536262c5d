//! The `sms` map and `session` map an SMS script sees, and the session's
//! way to and from the store (JSON) with its expiry.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, Map, Scope};

use crate::call::control::CallInfo;
use crate::script::runner::{FlowScope, Outcome};
use crate::store::InboundSms;

/// The largest session kept (its JSON); a script that grows it past this
/// fails its message.
pub const MAX_SESSION_BYTES: usize = 64 * 1024;

/// When a session written at `now_ms` expires.
pub fn expires_at(now_ms: i64, ttl: Duration) -> i64 {
    now_ms.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

/// A stored session as the script's map; a row that is not a JSON object
/// (it never should be) starts over, logged.
pub fn from_json(engine: &rhai::Engine, json: Option<&str>) -> Map {
    let Some(json) = json else {
        return Map::new();
    };
    engine.parse_json(json, true).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "sms: a stored session is not a JSON object; it starts over");
        Map::new()
    })
}

/// The map as stored, or why it cannot be.
pub fn to_json(map: &Map) -> Result<String, String> {
    let json = rhai::format_map_as_json(map);
    if json.len() > MAX_SESSION_BYTES {
        return Err(format!(
            "session: {} bytes as JSON, more than {MAX_SESSION_BYTES}",
            json.len()
        ));
    }
    Ok(json)
}

/// The `sms` map.
pub fn sms_map(m: &InboundSms, keyword: &str, route: &str) -> Map {
    let mut s = Map::new();
    s.insert("id".into(), m.id.clone().into());
    s.insert("from".into(), m.source.clone().into());
    s.insert("to".into(), m.destination.clone().into());
    s.insert("text".into(), m.body.clone().into());
    s.insert("keyword".into(), keyword.into());
    s.insert("route".into(), route.into());
    s.insert("received_ms".into(), Dynamic::from(m.received_ms));
    s
}

/// The session as the script left it: `Ok(None)` when the script failed
/// (the stored one stays), `Err` when it is not a map any more.
pub type SessionLeft = Arc<Mutex<Option<Result<Map, String>>>>;

/// Puts `sms` (constant) and `session` in the scope, takes `session` back.
pub struct SmsScope {
    pub sms: Map,
    pub session: Map,
    pub left: SessionLeft,
}

impl FlowScope for SmsScope {
    fn fill(&mut self, scope: &mut Scope, _info: &CallInfo) {
        scope.push_constant("sms", std::mem::take(&mut self.sms));
        scope.push("session", std::mem::take(&mut self.session));
    }

    fn take(&mut self, scope: &Scope, outcome: &Outcome) {
        if matches!(outcome, Outcome::Failed(_)) {
            return;
        }
        let got = match scope.get_value::<Map>("session") {
            Some(m) => Ok(m),
            None => Err("session: the script made it something other than a map".to_string()),
        };
        if let Ok(mut l) = self.left.lock() {
            *l = Some(got);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_goes_to_json_and_back() {
        let engine = rhai::Engine::new();
        let mut m = Map::new();
        m.insert("step".into(), Dynamic::from(2_i64));
        m.insert("name".into(), "Ana \"A\" é".into());
        let json = to_json(&m).unwrap();
        let back = from_json(&engine, Some(&json));
        assert_eq!(back.get("step").unwrap().as_int().unwrap(), 2);
        assert_eq!(back.get("name").unwrap().to_string(), "Ana \"A\" é");
        assert!(from_json(&engine, Some("[1]")).is_empty());
        assert!(from_json(&engine, None).is_empty());
    }

    #[test]
    fn expiry_saturates() {
        assert_eq!(expires_at(1000, Duration::from_secs(60)), 61_000);
        assert_eq!(expires_at(i64::MAX - 1, Duration::from_secs(60)), i64::MAX);
    }
}
