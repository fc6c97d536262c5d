//! Infobip's SMS API, as its public documentation describes it: the send
//! request (`POST /sms/2/text/advanced`, `Authorization: App <key>`, one
//! `messages[]` entry per rivr message, so several messages go in one bulk
//! request), its answer (`messages[].messageId` and `status.groupName`),
//! delivery reports (pushed to `notifyUrl` or pulled from
//! `GET /sms/1/reports`: `results[]` with `messageId`, `status`, `error`)
//! and inbound SMS (`results[]` with `from`, `to`, `text`). Pure functions:
//! bytes in, values out, never a panic on what the network sent.

use serde_json::{json, Value};

use super::client::Request;
use super::{Event, Outgoing, PartResult};
use crate::sms::config::HttpSmsConfig;
use crate::sms::receipt::{Receipt, ReceiptStat};

/// The most messages one bulk request carries.
pub(crate) const MAX_BULK: usize = 100;

fn auth(cfg: &HttpSmsConfig) -> (String, String) {
    ("Authorization".into(), format!("App {}", cfg.api_key.0))
}

/// The send request for `batch` (one `messages[]` entry per message).
pub(crate) fn send_request(cfg: &HttpSmsConfig, batch: &[Outgoing]) -> Request {
    let messages: Vec<Value> = batch
        .iter()
        .map(|m| {
            let mut o = json!({
                // International format without `+`, as Infobip writes it.
                "destinations": [{ "to": m.to.trim_start_matches('+'), "messageId": m.id }],
                "text": m.text,
                // Read back from delivery reports: the rivr id, whatever
                // id the provider ends up using.
                "callbackData": m.id,
            });
            if !m.from.is_empty() {
                o["from"] = json!(m.from);
            }
            if !cfg.webhook_url.is_empty() {
                o["notifyUrl"] = json!(cfg.webhook_url);
                o["notifyContentType"] = json!("application/json");
            }
            o
        })
        .collect();
    Request {
        method: "POST",
        url: format!("{}/sms/2/text/advanced", cfg.base_url),
        headers: vec![auth(cfg), ("Accept".into(), "application/json".into())],
        body: Some((
            "application/json".into(),
            json!({ "messages": messages }).to_string().into_bytes(),
        )),
    }
}

/// The delivery-report pull (`GET /sms/1/reports`).
pub(crate) fn reports_request(cfg: &HttpSmsConfig) -> Request {
    Request {
        method: "GET",
        url: format!("{}/sms/1/reports?limit=100", cfg.base_url),
        headers: vec![auth(cfg), ("Accept".into(), "application/json".into())],
        body: None,
    }
}

/// `requestError.serviceException.text` (and its `messageId`) of an error
/// answer, else the body's first 200 characters.
pub(crate) fn error_text(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let e = &v["requestError"]["serviceException"];
    match (e["messageId"].as_str(), e["text"].as_str()) {
        (Some(id), Some(t)) => format!("{id}: {t}"),
        (None, Some(t)) => t.to_string(),
        _ => body.chars().take(200).collect(),
    }
}

/// A status group that means the message was taken (it may still fail
/// later, in a report).
fn taken(group: &str) -> bool {
    matches!(group, "PENDING" | "ACCEPTED" | "DELIVERED")
}

/// Reads a 2xx answer: one result per message of `batch`, matched by the
/// `messageId` rivr chose, else by position (the documented order).
/// `None` when the answer does not have that shape.
pub(crate) fn parse_send_answer(body: &str, batch: &[Outgoing]) -> Option<Vec<PartResult>> {
    let v: Value = serde_json::from_str(body).ok()?;
    let answers = v.get("messages")?.as_array()?;
    let mut out = Vec::with_capacity(batch.len());
    for (i, m) in batch.iter().enumerate() {
        let a = answers
            .iter()
            .find(|a| a["messageId"].as_str() == Some(m.id.as_str()))
            .or_else(|| answers.get(i))?;
        let group = a["status"]["groupName"].as_str().unwrap_or("");
        let id = match &a["messageId"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        // One id for the whole text: Infobip splits it and reports on it
        // once, so every part carries it.
        let r = if taken(group) && !id.is_empty() {
            Ok(id)
        } else {
            let name = a["status"]["name"].as_str().unwrap_or(group);
            let desc = a["status"]["description"].as_str().unwrap_or("");
            Err(format!("{name}: {desc}").trim_end_matches(": ").to_string())
        };
        out.push(vec![r; m.parts.len()]);
    }
    Some(out)
}

fn stat_of(group: &str) -> ReceiptStat {
    match group {
        "DELIVERED" => ReceiptStat::Delivered,
        "UNDELIVERABLE" | "REJECTED" => ReceiptStat::Failed,
        "EXPIRED" => ReceiptStat::Expired,
        "PENDING" | "ACCEPTED" => ReceiptStat::Pending,
        _ => ReceiptStat::Unknown,
    }
}

/// Delivery reports and inbound SMS in a webhook or pull body. Entries
/// without the fields they need are skipped.
pub(crate) fn parse_events(body: &[u8]) -> Vec<Event> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(results) = v.get("results").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for r in results {
        let id = match &r["messageId"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if let Some(status) = r.get("status").filter(|s| s.is_object()) {
            let group = status["groupName"].as_str().unwrap_or("");
            let err = &r["error"];
            let err_text = match (err["groupId"].as_i64(), err["name"].as_str()) {
                (Some(g), Some(n)) if g != 0 => n.to_string(),
                _ => String::new(),
            };
            out.push(Event::Receipt(Receipt {
                smsc_id: id,
                stat: stat_of(group),
                stat_text: status["name"].as_str().unwrap_or(group).to_string(),
                err: err_text,
                submit_date: r["sentAt"].as_str().unwrap_or("").to_string(),
                done_date: r["doneAt"].as_str().unwrap_or("").to_string(),
            }));
        } else if let (Some(from), Some(text)) = (r["from"].as_str(), r["text"].as_str()) {
            out.push(Event::Inbound {
                from: from.to_string(),
                to: r["to"].as_str().unwrap_or("").to_string(),
                text: text.to_string(),
                provider_id: id,
                concat: None,
            });
        }
    }
    out
}

#[cfg(test)]
#[path = "infobip_tests.rs"]
pub(crate) mod tests;
