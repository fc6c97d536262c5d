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

use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use crate::config::{HostPattern, ScriptHttpConfig};
use crate::script::verbs::{Session, VerbError};

/// Deepest nesting of a map or array sent as JSON (a script's value can
/// nest far deeper than the script thread's stack allows to walk).
const MAX_JSON_DEPTH: usize = 64;
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

/// The body to send and its content type: a map or array as JSON; a
/// string as it is (`text/plain` unless a `content-type` header is given);
/// a map as form fields when that header is
/// `application/x-www-form-urlencoded`.
pub fn encode_body(
    verb: Verb,
    body: &Dynamic,
    content_type: Option<&str>,
) -> Result<(Vec<u8>, String), String> {
    let v = verb.name();
    let form = content_type.is_some_and(|c| {
        c.split(';').next().is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if body.is_string() {
        let ct = content_type.unwrap_or("text/plain; charset=utf-8");
        return Ok((body.to_string().into_bytes(), ct.to_string()));
    }
    if form {
        let Some(m) = body.clone().try_cast::<Map>() else {
            return Err(format!(
                "{v}: a form body must be a map or a string, got {}",
                body.type_name()
            ));
        };
        let mut out = String::new();
        for (k, val) in &m {
            if val.is_map() || val.is_array() {
                return Err(format!("{v}: form field {k} must be a plain value"));
            }
            if !out.is_empty() {
                out.push('&');
            }
            form_encode(&mut out, k.as_str());
            out.push('=');
            form_encode(&mut out, &val.to_string());
        }
        return Ok((out.into_bytes(), content_type.unwrap_or_default().into()));
    }
    if !(body.is_map() || body.is_array()) {
        return Err(format!(
            "{v}: the body must be a map or array (sent as JSON) or a string, got {}",
            body.type_name()
        ));
    }
    let json = to_json(body, 0).map_err(|why| format!("{v}: the body {why}"))?;
    let bytes = serde_json::to_vec(&json).map_err(|e| format!("{v}: the body: {e}"))?;
    Ok((
        bytes,
        content_type.unwrap_or("application/json").to_string(),
    ))
}

/// `application/x-www-form-urlencoded`: letters, digits and `*-._` as they
/// are, space as `+`, every other byte as `%XX`.
fn form_encode(out: &mut String, s: &str) {
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

fn to_json(v: &Dynamic, depth: usize) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    if depth > MAX_JSON_DEPTH {
        return Err(format!("nests deeper than {MAX_JSON_DEPTH} levels"));
    }
    let v = v.flatten_clone();
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(n) = v.as_int() {
        return Ok(Value::from(n));
    }
    if let Ok(f) = v.as_float() {
        return serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| format!("holds {f}, which JSON cannot carry"));
    }
    if v.is_string() || v.is_char() {
        return Ok(Value::String(v.to_string()));
    }
    if let Some(a) = v.clone().try_cast::<Array>() {
        return a
            .iter()
            .map(|x| to_json(x, depth + 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(m) = v.clone().try_cast::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, x) in &m {
            out.insert(k.to_string(), to_json(x, depth + 1)?);
        }
        return Ok(Value::Object(out));
    }
    Err(format!(
        "holds a {}, which JSON cannot carry",
        v.type_name()
    ))
}

fn from_json(v: serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => b.into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().map(Dynamic::from).unwrap_or(Dynamic::UNIT),
        },
        Value::String(s) => s.into(),
        Value::Array(a) => Dynamic::from_array(a.into_iter().map(from_json).collect()),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, x) in o {
                m.insert(k.as_str().into(), from_json(x));
            }
            Dynamic::from_map(m)
        }
    }
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

/// What came back, before it becomes the script's map.
struct Reply {
    status: u16,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    json: bool,
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

/// `application/json`, or any `…+json` type.
fn is_json(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
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
            _ => Failure::Other(io.to_string()),
        },
        ureq::Error::ConnectionFailed => Failure::Other("connection failed".into()),
        ureq::Error::Rustls(t) => Failure::Other(format!("TLS: {t}")),
        ureq::Error::Tls(t) => Failure::Other(format!("TLS: {t}")),
        other => Failure::Other(other.to_string()),
    }
}

fn to_map(r: &Reply) -> Map {
    let mut m = Map::new();
    m.insert("status".into(), i64::from(r.status).into());
    let text = String::from_utf8_lossy(&r.body);
    let json = if r.json {
        serde_json::from_str::<serde_json::Value>(&text)
            .map(from_json)
            .unwrap_or(Dynamic::UNIT)
    } else {
        Dynamic::UNIT
    };
    m.insert("body".into(), text.into_owned().into());
    m.insert("json".into(), json);
    let mut h = Map::new();
    for (k, v) in &r.headers {
        h.insert(k.as_str().into(), v.clone().into());
    }
    m.insert("headers".into(), h.into());
    m
}

/// Whether the reply fits Rhai's limits on one value (all its strings
/// together, items in its arrays and maps): past them Rhai would stop the
/// script with an error no `catch` takes, so the verb fails first.
fn fits(engine: &Engine, m: &Map) -> Result<(), String> {
    let (arrays, maps, strings) = sizes_map(m);
    let over = |n: usize, max: usize| max > 0 && n > max;
    if over(strings, engine.max_string_size()) {
        return Err(format!(
            "the reply holds {strings} bytes of text (body and parsed JSON), more than a script value may ({})",
            engine.max_string_size()
        ));
    }
    if over(arrays, engine.max_array_size()) || over(maps, engine.max_map_size()) {
        return Err("the reply's JSON has more items than a script value may hold".into());
    }
    Ok(())
}

fn sizes(v: &Dynamic) -> (usize, usize, usize) {
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return (0, 0, s.len());
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a.iter().fold((0, 0, 0), |(a0, m0, s0), x| {
            let (a1, m1, s1) = sizes(x);
            (a0 + 1 + a1, m0 + m1, s0 + s1)
        });
    }
    if let Some(m) = v.read_lock::<Map>() {
        return sizes_map(&m);
    }
    (0, 0, 0)
}

fn sizes_map(m: &Map) -> (usize, usize, usize) {
    m.values().fold((0, 0, 0), |(a0, m0, s0), x| {
        let (a1, m1, s1) = sizes(x);
        (a0 + a1, m0 + 1 + m1, s0 + s1)
    })
}

#[cfg(test)]
mod tests;
