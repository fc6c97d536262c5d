//! The HTTP SMS transport, for providers that offer only an HTTP API: a
//! templated request per message (`{to}`, `{from}`, `{text}`, `{id}`), the
//! provider's message id read from the answer. Plain `http://` with
//! HTTP/1.1 and `Connection: close`; messages go one at a time, in order.
//! 5xx and network errors are retried with backoff; other non-2xx answers
//! fail the message.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};

use super::config::HttpSmsConfig;
use super::driver::DriverCmd;
use super::Notice;
use crate::store::{Store, StoredPart};

/// How one request ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Accepted(String),
    Rejected(String),
    /// Worth trying again; the provider may have taken it.
    Retry(String),
    /// Worth trying again; the provider certainly did not take it (no
    /// connection, or 429).
    NotTaken(String),
}

pub(crate) async fn run(
    cfg: HttpSmsConfig,
    store: Store,
    unsent: Vec<StoredPart>,
    mut cmds: mpsc::UnboundedReceiver<DriverCmd>,
    notices: broadcast::Sender<Notice>,
) {
    for p in unsent {
        send_part(&cfg, &store, &notices, p).await;
    }
    while let Some(cmd) = cmds.recv().await {
        match cmd {
            DriverCmd::Submit(parts) => {
                for p in parts {
                    send_part(&cfg, &store, &notices, p).await;
                }
            }
            DriverCmd::Shutdown(tx) => {
                let _ = tx.send(());
                return;
            }
        }
    }
}

async fn send_part(
    cfg: &HttpSmsConfig,
    store: &Store,
    notices: &broadcast::Sender<Notice>,
    p: StoredPart,
) {
    let text = String::from_utf8_lossy(&p.short_message).into_owned();
    let mut delay = Duration::from_millis(500);
    let mut maybe_taken = false;
    for attempt in 1..=5 {
        // Stored before the request leaves: a later process never sends a
        // part this one may have handed over (docs/sms.md, "Nothing twice").
        if let Err(e) = store.mark_sending(&[(p.message_id.as_str(), p.part)]).await {
            tracing::error!(
                "sms http: store {} as sending: {e}; left queued",
                p.message_id
            );
            return;
        }
        let outcome = send_once(cfg, &p.destination, &p.source, &text, &p.idempotency_key).await;
        let why = match outcome {
            Outcome::Retry(why) => {
                maybe_taken = true;
                why
            }
            Outcome::NotTaken(why) => {
                // Nothing reached the provider yet: a stop now may resend.
                if !maybe_taken {
                    if let Err(e) = store.clear_sending(&p.message_id, p.part).await {
                        tracing::error!("sms http: store {}: {e}", p.message_id);
                    }
                }
                why
            }
            Outcome::Accepted(id) => {
                let res = store.mark_accepted(&p.message_id, p.part, &id).await;
                finish(res, notices, p.message_id);
                return;
            }
            Outcome::Rejected(why) => {
                let res = store.mark_rejected(&p.message_id, p.part, &why).await;
                finish(res, notices, p.message_id);
                return;
            }
        };
        tracing::warn!("sms http: attempt {attempt}: {why}");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(30));
    }
    // Left queued: the next start sends it again if no attempt can have
    // reached the provider, and ends it unknown otherwise.
}

/// Logs a failed store write of a part's answer and announces the message.
fn finish(
    res: Result<(), crate::store::StoreError>,
    notices: &broadcast::Sender<Notice>,
    message_id: String,
) {
    if let Err(e) = res {
        tracing::error!("sms http: store {message_id}: {e}");
    }
    let _ = notices.send(Notice::State(message_id));
}

pub(crate) async fn send_once(
    cfg: &HttpSmsConfig,
    to: &str,
    from: &str,
    text: &str,
    key: &str,
) -> Outcome {
    let vars = [("to", to), ("from", from), ("text", text), ("id", key)];
    let url = expand(&cfg.url, &vars, Escape::Url);
    let Some((host_port, path)) = split_url(&url) else {
        return Outcome::Rejected(format!("unsupported url {url:?} (http:// only)"));
    };
    let method = cfg.method.to_ascii_uppercase();
    let body = if method == "GET" {
        String::new()
    } else {
        let esc = if cfg.content_type.contains("json") {
            Escape::Json
        } else if cfg.content_type.contains("form") {
            Escape::Url
        } else {
            Escape::None
        };
        expand(&cfg.body, &vars, esc)
    };
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host_port}\r\nConnection: close\r\nUser-Agent: rivr\r\n"
    );
    for (k, v) in &cfg.headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" {
        req.push_str(&format!(
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            cfg.content_type,
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    let mut connected = false;
    let io = async {
        let mut s = TcpStream::connect(host_port).await?;
        connected = true;
        s.write_all(req.as_bytes()).await?;
        let mut resp = Vec::new();
        s.take(1 << 20).read_to_end(&mut resp).await?;
        Ok::<_, std::io::Error>(resp)
    };
    let result = tokio::time::timeout(Duration::from_millis(cfg.timeout_ms.max(1)), io).await;
    let resp = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) if !connected => return Outcome::NotTaken(e.to_string()),
        Ok(Err(e)) => return Outcome::Retry(e.to_string()),
        Err(_) if !connected => return Outcome::NotTaken("timed out connecting".into()),
        Err(_) => return Outcome::Retry("timed out".into()),
    };
    let Some((status, body)) = parse_response(&resp) else {
        return Outcome::Retry("unparseable HTTP response".into());
    };
    match status {
        200..=299 => match extract_id(&cfg.message_id, &body) {
            Some(id) => Outcome::Accepted(id),
            None => Outcome::Accepted(String::new()),
        },
        429 => Outcome::NotTaken(format!("HTTP {status}")),
        500..=599 => Outcome::Retry(format!("HTTP {status}")),
        _ => Outcome::Rejected(format!(
            "HTTP {status}: {}",
            body.chars().take(200).collect::<String>()
        )),
    }
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

fn url_encode(s: &str) -> String {
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

/// `http://host:port/path` → ("host:port", "/path").
fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let slash = rest.find('/').unwrap_or(rest.len());
    let host = rest.get(..slash)?;
    let path = rest.get(slash..).filter(|p| !p.is_empty()).unwrap_or("/");
    (!host.is_empty()).then_some((host, path))
}

/// Status code and body (chunked transfer decoded).
fn parse_response(resp: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(resp);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Some((status, body))
}

fn dechunk(mut s: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = s.split_once("\r\n")?;
        let n = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if n == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..n)?);
        s = rest.get(n..)?.strip_prefix("\r\n")?;
    }
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
    fn responses_and_urls_parse() {
        assert_eq!(
            split_url("http://127.0.0.1:80/a?b=1"),
            Some(("127.0.0.1:80", "/a?b=1"))
        );
        assert_eq!(split_url("http://h"), Some(("h", "/")));
        assert_eq!(split_url("https://h/"), None);
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(r), Some((200, "abcde".into())));
        assert_eq!(
            parse_response(b"HTTP/1.1 503 x\r\n\r\n"),
            Some((503, String::new()))
        );
        assert_eq!(parse_response(b"garbage"), None);
        assert_eq!(dechunk("zz\r\n"), None);
    }
}
