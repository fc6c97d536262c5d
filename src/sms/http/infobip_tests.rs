use super::*;
use crate::sms::config::{HttpSmsConfig, Provider, Secret, SignatureMethod};
use proptest::prelude::*;

pub(crate) fn cfg(provider: Provider) -> HttpSmsConfig {
    HttpSmsConfig {
        provider,
        base_url: "https://api.example".into(),
        api_key: Secret("k3y".into()),
        api_secret: Secret("s3c".into()),
        ca_file: None,
        webhook_url: "https://rivr.example/webhooks/sms/infobip?secret=x".into(),
        webhook_secret: Secret("x".into()),
        signature_secret: Secret(String::new()),
        signature_method: SignatureMethod::Md5Hash,
        reports_poll_secs: 10,
        url: String::new(),
        method: "POST".into(),
        body: String::new(),
        content_type: String::new(),
        headers: Default::default(),
        message_id: "body".into(),
        from: "CLINIC".into(),
        timeout_ms: 1000,
        prefixes: Vec::new(),
    }
}

fn out(id: &str, to: &str, text: &str, parts: u8) -> Outgoing {
    Outgoing {
        id: id.into(),
        to: to.into(),
        from: "CLINIC".into(),
        text: text.into(),
        ucs2: false,
        parts: (1..=parts).collect(),
    }
}

#[test]
fn bulk_request_has_the_documented_shape() {
    let c = cfg(Provider::Infobip);
    let r = send_request(
        &c,
        &[
            out("sms-1", "+4179", "hi \"you\"", 1),
            out("sms-2", "+4178", "yo", 2),
        ],
    );
    assert_eq!(r.method, "POST");
    assert_eq!(r.url, "https://api.example/sms/2/text/advanced");
    assert!(r
        .headers
        .contains(&("Authorization".into(), "App k3y".into())));
    let (ct, body) = r.body.unwrap();
    assert_eq!(ct, "application/json");
    let v: Value = serde_json::from_slice(&body).unwrap();
    let m = &v["messages"];
    assert_eq!(m.as_array().unwrap().len(), 2);
    assert_eq!(m[0]["destinations"][0]["to"], "4179");
    assert_eq!(m[0]["destinations"][0]["messageId"], "sms-1");
    assert_eq!(m[0]["from"], "CLINIC");
    assert_eq!(m[0]["text"], "hi \"you\"");
    assert_eq!(m[0]["notifyUrl"], c.webhook_url.as_str());
    assert_eq!(m[0]["notifyContentType"], "application/json");
    assert_eq!(m[0]["callbackData"], "sms-1");
    assert_eq!(m[1]["destinations"][0]["to"], "4178");
}

#[test]
fn answers_map_status_groups() {
    let batch = [out("sms-1", "+1", "a", 2), out("sms-2", "+2", "b", 1)];
    let body = r#"{"bulkId":"b1","messages":[
        {"to":"2","status":{"groupId":5,"groupName":"REJECTED","id":51,"name":"REJECTED_DESTINATION","description":"Bad destination"},"messageId":"sms-2"},
        {"to":"1","status":{"groupId":1,"groupName":"PENDING","id":26,"name":"PENDING_ACCEPTED","description":"Message sent to next instance"},"messageId":"sms-1"}]}"#;
    let r = parse_send_answer(body, &batch).unwrap();
    assert_eq!(r[0], vec![Ok("sms-1".to_string()), Ok("sms-1".to_string())]);
    assert_eq!(
        r[1],
        vec![Err("REJECTED_DESTINATION: Bad destination".to_string())]
    );
    assert!(parse_send_answer("{}", &batch).is_none());
    assert_eq!(
        error_text(
            r#"{"requestError":{"serviceException":{"messageId":"UNAUTHORIZED","text":"Invalid login details"}}}"#
        ),
        "UNAUTHORIZED: Invalid login details"
    );
}

#[test]
fn reports_and_inbound_parse() {
    let body = br#"{"results":[
      {"bulkId":"b","messageId":"m1","to":"41793026727","sentAt":"2019-11-09T16:00:00.000+0000","doneAt":"2019-11-09T16:00:00.000+0000","smsCount":2,
       "status":{"groupId":3,"groupName":"DELIVERED","id":5,"name":"DELIVERED_TO_HANDSET","description":"Message delivered to handset"},
       "error":{"groupId":0,"groupName":"OK","id":0,"name":"NO_ERROR","description":"No Error","permanent":false}},
      {"messageId":"m2","status":{"groupId":2,"groupName":"UNDELIVERABLE","name":"UNDELIVERABLE_NOT_DELIVERED"},
       "error":{"groupId":1,"groupName":"HANDSET_ERRORS","id":27,"name":"EC_ABSENT_SUBSCRIBER","permanent":false}},
      {"messageId":"in1","from":"385998765432","to":"385981178","text":"SURVEY yes","cleanText":"yes","keyword":"SURVEY","receivedAt":"2019-11-09T16:00:00.000+0000","smsCount":1},
      {"nothing":"here"}]}"#;
    let ev = parse_events(body);
    assert_eq!(ev.len(), 3);
    let Event::Receipt(r) = &ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (r.smsc_id.as_str(), r.stat, r.err.as_str()),
        ("m1", ReceiptStat::Delivered, "")
    );
    let Event::Receipt(r) = &ev[1] else {
        panic!("{ev:?}")
    };
    assert_eq!(
        (r.stat, r.err.as_str()),
        (ReceiptStat::Failed, "EC_ABSENT_SUBSCRIBER")
    );
    assert_eq!(
        ev[2],
        Event::Inbound {
            from: "385998765432".into(),
            to: "385981178".into(),
            text: "SURVEY yes".into(),
            provider_id: "in1".into(),
            concat: None
        }
    );
}

proptest! {
    #[test]
    fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..400), s in ".{0,200}") {
        let _ = parse_events(&body);
        let _ = parse_events(s.as_bytes());
        let _ = parse_send_answer(&s, &[out("a", "1", "x", 3)]);
        let _ = error_text(&s);
        let json = format!("{{\"results\":[{{\"messageId\":{s:?},\"status\":{s:?}}}],\"messages\":[{{\"messageId\":1,\"status\":{{\"groupName\":{s:?}}}}}]}}");
        let _ = parse_events(json.as_bytes());
        let _ = parse_send_answer(&json, &[out("a", "1", "x", 2)]);
    }
}
