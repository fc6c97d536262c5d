//! Rhai values to and from the wire for `http_get`/`http_post`: the body
//! sent (JSON, text or form fields) and the reply handed to the script
//! (`#{ status, body, json, headers }`), checked against Rhai's limits on
//! one value before the script gets it.

use rhai::{Array, Dynamic, Engine, ImmutableString, Map};

use super::Verb;

/// Deepest nesting of a map or array sent as JSON (a script's value can
/// nest far deeper than the script thread's stack allows to walk).
const MAX_JSON_DEPTH: usize = 64;

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

/// What came back, before it becomes the script's map.
pub(super) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub json: bool,
}

/// `application/json`, or any `…+json` type.
pub(super) fn is_json(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

pub(super) fn to_map(r: &Reply) -> Map {
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
pub(super) fn fits(engine: &Engine, m: &Map) -> Result<(), String> {
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
