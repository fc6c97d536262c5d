//! A small HTTP client for the API tests: GET and POST with a bearer
//! token through ureq (a real HTTP/1.1 client), answers as status, JSON
//! body, text and headers, and the query-string encoding the campaign
//! routes take. Each test binary uses part of it (hence `dead_code`).

#![allow(dead_code)]

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

pub const ADMIN: &str = "admin-token-0123456789abcdef";
pub const READ: &str = "read-token-0123456789abcdef";

pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: HashMap<String, String>,
}

pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    pub fn new(addr: std::net::SocketAddr) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        Client {
            base: format!("http://{addr}"),
            agent,
        }
    }

    /// GET, or POST with `body` as `content_type`.
    pub fn call(&self, path: &str, token: Option<&str>, post: Option<(&str, &[u8])>) -> Answer {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = match post {
            None => {
                let mut r = self.agent.get(&url);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.call()
            }
            Some((ct, body)) => {
                let mut r = self.agent.post(&url).content_type(ct);
                if let Some(a) = &auth {
                    r = r.header("Authorization", a);
                }
                r.send(body)
            }
        };
        answer(path, result)
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(path, token, None)
    }

    /// POST with a JSON body.
    pub fn post_json(&self, path: &str, token: Option<&str>, body: &str) -> Answer {
        self.call(path, token, Some(("application/json", body.as_bytes())))
    }

    pub fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        let url = format!("{}{path}", self.base);
        let mut r = self.agent.delete(&url);
        if let Some(t) = token {
            r = r.header("Authorization", &format!("Bearer {t}"));
        }
        answer(path, r.call())
    }

    pub fn post(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(path, token, Some(("application/json", b"")))
    }

    pub fn create(&self, query: &[(&str, &str)], csv: &[u8]) -> Answer {
        self.call(
            &format!("/campaigns?{}", encode(query)),
            Some(ADMIN),
            Some(("text/csv", csv)),
        )
    }
}

/// The answer to a request, or a panic naming the path when none came.
fn answer(path: &str, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut resp = result.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
    Answer {
        status,
        body,
        text,
        headers,
    }
}

/// A query string, every byte but the unreserved ones percent-encoded.
pub fn encode(query: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    query
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn assert_error(a: &Answer, status: u16, field: Option<&str>, says: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text);
    let msg = a.body["error"].as_str().unwrap_or_default();
    assert!(msg.contains(says), "{what}: {msg:?} should say {says:?}");
    if let Some(f) = field {
        assert_eq!(a.body["field"], f, "{what}: {}", a.text);
    }
}
