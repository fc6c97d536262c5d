//! `http_get`/`http_post`: web requests from a call flow. The request runs
//! on the script's own thread (a blocking client), so it holds up only its
//! own call; its time is bounded by `[script] http_timeout_ms` and by what
//! is left of the script's budget, its response by `http_max_body_bytes`.
//! Only hosts in `[script] http_allow` are reached, checked before any
//! connection; redirects are not followed (a 3xx comes back to the script
//! with its `location` header), so no request leaves the list.
//!
//! Failures (refused, DNS, timeout, a host not allowed, a response too
//! large) are script errors a flow can catch with `try`/`catch`; the
//! message names the verb, the host and the reason.

use std::time::Duration;

use rhai::{Dynamic, Engine, ImmutableString, Map};

use crate::config::{HostPattern, ScriptHttpConfig};
use crate::script::verbs::{Session, VerbError};

mod values;
pub use values::encode_body;
use values::{fits, is_json, to_map, Reply};

/// Most headers a request may add.
const MAX_HEADERS: usize = 32;
/// The longest URL a request may name.
const MAX_URL: usize = 8192;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
}

impl Verb {
    fn name(self) -> &'static str {
        match self {
            Verb::Get => "http_get",
            Verb::Post => "http_post",
        }
    }
}

/// The server's client and its settings, shared by every call.
pub struct HttpClient {
    agent: ureq::Agent,
    config: ScriptHttpConfig,
}

impl HttpClient {
    pub fn new(config: ScriptHttpConfig) -> Self {
        let agent = ureq::Agent::config_builder()
            // The script reads the status itself.
            .http_status_as_error(false)
            // A redirect would lead to a host the list may not name.
            .max_redirects(0)
            .proxy(None)
            // No pool: a connection is opened and closed inside its request,
            // so none outlives it on another call's thread.
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .user_agent(concat!("rivr/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        HttpClient { agent, config }
    }
}

/// A request's options: `#{ timeout, headers }`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub timeout: Option<Duration>,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
}

/// Reads `#{ timeout, headers }`; any other key or type is an error.
pub fn parse_options(verb: Verb, opts: Option<&Dynamic>) -> Result<Options, String> {
    let v = verb.name();
    let Some(opts) = opts else {
        return Ok(Options::default());
    };
    let Some(m) = opts.clone().try_cast::<Map>() else {
        return Err(format!(
            "{v}: options must be a map like #{{ timeout: 5000 }}, got {}",
            opts.type_name()
        ));
    };
    let mut o = Options::default();
    for (k, val) in &m {
        match k.as_str() {
            "timeout" => {
                let ms = val
                    .as_int()
                    .ok()
                    .filter(|n| (1..=3_600_000).contains(n))
                    .ok_or_else(|| {
                        format!("{v}: timeout must be milliseconds (1 to 3600000), got {val}")
                    })?;
                o.timeout = Some(Duration::from_millis(ms as u64));
            }
            "headers" => {
                let Some(h) = val.clone().try_cast::<Map>() else {
                    return Err(format!(
                        "{v}: headers must be a map of names to strings, got {}",
                        val.type_name()
                    ));
                };
                if h.len() > MAX_HEADERS {
                    return Err(format!("{v}: more than {MAX_HEADERS} headers"));
                }
                for (name, value) in h {
                    o.headers.push(header(v, name.as_str(), &value)?);
                }
            }
            other => return Err(format!("{v}: unknown option {other:?} (timeout, headers)")),
        }
    }
    Ok(o)
}

fn header(v: &str, name: &str, value: &Dynamic) -> Result<(String, String), String> {
    let lower = name.to_ascii_lowercase();
    if ureq::http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
        return Err(format!("{v}: {name:?} is not a header name"));
    }
    if ["host", "content-length", "transfer-encoding", "connection"].contains(&lower.as_str()) {
        return Err(format!("{v}: the {name} header is rivr's to set"));
    }
    let text = if value.is_string() || value.is_int() {
        value.to_string()
    } else {
        return Err(format!(
            "{v}: header {name} must be a string or a number, got {}",
            value.type_name()
        ));
    };
    if ureq::http::HeaderValue::from_str(&text).is_err() {
        return Err(format!(
            "{v}: header {name}: the value has a control character or a line break"
        ));
    }
    Ok((lower, text))
}

/// Where a URL points, once checked against the allow-list.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// `host` or `host:port` as the URL wrote it, for messages.
    pub shown: String,
}

/// Refuses a URL that is not http(s), has no host, or names a host the
/// list does not allow; nothing is sent before this passes.
pub fn check_url(verb: Verb, url: &str, allow: &[HostPattern]) -> Result<Target, String> {
    let v = verb.name();
    if url.len() > MAX_URL {
        return Err(format!("{v}: the URL is longer than {MAX_URL} bytes"));
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| format!("{v}: {url:?} is not a URL"))?;
    let default_port = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(format!("{v}: {url:?} is not an http or https URL")),
    };
    let Some(auth) = uri.authority() else {
        return Err(format!("{v}: {url:?} names no host"));
    };
    let host = auth.host();
    let port = auth.port_u16().unwrap_or(default_port);
    let shown = match auth.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    if allow.is_empty() {
        return Err(format!(
            "{v} {shown}: web requests are off ([script] http_allow is empty)"
        ));
    }
    if !allow.iter().any(|p| p.allows(host, port, default_port)) {
        return Err(format!(
            "{v} {shown}: the host is not in [script] http_allow"
        ));
    }
    Ok(Target { shown })
}

/// Runs one verb for the script on this thread: checks, sends, and returns
/// `#{ status, body, json, headers }`.
pub fn run(
    engine: &Engine,
    client: &HttpClient,
    session: &Session,
    verb: Verb,
    url: &Dynamic,
    body: Option<&Dynamic>,
    opts: Option<&Dynamic>,
) -> Result<Map, VerbError> {
    let bad = VerbError::BadArgument;
    let v = verb.name();
    let Some(url) = url.clone().try_cast::<ImmutableString>() else {
        return Err(bad(format!(
            "{v}: the URL must be a string, got {}",
            url.type_name()
        )));
    };
    let opts = parse_options(verb, opts).map_err(bad)?;
    let target = check_url(verb, &url, &client.config.allow).map_err(bad)?;
    let content_type = opts
        .headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    let payload = match body {
        Some(b) => Some(encode_body(verb, b, content_type).map_err(bad)?),
        None => None,
    };
    let limit =
        Duration::from_millis(client.config.timeout_ms).min(opts.timeout.unwrap_or(Duration::MAX));
    let left = session.time_left();
    let (timeout, by_budget) = match left {
        Some(l) if l < limit => (l, true),
        _ => (limit, false),
    };
    let started = std::time::Instant::now();
    // The client's own allocations are the server's, not the script's: the
    // raw reply is made and dropped uncharged; the script pays for the
    // values it is handed.
    let reply = crate::script::memory::uncharged(|| {
        send(client, verb, &url, &opts.headers, payload, timeout)
    });
    let reply = match reply {
        Ok(r) => r,
        Err(Failure::Timeout) if by_budget => return Err(VerbError::TimeLimit),
        Err(Failure::Timeout) => {
            return Err(bad(format!(
                "{v} {}: timed out after {} ms",
                target.shown,
                timeout.as_millis()
            )))
        }
        Err(Failure::Other(why)) => return Err(bad(format!("{v} {}: {why}", target.shown))),
        // Over https, bytes that do not parse are the TLS layer's (a
        // certificate refused, a server that does not speak TLS).
        Err(Failure::BadData(why))
            if url
                .get(..8)
                .is_some_and(|s| s.eq_ignore_ascii_case("https://")) =>
        {
            return Err(bad(format!("{v} {}: TLS: {why}", target.shown)))
        }
        Err(Failure::BadData(why)) => return Err(bad(format!("{v} {}: {why}", target.shown))),
        Err(Failure::TooLarge) => {
            return Err(bad(format!(
                "{v} {}: the response is larger than {} bytes ([script] http_max_body_bytes)",
                target.shown, client.config.max_body_bytes
            )))
        }
    };
    tracing::debug!(
        verb = v,
        host = %target.shown,
        status = reply.status,
        bytes = reply.body.len(),
        ms = started.elapsed().as_millis() as u64,
        "web request"
    );
    let map = to_map(&reply);
    crate::script::memory::uncharged(|| drop(reply));
    fits(engine, &map).map_err(|why| bad(format!("{v} {}: {why}", target.shown)))?;
    Ok(map)
}

enum Failure {
    Timeout,
    TooLarge,
    /// The connection carried what the client could not read.
    BadData(String),
    Other(String),
}

fn send(
    client: &HttpClient,
    verb: Verb,
    url: &str,
    headers: &[(String, String)],
    payload: Option<(Vec<u8>, String)>,
    timeout: Duration,
) -> Result<Reply, Failure> {
    let result = match verb {
        Verb::Get => {
            let mut rb = client
                .agent
                .get(url)
                .config()
                .timeout_global(Some(timeout))
                .build();
            for (k, v) in headers {
                rb = rb.header(k, v);
            }
            rb.call()
        }
        Verb::Post => {
            let (bytes, ct) = payload.unwrap_or_default();
            let mut rb = client
                .agent
                .post(url)
                .config()
                .timeout_global(Some(timeout))
                .build();
            for (k, v) in headers.iter().filter(|(k, _)| k != "content-type") {
                rb = rb.header(k, v);
            }
            rb.header("content-type", ct).send(bytes)
        }
    };
    let mut resp = result.map_err(failure)?;
    let json = resp
        .headers()
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .is_some_and(is_json);
    let mut headers: Vec<(String, String)> = Vec::new();
    for (k, val) in resp.headers() {
        if !headers.iter().any(|(n, _)| n == k.as_str()) {
            headers.push((
                k.as_str().to_string(),
                String::from_utf8_lossy(val.as_bytes()).into_owned(),
            ));
        }
    }
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(client.config.max_body_bytes)
        .read_to_vec()
        .map_err(failure)?;
    Ok(Reply {
        status,
        body,
        headers,
        json,
    })
}

fn failure(e: ureq::Error) -> Failure {
    use std::io::ErrorKind;
    match e {
        ureq::Error::Timeout(_) => Failure::Timeout,
        ureq::Error::BodyExceedsLimit(_) => Failure::TooLarge,
        ureq::Error::HostNotFound => Failure::Other("host not found (DNS)".into()),
        ureq::Error::Io(io) => match io.kind() {
            ErrorKind::TimedOut => Failure::Timeout,
            ErrorKind::ConnectionRefused => Failure::Other("connection refused".into()),
            ErrorKind::ConnectionReset => Failure::Other("connection reset".into()),
            ErrorKind::InvalidData => Failure::BadData(io.to_string()),
            // The resolver runs on its own thread when there is a timeout,
            // and its failure comes back as std's lookup error.
            _ => match io
                .to_string()
                .strip_prefix("failed to lookup address information: ")
            {
                Some(why) => Failure::Other(format!("host not found (DNS: {why})")),
                None => Failure::Other(io.to_string()),
            },
        },
        ureq::Error::ConnectionFailed => Failure::Other("connection failed".into()),
        ureq::Error::Rustls(t) => Failure::Other(format!("TLS: {t}")),
        ureq::Error::Tls(t) => Failure::Other(format!("TLS: {t}")),
        other => Failure::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests;
