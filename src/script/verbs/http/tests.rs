//! Options, bodies, URLs and the allow-list check as pure functions; the
//! request itself against a tiny server on 127.0.0.1 (timeouts, refusals,
//! size limit, the script's time budget).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, Map};

use super::*;
use crate::call::control::{CallControl, CallEnded, CallEvent};
use crate::media::prompt::Prompt;

fn map(pairs: &[(&str, Dynamic)]) -> Dynamic {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).into(), v.clone());
    }
    Dynamic::from_map(m)
}

fn opt_err(opts: Dynamic) -> String {
    parse_options(Verb::Get, Some(&opts)).expect_err("refused")
}

#[test]
fn options_are_read_and_bad_ones_say_what_is_wrong() {
    assert_eq!(parse_options(Verb::Get, None).unwrap(), Options::default());
    let o = parse_options(
        Verb::Post,
        Some(&map(&[
            ("timeout", 1500_i64.into()),
            (
                "headers",
                map(&[("X-Key", "abc".into()), ("X-N", 7_i64.into())]),
            ),
        ])),
    )
    .unwrap();
    assert_eq!(o.timeout, Some(Duration::from_millis(1500)));
    assert_eq!(
        o.headers,
        vec![("x-key".into(), "abc".into()), ("x-n".into(), "7".into())]
    );
    for (opts, want) in [
        (Dynamic::from(5000_i64), "http_get: options must be a map"),
        (
            map(&[("timeout", "5s".into())]),
            "timeout must be milliseconds",
        ),
        (
            map(&[("timeout", 0_i64.into())]),
            "timeout must be milliseconds",
        ),
        (
            map(&[("timeout", 1.5_f64.into())]),
            "timeout must be milliseconds",
        ),
        (
            map(&[("timout", 5_i64.into())]),
            "unknown option \"timout\"",
        ),
        (map(&[("headers", "x: y".into())]), "headers must be a map"),
        (
            map(&[("headers", map(&[("x-a", Dynamic::from_array(vec![]))]))]),
            "header x-a must be a string or a number, got array",
        ),
        (
            map(&[("headers", map(&[("bad name", "v".into())]))]),
            "\"bad name\" is not a header name",
        ),
        (
            map(&[("headers", map(&[("x-a", "a\r\nb".into())]))]),
            "line break",
        ),
        (
            map(&[("headers", map(&[("Host", "evil".into())]))]),
            "the Host header is rivr's to set",
        ),
    ] {
        let e = opt_err(opts);
        assert!(e.contains(want), "want {want:?}: {e}");
    }
}

#[test]
fn bodies_are_json_text_or_form() {
    let body = map(&[
        ("q1", 5_i64.into()),
        ("q2", "yes".into()),
        ("tags", Dynamic::from_array(vec![true.into(), ().into()])),
    ]);
    let (bytes, ct) = encode_body(Verb::Post, &body, None).unwrap();
    assert_eq!(ct, "application/json");
    let back: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        back,
        serde_json::json!({"q1": 5, "q2": "yes", "tags": [true, null]})
    );
    let (bytes, ct) = encode_body(Verb::Post, &"hello".into(), None).unwrap();
    assert_eq!(
        (bytes.as_slice(), ct.as_str()),
        (&b"hello"[..], "text/plain; charset=utf-8")
    );
    let (_, ct) = encode_body(Verb::Post, &"<a/>".into(), Some("application/xml")).unwrap();
    assert_eq!(ct, "application/xml");
    let form = "application/x-www-form-urlencoded";
    let (bytes, ct) = encode_body(
        Verb::Post,
        &map(&[("a", "x y&z".into()), ("b", 2_i64.into())]),
        Some(form),
    )
    .unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), "a=x+y%26z&b=2");
    assert_eq!(ct, form);
    for (body, ct, want) in [
        (
            Dynamic::from(42_i64),
            None,
            "must be a map or array (sent as JSON) or a string, got i64",
        ),
        (
            map(&[("a", map(&[]))]),
            Some(form),
            "form field a must be a plain value",
        ),
        (map(&[("x", f64::NAN.into())]), None, "JSON cannot carry"),
        (
            map(&[("f", Dynamic::from(rhai::FnPtr::new("f").unwrap()))]),
            None,
            "JSON cannot carry",
        ),
    ] {
        let e = encode_body(Verb::Post, &body, ct).expect_err(want);
        assert!(e.contains(want), "want {want:?}: {e}");
    }
    let mut deep = map(&[]);
    for _ in 0..100 {
        deep = map(&[("a", deep)]);
    }
    let e = encode_body(Verb::Post, &deep, None).unwrap_err();
    assert!(e.contains("nests deeper than 64"), "{e}");
}

fn allow(list: &[&str]) -> Vec<HostPattern> {
    list.iter()
        .map(|p| HostPattern::parse(p).unwrap())
        .collect()
}

#[test]
fn urls_are_checked_before_anything_is_sent() {
    let a = allow(&["api.example.org", "127.0.0.1:8080"]);
    assert_eq!(
        check_url(Verb::Get, "https://api.example.org/balance?x=1", &a).unwrap(),
        Target {
            shown: "api.example.org".into()
        }
    );
    assert!(check_url(Verb::Get, "http://127.0.0.1:8080/", &a).is_ok());
    for (url, want) in [
        (
            "ftp://api.example.org/",
            "http_get: \"ftp://api.example.org/\" is not an http or https URL",
        ),
        ("api.example.org/x", "is not a URL"),
        ("http://", "is not a URL"),
        (
            "http://127.0.0.1:9/",
            "http_get 127.0.0.1:9: the host is not in [script] http_allow",
        ),
        (
            "https://api.example.org:8443/",
            "api.example.org:8443: the host is not in",
        ),
        (
            "https://api.example.org@evil.com/",
            "http_get evil.com: the host is not in",
        ),
    ] {
        let e = check_url(Verb::Get, url, &a).expect_err(url);
        assert!(e.contains(want), "{url}: want {want:?}: {e}");
    }
    let e = check_url(Verb::Post, "https://api.example.org/", &[]).unwrap_err();
    assert_eq!(
        e,
        "http_post api.example.org: web requests are off ([script] http_allow is empty)"
    );
}

#[test]
fn json_replies_become_maps_and_others_stay_text() {
    let r = Reply {
        status: 200,
        body: br#"{"balance": 12.5, "n": 3, "big": 18446744073709551615, "list": [1, "a", null], "ok": true}"#.to_vec(),
        headers: vec![("content-type".into(), "application/json".into())],
        json: true,
    };
    let m = to_map(&r);
    assert_eq!(m["status"].as_int().unwrap(), 200);
    let j = m["json"].clone().cast::<Map>();
    assert_eq!(j["balance"].as_float().unwrap(), 12.5);
    assert_eq!(j["n"].as_int().unwrap(), 3);
    assert!(j["big"].as_float().unwrap() > 1e19);
    assert_eq!(j["list"].clone().into_array().unwrap().len(), 3);
    assert!(j["ok"].as_bool().unwrap());
    let headers = m["headers"].clone().cast::<Map>();
    assert_eq!(headers["content-type"].to_string(), "application/json");
    let bad = Reply {
        body: b"{not json".to_vec(),
        ..r
    };
    assert!(to_map(&bad)["json"].is_unit(), "a broken JSON body is ()");
    assert_eq!(to_map(&bad)["body"].to_string(), "{not json");
    assert!(is_json("application/json; charset=utf-8"));
    assert!(is_json("application/problem+json"));
    assert!(!is_json("text/html"));
    assert!(!is_json("text/json+x"));
}

#[test]
fn a_reply_past_rhais_value_limits_is_refused_not_fatal() {
    let mut engine = Engine::new();
    engine.set_max_string_size(1000);
    engine.set_max_array_size(10);
    let r = |body: &str| Reply {
        status: 200,
        body: body.as_bytes().to_vec(),
        headers: vec![],
        json: true,
    };
    assert!(fits(&engine, &to_map(&r(r#"["a","b"]"#))).is_ok());
    let text = format!("[\"{}\"]", "x".repeat(600));
    let e = fits(&engine, &to_map(&r(&text))).unwrap_err();
    assert!(e.contains("more than a script value may (1000)"), "{e}");
    let e = fits(&engine, &to_map(&r("[1,2,3,4,5,6,7,8,9,10,11]"))).unwrap_err();
    assert!(e.contains("more items"), "{e}");
}

/// A one-shot server: reads one request, waits `delay`, writes `reply`;
/// sends the request it read back through the channel.
fn serve(delay: Duration, reply: Vec<u8>) -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else { return };
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= len {
                    break;
                }
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&got).to_string());
        std::thread::sleep(delay);
        let _ = s.write_all(&reply);
    });
    (port, rx)
}

fn ok_json(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A call with no events, on the real clock.
struct Idle;

impl CallControl for Idle {
    fn now(&self) -> Instant {
        Instant::now()
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
    fn play(&mut self, _: u64, _: Vec<Arc<Prompt>>, _: bool) -> Result<(), CallEnded> {
        Ok(())
    }
    fn stop_play(&mut self, _: u64) {}
    fn send_digits(&mut self, _: u64, _: &str) -> Result<(), CallEnded> {
        Ok(())
    }
    fn next_event(&mut self, _: Option<Duration>) -> Option<CallEvent> {
        None
    }
    fn prompt(&self, name: &str) -> Result<Arc<Prompt>, String> {
        Err(format!("no prompt {name}"))
    }
    fn set_result(&mut self, _: &str, _: &str) {}
    fn is_answered(&self) -> bool {
        true
    }
    fn is_gone(&self) -> bool {
        false
    }
    fn send_sms(&mut self, _: &str, _: &str) -> Result<String, String> {
        Err("no sms".into())
    }
}

fn client(allow_list: &[&str], timeout_ms: u64) -> HttpClient {
    HttpClient::new(ScriptHttpConfig {
        allow: allow(allow_list),
        timeout_ms,
        max_body_bytes: 1000,
    })
}

fn get(
    c: &HttpClient,
    session: &Session,
    url: &str,
    opts: Option<Dynamic>,
) -> Result<Map, VerbError> {
    run(
        &Engine::new(),
        c,
        session,
        Verb::Get,
        &url.into(),
        None,
        opts.as_ref(),
    )
}

#[test]
fn a_request_reaches_an_allowed_server_and_its_reply_comes_back() {
    let (port, seen) = serve(Duration::ZERO, ok_json(r#"{"balance": 42}"#));
    let c = client(&[&format!("127.0.0.1:{port}")], 5000);
    let s = Session::new(Box::new(Idle));
    let m = run(
        &Engine::new(),
        &c,
        &s,
        Verb::Post,
        &format!("http://127.0.0.1:{port}/survey").into(),
        Some(&map(&[("q1", 4_i64.into())])),
        Some(&map(&[("headers", map(&[("x-api-key", "k1".into())]))])),
    )
    .unwrap();
    assert_eq!(m["status"].as_int().unwrap(), 200);
    assert_eq!(
        m["json"].clone().cast::<Map>()["balance"].as_int().unwrap(),
        42
    );
    let req = seen.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(req.starts_with("POST /survey HTTP/1.1\r\n"), "{req}");
    let lower = req.to_ascii_lowercase();
    assert!(lower.contains("\r\nx-api-key: k1\r\n"), "{req}");
    assert!(
        lower.contains("\r\ncontent-type: application/json\r\n"),
        "{req}"
    );
    assert!(req.ends_with("\r\n\r\n{\"q1\":4}"), "{req}");
}

#[test]
fn timeouts_refusals_and_big_replies_are_catchable_errors() {
    // The option shortens the configured timeout.
    let (port, _seen) = serve(Duration::from_secs(3), ok_json("{}"));
    let c = client(&[&format!("127.0.0.1:{port}")], 5000);
    let s = Session::new(Box::new(Idle));
    let t = Instant::now();
    let e = get(
        &c,
        &s,
        &format!("http://127.0.0.1:{port}/"),
        Some(map(&[("timeout", 300_i64.into())])),
    )
    .unwrap_err();
    let took = t.elapsed();
    println!("timeout option 300 ms: gave up after {took:?}");
    assert_eq!(
        e,
        VerbError::BadArgument(format!("http_get 127.0.0.1:{port}: timed out after 300 ms"))
    );
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(500),
        "{took:?}"
    );

    // The configured timeout bounds a longer option.
    let (port, _seen) = serve(Duration::from_secs(3), ok_json("{}"));
    let c = client(&[&format!("127.0.0.1:{port}")], 200);
    let t = Instant::now();
    let e = get(
        &c,
        &s,
        &format!("http://127.0.0.1:{port}/"),
        Some(map(&[("timeout", 5000_i64.into())])),
    )
    .unwrap_err();
    println!(
        "http_timeout_ms 200 over an option of 5000: gave up after {:?}",
        t.elapsed()
    );
    assert!(e.to_string().ends_with("timed out after 200 ms"), "{e}");
    assert!(
        t.elapsed() < Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );

    // A closed port: refused.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = client(&[&format!("127.0.0.1:{port}")], 2000);
    let e = get(&c, &s, &format!("http://127.0.0.1:{port}/"), None).unwrap_err();
    assert_eq!(
        e,
        VerbError::BadArgument(format!("http_get 127.0.0.1:{port}: connection refused"))
    );

    // Larger than http_max_body_bytes (1000 here).
    let (port, _seen) = serve(
        Duration::ZERO,
        ok_json(&format!("\"{}\"", "x".repeat(2000))),
    );
    let c = client(&[&format!("127.0.0.1:{port}")], 2000);
    let e = get(&c, &s, &format!("http://127.0.0.1:{port}/"), None).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("the response is larger than 1000 bytes ([script] http_max_body_bytes)"),
        "{e}"
    );
}

#[test]
fn the_scripts_time_budget_bounds_the_request_and_ends_the_script() {
    let (port, _seen) = serve(Duration::from_secs(3), ok_json("{}"));
    let c = client(&[&format!("127.0.0.1:{port}")], 5000);
    let s = Session::with_time_limit(Box::new(Idle), Duration::from_millis(250));
    let t = Instant::now();
    let e = get(&c, &s, &format!("http://127.0.0.1:{port}/"), None).unwrap_err();
    assert_eq!(
        e,
        VerbError::TimeLimit,
        "the script's deadline, not a catchable error"
    );
    let took = t.elapsed();
    println!("script budget 250 ms: the request stopped after {took:?}");
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_millis(450),
        "{took:?}"
    );
}

#[test]
fn a_redirect_is_handed_back_not_followed() {
    let (port, _seen) = serve(
        Duration::ZERO,
        b"HTTP/1.1 302 Found\r\nlocation: http://evil.example/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_vec(),
    );
    let c = client(&[&format!("127.0.0.1:{port}")], 2000);
    let s = Session::new(Box::new(Idle));
    let m = get(&c, &s, &format!("http://127.0.0.1:{port}/"), None).unwrap();
    assert_eq!(m["status"].as_int().unwrap(), 302);
    assert_eq!(
        m["headers"].clone().cast::<Map>()["location"].to_string(),
        "http://evil.example/"
    );
    assert!(m["json"].is_unit());
}

#[test]
fn a_failed_dns_lookup_says_so() {
    let lookup =
        std::io::Error::other("failed to lookup address information: Name or service not known");
    let Failure::Other(why) = failure(ureq::Error::Io(lookup)) else {
        panic!("not a plain failure");
    };
    assert_eq!(why, "host not found (DNS: Name or service not known)");
    let Failure::Other(why) = failure(ureq::Error::HostNotFound) else {
        panic!("not a plain failure");
    };
    assert_eq!(why, "host not found (DNS)");
}

#[test]
fn https_to_a_server_that_does_not_speak_tls_is_a_tls_error() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(&ok_json("{}"));
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    let c = client(&[&format!("127.0.0.1:{port}")], 3000);
    let s = Session::new(Box::new(Idle));
    let e = get(&c, &s, &format!("https://127.0.0.1:{port}/"), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(&format!("http_get 127.0.0.1:{port}: TLS: ")),
        "{e}"
    );
}
