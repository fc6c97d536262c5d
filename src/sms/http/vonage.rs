//! Vonage's (Nexmo's) SMS API, as its public documentation describes it:
//! the send request (`POST /sms/json`, form fields `api_key`,
//! `api_secret`, `from`, `to`, `text`, `type=unicode` for UCS-2,
//! `callback`, `client-ref`), its answer (`messages[]`, one per part, with
//! `status` and `message-id`; the status codes of its error table mapped
//! to retry or fail), delivery receipts and inbound SMS webhooks (query,
//! form or JSON parameters) and their signature (`sig`: MD5 hash or HMAC
//! of the sorted parameters with the signature secret). Pure functions.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::Value;

use super::client::Request;
use super::{Answer, Event, Outgoing};
use crate::sms::config::{HttpSmsConfig, SignatureMethod};
use crate::sms::encoding::Concat;
use crate::sms::receipt::{Receipt, ReceiptStat};

/// How far a signed webhook's `timestamp` may be from now (Vonage: reject
/// older than five minutes, against replay).
const MAX_SKEW_SECS: i64 = 300;

fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                super::template::url_encode(k),
                super::template::url_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The send request for one message (Vonage splits long text itself and
/// answers with one `messages[]` entry per part).
pub(crate) fn send_request(cfg: &HttpSmsConfig, m: &Outgoing) -> Request {
    // E.164 without the `+`, as the API documents `to`.
    let to = m.to.trim_start_matches('+');
    let mut pairs = vec![
        ("api_key", cfg.api_key.0.as_str()),
        ("api_secret", cfg.api_secret.0.as_str()),
        ("from", m.from.as_str()),
        ("to", to),
        ("text", m.text.as_str()),
        ("type", if m.ucs2 { "unicode" } else { "text" }),
        ("client-ref", m.id.as_str()),
    ];
    if !cfg.webhook_url.is_empty() {
        pairs.push(("callback", cfg.webhook_url.as_str()));
        pairs.push(("status-report-req", "1"));
    }
    Request {
        method: "POST",
        url: format!("{}/sms/json", cfg.base_url),
        headers: vec![("Accept".into(), "application/json".into())],
        body: Some((
            "application/x-www-form-urlencoded".into(),
            form(&pairs).into_bytes(),
        )),
    }
}

/// What a non-zero `status` means (Vonage's SMS API error table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    /// 1 Throttled, 10 Too Many Existing Binds: not taken, send again.
    NotTaken,
    /// 5 Internal Error: may have been taken; send again.
    Retry,
    /// Every other code: parameters, credentials, barred, quota, …
    Fail,
}

pub(crate) fn classify(status: u32) -> Code {
    match status {
        1 | 10 => Code::NotTaken,
        5 => Code::Retry,
        _ => Code::Fail,
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Reads a 2xx answer for a message of `parts` parts; `None` when it
/// does not have the documented shape.
pub(crate) fn parse_send_answer(body: &str, parts: usize) -> Option<Answer> {
    let v = serde_json::from_str::<Value>(body).ok()?;
    let msgs = v
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())?;
    let mut per_part: Vec<Result<String, String>> = Vec::new();
    let mut worst: Option<(Code, String)> = None;
    for m in msgs {
        let status: u32 = text_of(&m["status"])
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(u32::MAX);
        if status == 0 {
            match text_of(&m["message-id"]) {
                Some(id) if !id.is_empty() => per_part.push(Ok(id)),
                _ => per_part.push(Err("status 0 without message-id".into())),
            }
            continue;
        }
        let why = format!(
            "status {status}: {}",
            m["error-text"].as_str().unwrap_or("(no error-text)")
        );
        let code = classify(status);
        if worst
            .as_ref()
            .is_none_or(|(c, _)| code == Code::Fail && *c != Code::Fail)
        {
            worst = Some((code, why.clone()));
        }
        per_part.push(Err(why));
    }
    let any_taken = per_part.iter().any(Result::is_ok);
    match worst {
        // Nothing taken and worth another try: the whole request again.
        Some((Code::NotTaken, why)) if !any_taken => return Some(Answer::NotTaken(why)),
        Some((Code::Retry, why)) if !any_taken => return Some(Answer::Retry(why)),
        _ => {}
    }
    // rivr counted `parts`; Vonage may have split otherwise. Parts past
    // its answers share its last one, so each part has an outcome.
    let mut out = Vec::with_capacity(parts);
    for i in 0..parts {
        let r = per_part
            .get(i)
            .or_else(|| per_part.last())
            .cloned()
            .unwrap_or_else(|| Err("no answer for this part".into()));
        out.push(r);
    }
    if per_part.len() > parts {
        tracing::warn!(
            "sms vonage: {} parts answered for {parts} counted; receipts of the extra ones match nothing",
            per_part.len()
        );
    }
    Some(Answer::Each(vec![out]))
}

/// `error-text` of the first failed entry, else the body's start.
pub(crate) fn error_text(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    v["messages"][0]["error-text"]
        .as_str()
        .or(v["title"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// Webhook parameters: the query string plus a form or JSON body.
pub(crate) fn params(
    query: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(q) = query {
        out.extend(super::template::parse_form(q));
    }
    if content_type.contains("json") {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for (k, v) in map {
                if let Some(s) = match &v {
                    Value::Bool(b) => Some(b.to_string()),
                    other => text_of(other),
                } {
                    out.insert(k, s);
                }
            }
        }
    } else if !body.is_empty() {
        out.extend(super::template::parse_form(&String::from_utf8_lossy(body)));
    }
    out
}

/// The signature Vonage computes over `params` (the `sig` parameter left
/// out): `&key=value` for each key in order, `&` and `=` in values
/// replaced by `_`; MD5 of that plus the secret (lower-case hex), or the
/// HMAC of it keyed by the secret (upper-case hex).
pub(crate) fn signature(
    params: &BTreeMap<String, String>,
    secret: &str,
    method: SignatureMethod,
) -> String {
    let mut s = String::new();
    for (k, v) in params.iter().filter(|(k, _)| k.as_str() != "sig") {
        s.push('&');
        s.push_str(k);
        s.push('=');
        s.push_str(&v.replace(['&', '='], "_"));
    }
    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02X}")).collect()
    }
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &str, data: &str) -> Vec<u8> {
        // HMAC takes a key of any length; the error cannot happen.
        let Ok(mut m) = <M as Mac>::new_from_slice(key.as_bytes()) else {
            return Vec::new();
        };
        m.update(data.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
    match method {
        SignatureMethod::Md5Hash => {
            s.push_str(secret);
            hex(&Md5::digest(s.as_bytes())).to_ascii_lowercase()
        }
        SignatureMethod::Md5Hmac => hex(&mac::<Hmac<Md5>>(secret, &s)),
        SignatureMethod::Sha1Hmac => hex(&mac::<Hmac<sha1::Sha1>>(secret, &s)),
        SignatureMethod::Sha256Hmac => hex(&mac::<Hmac<sha2::Sha256>>(secret, &s)),
        SignatureMethod::Sha512Hmac => hex(&mac::<Hmac<sha2::Sha512>>(secret, &s)),
    }
}

/// Checks `sig` and `timestamp` of a signed webhook; the error says why.
pub(crate) fn check_signature(
    params: &BTreeMap<String, String>,
    secret: &str,
    method: SignatureMethod,
    now_secs: i64,
) -> Result<(), String> {
    let Some(sig) = params.get("sig") else {
        return Err("no sig parameter (signed webhooks are expected)".into());
    };
    let want = signature(params, secret, method);
    let same = subtle::ConstantTimeEq::ct_eq(
        sig.to_ascii_lowercase().as_bytes(),
        want.to_ascii_lowercase().as_bytes(),
    );
    if !bool::from(same) {
        return Err(
            "sig does not match (check sms_http.signature_secret and signature_method)".into(),
        );
    }
    let ts: i64 = params
        .get("timestamp")
        .and_then(|t| t.trim().parse().ok())
        .ok_or("no timestamp parameter")?;
    if (now_secs - ts).abs() > MAX_SKEW_SECS {
        return Err(format!(
            "timestamp {ts} is more than {MAX_SKEW_SECS} s from now (replayed?)"
        ));
    }
    Ok(())
}

fn stat_of(status: &str) -> ReceiptStat {
    match status.to_ascii_lowercase().as_str() {
        "delivered" => ReceiptStat::Delivered,
        "expired" => ReceiptStat::Expired,
        "failed" | "rejected" => ReceiptStat::Failed,
        "accepted" | "buffered" => ReceiptStat::Pending,
        _ => ReceiptStat::Unknown,
    }
}

/// A delivery receipt or an inbound SMS from webhook parameters; `None`
/// for anything else.
pub(crate) fn parse_event(p: &BTreeMap<String, String>) -> Option<Event> {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let id = p.get("messageId").or_else(|| p.get("message-id"))?.clone();
    if id.is_empty() {
        return None;
    }
    if let Some(status) = p.get("status") {
        let err = get("err-code");
        return Some(Event::Receipt(Receipt {
            smsc_id: id,
            stat: stat_of(status),
            stat_text: status.clone(),
            err: if err == "0" {
                String::new()
            } else {
                err.to_string()
            },
            submit_date: String::new(),
            done_date: get("scts").to_string(),
        }));
    }
    let text = p.get("text")?;
    let concat = (get("concat") == "true")
        .then(|| {
            Some(Concat {
                reference: get("concat-ref").trim().parse::<u32>().ok()? as u16,
                total: get("concat-total").trim().parse().ok()?,
                seq: get("concat-part").trim().parse().ok()?,
            })
        })
        .flatten()
        .filter(|c| c.total > 1 && c.seq >= 1 && c.seq <= c.total);
    Some(Event::Inbound {
        from: get("msisdn").to_string(),
        to: get("to").to_string(),
        text: text.clone(),
        provider_id: id,
        concat,
    })
}

#[cfg(test)]
#[path = "vonage_tests.rs"]
mod tests;
