//! The generic HTTP template: a request per message built from
//! `[sms_http]` templates (`{to}`, `{from}`, `{text}`, `{id}`), the
//! provider's id read from the answer by the `message_id` rule; plus the
//! URL and form encoding the presets share.

use super::client::Request;
use crate::sms::config::HttpSmsConfig;

/// The request the template describes for one message.
pub(crate) fn send_request(
    cfg: &HttpSmsConfig,
    to: &str,
    from: &str,
    text: &str,
    key: &str,
) -> Request {
    let vars = [("to", to), ("from", from), ("text", text), ("id", key)];
    let url = expand(&cfg.url, &vars, Escape::Url);
    let headers = cfg
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let body = (cfg.method != "GET").then(|| {
        let esc = if cfg.content_type.contains("json") {
            Escape::Json
        } else if cfg.content_type.contains("form") {
            Escape::Url
        } else {
            Escape::None
        };
        (
            cfg.content_type.clone(),
            expand(&cfg.body, &vars, esc).into_bytes(),
        )
    });
    Request {
        method: if body.is_some() { "POST" } else { "GET" },
        url,
        headers,
        body,
    }
}

/// The id in a 2xx answer, by the `message_id` rule (empty when absent).
pub(crate) fn accepted_id(cfg: &HttpSmsConfig, body: &str) -> String {
    extract_id(&cfg.message_id, body).unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Escape {
    Url,
    Json,
    None,
}

fn expand(template: &str, vars: &[(&str, &str)], esc: Escape) -> String {
    let mut out = template.to_string();
    for (k, v) in vars {
        let val = match esc {
            Escape::Url => url_encode(v),
            Escape::Json => json_escape(v),
            Escape::None => (*v).to_string(),
        };
        out = out.replace(&format!("{{{k}}}"), &val);
    }
    out
}

pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// `a=1&b=x%20y` → pairs, `+` read as a space (HTML forms).
pub(crate) fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|h| char::from(*h).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds the provider's message id in a response body (see `message_id`).
pub(crate) fn extract_id(rule: &str, body: &str) -> Option<String> {
    let stop =
        |c: char| c == '"' || c == '\'' || c == ',' || c == '&' || c == '}' || c.is_whitespace();
    if let Some(key) = rule.strip_prefix("json:") {
        let pat = format!("\"{key}\"");
        let at = body.find(&pat)?;
        let rest = body
            .get(at + pat.len()..)?
            .trim_start()
            .strip_prefix(':')?
            .trim_start();
        let v = match rest.strip_prefix('"') {
            Some(q) => q.split('"').next()?,
            None => rest.split(stop).next()?,
        };
        return (!v.is_empty()).then(|| v.to_string());
    }
    if let Some(marker) = rule.strip_prefix("after:") {
        let at = body.find(marker)?;
        let v = body.get(at + marker.len()..)?.split(stop).next()?;
        return (!v.is_empty()).then(|| v.to_string());
    }
    let v = body.trim();
    (!v.is_empty()).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_escaped_for_their_place() {
        let vars = [("to", "+1555"), ("text", "a b&\"c\"")];
        assert_eq!(
            expand("http://x/s?to={to}&t={text}", &vars, Escape::Url),
            "http://x/s?to=%2B1555&t=a%20b%26%22c%22"
        );
        assert_eq!(
            expand("{\"t\":\"{text}\"}", &vars, Escape::Json),
            "{\"t\":\"a b&\\\"c\\\"\"}"
        );
    }

    #[test]
    fn ids_are_found_by_rule() {
        assert_eq!(
            extract_id(
                "json:message_id",
                "{\"ok\":true, \"message_id\": \"ab-12\"}"
            )
            .as_deref(),
            Some("ab-12")
        );
        assert_eq!(
            extract_id("json:id", "{\"id\":4711}").as_deref(),
            Some("4711")
        );
        assert_eq!(
            extract_id("after:ID: ", "OK ID: 99x\n").as_deref(),
            Some("99x")
        );
        assert_eq!(extract_id("body", " 123 \n").as_deref(), Some("123"));
        assert_eq!(extract_id("json:nope", "{}"), None);
    }

    #[test]
    fn forms_decode() {
        assert_eq!(
            parse_form("a=1&b=x%20y+z&c&=&d=%zz%4"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y z".into()),
                ("c".into(), String::new()),
                (String::new(), String::new()),
                ("d".into(), "%zz%4".into()),
            ]
        );
    }
}
