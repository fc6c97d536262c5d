//! The Infobip and Vonage presets of `[sms_http]` against stand-ins that
//! follow the providers' documented APIs (tests/sms_http/provider_mock.py)
//! over HTTPS with a certificate made at test time and trusted through
//! `ca_file`, driving a real `rivr serve` through its HTTP API: each send
//! request checked field by field with its auth, GSM and UCS-2 multi-part
//! texts, an Infobip bulk request, 429/5xx/throttled answers retried, 4xx
//! and refusals failing with the provider's text, delivery reports POSTed
//! to rivr's webhooks matched to every part, a wrong secret or Vonage
//! signature refused, inbound SMS stored (once when posted twice), and
//! Infobip's report pull.

mod common;
#[path = "http/client.rs"]
mod http;
#[path = "sms_http/harness.rs"]
mod sms;

use std::time::{Duration, Instant};

use http::ADMIN;
use serde_json::{json, Value};
use sms::{
    enc, form, infobip_messages, md5_sig, now_secs, part_states, scratch, send, start, wait_state,
    Mock, KEY, SECRET,
};

#[test]
fn infobip_send_bulk_retries_reports_and_inbound() {
    let dir = scratch("sms-infobip");
    let mock = Mock::start(&dir);
    let hook = "https://rivr.example.org/webhooks/sms/infobip?secret=hook-secret-1";
    let (_rivr, api) = start(
        "sms-infobip",
        format!(
            "provider = \"infobip\"\nbase_url = \"https://127.0.0.1:{}\"\napi_key = \"{KEY}\"\n\
             from = \"CLINIC\"\nca_file = {:?}\nwebhook_url = \"{hook}\"\nwebhook_secret = \"hook-secret-1\"\n",
            mock.port,
            dir.join("ca.pem").display().to_string()
        ),
    );
    // The first request is held 2.5 s; what is queued meanwhile goes in
    // one bulk request.
    let slow = send(&api, "+41793026727", "slow hello");
    std::thread::sleep(Duration::from_millis(300));
    let gsm = "A".repeat(200);
    let ucs2 = "Grüße ☺ ".repeat(10);
    let long_gsm = send(&api, "+41793026728", &gsm);
    let long_ucs2 = send(&api, "+41793026729", &ucs2);
    let reqs = mock.wait("3 messages", |r| infobip_messages(r).len() >= 3);
    for r in reqs.iter().filter(|r| r["path"] == "/sms/2/text/advanced") {
        assert_eq!(r["method"], "POST");
        assert_eq!(r["headers"]["authorization"], format!("App {KEY}"));
        assert_eq!(r["headers"]["content-type"], "application/json");
    }
    let sends: Vec<_> = reqs
        .iter()
        .filter(|r| r["path"] == "/sms/2/text/advanced")
        .collect();
    assert_eq!(
        sends.len(),
        2,
        "one request, then one bulk request: {sends:#?}"
    );
    let msgs = infobip_messages(&reqs);
    for (m, (id, to, text)) in msgs.iter().zip([
        (&slow, "41793026727", "slow hello"),
        (&long_gsm, "41793026728", gsm.as_str()),
        (&long_ucs2, "41793026729", ucs2.as_str()),
    ]) {
        assert_eq!(m["destinations"][0]["to"], to);
        assert_eq!(m["destinations"][0]["messageId"], id.as_str());
        assert_eq!(m["destinations"].as_array().unwrap().len(), 1);
        assert_eq!(m["from"], "CLINIC");
        assert_eq!(m["text"], text);
        assert_eq!(m["notifyUrl"], hook);
        assert_eq!(m["notifyContentType"], "application/json");
        assert_eq!(m["callbackData"], id.as_str());
    }
    let v = wait_state(&api, &long_gsm, "submitted");
    assert_eq!(
        part_states(&v),
        ["submitted", "submitted"],
        "200 GSM characters: 2 parts"
    );
    let v = wait_state(&api, &long_ucs2, "submitted");
    assert_eq!(
        part_states(&v),
        ["submitted", "submitted"],
        "80 UCS-2 characters: 2 parts"
    );
    wait_state(&api, &slow, "submitted");

    // Delivery reports, as Infobip pushes them to notifyUrl.
    let report = |id: &str, group: &str, name: &str, err: (i64, &str)| {
        json!({
            "bulkId": "b", "messageId": id, "to": "41793026727",
            "sentAt": "2026-12-05T04:00:00.000+0000", "doneAt": "2026-12-05T04:00:05.000+0000",
            "smsCount": 2, "price": { "pricePerMessage": 0.01, "currency": "EUR" },
            "status": { "groupId": 3, "groupName": group, "id": 5, "name": name, "description": "" },
            "error": { "groupId": err.0, "groupName": "X", "id": 1, "name": err.1, "description": "", "permanent": false },
            "callbackData": id
        })
    };
    let body = json!({ "results": [
        report(&long_gsm, "DELIVERED", "DELIVERED_TO_HANDSET", (0, "NO_ERROR")),
        report(&long_ucs2, "DELIVERED", "DELIVERED_TO_HANDSET", (0, "NO_ERROR")),
        report(&slow, "UNDELIVERABLE", "UNDELIVERABLE_NOT_DELIVERED", (1, "EC_ABSENT_SUBSCRIBER")),
    ]})
    .to_string();
    let post =
        |path: &str, body: &str| api.call(path, None, Some(("application/json", body.as_bytes())));
    let a = post("/webhooks/sms/infobip?secret=wrong", &body);
    assert_eq!(a.status, 403, "{}", a.text);
    let a = post("/webhooks/sms/infobip", &body);
    assert_eq!(a.status, 403, "no secret: {}", a.text);
    assert_eq!(
        wait_state(&api, &long_gsm, "submitted")["state"],
        "submitted"
    );
    let a = post("/webhooks/sms/infobip?secret=hook-secret-1", &body);
    assert_eq!(a.status, 200, "{}", a.text);
    let v = wait_state(&api, &long_gsm, "delivered");
    assert_eq!(part_states(&v), ["delivered", "delivered"]);
    let v = wait_state(&api, &long_ucs2, "delivered");
    assert_eq!(part_states(&v), ["delivered", "delivered"]);
    let v = wait_state(&api, &slow, "failed");
    assert!(
        v["parts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("EC_ABSENT_SUBSCRIBER"),
        "{v}"
    );

    // 429 and 503 are retried; 400 fails with Infobip's error text.
    let throttled = send(&api, "+41793026730", "throttle me");
    wait_state(&api, &throttled, "submitted");
    let boom = send(&api, "+41793026731", "boom once");
    wait_state(&api, &boom, "submitted");
    let rejected = send(&api, "+41793026732", "reject this");
    let v = wait_state(&api, &rejected, "failed");
    let err = v["parts"][0]["error"].as_str().unwrap();
    assert!(
        err.contains("HTTP 400")
            && err.contains("BAD_REQUEST: Bad request: invalid destination address"),
        "{err}"
    );
    let msgs = infobip_messages(&mock.requests());
    let tries = |t: &str| msgs.iter().filter(|m| m["text"] == t).count();
    assert_eq!(
        (
            tries("throttle me"),
            tries("boom once"),
            tries("reject this")
        ),
        (2, 2, 1)
    );

    // An inbound SMS, as Infobip forwards it.
    let inbound = json!({ "results": [{
        "messageId": "817790313235066447", "from": "385998765432", "to": "2001",
        "text": "SURVEY yes", "cleanText": "yes", "keyword": "SURVEY",
        "receivedAt": "2026-12-05T04:10:00.000+0000", "smsCount": 1,
        "price": { "pricePerMessage": 0, "currency": "EUR" }, "callbackData": null
    }], "messageCount": 1, "pendingMessageCount": 0 })
    .to_string();
    // Posted twice (a provider retrying after a timeout): stored once.
    for _ in 0..2 {
        let a = post("/webhooks/sms/infobip?secret=hook-secret-1", &inbound);
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let list = api.get("/sms/inbound", Some(ADMIN)).body;
    assert_eq!(list["count"], 1, "{list}");
    let m = &list["messages"][0];
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str(), m["text"].as_str()),
        (Some("385998765432"), Some("2001"), Some("SURVEY yes")),
        "{list}"
    );
}

#[test]
fn infobip_reports_are_pulled_without_a_webhook() {
    let dir = scratch("sms-infobip-pull");
    let mock = Mock::start(&dir);
    let (_rivr, api) = start(
        "sms-infobip-pull",
        format!(
            "provider = \"infobip\"\nbase_url = \"https://127.0.0.1:{}\"\napi_key = \"{KEY}\"\n\
             ca_file = {:?}\nreports_poll_secs = 1\n",
            mock.port,
            dir.join("ca.pem").display().to_string()
        ),
    );
    let id = send(&api, "+41793026727", "pull me");
    wait_state(&api, &id, "delivered");
    let reqs = mock.requests();
    let m = &infobip_messages(&reqs)[0];
    assert!(
        m.get("notifyUrl").is_none(),
        "no webhook_url: no notifyUrl: {m}"
    );
    let pull = reqs
        .iter()
        .find(|r| r["path"] == "/sms/1/reports")
        .expect("a pull");
    assert_eq!(pull["method"], "GET");
    assert_eq!(pull["headers"]["authorization"], format!("App {KEY}"));
}

#[test]
fn vonage_send_parts_retries_signed_receipts_and_inbound() {
    let dir = scratch("sms-vonage");
    let mock = Mock::start(&dir);
    let hook = "https://rivr.example.org/webhooks/sms/vonage";
    let (_rivr, api) = start(
        "sms-vonage",
        format!(
            "provider = \"vonage\"\nbase_url = \"https://127.0.0.1:{}\"\napi_key = \"{KEY}\"\napi_secret = \"{SECRET}\"\n\
             from = \"CLINIC\"\nca_file = {:?}\nwebhook_url = \"{hook}\"\nsignature_secret = \"sig-secret\"\n",
            mock.port,
            dir.join("ca.pem").display().to_string()
        ),
    );
    let gsm = "B".repeat(200);
    let ucs2 = "Привет мир ".repeat(8);
    let long_gsm = send(&api, "+447700900001", &gsm);
    let long_ucs2 = send(&api, "+447700900002", &ucs2);
    let reqs = mock.wait("2 sends", |r| {
        r.iter().filter(|r| r["path"] == "/sms/json").count() >= 2
    });
    let sends: Vec<_> = reqs.iter().filter(|r| r["path"] == "/sms/json").collect();
    for (r, (id, to, text, kind)) in sends.iter().zip([
        (&long_gsm, "447700900001", gsm.as_str(), "text"),
        (&long_ucs2, "447700900002", ucs2.as_str(), "unicode"),
    ]) {
        assert_eq!(r["method"], "POST");
        assert_eq!(
            r["headers"]["content-type"],
            "application/x-www-form-urlencoded"
        );
        let f = form(r["body"].as_str().unwrap());
        assert_eq!(f["api_key"], KEY);
        assert_eq!(f["api_secret"], SECRET);
        assert_eq!(f["from"], "CLINIC");
        assert_eq!(f["to"], to);
        assert_eq!(f["text"], text);
        assert_eq!(f["type"], kind);
        assert_eq!(f["callback"], hook);
        assert_eq!(f["client-ref"], id.as_str());
    }
    let v = wait_state(&api, &long_gsm, "submitted");
    assert_eq!(part_states(&v), ["submitted", "submitted"]);
    let v = wait_state(&api, &long_ucs2, "submitted");
    assert_eq!(part_states(&v), ["submitted", "submitted"]);

    // The message-ids per part, from the stand-in's answers (in order).
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(format!("0A{:014X}", ids.len() + 1));
    }
    let dlr = |mid: &str, status: &str, err: &str, secret: &str| {
        let ts = now_secs().to_string();
        let mut p = vec![
            ("msisdn", "447700900001"),
            ("to", "CLINIC"),
            ("network-code", "12345"),
            ("messageId", mid),
            ("price", "0.03330000"),
            ("status", status),
            ("scts", "2612050410"),
            ("err-code", err),
            ("api-key", KEY),
            ("message-timestamp", "2026-12-05 04:10:00"),
            ("timestamp", ts.as_str()),
            ("nonce", "a&b=c"),
        ];
        let sig = md5_sig(&p, secret);
        p.push(("sig", sig.as_str()));
        p.iter()
            .map(|(k, v)| format!("{k}={}", enc(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    // A wrong signature is refused and changes nothing.
    let a = api.get(
        &format!(
            "/webhooks/sms/vonage?{}",
            dlr(&ids[0], "delivered", "0", "not-it")
        ),
        None,
    );
    assert_eq!(a.status, 403, "{}", a.text);
    // Receipts by GET query (part 1) and by POST form (part 2).
    let a = api.get(
        &format!(
            "/webhooks/sms/vonage?{}",
            dlr(&ids[0], "delivered", "0", "sig-secret")
        ),
        None,
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let v = wait_state(&api, &long_gsm, "submitted");
    let end = Instant::now() + Duration::from_secs(10);
    while part_states(&api.get(&format!("/sms/{long_gsm}"), Some(ADMIN)).body)[0] != "delivered" {
        assert!(Instant::now() < end, "part 1 never delivered: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let form_body = dlr(&ids[1], "delivered", "0", "sig-secret");
    let a = api.call(
        "/webhooks/sms/vonage",
        None,
        Some(("application/x-www-form-urlencoded", form_body.as_bytes())),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let v = wait_state(&api, &long_gsm, "delivered");
    assert_eq!(part_states(&v), ["delivered", "delivered"]);
    // One failed part fails the UCS-2 message; the other is delivered.
    for (mid, st, err) in [(&ids[2], "delivered", "0"), (&ids[3], "failed", "6")] {
        let a = api.get(
            &format!("/webhooks/sms/vonage?{}", dlr(mid, st, err, "sig-secret")),
            None,
        );
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let v = wait_state(&api, &long_ucs2, "failed");
    assert_eq!(part_states(&v), ["delivered", "failed"]);

    // Throttled (status 1) and HTTP 500 are retried; status 4 fails.
    let throttled = send(&api, "+447700900003", "throttle me");
    wait_state(&api, &throttled, "submitted");
    let boom = send(&api, "+447700900004", "boom once");
    wait_state(&api, &boom, "submitted");
    let rejected = send(&api, "+447700900005", "reject this");
    let v = wait_state(&api, &rejected, "failed");
    assert_eq!(v["parts"][0]["error"], "status 4: Invalid Credentials");
    let texts: Vec<String> = mock
        .requests()
        .iter()
        .filter(|r| r["path"] == "/sms/json")
        .map(|r| form(r["body"].as_str().unwrap())["text"].clone())
        .collect();
    let tries = |t: &str| texts.iter().filter(|x| *x == t).count();
    assert_eq!(
        (
            tries("throttle me"),
            tries("boom once"),
            tries("reject this")
        ),
        (2, 2, 1)
    );

    // Inbound SMS, signed, as a JSON POST.
    let ts = now_secs().to_string();
    let mut p = vec![
        ("msisdn", "447700900099"),
        ("to", "447700900000"),
        ("messageId", "0B000000C1A2B3D4"),
        ("text", "STOP please"),
        ("type", "text"),
        ("keyword", "STOP"),
        ("api-key", KEY),
        ("message-timestamp", "2026-12-05 04:11:00"),
        ("timestamp", ts.as_str()),
        ("nonce", "n1"),
    ];
    let sig = md5_sig(&p, "sig-secret");
    p.push(("sig", &sig));
    let body: serde_json::Map<String, Value> =
        p.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let body = Value::Object(body).to_string();
    let a = api.call(
        "/webhooks/sms/vonage",
        None,
        Some(("application/json", body.as_bytes())),
    );
    assert_eq!(a.status, 200, "{}", a.text);
    let list = api.get("/sms/inbound", Some(ADMIN)).body;
    let m = &list["messages"][0];
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("447700900099"), Some("STOP please")),
        "{list}"
    );
}
