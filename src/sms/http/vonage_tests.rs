use super::*;
use crate::sms::config::Provider;
use crate::sms::http::infobip::tests::cfg;
use proptest::prelude::*;

fn out(text: &str, ucs2: bool, parts: u8) -> Outgoing {
    Outgoing {
        id: "sms-9".into(),
        to: "+447700900000".into(),
        from: "CLINIC".into(),
        text: text.into(),
        ucs2,
        parts: (1..=parts).collect(),
    }
}

#[test]
fn send_request_has_the_documented_fields() {
    let c = cfg(Provider::Vonage);
    let r = send_request(&c, &out("Grüße & ☺", true, 1));
    assert_eq!(r.url, "https://api.example/sms/json");
    let (ct, body) = r.body.unwrap();
    assert_eq!(ct, "application/x-www-form-urlencoded");
    let f: BTreeMap<String, String> =
        crate::sms::http::template::parse_form(&String::from_utf8(body).unwrap())
            .into_iter()
            .collect();
    assert_eq!(f["api_key"], "k3y");
    assert_eq!(f["api_secret"], "s3c");
    assert_eq!(f["to"], "447700900000");
    assert_eq!(f["from"], "CLINIC");
    assert_eq!(f["text"], "Grüße & ☺");
    assert_eq!(f["type"], "unicode");
    assert_eq!(f["client-ref"], "sms-9");
    assert_eq!(f["callback"], c.webhook_url);
    let r = send_request(&c, &out("plain", false, 1));
    assert!(String::from_utf8(r.body.unwrap().1)
        .unwrap()
        .contains("type=text"));
}

#[test]
fn answers_and_error_codes() {
    let ok = r#"{"message-count":"2","messages":[
        {"to":"447700900000","message-id":"0A0000000123ABCD1","status":"0","remaining-balance":"3.14","message-price":"0.03","network":"12345"},
        {"to":"447700900000","message-id":"0A0000000123ABCD2","status":"0"}]}"#;
    assert_eq!(
        parse_send_answer(ok, 2),
        Some(Answer::Each(vec![vec![
            Ok("0A0000000123ABCD1".into()),
            Ok("0A0000000123ABCD2".into())
        ]]))
    );
    let throttled = r#"{"message-count":"1","messages":[{"status":"1","error-text":"Throughput Rate Exceeded"}]}"#;
    assert_eq!(
        parse_send_answer(throttled, 1),
        Some(Answer::NotTaken(
            "status 1: Throughput Rate Exceeded".into()
        ))
    );
    let internal = r#"{"messages":[{"status":"5","error-text":"Internal Error"}]}"#;
    assert!(matches!(
        parse_send_answer(internal, 1),
        Some(Answer::Retry(_))
    ));
    let bad = r#"{"messages":[{"status":"3","error-text":"Invalid from param"}]}"#;
    assert_eq!(
        parse_send_answer(bad, 2),
        Some(Answer::Each(vec![vec![
            Err("status 3: Invalid from param".into()),
            Err("status 3: Invalid from param".into())
        ]]))
    );
    for (code, want) in [
        (1, Code::NotTaken),
        (10, Code::NotTaken),
        (5, Code::Retry),
        (2, Code::Fail),
        (4, Code::Fail),
        (9, Code::Fail),
        (29, Code::Fail),
    ] {
        assert_eq!(classify(code), want, "{code}");
    }
    assert!(parse_send_answer("<html>", 1).is_none());
}

fn signed(method: SignatureMethod, now: i64) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = [
        ("messageId", "0A0000000123ABCD1"),
        ("msisdn", "447700900001"),
        ("to", "CLINIC"),
        ("status", "delivered"),
        ("err-code", "0"),
        ("scts", "2001011400"),
        ("message-timestamp", "2020-01-01 12:00:00"),
        ("nonce", "a=b&c"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    p.insert("timestamp".into(), now.to_string());
    let sig = signature(&p, "sigsecret", method);
    p.insert("sig".into(), sig);
    p
}

#[test]
fn signatures_are_checked() {
    // md5hash by hand: "&k=v" sorted, `&`/`=` in values as `_`, secret appended.
    let mut p = BTreeMap::new();
    p.insert("b".to_string(), "x=y".to_string());
    p.insert("a".to_string(), "1".to_string());
    let want = format!("{:x}", Md5::digest(b"&a=1&b=x_ysecret"));
    assert_eq!(signature(&p, "secret", SignatureMethod::Md5Hash), want);
    for m in [
        SignatureMethod::Md5Hash,
        SignatureMethod::Md5Hmac,
        SignatureMethod::Sha1Hmac,
        SignatureMethod::Sha256Hmac,
        SignatureMethod::Sha512Hmac,
    ] {
        let p = signed(m, 1_000_000);
        assert_eq!(
            check_signature(&p, "sigsecret", m, 1_000_010),
            Ok(()),
            "{m:?}"
        );
        assert!(check_signature(&p, "other", m, 1_000_010).is_err(), "{m:?}");
        let mut tampered = p.clone();
        tampered.insert("status".into(), "failed".into());
        assert!(check_signature(&tampered, "sigsecret", m, 1_000_010).is_err());
        let e = check_signature(&p, "sigsecret", m, 1_000_000 + 301).unwrap_err();
        assert!(e.contains("timestamp"), "{e}");
    }
    let mut p = signed(SignatureMethod::Md5Hash, 5);
    p.remove("sig");
    assert!(check_signature(&p, "sigsecret", SignatureMethod::Md5Hash, 5).is_err());
}

#[test]
fn receipts_and_inbound_parse() {
    let p = signed(SignatureMethod::Md5Hash, 1);
    let Some(Event::Receipt(r)) = parse_event(&p) else {
        panic!()
    };
    assert_eq!(
        (r.smsc_id.as_str(), r.stat, r.err.as_str()),
        ("0A0000000123ABCD1", ReceiptStat::Delivered, "")
    );
    let q = params(
        Some("msisdn=447700900001&to=447700900000&messageId=0B00&text=STOP+now&type=text&concat=true&concat-ref=300&concat-total=2&concat-part=1"),
        "",
        b"",
    );
    assert_eq!(
        parse_event(&q),
        Some(Event::Inbound {
            from: "447700900001".into(),
            to: "447700900000".into(),
            text: "STOP now".into(),
            provider_id: "0B00".into(),
            concat: Some(Concat {
                reference: 300,
                total: 2,
                seq: 1
            })
        })
    );
    let j = params(
        None,
        "application/json",
        br#"{"msisdn":"1","to":"2","messageId":"x","status":"expired","err-code":"5"}"#,
    );
    let Some(Event::Receipt(r)) = parse_event(&j) else {
        panic!()
    };
    assert_eq!((r.stat, r.err.as_str()), (ReceiptStat::Expired, "5"));
    assert_eq!(parse_event(&params(Some("foo=bar"), "", b"")), None);
}

proptest! {
    #[test]
    fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), s in ".{0,120}", ct in "(application/json|application/x-www-form-urlencoded|)") {
        let p = params(Some(&s), &ct, &body);
        let _ = parse_event(&p);
        let _ = check_signature(&p, "k", SignatureMethod::Sha256Hmac, 0);
        let _ = parse_send_answer(&s, 2);
        let _ = error_text(&s);
        let json = format!("{{\"messages\":[{{\"status\":{s:?},\"message-id\":{s:?}}}]}}");
        let _ = parse_send_answer(&json, 3);
        let form = format!("messageId=1&text=t&concat=true&concat-ref={s}&concat-total={s}&concat-part=1");
        let _ = parse_event(&params(Some(&form), "", b""));
    }
}
