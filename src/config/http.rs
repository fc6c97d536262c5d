//! `[http]`: where the admin API, `/metrics` and the dashboard listen, and
//! the bearer tokens that may use them (`[[http.token]]`, docs/api.md).

use std::net::SocketAddr;

use serde::Deserialize;
use toml::Spanned;

use super::trunk::Err;
use super::ConfigError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every route, writes included.
    Admin,
    /// `GET` routes, `/metrics` and the dashboard.
    Read,
}

/// One `[[http.token]]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub token: String,
    pub role: Role,
}

// Tokens are secrets: a config printed for debugging must not show them.
impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("token", &"…")
            .field("role", &self.role)
            .finish()
    }
}

/// `[http]`. The API is off unless the table is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub tokens: Vec<Token>,
    /// The largest request body accepted (a campaign's CSV upload).
    pub max_body_bytes: usize,
}

/// A shorter token is too easy to guess over the network.
const MIN_TOKEN_LEN: usize = 16;
const DEFAULT_MAX_BODY: usize = 16 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    listen: Option<Spanned<String>>,
    token: Option<Vec<RawToken>>,
    max_body_bytes: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    token: Spanned<String>,
    role: Option<Spanned<String>>,
}

pub(super) fn parse_http(raw: Spanned<RawHttp>, err: Err<'_>) -> Result<HttpConfig, ConfigError> {
    let table = raw.span();
    let raw = raw.into_inner();
    let listen = match &raw.listen {
        Some(l) => l.get_ref().parse().map_err(|_| {
            err(
                Some(l.span()),
                format!("http.listen: {:?} is not an address:port", l.get_ref()),
            )
        })?,
        None => {
            return Err(err(
                Some(table),
                "http: `listen` is missing (e.g. listen = \"127.0.0.1:8080\")".into(),
            ))
        }
    };
    let mut tokens: Vec<Token> = Vec::new();
    for t in raw.token.unwrap_or_default() {
        let value = t.token.get_ref();
        if value.len() < MIN_TOKEN_LEN || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err(
                Some(t.token.span()),
                format!(
                    "http.token.token: at least {MIN_TOKEN_LEN} printable characters, no spaces"
                ),
            ));
        }
        if tokens.iter().any(|o| &o.token == value) {
            return Err(err(
                Some(t.token.span()),
                "http.token.token: the same token is listed twice".into(),
            ));
        }
        let role = match t.role.as_ref().map(|r| r.get_ref().as_str()) {
            None | Some("read") => Role::Read,
            Some("admin") => Role::Admin,
            Some(other) => {
                return Err(err(
                    t.role.as_ref().map(|r| r.span()),
                    format!("http.token.role: {other:?} is not \"admin\" or \"read\""),
                ))
            }
        };
        tokens.push(Token {
            token: value.clone(),
            role,
        });
    }
    let max_body_bytes = match &raw.max_body_bytes {
        Some(m) => usize::try_from(*m.get_ref())
            .ok()
            .filter(|&n| n >= 1024)
            .ok_or_else(|| {
                err(
                    Some(m.span()),
                    format!("http.max_body_bytes: {} is below 1024", m.get_ref()),
                )
            })?,
        None => DEFAULT_MAX_BODY,
    };
    Ok(HttpConfig {
        listen,
        tokens,
        max_body_bytes,
    })
}
